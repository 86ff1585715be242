"""A source's client library loads only when the config has that source.

Validating a config needs a section's target class, never its collector: the
registry names both (``SourceSpec.target`` and ``COLLECTOR``), and the target
class's module imports no client library.  These run the exporter in child
processes, so ``sys.modules`` starts empty of everything under test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from exporter.collectors import SOURCES
from tests.helpers import ROOT, check_config, write_config

# Top-level package of each client library -> the sources that need it.
CLIENT_LIBRARIES = {
    "redis": {"redis"},
    "asyncpg": {"postgres"},
    "psycopg": {"pgbouncer"},
    "dns": {"email_domains"},
    "botocore": {"ses"},
    "aiobotocore": {"ses"},
    "boto3": set(),  # never: SES goes through aiobotocore
}

# A closed loopback port: every target fails fast, which is all start-up needs.
CLOSED = "127.0.0.1:9"

# One minimal valid target per source; the test below checks it covers the registry.
EVERY_SOURCE: dict[str, Any] = {
    "global": {"scrape_timeout": "3s"},
    "redis": [{"name": "cache", "url": f"redis://{CLOSED}/0"}],
    "postgres": [{"name": "db", "dsn": f"postgresql://postgres@{CLOSED}/postgres"}],
    "pgbouncer": [{"name": "bouncer", "dsn": f"postgresql://stats@{CLOSED}/pgbouncer"}],
    "lago": [{"name": "lago", "url": f"http://{CLOSED}", "api_key": "k"}],
    "directus": [{"name": "cms", "url": f"http://{CLOSED}"}],
    "statuspages": [{"name": "sendgrid", "url": f"http://{CLOSED}"}],
    "sendgrid": [{"name": "sg", "url": f"http://{CLOSED}", "api_key": "k"}],
    "mailgun": [{"name": "mg", "url": f"http://{CLOSED}", "api_key": "k", "domain": "mg.example.com"}],
    "postmark": [{"name": "pm", "url": f"http://{CLOSED}", "server_token": "k"}],
    "resend": [{"name": "rs", "url": f"http://{CLOSED}", "api_key": "k"}],
    "ses": [{"name": "ses", "region": "us-east-1", "endpoint_url": f"http://{CLOSED}"}],
    "dns_resolver": {"nameservers": ["127.0.0.1"], "port": 9, "timeout": "500ms"},
    "email_domains": [{"domain": "example.com"}],
    "http_probes": [{"name": "site", "url": f"http://{CLOSED}/"}],
}

# Builds the engine (every configured collector) the way the CLI does, then reports
# which client libraries are loaded.
ENGINE_SCRIPT = """
import asyncio, json, sys
from exporter.config import load_config
from exporter.scrape import Engine

async def main():
    engine = Engine(load_config(sys.argv[1]))
    kinds = sorted({runner.kind for runner in engine.runners.values()})
    await engine.close()
    return kinds

kinds = asyncio.run(main())
print(json.dumps({"kinds": kinds, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""

# ``stack-exporter --config.file PATH --check-config``, then which client libraries it loaded.
CHECK_SCRIPT = """
import json, sys
from exporter.cli import main

code = main(["--config.file", sys.argv[1], "--check-config"])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_child(script: str, config: Path) -> tuple[dict[str, Any], str]:
    """Run ``script`` with the config's path and the libraries' names; its JSON line and stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(config), *CLIENT_LIBRARIES],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result, proc.stderr


@pytest.mark.parametrize("source", ["redis", "postgres"])
def test_only_the_configured_sources_client_library_is_imported(tmp_path: Path, source: str) -> None:
    path = write_config(tmp_path, {source: EVERY_SOURCE[source]})
    result, _ = run_child(ENGINE_SCRIPT, path)
    assert result["kinds"] == [source]  # the collector was built, so its library is in
    expected = sorted(lib for lib, users in CLIENT_LIBRARIES.items() if source in users)
    assert result["loaded"] == expected


def test_every_source_is_in_the_every_source_config() -> None:
    assert set(SOURCES) <= set(EVERY_SOURCE), set(SOURCES) - set(EVERY_SOURCE)


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_the_registry_names_each_sources_target_class(key: str) -> None:
    """The schema the loader uses is the collector's: validating never needs the collector."""
    spec = SOURCES[key]
    assert spec.target, f"source {key} names no target class"
    assert spec.target_class() is spec.collector().config_class


def test_check_config_loads_no_client_library_and_reports_every_problem(tmp_path: Path) -> None:
    pytest.importorskip("aiobotocore")  # else ses reports the missing extra, a problem of its own
    broken = json.loads(json.dumps(EVERY_SOURCE))
    for value in broken.values():
        if isinstance(value, list):
            value[0]["colour"] = "blue"  # an unknown key in every source's first target
    broken["dns_resolver"]["colour"] = "blue"
    result, err = run_child(CHECK_SCRIPT, write_config(tmp_path, broken))
    assert result == {"code": 1, "loaded": []}
    assert "Traceback" not in err
    for key, value in broken.items():
        if key == "global":
            continue
        where = f"{key}[0]" if isinstance(value, list) else key
        assert f"{where}.colour: unknown key" in err, err

    result, _ = run_child(CHECK_SCRIPT, write_config(tmp_path, EVERY_SOURCE, name="valid.yml"))
    assert result == {"code": 0, "loaded": []}
    proc = check_config(tmp_path / "valid.yml")  # the real entry point, as users run it
    assert proc.returncode == 0, proc.stderr
    assert f"({len(SOURCES)} targets)" in proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_config_with_every_source_starts_and_serves_metrics(tmp_path: Path) -> None:
    pytest.importorskip("aiobotocore")
    path = write_config(tmp_path, EVERY_SOURCE)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"}
                )
                with urllib.request.urlopen(request, timeout=10) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                time.sleep(0.05)
        assert body, f"no /metrics answer; exit code {proc.poll()}"
        for key in SOURCES:
            assert f'stack_exporter_collector_success{{collector="{key}",' in body, key
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
