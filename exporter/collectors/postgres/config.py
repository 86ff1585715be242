"""A PostgreSQL target's configuration, and the libpq URL checks PgBouncer's targets share.

Nothing here imports a database driver: the config loader and PgBouncer's
collector use it without loading asyncpg.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from exporter.collectors.postgres.queries import CustomQuery, load_queries
from exporter.schema import Duration, Secret, TargetConfig, check_url, file_problem, url_password

# DSN parameters naming files the driver reads when it connects.
_FILE_PARAMS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


def check_dsn(
    dsn: str, has_password: bool, example: str = "postgresql://user@127.0.0.1:5432/dbname"
) -> Iterator[tuple[str, str]]:
    """``check()`` pairs for a libpq URL: scheme, host, port, sslmode, one password only."""
    url_problems = list(
        check_url(
            dsn,
            key="dsn",
            schemes=("postgres", "postgresql"),
            example=f"{example} (key=value DSNs are not supported)",
            credentials_allowed=True,
            # libpq takes the host from ?host= too (a unix socket directory)
            host_required="host=" not in dsn,
        )
    )
    yield from url_problems
    if url_problems:
        return
    parts = urlsplit(dsn)
    params = dict(parse_qsl(parts.query))
    if parts.password and has_password:
        yield "password", "the DSN already has a password; set one or the other"
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
        yield "dsn", f"unknown sslmode {sslmode!r}"
    for key in _FILE_PARAMS:
        value = params.get(key)
        # relative paths stay relative to the working directory, as the driver reads them;
        # "system" is libpq's name for the system CA store, not a file
        if value and not (key == "sslrootcert" and value == "system"):
            problem = file_problem(Path(value))
            if problem is not None:
                yield "dsn", f"{key}: {problem}"


def dsn_password(dsn: str) -> list[str]:
    """The DSN's password, for the redactor; [] when there is none."""
    return url_password(dsn)


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
    # Connections: at most max_connections sessions per target, whatever their
    # databases; none added while the server has min_free_connections or fewer
    # non-reserved slots free; idle ones closed after connection_idle_timeout.
    max_connections: int = 3
    min_free_connections: int = 3
    connection_idle_timeout: Duration = Duration(60.0)
    # Table health of other databases: this many visited per scrape, in turn.
    databases_per_scrape: int = 10
    # The old name of max_connections, still accepted.
    pool_max_size: int | None = None
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
        if self.pool_max_size is not None:
            if self.max_connections != 3:
                yield "pool_max_size", "is the old name of max_connections; set max_connections only"
            else:
                object.__setattr__(self, "max_connections", self.pool_max_size)
        if not 1 <= self.max_connections <= 20:
            yield "max_connections" if self.pool_max_size is None else "pool_max_size", "must be between 1 and 20"
        if not 0 <= self.min_free_connections <= 1000:
            yield "min_free_connections", "must be between 0 and 1000"
        if not 1 <= self.databases_per_scrape <= 1000:
            yield "databases_per_scrape", "must be between 1 and 1000"
        if not 0 < self.connection_idle_timeout <= 86400:
            yield "connection_idle_timeout", "must be positive and at most 1d"
        if self.custom_queries_file is not None:
            queries, problems = load_queries(Path(self.custom_queries_file))
            for problem in problems:
                yield "custom_queries_file", f"{self.custom_queries_file}: {problem}"
            object.__setattr__(self, "custom_queries", queries)

    def secret_values(self) -> list[str]:
        return dsn_password(self.dsn)
