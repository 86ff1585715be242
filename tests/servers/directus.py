"""A real Directus 12.4.0 on loopback (SQLite), for the directus collector's tests.

Installed once by scripts/install-directus.sh into a cache outside the repo
(~4 min and ~900 MB the first time); a test run that finds no install and
cannot make one skips these tests with the reason.  Bootstrapped with a static
admin token, a non-admin user with its own static token and a ``widgets``
collection holding three items.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peers.process import LOOPBACK, Process, ProcessError, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "directus-admin-token-4b7e0c2d91"
VIEWER_TOKEN = "directus-viewer-token-a83f55e1"
WIDGETS = 3


def install() -> Path:
    """The install directory, installing it first if needed (scripts/install-directus.sh)."""
    proc = subprocess.run(
        [str(REPO / "scripts/install-directus.sh")], capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        raise ProcessError(f"installing Directus failed:\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _call(url: str, method: str = "GET", token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


@dataclass
class DirectusServer:
    home: Path
    workdir: Path
    port: int = 0
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DIRECTUS_"))}
        env.update(
            DB_CLIENT="sqlite3",
            DB_FILENAME=str(self.workdir / "data.db"),
            KEY=secrets.token_hex(16),
            SECRET=secrets.token_hex(16),
            ADMIN_EMAIL="admin@example.com",
            ADMIN_PASSWORD=secrets.token_hex(12),
            ADMIN_TOKEN=ADMIN_TOKEN,
            HOST=LOOPBACK,
            PORT=str(self.port),
            PUBLIC_URL=self.url,
            TELEMETRY="false",
            # health answers are cached for 5 min by default; tests watch them change
            HEALTHCHECK_CACHE_TTL="1s",
            STORAGE_LOCATIONS="local",
            STORAGE_LOCAL_ROOT=str(self.workdir / "uploads"),
            EXTENSIONS_PATH=str(self.workdir / "extensions"),
            LOG_LEVEL="warn",
            RATE_LIMITER_ENABLED="false",
            # Directus answers 503 "Under pressure" while its event loop is busier than 99% or
            # 500 ms late; right after start (migrations, the seeding below) on a two-core
            # machine running the rest of the suite it is, and seeding failed in one CI run.
            # The collector's handling of a 503 is tested against the fakes.
            PRESSURE_LIMITER_ENABLED="false",
        )
        return env

    def bootstrap(self) -> None:
        self.port = free_port()
        (self.workdir / "uploads").mkdir(parents=True, exist_ok=True)
        (self.workdir / "extensions").mkdir(parents=True, exist_ok=True)
        cli = self.home / "node_modules/directus/cli.js"
        proc = subprocess.run(
            [str(self.home / "node"), str(cli), "bootstrap"],
            cwd=self.workdir,
            env=self._env() | {"ADMIN_PASSWORD": "unused-" + secrets.token_hex(6)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise ProcessError(f"directus bootstrap failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
        self.process = Process(
            [str(self.home / "node"), str(cli), "start"],
            self.workdir / "directus.log",
            cwd=self.workdir,
            env=self._env(),
        )
        self.start()
        self._seed()

    def start(self) -> None:
        assert self.process is not None
        self.process.start()
        wait_until(self._pong, timeout=60, interval=0.2, message=f"Directus answers on {self.url}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)

    def _pong(self) -> bool:
        assert self.process is not None
        self.process.check_running()
        try:
            return _call(f"{self.url}/server/ping")[1] == "pong"
        except OSError:
            return False

    def _seed(self) -> None:
        status, body = _call(
            f"{self.url}/users",
            "POST",
            ADMIN_TOKEN,
            {"email": "viewer@example.com", "password": secrets.token_hex(12), "token": VIEWER_TOKEN},
        )
        assert status == 200, f"creating the viewer user: {status} {body}"
        status, body = _call(
            f"{self.url}/collections",
            "POST",
            ADMIN_TOKEN,
            {
                "collection": "widgets",
                "schema": {},
                "meta": {},
                "fields": [
                    {"field": "id", "type": "integer", "schema": {"is_primary_key": True, "has_auto_increment": True}},
                    {"field": "name", "type": "string", "schema": {}, "meta": {}},
                ],
            },
        )
        assert status == 200, f"creating widgets: {status} {body}"
        status, body = _call(
            f"{self.url}/items/widgets", "POST", ADMIN_TOKEN, [{"name": f"w{i}"} for i in range(WIDGETS)]
        )
        assert status == 200, f"creating widgets items: {status} {body}"

    def count(self, collection: str) -> Any:
        return _call(f"{self.url}/items/{collection}?aggregate[count]=*", token=ADMIN_TOKEN)[1]["data"][0]["count"]


@pytest.fixture(scope="session")
def directus_home() -> Path:
    # a failure, not a skip: without npm the Directus tests would silently not run
    assert shutil.which("npm") is not None, "npm is missing: Directus cannot be installed (apt-get install npm)"
    return install()


@pytest.fixture(scope="module")
def directus(directus_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectusServer]:
    server = DirectusServer(directus_home, tmp_path_factory.mktemp("directus"))
    try:
        server.bootstrap()
        yield server
    finally:
        server.stop()
