"""The exporter's own metrics: per-target collection results and the process.

The engine decides what happened; this module only says it in the exposition,
so the metric names and help texts of ``stack_exporter_*`` live in one place.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.exposition import DROPPED_FAMILIES

# process_* (CPU, RSS, open fds, start time) for the exporter dashboard; not registered
# in the global registry, collected explicitly with the self metrics
_PROCESS = ProcessCollector(registry=None)


@dataclass(frozen=True)
class TargetOutcome:
    """What the engine knows of one target after a scrape."""

    collector: str
    target: str
    success: bool
    duration: float  # seconds the last collection took
    data_from: float  # wall-clock time the served data was collected
    last_success_at: float | None
    failures_total: int
    series: int = 0  # series the last collection kept, after the per-target limit
    series_dropped: int = 0  # series the limit cut from the last collection


def collector_families(outcomes: Sequence[TargetOutcome]) -> list[Metric]:
    """stack_exporter_collector_*: one series per target."""
    labels = ["collector", "target"]
    success = GaugeMetricFamily(
        "stack_exporter_collector_success",
        "1 if the target's last collection succeeded, 0 if it failed or missed its deadline.",
        labels=labels,
    )
    duration = GaugeMetricFamily(
        "stack_exporter_collector_duration_seconds",
        "Seconds the target's last collection took.",
        labels=labels,
    )
    last_ok = GaugeMetricFamily(
        "stack_exporter_collector_last_success_timestamp_seconds",
        "Unix time of the target's last successful collection.",
        labels=labels,
    )
    age = GaugeMetricFamily(
        "stack_exporter_collector_cache_age_seconds",
        "Age of the data served for the target: 0 when collected for this scrape, larger for"
        " sources with a minimum refresh interval or serving their last good result while rate-limited.",
        labels=labels,
    )
    failures = CounterMetricFamily(
        "stack_exporter_collector_failures",
        "Collections of the target that failed or missed their deadline since the exporter started.",
        labels=labels,
    )
    series = GaugeMetricFamily(
        "stack_exporter_target_series",
        "Series the target's last collection exported, after the per-target series limit.",
        labels=labels,
    )
    dropped = GaugeMetricFamily(
        "stack_exporter_target_series_dropped",
        "Series the per-target series limit (series_limit) cut from the target's last collection.",
        labels=labels,
    )
    now = time.time()
    for o in outcomes:
        lv = [o.collector, o.target]
        success.add_metric(lv, 1.0 if o.success else 0.0)
        duration.add_metric(lv, o.duration)
        age.add_metric(lv, max(0.0, now - o.data_from))
        if o.last_success_at is not None:
            last_ok.add_metric(lv, o.last_success_at)
        failures.add_metric(lv, float(o.failures_total))
        series.add_metric(lv, float(o.series))
        dropped.add_metric(lv, float(o.series_dropped))
    return [success, duration, last_ok, age, failures, series, dropped]


def exposition_families(dropped: Mapping[str, int]) -> list[Metric]:
    """Family parts render_text left out, by reason (a fixed set, all present from the start)."""
    family = CounterMetricFamily(
        "stack_exporter_exposition_dropped_families",
        "Metric families (one target's part) left out of a scrape because they would make the exposition"
        " invalid: bad metric or label name, reserved label, colliding name, duplicate series.",
        labels=["reason"],
    )
    for reason, count in dropped.items():
        family.add_metric([reason], float(count))
    return [family]


def process_families(reload_ok: bool, reload_at: float, targets_per_source: Mapping[str, int]) -> list[Metric]:
    """Build info, reload state, target counts and process_*."""
    build = GaugeMetricFamily(
        "stack_exporter_build_info",
        "Always 1; labels carry the exporter's version and Python version.",
        labels=["version", "python_version"],
    )
    build.add_metric([__version__, platform.python_version()], 1.0)
    reload_ok_family = GaugeMetricFamily(
        "stack_exporter_config_last_reload_successful",
        "1 if the last configuration reload succeeded; after a failed one the previous config keeps serving.",
        value=1.0 if reload_ok else 0.0,
    )
    reload_at_family = GaugeMetricFamily(
        "stack_exporter_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration load.",
        value=reload_at,
    )
    targets = GaugeMetricFamily(
        "stack_exporter_targets",
        "Configured targets per collector.",
        labels=["collector"],
    )
    for kind, count in sorted(targets_per_source.items()):
        targets.add_metric([kind], float(count))
    return [
        build,
        reload_ok_family,
        reload_at_family,
        targets,
        *exposition_families(DROPPED_FAMILIES),
        *_PROCESS.collect(),
    ]
