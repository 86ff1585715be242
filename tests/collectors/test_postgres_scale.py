"""The PostgreSQL collector's cost at scale, against a real server of this module's own.

* The tables query picks the top ``tables_limit`` relations from pg_class before
  pg_stat_user_tables groups them: the same rows in the same order as the view
  sorted whole (the old query, kept here as the reference), with ties, partitioned
  tables, materialized views and other schemas.
* Sessions are reset only after users' custom queries: a catalog-only scrape sends
  no RESET, and what a custom query changes (a setting, the role, an open
  transaction) is undone before the session serves anything else.

Timings are in ``python -m bench tables``, not here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.collectors.postgres.sql import SQL_MARKER, core_sql, tables_sql
from tests.collectors.test_postgres import monitor_dsn, pg_config
from tests.helpers import exporter, scrape, value, values
from tests.servers.postgres import PostgresServer, _base

pytestmark = pytest.mark.timeout(180)

# The tables part of the core query before the top N moved below the view's grouping:
# the reference the new text must match row for row.
_OLD_TABLE_SIZE = """(t.relpages
        + coalesce((SELECT relpages FROM pg_class WHERE oid = t.reltoastrelid), 0)
        + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                    WHERE x.indrelid = t.relid), 0))::float8 * current_setting('block_size')::int"""


def old_tables_sql(limit: int) -> str:
    return f"""SELECT (SELECT json_agg(json_build_array(t.schemaname, t.relname, t.n_live_tup, t.n_dead_tup,
        t.seq_scan, coalesce(t.idx_scan, 0), extract(epoch FROM now() - t.last_autovacuum),
        extract(epoch FROM now() - t.last_autoanalyze), {_OLD_TABLE_SIZE}))
    FROM (SELECT s.*, c.relpages, c.reltoastrelid FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
          ORDER BY c.relpages DESC, s.relid LIMIT {int(limit)}) t)::text"""  # noqa: S608 - integers only


DB = "scaledb"


@pytest.fixture(scope="module")
def pg_scale() -> Iterator[PostgresServer]:
    """A server whose ``scaledb`` holds a few hundred relations of every kind the view shows."""
    with _base("stack-pgs-") as base, PostgresServer(base) as server:
        server.setup_roles()
        server.execute(f"CREATE DATABASE {DB}")
        with server.connect(DB) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE SCHEMA other")
            # 300 tables: sizes from empty to ~40 pages, many of them equal (ties on relpages),
            # every third with an index, every fifth with a TOASTable column
            conn.execute("""DO $$ BEGIN
                FOR i IN 1..300 LOOP
                    EXECUTE format('CREATE TABLE t%s (id int%s, body %s)', i,
                        CASE WHEN i % 3 = 0 THEN ' PRIMARY KEY' ELSE '' END,
                        CASE WHEN i % 5 = 0 THEN 'text' ELSE 'char(32)' END);
                    EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, %s) g',
                        i, (i % 7) * (i % 11) * 90);
                END LOOP; END $$""")
            conn.execute("CREATE TABLE other.big AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 5000) g")
            conn.execute("CREATE TABLE other.empty (id int)")
            conn.execute("CREATE TABLE parted (id int, body text) PARTITION BY RANGE (id)")
            conn.execute("CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (1000)")
            conn.execute("CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (1000) TO (100000)")
            conn.execute("CREATE INDEX ON parted (id)")
            conn.execute("INSERT INTO parted SELECT g, md5(g::text) FROM generate_series(1, 3000) g")
            conn.execute("CREATE MATERIALIZED VIEW mv AS SELECT g AS id FROM generate_series(1, 2000) g")
            conn.execute("CREATE MATERIALIZED VIEW other.mv_empty AS SELECT 1 AS id WITH NO DATA")
            # relations the view leaves out: they must not take a place in the top N
            conn.execute("CREATE VIEW v AS SELECT * FROM t1")
            conn.execute("CREATE SEQUENCE seq")
            conn.execute("VACUUM ANALYZE")
        yield server


def monitor(server: PostgresServer, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(monitor_dsn(server, DB), **kwargs)


def test_fixture_has_ties_and_every_kind(pg_scale: PostgresServer) -> None:
    kinds = dict(
        pg_scale.query(
            "SELECT c.relkind::text, count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid GROUP BY 1",
            DB,
        )
    )
    assert {"r", "p", "m"} <= set(kinds), kinds
    ties = pg_scale.scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM pg_class WHERE relkind = 'r' AND relpages > 0 "
        "AND relnamespace = 'public'::regnamespace GROUP BY relpages) x",
        DB,
    )
    assert ties > 10


@pytest.mark.parametrize("limit", [1, 2, 20, 150, 10_000])
def test_top_n_tables_are_the_views_top_n_row_for_row(pg_scale: PostgresServer, limit: int) -> None:
    count = pg_scale.scalar("SELECT count(*) FROM pg_stat_user_tables", DB)
    assert count > 300
    with monitor(pg_scale) as conn:  # one transaction: now() (the ages) is the same for both
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        old = conn.execute(old_tables_sql(limit)).fetchone()[0]  # type: ignore[index,arg-type]
        new = conn.execute(tables_sql(version, limit)).fetchone()[0]  # type: ignore[index,arg-type]
        core = conn.execute(core_sql(version, limit, with_sizes=False)).fetchone()[0]  # type: ignore[index,arg-type]
    assert new == old
    rows = json.loads(new)
    assert len(rows) == min(limit, count)
    assert json.loads(core)["tables"] == rows
    if limit >= count:
        names = {(r[0], r[1]) for r in rows}
        assert {("public", "parted"), ("public", "mv"), ("other", "big"), ("other", "mv_empty")} <= names
        assert not {("public", "v"), ("public", "seq")} & names


def _grouped_rows(plan: dict[str, Any]) -> list[int]:
    """Actual rows of every grouping node in an EXPLAIN (ANALYZE, FORMAT JSON) plan."""
    found = [int(plan["Actual Rows"])] if plan.get("Node Type") == "Aggregate" and plan.get("Group Key") else []
    for child in plan.get("Plans", ()):
        found.extend(_grouped_rows(child))
    return found


def test_the_views_grouping_sees_only_the_top_n(pg_scale: PostgresServer) -> None:
    with monitor(pg_scale, autocommit=True) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]

        def grouped(sql: str) -> list[int]:
            sql = sql.removeprefix(SQL_MARKER)
            return _grouped_rows(conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()[0][0]["Plan"])  # type: ignore[index,arg-type]

        assert max(grouped(old_tables_sql(5))) > 300  # the reference groups every table
        assert grouped(tables_sql(version, 5)) == [5]


# --------------------------------------------------------------------------- session reset

# the session resets and rollbacks the exporter sent (one entry per statement)
RESETS = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ~ '^/\\* stack-exporter \\*/ (RESET|ROLLBACK)'"
)
# the exporter's statements, less the text lookups it makes when someone else's statement is new
OWN = (
    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
    " WHERE query LIKE '/* stack-exporter */%' AND query NOT LIKE '%s.query LIKE%'"
)


async def test_a_catalog_only_scrape_sends_no_reset(pg_scale: PostgresServer) -> None:
    config = pg_config(("main", monitor_dsn(pg_scale, DB)), databases=["appdb", "postgres"], max_connections=4)
    resets = pg_scale.scalar(RESETS)
    async with exporter(config) as http:
        for _ in range(2):  # warm: pg_stat_statements' version known, statement texts fetched
            assert value(await scrape(http), "pg_up", target="main") == 1
        before = pg_scale.scalar(OWN)
        for _ in range(5):
            assert value(await scrape(http), "pg_up", target="main") == 1
        after = pg_scale.scalar(OWN)
    assert pg_scale.scalar(RESETS) == resets
    # per scrape: the core query, pg_stat_statements, two other databases' tables; nothing else
    assert (after - before) / 5 == 4


async def test_what_a_custom_query_changes_is_undone_before_reuse(pg_scale: PostgresServer, tmp_path: Path) -> None:
    # One session for everything (max_connections 1), so the next scrape's core query and
    # the first custom query run on the session the changing query used.
    queries = tmp_path / "queries.yaml"
    queries.write_text("""\
probe:
  query: >-
    SELECT (current_user = session_user)::int AS own_role, extract(epoch FROM now()) AS xact_start
  metrics:
    - own_role: {usage: GAUGE, description: "1 unless a role was left set."}
    - xact_start: {usage: GAUGE, description: "The same in two scrapes if a transaction was left open."}
changer:
  query: >-
    SELECT 1 AS v, set_config('work_mem', '1MB', false), set_config('statement_timeout', '0', false),
           set_config('role', 'pg_monitor', false)
  metrics:
    - v: {usage: GAUGE, description: "Changes the session."}
opener:
  query: "BEGIN"
  metrics:
    - v: {usage: GAUGE, description: "Leaves a transaction open."}
""")
    config = pg_config(
        ("main", monitor_dsn(pg_scale, DB)),
        custom_queries_file=str(queries),
        max_connections=1,
        statement_timeout="4s",
        statements_limit=0,
    )
    resets = pg_scale.scalar(RESETS)
    async with exporter(config) as http:
        texts = [await scrape(http) for _ in range(3)]
        idle = pg_scale.scalar(
            "SELECT count(*) FILTER (WHERE state = 'idle') FROM pg_stat_activity"
            " WHERE application_name = 'stack-exporter'"
        )
        assert idle == 1  # not "idle in transaction"
    for text in texts:
        assert value(text, "pg_up", target="main") == 1
        assert value(text, "pg_settings_work_mem_bytes", target="main") == 4 * 1024 * 1024
        assert value(text, "pg_settings_statement_timeout_seconds", target="main") == 4
        assert value(text, "probe_own_role", target="main") == 1
        assert value(text, "changer_v", target="main") == 1
    starts = [value(text, "probe_xact_start", target="main") for text in texts]
    assert len(set(starts)) == 3, starts
    assert values(texts[-1], "stack_exporter_query_errors_total", query="changer")[0].value == 0
    # each scrape: one reset after the custom queries, one rollback for the open transaction
    assert pg_scale.scalar(RESETS) - resets == 3 * 3


def test_partitioned_tables_are_candidates_from_postgresql_14() -> None:
    # pg_stat_user_tables shows partitioned tables (relkind p) since PostgreSQL 14
    assert "IN ('r', 't', 'm', 'p')" in tables_sql(140000, 5)
    assert "IN ('r', 't', 'm')" in tables_sql(130000, 5)
