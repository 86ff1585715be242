"""PgBouncer: pools, waiting clients, server connections and traffic, from the admin console.

Names follow the community pgbouncer_exporter (prometheus-community) where they
are correct; differences are listed in docs/metrics/pgbouncer.md.  A sample::

    pgbouncer_up{target="bouncer"} 1.0
    pgbouncer_pools_client_waiting_connections{target="bouncer",database="app",user="app"} 3.0
    pgbouncer_pools_client_maxwait_seconds{target="bouncer",database="app",user="app"} 1.25
    pgbouncer_databases_pool_size{target="bouncer",name="app",database="app",host="10.0.0.5",port="5432",...} 20.0
    pgbouncer_stats_queries_pooled_total{target="bouncer",database="app"} 123456.0
    pgbouncer_config_max_client_connections{target="bouncer"} 1000.0

The admin console speaks only the simple query protocol and takes one command per
query, so this uses psycopg 3 (asyncpg always uses the extended protocol) with
``autocommit=True``, ``prepare_threshold=None`` and no parameters: five round
trips on one persistent connection, which is reopened after any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.postgres.config import check_dsn, dsn_password
from exporter.redact import url_without_userinfo
from exporter.schema import Secret, TargetConfig

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("exporter.collectors.pgbouncer")


@dataclass(frozen=True, kw_only=True)
class PgBouncerTarget(TargetConfig):
    name: str
    # postgresql://stats_user[:password]@host:6432/pgbouncer
    dsn: str
    password: Secret | None = None

    def check(self) -> Iterable[tuple[str, str]]:
        example = "postgresql://stats@127.0.0.1:6432/pgbouncer"
        problems = list(check_dsn(self.dsn, self.password is not None, example))
        yield from problems
        if not problems and urlsplit(self.dsn).path.lstrip("/") != "pgbouncer":
            yield "dsn", "the database must be pgbouncer (the admin console), e.g. .../pgbouncer"

    def secret_values(self) -> list[str]:
        return dsn_password(self.dsn)


COMMANDS = ("POOLS", "STATS", "DATABASES", "CONFIG", "LISTS")

# SHOW POOLS column -> (metric, help, scale)
POOL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("cl_active", "pgbouncer_pools_client_active_connections", "Clients linked to a server connection."),
    ("cl_waiting", "pgbouncer_pools_client_waiting_connections", "Clients waiting for a server connection."),
    (
        "cl_active_cancel_req",
        "pgbouncer_pools_client_active_cancel_connections",
        "Clients that forwarded a cancel request and await the answer.",
    ),
    (
        "cl_waiting_cancel_req",
        "pgbouncer_pools_client_waiting_cancel_connections",
        "Clients whose cancel request is not forwarded yet.",
    ),
    ("sv_active", "pgbouncer_pools_server_active_connections", "Server connections linked to a client."),
    (
        "sv_active_cancel",
        "pgbouncer_pools_server_active_cancel_connections",
        "Server connections forwarding a cancel request.",
    ),
    (
        "sv_being_canceled",
        "pgbouncer_pools_server_being_canceled_connections",
        "Server connections waiting for in-flight cancel requests to finish.",
    ),
    ("sv_idle", "pgbouncer_pools_server_idle_connections", "Server connections idle and ready for a client."),
    (
        "sv_used",
        "pgbouncer_pools_server_used_connections",
        "Server connections idle longer than server_check_delay, to be checked before reuse.",
    ),
    (
        "sv_tested",
        "pgbouncer_pools_server_testing_connections",
        "Server connections running server_reset_query or server_check_query.",
    ),
    ("sv_login", "pgbouncer_pools_server_login_connections", "Server connections logging in."),
)

# SHOW STATS column -> (metric base name without _total, help, scale)
STATS_METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("total_xact_count", "pgbouncer_stats_sql_transactions_pooled", "SQL transactions pooled.", 1),
    ("total_query_count", "pgbouncer_stats_queries_pooled", "SQL queries pooled.", 1),
    ("total_received", "pgbouncer_stats_received_bytes", "Bytes received from clients.", 1),
    ("total_sent", "pgbouncer_stats_sent_bytes", "Bytes sent to clients.", 1),
    (
        "total_xact_time",
        "pgbouncer_stats_server_in_transaction_seconds",
        "Time server connections spent in a transaction.",
        1e-6,
    ),
    ("total_query_time", "pgbouncer_stats_queries_duration_seconds", "Time server connections spent in queries.", 1e-6),
    ("total_wait_time", "pgbouncer_stats_client_wait_seconds", "Time clients spent waiting for a server.", 1e-6),
    ("total_server_assignment_count", "pgbouncer_stats_server_assignments", "Server assignments (1.23+).", 1),
    ("total_client_parse_count", "pgbouncer_stats_client_parses", "Prepared-statement Parse messages (1.21+).", 1),
    ("total_server_parse_count", "pgbouncer_stats_server_parses", "Parse messages sent to servers (1.21+).", 1),
    ("total_bind_count", "pgbouncer_stats_binds", "Bind messages (1.21+).", 1),
)

DATABASE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("pool_size", "pgbouncer_databases_pool_size", "Maximum server connections per user of this database."),
    ("min_pool_size", "pgbouncer_databases_min_pool_size", "Minimum server connections kept open."),
    ("reserve_pool", "pgbouncer_databases_reserve_pool", "Extra server connections allowed when clients wait."),
    (
        "max_connections",
        "pgbouncer_databases_max_connections",
        "Maximum server connections to the database (0 = no limit).",
    ),
    ("current_connections", "pgbouncer_databases_current_connections", "Server connections open to the database."),
    ("paused", "pgbouncer_databases_paused", "1 if the database is paused."),
    ("disabled", "pgbouncer_databases_disabled", "1 if the database is disabled."),
)

CONFIG_METRICS: tuple[tuple[str, str, str], ...] = (
    ("max_client_conn", "pgbouncer_config_max_client_connections", "Maximum client connections (max_client_conn)."),
    ("max_user_connections", "pgbouncer_config_max_user_connections", "Maximum server connections per user."),
    ("max_db_connections", "pgbouncer_config_max_db_connections", "Maximum server connections per database."),
    ("default_pool_size", "pgbouncer_config_default_pool_size", "Server connections per user/database pair."),
    ("min_pool_size", "pgbouncer_config_min_pool_size", "Minimum server connections kept per pool."),
    ("reserve_pool_size", "pgbouncer_config_reserve_pool_size", "Extra server connections when clients wait."),
    ("query_wait_timeout", "pgbouncer_config_query_wait_timeout_seconds", "Longest a client may wait for a server."),
)

LIST_METRICS: dict[str, tuple[str, str]] = {
    "databases": ("pgbouncer_databases", "Databases configured."),
    "users": ("pgbouncer_users", "Users known."),
    "pools": ("pgbouncer_pools", "Pools (database/user pairs)."),
    "free_clients": ("pgbouncer_free_clients", "Client slots allocated but unused."),
    "used_clients": ("pgbouncer_used_clients", "Client connections in use."),
    "login_clients": ("pgbouncer_login_clients", "Clients logging in."),
    "free_servers": ("pgbouncer_free_servers", "Server slots allocated but unused."),
    "used_servers": ("pgbouncer_used_servers", "Server connections in use."),
    "dns_names": ("pgbouncer_cached_dns_names", "DNS names cached."),
    "dns_zones": ("pgbouncer_cached_dns_zones", "DNS zones cached."),
    "dns_queries": ("pgbouncer_in_flight_dns_queries", "DNS queries in flight."),
}

Rows = list[dict[str, Any]]


class PgBouncerCollector(Collector[PgBouncerTarget]):
    config_class = PgBouncerTarget
    up_metric = "pgbouncer_up"
    up_help = "1 if the PgBouncer admin console answered, 0 if it could not be reached in time."

    def __init__(self, config: PgBouncerTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return url_without_userinfo(self.config.dsn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing anyway
                await asyncio.wait_for(conn.close(), 5)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None, "connect_timeout": 10}
        if self.config.password is not None:
            kwargs["password"] = self.config.password.get()
        import psycopg  # with the first connection: validating a config needs no driver

        return await psycopg.AsyncConnection.connect(self.config.dsn, **kwargs)

    async def _show_all(self) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        cur = self._conn.cursor()
        for what in COMMANDS:
            await cur.execute(f"SHOW {what}")
            names = [d.name for d in cur.description or ()]
            out[what] = (names, await cur.fetchall())
        return out

    async def collect(self) -> list[Metric]:
        import psycopg

        async with self._lock:  # one connection: scrapes of one target never overlap on it
            try:
                shown = await self._show_all()
            except asyncio.CancelledError:
                await self._drop()
                raise
            except (psycopg.Error, OSError) as exc:
                await self._drop()
                raise CollectError(f"admin console {self.describe()}: {_describe_error(exc)}") from None
        fams: list[Metric] = [GaugeMetricFamily("pgbouncer_up", self.up_help, value=1)]
        fams.extend(_pool_families(_dicts(shown["POOLS"])))
        fams.extend(_stats_families(_dicts(shown["STATS"])))
        fams.extend(_database_families(_dicts(shown["DATABASES"])))
        fams.extend(_config_families(shown["CONFIG"][1]))
        fams.extend(_list_families(shown["LISTS"][1]))
        return fams

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is being replaced
                await asyncio.wait_for(conn.close(), 1)


def _dicts(shown: tuple[list[str], list[tuple[Any, ...]]]) -> Rows:
    names, rows = shown
    return [dict(zip(names, row, strict=False)) for row in rows]


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pool_families(rows: Rows) -> list[Metric]:
    labels = ["database", "user"]
    out: list[Metric] = []
    for col, name, doc in POOL_METRICS:
        fam = GaugeMetricFamily(name, doc, labels=labels)
        for r in rows:
            v = _num(r.get(col))
            if v is not None:
                fam.add_metric([str(r["database"]), str(r["user"])], v)
        if fam.samples or not rows:
            out.append(fam)
    maxwait = GaugeMetricFamily(
        "pgbouncer_pools_client_maxwait_seconds",
        "How long the oldest waiting client has waited for a server connection.",
        labels=labels,
    )
    mode = GaugeMetricFamily(
        "pgbouncer_pools_info", "Always 1 per pool; labels carry its pool mode.", labels=[*labels, "pool_mode"]
    )
    for r in rows:
        lv = [str(r["database"]), str(r["user"])]
        maxwait.add_metric(lv, (_num(r.get("maxwait")) or 0.0) + (_num(r.get("maxwait_us")) or 0.0) / 1e6)
        mode.add_metric([*lv, str(r.get("pool_mode") or "")], 1.0)
    out.extend([maxwait, mode])
    return out


def _stats_families(rows: Rows) -> list[Metric]:
    out: list[Metric] = []
    for col, name, doc, scale in STATS_METRICS:
        fam = CounterMetricFamily(name, doc, labels=["database"])
        for r in rows:
            v = _num(r.get(col))
            if v is not None:
                fam.add_metric([str(r["database"])], v * scale)
        if fam.samples:
            out.append(fam)
    return out


def _database_families(rows: Rows) -> list[Metric]:
    labels = ["name", "host", "port", "database", "force_user", "pool_mode"]
    out: list[Metric] = []
    for col, name, doc in DATABASE_METRICS:
        fam = GaugeMetricFamily(name, doc, labels=labels)
        for r in rows:
            v = _num(r.get(col))
            if v is not None:
                lv = ["" if r.get(k) is None else str(r.get(k)) for k in labels]
                fam.add_metric(lv, v)
        if fam.samples:
            out.append(fam)
    return out


def _config_families(rows: Sequence[tuple[Any, ...]]) -> list[Metric]:
    values = {str(r[0]): r[1] for r in rows if len(r) >= 2}
    out: list[Metric] = []
    for key, name, doc in CONFIG_METRICS:
        v = _num(values.get(key))
        if v is not None:
            out.append(GaugeMetricFamily(name, doc, value=v))
    mode = values.get("pool_mode")
    if mode is not None:
        fam = GaugeMetricFamily(
            "pgbouncer_config_info", "Always 1; labels carry the default pool mode.", labels=["pool_mode"]
        )
        fam.add_metric([str(mode)], 1.0)
        out.append(fam)
    return out


def _list_families(rows: Sequence[tuple[Any, ...]]) -> list[Metric]:
    out: list[Metric] = []
    for row in rows:
        spec = LIST_METRICS.get(str(row[0]))
        v = _num(row[1]) if len(row) > 1 else None
        if spec is not None and v is not None:
            out.append(GaugeMetricFamily(spec[0], spec[1], value=v))
    return out


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


COLLECTOR = PgBouncerCollector
