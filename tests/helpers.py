"""Helpers every collector's tests use: write a config, build the real app, scrape it, read values."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from exporter.config import Config, parse_config
from exporter.scrape import Engine
from exporter.server import make_app, make_reloader
from exporter.webconfig import default_web_settings
from peers.process import free_port, port_is_open, wait_until

ROOT = Path(__file__).resolve().parent.parent

# A config as Python data (what the YAML file would hold), or raw YAML text for the
# few tests whose point is the text itself: malformed YAML, duplicate keys, ${ENV}.
ConfigSource = Mapping[str, Any] | str


def self_signed_cert(directory: Path, days: int = 2, name: str = "tls") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``name``.crt, ``name``.key in ``directory``), made by openssl."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def config_text(config: ConfigSource) -> str:
    """The YAML for ``config``; raw text is only dedented."""
    if isinstance(config, str):
        return textwrap.dedent(config)
    # safe_dump quotes whatever YAML would otherwise read back as another type or
    # another string, so a URL, a secret or "0s" arrives as written
    return yaml.safe_dump(dict(config), sort_keys=False)


def write_config(directory: Path, config: ConfigSource, name: str = "config.yml") -> Path:
    """Write ``config`` to ``directory/name`` and return the file's path."""
    path = directory / name
    path.write_text(config_text(config), encoding="utf-8")
    return path


def check_config(
    path: Path,
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    hide_modules: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``python -m exporter --config.file PATH --check-config ARGS`` in a child process.

    ``hide_modules`` makes those imports fail in the child, as if the optional
    dependency were not installed.
    """
    argv = ["--config.file", str(path), "--check-config", *args]
    if hide_modules:
        code = (
            "import runpy, sys\n"
            f"for name in {list(hide_modules)!r}:\n"
            "    sys.modules[name] = None\n"
            f"sys.argv = ['exporter', *{argv!r}]\n"
            "runpy.run_module('exporter', run_name='__main__', alter_sys=True)\n"
        )
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-m", "exporter", *argv]
    base = dict(os.environ if env is None else env)
    # the tree under test, whichever directory the child starts in
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    return subprocess.run(command, cwd=cwd, env=base, capture_output=True, text=True, timeout=60, check=False)


def config_from(config: ConfigSource, base_dir: Path | None = None) -> Config:
    return parse_config(config_text(config), "<test>", base_dir=base_dir)


@asynccontextmanager
async def exporter(config: ConfigSource, *, base_dir: Path | None = None) -> AsyncIterator[TestClient]:
    """The real aiohttp app on a loopback port, with the given config."""
    engine = Engine(config_from(config, base_dir))

    def load() -> Config:
        return config_from(config, base_dir)

    async with serving(engine, load) as client:
        yield client


@asynccontextmanager
async def serving(engine: Engine, load: Callable[[], Config] | None = None) -> AsyncIterator[TestClient]:
    """The real aiohttp app around ``engine`` on a loopback port; /-/reload calls ``load``."""
    # the web settings the CLI always builds (no auth, no TLS): the listener's guard metrics
    app = make_app(engine, make_reloader(engine, load or (lambda: engine.config)), default_web_settings())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def scrape(client: TestClient, path: str = "/metrics", **headers: str) -> str:
    resp = await client.get(path, headers=headers)
    text = await resp.text()
    assert resp.status == 200, f"{path} answered {resp.status}: {text}"
    return text


def samples(text: str) -> list[Sample]:
    out: list[Sample] = []
    for family in text_string_to_metric_families(text):
        out.extend(family.samples)
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample with this name whose labels include ``labels``."""
    found = [s.value for s in samples(text) if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, f"{len(found)} samples of {name} match {labels}"
    return found[0] if found else None


def values(text: str, name: str, **labels: str) -> list[Sample]:
    return [s for s in samples(text) if s.name == name and labels.items() <= s.labels.items()]


def promtool_check(text: str) -> str:
    """Run `promtool check metrics`; return its complaints ('' when clean)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs it (Debian package prometheus)"
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip()


# --------------------------------------------------------------------------- metrics reference

REFERENCE_DIR = ROOT / "docs" / "metrics"
_IMPLICIT_LABELS = {"target", "quantile", "le"}


def documented_metrics(source: str) -> dict[str, tuple[str, frozenset[str], str]]:
    """docs/metrics/<source>.md's table: name -> (type, labels, help)."""
    rows: dict[str, tuple[str, frozenset[str], str]] = {}
    in_table = False
    for line in (REFERENCE_DIR / f"{source}.md").read_text(encoding="utf-8").splitlines():
        # every table headed "| Metric | Type | Labels | Help |" counts; other tables do not
        if line.replace(" ", "") == "|Metric|Type|Labels|Help|":
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        if not in_table or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"{source}.md: a row needs 4 cells: {line}"
        name = cells[0].strip("`")
        labels = frozenset(label.strip().strip("`") for label in cells[2].split(",") if label.strip())
        assert name not in rows, f"{source}.md lists {name} twice"
        rows[name] = (cells[1], labels, cells[3])
    assert rows, f"docs/metrics/{source}.md has no metric rows"
    return rows


def emitted_metrics(*texts: str, prefixes: tuple[str, ...]) -> dict[str, tuple[str, frozenset[str], str]]:
    """What expositions really contain, in the reference's terms (counters with _total)."""
    out: dict[str, tuple[str, frozenset[str], str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            name = family.name
            if family.type == "counter" and not name.endswith("_total"):
                name += "_total"
            if not name.startswith(prefixes):
                continue
            labels = frozenset(k for s in family.samples for k in s.labels if k not in _IMPLICIT_LABELS)
            old = out.get(name)
            if old is not None:
                labels |= old[1]
            out[name] = (family.type, labels, family.documentation)
    return out


def reference_problems(source: str, *texts: str, prefixes: tuple[str, ...], exclude: tuple[str, ...] = ()) -> list[str]:
    """Differences between docs/metrics/<source>.md and what the collector emitted, for the
    metrics named ``prefixes`` but not ``exclude`` (a page may document two sources: the email
    page has the polled providers and their webhooks, each checked from its own exposition)."""

    def checked(name: str) -> bool:
        return name.startswith(prefixes) and not (exclude and name.startswith(exclude))

    docs = {name: row for name, row in documented_metrics(source).items() if checked(name)}
    seen = {name: row for name, row in emitted_metrics(*texts, prefixes=prefixes).items() if checked(name)}
    problems = []
    for name, (typ, labels, doc) in sorted(seen.items()):
        if name not in docs:
            problems.append(f"{name} ({typ}) is emitted but not in docs/metrics/{source}.md")
            continue
        dtyp, dlabels, dhelp = docs[name]
        if dtyp != typ:
            problems.append(f"{name}: documented as {dtyp}, emitted as {typ}")
        if dlabels != labels:
            problems.append(f"{name}: documented labels {sorted(dlabels)}, emitted {sorted(labels)}")
        if dhelp != doc:
            problems.append(f"{name}: documented help {dhelp!r}, emitted {doc!r}")
    for name in sorted(set(docs) - set(seen)):
        problems.append(f"{name} is documented in docs/metrics/{source}.md but was not emitted")
    return problems


def rss_bytes() -> int:
    """This process's resident memory, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@contextmanager
def peak_rss_growth(interval: float = 0.01) -> Iterator[list[int]]:
    """Samples RSS from a thread (so a busy event loop cannot hide a spike) while the block
    runs; yields a one-element list that becomes the peak growth in bytes."""
    base = rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    growth = [0]
    try:
        yield growth
    finally:
        stop.set()
        thread.join(5)
        growth[0] = max(peak[0], rss_bytes()) - base


class ExporterProcess:
    """The exporter as its own process (``python -m exporter``) on a free loopback port."""

    def __init__(self, tmp_path: Path, config: ConfigSource, *args: str) -> None:
        self.config_path = write_config(tmp_path, config)
        self.port = free_port()
        self.log_path = tmp_path / "exporter.log"
        self.args = [
            sys.executable,
            "-m",
            "exporter",
            "--config.file",
            str(self.config_path),
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self.scheme = "http"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/-/healthy", context: ssl.SSLContext | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            return port_is_open("127.0.0.1", self.port)

        wait_until(listening, timeout=15)

        def answers() -> bool:
            try:
                self.get(ready_path, context=context)
            except urllib.error.HTTPError as err:
                err.close()
                return True  # it answered, with an auth error for instance
            except OSError:
                return False
            return True

        wait_until(answers, timeout=15)

    def get(self, path: str, context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> str:
        req = urllib.request.Request(f"{self.scheme}://127.0.0.1:{self.port}{path}", headers=headers or {})
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return str(resp.read().decode())

    def post(self, path: str) -> tuple[int, str]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def merge_target_families(per_target: Iterable[tuple[str | None, Sequence[Metric]]]) -> list[Metric]:
    """The oracle: one merged family per name, samples labelled ``target``, as
    prometheus-client's encoders need; render_text must write what they write from it."""
    merged: dict[str, Metric] = {}
    for target, families in per_target:
        for family in families:
            out = merged.get(family.name)
            if out is None:
                out = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif out.type != family.type:
                continue  # render_text keeps the first type too
            for sample in family.samples:
                labels = dict(sample.labels) if target is None else {**sample.labels, "target": target}
                out.samples.append(sample._replace(labels=labels))
    return list(merged.values())


class FamiliesRegistry:
    """A registry that collects the given families: prometheus-client's encoders as the oracle."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families
