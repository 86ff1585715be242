"""No user input may make the exposition invalid, and no target may flood it (issue 15, items 1 and 10).

Custom-query names that would break the exposition are refused by ``--check-config``;
the same families forced past the check (and families from a collector that builds
them directly) are dropped at scrape time with a counted error, and what remains
passes ``promtool check metrics`` and a real Prometheus scrape.  A target's series
are capped per collection, first ones kept, with the number dropped exposed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import exposition
from exporter.collectors.base import Collector
from exporter.collectors.postgres.queries import Column, CustomQuery, builtin_names, load_queries
from exporter.config import DEFAULT_SERIES_LIMIT, Config
from exporter.exposition import DROPPED_FAMILIES, REASONS, render_text, truncate_series
from exporter.schema import TargetConfig
from exporter.scrape import Engine, TargetRunner
from peers.alerting import Prometheus
from tests.collectors.test_postgres import monitor_dsn, pg_config
from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import (
    REFERENCE_DIR,
    check_config,
    config_from,
    exporter,
    promtool_check,
    samples,
    scrape,
    serving,
    value,
    write_config,
)
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.timeout(180)

DROPPED = "stack_exporter_exposition_dropped_families_total"

# Every hostile name the issue lists, as a queries file: (query, column, usage, sql expression)
HOSTILE_QUERIES = """\
label_target:
  query: "SELECT 'evil' AS target, 1 AS v"
  metrics:
    - target: {usage: LABEL}
    - v: {usage: GAUGE}
label_name:
  query: "SELECT 'x' AS __name__, 1 AS v"
  metrics:
    - __name__: {usage: LABEL}
    - v: {usage: GAUGE}
label_colon:
  query: "SELECT 'x' AS \\"a:b\\", 1 AS v"
  metrics:
    - "a:b": {usage: LABEL}
    - v: {usage: GAUGE}
pg:
  query: "SELECT 1 AS up"
  metrics:
    - up: {usage: GAUGE}
pg_stat_database:
  query: "SELECT datname, 1 AS xact_commit FROM pg_database WHERE datname = current_database()"
  metrics:
    - datname: {usage: LABEL}
    - xact_commit: {usage: COUNTER}
x:
  query: "SELECT 1 AS c"
  metrics:
    - c: {usage: COUNTER}
x_c:
  query: "SELECT 2 AS total"
  metrics:
    - total: {usage: GAUGE}
fine:
  query: "SELECT 'a' AS kind, 3 AS v"
  metrics:
    - kind: {usage: LABEL}
    - v: {usage: GAUGE}
"""


# --------------------------------------------------------------------------- config time


def test_check_config_names_every_bad_custom_query_name(tmp_path: Path) -> None:
    queries = tmp_path / "queries.yaml"
    queries.write_text(HOSTILE_QUERIES)
    config = {"postgres": [{"name": "main", "dsn": "postgresql://u@127.0.0.1/db", "custom_queries_file": str(queries)}]}
    proc = check_config(write_config(tmp_path, config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    prefix = f"postgres[0].custom_queries_file: {queries}: "
    for where, problem in (
        ("label_target.metrics[0].target", "label name 'target' is reserved: the exporter adds it itself"),
        ("label_name.metrics[0].__name__", "label name '__name__' is reserved: names starting with __"),
        ("label_colon.metrics[0].a:b", "label name 'a:b' is invalid"),
        ("pg.metrics[0].up", "metric pg_up collides with the built-in PostgreSQL metric pg_up"),
        (
            "pg_stat_database.metrics[1].xact_commit",
            "metric pg_stat_database_xact_commit collides with the built-in PostgreSQL metric",
        ),
        ("x_c.metrics[0].total", "gauge x_c_total collides with counter x_c (exposed as x_c_total) defined by x."),
    ):
        assert f"{prefix}{where}: {problem}" in out, f"{where}\n{out}"
    assert "fine." not in out.replace(str(tmp_path), "")  # the good query has no problem
    assert "Traceback" not in out


def test_custom_names_reserved_by_the_exporter(tmp_path: Path) -> None:
    queries = tmp_path / "q.yaml"
    queries.write_text(
        "app:\n  query: SELECT 1 AS v, 'x' AS collector\n  metrics:\n"
        "    - collector: {usage: LABEL}\n    - v: {usage: GAUGE}\n"
        "stack_exporter:\n  query: SELECT 1 AS up\n  metrics:\n    - up: {usage: GAUGE}\n"
        "pg_stat_statements:\n  query: SELECT 1 AS calls\n  metrics:\n    - calls: {usage: COUNTER}\n"
        "pg_settings:\n  query: SELECT 1 AS work_mem_bytes\n  metrics:\n    - work_mem_bytes: {usage: GAUGE}\n"
        "gauge_first:\n  query: SELECT 1 AS a, 2 AS a_created\n  metrics:\n"
        "    - a: {usage: COUNTER}\n    - a_created: {usage: GAUGE}\n"
    )
    found, problems = load_queries(queries)
    assert found == ()
    text = "\n".join(problems)
    assert "app.metrics[0].collector: label name 'collector' is reserved" in text
    assert "stack_exporter.metrics[0].up: metric stack_exporter_up is in the exporter's own namespace" in text
    assert "pg_stat_statements.metrics[0].calls: metric pg_stat_statements_calls is in the exporter's own" in text
    assert "pg_settings.metrics[0].work_mem_bytes: metric pg_settings_work_mem_bytes collides with the built-in" in text
    assert "gauge_first.metrics[1].a_created: gauge gauge_first_a_created collides with counter gauge_first_a" in text


def test_every_documented_postgres_metric_is_reserved() -> None:
    """The built-in set comes from the builders; the reference page says whether it is complete."""
    documented = []
    for line in (REFERENCE_DIR / "postgres.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[2] in ("gauge", "counter") and cells[1].startswith("`"):
            documented.append(cells[1].strip("`"))
    assert len(documented) > 50
    reserved = builtin_names()
    missed = [n for n in documented if n not in reserved and not n.startswith(("pg_stat_statements_", "stack_exp"))]
    assert not missed, f"custom queries could redefine these built-ins: {missed}"


# --------------------------------------------------------------------------- scrape time: the writer itself


def _hostile_families() -> list[Metric]:
    """What a buggy or hostile collector could hand the writer, each a different way."""
    dupes = GaugeMetricFamily("inj_dupes", "Duplicate rows.", labels=["k"])
    dupes.add_metric(["a"], 1)
    dupes.add_metric(["a"], 2)
    bad_name = GaugeMetricFamily("inj_ok", "Placeholder.", value=1)
    bad_name.name = "inj-bad"  # prometheus-client does not check names set after construction
    counter = CounterMetricFamily("inj_x", "A counter.", value=1)
    gauge_total = GaugeMetricFamily("inj_x_total", "A gauge where the counter writes.", value=2)
    own_target = GaugeMetricFamily("inj_own_target", "A target label of its own.", labels=["target"])
    own_target.add_metric(["evil"], 1)
    reserved = GaugeMetricFamily("inj_reserved", "A __ label.", labels=["__name__"])
    reserved.add_metric(["x"], 1)
    colon = GaugeMetricFamily("inj_colon", "A colon label.", labels=["a:b"])
    colon.add_metric(["x"], 1)
    same_type = GaugeMetricFamily("inj_x", "The counter's name as a gauge.", value=3)
    ok = GaugeMetricFamily("inj_ok", "Kept.", labels=["k"])
    ok.add_metric(["a"], 1)
    return [dupes, bad_name, counter, gauge_total, own_target, reserved, colon, same_type, ok]


LOGGED_ONCE = {
    ("inj_dupes", "duplicate_series"),
    ("inj-bad", "invalid_metric_name"),
    ("inj_x_total", "name_collision"),
    ("inj_x", "name_collision"),
    ("inj_own_target", "reserved_label"),
    ("inj_reserved", "invalid_label_name"),
    ("inj_colon", "invalid_label_name"),
}
EXPECTED_DROPS = {
    "duplicate_series": 1,
    "invalid_metric_name": 1,
    "name_collision": 2,
    "reserved_label": 1,
    "invalid_label_name": 2,
}


def test_writer_drops_what_would_break_the_exposition(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="exporter.exposition")
    before = dict(DROPPED_FAMILIES)
    for openmetrics in (False, True, False):
        text = render_text([("t1", _hostile_families()), ("t2", _hostile_families())], openmetrics=openmetrics)
    delta = {r: DROPPED_FAMILIES[r] - before[r] for r in REASONS}
    assert delta == {r: 3 * 2 * n for r, n in EXPECTED_DROPS.items()}
    decoded = text.decode()
    assert promtool_check(decoded) == ""
    assert value(decoded, "inj_ok", target="t1", k="a") == 1
    assert value(decoded, "inj_x_total", target="t2") == 1  # the first family keeps the name
    assert "inj_dupes" not in decoded.replace("# HELP inj_dupes", "").replace("# TYPE inj_dupes", "")
    # logged once per (family, reason), not on every scrape or for every target
    warned = [r for r in caplog.records if r.name == "exporter.exposition"]
    keys = [(r.kv["metric"], r.kv["reason"]) for r in warned]  # type: ignore[attr-defined]
    assert len(keys) == len(set(keys)), keys
    assert set(keys) <= LOGGED_ONCE
    assert LOGGED_ONCE <= exposition._WARNED


def test_a_target_label_is_fine_where_the_engine_adds_none() -> None:
    own = GaugeMetricFamily("self_metric", "Self metric with a target label.", labels=["target"])
    own.add_metric(["a"], 1)
    assert render_text([(None, [own])]) == (
        b'# HELP self_metric Self metric with a target label.\n# TYPE self_metric gauge\nself_metric{target="a"} 1.0\n'
    )


def test_truncation_keeps_the_first_series_in_order() -> None:
    fams = []
    for i in range(3):
        fam = GaugeMetricFamily(f"f{i}", "F.", labels=["n"])
        for n in range(4):
            fam.add_metric([str(n)], n)
        fams.append(fam)
    kept, series, dropped = truncate_series(fams, 6)
    assert (series, dropped) == (6, 6)
    assert [(f.name, [s.labels["n"] for s in f.samples]) for f in kept] == [("f0", list("0123")), ("f1", list("01"))]
    assert len(fams[1].samples) == 4  # the collector's own families are not cut
    assert truncate_series(fams, 0)[1:] == (12, 0)


# --------------------------------------------------------------------------- scrape time: through the real app


@dataclasses.dataclass(frozen=True, kw_only=True)
class InjectedTarget(TargetConfig):
    name: str


class InjectingCollector(Collector[InjectedTarget]):
    """A tiny collector returning the hostile families, as a buggy collector would."""

    config_class = InjectedTarget

    async def collect(self) -> list[Metric]:
        return _hostile_families()


def hostile_queries() -> tuple[CustomQuery, ...]:
    """The hostile file's queries as the loader would build them without its checks."""

    def q(name: str, sql: str, *cols: tuple[str, str]) -> CustomQuery:
        return CustomQuery(name, sql, tuple(Column(c, u, f"{c}.") for c, u in cols))  # type: ignore[arg-type]

    return (
        q("label_target", "SELECT 'evil' AS target, 1 AS v", ("target", "LABEL"), ("v", "GAUGE")),
        q("label_name", "SELECT 'x' AS __name__, 1 AS v", ("__name__", "LABEL"), ("v", "GAUGE")),
        q("label_colon", "SELECT 'x' AS \"a:b\", 1 AS v", ("a:b", "LABEL"), ("v", "GAUGE")),
        q("pg", "SELECT 1 AS up", ("up", "GAUGE")),
        q(
            "pg_stat_database",
            "SELECT datname, 1 AS xact_commit FROM pg_database WHERE datname = current_database()",
            ("datname", "LABEL"),
            ("xact_commit", "COUNTER"),
        ),
        q("pg_stat_database_xact", "SELECT 1 AS rollback", ("rollback", "GAUGE")),
        q("x", "SELECT 1 AS c", ("c", "COUNTER")),
        q("x_c", "SELECT 2 AS total", ("total", "GAUGE")),
        q("dup", "SELECT 1 AS v", ("v", "GAUGE")),
        q("dup", "SELECT 2 AS v", ("v", "GAUGE")),  # the same family twice: duplicate series
        q("fine", "SELECT 'a' AS kind, 3 AS v", ("kind", "LABEL"), ("v", "GAUGE")),
    )


def hostile_engine(pg: PostgresServer) -> Engine:
    config: Config = config_from(pg_config(("main", monitor_dsn(pg)), timeout="5s"))
    target = config.sources["postgres"][0]
    object.__setattr__(target, "custom_queries", hostile_queries())  # past the config check
    engine = Engine(config)
    injected = InjectedTarget(name="inj")
    collector = InjectingCollector(injected, engine.context.for_source("injected"))
    engine.runners[("injected", "inj")] = TargetRunner("injected", injected, collector, engine.redactor)
    return engine


async def test_hostile_families_are_dropped_and_prometheus_keeps_the_scrape(
    pg_primary: PostgresServer, tmp_path: Path
) -> None:
    async with serving(hostile_engine(pg_primary)) as http:
        before = dict(DROPPED_FAMILIES)
        text = await scrape(http)
        delta = {r: DROPPED_FAMILIES[r] - before[r] for r in REASONS}
        second = await scrape(http)
        assert promtool_check(text) == ""
        assert promtool_check(second) == ""
        # reserved_label: label_target + inj_own_target; invalid_label_name: label_name,
        # label_colon + 2 injected; name_collision: x_c_total, pg_stat_database_xact_rollback
        # + 2 injected; duplicate_series: pg_up, pg_stat_database_xact_commit, dup_v + inj_dupes
        assert delta == {
            "reserved_label": 2,
            "invalid_label_name": 4,
            "name_collision": 4,
            "duplicate_series": 4,
            "invalid_metric_name": 1,
        }, delta
        for reason in REASONS:
            got = value(second, DROPPED, reason=reason)
            assert got is not None and got >= before[reason] + delta[reason], reason
        assert value(text, "pg_up", target="main") == 1
        assert value(text, "pg_stat_database_xact_commit_total", target="main", datname="appdb") != 1
        assert value(text, "x_c_total", target="main") == 1  # the counter came first and stays
        assert value(text, "fine_v", target="main", kind="a") == 3
        assert value(text, "inj_ok", target="inj", k="a") == 1

        prom = Prometheus(
            tmp_path,
            {
                "global": {"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "exporter", "static_configs": [{"targets": [f"127.0.0.1:{http.port}"]}]}
                ],
            },
            {},
        )
        await asyncio.to_thread(prom.start)
        try:
            deadline = time.monotonic() + 40
            ok: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                ok = await asyncio.to_thread(prom.query, 'fine_v{job="exporter",target="main"}')
                up = await asyncio.to_thread(prom.query, 'up{job="exporter"}')
                if ok and up and up[0]["value"][1] == "1":
                    break
            assert ok, "Prometheus did not ingest the scrape: " + str(await asyncio.to_thread(prom.targets_up))
            assert ok[0]["value"][1] == "3"
            assert await asyncio.to_thread(prom.query, 'inj_ok{job="exporter",target="inj"}')
            assert await asyncio.to_thread(prom.query, 'pg_up{job="exporter",target="main"} == 1')
        finally:
            await asyncio.to_thread(prom.stop)


# --------------------------------------------------------------------------- item 10: series per target


def _target_series(text: str, target: str) -> int:
    return sum(1 for s in samples(text) if s.labels.get("target") == target and not s.name.startswith("stack_"))


async def test_statuspage_with_60k_components_is_capped() -> None:
    fake = FakeStatuspage()
    fake.summary["components"] = [
        # small enough to fit the HTTP client's 4 MiB body cap
        {"id": str(i), "name": f"c{i}", "status": "operational"}
        for i in range(60_000)
    ]
    async with fake.running():
        config = {
            "statuspages": [
                {"name": "big", "url": fake.url, "refresh_interval": "0s", "scrape_timeout": "20s"},
                {
                    "name": "small",
                    "url": fake.url,
                    "refresh_interval": "0s",
                    "scrape_timeout": "20s",
                    "series_limit": 500,
                },
            ]
        }
        async with exporter(config) as http:
            text = await scrape(http)
    assert value(text, "stack_exporter_target_series", collector="statuspages", target="big") == DEFAULT_SERIES_LIMIT
    dropped = value(text, "stack_exporter_target_series_dropped", collector="statuspages", target="big")
    # five states per component, plus the page-level series
    assert dropped is not None and dropped >= 60_000 * 5 - DEFAULT_SERIES_LIMIT
    assert _target_series(text, "big") == DEFAULT_SERIES_LIMIT
    assert value(text, "stack_exporter_target_series", collector="statuspages", target="small") == 500
    assert value(text, "stack_exporter_target_series_dropped", collector="statuspages", target="small") == dropped + (
        DEFAULT_SERIES_LIMIT - 500
    )
    assert _target_series(text, "small") == 500
    assert value(text, "statuspage_up", target="big") == 1  # the first families are the ones kept
    assert len(text) < 5_000_000
    assert promtool_check(text) == ""


async def test_custom_query_with_100k_rows_is_capped(pg_primary: PostgresServer, tmp_path: Path) -> None:
    queries = tmp_path / "queries.yaml"
    queries.write_text(
        "big:\n  query: SELECT i::text AS n, i AS v FROM generate_series(1, 100000) AS i\n"
        "  metrics:\n    - n: {usage: LABEL}\n    - v: {usage: GAUGE}\n"
    )
    config = pg_config(("main", monitor_dsn(pg_primary)), timeout="20s", custom_queries_file=str(queries))
    config["global"]["series_limit_per_target"] = 2000
    async with exporter(config) as http:
        text = await scrape(http)
    assert value(text, "stack_exporter_target_series", collector="postgres", target="main") == 2000
    dropped = value(text, "stack_exporter_target_series_dropped", collector="postgres", target="main")
    assert dropped is not None and dropped >= 100_000 - 2000
    assert _target_series(text, "main") == 2000
    assert value(text, "pg_up", target="main") == 1
    assert len(text) < 1_000_000
    assert promtool_check(text) == ""


def test_series_limits_are_checked(tmp_path: Path) -> None:
    config = {
        "global": {"series_limit_per_target": -1},
        "postgres": [{"name": "a", "dsn": "postgresql://u@127.0.0.1/db", "series_limit": -5}],
    }
    proc = check_config(write_config(tmp_path, config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "global.series_limit_per_target: must be 0 (no limit) or more, got -1" in out
    assert "postgres[0]: series_limit: must be 0 (no limit) or more, got -5" in out
    assert "Traceback" not in out
