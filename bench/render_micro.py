"""Micro-benchmark of the text writer: ``render_text`` now against a git revision's.

Not a side-by-side exporter benchmark: it times the one function that turns a scrape's
families into bytes.  The scrape is real where it can be: one collection from Redis on
127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 with the exporter's own collectors (skipped
with a note when either is down, or with ``--no-backends``), plus a synthetic
pg_stat_statements target (``--statements`` statements, six families each, normalised
query texts of up to about 1,000 characters with quoted identifiers and backslashes, as
ORMs write them), about 900 samples in all.

Every render gets fresh label-value strings, as a real scrape does (a string keeps its
hash once computed, so re-rendering the same objects would flatter a cache).  The two
writers run alternately, in both formats, and their outputs must be byte-identical::

    .venv/bin/python -m bench.render_micro
    .venv/bin/python -m bench.render_micro --baseline HEAD~1 --rounds 40

The baseline is ``exporter/exposition.py`` as of ``--baseline`` (default HEAD), loaded
from ``git show`` into a temporary module; once a change is committed, compare against
the commit before it.  Timings are medians of CPU time per render (the thread's, so a
busy machine disturbs them less than the wall clock); read the ratio first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import exposition
from exporter.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
Groups = list[tuple[str | None, Sequence[Metric]]]
Render = Callable[..., bytes]

CONFIG = """\
redis:
  - name: redis-local
    url: {redis}
postgres:
  - name: pg-local
    dsn: {postgres}
"""


def load_baseline(rev: str, workdir: Path) -> ModuleType:
    """``exporter/exposition.py`` at ``rev`` (or a file) as a module of its own (its own caches)."""
    if Path(rev).is_file():
        source = Path(rev).read_text()
    else:
        show = ["git", "show", f"{rev}:exporter/exposition.py"]
        source = subprocess.run(show, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = workdir / "exposition_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("exposition_baseline", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def collect(redis_url: str, postgres_dsn: str) -> Groups:
    """One scrape's groups from the real backends, through the engine (no HTTP)."""
    from exporter.scrape import Engine  # only when backends are used

    engine = Engine(parse_config(CONFIG.format(redis=redis_url, postgres=postgres_dsn), "<render_micro>"))
    try:
        results = await engine.scrape(None)
    finally:
        await engine.close()
    for runner, result in results:
        if not result.success:
            print(f"note: {runner.name} failed ({result.error}); its families are what a failed target writes")
    return engine.groups(results)


def statements(count: int, seed: int = 16) -> list[Metric]:
    """Families shaped like the pg_stat_statements collector's, with long query texts."""
    rng = random.Random(seed)
    labels = ["queryid", "datname", "user"]
    names = ("calls", "seconds", "rows", "block_hits", "block_reads")
    counters = [CounterMetricFamily(f"pg_stat_statements_{n}", f"Statement {n}.", labels=labels) for n in names]
    info = GaugeMetricFamily("pg_stat_statements_query_info", "Statement text.", labels=[*labels, "query"])
    words = ["SELECT", "a.id", "FROM", "accounts a", "JOIN", "orders o ON o.aid = a.id", "WHERE", "$1", "AND",
             "name = 'O''Brien'", "path LIKE 'C:\\\\tmp\\\\%'", "\"Quoted\"", "ORDER BY", "LIMIT", "$2"]  # fmt: skip
    for i in range(count):
        lv = [str(rng.randrange(-(2**63), 2**63)), rng.choice(["app", "postgres", "analytics"]), f"user{i % 7}"]
        for family in counters:
            family.add_metric(lv, float(rng.randrange(10**9)))
        text = " ".join(rng.choice(words) for _ in range(rng.randrange(10, 120)))
        info.add_metric([*lv, text], 1.0)
    return [*counters, info]


def fresh(groups: Groups) -> Groups:
    """The same groups with new label-value strings, as the next scrape brings."""
    out: Groups = []
    for target, families in groups:
        copies = []
        for family in families:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            # (v + ".")[:-1]: an equal string, but a new object with no hash computed yet
            copy.samples = [s._replace(labels={k: (v + ".")[:-1] for k, v in s.labels.items()}) for s in family.samples]
            copies.append(copy)
        out.append((target, copies))
    return out


def timed(render: Render, batches: list[Groups], openmetrics: bool) -> float:
    """CPU microseconds per render over the batches (this thread's CPU time: other
    processes on the machine slow the wall clock far more than they change it)."""
    gc.collect()
    start = time.thread_time()
    for groups in batches:
        render(groups, openmetrics=openmetrics)
    return (time.thread_time() - start) / len(batches) * 1e6


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision (or a file) of the old writer")
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds per format")
    parser.add_argument("--renders", type=int, default=20, help="renders per writer per round")
    parser.add_argument("--statements", type=int, default=80, help="synthetic pg_stat_statements entries")
    parser.add_argument("--no-backends", action="store_true", help="synthetic families only")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable")
    args = parser.parse_args(argv)

    groups: Groups = []
    if not args.no_backends:
        groups = asyncio.run(collect(args.redis_url, args.postgres_dsn))
    groups.insert(len(groups) - 2 if len(groups) >= 2 else 0, ("pg-statements", statements(args.statements)))
    samples = sum(len(f.samples) for _, fams in groups for f in fams)
    print(f"scrape: {samples} samples in {sum(len(f) for _, f in groups)} family parts, {len(groups)} groups")

    with tempfile.TemporaryDirectory() as tmp:
        old = load_baseline(args.baseline, Path(tmp))
        new: Render = exposition.render_text
        writers = {"new": new, "old": old.render_text}
        for openmetrics in (False, True):
            fmt = "openmetrics" if openmetrics else "text 0.0.4"
            # byte equality: first render (cold cache), then warm, then after new values
            for check in (groups, fresh(groups), fresh(groups)):
                a, b = new(check, openmetrics=openmetrics), old.render_text(check, openmetrics=openmetrics)
                assert a == b, f"{fmt}: outputs differ ({len(a)} vs {len(b)} bytes)"
            times: dict[str, list[float]] = {"new": [], "old": []}
            for r in range(args.rounds):
                order = ("new", "old") if r % 2 == 0 else ("old", "new")
                for which in order:
                    batches = [fresh(groups) for _ in range(args.renders)]
                    times[which].append(timed(writers[which], batches, openmetrics))
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"{fmt:12} old {med['old']:8.1f} us CPU/render   new {med['new']:8.1f} us CPU/render   "
                f"new/old {med['new'] / med['old']:.2f}   ({args.rounds} rounds x {args.renders}, medians)"
            )
    cache = exposition._LABEL_TEXTS
    entries = f"{len(cache.recent)} recent + {len(cache.older)} older entries"
    print(f"label-text cache: {entries}, {cache.bytes} bytes of text in recent")
    print("outputs byte-identical in both formats (cold, warm, fresh values)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
