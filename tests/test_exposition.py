"""Our text writer must equal prometheus-client's for the same merged families."""

from __future__ import annotations

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporter.exposition import render_text
from tests.helpers import FamiliesRegistry, merge_target_families


def families(suffix: str) -> list[Metric]:
    gauge = GaugeMetricFamily("x_gauge", 'Help with "quotes", \\ and\nnewline.', labels=["zeta", "alpha"])
    gauge.add_metric(["z\\1", 'a"\n'], 1.5)
    gauge.add_metric(["2", "b"], float("inf"))
    counter = CounterMetricFamily("x_events", "Events.", labels=["kind"])
    counter.add_metric([f"k{suffix}"], 3)
    plain = GaugeMetricFamily("x_plain", "No labels.", value=1e-7)
    summary = SummaryMetricFamily("x_latency_seconds", "Latency.", count_value=4, sum_value=0.25)
    info = InfoMetricFamily("x_build", "Build.", value={"version": "1.0"})
    states = StateSetMetricFamily("x_state", "State.", value={"ok": True, "bad": False})
    return [gauge, counter, plain, summary, info, states]


def test_render_text_matches_prometheus_client() -> None:
    groups = [("alpha", families("1")), ("beta", families("2"))]
    ours = render_text(groups)
    theirs = generate_latest(FamiliesRegistry(merge_target_families(groups)))  # type: ignore[arg-type]
    assert ours == theirs


def test_openmetrics_matches_prometheus_client() -> None:
    groups: list[tuple[str | None, list[Metric]]] = [("alpha", families("1")), ("beta", families("2"))]
    with_unit = GaugeMetricFamily("x_size", "Size.", value=3, unit="bytes")
    groups.append((None, [with_unit]))
    ours = render_text(groups, openmetrics=True)
    theirs = openmetrics_latest(FamiliesRegistry(merge_target_families(groups)))  # type: ignore[arg-type]
    assert ours == theirs


def test_self_metrics_without_target() -> None:
    plain = GaugeMetricFamily("x_plain", "No labels.", value=2)
    assert render_text([(None, [plain])]) == b"# HELP x_plain No labels.\n# TYPE x_plain gauge\nx_plain 2.0\n"


def test_type_clash_keeps_the_first() -> None:
    a = GaugeMetricFamily("x", "Gauge.", value=1)
    b = CounterMetricFamily("x", "Counter.", value=2)
    text = render_text([("t1", [a]), ("t2", [b])]).decode()
    assert 'x{target="t1"} 1.0' in text
    assert "t2" not in text


def test_number_format_matches_prometheus_client() -> None:
    import random

    from prometheus_client.utils import floatToGoString

    from exporter.exposition import _format

    rng = random.Random(7)
    values = [0.0, -0.0, 1.0, 5, 123456.0, 1234567.0, 1e21, 1e22, 1.5e-7, -1234567.0, 0.1, 2.0**53, 1e16]
    values += [float("inf"), float("-inf"), float("nan")]
    values += [rng.uniform(-1e9, 1e9) for _ in range(2000)]
    values += [rng.random() * 10 ** rng.randint(-12, 25) for _ in range(2000)]
    values += [float(rng.randint(0, 10**12)) for _ in range(2000)]
    assert [v for v in values if _format(v) != floatToGoString(v)] == []
