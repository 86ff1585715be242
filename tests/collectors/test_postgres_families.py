"""The PostgreSQL collector's pure parts, without a server: SQL text and family builders.

The server-backed behaviour is in test_postgres.py; these pin the rules that a
live primary and replica rarely show (a lagging standby, a stopped WAL receiver)
and the package's import promise to PgBouncer.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

from prometheus_client.core import Metric

from exporter.collectors.postgres.families import settings_families
from exporter.collectors.postgres.replication import replication_families, standby_families
from exporter.collectors.postgres.sql import SQL_MARKER, core_sql, tables_sql
from tests.helpers import ROOT


def samples(fams: list[Metric]) -> dict[str, float]:
    return {s.name: s.value for fam in fams for s in fam.samples if not s.labels}


def test_tables_sql_is_the_core_querys_tables_part() -> None:
    alone = tables_sql(160000, 7)
    assert alone.startswith(f"{SQL_MARKER} SELECT (SELECT json_agg(")
    inner = alone.removeprefix(f"{SQL_MARKER} SELECT (").removesuffix(")::text")
    assert f"'tables', ({inner})" in core_sql(160000, 7, with_sizes=False)
    assert "'tables'" not in core_sql(160000, 0, with_sizes=False)


def test_core_sql_follows_the_server_version() -> None:
    assert "pg_stat_checkpointer" in core_sql(170000, 0, with_sizes=False)
    assert "pg_stat_checkpointer" not in core_sql(160000, 0, with_sizes=False)
    assert "s.sessions_killed" in core_sql(140000, 0, with_sizes=False)
    assert "s.sessions_killed" not in core_sql(130000, 0, with_sizes=False)
    assert "pg_database_size" in core_sql(160000, 0, with_sizes=True)


def test_settings_convert_to_base_units_and_keep_minus_one() -> None:
    fams = settings_families(
        [
            ["shared_buffers", "16384", "8kB", "integer"],
            ["statement_timeout", "1500", "ms", "integer"],
            ["autovacuum", "on", None, "bool"],
            ["max_wal_size", "-1", "MB", "integer"],
        ]
    )
    assert samples(fams) == {
        "pg_settings_shared_buffers_bytes": 16384 * 8192.0,
        "pg_settings_statement_timeout_seconds": 1.5,
        "pg_settings_autovacuum": 1.0,
        "pg_settings_max_wal_size_bytes": -1.0,
    }


def test_a_standby_is_caught_up_once_everything_received_is_replayed() -> None:
    # the primary may have been idle for an hour: the last replayed commit is old, the lag is 0
    replica = {"receive": 100, "replay": 100, "replay_ts": 0.0, "paused": False}
    got = samples(standby_families(replica, 3600.0, [["streaming", "primary", "slot"]]))
    assert got["pg_replication_lag_seconds"] == 0.0
    assert got["pg_replication_lag_bytes"] == 0.0


def test_a_lagging_standby_reports_the_age_of_its_last_replay() -> None:
    replica = {"receive": 300, "replay": 100, "replay_ts": 990.0, "paused": True}
    got = samples(standby_families(replica, 1000.0, []))
    assert got["pg_replication_lag_seconds"] == 10.0
    assert got["pg_replication_lag_bytes"] == 200.0
    assert got["pg_replication_replay_paused"] == 1.0
    unknown = {"receive": 300, "replay": 100, "replay_ts": None}
    assert math.isnan(samples(standby_families(unknown, 1000.0, []))["pg_replication_lag_seconds"])


def test_a_standby_without_a_wal_receiver_reports_it_stopped() -> None:
    fams = standby_families({"receive": 1, "replay": 1}, 0.0, [])
    (receiver,) = [f for f in fams if f.name == "pg_stat_wal_receiver_up"]
    assert [(s.labels, s.value) for s in receiver.samples] == [
        ({"status": "stopped", "sender_host": "", "slot_name": ""}, 0.0)
    ]


def test_a_primary_has_no_standby_families() -> None:
    core: dict[str, Any] = {
        "now": 1.0,
        "replica": None,
        "replicas": [["r1", "10.0.0.2", "streaming", "async", None, None, None, 0, 0, None]],
        "slots": [],
    }
    names = [f.name for f in replication_families(core)]
    assert names[0] == "pg_replication_is_replica"
    assert "pg_stat_replication_replay_lag_seconds" in names
    assert not any(n.startswith(("pg_replication_lag", "pg_stat_wal_receiver")) for n in names)
    (idle,) = [f for f in replication_families(core) if f.name == "pg_stat_replication_write_lag_seconds"]
    # PostgreSQL clears the lag times of an idle, caught-up replica: 0, not absent
    assert [s.value for s in idle.samples] == [0.0]


def test_pgbouncer_needs_no_postgresql_driver() -> None:
    code = "import sys, exporter.collectors.pgbouncer; assert 'asyncpg' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
