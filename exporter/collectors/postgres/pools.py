"""The connection pools of one PostgreSQL target: the DSN's database, and one per extra database.

Pools open lazily and live across scrapes. Every session is marked
``application_name=stack-exporter`` and carries a ``statement_timeout`` and a
``lock_timeout``, so the exporter can never hold up the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from exporter.collectors.postgres.config import PostgresTarget
from exporter.collectors.postgres.sql import RESET_SQL

T = TypeVar("T")

# what pool.acquire() yields
Connection = PoolConnectionProxy

# A pooled session that died (pg_terminate_backend, a server restart) shows as one of
# these only when used.
CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)


async def reset_session(conn: asyncpg.Connection) -> None:
    """The pools' reset on release, instead of asyncpg's default.

    The default (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) would add unmarked
    entries to pg_stat_statements on every release. The exporter never takes advisory
    locks, opens cursors or listens; a custom query may change a setting, which RESET ALL
    undoes (the startup settings, statement_timeout included, are what it resets to).
    """
    await conn.execute(RESET_SQL)


def connect_kwargs(cfg: PostgresTarget, database: str | None = None) -> dict[str, Any]:
    """asyncpg's connection arguments for ``cfg``; ``database`` overrides the DSN's."""
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


class Pools:
    """One pool per database, keyed by name; ``None`` is the DSN's database."""

    def __init__(self, config: PostgresTarget) -> None:
        self._config = config
        self._pools: dict[str | None, asyncpg.Pool] = {}
        # concurrent tasks of one scrape ask for the same pool: it must open once
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def pool(self, database: str | None = None) -> asyncpg.Pool:
        async with self._locks.setdefault(database, asyncio.Lock()):
            pool = self._pools.get(database)
            if pool is None:
                # the DSN's database serves the core, statements and custom queries at
                # once; another database serves one table-health query per scrape
                max_size = self._config.pool_max_size if database is None else 1
                pool = asyncpg.create_pool(
                    min_size=1,
                    max_size=max_size,
                    reset=reset_session,
                    **connect_kwargs(self._config, database),
                )
                try:
                    await pool
                except BaseException:
                    pool.terminate()
                    raise
                self._pools[database] = pool
            return pool

    @contextlib.asynccontextmanager
    async def connection(self, database: str | None = None) -> AsyncIterator[Connection]:
        pool = await self.pool(database)
        async with pool.acquire() as conn:
            yield conn

    async def run(self, query: Callable[[Connection], Awaitable[T]], database: str | None = None) -> T:
        """``query`` on a pooled connection, retried once on a fresh pool if the session was dead.

        A session killed by pg_terminate_backend or a server restart is only
        noticed when used; the retry opens new connections.
        """
        for attempt in (1, 2):
            pool = await self.pool(database)
            try:
                async with pool.acquire() as conn:
                    return await query(conn)
            except CONNECTION_ERRORS:
                self._discard(database, pool)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _discard(self, database: str | None, pool: asyncpg.Pool) -> None:
        # another task may already have replaced it
        if self._pools.get(database) is pool:
            del self._pools[database]
        pool.terminate()

    async def close(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pool.terminate()
