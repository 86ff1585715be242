"""Sentinel mode: the sentinel's own INFO fields, and one row per primary it watches.

A sentinel's INFO lists each primary as ``masterN:name=...,status=ok,...``.
How many of its replicas and fellow sentinels are healthy is not in INFO: one
pipeline of SENTINEL REPLICAS and SENTINEL SENTINELS per primary answers it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.redis.client import text
from exporter.collectors.redis.info import Row, num, parse_record, table_families

SENTINEL_METRICS: tuple[Row, ...] = (
    ("sentinel_masters", "redis_sentinel_masters", "g", "Primaries this sentinel watches.", 1),
    ("sentinel_tilt", "redis_sentinel_tilt", "g", "1 if the sentinel is in TILT mode.", 1),
    ("sentinel_running_scripts", "redis_sentinel_running_scripts", "g", "Scripts running.", 1),
    ("sentinel_scripts_queue_length", "redis_sentinel_scripts_queue_length", "g", "Scripts queued.", 1),
)

# Flags SENTINEL REPLICAS/SENTINELS set on an entry that is not healthy.
_DOWN_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


async def sentinel_families(client: aioredis.Redis, info: dict[str, str]) -> list[Metric]:
    """The sentinel table and per-primary families; one round trip when it watches any primary."""
    fams = table_families(SENTINEL_METRICS, info)
    labels = ["master_name", "master_address"]
    status = GaugeMetricFamily(
        "redis_sentinel_master_status",
        "1 if the sentinel sees the primary as ok; the master_status label says what it sees.",
        labels=[*labels, "master_status"],
    )
    slaves = GaugeMetricFamily("redis_sentinel_master_slaves", "Replicas the sentinel knows of.", labels=labels)
    sentinels = GaugeMetricFamily(
        "redis_sentinel_master_sentinels", "Sentinels watching the primary, this one included.", labels=labels
    )
    ok_slaves = GaugeMetricFamily(
        "redis_sentinel_master_ok_slaves", "Replicas not flagged down or disconnected.", labels=labels
    )
    ok_sentinels = GaugeMetricFamily(
        "redis_sentinel_master_ok_sentinels",
        "Sentinels watching the primary that are not flagged down, this one included.",
        labels=labels,
    )
    masters = [parse_record(value) for key, value in info.items() if key.startswith("master") and key[6:].isdigit()]
    replies: list[Any] = []
    if masters:
        async with client.pipeline(transaction=False) as pipe:
            for m in masters:
                pipe.execute_command("SENTINEL", "REPLICAS", m.get("name", ""))
                pipe.execute_command("SENTINEL", "SENTINELS", m.get("name", ""))
            replies = await pipe.execute(raise_on_error=False)
    for i, m in enumerate(masters):
        lv = [m.get("name", ""), m.get("address", "")]
        state = m.get("status", "")
        status.add_metric([*lv, state], 1.0 if state == "ok" else 0.0)
        slaves.add_metric(lv, num(m.get("slaves")) or 0.0)
        sentinels.add_metric(lv, num(m.get("sentinels")) or 0.0)
        if replies:
            ok_slaves.add_metric(lv, float(count_ok(replies[2 * i])))
            # the sentinel answering is not in its own SENTINELS list
            ok_sentinels.add_metric(lv, float(count_ok(replies[2 * i + 1]) + 1))
    fams.extend([status, slaves, sentinels, ok_slaves, ok_sentinels])
    return fams


def count_ok(reply: Any) -> int:
    """Entries of SENTINEL REPLICAS/SENTINELS not flagged down or disconnected."""
    if not isinstance(reply, list):
        return 0
    ok = 0
    for entry in reply:
        if isinstance(entry, dict):
            flags = text(entry.get("flags", ""))
        elif isinstance(entry, list):
            pairs = dict(zip(entry[::2], entry[1::2], strict=False))
            flags = text(pairs.get(b"flags", pairs.get("flags", "")))
        else:
            continue
        if not _DOWN_FLAGS.intersection(flags.split(",")):
            ok += 1
    return ok
