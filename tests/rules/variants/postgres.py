"""PostgreSQL roles as variants: a primary with a streaming replica, and that replica.

Both are captured from the real exporter against the suite's shared pair
(``pg_replication``: a primary and a replica made with ``pg_basebackup -R``), as the
``monitor`` role (pg_monitor only), configured as examples/config.yml configures them:

* **primary** (`main`): the application's database, `databases: [appdb]` and the shipped
  examples/queries.yaml, so the data-retention example's `pg_retention_*` is really emitted
  (with the one GRANT it documents).  A primary that streams to a replica usually keeps a
  physical slot for it: one is created for the capture (and dropped after), so the slot
  series exist; it is inactive only because the suite's replica was not started with
  `primary_slot_name`, and the healthy twin has the replica attached to it.  The replica
  shows up as one `pg_stat_replication_*` row per replica.
* **replica** (`replica`): no custom queries (examples/config.yml gives them to the primary
  only: on a replica the same query reports the primary's table a second time).  It emits
  `pg_replication_lag_*`, the WAL positions and `pg_stat_wal_receiver_up`, no slots and no
  `pg_stat_replication` rows; its `pg_stat_database` counters are its own read-only
  traffic, while `pg_database_size_bytes` and `pg_database_frozen_xid_age` mirror the
  primary's catalog (replayed WAL).

Nothing is left changed on the shared servers: the GRANT is the one tests/collectors/
test_postgres.py makes too, and the slot is dropped after the scrape.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Sample,
    Source,
    Variant,
    becomes,
    constant,
    exporter_incidents,
    grows,
    keeps_growing,
    source_down,
    stops,
    vanishes,
)
from tests.servers.postgres import MONITOR_PASSWORD, PgReplication, wait_replica_caught_up

ROOT = Path(__file__).resolve().parents[3]
QUERIES = ROOT / "examples" / "queries.yaml"
SLOT = "matrix_standby"


def _config(name: str, dsn: str, extra: str = "") -> str:
    return f"global:\n  scrape_timeout: 10s\npostgres:\n  - name: {name}\n    dsn: {dsn}\n{extra}"


async def primary(request: pytest.FixtureRequest) -> str:
    pair: PgReplication = request.getfixturevalue("pg_replication")
    pg = pair.primary
    # examples/queries.yaml's retention query reads this table as the exporter's role
    pg.execute("GRANT SELECT ON events TO monitor", "appdb")
    pg.query(f"SELECT pg_create_physical_replication_slot('{SLOT}', true)")
    try:
        wait_replica_caught_up(pair)
        extra = f"    databases: [appdb]\n    custom_queries_file: {QUERIES}\n"
        async with exporter(_config("main", pg.dsn("monitor", "appdb", MONITOR_PASSWORD), extra)) as client:
            return await scrape(client)
    finally:
        pg.query(f"SELECT pg_drop_replication_slot('{SLOT}')")


async def replica(request: pytest.FixtureRequest) -> str:
    pair: PgReplication = request.getfixturevalue("pg_replication")
    wait_replica_caught_up(pair)
    async with exporter(_config("replica", pair.replica.dsn("monitor", "appdb", MONITOR_PASSWORD))) as client:
        return await scrape(client)


# ------------------------------------------------------------------ a healthy pair

APP = {"datname": "appdb"}
GIB = 1024**3
MIB = 1024**2
DAY = 86400
# The application's database: 50 GiB growing 0.5% a day.
SIZE = 50 * GIB
# WAL written by the primary (and streamed to the replica): about 1 GiB an hour.
WAL_PER_MINUTE = 16 * MIB
# The retention example: a daily cleanup job deletes rows older than 28 days (2 days
# inside the 30-day policy), at minute 200 and every 1440 after; in between the oldest
# row ages with the clock: from 28 days up to 29 days.
CLEANUP_AT = 200
STAGES = ("write", "flush", "replay")
KEEP = 28 * DAY


def _oldest_row(_s: Sample, t: int) -> float:
    return KEEP + 60 * ((t - CLEANUP_AT) % 1440)


HEALTHY = (
    Rule("pg_up", constant(1)),
    # 20 client backends of the 57 the applications may use (max_connections 60, 3 reserved)
    Rule("pg_stat_database_numbackends", constant(20), APP),
    # 50 transactions/s, a few rollbacks, a 99% buffer-cache hit ratio at 20 block reads/s
    Rule("pg_stat_database_xact_commit_total", grows(3000), APP),
    Rule("pg_stat_database_xact_rollback_total", grows(10), APP),
    Rule("pg_stat_database_blks_hit_total", grows(120_000), APP),
    Rule("pg_stat_database_blks_read_total", grows(1200), APP),
    Rule("pg_stat_database_deadlocks_total", constant()),
    # OLTP transactions last milliseconds to seconds
    Rule("pg_stat_activity_max_tx_duration_seconds", constant(2), APP),
    Rule("pg_stat_activity_max_idle_in_transaction_seconds", constant(0.5), APP),
    # autovacuum keeps the xid age below autovacuum_freeze_max_age (200 million); the age
    # grows with the primary's write transactions (1500 a minute) between its freezes
    Rule("pg_database_frozen_xid_age", lambda _s, t: 150e6 + 1500 * t),
    Rule("pg_database_size_bytes", lambda _s, t: SIZE * (1 + 0.005 * t / 1440), APP),
    Rule("pg_retention_oldest_row_age_seconds", _oldest_row),
    # the primary's slot, held by its streaming replica, which confirms WAL as it goes
    Rule("pg_replication_slot_active", constant(1)),
    Rule("pg_replication_slot_wal_retained_bytes", constant(2 * MIB)),
    # the replica as the primary sees it: a moment behind, as a busy primary's replica is
    *(Rule(f"pg_stat_replication_{stage}_lag_seconds", constant(0.2)) for stage in STAGES),
    *(Rule(f"pg_stat_replication_{stage}_lag_bytes", constant(64 * 1024)) for stage in STAGES),
    # the replica's own view: WAL arrives and is replayed as it comes
    Rule("pg_replication_lag_seconds", constant(0.5)),
    Rule("pg_replication_lag_bytes", constant(64 * 1024)),
    Rule("pg_replication_received_wal_bytes_total", grows(WAL_PER_MINUTE)),
    Rule("pg_replication_replayed_wal_bytes_total", grows(WAL_PER_MINUTE)),
    Rule("pg_stat_wal_receiver_up", constant(1)),
    Rule("pg_replication_replay_paused", constant(0)),
    # MultiXacts are used far less than xids: autovacuum keeps their age well below
    # autovacuum_multixact_freeze_max_age (400 million)
    Rule("pg_database_frozen_mxid_age", lambda _s, t: 20e6 + 100 * t),
    # hot rows: a session waits for another's row lock now and then, for milliseconds
    Rule("pg_stat_activity_blocked_connections", lambda _s, t: 1.0 if t % 5 == 2 else 0.0, APP),
    # the custom query works: its error counter stays where it was
    Rule("stack_exporter_query_errors_total", constant()),
    *EXPORTER_HEALTHY,
)

# The replica's own traffic: read-only queries (commits without xids), and reports that
# run for minutes.  Its database sizes and xid ages are the primary's (above).
REPLICA_HEALTHY = (
    Rule("pg_stat_database_numbackends", constant(12), APP),
    Rule("pg_stat_database_xact_commit_total", grows(1200), APP),
    Rule("pg_stat_database_xact_rollback_total", grows(2), APP),
    Rule("pg_stat_activity_max_tx_duration_seconds", constant(600), APP),
)


# ------------------------------------------------------------------ incidents


def _app(_variant: Variant, _samples: Sequence[Sample]) -> dict[str, str]:
    return dict(APP)


def _target(variant: Variant, samples: Sequence[Sample]) -> dict[str, str]:
    (target,) = {s.label("target") for s in samples if s.name == "pg_up"}
    return {"target": str(target)}


def _lag(severity: str, within: int) -> Incident:
    """Replay stalls on the replica (an I/O-bound replay, or a query holding a conflict
    with max_standby_streaming_delay = -1): WAL keeps arriving, nothing is replayed, and
    the age of the last replayed transaction grows with the clock."""
    return Incident(
        f"the replica replays WAL behind its primary ({severity})",
        "PostgresReplicationLag",
        severity,
        (
            Change("pg_replication_lag_seconds", lambda _s, t, _start: 60.0 * t),
            Change("pg_replication_lag_bytes", keeps_growing(WAL_PER_MINUTE)),
            Change("pg_replication_replayed_wal_bytes_total", stops()),
        ),
        fires_within=within,
        required=(("pg_replication_lag_seconds", {}),),
        expect_labels=_target,
    )


def _mxid_wraparound(severity: str, age: float) -> Incident:
    """A workload of shared row locks (foreign-key checks, SELECT ... FOR SHARE) while
    autovacuum cannot freeze appdb: the MultiXact age passes the threshold and grows."""
    return Incident(
        f"MultiXact-ID age above the {severity} threshold",
        "PostgresMultiXactWraparound",
        severity,
        (Change("pg_database_frozen_mxid_age", lambda _s, t, _start: age + 1000 * t, APP),),
        fires_within=20,
        expect_labels=_app,
    )


def _primary(samples: Sequence[Sample]) -> bool:
    """The server is not in recovery: autovacuum and dead tuples are the primary's (a
    replica's pg_stat_user_tables counts no replayed writes and autovacuum never runs there)."""
    return any(s.name == "pg_replication_is_replica" and s.value == 0 for s in samples)


def _connections(severity: str, backends: int) -> Incident:
    return Incident(
        f"connections above the {severity} threshold",
        "PostgresTooManyConnections",
        severity,
        (Change("pg_stat_database_numbackends", becomes(backends), APP),),
        fires_within=15,
        expect_labels=_target,
    )


def _wraparound(severity: str, age: float) -> Incident:
    """Autovacuum cannot freeze appdb (an old prepared transaction or a stuck slot holds
    xmin back): the age passes the threshold and keeps growing."""
    return Incident(
        f"transaction-ID age above the {severity} threshold",
        "PostgresTxIDWraparound",
        severity,
        (Change("pg_database_frozen_xid_age", lambda _s, t, _start: age + 1500 * t, APP),),
        fires_within=20,
        expect_labels=_app,
    )


INCIDENTS = (
    # escalation.postgresDown (15m) instead of the 1m `for`
    source_down(
        "the server cannot be reached",
        "PostgresDown",
        "critical",
        "pg_up",
        10,
        expect_labels=_target,
        escalates_within=25,
    ),
    _connections("warning", 48),  # 48 / 57 = 84%
    _connections("critical", 55),  # 96%
    _lag("warning", 10),
    _lag("critical", 15),
    Incident(
        # The link to the primary drops (network, primary restart, pg_hba): the receiver is
        # gone, WAL stops arriving and everything received is replayed, so the lag figure
        # (age while WAL awaits replay) stays 0: only the receiver tells.
        "the replica has stopped streaming from its primary",
        "PostgresReplicaNotStreaming",
        "critical",
        (
            Change("pg_stat_wal_receiver_up", becomes(0)),
            Change("pg_replication_received_wal_bytes_total", stops()),
            Change("pg_replication_replayed_wal_bytes_total", stops()),
            Change("pg_replication_lag_seconds", becomes(0)),
            Change("pg_replication_lag_bytes", becomes(0)),
        ),
        fires_within=15,
        required=(("pg_stat_wal_receiver_up", {}),),
        expect_labels=_target,
    ),
    Incident(
        # The replica holding the slot goes away: the slot turns inactive and keeps every
        # WAL segment written since, at the primary's WAL rate.
        "a replication slot nobody consumes retains WAL",
        "PostgresInactiveReplicationSlot",
        "warning",
        (
            Change("pg_replication_slot_active", becomes(0)),
            Change("pg_replication_slot_wal_retained_bytes", keeps_growing(WAL_PER_MINUTE)),
        ),
        fires_within=100,
    ),
    Incident(
        # a deadlock every five minutes (on a replica: advisory locks, which work there)
        "transactions deadlock",
        "PostgresDeadlocks",
        "warning",
        (Change("pg_stat_database_deadlocks_total", keeps_growing(0.2), APP),),
        fires_within=15,
        expect_labels=_app,
    ),
    Incident(
        "a transaction stays open for over an hour",
        "PostgresLongRunningTransaction",
        "warning",
        (Change("pg_stat_activity_max_tx_duration_seconds", lambda _s, t, start: start + 60.0 * t, APP),),
        fires_within=70,
        expect_labels=_app,
    ),
    Incident(
        "a session sits idle in a transaction",
        "PostgresIdleInTransaction",
        "warning",
        (Change("pg_stat_activity_max_idle_in_transaction_seconds", lambda _s, t, _start: 60.0 * t, APP),),
        fires_within=15,
        expect_labels=_app,
    ),
    _wraparound("warning", 1.05e9),
    _wraparound("critical", 1.55e9),
    Incident(
        # the working set outgrows memory: 600 block reads/s from disk, a 71% hit ratio
        "the buffer cache hit ratio drops",
        "PostgresLowCacheHitRatio",
        "warning",
        (
            Change("pg_stat_database_blks_read_total", keeps_growing(36_000), APP),
            Change("pg_stat_database_blks_hit_total", keeps_growing(90_000), APP),
        ),
        fires_within=80,
        expect_labels=_app,
    ),
    Incident(
        # a steady day, then 30% more data within six hours (a runaway import or log table)
        "a database grows unusually fast",
        "PostgresDatabaseGrowth",
        "warning",
        (Change("pg_database_size_bytes", keeps_growing(SIZE * 0.3 / 360), APP),),
        fires_within=300,
        start=1440 + 60,
        expect_labels=_app,
    ),
    Incident(
        # the cleanup job stops just before its daily run: the oldest row keeps ageing,
        # passes the 30-day policy a day and a half later, and the alert waits an hour
        "rows outlive the data-retention policy",
        "PostgresDataRetentionExceeded",
        "warning",
        (Change("pg_retention_oldest_row_age_seconds", lambda _s, t, start: start + 60.0 * t),),
        fires_within=1550,
        expect_labels=lambda _v, _s: {"table": "events"},
    ),
    _mxid_wraparound("warning", 1.05e9),
    _mxid_wraparound("critical", 1.55e9),
    Incident(
        # an ALTER TABLE waits behind a long transaction and every query of the table
        # queues behind it (on a replica: advisory locks, which work there)
        "sessions pile up behind a lock",
        "PostgresSessionsBlocked",
        "warning",
        (Change("pg_stat_activity_blocked_connections", becomes(12), APP),),
        fires_within=15,
        expect_labels=_app,
    ),
    Incident(
        # an abandoned transaction holds the xmin horizon: autovacuum runs no more on the
        # table (its last run ages with the clock) while updates leave dead rows behind
        "dead rows pile up while autovacuum stalls",
        "PostgresDeadTuplesAccumulating",
        "warning",
        (
            Change("pg_stat_user_tables_n_live_tup", becomes(1_000_000), {"relname": "events"}),
            Change("pg_stat_user_tables_n_dead_tup", lambda _s, t, _start: 100_000 + 2000.0 * t, {"relname": "events"}),
            Change(
                "pg_stat_user_tables_last_autovacuum_age_seconds",
                lambda _s, t, _start: DAY + 60.0 * t,
                {"relname": "events"},
            ),
        ),
        fires_within=200,
        required=(("pg_stat_user_tables_n_dead_tup", {"relname": "events"}),),
        applies=_primary,
        expect_labels=lambda _v, _s: {"relname": "events"},
    ),
    Incident(
        # a logical subscriber (or a replica) attached to the slot cannot keep up: the slot
        # is 9 GiB behind and keeps falling behind, at half the primary's WAL rate
        "an active slot's consumer falls behind",
        "PostgresReplicationSlotLagging",
        "warning",
        (
            Change(
                "pg_replication_slot_wal_retained_bytes", lambda _s, t, start: start + 9 * GIB + WAL_PER_MINUTE / 2 * t
            ),
        ),
        fires_within=45,
        required=(("pg_replication_slot_wal_retained_bytes", {}), ("pg_replication_slot_active", {})),
    ),
    Incident(
        # someone ran pg_wal_replay_pause() (or a PITR ended with recovery_target_action =
        # pause): WAL keeps arriving, nothing is replayed
        "WAL replay is paused on the replica",
        "PostgresReplayPaused",
        "warning",
        (
            Change("pg_replication_replay_paused", becomes(1)),
            Change("pg_replication_replayed_wal_bytes_total", stops()),
        ),
        fires_within=20,
        required=(("pg_replication_replay_paused", {}),),
        expect_labels=_target,
    ),
    Incident(
        # the retention query breaks (a renamed column, a revoked GRANT): its series is
        # dropped at every scrape and its error counter grows at every scrape
        "a custom query keeps failing",
        "StackExporterQueryFailing",
        "warning",
        (
            Change("stack_exporter_query_errors_total", keeps_growing(1), {"query": "pg_retention"}),
            Change("pg_retention_oldest_row_age_seconds", vanishes()),
        ),
        fires_within=30,
        required=(("stack_exporter_query_errors_total", {"query": "pg_retention"}),),
        expect_labels=lambda _v, _s: {"query": "pg_retention"},
    ),
    Incident(
        # the same broken query, seen from the alert it feeds: the retention series that was
        # there an hour ago is gone while the server answers
        "the data-retention check stops reporting",
        "PostgresDataRetentionUnknown",
        "warning",
        (
            Change("stack_exporter_query_errors_total", keeps_growing(1), {"query": "pg_retention"}),
            Change("pg_retention_oldest_row_age_seconds", vanishes()),
        ),
        fires_within=50,
        required=(("pg_retention_oldest_row_age_seconds", {}),),
        expect_labels=lambda _v, _s: {"table": "events"},
    ),
    *exporter_incidents("pg_up"),
)

SOURCE = Source(
    name="postgres",
    docs="postgres",
    variants=(
        Variant("postgres", "primary", primary),
        Variant("postgres", "replica", replica, healthy=REPLICA_HEALTHY),
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
