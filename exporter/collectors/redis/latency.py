"""What Redis keeps about slow moments: the slow log and the latency monitor.

Both commands are blocked or renamed on some managed services; the collector
then stops sending them for a while and these families are simply absent.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.redis.client import text


def slowlog_families(length: Any, newest: Any) -> list[Metric]:
    """From the replies to SLOWLOG LEN and SLOWLOG GET 1 (None when not sent)."""
    fams: list[Metric] = []
    if isinstance(length, int):
        fams.append(GaugeMetricFamily("redis_slowlog_length", "Entries in the slow log.", value=length))
    if isinstance(newest, list) and newest:
        entry = newest[0]
        # redis-py parses entries into dicts; raw replies are lists
        entry_id = entry.get("id") if isinstance(entry, dict) else entry[0]
        entry_us = entry.get("duration") if isinstance(entry, dict) else entry[2]
        fams.append(GaugeMetricFamily("redis_slowlog_last_id", "ID of the newest slow log entry.", value=entry_id))
        fams.append(
            GaugeMetricFamily(
                "redis_last_slow_execution_duration_seconds",
                "Duration of the newest slow log entry.",
                value=float(entry_us or 0) / 1e6,
            )
        )
    return fams


def spike_families(latest: Any) -> list[Metric]:
    """From the reply to LATENCY LATEST (None when not sent): the newest spike per event."""
    if not isinstance(latest, list):
        return []
    spike_at = GaugeMetricFamily(
        "redis_latency_spike_last_timestamp_seconds",
        "Unix time of the latest latency spike per event (LATENCY LATEST).",
        labels=["event_name"],
    )
    spike = GaugeMetricFamily(
        "redis_latency_spike_duration_seconds",
        "Duration of the latest latency spike per event.",
        labels=["event_name"],
    )
    for row in latest:
        if isinstance(row, list) and len(row) >= 3:
            event = text(row[0])
            spike_at.add_metric([event], float(row[1]))
            spike.add_metric([event], float(row[2]) / 1000)
    return [spike_at, spike]
