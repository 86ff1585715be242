"""Generic side-by-side benchmark: our exporter against a reference exporter.

A scenario (``bench/<name>_bench.py``) knows its backend and the two command lines; this
module does everything else the same way for every scenario: start and always stop the
processes, wait for readiness, warm up, let start-up work settle, scrape both exporters
alternately, measure latency, CPU and memory from outside, print a comparison and write
the raw numbers as JSON.

The public shape a scenario uses::

    def plan(env: BenchEnv) -> Plan:
        port = env.free_port()                       # ports and files only, no processes
        ...
        def start_backend() -> dict[str, object]:    # called once the binaries are known
            env.spawn("postgres", [...], user="postgres")
            env.wait_until("postgres accepts connections", check, timeout=30)
            return {"rows": 123}                      # dataset facts for the report
        return Plan(ours=ExporterSpec(...), theirs=ExporterSpec(...),
                    start_backend=start_backend)

    SCENARIO = Scenario(name="postgres", title="...", plan=plan)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import gzip
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from peers.process import LOOPBACK, STACK_EXPORTER, Process, free_port, temp_dir, wait_until

# What Prometheus 2.42 sends on every scrape. The Accept header lets an exporter answer in
# OpenMetrics; we record which format each side chose, since it changes the body size.
SCRAPE_HEADERS: Mapping[str, str] = {
    "Accept": (
        "application/openmetrics-text;version=1.0.0,"
        "application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ),
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
# Same as the scrape timeout we announce: a scrape slower than this would fail in Prometheus.
SCRAPE_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    """A problem the user can fix (missing binary, backend not starting); no traceback."""


# --------------------------------------------------------------------------- public shape


@dataclass(frozen=True)
class ExporterSpec:
    """How to start one exporter and where it answers."""

    name: str  # shown in the report, e.g. "redis_exporter"
    argv: Sequence[str]  # argv[0] is an absolute path, checked before anything starts
    port: int
    ready_path: str = "/-/ready"  # GET returns 200 once it can serve /metrics
    metrics_path: str = "/metrics"
    install_hint: str = ""  # printed when argv[0] is missing
    version_argv: Sequence[str] | None = None  # first output line goes into the JSON
    env: Mapping[str, str] | None = None  # added to the harness's environment


def stack_exporter_spec(config: Path, port: int) -> ExporterSpec:
    """Our exporter, as every scenario starts it: its config file, quiet logs."""
    return ExporterSpec(
        name="stack-exporter",
        argv=[
            str(STACK_EXPORTER),
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "warn",
        ],
        port=port,
        install_hint="install the project into the venv first: .venv/bin/pip install -e . "
        "(or measure the reference alone with --reference-only)",
        version_argv=[str(STACK_EXPORTER), "--version"],
    )


@dataclass(frozen=True)
class Plan:
    """What a scenario's ``plan`` returns: the two exporters and how to start the backend."""

    ours: ExporterSpec
    theirs: ExporterSpec
    # Starts (via env.spawn) and fills the backend; returns facts about the dataset.
    start_backend: Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class Targets:
    """Pass marks for the comparison; a scenario may set its own."""

    max_p50_ratio: float = 0.8
    max_cpu_ratio: float = 1.5
    max_our_rss_mib: float = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str  # the CLI name: ``python -m bench <name>``
    title: str  # one line for the report header
    plan: Callable[[BenchEnv], Plan]
    targets: Targets = field(default_factory=Targets)


@dataclass(frozen=True)
class RunOptions:
    scrapes: int = 200
    warmup: int = 5
    reference_only: bool = False
    results_dir: Path = Path(__file__).resolve().parent / "results"
    keep_workdir: bool = False
    max_seconds: float = 900.0  # the whole measured loop; a bound, not a goal
    options: Mapping[str, str] = field(default_factory=dict)  # --set key=value


# --------------------------------------------------------------------------- processes


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchEnv:
    """One scenario run: a private temp dir, free ports, and every process it started.

    Leaving the ``with`` block, by success, error or Ctrl-C, stops the processes in the
    reverse order of their start (exporters before the backend) and removes the temp dir.
    """

    def __init__(self, scenario: str, options: Mapping[str, str], keep_workdir: bool) -> None:
        self.scenario = scenario
        self.options = dict(options)
        self.keep_workdir = keep_workdir
        # Traversable by a backend that runs as another user (postgres refuses root).
        self.workdir = temp_dir(f"stack-bench-{scenario}-")
        self._procs: list[Process] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        # Ctrl-C during cleanup must not leave the rest running.
        with _signals_deferred():
            while self._procs:
                proc = self._procs.pop()
                try:
                    proc.stop()
                except (OSError, subprocess.SubprocessError) as err:  # stop the rest
                    log(f"could not stop {proc!r}: {err}")
            if self.keep_workdir:
                log(f"kept {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def procs(self) -> tuple[Process, ...]:
        """The processes started so far, oldest first."""
        return tuple(self._procs)

    @staticmethod
    def free_port() -> int:
        """A loopback port free right now and not handed out before in this run."""
        return free_port()

    def subdir(self, name: str, owner: str | None = None) -> Path:
        """A directory in the workdir, optionally owned by another user (e.g. postgres)."""
        path = self.workdir / name
        path.mkdir(mode=0o700)
        if owner is not None:
            shutil.chown(path, user=owner, group=owner)
        return path

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Process:
        """Start a process in its own process group, output to ``<workdir>/<name>.log``.

        Its own session means a terminal's Ctrl-C reaches only the harness, which then
        stops everything in order; the process also dies if the harness is SIGKILLed.
        """
        full_env = {**os.environ, **(env or {})}
        proc = Process(argv, self.workdir / f"{name}.log", cwd=cwd or self.workdir, env=full_env, user=user)
        proc.start()
        self._procs.append(proc)
        return proc

    @staticmethod
    def require(path: str, hint: str = "") -> str:
        """``path`` if it is an executable file, else a BenchError with the install hint."""
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BenchError(f"{path} not found or not executable" + (f": {hint}" if hint else ""))
        return path

    @staticmethod
    def wait_until(
        what: str,
        check: Callable[[], bool],
        *,
        timeout: float = 30.0,
        interval: float = 0.05,
        alive: Sequence[Process] = (),
        errors: tuple[type[Exception], ...] = (OSError, http.client.HTTPException),
    ) -> None:
        """Poll ``check`` until true, bounded by ``timeout``; ``errors`` mean not yet.

        A process in ``alive`` that exits fails the wait at once, with its log tail.
        """

        def ready() -> bool:
            for proc in alive:
                proc.check_running()
            return check()

        try:
            wait_until(ready, timeout, interval, message=what, ignore=errors)
        except TimeoutError as err:
            detail = f" (last error: {err.__cause__})" if err.__cause__ else ""
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}{detail}") from None


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while cleaning up, re-deliver afterwards."""
    received: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        received.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if received:
            signal.raise_signal(received[0])


# --------------------------------------------------------------------------- /proc readings


def _trees(roots: Sequence[int]) -> list[int]:
    """The root pids and all their live descendants (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out = list(roots)
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after ``comm``: [0] is state (field 3), [1] ppid ..."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def cpu_ticks(*pids: int) -> int:
    """utime+stime of the processes, their live descendants and their reaped children.

    Each process that ever lived in the tree counts once: a reaped child's times move
    into its parent's cutime/cstime.
    """
    total = 0
    for p in _trees(pids):
        try:
            f = _stat_fields(p)
        except OSError:  # exited between listing and reading
            continue
        # utime, stime, cutime, cstime are fields 14..17, i.e. [11..14] here.
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total


def _process_clock_s(pid: int) -> float | None:
    """The kernel's nanosecond CPU clock of a live process (all its threads), in seconds."""
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None
    try:
        return time.clock_gettime(clock.value)
    except OSError:  # exited meanwhile
        return None


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of one live process (all its threads, not its children), ns resolution.

    Cheap (no /proc scan): for reading an exporter around every single request.
    """
    live = _process_clock_s(pid)
    if live is None:
        raise BenchError(f"process {pid} is gone")
    return live


def cpu_seconds(*pids: int) -> float:
    """Like cpu_ticks, but live processes read from their ns CPU clock, not in 10 ms ticks.

    Used where a single scrape's share is wanted: tick deltas of a fraction of a
    millisecond are mostly 0 or 1 and too coarse to attribute. Reaped children are
    still only known in ticks (cutime/cstime).
    """
    total = 0.0
    for p in _trees(pids):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        live = _process_clock_s(p)
        if live is None:
            live = (int(f[11]) + int(f[12])) / CLK_TCK
        total += live + (int(f[13]) + int(f[14])) / CLK_TCK
    return total


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB, summed over the process and its live descendants."""
    rss = hwm = 0
    for p in _trees([pid]):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


# --------------------------------------------------------------------------- scraping


@dataclass(frozen=True)
class ScrapeResult:
    seconds: float
    status: int
    wire_bytes: int
    plain_bytes: int
    content_type: str
    content_encoding: str
    body: bytes


def scrape(port: int, path: str) -> ScrapeResult:
    """One Prometheus-like scrape on a fresh connection; time includes gunzip."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=SCRAPE_TIMEOUT_S)
    try:
        conn.request("GET", path, headers=dict(SCRAPE_HEADERS))
        resp = conn.getresponse()
        raw = resp.read()
        encoding = resp.getheader("Content-Encoding", "") or ""
        body = gzip.decompress(raw) if encoding == "gzip" else raw
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    return ScrapeResult(
        seconds=elapsed,
        status=resp.status,
        wire_bytes=len(raw),
        plain_bytes=len(body),
        content_type=resp.getheader("Content-Type", "") or "",
        content_encoding=encoding,
        body=body,
    )


def http_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    finally:
        conn.close()


def count_exposition(body: bytes) -> tuple[int, int]:
    """(samples, metric families) in a text or OpenMetrics exposition."""
    samples = families = 0
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.startswith("# TYPE "):
            families += 1
        elif line and not line.startswith("#"):
            samples += 1
    return samples, families


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# --------------------------------------------------------------------------- one side


@dataclass
class Side:
    """Everything measured for one exporter."""

    role: str  # "ours" | "theirs"
    spec: ExporterSpec
    proc: Process | None = None
    version: str = ""
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ticks_before: int = 0
    ticks_after: int = 0
    backend_cpu_s: float = 0.0  # backend CPU spent while this side was being scraped
    rss_kib: int = 0
    hwm_kib: int = 0
    last: ScrapeResult | None = None

    def scrape_once(self, record: bool) -> None:
        assert self.proc is not None
        try:
            res = scrape(self.spec.port, self.spec.metrics_path)
        except (OSError, http.client.HTTPException) as err:
            self.proc.check_running()
            if record:
                self.errors.append(f"{type(err).__name__}: {err}")
            return
        if res.status != 200:
            if record:
                self.errors.append(f"HTTP {res.status}")
            return
        if record:
            self.latencies_s.append(res.seconds)
        self.last = res

    def summary(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies_s]
        n = len(self.latencies_s) + len(self.errors)
        ticks = self.ticks_after - self.ticks_before
        samples, families = count_exposition(self.last.body) if self.last else (0, 0)
        return {
            "name": self.spec.name,
            "version": self.version,
            "argv": list(self.spec.argv),
            "scrapes": n,
            "failed_scrapes": len(self.errors),
            "errors": self.errors[:20],
            "latency_ms": {
                # None when every scrape failed (JSON has no NaN).
                "p50": _finite(percentile(ms, 50)),
                "p95": _finite(percentile(ms, 95)),
                "p99": _finite(percentile(ms, 99)),
                "mean": _finite(sum(ms) / len(ms)) if ms else None,
                "min": min(ms, default=None),
                "max": max(ms, default=None),
            },
            "cpu": {
                "ticks": ticks,
                "clk_tck": CLK_TCK,
                "ms_per_scrape": ticks * 1000 / CLK_TCK / n if n else None,
            },
            "backend_cpu": {
                "seconds": round(self.backend_cpu_s, 6),
                "ms_per_scrape": self.backend_cpu_s * 1000 / n if n else None,
            },
            "memory": {"rss_kib": self.rss_kib, "hwm_kib": self.hwm_kib},
            "body": {
                "wire_bytes": self.last.wire_bytes if self.last else 0,
                "plain_bytes": self.last.plain_bytes if self.last else 0,
                "content_type": self.last.content_type if self.last else "",
                "content_encoding": self.last.content_encoding if self.last else "",
            },
            "samples": samples,
            "families": families,
            "latencies_ms": [round(x, 4) for x in ms],
        }


def _version(spec: ExporterSpec) -> str:
    if not spec.version_argv:
        return ""
    try:
        out = subprocess.run(
            list(spec.version_argv),
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout + out.stderr).decode(errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    # Go exporters print their version as a logfmt line: keep the message only.
    msg = re.search(r'msg="([^"]*)"', first)
    return " ".join((msg.group(1) if msg else first).split())


# --------------------------------------------------------------------------- the run


def settle(pids: Sequence[int], *, window_s: float = 0.5, quiet_ticks: int = 2, timeout: float = 30.0) -> float | None:
    """Wait until ``pids`` together use at most ``quiet_ticks`` CPU ticks in ``window_s``.

    Returns the seconds it took, or None (and a warning) if they never went quiet.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = cpu_ticks(*pids)
        time.sleep(window_s)
        if cpu_ticks(*pids) - before <= quiet_ticks:
            return round(time.monotonic() - start, 2)
    log(f"processes still busy after {timeout:.0f}s; measuring anyway (see settle_seconds)")
    return None


def _pid(proc: Process | None) -> int:
    assert proc is not None, "measured before it was started"
    assert proc.pid is not None, "measured before it was started"
    return proc.pid


def run(scenario: Scenario, opts: RunOptions) -> dict[str, Any]:
    """Run one scenario end to end; returns the result document (also written as JSON).

    Long (about 90 lines) because it is the benchmark's protocol read top to bottom:
    start the backend and both exporters, warm up, alternate scrapes, sample memory,
    write the document. Split, the order of those steps (which the ratios depend on)
    would be spread over helpers.
    """
    started = dt.datetime.now(dt.UTC)
    with BenchEnv(scenario.name, opts.options, opts.keep_workdir) as env:
        log(f"{scenario.name}: workdir {env.workdir}")
        plan = scenario.plan(env)
        sides = [Side("theirs", plan.theirs)]
        if not opts.reference_only:
            sides.insert(0, Side("ours", plan.ours))
        # Check every binary before the (slow) backend load.
        for side in sides:
            env.require(str(side.spec.argv[0]), side.spec.install_hint)
            side.version = _version(side.spec)

        t0 = time.monotonic()
        facts = dict(plan.start_backend())
        backend = [_pid(p) for p in env.procs]
        log(f"{scenario.name}: backend ready in {time.monotonic() - t0:.1f}s: {facts}")

        for side in sides:
            side.proc = env.spawn(f"{side.role}-{side.spec.name}", side.spec.argv, env=side.spec.env)
        for side in sides:
            assert side.proc is not None
            env.wait_until(
                f"{side.spec.name} on {side.spec.ready_path}",
                functools.partial(http_ok, side.spec.port, side.spec.ready_path),
                timeout=60,
                alive=[side.proc],
            )
        log(f"{scenario.name}: exporters ready: " + ", ".join(s.spec.name for s in sides))

        for _ in range(opts.warmup):
            for side in sides:
                side.scrape_once(record=False)
        for side in sides:
            if side.last is None:
                raise BenchError(f"{side.spec.name}: no successful scrape during warm-up")

        # Exporters may do start-up work in the background after their first scrapes
        # (ours runs its first key-pattern SCAN then); measure only once all is quiet.
        settle_s = settle([*backend, *(_pid(s.proc) for s in sides)])
        loadavg_before = os.getloadavg()
        for side in sides:
            side.ticks_before = cpu_ticks(_pid(side.proc))
        log(f"{scenario.name}: {opts.scrapes} scrapes each, alternating")
        deadline = time.monotonic() + opts.max_seconds
        wall0 = time.monotonic()
        for i in range(opts.scrapes):
            if time.monotonic() > deadline:
                raise BenchError(f"measured loop exceeded {opts.max_seconds:.0f}s at scrape {i}")
            for side in sides:  # ours, theirs, ours, theirs ...
                before = cpu_seconds(*backend)
                side.scrape_once(record=True)
                side.backend_cpu_s += cpu_seconds(*backend) - before
        wall = time.monotonic() - wall0
        for side in sides:
            assert side.proc is not None
            side.ticks_after = cpu_ticks(_pid(side.proc))
            side.rss_kib, side.hwm_kib = memory_kib(_pid(side.proc))
            side.proc.check_running()
        log(f"{scenario.name}: measured loop took {wall:.1f}s")

    doc: dict[str, Any] = {
        "scenario": scenario.name,
        "title": scenario.title,
        "started": started.isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": loadavg_before,
        },
        "settings": {
            "scrapes": opts.scrapes,
            "warmup": opts.warmup,
            "order": [s.role for s in sides],
            "headers": dict(SCRAPE_HEADERS),
            "options": dict(opts.options),
            "measured_loop_seconds": wall,
            "settle_seconds": settle_s,
        },
        "dataset": facts,
        "ours": None,
        "theirs": None,
    }
    for side in sides:
        doc[side.role] = side.summary()
    doc["comparison"] = compare(doc, scenario.targets)
    return doc


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return None
    return a / b


def compare(doc: Mapping[str, Any], targets: Targets) -> dict[str, Any]:
    ours, theirs = doc.get("ours"), doc.get("theirs")
    if not ours or not theirs:
        na = {"value": None, "status": "n/a"}
        return {
            "ratios": {},
            "targets": {
                "p50_ratio": {**na, "limit": targets.max_p50_ratio},
                "cpu_ratio": {**na, "limit": targets.max_cpu_ratio},
                "our_rss_mib": {**na, "limit": targets.max_our_rss_mib},
            },
        }
    ratios = {
        "p50": _ratio(ours["latency_ms"]["p50"], theirs["latency_ms"]["p50"]),
        "p95": _ratio(ours["latency_ms"]["p95"], theirs["latency_ms"]["p95"]),
        "p99": _ratio(ours["latency_ms"]["p99"], theirs["latency_ms"]["p99"]),
        "cpu": _ratio(ours["cpu"]["ms_per_scrape"], theirs["cpu"]["ms_per_scrape"]),
        "backend_cpu": _ratio(ours["backend_cpu"]["ms_per_scrape"], theirs["backend_cpu"]["ms_per_scrape"]),
        "rss": _ratio(ours["memory"]["rss_kib"], theirs["memory"]["rss_kib"]),
        "hwm": _ratio(ours["memory"]["hwm_kib"], theirs["memory"]["hwm_kib"]),
        "wire_bytes": _ratio(ours["body"]["wire_bytes"], theirs["body"]["wire_bytes"]),
        "plain_bytes": _ratio(ours["body"]["plain_bytes"], theirs["body"]["plain_bytes"]),
        "samples": _ratio(ours["samples"], theirs["samples"]),
    }
    rss_mib = ours["memory"]["rss_kib"] / 1024

    def mark(value: float | None, limit: float) -> dict[str, Any]:
        status = "n/a" if value is None else ("PASS" if value <= limit else "MISS")
        return {"value": value, "limit": limit, "status": status}

    return {
        "ratios": ratios,
        "targets": {
            "p50_ratio": mark(ratios["p50"], targets.max_p50_ratio),
            "cpu_ratio": mark(ratios["cpu"], targets.max_cpu_ratio),
            "our_rss_mib": mark(rss_mib, targets.max_our_rss_mib),
        },
    }


# --------------------------------------------------------------------------- output


def write_json(doc: Mapping[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{doc['scenario']}-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2, allow_nan=False, default=_json_default) + "\n")
    return path


def _json_default(obj: object) -> object:
    raise TypeError(f"not JSON serialisable: {obj!r}")


def _fmt(value: float | None, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def render(doc: Mapping[str, Any]) -> str:
    ours: Mapping[str, Any] | None = doc.get("ours")
    theirs: Mapping[str, Any] = doc["theirs"]
    ratios: Mapping[str, float | None] = doc["comparison"]["ratios"]
    s = doc["settings"]
    lines = [
        f"{doc['title']}",
        (
            f"{s['scrapes']} scrapes each, alternating {' / '.join(s['order'])}, "
            f"{s['warmup']} warm-up, new connection per scrape, gzip; "
            f"{doc['host']['cpus']} CPUs, load {doc['host']['loadavg_before'][0]:.2f}, "
            + (f"quiet after {s['settle_seconds']}s" if s["settle_seconds"] is not None else "never quiet")
        ),
        "dataset: " + ", ".join(f"{k}={v}" for k, v in doc["dataset"].items()),
        "",
    ]

    def row(label: str, get: Callable[[Mapping[str, Any]], Any], spec: str, ratio: str = "") -> None:
        o = _fmt(get(ours), spec) if ours else "not run"
        t = _fmt(get(theirs), spec)
        r = _fmt(ratios.get(ratio), ".2f") if ratio and ours else ""
        lines.append(f"{label:<24}{o:>16}{t:>16}{r:>14}")

    o_name = ours["name"] if ours else "ours"
    lines.append(f"{'':<24}{o_name[:15]:>16}{theirs['name'][:15]:>16}{'ours/theirs':>14}")
    row("latency p50 (ms)", lambda d: d["latency_ms"]["p50"], ".2f", "p50")
    row("latency p95 (ms)", lambda d: d["latency_ms"]["p95"], ".2f", "p95")
    row("latency p99 (ms)", lambda d: d["latency_ms"]["p99"], ".2f", "p99")
    row("latency max (ms)", lambda d: d["latency_ms"]["max"], ".2f")
    row("CPU per scrape (ms)", lambda d: d["cpu"]["ms_per_scrape"], ".2f", "cpu")
    row("backend CPU/scrape (ms)", lambda d: d["backend_cpu"]["ms_per_scrape"], ".2f", "backend_cpu")
    row("RSS after run (MiB)", lambda d: d["memory"]["rss_kib"] / 1024, ".1f", "rss")
    row("peak RSS VmHWM (MiB)", lambda d: d["memory"]["hwm_kib"] / 1024, ".1f", "hwm")
    row("body on wire (bytes)", lambda d: d["body"]["wire_bytes"], "d", "wire_bytes")
    row("body plain (bytes)", lambda d: d["body"]["plain_bytes"], "d", "plain_bytes")
    row("samples exposed", lambda d: d["samples"], "d", "samples")
    row("metric families", lambda d: d["families"], "d")
    row("failed scrapes", lambda d: d["failed_scrapes"], "d")
    lines.append("")
    for d in ([ours] if ours else []) + [theirs]:
        enc = d["body"]["content_encoding"] or "identity"
        lines.append(f"{d['name']}: {d['body']['content_type']} ({enc}); {d['version']}")
    lines.append("")
    lines.append("targets")
    t = doc["comparison"]["targets"]
    for key, label, spec in (
        ("p50_ratio", "p50 ratio ours/theirs", ".2f"),
        ("cpu_ratio", "CPU ratio ours/theirs", ".2f"),
        ("our_rss_mib", "our RSS (MiB)", ".1f"),
    ):
        item = t[key]
        lines.append(f"  {label:<24}<= {item['limit']:<8g}{_fmt(item['value'], spec):>10}   {item['status']}")
    return "\n".join(lines)
