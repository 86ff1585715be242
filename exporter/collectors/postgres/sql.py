"""The SQL text the PostgreSQL collector sends, and the marker that starts every statement.

Only integers and constants are interpolated into these strings; values that come
from the server travel as query parameters.
"""

from __future__ import annotations

# Starts every statement the exporter sends (catalog queries, custom queries, the session
# reset after custom queries). pg_stat_statements keeps comments in a statement's text, so the
# exporter's own entries can be told apart there whatever role or database ran them:
# filtering by role would also hide an application that shares the exporter's role, and
# pg_stat_statements has no application_name.
SQL_MARKER = "/* stack-exporter */"


def marked(sql: str) -> str:
    """``sql`` with the exporter's marker comment in front."""
    return f"{SQL_MARKER} {sql}"


# The reset of a session that ran users' custom queries, on release (see Pools.connection):
# RESET ALL returns every setting to the session's startup values (statement_timeout,
# lock_timeout, jit from the connect), but leaves a role set with SET ROLE or
# set_config('role', ...). One round trip (simple protocol); each statement is marked.
RESET_SQL = f"{marked('RESET ALL')}; {marked('RESET ROLE')}"
# Ends a transaction a session was left in (only a custom query could open one).
ROLLBACK_SQL = marked("ROLLBACK")

# (setting, help): the settings the core query reads. The metric is pg_settings_<setting>
# with a unit suffix; values are converted to base units from pg_settings.unit.
SETTINGS: tuple[tuple[str, str], ...] = (
    ("max_connections", "Maximum concurrent connections."),
    ("superuser_reserved_connections", "Connection slots reserved for superusers."),
    ("max_locks_per_transaction", "Lock table slots per transaction."),
    ("max_prepared_transactions", "Maximum prepared transactions."),
    ("shared_buffers", "Shared memory for data pages."),
    ("effective_cache_size", "The planner's assumption about the cache available."),
    ("work_mem", "Memory per sort or hash operation."),
    ("maintenance_work_mem", "Memory for maintenance operations (VACUUM, CREATE INDEX)."),
    ("max_wal_size", "WAL size that triggers a checkpoint."),
    ("max_wal_senders", "Maximum WAL sender processes."),
    ("max_replication_slots", "Maximum replication slots."),
    ("max_worker_processes", "Maximum background worker processes."),
    ("autovacuum", "1 if autovacuum is on."),
    ("autovacuum_max_workers", "Maximum autovacuum workers."),
    ("autovacuum_freeze_max_age", "Transaction age that forces an anti-wraparound vacuum."),
    ("checkpoint_timeout", "Maximum time between automatic checkpoints."),
    ("statement_timeout", "Server default statement timeout (0 = none)."),
    ("idle_in_transaction_session_timeout", "Idle-in-transaction session timeout (0 = none)."),
)

_CUR_LSN = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END"

# Table size from pg_class page counts (table + TOAST + indexes): unlike
# pg_total_relation_size() it takes no lock, so a table locked by a migration
# cannot block the scrape. Exact as of the last VACUUM/ANALYZE.
_TABLE_SIZE = """(t.relpages
        + coalesce((SELECT relpages FROM pg_class WHERE oid = t.reltoastrelid), 0)
        + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                    WHERE x.indrelid = t.relid), 0))::float8 * current_setting('block_size')::int"""


def _table_kinds(version_num: int) -> str:
    """The relkinds pg_stat_user_tables shows: partitioned tables since PostgreSQL 14."""
    return "'r', 't', 'm', 'p'" if version_num >= 140000 else "'r', 't', 'm'"


def _tables_json(version_num: int, limit: int) -> str:
    """The ``limit`` largest user tables of the connected database, as one JSON array of rows.

    Used inside the core query for the DSN's database and alone for the others. The
    top ``limit`` oids come from pg_class first, with pg_stat_user_tables' own filter
    (its relkinds; not pg_catalog, information_schema or pg_toast*): the view groups
    every table by its indexes, and ``relid = ANY(...)`` is pushed below that grouping,
    so the server's cost follows ``limit``, not the number of tables. Rows and order
    are those of the view sorted whole (relpages, then oid).
    """
    return f"""SELECT json_agg(json_build_array(t.schemaname, t.relname, t.n_live_tup, t.n_dead_tup, t.seq_scan,
        coalesce(t.idx_scan, 0), extract(epoch FROM now() - t.last_autovacuum),
        extract(epoch FROM now() - t.last_autoanalyze), {_TABLE_SIZE}))
    FROM (SELECT s.*, c.relpages, c.reltoastrelid FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
          WHERE s.relid = ANY(ARRAY(
            SELECT k.oid FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
            WHERE k.relkind IN ({_table_kinds(version_num)})
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
            ORDER BY k.relpages DESC, k.oid LIMIT {int(limit)}))
          ORDER BY c.relpages DESC, s.relid) t"""  # noqa: S608 - only integers and constants


def tables_sql(version_num: int, limit: int) -> str:
    """Table health of a database besides the DSN's (on a pool connected to it)."""
    return marked(f"SELECT ({_tables_json(version_num, limit)})::text")


def _database_columns(version_num: int) -> list[str]:
    cols = [
        "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched",
        "tup_inserted", "tup_updated", "tup_deleted", "conflicts", "temp_files", "temp_bytes", "deadlocks",
        "blk_read_time", "blk_write_time",
    ]  # fmt: skip
    if version_num >= 140000:
        cols += ["sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed", "session_time",
                 "active_time", "idle_in_transaction_time"]  # fmt: skip
    return cols


def _bgwriter_row(version_num: int) -> str:
    if version_num >= 170000:
        # PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer and
        # dropped the backend write counters (now in pg_stat_io).
        return """json_build_object(
            'checkpoints_timed', c.num_timed, 'checkpoints_req', c.num_requested,
            'checkpoint_write_time', c.write_time, 'checkpoint_sync_time', c.sync_time,
            'buffers_checkpoint', c.buffers_written, 'buffers_clean', b.buffers_clean,
            'maxwritten_clean', b.maxwritten_clean, 'buffers_alloc', b.buffers_alloc)
            FROM pg_stat_checkpointer c, pg_stat_bgwriter b"""
    return "row_to_json(b) FROM pg_stat_bgwriter b"


def core_sql(version_num: int, tables_limit: int, with_sizes: bool) -> str:
    """The one query of a scrape: every catalog view we read, as one JSON document.

    One statement rather than one per view is a speed choice measured against
    postgres_exporter (bench/postgres_bench.py): a scrape costs one round trip.
    """
    settings = ", ".join(f"'{name}'" for name, _ in SETTINGS)
    db_select = ", ".join(f"s.{c}" for c in _database_columns(version_num))
    size = ", pg_database_size(d.oid) AS size_bytes" if with_sizes else ""
    tables = f",\n 'tables', ({_tables_json(version_num, tables_limit)})" if tables_limit > 0 else ""
    return marked(f"""SELECT json_build_object(
 'now', extract(epoch FROM now()),
 'recovery', pg_is_in_recovery(),
 'version', current_setting('server_version'),
 'version_num', current_setting('server_version_num')::int,
 'start', extract(epoch FROM pg_postmaster_start_time()),
 'dbname', current_database(),
 'reserved_connections', current_setting('reserved_connections', true),
 'settings', (SELECT json_agg(json_build_array(name, setting, unit, vartype)) FROM pg_settings
              WHERE name IN ({settings})),
 'activity', (SELECT json_agg(json_build_array(datname, usename, state, n)) FROM (
    SELECT coalesce(datname, '') AS datname, coalesce(usename, '') AS usename,
           coalesce(state, 'unknown') AS state, count(*) AS n
    FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3) a),
 'xact', (SELECT json_agg(json_build_array(datname, max_xact, max_idle, waiting, blocked)) FROM (
    SELECT datname,
      coalesce(max(extract(epoch FROM now() - xact_start)), 0) AS max_xact,
      coalesce(max(extract(epoch FROM now() - state_change))
               FILTER (WHERE state LIKE 'idle in transaction%'), 0) AS max_idle,
      count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,
      count(*) FILTER (WHERE wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0) AS blocked
    FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname IS NOT NULL
    GROUP BY datname) x),
 'locks', (SELECT json_agg(json_build_array(datname, mode, held, waiting)) FROM (
    SELECT coalesce(d.datname, '') AS datname, lower(l.mode) AS mode,
           count(*) FILTER (WHERE l.granted) AS held, count(*) FILTER (WHERE NOT l.granted) AS waiting
    FROM pg_locks l LEFT JOIN pg_database d ON d.oid = l.database GROUP BY 1, 2) k),
 'databases', (SELECT json_agg(row_to_json(x)) FROM (
    SELECT d.datname, d.datallowconn, d.datistemplate, {db_select},
           age(d.datfrozenxid) AS xid_age, mxid_age(d.datminmxid) AS mxid_age{size}
    FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid) x),
 'replicas', (SELECT json_agg(json_build_array(application_name, coalesce(host(client_addr), 'local'), state,
        sync_state, extract(epoch FROM write_lag), extract(epoch FROM flush_lag), extract(epoch FROM replay_lag),
        pg_wal_lsn_diff({_CUR_LSN}, write_lsn), pg_wal_lsn_diff({_CUR_LSN}, flush_lsn),
        pg_wal_lsn_diff({_CUR_LSN}, replay_lsn))) FROM pg_stat_replication),
 'slots', (SELECT json_agg(json_build_array(slot_name, slot_type, coalesce(database, ''), active,
        pg_wal_lsn_diff({_CUR_LSN}, restart_lsn))) FROM pg_replication_slots),
 'receiver', (SELECT json_agg(json_build_array(status, coalesce(sender_host, ''), coalesce(slot_name, '')))
    FROM pg_stat_wal_receiver),
 'replica', CASE WHEN pg_is_in_recovery() THEN json_build_object(
    'receive', pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'),
    'replay', pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'),
    'replay_ts', extract(epoch FROM pg_last_xact_replay_timestamp()),
    'paused', pg_is_wal_replay_paused()) END,
 'bgwriter', (SELECT {_bgwriter_row(version_num)}),
 'statements_ext', (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'){tables}
)::text""")  # noqa: S608 - only integers and constants


# One pg_stat_statements entry: its queryid alone is not enough, since the text is
# ignored by the queryid (comments included), so the exporter's SELECT and the same
# SELECT run by another role share it.
_ENTRY_KEY = "concat_ws('/', s.userid, s.dbid, s.queryid)"


def _ext_at_least(version: str, want: tuple[int, int]) -> bool:
    try:
        got = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return True
    return got >= want


def statements_sql(ext_version: str, limit: int) -> str:
    """The top ``limit`` statements by total time; $1 is the entry keys of the exporter's own (text[])."""
    total = "total_exec_time" if _ext_at_least(ext_version, (1, 8)) else "total_time"
    toplevel = "s.toplevel AND" if _ext_at_least(ext_version, (1, 9)) else ""
    # showtext => false: the texts live in a file read in full on every call; we
    # fetch texts separately, only for statements we have not seen yet.
    return marked(f"""SELECT s.queryid::text, coalesce(d.datname, ''), coalesce(r.rolname, ''), s.calls,
        s.{total} / 1000.0, s.rows, s.shared_blks_hit, s.shared_blks_read, {_ENTRY_KEY}
    FROM pg_stat_statements(false) s
    LEFT JOIN pg_database d ON d.oid = s.dbid LEFT JOIN pg_roles r ON r.oid = s.userid
    WHERE {toplevel} s.queryid IS NOT NULL AND {_ENTRY_KEY} <> ALL($1::text[])
    ORDER BY s.{total} DESC LIMIT {int(limit)}""")  # noqa: S608 - only integers and constants


# The entries of the given queryids ($1) with their texts cut to $2 characters, and whether
# the exporter sent them ($3 is the marker as a LIKE pattern, tested on the whole text so a
# short cut cannot hide it). Queryid lists travel as text[]: asyncpg has no built-in codec
# for bigint[] and would look the type up with its own, unmarked, catalog queries on every
# new connection.
STATEMENT_TEXTS_SQL = marked(
    f"SELECT {_ENTRY_KEY}, left(s.query, $2), s.query LIKE $3 FROM pg_stat_statements s"  # noqa: S608 - constants only
    " WHERE s.queryid = ANY($1::text[]::bigint[])"
)
