"""``python -m bench startup``: spawn to first complete answer, and idle RSS.

One private redis-server (empty) and one private PostgreSQL 15 (as ``bench tables`` starts
it) serve three exporters, each started ``--spawns`` times:

- ``stack-exporter`` with one Redis and one PostgreSQL target; complete means a ``/metrics``
  answer 200 with ``redis_up 1`` and ``pg_up 1`` in it;
- ``redis_exporter`` (Debian's 1.45) on the same Redis: 200 with ``redis_up 1``;
- ``postgres_exporter`` (Debian's 0.11.1, default collectors) on the same PostgreSQL:
  200 with ``pg_up 1``.

A round starts them one after another (ours first in even rounds, last in odd ones). For
each: the time from just before the fork to the end of that answer's body, polling
``/metrics`` every 5 ms on a new connection (Prometheus's scrape headers), and the time
to the first HTTP answer of any status (listening). Then all three idle for ``--idle``
seconds and their ``VmRSS`` (with any children) is read; then they are stopped. Medians over the rounds are printed with
redis_exporter + postgres_exporter summed beside them, since ours replaces both.

Goals (issue 16): ours first complete answer under 200 ms, idle RSS under 40 MiB.
Writes ``bench/results/startup-<UTC stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import BenchEnv, BenchError, log, memory_kib, scrape, write_json
from bench.scale import start_postgres, start_redis
from bench.tables_bench import REFERENCE as POSTGRES_EXPORTER
from bench.tables_bench import RESULTS_DIR
from peers.process import STACK_EXPORTER, Process

REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
GOAL_FIRST_ANSWER_MS = 200.0
GOAL_IDLE_RSS_MIB = 40.0
POLL_S = 0.005
TIMEOUT_S = 20.0

CONFIG = """\
redis:
  - name: bench
    url: redis://127.0.0.1:{redis_port}/0
postgres:
  - name: bench
    dsn: postgresql://postgres@127.0.0.1:{pg_port}/postgres
"""


def _up_re(name: str) -> re.Pattern[bytes]:
    """``<name> 1`` or ``<name>{labels} 1`` (1 or 1.0) on a line of its own."""
    return re.compile(rb"^" + name.encode() + rb"(\{[^}\n]*\})? 1(\.0)?$", re.MULTILINE)


@dataclass
class Exporter:
    key: str
    name: str
    argv: list[str]
    port: int
    needs: tuple[re.Pattern[bytes], ...]
    env: dict[str, str] = field(default_factory=dict)
    first_answer_ms: list[float] = field(default_factory=list)
    listening_ms: list[float] = field(default_factory=list)
    idle_rss_kib: list[int] = field(default_factory=list)

    def start(self, env: BenchEnv, round_no: int) -> Process:
        """Spawn and wait for the first complete answer; records both times."""
        t0 = time.perf_counter()
        proc = env.spawn(f"{self.key}-{round_no}", self.argv, env=self.env)
        listening: float | None = None
        while True:
            now = time.perf_counter()
            if now - t0 > TIMEOUT_S:
                raise BenchError(f"{self.name}: no complete /metrics answer after {TIMEOUT_S:.0f}s")
            try:
                res = scrape(self.port, "/metrics")
            except (OSError, http.client.HTTPException):
                proc.check_running()
                time.sleep(POLL_S)
                continue
            end = time.perf_counter()
            if listening is None:
                listening = end - t0
            if res.status == 200 and all(p.search(res.body) for p in self.needs):
                self.first_answer_ms.append((end - t0) * 1000)
                self.listening_ms.append(listening * 1000)
                return proc
            time.sleep(POLL_S)


def _exporters(env: BenchEnv, redis_port: int, pg_port: int) -> list[Exporter]:
    config = env.workdir / "stack-exporter.yml"
    config.write_text(CONFIG.format(redis_port=redis_port, pg_port=pg_port))
    ours, theirs_redis, theirs_pg = env.free_port(), env.free_port(), env.free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres?sslmode=disable"
    return [
        Exporter(
            key="ours",
            name="stack-exporter",
            argv=[
                str(STACK_EXPORTER),
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{ours}",
                "--log.level",
                "warn",
            ],
            port=ours,
            needs=(_up_re("redis_up"), _up_re("pg_up")),
        ),
        Exporter(
            key="redis_exporter",
            name="redis_exporter",
            argv=[
                REDIS_EXPORTER,
                "--redis.addr",
                f"redis://127.0.0.1:{redis_port}",
                "--web.listen-address",
                f"127.0.0.1:{theirs_redis}",
            ],
            port=theirs_redis,
            needs=(_up_re("redis_up"),),
        ),
        Exporter(
            key="postgres_exporter",
            name="postgres_exporter",
            argv=[POSTGRES_EXPORTER, "--web.listen-address", f"127.0.0.1:{theirs_pg}", "--log.level", "warn"],
            port=theirs_pg,
            needs=(_up_re("pg_up"),),
            env={"DATA_SOURCE_NAME": dsn},
        ),
    ]


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _verdict(value: float | None, limit: float) -> dict[str, Any]:
    status = "n/a" if value is None else ("PASS" if value < limit else "MISS")
    return {"value": value, "limit": limit, "status": status}


def summarise(sides: Sequence[Exporter]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sides:
        out[s.key] = {
            "name": s.name,
            "argv": s.argv,
            "first_answer_ms": _stats(s.first_answer_ms),
            "listening_ms": _stats(s.listening_ms),
            "idle_rss_mib": _stats([k / 1024 for k in s.idle_rss_kib]),
            "samples": {
                "first_answer_ms": [round(x, 2) for x in s.first_answer_ms],
                "listening_ms": [round(x, 2) for x in s.listening_ms],
                "idle_rss_kib": s.idle_rss_kib,
            },
        }
    theirs = [out["redis_exporter"], out["postgres_exporter"]]
    ours = out["ours"]
    summed: dict[str, float | None] = {}
    ratios: dict[str, float | None] = {}
    for metric in ("first_answer_ms", "listening_ms", "idle_rss_mib"):
        parts = [t[metric]["median"] for t in theirs]
        summed[metric] = None if None in parts else sum(p for p in parts if p is not None)
        o, t = ours[metric]["median"], summed[metric]
        ratios[metric] = o / t if o is not None and t else None
    out["theirs_sum"] = summed
    out["ours_over_theirs_sum"] = ratios
    out["goals"] = {
        "first_answer_ms": _verdict(ours["first_answer_ms"]["median"], GOAL_FIRST_ANSWER_MS),
        "idle_rss_mib": _verdict(ours["idle_rss_mib"]["median"], GOAL_IDLE_RSS_MIB),
    }
    return out


def render(doc: Mapping[str, Any]) -> str:
    r = doc["results"]
    s = doc["settings"]
    keys = ("ours", "redis_exporter", "postgres_exporter")
    lines = [
        "Start-up: stack-exporter (Redis + PostgreSQL) vs redis_exporter + postgres_exporter",
        f"{s['spawns']} spawns each, alternating order, poll every {POLL_S * 1000:.0f} ms, "
        f"RSS after {s['idle_seconds']:g}s idle; "
        f"{doc['host']['cpus']} CPUs, load {doc['host']['loadavg_before'][0]:.2f}",
        "medians (min-max)",
        "",
        f"{'':<26}" + "".join(f"{r[k]['name'][:17]:>20}" for k in keys) + f"{'theirs summed':>16}{'ours/sum':>10}",
    ]
    for metric, label in (
        ("first_answer_ms", "first complete answer (ms)"),
        ("listening_ms", "first HTTP answer (ms)"),
        ("idle_rss_mib", "idle RSS (MiB)"),
    ):
        cells = ""
        for k in keys:
            st = r[k][metric]
            cells += f"{_fmt(st['median']) + ' (' + _fmt(st['min'], '.0f') + '-' + _fmt(st['max'], '.0f') + ')':>20}"
        lines.append(
            f"{label:<26}{cells}{_fmt(r['theirs_sum'][metric]):>16}{_fmt(r['ours_over_theirs_sum'][metric], '.2f'):>10}"
        )
    lines += ["", "goals (issue 16)"]
    for key, label, unit in (
        ("first_answer_ms", "ours first complete answer", "ms"),
        ("idle_rss_mib", "ours idle RSS", "MiB"),
    ):
        g = r["goals"][key]
        lines.append(f"  {label:<30}< {g['limit']:g} {unit:<4}{_fmt(g['value']):>8}   {g['status']}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench startup",
        description="Spawn to first complete /metrics answer, and idle RSS: "
        "stack-exporter vs redis_exporter + postgres_exporter.",
    )
    p.add_argument("--spawns", type=int, default=10, help="starts per exporter (default 10)")
    p.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading RSS (default 3)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--keep-workdir", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.spawns <= 100 or not 0 <= args.idle <= 60:
        p.error("--spawns must be 1..100 and --idle 0..60")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t_run = time.monotonic()
    with BenchEnv("startup", {}, args.keep_workdir) as env:
        redis_port, pg_port = env.free_port(), env.free_port()
        sides = _exporters(env, redis_port, pg_port)
        for side in sides:
            env.require(side.argv[0], "apt-get install prometheus-redis-exporter prometheus-postgres-exporter")
        start_redis(env, "redis-server", redis_port)
        start_postgres(env, pg_port)
        loadavg_before = os.getloadavg()
        log(f"startup: {args.spawns} rounds of 3 starts, {args.idle:g}s idle each")
        for i in range(args.spawns):
            order = sides if i % 2 == 0 else sides[::-1]
            procs = [(side, side.start(env, i)) for side in order]
            time.sleep(args.idle)
            for side, proc in procs:
                proc.check_running()
                assert proc.pid is not None
                side.idle_rss_kib.append(memory_kib(proc.pid)[0])
            for _, proc in procs:
                proc.stop()
    doc: dict[str, Any] = {
        "scenario": "startup",
        "started": started.isoformat(timespec="seconds"),
        "run_seconds": round(time.monotonic() - t_run, 1),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": loadavg_before},
        "settings": {"spawns": args.spawns, "idle_seconds": args.idle, "poll_seconds": POLL_S},
        "results": summarise(sides),
    }
    print(render(doc))
    print(f"\nraw numbers: {write_json(doc, args.results_dir)}  (run took {doc['run_seconds']:.0f}s)\n", flush=True)
    return 0
