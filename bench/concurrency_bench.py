"""``python -m bench concurrency``: many scrapers at once against one exporter.

``--scrapers`` (50) threads scrape one exporter as fast as they can for a slice of time,
each scrape on a fresh connection with Prometheus's headers (gzip, OpenMetrics accepted;
the body is read to the end, not decompressed, so the client stays cheap). The sides take
turns in slices, ours/theirs/theirs/ours/... (ABBA, so a drift of the machine's load hits
both alike), ``--duration`` seconds per side in ``--slices`` slices. Per side:

- throughput: completed scrapes (HTTP 200) per second of slice,
- latency p50/p99 of the completed scrapes (from before connect to the last byte),
- the exporter's CPU per scrape (its ns per-process clock over the slices),
- backend commands per scrape: Redis ``calls`` summed over ``INFO commandstats`` (all
  commands), PostgreSQL ``calls`` summed over ``pg_stat_statements`` for the exporters' role (every
  statement, utility ones such as asyncpg's ``RESET ALL`` included); each minus what the
  reading itself adds (measured at the start), divided by the completed scrapes. Also
  measured before the slices over 20 scrapes one at a time: a figure below that under load
  means that concurrent scrapes shared collections.
  (``pg_stat_database.xact_commit`` is not used: backends flush it up to seconds late.)

Backends: a redis-server with ``--keys`` keys (ours: one ``redis`` target; redis_exporter on
it) and a private PostgreSQL 15 with 20 small tables (ours: one ``postgres`` target with its
default config; postgres_exporter with its default collectors). Both exporters connect as
``postgres``; the readings use another role, so they are not counted.

Options: ``--backends redis,postgres``, ``--scrapers 50``, ``--duration 20`` (seconds per side
per backend), ``--slices 4``, ``--keys 10000``. Default run: about 90 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.harness import BenchEnv, BenchError, log, memory_kib, percentile, process_cpu_seconds
from bench.scale import (
    Row,
    arg_parser,
    fetch,
    http_request,
    make_bench_db,
    pg_connect,
    pid,
    redis_command_calls,
    report,
    start_ours,
    start_postgres,
    start_postgres_exporter,
    start_redis,
    start_redis_exporter,
    table,
)
from peers.process import Process

NAME = "concurrency"
TIMEOUT_S = 10.0
SEQUENTIAL = 20  # scrapes one at a time per side, for the per-collection baseline
READER_ROLE = "bench_reader"  # the harness's own PostgreSQL role, left out of the counts


@dataclass
class Side:
    """One exporter's figures over all its slices."""

    name: str
    proc: Process
    port: int
    path: str = "/metrics"
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of its slices, until the last scrape ended
    cpu_s: float = 0.0
    commands: dict[str, float] = field(default_factory=dict)  # counter name -> delta
    sequential: dict[str, float] = field(default_factory=dict)  # per scrape, one at a time

    def summary(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies_s]
        done = len(ms)
        return {
            "name": self.name,
            "completed": done,
            "failed": len(self.failures),
            "errors": self.failures[:10],
            "seconds": round(self.seconds, 3),
            "scrapes_per_s": done / self.seconds if self.seconds else None,
            "p50_ms": percentile(ms, 50) if ms else None,
            "p99_ms": percentile(ms, 99) if ms else None,
            "max_ms": max(ms, default=None),
            "cpu_ms_per_scrape": self.cpu_s * 1000 / done if done else None,
            "hwm_mib": memory_kib(pid(self.proc))[1] / 1024,
            "commands": self.commands,
            "commands_per_scrape": {k: v / done if done else None for k, v in self.commands.items()},
            "commands_per_scrape_one_at_a_time": self.sequential,
        }


def _slice(side: Side, scrapers: int, seconds: float) -> None:
    """``scrapers`` threads scrape ``side`` back to back until ``seconds`` have passed."""
    request = http_request(side.port, side.path)
    latencies: list[float] = []
    failures: list[str] = []
    start = threading.Barrier(scrapers + 1)
    deadline = 0.0

    def worker() -> None:
        start.wait()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                status = fetch(side.port, request, TIMEOUT_S)
            except OSError as err:
                failures.append(f"{type(err).__name__}: {err}")
                continue
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                failures.append(f"HTTP {status}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(scrapers)]
    for t in threads:
        t.start()
    cpu0 = process_cpu_seconds(pid(side.proc))
    t0 = time.perf_counter()
    deadline = t0 + seconds
    start.wait()
    for t in threads:
        t.join(seconds + TIMEOUT_S + 5)
    side.seconds += time.perf_counter() - t0
    side.cpu_s += process_cpu_seconds(pid(side.proc)) - cpu0
    side.latencies_s += latencies
    side.failures += failures
    side.proc.check_running()


def _compare(
    ours: Side, theirs: Side, counters: Callable[[], dict[str, float]], args: Any, backend: str
) -> dict[str, Any]:
    """ABBA slices with the backend counters read around each; returns both summaries."""
    # What one reading adds to the counters (its own INFO or transaction), measured twice.
    a, b, c = counters(), counters(), counters()
    overhead = {k: min(b[k] - a[k], c[k] - b[k]) for k in a}
    for side in (ours, theirs):  # the baseline: what one scrape costs with nobody else scraping
        request = http_request(side.port, side.path)
        before = counters()
        for _ in range(SEQUENTIAL):
            if fetch(side.port, request, TIMEOUT_S) != 200:
                raise BenchError(f"{side.name}: a scrape failed before the slices")
        after = counters()
        side.sequential = {k: (after[k] - before[k] - overhead[k]) / SEQUENTIAL for k in before}
    per_slice = args.duration / args.slices
    log(f"concurrency: {backend}: {args.scrapers} scrapers, {args.slices} slices of {per_slice:.1f}s per side, ABBA")
    for i in range(args.slices * 2):
        side = (ours, theirs)[(i + i // 2) % 2]  # ours, theirs, theirs, ours, ours, theirs ...
        before = counters()
        _slice(side, args.scrapers, per_slice)
        after = counters()
        for k in before:
            side.commands[k] = side.commands.get(k, 0.0) + after[k] - before[k] - overhead[k]
    return {"ours": ours.summary(), "theirs": theirs.summary(), "reading_overhead": overhead}


def _redis(env: BenchEnv, args: Any) -> dict[str, Any]:
    port = env.free_port()
    start_redis(env, "redis", port, keys=args.keys)
    ours_port, theirs_port = env.free_port(), env.free_port()
    ours = start_ours(env, "ours-redis", f"redis:\n  - name: bench\n    url: redis://127.0.0.1:{port}/0\n", ours_port)
    theirs = start_redis_exporter(env, "theirs-redis", theirs_port, f"redis://127.0.0.1:{port}")
    result = _compare(
        Side("stack-exporter", ours, ours_port),
        Side("redis_exporter", theirs, theirs_port),
        lambda: {"redis_calls": float(redis_command_calls(port))},
        args,
        "redis",
    )
    ours.stop()
    theirs.stop()
    return result


def _postgres(env: BenchEnv, args: Any) -> dict[str, Any]:
    port = env.free_port()
    start_postgres(env, port)
    make_bench_db(port)
    with pg_connect(port) as conn:
        conn.execute(f"CREATE ROLE {READER_ROLE} SUPERUSER LOGIN")
    dsn = f"postgresql://postgres@127.0.0.1:{port}/bench"
    ours_port, theirs_port = env.free_port(), env.free_port()
    ours = start_ours(env, "ours-postgres", f"postgres:\n  - name: bench\n    dsn: {dsn}\n", ours_port)
    theirs = start_postgres_exporter(env, "theirs-postgres", theirs_port, f"{dsn}?sslmode=disable")
    reader = pg_connect(port, "bench")
    reader.execute(f"SET ROLE {READER_ROLE}")

    def counters() -> dict[str, float]:
        row = reader.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE userid = 'postgres'::regrole"
        ).fetchone()
        if row is None:
            raise BenchError("no row from pg_stat_statements")
        return {"pg_statements": float(row[0])}

    try:
        result = _compare(
            Side("stack-exporter", ours, ours_port),
            Side("postgres_exporter", theirs, theirs_port),
            counters,
            args,
            "postgres",
        )
    finally:
        reader.close()
    ours.stop()
    theirs.stop()
    return result


def _rows(backend: str, r: dict[str, Any]) -> list[Row | str]:
    o, t = r["ours"], r["theirs"]
    rows: list[Row | str] = [
        f"{backend}",
        Row("  throughput (scrapes/s)", o["scrapes_per_s"], t["scrapes_per_s"], ".1f"),
        Row("  latency p50 (ms)", o["p50_ms"], t["p50_ms"]),
        Row("  latency p99 (ms)", o["p99_ms"], t["p99_ms"]),
        Row("  CPU per scrape (ms)", o["cpu_ms_per_scrape"], t["cpu_ms_per_scrape"]),
        Row("  peak RSS VmHWM (MiB)", o["hwm_mib"], t["hwm_mib"], ".1f"),
    ]
    labels = {
        "redis_calls": "  Redis commands per scrape",
        "pg_statements": "  PG statements per scrape",
    }
    for key, label in labels.items():
        if key in o["commands_per_scrape"]:
            rows.append(Row(label, o["commands_per_scrape"][key], t["commands_per_scrape"][key]))
            one, two = o["commands_per_scrape_one_at_a_time"][key], t["commands_per_scrape_one_at_a_time"][key]
            rows.append(Row("    same, one scrape at a time", one, two))
    rows += [
        Row("  completed scrapes", o["completed"], t["completed"], "d"),
        Row("  failed scrapes", o["failed"], t["failed"], "d"),
    ]
    return rows


def main(argv: list[str]) -> int:
    p = arg_parser(NAME, "Many concurrent scrapers: throughput, p50/p99, backend commands per scrape.")
    p.add_argument("--backends", default="redis,postgres", help="comma-separated: redis, postgres")
    p.add_argument("--scrapers", type=int, default=50, help="concurrent scrapers (default 50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per side per backend (default 20)")
    p.add_argument("--slices", type=int, default=4, help="slices per side, alternating ABBA (default 4)")
    p.add_argument("--keys", type=int, default=10_000, help="keys in the redis-server (default 10000)")
    args = p.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    if not set(backends) <= {"redis", "postgres"} or not backends:
        p.error("--backends takes redis and/or postgres")
    if not 1 <= args.scrapers <= 500 or not 1 <= args.slices <= 100 or not 0 < args.duration <= 600:
        p.error("--scrapers 1..500, --slices 1..100, --duration 0..600")
    started = time.monotonic()
    results: dict[str, Any] = {}
    with BenchEnv(NAME, {}, args.keep_workdir) as env:
        log(f"concurrency: workdir {env.workdir}")
        for backend in backends:
            results[backend] = (_redis if backend == "redis" else _postgres)(env, args)
    doc = {
        "settings": {
            "backends": backends,
            "scrapers": args.scrapers,
            "duration_per_side_s": args.duration,
            "slices_per_side": args.slices,
            "order": "ABBA: ours, theirs, theirs, ours, ...",
            "keys": args.keys,
            "seconds": round(time.monotonic() - started, 1),
        },
        "results": results,
    }
    rows: list[Row | str] = []
    for backend, r in results.items():
        rows += _rows(f"{backend}: vs {r['theirs']['name']}", r)
    title = (
        f"Concurrency: {args.scrapers} scrapers, {args.duration:g}s per side per backend "
        f"in {args.slices} slices, ABBA, new connection per scrape"
    )
    report(NAME, title, table(rows, theirs="reference"), doc, args.results_dir)
    failed = any(r[s]["completed"] == 0 for r in results.values() for s in ("ours", "theirs"))
    return 2 if failed else 0
