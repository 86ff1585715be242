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

One file per concern:

* ``config``: the target's settings and the libpq URL checks (shared with PgBouncer);
* ``sql``: every statement the exporter sends, each starting with :data:`SQL_MARKER`;
* ``pools``: the connection pools, their session settings and the one retry;
* ``families`` and ``replication``: families from the core query's JSON document;
* ``statements``: the pg_stat_statements top N, without the exporter's own entries;
* ``queries``: custom queries (postgres_exporter's ``queries.yaml`` format);
* ``collector``: one scrape, its queries run concurrently.

The collector, and asyncpg with it, loads on first use of :data:`COLLECTOR`:
PgBouncer's targets import the URL checks from here and need no PostgreSQL driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter.collectors.postgres.config import PostgresTarget, check_dsn, dsn_password
from exporter.collectors.postgres.queries import CustomQuery, load_queries, parse_queries
from exporter.collectors.postgres.sql import SQL_MARKER, marked

if TYPE_CHECKING:
    from exporter.collectors.postgres.collector import PostgresCollector

    COLLECTOR = PostgresCollector

__all__ = [
    "COLLECTOR",
    "SQL_MARKER",
    "CustomQuery",
    "PostgresCollector",
    "PostgresTarget",
    "check_dsn",
    "dsn_password",
    "load_queries",
    "marked",
    "parse_queries",
]


def __getattr__(name: str) -> Any:
    if name in ("COLLECTOR", "PostgresCollector"):
        from exporter.collectors.postgres.collector import PostgresCollector

        return PostgresCollector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
