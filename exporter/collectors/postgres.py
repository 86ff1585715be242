"""PostgreSQL: connections, locks, databases, replication, checkpoints, tables, statements.

Names follow postgres_exporter wherever its name is correct; the renames (counters
without ``_total``, gauges ending in ``_count``, milliseconds) are listed in
docs/metrics/postgres.md.  A sample of the exposition (target label added by the
engine)::

    pg_up{target="main"} 1.0
    pg_version_info{target="main",version="15.14",version_num="150014"} 1.0
    pg_stat_activity_connections{target="main",datname="app",usename="app",state="idle"} 12.0
    pg_stat_activity_max_tx_duration_seconds{target="main",datname="app"} 0.4
    pg_locks_waiting{target="main",datname="app",mode="accessexclusivelock"} 1.0
    pg_stat_database_xact_commit_total{target="main",datname="app"} 123456.0
    pg_database_size_bytes{target="main",datname="app"} 1.6e+08
    pg_replication_lag_seconds{target="replica"} 0.0
    pg_stat_statements_seconds_total{target="main",queryid="-12345",datname="app",user="app"} 12.5
    pg_stat_statements_query_info{target="main",queryid="-12345",datname="app",user="app",query="SELECT ..."} 1.0

Round trips per scrape: one query on one pooled connection returns everything
from the catalog views as one JSON document (the database sizes join it at most
once a minute); pg_stat_statements, custom queries and table health of extra
databases run concurrently on other pooled connections.  Sessions are marked
``application_name=stack-exporter`` and carry a ``statement_timeout`` and a
``lock_timeout``, so the exporter can never hold up the database.  Every statement
the exporter sends starts with :data:`SQL_MARKER`, which keeps its own queries out
of the pg_stat_statements top N (see ``PostgresCollector._statements``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.pg_dsn import check_dsn, dsn_password
from exporter.collectors.postgres_queries import CustomQuery, load_queries
from exporter.config import Duration, Secret, TargetConfig
from exporter.redact import url_without_userinfo

log = logging.getLogger("exporter.collectors.postgres")

# --------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class PostgresTarget(TargetConfig):
    name: str
    # postgresql://user[:password]@host:port/dbname[?sslmode=...]; the password may
    # instead come from ``password`` / ``password_file``.
    dsn: str
    password: Secret | None = None
    # Table health: databases besides the DSN's, or every database (auto_discover)
    # except those matching exclude_databases (shell patterns).
    databases: tuple[str, ...] = ()
    auto_discover: bool = False
    exclude_databases: tuple[str, ...] = ("template0", "template1")
    custom_queries_file: str | None = None
    statement_timeout: Duration = Duration(5.0)
    lock_timeout: Duration = Duration(1.0)
    # Bounds on cardinality: statements and tables exported per scrape.
    statements_limit: int = 50
    statement_text_max_length: int = 1000
    tables_limit: int = 20
    pool_max_size: int = 3
    # Filled by check() from custom_queries_file, so a reload with a changed file
    # makes a new collector (the config no longer compares equal).
    custom_queries: tuple[CustomQuery, ...] | None = field(default=None, init=False)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_dsn(self.dsn, self.password is not None)
        if self.databases and self.auto_discover:
            yield "databases", "set databases or auto_discover, not both"
        for i, db in enumerate(self.databases):
            if not db:
                yield f"databases[{i}]", "must not be empty"
        if self.statement_timeout <= 0:
            yield "statement_timeout", "must be positive"
        for key in ("statements_limit", "tables_limit"):
            if not 0 <= getattr(self, key) <= 1000:
                yield key, "must be between 0 and 1000"
        if self.statement_text_max_length < 16:
            yield "statement_text_max_length", "must be at least 16"
        if not 1 <= self.pool_max_size <= 10:
            yield "pool_max_size", "must be between 1 and 10"
        if self.custom_queries_file is not None:
            queries, problems = load_queries(Path(self.custom_queries_file))
            for problem in problems:
                yield "custom_queries_file", f"{self.custom_queries_file}: {problem}"
            object.__setattr__(self, "custom_queries", queries)

    def secret_values(self) -> list[str]:
        return dsn_password(self.dsn)

    def dbname(self) -> str:
        parts = urlsplit(self.dsn)
        path = unquote(parts.path.lstrip("/"))
        params = dict(parse_qsl(parts.query))
        return params.get("dbname") or path or params.get("user") or unquote(parts.username or "") or "postgres"


# --------------------------------------------------------------------------- SQL

# Starts every statement the exporter sends (catalog queries, custom queries, the pool's
# session reset). pg_stat_statements keeps comments in a statement's text, so the
# exporter's own entries can be told apart there whatever role or database ran them:
# filtering by role would also hide an application that shares the exporter's role, and
# pg_stat_statements has no application_name.
SQL_MARKER = "/* stack-exporter */"


def marked(sql: str) -> str:
    """``sql`` with the exporter's marker comment in front."""
    return f"{SQL_MARKER} {sql}"


# (setting, metric suffix, help). Values are converted to base units from pg_settings.unit.
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

_CUR_LSN = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END"

# Table size from pg_class page counts (table + TOAST + indexes): unlike
# pg_total_relation_size() it takes no lock, so a table locked by a migration
# cannot block the scrape. Exact as of the last VACUUM/ANALYZE.
_TABLE_SIZE = """(t.relpages
        + coalesce((SELECT relpages FROM pg_class WHERE oid = t.reltoastrelid), 0)
        + coalesce((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                    WHERE x.indrelid = t.relid), 0))::float8 * current_setting('block_size')::int"""


def core_sql(version_num: int, tables_limit: int, with_sizes: bool) -> str:
    """The one query of a scrape: every catalog view we read, as one JSON document."""
    settings = ", ".join(f"'{name}'" for name, _ in SETTINGS)
    db_cols = [
        "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched",
        "tup_inserted", "tup_updated", "tup_deleted", "conflicts", "temp_files", "temp_bytes", "deadlocks",
        "blk_read_time", "blk_write_time",
    ]  # fmt: skip
    if version_num >= 140000:
        db_cols += ["sessions", "sessions_abandoned", "sessions_fatal", "sessions_killed", "session_time",
                    "active_time", "idle_in_transaction_time"]  # fmt: skip
    db_select = ", ".join(f"s.{c}" for c in db_cols)
    size = ", pg_database_size(d.oid) AS size_bytes" if with_sizes else ""
    if version_num >= 170000:
        # PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer and
        # dropped the backend write counters (now in pg_stat_io).
        bgwriter = """json_build_object(
            'checkpoints_timed', c.num_timed, 'checkpoints_req', c.num_requested,
            'checkpoint_write_time', c.write_time, 'checkpoint_sync_time', c.sync_time,
            'buffers_checkpoint', c.buffers_written, 'buffers_clean', b.buffers_clean,
            'maxwritten_clean', b.maxwritten_clean, 'buffers_alloc', b.buffers_alloc)
            FROM pg_stat_checkpointer c, pg_stat_bgwriter b"""
    else:
        bgwriter = "row_to_json(b) FROM pg_stat_bgwriter b"
    tables = ""
    if tables_limit > 0:
        tables = f""",
 'tables', (SELECT json_agg(json_build_array(t.schemaname, t.relname, t.n_live_tup, t.n_dead_tup, t.seq_scan,
        coalesce(t.idx_scan, 0), extract(epoch FROM now() - t.last_autovacuum),
        extract(epoch FROM now() - t.last_autoanalyze), {_TABLE_SIZE}))
    FROM (SELECT s.*, c.relpages, c.reltoastrelid FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
          ORDER BY c.relpages DESC, s.relid LIMIT {int(tables_limit)}) t)"""  # noqa: S608 - only integers and constants
    return marked(f"""SELECT json_build_object(
 'now', extract(epoch FROM now()),
 'recovery', pg_is_in_recovery(),
 'version', current_setting('server_version'),
 'version_num', current_setting('server_version_num')::int,
 'start', extract(epoch FROM pg_postmaster_start_time()),
 'dbname', current_database(),
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
 'bgwriter', (SELECT {bgwriter}),
 'statements_ext', (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'){tables}
)::text""")  # noqa: S608 - only integers and constants


# One pg_stat_statements entry: its queryid alone is not enough, since the text is
# ignored by the queryid (comments included), so the exporter's SELECT and the same
# SELECT run by another role share it.
_ENTRY_KEY = "concat_ws('/', s.userid, s.dbid, s.queryid)"


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


def _ext_at_least(version: str, want: tuple[int, int]) -> bool:
    try:
        got = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return True
    return got >= want


def tables_sql(limit: int) -> str:
    return marked(f"""SELECT json_agg(json_build_array(t.schemaname, t.relname, t.n_live_tup, t.n_dead_tup, t.seq_scan,
        coalesce(t.idx_scan, 0), extract(epoch FROM now() - t.last_autovacuum),
        extract(epoch FROM now() - t.last_autoanalyze), {_TABLE_SIZE}))::text
    FROM (SELECT s.*, c.relpages, c.reltoastrelid FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
          ORDER BY c.relpages DESC, s.relid LIMIT {int(limit)}) t""")  # noqa: S608 - only integers and constants


# --------------------------------------------------------------------------- collector

_PASSWORD_LITERAL = re.compile(r"(?i)(password\s+)'(?:[^']|'')*'")
SIZE_REFRESH_SECONDS = 60.0  # pg_database_size walks every file of every database
STATEMENT_TEXT_CACHE = 5000  # query texts kept (by queryid); bounded memory
# Rounds of "top N, then learn which new entries are the exporter's own": each round
# learns every own entry among the rows it saw, and the exporter sends only a handful
# of distinct statements, so a second round is rare and a fifth would mean a bug.
OWN_STATEMENT_ROUNDS = 4
_CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)


@dataclass
class _CustomResult:
    families: list[Metric]
    at: float


class PostgresCollector(Collector[PostgresTarget]):
    kind = "postgres"
    config_class = PostgresTarget
    up_metric = "pg_up"
    up_help = "1 if PostgreSQL answered the exporter's query, 0 if it could not be reached in time."

    def __init__(self, config: PostgresTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._pool: asyncpg.Pool | None = None
        self._db_pools: dict[str, asyncpg.Pool] = {}
        self._pool_lock = asyncio.Lock()
        self._sizes: dict[str, float] = {}
        self._sizes_at = -1e18
        # statement texts and the exporter's own entries (text starting with SQL_MARKER),
        # by entry key (userid/dbid/queryid)
        self._texts: dict[str, str] = {}
        self._own_entries: set[str] = set()
        # pg_stat_statements' version and the server's, from the last scrape: lets the
        # statements query start alongside the core one instead of after it
        self._statements_seen: tuple[str, int] | None = None
        self._errors: dict[str, int] = {}
        self._custom_cache: dict[str, _CustomResult] = {}
        queries = config.custom_queries
        if queries is None and config.custom_queries_file:
            queries, problems = load_queries(Path(config.custom_queries_file))
            for problem in problems:
                self.log.warning("custom queries file problem", extra={"kv": {"target": config.name, "err": problem}})
        self._queries: tuple[CustomQuery, ...] = queries or ()
        for q in self._queries:
            self._errors.setdefault(q.name, 0)

    def describe(self) -> str:
        return url_without_userinfo(self.config.dsn)

    # ------------------------------------------------------------------ pools

    def _connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "dsn": cfg.dsn,
            "server_settings": {
                "application_name": "stack-exporter",
                "statement_timeout": str(int(cfg.statement_timeout * 1000)),
                "lock_timeout": str(int(cfg.lock_timeout * 1000)),
                # catalog queries gain nothing from JIT and its compile time is counted per scrape
                "jit": "off",
            },
            "timeout": 10.0,
            # the engine's deadline bounds the wait; this bounds a stuck close
            "command_timeout": float(cfg.statement_timeout) + 5.0,
        }
        if cfg.password is not None:
            kwargs["password"] = cfg.password.get()
        if database is not None:
            kwargs["database"] = database
        return kwargs

    async def _main_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                pool = asyncpg.create_pool(
                    min_size=1, max_size=self.config.pool_max_size, reset=_reset_session, **self._connect_kwargs()
                )
                try:
                    await pool
                except BaseException:
                    pool.terminate()
                    raise
                self._pool = pool
            return self._pool

    async def _db_pool(self, datname: str) -> asyncpg.Pool:
        pool = self._db_pools.get(datname)
        if pool is None:
            pool = asyncpg.create_pool(min_size=1, max_size=1, reset=_reset_session, **self._connect_kwargs(datname))
            try:
                await pool
            except BaseException:
                pool.terminate()
                raise
            self._db_pools[datname] = pool
        return pool

    async def close(self) -> None:
        pools = [p for p in (self._pool, *self._db_pools.values()) if p is not None]
        self._pool = None
        self._db_pools.clear()
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pool.terminate()

    async def _fetch_core(self, with_sizes: bool) -> dict[str, Any]:
        # One retry: a pooled session killed by pg_terminate_backend or a server
        # restart is only noticed when used; the retry gets a fresh connection.
        for attempt in (1, 2):
            pool = await self._main_pool()
            try:
                async with pool.acquire() as conn:
                    version = conn.get_server_version()
                    version_num = version.major * 10000 + (version.minor if version.major >= 10 else 0)
                    sql = core_sql(version_num, self.config.tables_limit, with_sizes)
                    text = await conn.fetchval(sql)
                    data: dict[str, Any] = json.loads(text)
                    return data
            except _CONNECTION_ERRORS:
                if attempt == 2:
                    raise
                pool.terminate()
                self._pool = None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ collect

    async def collect(self) -> list[Metric]:
        sizes_due = time.monotonic() - self._sizes_at >= SIZE_REFRESH_SECONDS
        seen = self._statements_seen if self.config.statements_limit > 0 else None
        # on a second pooled connection, so the server runs both queries at once
        early = asyncio.create_task(self._statements(*seen)) if seen else None
        try:
            core = await self._fetch_core(sizes_due)
        except asyncpg.PostgresError as exc:
            await _cancel(early)
            raise CollectError(f"query failed: {_describe_error(exc)}") from None
        except (OSError, asyncpg.exceptions.InterfaceError, asyncpg.exceptions.ClientConfigurationError) as exc:
            await _cancel(early)
            raise CollectError(f"cannot connect to {self.describe()}: {_describe_error(exc)}") from None
        except BaseException:
            await _cancel(early)
            raise
        if sizes_due:
            self._sizes = {
                d["datname"]: float(d["size_bytes"])
                for d in core.get("databases") or ()
                if d.get("size_bytes") is not None
            }
            self._sizes_at = time.monotonic()

        extra: list[Any] = []
        now_seen = (str(core["statements_ext"]), int(core["version_num"])) if core.get("statements_ext") else None
        if now_seen and self.config.statements_limit > 0:
            if early is not None and now_seen == seen:
                extra.append(early)
            else:
                await _cancel(early)
                extra.append(self._statements(*now_seen))
        else:
            await _cancel(early)
        self._statements_seen = now_seen
        if self._queries:
            extra.append(self._custom(core["version_num"]))
        for datname in self._extra_databases(core):
            extra.append(self._tables_of(datname))
        results = await asyncio.gather(*extra) if extra else []

        families: list[Metric] = [GaugeMetricFamily("pg_up", self.up_help, value=1)]
        families.extend(self._core_families(core))
        table_rows: list[tuple[str, list[Any]]] = [(core["dbname"], core.get("tables") or [])]
        for res in results:
            if isinstance(res, tuple):  # (datname, rows) from _tables_of
                table_rows.append(res)
            else:
                families.extend(res)
        if self.config.tables_limit > 0:
            families.extend(_table_families(table_rows))
        families.append(self._error_family())
        return families

    def _count_error(self, query: str, exc: BaseException | str) -> None:
        self._errors[query] = self._errors.get(query, 0) + 1
        err = exc if isinstance(exc, str) else _describe_error(exc)
        self.log.warning(
            "query failed; its metrics are dropped",
            extra={"kv": {"target": self.config.name, "query": query, "err": err}},
        )

    def _error_family(self) -> Metric:
        fam = CounterMetricFamily(
            "stack_exporter_query_errors",
            "Queries that failed (SQL error, timeout, NULL, wrong type, duplicate series); their metrics were dropped.",
            labels=["collector", "query"],
        )
        for query, count in sorted(self._errors.items()):
            fam.add_metric(["postgres", query], float(count))
        return fam

    def _extra_databases(self, core: dict[str, Any]) -> list[str]:
        if self.config.tables_limit <= 0:
            return []
        main = core.get("dbname", "")
        if self.config.auto_discover:
            names = [
                d["datname"]
                for d in core.get("databases") or ()
                if d.get("datallowconn") and not d.get("datistemplate")
            ]
            names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in self.config.exclude_databases)]
        else:
            names = list(self.config.databases)
        return [n for n in dict.fromkeys(names) if n != main]

    # ------------------------------------------------------------------ optional parts

    async def _statements(self, ext_version: str, version_num: int) -> list[Metric]:
        # The exporter's own statements are its noise, not the application's, and stay out
        # of the top N. pg_stat_statements(false) has no text to filter on, so an entry is
        # recognised as the exporter's (SQL_MARKER) when its text is first fetched, and own
        # entries are excluded in SQL; a round that meets a new one runs again, so the N
        # rows are the application's.
        sql = statements_sql(ext_version, self.config.statements_limit)
        try:
            pool = await self._main_pool()
            async with pool.acquire() as conn:
                for _ in range(OWN_STATEMENT_ROUNDS):
                    rows = await conn.fetch(sql, sorted(self._own_entries))
                    if not await self._learn_texts(conn, rows):
                        break
        except Exception as exc:  # noqa: BLE001 - the rest of the scrape goes on
            self._count_error("pg_stat_statements", exc)
            return []
        rows = [r for r in rows if r[8] not in self._own_entries]
        labels = ["queryid", "datname", "user"]
        calls = CounterMetricFamily("pg_stat_statements_calls", "Times the statement was executed.", labels=labels)
        secs = CounterMetricFamily(
            "pg_stat_statements_seconds", "Total time spent executing the statement.", labels=labels
        )
        nrows = CounterMetricFamily("pg_stat_statements_rows", "Rows retrieved or affected.", labels=labels)
        hit = CounterMetricFamily(
            "pg_stat_statements_block_hits", "Shared buffer hits by the statement.", labels=labels
        )
        read = CounterMetricFamily(
            "pg_stat_statements_block_reads", "Shared blocks read from disk or OS cache.", labels=labels
        )
        info = GaugeMetricFamily(
            "pg_stat_statements_query_info",
            "Always 1; the normalised text of a statement in the top N by total time.",
            labels=[*labels, "query"],
        )
        for qid, datname, user, n, total, rws, blk_hit, blk_read, key in rows:
            lv = [qid, datname, user]
            calls.add_metric(lv, float(n))
            secs.add_metric(lv, float(total))
            nrows.add_metric(lv, float(rws))
            hit.add_metric(lv, float(blk_hit))
            read.add_metric(lv, float(blk_read))
            info.add_metric([*lv, self._texts.get(key, "")], 1.0)
        return [calls, secs, nrows, hit, read, info]

    async def _learn_texts(
        self, conn: asyncpg.Connection | PoolConnectionProxy, rows: Sequence[asyncpg.Record]
    ) -> bool:
        """Fetch the texts of statements not seen yet; True if some of ``rows`` are the exporter's own."""
        missing = {r[8]: r[0] for r in rows if r[8] not in self._texts and r[8] not in self._own_entries}
        if not missing:
            return False
        texts = await conn.fetch(
            STATEMENT_TEXTS_SQL,
            sorted(set(missing.values())),
            int(self.config.statement_text_max_length),
            f"{SQL_MARKER}%",
        )
        if len(self._texts) > STATEMENT_TEXT_CACHE:
            self._texts.clear()
        if len(self._own_entries) > STATEMENT_TEXT_CACHE:
            self._own_entries.clear()
        found = False
        for key, text, own in texts:
            if own:
                self._own_entries.add(key)
                found = found or key in missing
            else:
                self._texts[key] = self._clean_text(text)
        return found

    def _clean_text(self, text: str | None) -> str:
        # Utility statements keep their literals: CREATE/ALTER ROLE ... PASSWORD
        # 'x' would otherwise be published in a label.
        flat = " ".join(str(text or "").split())
        return self.ctx.redact(_PASSWORD_LITERAL.sub(r"\1'<redacted>'", flat))

    async def _tables_of(self, datname: str) -> tuple[str, list[Any]] | list[Metric]:
        query = f"tables:{datname}"
        self._errors.setdefault(query, 0)
        try:
            for attempt in (1, 2):
                pool = await self._db_pool(datname)
                try:
                    async with pool.acquire() as conn:
                        text = await conn.fetchval(tables_sql(self.config.tables_limit))
                    break
                except _CONNECTION_ERRORS:
                    self._db_pools.pop(datname, None)
                    pool.terminate()
                    if attempt == 2:
                        raise
        except Exception as exc:  # noqa: BLE001 - one database failing must not fail the scrape
            self._count_error(query, exc)
            return []
        return (datname, json.loads(text) if text else [])

    async def _custom(self, version_num: int) -> list[Metric]:
        out: list[Metric] = []
        due = [
            q
            for q in self._queries
            if q.runs_on(version_num)
            and (
                q.name not in self._custom_cache or time.monotonic() - self._custom_cache[q.name].at >= q.cache_seconds
            )
        ]
        if due:
            try:
                pool = await self._main_pool()
                async with pool.acquire() as conn:
                    for q in due:
                        try:
                            # a transaction per query: a failed one must not poison the next
                            records = await conn.fetch(marked(q.sql))
                            fams = _custom_families(q, records)
                        except asyncpg.PostgresError as exc:
                            self._count_error(q.name, exc)
                            self._custom_cache.pop(q.name, None)
                            continue
                        except _RowError as exc:
                            self._count_error(q.name, str(exc))
                            self._custom_cache.pop(q.name, None)
                            continue
                        self._custom_cache[q.name] = _CustomResult(fams, time.monotonic())
            except Exception as exc:  # noqa: BLE001 - no connection: each due query failed
                for q in due:
                    self._count_error(q.name, exc)
                    self._custom_cache.pop(q.name, None)
        for q in self._queries:
            cached = self._custom_cache.get(q.name)
            if cached is not None and q.runs_on(version_num):
                out.extend(cached.families)
        return out

    # ------------------------------------------------------------------ families

    def _core_families(self, core: dict[str, Any]) -> list[Metric]:
        fams: list[Metric] = []
        version = GaugeMetricFamily(
            "pg_version_info", "Always 1; labels carry the server version.", labels=["version", "version_num"]
        )
        version.add_metric([str(core["version"]), str(core["version_num"])], 1.0)
        fams.append(version)
        fams.append(
            GaugeMetricFamily(
                "pg_postmaster_start_time_seconds", "Unix time the server started.", value=float(core["start"])
            )
        )
        fams.extend(_settings_families(core.get("settings") or []))

        # connections
        conns = GaugeMetricFamily(
            "pg_stat_activity_connections",
            "Client connections by database, user and state.",
            labels=["datname", "usename", "state"],
        )
        for datname, usename, state, n in core.get("activity") or ():
            conns.add_metric([datname, usename, state], float(n))
        fams.append(conns)
        dblabels = ["datname"]
        max_tx = GaugeMetricFamily(
            "pg_stat_activity_max_tx_duration_seconds", "Age of the oldest open transaction.", labels=dblabels
        )
        max_idle = GaugeMetricFamily(
            "pg_stat_activity_max_idle_in_transaction_seconds",
            "How long the oldest idle-in-transaction session has been idle.",
            labels=dblabels,
        )
        waiting = GaugeMetricFamily(
            "pg_stat_activity_waiting_connections", "Sessions waiting for a lock.", labels=dblabels
        )
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
        fams.extend([max_tx, max_idle, waiting, blocked])

        # locks: every table-lock mode for every database, so series do not come and go
        held = GaugeMetricFamily("pg_locks_held", "Granted locks by database and mode.", labels=["datname", "mode"])
        lwait = GaugeMetricFamily(
            "pg_locks_waiting", "Lock requests not granted yet, by database and mode.", labels=["datname", "mode"]
        )
        locks: dict[tuple[str, str], tuple[float, float]] = {}
        databases = core.get("databases") or []
        for d in databases:
            if d.get("datallowconn"):
                for mode in LOCK_MODES:
                    locks[(d["datname"], mode)] = (0.0, 0.0)
        for datname, mode, h, w in core.get("locks") or ():
            locks[(datname, mode)] = (float(h), float(w))
        for (datname, mode), (h, w) in sorted(locks.items()):
            held.add_metric([datname, mode], h)
            lwait.add_metric([datname, mode], w)
        fams.extend([held, lwait])

        fams.extend(self._database_families(databases))
        fams.extend(_replication_families(core))
        fams.extend(_bgwriter_families(core.get("bgwriter") or {}))
        return fams

    def _database_families(self, databases: Sequence[dict[str, Any]]) -> list[Metric]:
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
        for datname, value in sorted(self._sizes.items()):
            size.add_metric([datname], value)
        out.append(size)
        return out


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


def _settings_families(rows: Sequence[Sequence[Any]]) -> list[Metric]:
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
            if value >= 0:
                value *= scale
        out.append(GaugeMetricFamily(f"pg_settings_{name}{suffix}", docs.get(name, name), value=value))
    return out


def _replication_families(core: dict[str, Any]) -> list[Metric]:
    out: list[Metric] = []
    replica = core.get("replica")
    out.append(
        GaugeMetricFamily(
            "pg_replication_is_replica", "1 if the server is a replica (in recovery).", value=1.0 if replica else 0.0
        )
    )
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
    for app, addr, state, sync, *lags in core.get("replicas") or ():
        lv = [app or "", addr]
        info.add_metric([*lv, state or "", sync or ""], 1.0)
        secs, byts = lags[:3], lags[3:]
        for i, b in enumerate(byts):
            # PostgreSQL clears the lag times once a replica is idle and caught up
            s = secs[i] if secs[i] is not None else 0.0
            lag_fams[i].add_metric(lv, float(s))
            if b is not None:
                lag_fams[3 + i].add_metric(lv, max(0.0, float(b)))
    out.append(info)
    out.extend(lag_fams)

    slot_labels = ["slot_name", "slot_type", "database"]
    active = GaugeMetricFamily(
        "pg_replication_slot_active", "1 if a consumer is attached to the slot.", labels=slot_labels
    )
    retained = GaugeMetricFamily(
        "pg_replication_slot_wal_retained_bytes", "WAL kept on disk for the slot.", labels=slot_labels
    )
    for name, stype, database, is_active, wal in core.get("slots") or ():
        lv = [name, stype, database]
        active.add_metric(lv, 1.0 if is_active else 0.0)
        if wal is not None:
            retained.add_metric(lv, max(0.0, float(wal)))
    out.extend([active, retained])

    if replica:
        receive, replay, replay_ts = replica.get("receive"), replica.get("replay"), replica.get("replay_ts")
        # Lag is "now - last replayed commit" only while WAL is waiting to be
        # replayed; when everything received is replayed the replica is current,
        # however long the primary has been idle.
        if receive is None or replay is None or float(receive) <= float(replay):
            lag = 0.0
        elif replay_ts is not None:
            lag = max(0.0, float(core["now"]) - float(replay_ts))
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
                "pg_replication_replay_paused",
                "1 if WAL replay is paused.",
                value=1.0 if replica.get("paused") else 0.0,
            )
        )
        receivers = core.get("receiver") or []
        status = GaugeMetricFamily(
            "pg_stat_wal_receiver_up",
            "On a replica: 1 if the WAL receiver is streaming from the primary; labels carry its status.",
            labels=["status", "sender_host", "slot_name"],
        )
        if receivers:
            for st, host, slot in receivers:
                status.add_metric([st or "", host, slot], 1.0 if st == "streaming" else 0.0)
        else:
            status.add_metric(["stopped", "", ""], 0.0)
        out.append(status)
    return out


def _bgwriter_families(row: dict[str, Any]) -> list[Metric]:
    out: list[Metric] = []
    for col, name, doc, scale in BGWRITER_METRICS:
        v = row.get(col)
        if v is not None:
            out.append(CounterMetricFamily(name, doc, value=float(v) * scale))
    return out


def _table_families(per_db: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[Metric]:
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


class _RowError(Exception):
    """A custom query's rows cannot become metrics (NULL, wrong type, duplicate)."""


def _custom_families(q: CustomQuery, records: Sequence[asyncpg.Record]) -> list[Metric]:
    label_cols = q.labels
    fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    for spec in q.values:
        name = f"{q.name}_{spec.name}"
        if spec.usage == "COUNTER":
            fams[spec.name] = CounterMetricFamily(name, spec.description, labels=label_cols)
        else:
            fams[spec.name] = GaugeMetricFamily(name, spec.description, labels=label_cols)
    seen: set[tuple[str, ...]] = set()
    for record in records:
        keys = set(record.keys())
        missing = [c for c in (*label_cols, *fams) if c not in keys]
        if missing:
            raise _RowError(f"the query returns no column {', '.join(missing)}")
        lv = tuple("" if record[c] is None else str(record[c]) for c in label_cols)
        if lv in seen:
            raise _RowError(f"duplicate series for labels {dict(zip(label_cols, lv, strict=True))}")
        seen.add(lv)
        for col, fam in fams.items():
            raw = record[col]
            if raw is None:
                raise _RowError(f"column {col} is NULL")
            if isinstance(raw, bool):
                value = 1.0 if raw else 0.0
            elif isinstance(raw, (int, float, Decimal)):
                value = float(raw)
            else:
                raise _RowError(f"column {col} is {type(raw).__name__}, not a number")
            fam.add_metric(list(lv), value)
    return list(fams.values())


async def _reset_session(conn: asyncpg.Connection) -> None:
    """The pools' reset on release, instead of asyncpg's default.

    The default (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) would add unmarked
    entries to pg_stat_statements on every release. The exporter never takes advisory
    locks, opens cursors or listens; a custom query may change a setting, which RESET ALL
    undoes (the startup settings, statement_timeout included, are what it resets to).
    """
    await conn.execute(marked("RESET ALL"))


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


COLLECTOR = PostgresCollector
