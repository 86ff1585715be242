"""``python -m bench tables``: scrape cost as a PostgreSQL database grows from 10 to 10,000 tables.

One private PostgreSQL 15 (initdb as the postgres user, fsync and autovacuum off,
``pg_stat_statements`` preloaded with planning time tracked) holds one database, ``bench``,
that grows in steps: 10, 100, 1,000, then 10,000 tables (``t1 .. tN``, each with a primary
key; every tenth table gets 10-700 rows and an ANALYZE, so ``relpages`` differ). The tables
are made by one DO block per step that commits every 500 tables; the JSON records how long
each step took.

Three exporters stay up for the whole run, each logged in as its own role, so
``pg_stat_statements`` tells their statements apart (all are superusers, as in
``postgres_bench``):

- ``stack-exporter`` (role ``bench_ours``): its default config for one target
  (``tables_limit: 20``, statements top 50, database sizes).
- ``postgres_exporter`` (role ``bench_theirs``): Debian's 0.11.1 with its default collectors.
  These read no per-table view, so its cost barely moves with the table count.
- ``postgres_exporter+tables`` (role ``bench_theirs_tables``): the same binary plus the
  ``pg_stat_user_tables`` query of Debian's example ``queries.yaml``
  (``--extend.query-path``, read from /usr/share/doc at run time): every table of the
  database, every scrape. This is the like-for-like reference for table health.

At each size: 3 warm-up scrapes each, a settle (the server and the exporters quiet), then
alternating scrapes ours, theirs, theirs+tables ... until ``--scrapes`` each or
``--max-seconds`` (checked after each full round). Per exporter and size: latency p50/p95,
response size (wire and plain bytes, samples) of the last scrape, the server's CPU per
scrape (the whole postgres process tree's CPU clock read around each scrape and charged to
the exporter scraped, as the harness does) and ``pg_stat_statements`` time (execution +
planning) and calls per scrape for the exporter's role (reset before each size's loop).

Prints p50 at 10,000 tables over p50 at 10 for each exporter (issue 16's goal for ours:
at most 4x) and ours/theirs at each size (goal at 10,000 tables: at most 0.5x
postgres_exporter+tables). Writes ``bench/results/tables-<UTC stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.client
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.harness import (
    BenchEnv,
    count_exposition,
    cpu_seconds,
    http_ok,
    log,
    percentile,
    scrape,
    settle,
    write_json,
)
from bench.scale import pg_connect, start_postgres
from peers.process import STACK_EXPORTER, Process

REFERENCE = "/usr/bin/prometheus-postgres-exporter"
EXAMPLE_QUERIES = Path("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SIZES = (10, 100, 1_000, 10_000)
GOAL_GROWTH = 4.0  # p50 at 10,000 tables / p50 at 10, ours
GOAL_RATIO = 0.5  # ours / postgres_exporter+tables at 10,000 tables
COMMIT_EVERY = 500  # tables per transaction: one transaction would need 20k+ lock slots

# Settings every private cluster in bench/ starts with: no durability, statements tracked.

CONFIG = """\
postgres:
  - name: bench
    dsn: postgresql://{user}@127.0.0.1:{port}/bench
"""

STATEMENTS_BY_ROLE = """\
SELECT r.rolname, sum(s.calls)::bigint, sum(s.total_exec_time + s.total_plan_time)::float8
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid GROUP BY r.rolname"""
# The costliest statements of each role, for the JSON: where the server's time goes.
TOP_STATEMENTS = """\
SELECT r.rolname, s.calls, s.total_exec_time + s.total_plan_time, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160)
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
ORDER BY s.total_exec_time + s.total_plan_time DESC"""


# --------------------------------------------------------------------------- postgres


def grow_tables(port: int, first: int, last: int) -> float:
    """Create tables t<first> .. t<last> in ``bench``; returns the seconds it took."""
    t0 = time.monotonic()
    with pg_connect(port, "bench") as conn:
        # Only integers are interpolated. COMMIT inside DO needs autocommit (no outer transaction).
        conn.execute(f"""
DO $$
BEGIN
  FOR i IN {int(first)}..{int(last)} LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    IF i % 10 = 0 THEN
      EXECUTE format('INSERT INTO t%s SELECT g, repeat(''x'', 100) FROM generate_series(1, %s) g',
                     i, (i / 10 % 70 + 1) * 10);
      EXECUTE format('ANALYZE t%s', i);
    END IF;
    IF i % {COMMIT_EVERY} = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END $$""")  # noqa: S608 - only integers
    return time.monotonic() - t0


# --------------------------------------------------------------------------- exporters


@dataclass
class Exporter:
    """One exporter under test and what was measured for it at the current size."""

    key: str  # "ours" | "theirs" | "theirs_tables"
    name: str
    role: str  # PostgreSQL role it logs in as
    argv: list[str]
    port: int
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    proc: Process | None = None
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu_s: float = 0.0
    wire_bytes: int = 0
    plain_bytes: int = 0
    samples: int = 0
    content_type: str = ""

    def reset(self) -> None:
        self.latencies_s, self.errors, self.server_cpu_s = [], [], 0.0

    def scrape_once(self, record: bool, server_pid: int) -> None:
        assert self.proc is not None
        before = cpu_seconds(server_pid)
        try:
            res = scrape(self.port, "/metrics")
        except (OSError, http.client.HTTPException) as err:
            self.proc.check_running()
            if record:
                self.errors.append(f"{type(err).__name__}: {err}")
            return
        finally:
            if record:
                self.server_cpu_s += cpu_seconds(server_pid) - before
        if res.status != 200:
            if record:
                self.errors.append(f"HTTP {res.status}")
            return
        if record:
            self.latencies_s.append(res.seconds)
        self.wire_bytes, self.plain_bytes, self.content_type = res.wire_bytes, res.plain_bytes, res.content_type
        self.samples = count_exposition(res.body)[0]


def _exporters(env: BenchEnv, pg_port: int, reference: str) -> list[Exporter]:
    ours_port = env.free_port()
    config = env.workdir / "stack-exporter.yml"
    config.write_text(CONFIG.format(user="bench_ours", port=pg_port))
    out = [
        Exporter(
            key="ours",
            name="stack-exporter",
            role="bench_ours",
            argv=[
                str(STACK_EXPORTER),
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{ours_port}",
                "--log.level",
                "warn",
            ],
            port=ours_port,
            ready_path="/-/ready",
        )
    ]
    for key, name, role, extra in (
        ("theirs", "postgres_exporter", "bench_theirs", []),
        ("theirs_tables", "postgres_exporter+tables", "bench_theirs_tables", ["--extend.query-path", "QUERIES"]),
    ):
        if reference not in ("both", "defaults" if key == "theirs" else "tables"):
            continue
        if extra:
            # Only the pg_stat_user_tables entry of Debian's example file, taken as it is.
            example = yaml.safe_load(EXAMPLE_QUERIES.read_text())
            queries = env.workdir / "queries.yaml"
            queries.write_text(yaml.safe_dump({"pg_stat_user_tables": example["pg_stat_user_tables"]}))
            extra = [extra[0], str(queries)]
        port = env.free_port()
        dsn = f"postgresql://{role}@127.0.0.1:{pg_port}/bench?sslmode=disable&application_name={role}"
        out.append(
            Exporter(
                key=key,
                name=name,
                role=role,
                argv=[REFERENCE, "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn", *extra],
                port=port,
                ready_path="/",  # 0.11 has no readiness endpoint; its landing page answers once listening
                env={"DATA_SOURCE_NAME": dsn},
            )
        )
    return out


# --------------------------------------------------------------------------- one size


def _measure(
    sides: Sequence[Exporter], pg: Process, pg_port: int, scrapes: int, warmup: int, max_seconds: float
) -> dict[str, Any]:
    """Warm up, settle, reset pg_stat_statements, alternate scrapes; the figures per exporter."""
    assert pg.pid is not None
    for side in sides:
        side.reset()
    for _ in range(warmup):
        for side in sides:
            side.scrape_once(record=False, server_pid=pg.pid)
    settle_s = settle([pg.pid, *(s.proc.pid for s in sides if s.proc and s.proc.pid)], timeout=15)
    with pg_connect(pg_port) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    t0 = time.monotonic()
    rounds = 0
    while rounds < scrapes and time.monotonic() - t0 < max_seconds:
        for side in sides:
            side.scrape_once(record=True, server_pid=pg.pid)
        rounds += 1
    wall = time.monotonic() - t0
    with pg_connect(pg_port) as conn:
        by_role = {r[0]: (r[1], r[2]) for r in conn.execute(STATEMENTS_BY_ROLE).fetchall()}
        top = conn.execute(TOP_STATEMENTS).fetchall()
    out: dict[str, Any] = {"rounds": rounds, "loop_seconds": round(wall, 2), "settle_seconds": settle_s}
    for side in sides:
        ms = [s * 1000 for s in side.latencies_s]
        n = len(side.latencies_s) + len(side.errors)
        calls, stmt_ms = by_role.get(side.role, (0, 0.0))
        out[side.key] = {
            "name": side.name,
            "scrapes": n,
            "failed_scrapes": len(side.errors),
            "errors": side.errors[:10],
            "p50_ms": percentile(ms, 50) if ms else None,
            "p95_ms": percentile(ms, 95) if ms else None,
            "wire_bytes": side.wire_bytes,
            "plain_bytes": side.plain_bytes,
            "samples": side.samples,
            "content_type": side.content_type,
            "server_cpu_ms_per_scrape": side.server_cpu_s * 1000 / n if n else None,
            "statements_ms_per_scrape": stmt_ms / n if n else None,
            "statement_calls_per_scrape": calls / n if n else None,
            "top_statements": [
                {"calls": c, "ms_per_call": round(t / c, 3) if c else None, "query": q}
                for role, c, t, q in top
                if role == side.role
            ][:5],
            "latencies_ms": [round(x, 3) for x in ms],
        }
    return out


# --------------------------------------------------------------------------- report


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _verdict(value: float | None, limit: float) -> dict[str, Any]:
    return {
        "value": value,
        "limit": limit,
        "status": "n/a" if value is None else ("PASS" if value <= limit else "MISS"),
    }


def compare(doc: Mapping[str, Any]) -> dict[str, Any]:
    sizes: list[dict[str, Any]] = doc["sizes"]
    keys = [k for k in ("ours", "theirs", "theirs_tables") if k in sizes[0]]
    small, big = sizes[0], sizes[-1]
    growth = {k: _ratio(big[k]["p50_ms"], small[k]["p50_ms"]) for k in keys}
    per_size = []
    for s in sizes:
        row: dict[str, Any] = {"tables": s["tables"]}
        for ref in keys[1:]:
            for metric in ("p50_ms", "server_cpu_ms_per_scrape", "statements_ms_per_scrape", "plain_bytes"):
                row[f"{metric}/{ref}"] = _ratio(s["ours"][metric], s[ref][metric])
        per_size.append(row)
    goals = {
        "ours_over_theirs_p50_at_largest": _verdict(per_size[-1].get("p50_ms/theirs"), GOAL_RATIO),
        "ours_growth_p50": _verdict(growth.get("ours"), GOAL_GROWTH),
        "ours_over_theirs_tables_p50_at_largest": _verdict(per_size[-1].get("p50_ms/theirs_tables"), GOAL_RATIO),
    }
    return {"p50_growth": growth, "per_size": per_size, "goals": goals}


def render(doc: Mapping[str, Any]) -> str:
    sizes: list[dict[str, Any]] = doc["sizes"]
    cmp = doc["comparison"]
    keys = [k for k in ("ours", "theirs", "theirs_tables") if k in sizes[0]]
    lines = [
        "PostgreSQL tables: stack-exporter vs prometheus-postgres-exporter as one database grows",
        f"{doc['host']['cpus']} CPUs, load {doc['host']['loadavg_before'][0]:.2f}, alternating "
        f"{' / '.join(keys)}, new connection per scrape, gzip; server CPU = postgres tree around each scrape; "
        "pgss = pg_stat_statements exec+plan time of the exporter's role",
        "",
        f"{'tables':>7} {'exporter':<26}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'bytes':>10}{'samples':>9}"
        f"{'srv CPU ms':>11}{'pgss ms':>9}{'stmts':>7}",
    ]
    for s in sizes:
        for k in keys:
            d = s[k]
            lines.append(
                f"{s['tables']:>7} {d['name']:<26}{d['scrapes']:>5}{_fmt(d['p50_ms']):>9}{_fmt(d['p95_ms']):>9}"
                f"{d['plain_bytes']:>10}{d['samples']:>9}{_fmt(d['server_cpu_ms_per_scrape']):>11}"
                f"{_fmt(d['statements_ms_per_scrape']):>9}{_fmt(d['statement_calls_per_scrape'], '.1f'):>7}"
            )
    lines += ["", f"{'ours/theirs':<40}" + "".join(f"{s['tables']:>10}" for s in sizes)]
    for ref in keys[1:]:
        name = sizes[0][ref]["name"]
        for metric, label in (("p50_ms", "p50"), ("server_cpu_ms_per_scrape", "srv CPU"), ("plain_bytes", "bytes")):
            cells = "".join(f"{_fmt(row.get(f'{metric}/{ref}')):>10}" for row in cmp["per_size"])
            lines.append(f"  {label + ' vs ' + name:<38}{cells}")
    lines += ["", f"p50 at {sizes[-1]['tables']:,} tables / p50 at {sizes[0]['tables']:,}:"]
    for k in keys:
        lines.append(f"  {sizes[0][k]['name']:<32}{_fmt(cmp['p50_growth'][k]):>10}x")
    lines += ["", "goals (issue 16)"]
    g = cmp["goals"]
    for key, label in (
        ("ours_growth_p50", f"ours p50 {sizes[-1]['tables']:,} / {sizes[0]['tables']:,} tables"),
        ("ours_over_theirs_p50_at_largest", f"ours/postgres_exporter p50 at {sizes[-1]['tables']:,}"),
        ("ours_over_theirs_tables_p50_at_largest", f"ours/postgres_exporter+tables p50 at {sizes[-1]['tables']:,}"),
    ):
        item = g[key]
        lines.append(f"  {label:<46}<= {item['limit']:<6g}{_fmt(item['value']):>8}   {item['status']}")
    lines.append(f"  creating the tables took {doc['dataset']['create_seconds_total']:.1f}s in all")
    failed = [
        f"{s['tables']} tables: {s[k]['name']} {s[k]['failed_scrapes']}"
        for s in sizes
        for k in keys
        if s[k]["failed_scrapes"]
    ]
    lines.append("failed scrapes: " + ("; ".join(failed) + " (errors in the JSON)" if failed else "none"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated table counts, got {text!r}") from None
    if len(sizes) < 2 or sizes[0] < 1 or sizes[-1] > 50_000:
        raise argparse.ArgumentTypeError("need at least two table counts between 1 and 50000")
    return sizes


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench tables",
        description="Scrape cost as one PostgreSQL database grows from 10 to 10,000 tables, against postgres_exporter.",
    )
    p.add_argument(
        "--sizes", type=_sizes, default=list(SIZES), help="table counts, comma-separated (default 10,100,1000,10000)"
    )
    p.add_argument("--scrapes", type=int, default=100, help="scrapes per exporter and size (default 100)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured scrapes per exporter and size")
    p.add_argument("--max-seconds", type=float, default=40.0, help="cap on each size's measured loop (default 40)")
    p.add_argument(
        "--reference",
        choices=("both", "defaults", "tables"),
        default="both",
        help="postgres_exporter with its defaults, with the pg_stat_user_tables query, or both (default)",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--keep-workdir", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.scrapes <= 10_000 or not 0 <= args.warmup <= 100:
        p.error("--scrapes must be 1..10000 and --warmup 0..100")
    return args


def main(argv: list[str]) -> int:
    """Long (about 60 lines) because it is the run read top to bottom: start, then per size
    grow the database and measure, then report."""
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t_run = time.monotonic()
    env_options = {"sizes": ",".join(map(str, args.sizes)), "reference": args.reference}
    with BenchEnv("tables", env_options, args.keep_workdir) as env:
        pg_port = env.free_port()
        sides = _exporters(env, pg_port, args.reference)
        for side in sides:
            env.require(side.argv[0], "apt-get install prometheus-postgres-exporter" if side.key != "ours" else "")
        pg = start_postgres(env, pg_port, ["autovacuum=off", "pg_stat_statements.track_planning=on"])
        with pg_connect(pg_port) as conn:
            conn.execute("CREATE DATABASE bench")
            for side in sides:
                conn.execute(f'CREATE ROLE "{side.role}" LOGIN SUPERUSER')
            version = conn.execute("SHOW server_version").fetchone()
        with pg_connect(pg_port, "bench") as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        for side in sides:
            side.proc = env.spawn(side.key, side.argv, env=side.env)
        for side in sides:
            assert side.proc is not None
            check = functools.partial(http_ok, side.port, side.ready_path)
            env.wait_until(f"{side.name} on {side.ready_path}", check, timeout=60, alive=[side.proc])
        loadavg_before = os.getloadavg()
        results: list[dict[str, Any]] = []
        created = 0
        create_s: dict[str, float] = {}
        for size in args.sizes:
            create_s[str(size)] = round(grow_tables(pg_port, created + 1, size), 2)
            created = size
            log(f"tables: {size} tables (created in {create_s[str(size)]:.1f}s); measuring")
            res = _measure(sides, pg, pg_port, args.scrapes, args.warmup, args.max_seconds)
            results.append({"tables": size, "create_seconds": create_s[str(size)], **res})
            log(f"tables: {size}: {res['rounds']} rounds in {res['loop_seconds']}s")
        for side in sides:
            assert side.proc is not None
            side.proc.check_running()
    doc: dict[str, Any] = {
        "scenario": "tables",
        "started": started.isoformat(timespec="seconds"),
        "run_seconds": round(time.monotonic() - t_run, 1),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": loadavg_before},
        "settings": {
            "scrapes": args.scrapes,
            "warmup": args.warmup,
            "max_seconds": args.max_seconds,
            "reference": args.reference,
            "exporters": [{"key": s.key, "name": s.name, "role": s.role, "argv": s.argv} for s in sides],
        },
        "dataset": {
            "postgres_version": version[0] if version else "?",
            "create_seconds": create_s,
            "create_seconds_total": round(sum(create_s.values()), 1),
        },
        "sizes": results,
    }
    doc["comparison"] = compare(doc)
    print(render(doc))
    print(f"\nraw numbers: {write_json(doc, args.results_dir)}  (run took {doc['run_seconds']:.0f}s)\n", flush=True)
    return 2 if any(s[k]["failed_scrapes"] for s in results for k in s if isinstance(s[k], dict)) else 0
