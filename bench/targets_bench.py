"""``python -m bench targets``: cost per round as the number of Redis targets grows.

Starts the largest size's worth of redis-servers (``--save "" --appendonly no``, each with
``--keys`` small keys), then for each size N (default 1, 10, 50, 100) a fresh stack-exporter
configured with the first N instances and a fresh redis_exporter without a default target
(``--redis.addr=``, multi-target mode). A round collects all N targets three ways:

- ours, all at once: one ``GET /metrics``;
- ours, one by one: ``GET /probe?target=rNNN`` for each;
- theirs, one by one: ``GET /scrape?target=redis://127.0.0.1:P`` for each (redis_exporter
  has no all-at-once mode).

Within a round the one-by-one requests alternate ours/theirs per target, and which side goes
first flips every round (``/metrics`` runs first or last with ours). Per round: wall time
(sum of the request times), the exporter's CPU (its ns per-process clock read around every
request) and its RSS after the round. The table shows the median round per size and the
growth per added target: (value at the largest size - value at the smallest) / (difference
in targets).

Options: ``--sizes 1,10,50,100``, ``--rounds 30`` (measured, per size), ``--warmup 1``,
``--keys 200`` (per instance).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.harness import BenchEnv, BenchError, count_exposition, log, memory_kib, process_cpu_seconds, scrape
from bench.scale import (
    Row,
    arg_parser,
    int_list,
    median,
    pid,
    report,
    slope,
    start_ours,
    start_redis,
    start_redis_exporter,
    table,
)
from peers.process import Process

NAME = "targets"
# Our three ways of collecting one round; "theirs" is redis_exporter's /scrape one by one.
KINDS = ("ours_metrics", "ours_probe", "theirs_scrape")


@dataclass
class Tally:
    """One kind of collection within one round."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    samples: int = 0
    up: int = 0  # targets reported as up (ours: collector_success 1; theirs: redis_up 1)


def _up(body: bytes) -> int:
    up = 0
    for line in body.decode("utf-8", errors="replace").splitlines():
        name, _, value = line.rpartition(" ")
        if value in ("1", "1.0") and (
            name.startswith('stack_exporter_collector_success{collector="redis"') or name == "redis_up"
        ):
            up += 1
    return up


def _measure(proc: Process, port: int, path: str, tally: Tally, count: bool) -> None:
    before = process_cpu_seconds(pid(proc))
    try:
        res = scrape(port, path)
    except (OSError, http.client.HTTPException) as err:
        proc.check_running()
        tally.failures.append(f"{path}: {type(err).__name__}: {err}")
        return
    finally:
        tally.cpu_s += process_cpu_seconds(pid(proc)) - before
    tally.seconds += res.seconds
    tally.requests += 1
    if res.status != 200:
        tally.failures.append(f"{path}: HTTP {res.status}")
    elif count:
        tally.samples += count_exposition(res.body)[0]
        tally.up += _up(res.body)


def _round(
    n: int, ours: tuple[Process, int], theirs: tuple[Process, int], redis_ports: Sequence[int], flip: bool, count: bool
) -> dict[str, Tally]:
    tallies = {k: Tally() for k in KINDS}
    if not flip:
        _measure(*ours, "/metrics", tallies["ours_metrics"], count)
    for i, port in enumerate(redis_ports[:n]):
        pair = [
            (ours, f"/probe?target=r{i:03d}", tallies["ours_probe"]),
            (theirs, f"/scrape?target=redis://127.0.0.1:{port}", tallies["theirs_scrape"]),
        ]
        for (proc, exporter_port), path, tally in reversed(pair) if flip else pair:
            _measure(proc, exporter_port, path, tally, count)
    if flip:
        _measure(*ours, "/metrics", tallies["ours_metrics"], count)
    return tallies


def _config(redis_ports: Sequence[int]) -> str:
    lines = ["redis:"]
    for i, port in enumerate(redis_ports):
        lines += [f"  - name: r{i:03d}", f"    url: redis://127.0.0.1:{port}/0"]
    return "\n".join(lines) + "\n"


def _size(env: BenchEnv, n: int, redis_ports: Sequence[int], rounds: int, warmup: int) -> dict[str, Any]:
    """Fresh exporters for N targets, warm-up and measured rounds, then stop them."""
    ours_port, theirs_port = env.free_port(), env.free_port()
    ours = start_ours(env, f"ours-{n}", _config(redis_ports[:n]), ours_port)
    theirs = start_redis_exporter(env, f"theirs-{n}", theirs_port)
    try:
        for w in range(warmup):
            _round(n, (ours, ours_port), (theirs, theirs_port), redis_ports, flip=w % 2 == 1, count=False)
        per_round: list[dict[str, Any]] = []
        t0 = time.monotonic()
        for r in range(rounds):
            last = r == rounds - 1
            tallies = _round(n, (ours, ours_port), (theirs, theirs_port), redis_ports, flip=r % 2 == 1, count=last)
            per_round.append(
                {
                    **{k: {"ms": t.seconds * 1000, "cpu_ms": t.cpu_s * 1000} for k, t in tallies.items()},
                    "ours_rss_kib": memory_kib(pid(ours))[0],
                    "theirs_rss_kib": memory_kib(pid(theirs))[0],
                }
            )
            failures = [f for t in tallies.values() for f in t.failures]
            if failures:
                raise BenchError(f"{n} targets, round {r}: {len(failures)} failed requests, e.g. {failures[0]}")
        loop_s = time.monotonic() - t0
        ours_hwm, theirs_hwm = memory_kib(pid(ours))[1], memory_kib(pid(theirs))[1]
    finally:
        ours.stop()
        theirs.stop()
    up = {k: tallies[k].up for k in KINDS}
    if any(v != n for v in up.values()):
        log(f"targets: WARNING: {n} targets but up counts {up} in the last round")
    summary = {
        k: {
            "ms": median([p[k]["ms"] for p in per_round]),
            "cpu_ms": median([p[k]["cpu_ms"] for p in per_round]),
        }
        for k in KINDS
    }
    log(f"targets: {n} targets: {rounds} rounds in {loop_s:.1f}s")
    return {
        "targets": n,
        "median": summary,
        "ours_rss_mib": per_round[-1]["ours_rss_kib"] / 1024,
        "theirs_rss_mib": per_round[-1]["theirs_rss_kib"] / 1024,
        "ours_hwm_mib": ours_hwm / 1024,
        "theirs_hwm_mib": theirs_hwm / 1024,
        "samples_last_round": {k: tallies[k].samples for k in KINDS},
        "up_last_round": up,
        "loop_seconds": round(loop_s, 2),
        "rounds": per_round,
    }


def _render(sizes: list[dict[str, Any]]) -> str:
    rows: list[Row | str] = []
    for s in sizes:
        m = s["median"]
        rows += [
            f"{s['targets']} targets (median round)",
            Row("  time, ours /metrics (ms)", m["ours_metrics"]["ms"], m["theirs_scrape"]["ms"]),
            Row("  time, ours /probe each (ms)", m["ours_probe"]["ms"], m["theirs_scrape"]["ms"]),
            Row("  CPU, ours /metrics (ms)", m["ours_metrics"]["cpu_ms"], m["theirs_scrape"]["cpu_ms"]),
            Row("  CPU, ours /probe each (ms)", m["ours_probe"]["cpu_ms"], m["theirs_scrape"]["cpu_ms"]),
            Row("  RSS after the rounds (MiB)", s["ours_rss_mib"], s["theirs_rss_mib"], ".1f"),
            Row("  samples (last round)", s["samples_last_round"]["ours_metrics"],
                s["samples_last_round"]["theirs_scrape"], "d"),
        ]  # fmt: skip
    if len(sizes) > 1:
        xs = [s["targets"] for s in sizes]

        def grow(key: str, what: str) -> float | None:
            return slope(xs, [s["median"][key][what] for s in sizes])

        rows += [
            f"growth per added target ({xs[0]} -> {xs[-1]})",
            Row("  time, ours /metrics (ms)", grow("ours_metrics", "ms"), grow("theirs_scrape", "ms"), ".3f"),
            Row("  time, ours /probe each (ms)", grow("ours_probe", "ms"), grow("theirs_scrape", "ms"), ".3f"),
            Row("  CPU, ours /metrics (ms)", grow("ours_metrics", "cpu_ms"), grow("theirs_scrape", "cpu_ms"), ".3f"),
            Row("  CPU, ours /probe each (ms)", grow("ours_probe", "cpu_ms"), grow("theirs_scrape", "cpu_ms"), ".3f"),
            Row("  RSS (MiB)", slope(xs, [s["ours_rss_mib"] for s in sizes]),
                slope(xs, [s["theirs_rss_mib"] for s in sizes]), ".3f"),
        ]  # fmt: skip
    return table(rows, theirs="redis_exp /scrape")


def main(argv: list[str]) -> int:
    p = arg_parser(NAME, "Redis targets 1..100: ours (/metrics, /probe) vs redis_exporter /scrape, per round.")
    p.add_argument("--sizes", type=int_list, default=[1, 10, 50, 100], help="target counts (default 1,10,50,100)")
    p.add_argument("--rounds", type=int, default=30, help="measured rounds per size (default 30)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured rounds per size (default 1)")
    p.add_argument("--keys", type=int, default=200, help="keys loaded into each redis-server (default 200)")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 1000 or max(args.sizes) > 500:
        p.error("--rounds must be 1..1000 and sizes at most 500")
    sizes = sorted(set(args.sizes))
    started = time.monotonic()
    with BenchEnv(NAME, {}, args.keep_workdir) as env:
        log(f"targets: workdir {env.workdir}; starting {sizes[-1]} redis-servers")
        redis_ports = [env.free_port() for _ in range(sizes[-1])]
        for i, port in enumerate(redis_ports):
            start_redis(env, f"redis-{i:03d}", port, keys=args.keys)
        log(f"targets: {sizes[-1]} redis-servers ready in {time.monotonic() - started:.1f}s")
        results = [_size(env, n, redis_ports, args.rounds, args.warmup) for n in sizes]
    doc = {
        "settings": {
            "sizes": sizes,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "keys_per_instance": args.keys,
            "order": "per round: ours /metrics first (even rounds) or last (odd); per target "
            "ours /probe then theirs /scrape (even) or the reverse (odd)",
            "seconds": round(time.monotonic() - started, 1),
        },
        "sizes": results,
    }
    title = (
        f"Redis targets: stack-exporter vs redis_exporter (multi-target /scrape); "
        f"{args.rounds} rounds per size, alternating, median round"
    )
    report(NAME, title, _render(results), doc, args.results_dir)
    return 0
