"""Metric families from the core query's JSON document: server, activity, locks, databases, tables.

Each builder takes the decoded document (or one part of it) and returns fresh
families; none of them talks to the server. Replication has its own module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.postgres.replication import replication_families
from exporter.collectors.postgres.sql import SETTINGS

SIZE_REFRESH_SECONDS = 60.0  # pg_database_size walks every file of every database

# pg_settings.unit -> (factor to the base unit, metric name suffix)
_UNIT_SCALE = {
    "B": (1.0, "_bytes"),
    "kB": (1024.0, "_bytes"),
    "8kB": (8192.0, "_bytes"),
    "16kB": (16384.0, "_bytes"),
    "MB": (1024.0**2, "_bytes"),
    "GB": (1024.0**3, "_bytes"),
    "ms": (0.001, "_seconds"),
    "s": (1.0, "_seconds"),
    "min": (60.0, "_seconds"),
    "h": (3600.0, "_seconds"),
    "d": (86400.0, "_seconds"),
}
LOCK_MODES = (
    "accesssharelock",
    "rowsharelock",
    "rowexclusivelock",
    "shareupdateexclusivelock",
    "sharelock",
    "sharerowexclusivelock",
    "exclusivelock",
    "accessexclusivelock",
)

# (column, metric, kind, help, scale)
DATABASE_METRICS: tuple[tuple[str, str, str, str, float], ...] = (
    ("numbackends", "pg_stat_database_numbackends", "g", "Backends connected to the database.", 1),
    ("xact_commit", "pg_stat_database_xact_commit", "c", "Transactions committed.", 1),
    ("xact_rollback", "pg_stat_database_xact_rollback", "c", "Transactions rolled back.", 1),
    ("blks_read", "pg_stat_database_blks_read", "c", "Disk blocks read (not found in shared buffers).", 1),
    ("blks_hit", "pg_stat_database_blks_hit", "c", "Block reads served by shared buffers.", 1),
    ("tup_returned", "pg_stat_database_tup_returned", "c", "Rows returned by queries.", 1),
    ("tup_fetched", "pg_stat_database_tup_fetched", "c", "Rows fetched by queries.", 1),
    ("tup_inserted", "pg_stat_database_tup_inserted", "c", "Rows inserted.", 1),
    ("tup_updated", "pg_stat_database_tup_updated", "c", "Rows updated.", 1),
    ("tup_deleted", "pg_stat_database_tup_deleted", "c", "Rows deleted.", 1),
    ("conflicts", "pg_stat_database_conflicts", "c", "Queries cancelled by recovery conflicts (replicas).", 1),
    ("temp_files", "pg_stat_database_temp_files", "c", "Temporary files created by queries.", 1),
    ("temp_bytes", "pg_stat_database_temp_bytes", "c", "Bytes written to temporary files.", 1),
    ("deadlocks", "pg_stat_database_deadlocks", "c", "Deadlocks detected.", 1),
    ("blk_read_time", "pg_stat_database_blk_read_time_seconds", "c", "Time reading blocks (track_io_timing).", 0.001),
    ("blk_write_time", "pg_stat_database_blk_write_time_seconds", "c", "Time writing blocks (track_io_timing).", 0.001),
    ("sessions", "pg_stat_database_sessions", "c", "Sessions established (PostgreSQL 14+).", 1),
    ("sessions_abandoned", "pg_stat_database_sessions_abandoned", "c", "Sessions ended by a lost client.", 1),
    ("sessions_fatal", "pg_stat_database_sessions_fatal", "c", "Sessions ended by fatal errors.", 1),
    ("sessions_killed", "pg_stat_database_sessions_killed", "c", "Sessions terminated by an operator.", 1),
    ("session_time", "pg_stat_database_session_time_seconds", "c", "Time spent by sessions.", 0.001),
    ("active_time", "pg_stat_database_active_time_seconds", "c", "Time spent executing statements.", 0.001),
    (
        "idle_in_transaction_time",
        "pg_stat_database_idle_in_transaction_time_seconds",
        "c",
        "Time spent idle in a transaction.",
        0.001,
    ),
    ("xid_age", "pg_database_frozen_xid_age", "g", "Transaction-ID age of the oldest unfrozen row (wraparound).", 1),
    ("mxid_age", "pg_database_frozen_mxid_age", "g", "Multixact-ID age of the oldest unfrozen row (wraparound).", 1),
)

# (column, metric, help, scale)
BGWRITER_METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed", "Scheduled checkpoints performed.", 1),
    ("checkpoints_req", "pg_stat_bgwriter_checkpoints_req", "Requested checkpoints performed.", 1),
    (
        "checkpoint_write_time",
        "pg_stat_bgwriter_checkpoint_write_time_seconds",
        "Time spent writing checkpoint files.",
        0.001,
    ),
    (
        "checkpoint_sync_time",
        "pg_stat_bgwriter_checkpoint_sync_time_seconds",
        "Time spent syncing checkpoint files.",
        0.001,
    ),
    ("buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint", "Buffers written during checkpoints.", 1),
    ("buffers_clean", "pg_stat_bgwriter_buffers_clean", "Buffers written by the background writer.", 1),
    ("maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean", "Background writer stops for writing too much.", 1),
    ("buffers_backend", "pg_stat_bgwriter_buffers_backend", "Buffers written by backends (PostgreSQL < 17).", 1),
    (
        "buffers_backend_fsync",
        "pg_stat_bgwriter_buffers_backend_fsync",
        "Backends that had to fsync themselves (PostgreSQL < 17).",
        1,
    ),
    ("buffers_alloc", "pg_stat_bgwriter_buffers_alloc", "Buffers allocated.", 1),
)


def core_families(core: Mapping[str, Any], sizes: Mapping[str, float]) -> list[Metric]:
    """Everything the core query's document holds except table health; ``sizes`` by database name."""
    databases = core.get("databases") or []
    return [
        *server_families(core),
        *activity_families(core),
        *lock_families(core.get("locks") or (), databases),
        *database_families(databases, sizes),
        *replication_families(core),
        *bgwriter_families(core.get("bgwriter") or {}),
    ]


def server_families(core: Mapping[str, Any]) -> list[Metric]:
    version = GaugeMetricFamily(
        "pg_version_info", "Always 1; labels carry the server version.", labels=["version", "version_num"]
    )
    version.add_metric([str(core["version"]), str(core["version_num"])], 1.0)
    start = GaugeMetricFamily(
        "pg_postmaster_start_time_seconds", "Unix time the server started.", value=float(core["start"])
    )
    return [version, start, *settings_families(core.get("settings") or [])]


def settings_families(rows: Sequence[Sequence[Any]]) -> list[Metric]:
    docs = dict(SETTINGS)
    out: list[Metric] = []
    for name, setting, unit, vartype in sorted(rows, key=lambda r: str(r[0])):
        if vartype == "bool":
            value = 1.0 if setting == "on" else 0.0
            suffix = ""
        else:
            try:
                value = float(setting)
            except (TypeError, ValueError):
                continue
            scale, suffix = _UNIT_SCALE.get(unit or "", (1.0, ""))
            # -1 means "off" for several settings; scaling would turn it into a false size or time
            if value >= 0:
                value *= scale
        out.append(GaugeMetricFamily(f"pg_settings_{name}{suffix}", docs.get(name, name), value=value))
    return out


def activity_families(core: Mapping[str, Any]) -> list[Metric]:
    conns = GaugeMetricFamily(
        "pg_stat_activity_connections",
        "Client connections by database, user and state.",
        labels=["datname", "usename", "state"],
    )
    for datname, usename, state, n in core.get("activity") or ():
        conns.add_metric([datname, usename, state], float(n))
    dblabels = ["datname"]
    max_tx = GaugeMetricFamily(
        "pg_stat_activity_max_tx_duration_seconds", "Age of the oldest open transaction.", labels=dblabels
    )
    max_idle = GaugeMetricFamily(
        "pg_stat_activity_max_idle_in_transaction_seconds",
        "How long the oldest idle-in-transaction session has been idle.",
        labels=dblabels,
    )
    waiting = GaugeMetricFamily("pg_stat_activity_waiting_connections", "Sessions waiting for a lock.", labels=dblabels)
    blocked = GaugeMetricFamily(
        "pg_stat_activity_blocked_connections",
        "Sessions waiting for a lock held by another session (pg_blocking_pids).",
        labels=dblabels,
    )
    for datname, mx, mi, w, b in core.get("xact") or ():
        max_tx.add_metric([datname], float(mx))
        max_idle.add_metric([datname], float(mi))
        waiting.add_metric([datname], float(w))
        blocked.add_metric([datname], float(b))
    return [conns, max_tx, max_idle, waiting, blocked]


def lock_families(rows: Sequence[Sequence[Any]], databases: Sequence[Mapping[str, Any]]) -> list[Metric]:
    # every table-lock mode for every database, so series do not come and go
    held = GaugeMetricFamily("pg_locks_held", "Granted locks by database and mode.", labels=["datname", "mode"])
    lwait = GaugeMetricFamily(
        "pg_locks_waiting", "Lock requests not granted yet, by database and mode.", labels=["datname", "mode"]
    )
    locks: dict[tuple[str, str], tuple[float, float]] = {}
    for d in databases:
        if d.get("datallowconn"):
            for mode in LOCK_MODES:
                locks[(d["datname"], mode)] = (0.0, 0.0)
    for datname, mode, h, w in rows:
        locks[(datname, mode)] = (float(h), float(w))
    for (datname, mode), (h, w) in sorted(locks.items()):
        held.add_metric([datname, mode], h)
        lwait.add_metric([datname, mode], w)
    return [held, lwait]


def database_families(databases: Sequence[Mapping[str, Any]], sizes: Mapping[str, float]) -> list[Metric]:
    labels = ["datname"]
    out: list[Metric] = []
    for col, name, kind, doc, scale in DATABASE_METRICS:
        fam: Metric
        if kind == "c":
            fam = CounterMetricFamily(name, doc, labels=labels)
        else:
            fam = GaugeMetricFamily(name, doc, labels=labels)
        for d in databases:
            v = d.get(col)
            if v is not None:
                fam.add_metric([d["datname"]], float(v) * scale)
        if fam.samples:
            out.append(fam)
    size = GaugeMetricFamily(
        "pg_database_size_bytes",
        f"Disk space used by the database (refreshed at most every {SIZE_REFRESH_SECONDS:g} s).",
        labels=labels,
    )
    for datname, value in sorted(sizes.items()):
        size.add_metric([datname], value)
    out.append(size)
    return out


def bgwriter_families(row: Mapping[str, Any]) -> list[Metric]:
    out: list[Metric] = []
    for col, name, doc, scale in BGWRITER_METRICS:
        v = row.get(col)
        if v is not None:
            out.append(CounterMetricFamily(name, doc, value=float(v) * scale))
    return out


def table_families(per_db: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[Metric]:
    """Table health, from the core document's tables and those of the extra databases."""
    labels = ["datname", "schemaname", "relname"]
    fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "live": GaugeMetricFamily("pg_stat_user_tables_n_live_tup", "Estimated live rows.", labels=labels),
        "dead": GaugeMetricFamily("pg_stat_user_tables_n_dead_tup", "Estimated dead rows.", labels=labels),
        "seq": CounterMetricFamily("pg_stat_user_tables_seq_scan", "Sequential scans.", labels=labels),
        "idx": CounterMetricFamily("pg_stat_user_tables_idx_scan", "Index scans.", labels=labels),
        "vac": GaugeMetricFamily(
            "pg_stat_user_tables_last_autovacuum_age_seconds",
            "Seconds since the last autovacuum (absent if never).",
            labels=labels,
        ),
        "ana": GaugeMetricFamily(
            "pg_stat_user_tables_last_autoanalyze_age_seconds",
            "Seconds since the last autoanalyze (absent if never).",
            labels=labels,
        ),
        "size": GaugeMetricFamily(
            "pg_stat_user_tables_size_bytes",
            "Size with indexes and TOAST from pg_class page counts (as of the last VACUUM/ANALYZE; takes no lock).",
            labels=labels,
        ),
    }
    for datname, rows in per_db:
        for schema, rel, live, dead, seq, idx, vac, ana, size in rows:
            lv = [datname, schema, rel]
            fams["live"].add_metric(lv, float(live))
            fams["dead"].add_metric(lv, float(dead))
            fams["seq"].add_metric(lv, float(seq))
            fams["idx"].add_metric(lv, float(idx))
            if vac is not None:
                fams["vac"].add_metric(lv, float(vac))
            if ana is not None:
                fams["ana"].add_metric(lv, float(ana))
            fams["size"].add_metric(lv, float(size))
    return list(fams.values())


def free_connection_slots(core: Mapping[str, Any]) -> int | None:
    """Connection slots an ordinary role could still take, as the core query saw them.

    max_connections minus the slots reserved for superusers (and, on 16+, for roles
    with pg_use_reserved_connections) minus the client backends connected; None if a
    setting is missing.
    """
    settings = {str(r[0]): r[1] for r in core.get("settings") or ()}
    try:
        total = int(settings["max_connections"])
        reserved = int(settings["superuser_reserved_connections"]) + int(core.get("reserved_connections") or 0)
    except (KeyError, TypeError, ValueError):
        return None
    used = sum(int(r[3]) for r in core.get("activity") or ())
    return total - reserved - used
