"""A bound on what one PostgreSQL response may occupy in the exporter's memory.

asyncpg (Cython) buffers a message until all of it has arrived, however long its
header says it is: a server announcing a 2 GiB message and streaming it makes the
process grow by gigabytes. asyncpg has no limit of its own, so :func:`guarded_loop`
gives ``asyncpg.connect`` an event loop whose connections pass every byte through
:class:`_Guard` first. The guard reads the framing of the backend protocol (a type
byte and a 4-byte length per message) without keeping the data and cuts the
connection as soon as a message, or the messages of one response (everything
until ReadyForQuery), would exceed :data:`MAX_RESPONSE_BYTES`; the query then
fails with :class:`ResponseTooLarge`, which names both sizes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asyncpg.protocol import Protocol as _PgProtocol

MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_HEADER = 5  # type byte + int32 length (which counts itself)


class ResponseTooLarge(Exception):
    """The server sent more than the limit; the connection was closed."""


class _Guard(asyncio.Protocol):
    """Sits between a transport and asyncpg's protocol and counts message sizes."""

    def __init__(self, inner: Any, limit: int, transport: asyncio.BaseTransport | None = None) -> None:
        self.inner = inner
        self._limit = limit
        self._transport = transport
        self._header = bytearray()
        self._remaining = 0  # body bytes of the current message still to come
        self._response = 0  # bytes of the current response so far
        self.error: ResponseTooLarge | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        n = len(data)
        self._response += n
        i = 0
        while i < n:
            if self._remaining:
                step = min(self._remaining, n - i)
                self._remaining -= step
                i += step
                continue
            take = min(_HEADER - len(self._header), n - i)
            self._header += data[i : i + take]
            i += take
            if len(self._header) < _HEADER:
                break
            kind = self._header[0:1]
            size = int.from_bytes(self._header[1:5], "big") + 1
            self._header.clear()
            if kind == b"Z":  # ReadyForQuery: a new response starts after it
                self._response = n - i
            if size > self._limit:
                self._trip(f"message of {size} bytes exceeds the {self._limit}-byte limit")
                return
            self._remaining = max(size - _HEADER, 0)
        if self._response > self._limit:
            self._trip(f"response of more than {self._response} bytes exceeds the {self._limit}-byte limit")
            return
        self.inner.data_received(data)

    def _trip(self, message: str) -> None:
        self.error = ResponseTooLarge(f"{message}; connection closed")
        if self._transport is not None:
            self._transport.abort()  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(self.error or exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Transport:
    """A transport whose ``set_protocol`` puts a guard in front of asyncpg's protocol.

    asyncpg's TLS upgrade hands its protocol to the transport with ``set_protocol``
    after the handshake (and so does its fallback to plain text).
    """

    def __init__(self, transport: asyncio.BaseTransport, loop: GuardedLoop) -> None:
        self._real = transport
        self._loop = loop

    def set_protocol(self, protocol: Any) -> None:
        self._real.set_protocol(self._loop.wrap(protocol, self._real))

    def get_protocol(self) -> Any:
        proto = self._real.get_protocol()
        return proto.inner if isinstance(proto, _Guard) else proto

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class GuardedLoop:
    """The running loop, except that connections made through it are guarded.

    One per ``asyncpg.connect`` call; :attr:`error` holds the guard's verdict after
    the connection failed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._real_loop = loop
        self._limit = limit
        self._guards: list[_Guard] = []

    @property
    def error(self) -> ResponseTooLarge | None:
        return next((g.error for g in self._guards if g.error is not None), None)

    def wrap(self, protocol: Any, transport: asyncio.BaseTransport | None = None) -> Any:
        if isinstance(protocol, _PgProtocol):
            guard = _Guard(protocol, self._limit, transport)
            self._guards.append(guard)
            return guard
        return protocol

    async def create_connection(self, factory: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        tr, pr = await self._real_loop.create_connection(lambda: self.wrap(factory()), *args, **kwargs)
        return _Transport(tr, self), pr.inner if isinstance(pr, _Guard) else pr

    async def create_unix_connection(self, factory: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        tr, pr = await self._real_loop.create_unix_connection(lambda: self.wrap(factory()), *args, **kwargs)
        return _Transport(tr, self), pr.inner if isinstance(pr, _Guard) else pr

    async def start_tls(self, transport: Any, *args: Any, **kwargs: Any) -> Any:
        real: Any = transport._real if isinstance(transport, _Transport) else transport
        new = await self._real_loop.start_tls(real, *args, **kwargs)
        return None if new is None else _Transport(new, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real_loop, name)


def guarded_loop() -> GuardedLoop:
    return GuardedLoop(asyncio.get_running_loop())
