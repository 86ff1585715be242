"""Replication families from the core query's document: the primary's view, the standby's, the slots.

A primary reports its connected replicas (pg_stat_replication); a standby its own
lag and WAL receiver; either may hold replication slots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def replication_families(core: Mapping[str, Any]) -> list[Metric]:
    replica = core.get("replica")
    role = GaugeMetricFamily(
        "pg_replication_is_replica", "1 if the server is a replica (in recovery).", value=1.0 if replica else 0.0
    )
    out: list[Metric] = [role]
    out.extend(primary_families(core.get("replicas") or ()))
    out.extend(slot_families(core.get("slots") or ()))
    if replica:
        out.extend(standby_families(replica, float(core["now"]), core.get("receiver") or ()))
    return out


def primary_families(replicas: Sequence[Sequence[Any]]) -> list[Metric]:
    """One series per connected replica (pg_stat_replication rows); none on a server without replicas."""
    labels = ["application_name", "client_addr"]
    info = GaugeMetricFamily(
        "pg_stat_replication_info",
        "Always 1 per connected replica; labels carry its state and sync state.",
        labels=[*labels, "state", "sync_state"],
    )
    lag_fams = [
        GaugeMetricFamily(f"pg_stat_replication_{kind}_lag_{unit}", doc, labels=labels)
        for kind, unit, doc in (
            ("write", "seconds", "Time until the replica wrote recent WAL (0 when caught up)."),
            ("flush", "seconds", "Time until the replica flushed recent WAL (0 when caught up)."),
            ("replay", "seconds", "Time until the replica replayed recent WAL (0 when caught up)."),
            ("write", "bytes", "WAL the replica has not written yet."),
            ("flush", "bytes", "WAL the replica has not flushed yet."),
            ("replay", "bytes", "WAL the replica has not replayed yet."),
        )
    ]
    for app, addr, state, sync, *lags in replicas:
        lv = [app or "", addr]
        info.add_metric([*lv, state or "", sync or ""], 1.0)
        secs, byts = lags[:3], lags[3:]
        for i, b in enumerate(byts):
            # PostgreSQL clears the lag times once a replica is idle and caught up
            s = secs[i] if secs[i] is not None else 0.0
            lag_fams[i].add_metric(lv, float(s))
            if b is not None:
                lag_fams[3 + i].add_metric(lv, max(0.0, float(b)))
    return [info, *lag_fams]


def slot_families(slots: Sequence[Sequence[Any]]) -> list[Metric]:
    labels = ["slot_name", "slot_type", "database"]
    active = GaugeMetricFamily("pg_replication_slot_active", "1 if a consumer is attached to the slot.", labels=labels)
    retained = GaugeMetricFamily(
        "pg_replication_slot_wal_retained_bytes", "WAL kept on disk for the slot.", labels=labels
    )
    for name, stype, database, is_active, wal in slots:
        lv = [name, stype, database]
        active.add_metric(lv, 1.0 if is_active else 0.0)
        if wal is not None:
            retained.add_metric(lv, max(0.0, float(wal)))
    return [active, retained]


def standby_families(replica: Mapping[str, Any], now: float, receivers: Sequence[Sequence[Any]]) -> list[Metric]:
    """A standby's lag, WAL positions, replay pause and WAL receiver; ``now`` is the server's clock."""
    out: list[Metric] = []
    receive, replay, replay_ts = replica.get("receive"), replica.get("replay"), replica.get("replay_ts")
    # Lag is "now - last replayed commit" only while WAL is waiting to be
    # replayed; when everything received is replayed the replica is current,
    # however long the primary has been idle.
    if receive is None or replay is None or float(receive) <= float(replay):
        lag = 0.0
    elif replay_ts is not None:
        lag = max(0.0, now - float(replay_ts))
    else:
        lag = math.nan
    out.append(
        GaugeMetricFamily(
            "pg_replication_lag_seconds",
            "On a replica: age of the last replayed transaction while WAL awaits replay, 0 when caught up.",
            value=lag,
        )
    )
    if receive is not None and replay is not None:
        out.append(
            GaugeMetricFamily(
                "pg_replication_lag_bytes",
                "On a replica: WAL received but not replayed yet.",
                value=max(0.0, float(receive) - float(replay)),
            )
        )
        out.append(
            CounterMetricFamily(
                "pg_replication_received_wal_bytes", "On a replica: WAL position received.", value=float(receive)
            )
        )
        out.append(
            CounterMetricFamily(
                "pg_replication_replayed_wal_bytes", "On a replica: WAL position replayed.", value=float(replay)
            )
        )
    out.append(
        GaugeMetricFamily(
            "pg_replication_replay_paused", "1 if WAL replay is paused.", value=1.0 if replica.get("paused") else 0.0
        )
    )
    status = GaugeMetricFamily(
        "pg_stat_wal_receiver_up",
        "On a replica: 1 if the WAL receiver is streaming from the primary; labels carry its status.",
        labels=["status", "sender_host", "slot_name"],
    )
    for st, host, slot in receivers:
        status.add_metric([st or "", host, slot], 1.0 if st == "streaming" else 0.0)
    if not receivers:
        status.add_metric(["stopped", "", ""], 0.0)
    out.append(status)
    return out
