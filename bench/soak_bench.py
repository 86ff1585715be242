"""``python -m bench soak``: memory over many scrapes of Redis + PostgreSQL + an HTTP probe.

Backends: a redis-server with ``--keys`` keys, a private PostgreSQL 15 with a small
``bench`` database (20 tables, pg_stat_statements) and a tiny static HTTP server
(``python -m http.server``). Ours: one exporter configured with one ``redis``, one
``postgres`` and one ``http_probes`` target, scraped on ``/metrics``. Theirs: the same work
split over the three reference exporters as people run them: redis_exporter (``/metrics``),
postgres_exporter (``/metrics``, default collectors) and blackbox_exporter
(``/probe?module=http_2xx&target=...``).

A round is one scrape of ours and one of each reference exporter, in an order that flips
every round. ``--scrapes`` rounds (10,000) run in batches of ``--every`` (1,000), each batch
split over ``--workers`` (4) threads scraping at once, so that the 2 CPUs stay busy (one
at a time, 10,000 rounds take about 3.5 min; with 4, about 3). After the warm-up and after each batch the RSS of every
exporter is read: the table shows that series (ours, theirs = the sum of the three), and the
growth from the first checkpoint after a batch to the last one. Each scrape is a fresh
connection with Prometheus's headers; the body is read to the end but not decompressed.

Options: ``--scrapes 10000``, ``--every 1000``, ``--workers 4``, ``--warmup 20``, ``--keys 10000``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.harness import BenchEnv, BenchError, log, memory_kib, process_cpu_seconds
from bench.scale import (
    Row,
    arg_parser,
    fetch,
    http_request,
    make_bench_db,
    pid,
    report,
    start_blackbox_exporter,
    start_http_server,
    start_ours,
    start_postgres,
    start_postgres_exporter,
    start_redis,
    start_redis_exporter,
    table,
)
from peers.process import Process

NAME = "soak"
CONFIG = """\
redis:
  - name: cache
    url: redis://127.0.0.1:{redis}/0
postgres:
  - name: db
    dsn: postgresql://postgres@127.0.0.1:{pg}/bench
http_probes:
  - name: web
    url: http://127.0.0.1:{http}/health
"""


@dataclass
class Exporter:
    name: str
    role: str  # "ours" | "theirs"
    proc: Process
    port: int
    path: str
    scrapes: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rss_kib: list[int] = field(default_factory=list)  # after the warm-up, then after each batch
    cpu_start: float = 0.0
    cpu_s: float = 0.0  # over the measured rounds
    hwm_kib: int = 0

    def scrape_once(self, request: bytes) -> None:
        t0 = time.perf_counter()
        try:
            status = fetch(self.port, request)
        except OSError as err:
            self.failures.append(f"{type(err).__name__}: {err}")
            return
        finally:
            self.seconds += time.perf_counter() - t0
            self.scrapes += 1
        if status != 200:
            self.failures.append(f"HTTP {status}")


def _rounds(exporters: Sequence[Exporter], count: int, first: int) -> None:
    """``count`` rounds; the order flips every round (round numbers start at ``first``)."""
    requests = [(e, _request_for(e)) for e in exporters]
    for r in range(first, first + count):
        for exporter, request in requests if r % 2 == 0 else reversed(requests):
            exporter.scrape_once(request)


def _request_for(e: Exporter) -> bytes:
    return http_request(e.port, e.path)


def _batch(exporters: Sequence[Exporter], rounds: int, workers: int, first: int) -> None:
    """``rounds`` rounds split over ``workers`` threads, each counting into its own copies."""
    per = [rounds // workers + (1 if i < rounds % workers else 0) for i in range(workers)]
    threads = []
    for i, n in enumerate(per):
        # One private Exporter copy per thread, merged after, so no counter is shared.
        copies = [Exporter(e.name, e.role, e.proc, e.port, e.path) for e in exporters]
        t = threading.Thread(target=_rounds, args=(copies, n, first + sum(per[:i])), daemon=True)
        threads.append((t, copies))
        t.start()
    for t, copies in threads:
        t.join()
        for e, c in zip(exporters, copies, strict=True):
            e.scrapes += c.scrapes
            e.failures += c.failures
            e.seconds += c.seconds
    for e in exporters:
        e.proc.check_running()


def _start(env: BenchEnv, keys: int) -> list[Exporter]:
    redis_port, pg_port, http_port = env.free_port(), env.free_port(), env.free_port()
    start_redis(env, "redis", redis_port, keys=keys)
    start_postgres(env, pg_port)
    make_bench_db(pg_port)
    start_http_server(env, http_port)
    ports = [env.free_port() for _ in range(4)]
    ours = start_ours(env, "ours", CONFIG.format(redis=redis_port, pg=pg_port, http=http_port), ports[0])
    redis_e = start_redis_exporter(env, "redis_exporter", ports[1], f"redis://127.0.0.1:{redis_port}")
    dsn = f"postgresql://postgres@127.0.0.1:{pg_port}/bench?sslmode=disable"
    pg_e = start_postgres_exporter(env, "postgres_exporter", ports[2], dsn)
    bb_e = start_blackbox_exporter(env, "blackbox_exporter", ports[3])
    probe = f"/probe?module=http_2xx&target=http://127.0.0.1:{http_port}/health"
    return [
        Exporter("stack-exporter", "ours", ours, ports[0], "/metrics"),
        Exporter("redis_exporter", "theirs", redis_e, ports[1], "/metrics"),
        Exporter("postgres_exporter", "theirs", pg_e, ports[2], "/metrics"),
        Exporter("blackbox_exporter", "theirs", bb_e, ports[3], probe),
    ]


def _growth(series: Sequence[int]) -> float | None:
    """MiB from the first checkpoint after a batch to the last one."""
    return (series[-1] - series[1]) / 1024 if len(series) > 2 else None


def _render(exporters: Sequence[Exporter], checkpoints: Sequence[int], workers: int) -> str:
    ours = exporters[0]
    theirs = exporters[1:]
    summed = [sum(e.rss_kib[i] for e in theirs) for i in range(len(checkpoints))]
    rows: list[Row | str] = ["RSS (MiB) after N scrapes (0 = after the warm-up)"]
    for i, n in enumerate(checkpoints):
        rows.append(Row(f"  {n:>6}", ours.rss_kib[i] / 1024, summed[i] / 1024, ".1f"))
    rows.append(Row(f"  growth {checkpoints[1]} -> {checkpoints[-1]}", _growth(ours.rss_kib), _growth(summed), ".2f"))
    done = ours.scrapes
    rows += [
        "per round (ours: one scrape; theirs: one scrape of each of the three)",
        Row(
            f"  wall time (ms, {workers} at once)",
            ours.seconds * 1000 / done,
            sum(e.seconds for e in theirs) * 1000 / done,
        ),
        Row("  exporter CPU (ms)", ours.cpu_s * 1000 / done, sum(e.cpu_s for e in theirs) * 1000 / done),
        Row("  failed scrapes", len(ours.failures), sum(len(e.failures) for e in theirs), "d"),
        "",
        "each reference exporter, RSS (MiB) at " + ", ".join(str(n) for n in checkpoints),
    ]
    lines = table(rows, theirs="3 reference").splitlines()
    for e in theirs:
        series = " ".join(f"{kib / 1024:.1f}" for kib in e.rss_kib)
        g = _growth(e.rss_kib)
        lines.append(f"  {e.name:<20}{series}  (growth {g:+.2f})" if g is not None else f"  {e.name:<20}{series}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = arg_parser(NAME, "Redis + PostgreSQL + HTTP probe, many scrapes: RSS every --every scrapes.")
    p.add_argument("--scrapes", type=int, default=10_000, help="rounds: scrapes per side (default 10000)")
    p.add_argument("--every", type=int, default=1_000, help="RSS checkpoint every N rounds (default 1000)")
    p.add_argument("--workers", type=int, default=4, help="threads scraping at once (default 4)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured rounds first (default 20)")
    p.add_argument("--keys", type=int, default=10_000, help="keys in the redis-server (default 10000)")
    args = p.parse_args(argv)
    if not 1 <= args.every <= args.scrapes <= 1_000_000 or not 1 <= args.workers <= 64:
        p.error("need 1 <= --every <= --scrapes <= 1000000 and --workers 1..64")
    started = time.monotonic()
    with BenchEnv(NAME, {}, args.keep_workdir) as env:
        log(f"soak: workdir {env.workdir}")
        exporters = _start(env, args.keys)
        _rounds(exporters, args.warmup, 0)
        if any(e.failures for e in exporters):
            bad = next(e for e in exporters if e.failures)
            raise BenchError(f"{bad.name}: failed during warm-up: {bad.failures[0]}")
        for e in exporters:
            e.scrapes, e.seconds = 0, 0.0
            e.rss_kib.append(memory_kib(pid(e.proc))[0])
            e.cpu_start = process_cpu_seconds(pid(e.proc))
        checkpoints = [0]
        t0 = time.monotonic()
        while checkpoints[-1] < args.scrapes:
            n = min(args.every, args.scrapes - checkpoints[-1])
            _batch(exporters, n, args.workers, checkpoints[-1])
            checkpoints.append(checkpoints[-1] + n)
            for e in exporters:
                e.rss_kib.append(memory_kib(pid(e.proc))[0])
            log(f"soak: {checkpoints[-1]} rounds, {time.monotonic() - t0:.0f}s")
        loop_s = time.monotonic() - t0
        for e in exporters:
            e.cpu_s = process_cpu_seconds(pid(e.proc)) - e.cpu_start
            e.hwm_kib = memory_kib(pid(e.proc))[1]
    doc: dict[str, Any] = {
        "settings": {
            "scrapes": args.scrapes,
            "every": args.every,
            "workers": args.workers,
            "warmup": args.warmup,
            "keys": args.keys,
            "measured_seconds": round(loop_s, 1),
            "seconds": round(time.monotonic() - started, 1),
        },
        "checkpoints": checkpoints,
        "exporters": [
            {
                "name": e.name,
                "role": e.role,
                "path": e.path,
                "scrapes": e.scrapes,
                "failed": len(e.failures),
                "errors": e.failures[:10],
                "ms_per_scrape": e.seconds * 1000 / e.scrapes if e.scrapes else None,
                "cpu_ms_per_scrape": e.cpu_s * 1000 / e.scrapes if e.scrapes else None,
                "rss_kib": e.rss_kib,
                "hwm_kib": e.hwm_kib,
            }
            for e in exporters
        ],
    }
    title = (
        f"Soak: {args.scrapes} rounds (ours: Redis + PostgreSQL + HTTP probe in one exporter; theirs: "
        f"redis_exporter + postgres_exporter + blackbox_exporter), {args.workers} scraping at once, "
        f"{loop_s:.0f}s measured"
    )
    report(NAME, title, _render(exporters, checkpoints, args.workers), doc, args.results_dir)
    return 2 if any(e.failures for e in exporters) else 0
