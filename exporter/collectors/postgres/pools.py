"""The connections of one PostgreSQL target, under one cap for all its databases.

A target never holds more than ``max_connections`` sessions, whichever databases
they are connected to: the DSN's database serves the core query, statements and
custom queries; table health of other databases borrows a slot, and a connection
to another database is kept only while no one needs the slot (least recently used
goes first). Connections idle for ``connection_idle_timeout`` are closed.

The exporter must never be the reason an application cannot connect: after each
core query the collector reports how many non-reserved slots the server has free
(:meth:`Pools.set_free_slots`), and a connection that would add to the exporter's
sessions is not opened while that number is at or below ``min_free_connections``
(:class:`NoFreeSlots`). Replacing one of its own idle sessions, and the target's
first connection to the DSN's database, are always allowed.

Every session is marked ``application_name=stack-exporter`` and carries a
``statement_timeout`` and a ``lock_timeout``, so the exporter can never hold up the
database; what one response may occupy in memory is bounded (see ``guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from exporter.collectors.postgres.config import PostgresTarget
from exporter.collectors.postgres.guard import GuardedLoop, ResponseTooLarge, guarded_loop
from exporter.collectors.postgres.sql import RESET_SQL, ROLLBACK_SQL

T = TypeVar("T")

Connection = asyncpg.Connection

# A session that died (pg_terminate_backend, a server restart) shows as one of
# these only when used.
CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)

APPLICATION_NAME = "stack-exporter"


class NoFreeSlots(Exception):
    """Opening a connection would leave the server too few free slots; it was not opened."""


def connect_kwargs(cfg: PostgresTarget, database: str | None = None) -> dict[str, Any]:
    """asyncpg's connection arguments for ``cfg``; ``database`` overrides the DSN's."""
    kwargs: dict[str, Any] = {
        "dsn": cfg.dsn,
        "server_settings": {
            "application_name": APPLICATION_NAME,
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


@dataclass(eq=False)
class _Held:
    database: str | None
    conn: asyncpg.Connection
    loop: GuardedLoop
    idle_since: float | None = field(default=None)


class Pools:
    """The target's connections; ``None`` is the DSN's database."""

    def __init__(self, config: PostgresTarget) -> None:
        self._config = config
        self._cap = config.max_connections
        self._margin = config.min_free_connections
        self._idle_timeout = float(config.connection_idle_timeout)
        self._held: list[_Held] = []
        self._slots: asyncio.Semaphore | None = None
        self._opening = 0
        self._sweeper: asyncio.Task[None] | None = None
        # the server's free non-reserved slots as last measured, minus what we opened since
        self._free: int | None = None

    @property
    def cap(self) -> int:
        return self._cap

    @property
    def open_connections(self) -> int:
        return len(self._held)

    def guard_error(self, conn: Connection) -> ResponseTooLarge | None:
        """Why ``conn`` was cut, if it was because the server sent too much."""
        return next((h.loop.error for h in self._held if h.conn is conn), None)

    def set_free_slots(self, free: int | None) -> None:
        """Free non-reserved connection slots on the server, as the core query saw them."""
        self._free = free

    # ------------------------------------------------------------------ using a connection

    @contextlib.asynccontextmanager
    async def connection(
        self, database: str | None = None, *, essential: bool = False, custom: bool = False
    ) -> AsyncIterator[Connection]:
        """A session of ``database`` for the block; ``custom``: it runs users' custom queries.

        Only a custom query can change a session (a setting, the role, an open
        transaction), so only such a session is reset on release; the catalog queries
        set nothing and their sessions go back as they are, saving a round trip and a
        statement per use.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._cap)
        async with self._slots:
            held = await self._take(database, essential)
            ok = False
            try:
                yield held.conn
                ok = True
            except CONNECTION_ERRORS:  # before PostgresError: ConnectionDoesNotExistError is one
                await self._drop(held)
                if held.loop.error is not None:
                    raise held.loop.error from None
                raise
            except asyncpg.PostgresError:
                ok = not held.conn.is_closed()
                raise
            finally:
                if ok:
                    await self._release(held, reset=custom)
                elif held in self._held:
                    # cancelled at the deadline or broken: no graceful goodbye that could wait
                    self._forget(held).terminate()

    async def run(
        self, query: Callable[[Connection], Awaitable[T]], database: str | None = None, *, essential: bool = False
    ) -> T:
        """``query`` on a connection, retried once on a new one if the session was dead.

        A session killed by pg_terminate_backend or a server restart is only
        noticed when used; the retry opens a new connection. ``essential`` (the core
        query) may add a session even when the server is short of free slots.
        """
        for attempt in (1, 2):
            try:
                async with self.connection(database, essential=essential) as conn:
                    return await query(conn)
            except CONNECTION_ERRORS:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ bookkeeping

    async def _take(self, database: str | None, essential: bool = False) -> _Held:
        await self._close_idle()
        # no await from here until the decision is booked, so concurrent takers
        # count each other's connections
        idle = [h for h in self._held if h.idle_since is not None]
        mine = [h for h in idle if h.database == database]
        if mine:
            held = max(mine, key=lambda h: h.idle_since or 0.0)
            held.idle_since = None
            return held
        low = self._free is not None and self._free <= self._margin
        # at the cap, the slot this task holds guarantees an idle session to replace;
        # short of free slots on the server, replace one rather than add one
        replace = len(self._held) + self._opening >= self._cap or (low and bool(idle))
        first = essential or (database is None and not any(h.database is None for h in self._held))
        if low and not replace and not first:
            raise NoFreeSlots(
                f"not opened: the server has {max(self._free or 0, 0)} free connection slots"
                f" (min_free_connections: {self._margin})"
            )
        victim = self._forget(min(idle, key=lambda h: h.idle_since or 0.0)) if replace and idle else None
        self._opening += 1
        if self._free is not None:
            self._free -= 1
        loop = guarded_loop()
        try:
            if victim is not None:
                await _close(victim)
            # a stand-in for the running loop: see guard.GuardedLoop
            conn = await asyncpg.connect(loop=loop, **connect_kwargs(self._config, database))  # type: ignore[call-overload]
        except (OSError, asyncpg.exceptions.InterfaceError, asyncpg.PostgresError):
            if self._free is not None:
                self._free += 1
            if loop.error is not None:
                raise loop.error from None
            raise
        except BaseException:
            if self._free is not None:
                self._free += 1
            raise
        finally:
            self._opening -= 1
        held = _Held(database, conn, loop)
        self._held.append(held)
        self._start_sweeper()
        return held

    async def _release(self, held: _Held, *, reset: bool) -> None:
        try:
            # Not asyncpg's pool reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL):
            # it would add unmarked entries to pg_stat_statements, and the exporter never
            # takes advisory locks, opens cursors or listens. is_in_transaction() is the
            # client's view of the last ReadyForQuery: no round trip.
            if held.conn.is_in_transaction():
                await held.conn.execute(ROLLBACK_SQL)
            if reset:
                await held.conn.execute(RESET_SQL)
        except (asyncpg.PostgresError, *CONNECTION_ERRORS, TimeoutError):
            await self._drop(held)
            return
        low = self._free is not None and self._free <= self._margin
        if low and any(h.idle_since is not None for h in self._held):
            # short of free slots on the server: give back all but one idle session
            await self._drop(held)
            return
        held.idle_since = time.monotonic()

    async def _close_idle(self) -> None:
        cutoff = time.monotonic() - self._idle_timeout
        for held in [h for h in self._held if h.idle_since is not None and h.idle_since <= cutoff]:
            await self._drop(held)

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Closes idle sessions between scrapes too (Prometheus may stop scraping)."""
        while self._held:
            await asyncio.sleep(max(self._idle_timeout / 2, 0.05))
            await self._close_idle()

    def _forget(self, held: _Held) -> asyncpg.Connection:
        if held in self._held:
            self._held.remove(held)
            if self._free is not None:
                self._free += 1
        return held.conn

    async def _drop(self, held: _Held) -> None:
        if held in self._held:
            await _close(self._forget(held))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        held, self._held = self._held, []
        await asyncio.gather(*(_close(h.conn) for h in held))


async def _close(conn: asyncpg.Connection) -> None:
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 2)
    except (TimeoutError, Exception):  # noqa: BLE001 - closing anyway
        conn.terminate()


__all__ = ["CONNECTION_ERRORS", "Connection", "NoFreeSlots", "Pools", "ResponseTooLarge", "connect_kwargs"]
