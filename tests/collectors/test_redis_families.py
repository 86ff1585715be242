"""The Redis tables' fast family builder must make exactly what prometheus-client's constructors make."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporter.collectors.redis.cluster import CLUSTER_METRICS
from exporter.collectors.redis.info import INFO_METRICS, Row, table_families, unchecked_family
from exporter.collectors.redis.sentinel import SENTINEL_METRICS
from exporter.exposition import render_text

ROWS: list[Row] = [*INFO_METRICS, *CLUSTER_METRICS, *SENTINEL_METRICS]
VALUES = [0.0, 1.0, 42, -1.0, 1089360.0, 2.5e-07, 1.7e21, math.inf, -math.inf]


class _Families:
    """A collector for a private registry that hands back fixed families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _rendered(families: list[Metric]) -> tuple[bytes, bytes, bytes, bytes]:
    registry = _Families(families)
    return (
        generate_latest(registry),
        openmetrics_latest(registry),
        render_text([("cache", families)]),
        render_text([("cache", families)], openmetrics=True),
    )


def _real(name: str, doc: str, typ: str, value: float) -> Metric:
    """The same family through the constructor and add_metric, which validate the name."""
    if typ == "counter":
        counter = CounterMetricFamily(name, doc, labels=[])
        counter.add_metric([], value)
        return counter
    gauge = GaugeMetricFamily(name, doc, labels=[])
    gauge.add_metric([], value)
    return gauge


@pytest.mark.parametrize("typ", ["gauge", "counter"])
@pytest.mark.parametrize("value", VALUES)
def test_equal_to_the_constructor(typ: str, value: float) -> None:
    fast = unchecked_family("redis_memory_used_bytes", 'Bytes "allocated"\nby Redis \\ here.', typ, value)
    real = _real("redis_memory_used_bytes", 'Bytes "allocated"\nby Redis \\ here.', typ, value)
    assert fast == real
    assert (fast.name, fast.documentation, fast.type, fast.unit) == (real.name, real.documentation, real.type, "")
    assert fast.samples == real.samples
    assert _rendered([fast]) == _rendered([real])


def test_equal_to_the_value_shortcut() -> None:
    assert unchecked_family("redis_forks", "Forks.", "counter", 3.0) == CounterMetricFamily(
        "redis_forks", "Forks.", value=3.0
    )
    assert unchecked_family("redis_loading_dump_file", "Loading.", "gauge", 0.0) == GaugeMetricFamily(
        "redis_loading_dump_file", "Loading.", value=0.0
    )


def test_every_table_row_is_a_name_the_constructor_accepts() -> None:
    """The builder skips name validation; this is where every table name still gets it."""
    fast: list[Metric] = []
    real: list[Metric] = []
    for _field, name, kind, doc, _conv in ROWS:
        typ = "counter" if kind == "c" else "gauge"
        fast.append(unchecked_family(name, doc, typ, 1.0))
        real.append(_real(name, doc, typ, 1.0))  # raises on an invalid name
        assert kind in ("g", "c")
        assert not name.endswith("_total"), "the counter's sample gets _total; the family name must not have it"
    assert fast == real
    assert _rendered(fast) == _rendered(real)


def test_table_families_scale_map_and_skip() -> None:
    info = {
        "used_memory": "1024",
        "latest_fork_usec": "250",
        "rdb_last_bgsave_status": "err",
        "aof_last_write_status": "ok",
        "total_forks": "7",
        "maxmemory": "not a number",
    }
    got = table_families(INFO_METRICS, info)
    by_name = {f.name: f for f in got}
    assert set(by_name) == {
        "redis_memory_used_bytes",
        "redis_latest_fork_seconds",
        "redis_rdb_last_bgsave_status",
        "redis_aof_last_write_status",
        "redis_forks",
    }
    memory = by_name["redis_memory_used_bytes"]
    assert memory == GaugeMetricFamily("redis_memory_used_bytes", memory.documentation, value=1024.0)
    assert by_name["redis_latest_fork_seconds"].samples[0].value == pytest.approx(250e-6)
    assert by_name["redis_rdb_last_bgsave_status"].samples[0].value == 0.0
    assert by_name["redis_aof_last_write_status"].samples[0].value == 1.0
    assert by_name["redis_forks"].samples[0].name == "redis_forks_total"
    # table order, not info order: the exposition order is the table's
    assert [f.name for f in got] == [row[1] for row in INFO_METRICS if row[1] in by_name]
