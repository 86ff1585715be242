"""The PostgreSQL collector against a real primary, streaming replica and fresh servers.

The exporter connects as ``monitor``, a non-superuser holding only pg_monitor (plus
SELECT on the one table a custom query reads), so every test also proves the
documented GRANTs are enough.  Values are checked against the server's own views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.config import default_config
from peers.process import wait_until
from tests.helpers import check_config, exporter, promtool_check, scrape, value, values, write_config
from tests.servers.postgres import (
    APP_PASSWORD,
    MONITOR_PASSWORD,
    PgReplication,
    PostgresServer,
    wait_replica_caught_up,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def pg_config(*targets: tuple[str, str], timeout: str = "5s", **extra: Any) -> dict[str, Any]:
    """One postgres target per (name, dsn), each with the ``extra`` keys."""
    return {"global": {"scrape_timeout": timeout}, "postgres": [{"name": n, "dsn": d, **extra} for n, d in targets]}


def monitor_dsn(server: PostgresServer, db: str = "appdb") -> str:
    return server.dsn("monitor", db, MONITOR_PASSWORD)


@pytest.fixture(scope="module", autouse=True)
def _grants(pg_replication: PgReplication) -> None:
    # The data-retention example reads one table: the only grant beyond pg_monitor.
    with pg_replication.primary.connect("appdb") as conn:
        conn.execute("GRANT SELECT ON events TO monitor")
    wait_replica_caught_up(pg_replication)


@pytest.fixture
def sessions(pg_primary: PostgresServer) -> Iterator[list[psycopg.Connection[Any]]]:
    opened: list[psycopg.Connection[Any]] = []
    yield opened
    for conn in opened:
        conn.close()


def app_conn(server: PostgresServer, db: str = "appdb", autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(server.dsn("app", db, APP_PASSWORD), autocommit=autocommit)


# --------------------------------------------------------------------------- values


async def test_values_match_the_server_as_a_pg_monitor_user(pg_primary: PostgresServer) -> None:
    async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
        text = await scrape(http)
        # the exporter's own sessions, seen from the server while it holds them
        own = pg_primary.query(
            "SELECT usename, current_setting('statement_timeout'), count(*) FROM pg_stat_activity "
            "WHERE application_name = 'stack-exporter' GROUP BY 1, 2"
        )
    assert promtool_check(text) == ""
    assert value(text, "pg_up", target="main") == 1
    assert value(text, "stack_exporter_collector_success", collector="postgres", target="main") == 1
    assert own and own[0][0] == "monitor"
    assert 1 <= own[0][2] <= 3  # a small pool, not a connection per query
    (ver,) = values(text, "pg_version_info", target="main")
    assert ver.labels["version_num"] == pg_primary.scalar("SHOW server_version_num")
    assert value(text, "pg_settings_max_connections", target="main") == int(pg_primary.scalar("SHOW max_connections"))
    assert value(text, "pg_settings_superuser_reserved_connections", target="main") == int(
        pg_primary.scalar("SHOW superuser_reserved_connections")
    )
    shared = pg_primary.scalar("SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'")
    assert value(text, "pg_settings_shared_buffers_bytes", target="main") == shared
    start = pg_primary.scalar("SELECT extract(epoch FROM pg_postmaster_start_time())")
    assert value(text, "pg_postmaster_start_time_seconds", target="main") == pytest.approx(float(start), abs=0.01)
    size = pg_primary.scalar("SELECT pg_database_size('appdb')")
    assert value(text, "pg_database_size_bytes", target="main", datname="appdb") == pytest.approx(size, rel=0.05)
    commits = pg_primary.scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = 'appdb'")
    got = value(text, "pg_stat_database_xact_commit_total", target="main", datname="appdb")
    assert got is not None and 0 < got <= commits
    age = pg_primary.scalar("SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'appdb'")
    assert value(text, "pg_database_frozen_xid_age", target="main", datname="appdb") == pytest.approx(age, abs=50)
    assert value(text, "pg_replication_is_replica", target="main") == 0
    # checkpoints come from pg_stat_bgwriter on 15 (pg_stat_checkpointer on 17)
    timed = value(text, "pg_stat_bgwriter_checkpoints_timed_total", target="main")
    assert timed == pg_primary.scalar("SELECT checkpoints_timed FROM pg_stat_bgwriter")
    # the primary sees its replica
    (rep,) = values(text, "pg_stat_replication_info", target="main")
    assert rep.labels["state"] == "streaming"
    # table health for the DSN's database
    live = value(text, "pg_stat_user_tables_n_live_tup", target="main", datname="appdb", relname="events")
    assert live == pg_primary.scalar("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'events'", "appdb")


async def test_connections_are_counted_by_database_user_and_state(
    pg_primary: PostgresServer, sessions: list[psycopg.Connection[Any]]
) -> None:
    idle, in_tx = 4, 2
    for _ in range(idle):
        sessions.append(app_conn(pg_primary))
    for _ in range(in_tx):
        conn = app_conn(pg_primary, autocommit=False)
        conn.execute("SELECT 1")  # opens a transaction (not autocommit) and leaves it idle
        sessions.append(conn)
    await asyncio.sleep(0.3)
    async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
        text = await scrape(http)
    server = dict(
        pg_primary.query(
            "SELECT state, count(*) FROM pg_stat_activity WHERE usename = 'app' AND datname = 'appdb' GROUP BY 1"
        )
    )
    got_idle = value(text, "pg_stat_activity_connections", target="main", datname="appdb", usename="app", state="idle")
    got_tx = value(
        text,
        "pg_stat_activity_connections",
        target="main",
        datname="appdb",
        usename="app",
        state="idle in transaction",
    )
    assert got_idle == server["idle"] >= idle
    assert got_tx == server["idle in transaction"] == in_tx
    oldest = value(text, "pg_stat_activity_max_idle_in_transaction_seconds", target="main", datname="appdb")
    assert oldest is not None and oldest >= 0.2
    longest = value(text, "pg_stat_activity_max_tx_duration_seconds", target="main", datname="appdb")
    assert longest is not None and longest >= oldest


async def test_a_blocked_session_and_its_lock_show(
    pg_primary: PostgresServer, sessions: list[psycopg.Connection[Any]]
) -> None:
    holder = app_conn(pg_primary, autocommit=False)
    sessions.append(holder)
    holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # held until rollback
    waiter = app_conn(pg_primary)
    sessions.append(waiter)
    done = threading.Event()

    def wait_for_lock() -> None:
        with contextlib.suppress(psycopg.Error):
            waiter.execute("SELECT count(*) FROM events")
        done.set()

    thread = threading.Thread(target=wait_for_lock, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: pg_primary.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted") >= 1,
            10,
            message="a lock request waits",
        )
        async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
            text = await scrape(http)
    finally:
        holder.rollback()
        thread.join(10)
    assert done.is_set()
    assert value(text, "pg_stat_activity_waiting_connections", target="main", datname="appdb") == 1
    assert value(text, "pg_stat_activity_blocked_connections", target="main", datname="appdb") == 1
    assert value(text, "pg_locks_waiting", target="main", datname="appdb", mode="accesssharelock") == 1
    held = value(text, "pg_locks_held", target="main", datname="appdb", mode="accessexclusivelock")
    assert held is not None and held >= 1
    # every mode is present for every database, so series do not come and go
    assert value(text, "pg_locks_waiting", target="main", datname="postgres", mode="sharelock") == 0


# --------------------------------------------------------------------------- replication


async def test_replica_lag_rises_while_replay_is_paused_and_returns_to_zero(pg_replication: PgReplication) -> None:
    primary, replica = pg_replication.primary, pg_replication.replica
    config = pg_config(("primary", monitor_dsn(primary)), ("replica", monitor_dsn(replica, "postgres")))
    wait_replica_caught_up(pg_replication)
    async with exporter(config) as http:
        # idle primary, caught-up replica: 0, although the last replayed commit is old
        await asyncio.sleep(1.5)
        text = await scrape(http)
        stale = replica.scalar("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())")
        assert float(stale) > 1  # what the classic now() - pg_last_xact_replay_timestamp() would report
        assert value(text, "pg_replication_is_replica", target="replica") == 1
        assert value(text, "pg_replication_lag_seconds", target="replica") == 0
        assert value(text, "pg_replication_lag_bytes", target="replica") == 0
        (receiver,) = values(text, "pg_stat_wal_receiver_up", target="replica")
        assert receiver.value == 1 and receiver.labels["status"] == "streaming"

        replica.query("SELECT pg_wal_replay_pause()")
        try:
            with primary.connect("appdb") as conn:
                conn.execute("INSERT INTO events (created_at, body) SELECT now(), 'x' FROM generate_series(1, 2000)")
            target = primary.scalar("SELECT pg_current_wal_lsn()::text")
            wait_until(
                lambda: replica.scalar(f"SELECT pg_last_wal_receive_lsn() >= '{target}'::pg_lsn"),
                10,
                message="replica received the new WAL",
            )
            first = await scrape(http)
            await asyncio.sleep(1.1)
            second = await scrape(http)
            expected = replica.scalar("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")
        finally:
            replica.query("SELECT pg_wal_replay_resume()")
        lag1 = value(first, "pg_replication_lag_seconds", target="replica")
        lag2 = value(second, "pg_replication_lag_seconds", target="replica")
        assert lag1 is not None and lag2 is not None and 0 < lag1 < lag2
        assert lag2 - lag1 == pytest.approx(1.1, abs=0.5)
        behind = value(second, "pg_replication_lag_bytes", target="replica")
        assert behind is not None and behind > 0 and behind <= expected
        assert value(second, "pg_replication_replay_paused", target="replica") == 1
        replay_bytes = values(second, "pg_stat_replication_replay_lag_bytes", target="primary")
        assert replay_bytes and replay_bytes[0].value > 0

        wait_replica_caught_up(pg_replication)
        after = await scrape(http)
        assert value(after, "pg_replication_lag_seconds", target="replica") == 0
        assert value(after, "pg_replication_lag_bytes", target="replica") == 0
        assert value(after, "pg_replication_replay_paused", target="replica") == 0


async def test_replication_slot_retained_wal(pg_primary: PostgresServer) -> None:
    pg_primary.query("SELECT pg_create_physical_replication_slot('exporter_test_slot', true)")
    try:
        async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
            text = await scrape(http)
        labels = {"target": "main", "slot_name": "exporter_test_slot", "slot_type": "physical"}
        assert value(text, "pg_replication_slot_active", **labels) == 0
        retained = value(text, "pg_replication_slot_wal_retained_bytes", **labels)
        assert retained is not None and retained >= 0
    finally:
        pg_primary.query("SELECT pg_drop_replication_slot('exporter_test_slot')")


# --------------------------------------------------------------------------- faults


async def test_stopped_primary_is_down_in_time_and_recovers_without_restart(pg_fresh: PostgresServer) -> None:
    config = pg_config(("fresh", monitor_dsn(pg_fresh)), timeout="3s")
    async with exporter(config) as http:
        assert value(await scrape(http), "pg_up", target="fresh") == 1
        pg_fresh.stop()
        start = time.monotonic()
        text = await scrape(http)
        assert time.monotonic() - start < 3
        assert value(text, "pg_up", target="fresh") == 0
        assert value(text, "stack_exporter_collector_success", collector="postgres", target="fresh") == 0
        pg_fresh.start()
        assert value(await scrape(http), "pg_up", target="fresh") == 1


async def test_frozen_server_does_not_stall_the_scrape(pg_fresh: PostgresServer) -> None:
    config = pg_config(("fresh", monitor_dsn(pg_fresh)), timeout="1500ms")
    async with exporter(config) as http:
        assert value(await scrape(http), "pg_up", target="fresh") == 1
        pg_fresh.freeze()
        try:
            start = time.monotonic()
            text = await scrape(http)
            assert time.monotonic() - start < 2.5
            assert value(text, "pg_up", target="fresh") == 0
        finally:
            pg_fresh.thaw()
        # the collection cut at the deadline may still be unwinding (asyncpg cancels
        # the query on the server): the scrape after it is healthy again
        ups = [value(await scrape(http), "pg_up", target="fresh") for _ in range(2)]
        assert ups[-1] == 1


async def test_terminated_exporter_session_recovers_on_next_scrape(pg_primary: PostgresServer) -> None:
    async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
        assert value(await scrape(http), "pg_up", target="main") == 1
        killed = pg_primary.scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'stack-exporter') t"
        )
        assert killed >= 1
        await asyncio.sleep(0.2)
        assert value(await scrape(http), "pg_up", target="main") == 1


# --------------------------------------------------------------------------- custom queries

BAD_QUERIES = """\
pg_retention:
  query: "SELECT 'events' AS table, extract(epoch FROM now() - min(created_at)) AS oldest_row_age_seconds FROM events"
  metrics:
    - table: {usage: LABEL, description: "Table."}
    - oldest_row_age_seconds: {usage: GAUGE, description: "Age of the oldest row."}
slow:
  query: "SELECT 1 AS v FROM pg_sleep(3)"
  metrics:
    - v: {usage: GAUGE, description: "Never arrives."}
broken:
  query: "SELECT no_such_column FROM events"
  metrics:
    - no_such_column: {usage: GAUGE, description: "SQL error."}
nulls:
  query: "SELECT NULL::int AS v"
  metrics:
    - v: {usage: GAUGE, description: "NULL value."}
texty:
  query: "SELECT 'abc' AS v"
  metrics:
    - v: {usage: GAUGE, description: "Not a number."}
dupes:
  query: "SELECT 'a' AS k, 1 AS v UNION ALL SELECT 'a', 2"
  metrics:
    - k: {usage: LABEL, description: "Key."}
    - v: {usage: COUNTER, description: "Duplicate series."}
after:
  query: "SELECT 7 AS v"
  metrics:
    - v: {usage: COUNTER, description: "Runs after the failures."}
"""


async def test_failing_custom_queries_are_dropped_and_counted(pg_primary: PostgresServer, tmp_path: Path) -> None:
    queries = tmp_path / "queries.yaml"
    queries.write_text(BAD_QUERIES)
    config = pg_config(
        ("main", monitor_dsn(pg_primary)),
        custom_queries_file=str(queries),
        statement_timeout="1s",
        timeout="5s",
    )
    async with exporter(config) as http:
        start = time.monotonic()
        text = await scrape(http)
        elapsed = time.monotonic() - start
        text2 = await scrape(http)
    assert elapsed < 2.5  # the 3 s query was cut at statement_timeout (1 s)
    assert promtool_check(text) == ""
    assert value(text, "pg_up", target="main") == 1
    oldest = value(text, "pg_retention_oldest_row_age_seconds", target="main", table="events")
    server = pg_primary.scalar("SELECT extract(epoch FROM now() - min(created_at)) FROM events", "appdb")
    assert oldest == pytest.approx(float(server), abs=5)
    assert value(text, "after_v_total", target="main") == 7
    for name in ("slow", "broken", "nulls", "texty", "dupes"):
        assert value(text, "stack_exporter_query_errors_total", collector="postgres", query=name) == 1, name
        assert not values(text, f"{name}_v") + values(text, f"{name}_v_total"), name
        assert value(text2, "stack_exporter_query_errors_total", collector="postgres", query=name) == 2, name
    assert value(text, "stack_exporter_query_errors_total", collector="postgres", query="pg_retention") == 0


async def test_shipped_retention_example_works(pg_primary: PostgresServer) -> None:
    config = pg_config(("main", monitor_dsn(pg_primary)), custom_queries_file=str(ROOT / "examples" / "queries.yaml"))
    async with exporter(config) as http:
        text = await scrape(http)
    server = pg_primary.scalar("SELECT extract(epoch FROM now() - min(created_at)) FROM events", "appdb")
    got = value(text, "pg_retention_oldest_row_age_seconds", target="main", table="events")
    assert got == pytest.approx(float(server), abs=5)
    assert value(text, "pg_retention_rows", target="main", table="events") == pg_primary.scalar(
        "SELECT count(*) FROM events", "appdb"
    )


# --------------------------------------------------------------------------- statements, tables, sizes


async def test_statements_top_n_is_bounded_with_text_only_in_info(pg_primary: PostgresServer) -> None:
    with app_conn(pg_primary) as conn:
        for i in range(30):
            conn.execute(f"SELECT {i} AS distinct_statement_{i}")
        for _ in range(5):
            conn.execute("SELECT exporter_test_marker FROM (SELECT pg_sleep(0.05) AS exporter_test_marker) t")
    config = pg_config(("main", monitor_dsn(pg_primary)), statements_limit=5)
    async with exporter(config) as http:
        text = await scrape(http)
    calls = values(text, "pg_stat_statements_calls_total", target="main")
    assert len(calls) == 5  # far more statements exist: the limit bounds the series
    assert all("query" not in s.labels for s in calls)
    assert len(values(text, "pg_stat_statements_query_info", target="main")) == 5
    async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
        text = await scrape(http)
    info = values(text, "pg_stat_statements_query_info", target="main")
    assert len(info) <= 50
    marker = [s for s in info if "exporter_test_marker" in s.labels["query"]]
    assert marker, [s.labels["query"] for s in info]
    qid = marker[0].labels["queryid"]
    sql = "SELECT sum(calls) FROM pg_stat_statements WHERE toplevel AND queryid = "
    server_calls = pg_primary.scalar(sql + str(int(qid)))
    assert value(text, "pg_stat_statements_calls_total", target="main", queryid=qid) == server_calls
    secs = value(text, "pg_stat_statements_seconds_total", target="main", queryid=qid)
    assert secs is not None and secs >= 0.25


async def test_statements_top_n_leaves_out_the_exporters_own_queries(pg_primary: PostgresServer) -> None:
    # The application shares the exporter's role here, so hiding the role's statements
    # would hide it too: only the exporter's own statements may go.
    app_sql = "SELECT count(*) AS shared_role_app_query FROM pg_class WHERE relpages >= 0"
    with psycopg.connect(monitor_dsn(pg_primary), autocommit=True) as conn:
        for _ in range(3):
            conn.execute(app_sql)
    # every entry in every database, so none of the exporter's can hide below the limit
    config = pg_config(("main", monitor_dsn(pg_primary)), statements_limit=1000, databases=["postgres"])
    async with exporter(config) as http:
        for _ in range(3):  # the first scrape's statements are in the second one's view
            text = await scrape(http)
    # one entry per (queryid, database, role): the queryid ignores comments, so another role
    # running the same SELECT as the exporter shares the queryid but not the entry
    rows = pg_primary.query(
        "SELECT s.queryid::text, d.datname, s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
        "JOIN pg_database d ON d.oid = s.dbid WHERE r.rolname = 'monitor' AND s.toplevel"
    )
    app = {(qid, db) for qid, db, query in rows if "shared_role_app_query" in query}
    # everything else the monitor role ran came from exporters (this test's and earlier ones)
    own = {(qid, db) for qid, db, _ in rows} - app
    assert app and own
    listed = {
        (s.labels["queryid"], s.labels["datname"])
        for s in values(text, "pg_stat_statements_calls_total", target="main", user="monitor")
    }
    assert app <= listed
    shown = [(qid, db, query) for qid, db, query in rows if (qid, db) in listed & own]
    assert not shown, shown
    info = values(text, "pg_stat_statements_query_info", target="main")
    assert not [s.labels["query"] for s in info if "stack-exporter" in s.labels["query"]]


@pytest.mark.parametrize("password", ["x", "red"])
async def test_a_short_dsn_password_is_masked_where_it_is_a_password_only(
    pg_primary: PostgresServer, password: str
) -> None:
    # A one- and a three-letter password ("red" is inside "redis") as the exporter's DSN
    # password: masked in a URL's userinfo and after password=, left alone inside words.
    role = f"short_pw_{len(password)}"
    pg_primary.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
    try:
        with app_conn(pg_primary) as conn:
            # identifiers are kept in pg_stat_statements' text, whatever the server version
            conn.execute(
                f'SELECT 1 AS "postgresql://app:{password}@db.internal/app", 2 AS "password={password}",'
                " 3 AS exporter_redis_texts_stay_whole"
            )
        dsn = pg_primary.dsn(role, "appdb", password)
        async with exporter(pg_config(("main", dsn), statements_limit=1000)) as http:
            text = await scrape(http)
    finally:
        pg_primary.execute(f"DROP ROLE {role}")
    assert value(text, "pg_up", target="main") == 1
    queries = [s.labels["query"] for s in values(text, "pg_stat_statements_query_info", target="main")]
    (query,) = [q for q in queries if "stay_whole" in q]  # no x, no "red": found before and after
    assert '"postgresql://app:<redacted>@db.internal/app"' in query
    assert '"password=<redacted>"' in query
    assert "AS exporter_redis_texts_stay_whole" in query
    # every other statement text is whole: the mask only ever replaces a password
    masks = ("app:<redacted>@", "password=<redacted>", "PASSWORD '<redacted>'")
    for q in queries:
        for mask in masks:
            q = q.replace(mask, "")
        assert "<redacted>" not in q


async def test_table_health_top_n_and_extra_databases(pg_primary: PostgresServer) -> None:
    pg_primary.execute("CREATE TABLE in_postgres_db AS SELECT generate_series(1, 100) AS id")
    pg_primary.execute("ANALYZE in_postgres_db")
    try:
        config = pg_config(("main", monitor_dsn(pg_primary)), tables_limit=1, databases=["postgres", "nosuchdb"])
        async with exporter(config) as http:
            text = await scrape(http)
        appdb = values(text, "pg_stat_user_tables_size_bytes", target="main", datname="appdb")
        assert [s.labels["relname"] for s in appdb] == ["events"]  # the largest of the two
        other = values(text, "pg_stat_user_tables_n_live_tup", target="main", datname="postgres")
        assert [s.labels["relname"] for s in other] == ["in_postgres_db"]
        # an unknown database is an error metric, not a failed scrape
        assert value(text, "pg_up", target="main") == 1
        assert value(text, "stack_exporter_query_errors_total", query="tables:nosuchdb") == 1

        auto = pg_config(("main", monitor_dsn(pg_primary)), auto_discover=True, exclude_databases=["post*"])
        async with exporter(auto) as http:
            text = await scrape(http)
        assert not values(text, "pg_stat_user_tables_n_live_tup", datname="postgres")
        assert values(text, "pg_stat_user_tables_n_live_tup", datname="appdb")
    finally:
        pg_primary.execute("DROP TABLE in_postgres_db")


async def test_database_size_is_cached_for_a_minute(pg_primary: PostgresServer) -> None:
    async with exporter(pg_config(("main", monitor_dsn(pg_primary)))) as http:
        first = value(await scrape(http), "pg_database_size_bytes", target="main", datname="appdb")
        with pg_primary.connect("appdb") as conn:
            conn.execute("CREATE TABLE grow AS SELECT md5(i::text) AS v FROM generate_series(1, 50000) i")
        try:
            grown = pg_primary.scalar("SELECT pg_database_size('appdb')")
            assert first is not None and grown > first + 1_000_000
            second = value(await scrape(http), "pg_database_size_bytes", target="main", datname="appdb")
        finally:
            with pg_primary.connect("appdb") as conn:
                conn.execute("DROP TABLE grow")
    assert second == first


# --------------------------------------------------------------------------- bad input, secrets


async def test_bad_targets_fail_clearly_without_leaking(
    pg_primary: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-PG-password-3b7f"
    config = pg_config(
        ("nodb", pg_primary.dsn("monitor", "nosuchdb", MONITOR_PASSWORD)),
        ("badpw", pg_primary.dsn("monitor", "appdb", wrong)),
        ("good", monitor_dsn(pg_primary)),
    )
    caplog.set_level(logging.DEBUG)
    async with exporter(config) as http:
        text = await scrape(http)
        landing = await (await http.get("/")).text()
    assert value(text, "pg_up", target="nodb") == 0
    assert value(text, "pg_up", target="badpw") == 0
    assert value(text, "pg_up", target="good") == 1
    messages = "\n".join(r.getMessage() + str(getattr(r, "kv", "")) for r in caplog.records)
    assert 'database "nosuchdb" does not exist' in messages
    assert "password authentication failed" in messages
    for blob in (text, landing, messages):
        assert wrong not in blob
        assert MONITOR_PASSWORD not in blob


def test_check_config_reports_bad_dsns_and_queries_files_with_key_paths(tmp_path: Path) -> None:
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("pg_x:\n  query: 'SELECT 1 AS v'\n  metrics: [\n")
    usage = tmp_path / "usage.yaml"
    usage.write_text("pg_y:\n  query: SELECT 1 AS v\n  metrics:\n    - v: {usage: GAUGEY}\n")
    config = {
        "postgres": [
            {"name": "a", "dsn": "mysql://u@h/db"},
            {"name": "b", "dsn": f"postgresql://u:{MONITOR_PASSWORD}@127.0.0.1:99999/db"},
            {"name": "c", "dsn": "postgresql://u@127.0.0.1/db", "custom_queries_file": str(syntax)},
            {
                "name": "d",
                "dsn": "postgresql://u@127.0.0.1/db",
                "custom_queries_file": str(usage),
                "statements_limit": -1,
            },
            {"name": "e", "dsn": "host=127.0.0.1 dbname=db"},
        ]
    }
    proc = check_config(write_config(tmp_path, config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    # worded as every URL-valued key is: the schemes allowed, or what a URL looks like
    assert "postgres[0].dsn: scheme must be postgres:// or postgresql://, got mysql" in out
    assert "postgres[4].dsn: must be a URL such as postgresql://" in out
    assert "key=value DSNs are not supported" in out
    assert "postgres[1].dsn: invalid" in out
    assert f"postgres[2].custom_queries_file: {syntax}: line 4" in out
    assert f"postgres[3].custom_queries_file: {usage}: pg_y.metrics[0].v.usage: must be GAUGE" in out
    assert "postgres[3].statements_limit" in out
    assert MONITOR_PASSWORD not in out
    assert "Traceback" not in out


def test_built_in_default_config_has_the_local_postgres() -> None:
    config = default_config()
    (target,) = config.sources["postgres"]
    assert target.target_name() == "local"
