"""The connection to one server: client options, a bounded reply parser, and helpers for replies and errors.

What one reply may occupy is bounded (``max_reply_bytes``, 64 MiB by default):
a broken or hostile server that sends a line without CRLF, or announces a
``$2000000000`` bulk string, fails that target with :class:`ReplyTooLarge`
and the connection is dropped, instead of growing the exporter's memory.
hiredis (redis-py's default parser when installed) buffers whatever the
server sends until a reply is complete, and has no limit to set, so the
exporter passes its own RESP2 parser to redis-py (``parser_class``), with a
budget per reply: an announced length is checked before a byte of it is
read, a line (simple string, error, length header) may be at most 64 KiB,
and a reply at most 100,000 elements.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis.asyncio as aioredis
from redis._parsers import _AsyncRESP2Parser
from redis._parsers.socket import SERVER_CLOSED_CONNECTION_ERROR
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisError

from exporter.collectors.redis.config import DEFAULT_MAX_REPLY_BYTES, RedisTarget

# What the parser charges per element (per line read) on top of its bytes: the Python object
# an element becomes, so a reply of a million tiny elements counts for what it
# occupies in memory and not only for its few bytes on the wire.
ELEMENT_OVERHEAD = 64
# Elements (lines) one reply may have: the largest we ask for are SCAN's
# ~1,000 keys and SENTINEL REPLICAS' ~40 fields per replica; this also bounds
# the CPU an endless array takes (under a second) before the target fails.
MAX_REPLY_ELEMENTS = 100_000
# The longest line (simple string, error, length header) a reply may have:
# real ones are a few hundred bytes.
LINE_LIMIT = 2**16
# How deep arrays may nest (SLOWLOG GET is the deepest we ask for: 3).
MAX_DEPTH = 16


class ReplyTooLarge(RedisError):
    """A reply over the target's ``max_reply_bytes`` or 100,000 elements, or a line over 64 KiB.

    The connection it came on is dropped.
    """


def size_text(n: int) -> str:
    """``64 MiB``, ``1.5 MiB``, ``512 KiB`` or ``100 bytes``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


class BoundedRESP2Parser(_AsyncRESP2Parser):
    """redis-py's asyncio RESP2 parser, rewritten to read through a bounded buffer.

    redis-py's own pure-Python parser reads every line with a separate
    ``StreamReader.readline`` (~20 ms for a SCAN reply of 1,000 keys on a
    loaded 2-CPU machine); this one reads the socket in chunks into one
    buffer and parses from it: INFO ALL as fast as hiredis, a SCAN reply of
    1,000 keys in ~7 ms against hiredis's ~2-3 ms on the same machine, which
    the SCAN budget bounds.  Each line and each bulk string is charged to the
    reply's budget before it is waited for, so the buffer never holds more
    than the budget plus one read (64 KiB).
    """

    max_reply_bytes: ClassVar[int] = DEFAULT_MAX_REPLY_BYTES
    _buf: bytearray
    _at: int = 0  # where the unparsed bytes start in _buf
    _used: int = 0
    _lines: int = 0

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)  # type: ignore[no-untyped-call]
        self._buf = bytearray()
        self._at = 0

    async def can_read_destructive(self) -> bool:
        if self._at < len(self._buf):
            return True
        result: bool = await super().can_read_destructive()
        return result

    async def read_response(self, disable_decoding: bool = False) -> Any:
        if not self._connected:
            raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR)
        self._used = self._lines = 0
        response = await self._reply(disable_decoding, 0)
        del self._buf[: self._at]  # what is left belongs to the next reply
        self._at = 0
        return response

    async def _fill(self, wanted: int) -> None:
        """Read at least one more byte, up to ``wanted`` or one socket read, whichever is larger."""
        data = await self._stream.read(max(self._read_size, wanted))  # type: ignore[union-attr]
        if not data:
            raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR)
        self._buf += data

    def _charge(self, n: int) -> None:
        self._used += n
        if self._used > self.max_reply_bytes:
            raise ReplyTooLarge(f"reply larger than the {size_text(self.max_reply_bytes)} limit (max_reply_bytes)")

    def _take_line(self, end: int) -> bytes:
        """The line ending at ``end`` (its CRLF), consumed and charged."""
        line = bytes(self._buf[self._at : end])
        self._at = end + 2
        self._charge(len(line) + 2 + ELEMENT_OVERHEAD)
        self._lines += 1
        if self._lines > MAX_REPLY_ELEMENTS:
            raise ReplyTooLarge(f"reply has more than {MAX_REPLY_ELEMENTS} elements")
        return line

    def _take_bulk(self, length: int) -> bytes:
        data = bytes(self._buf[self._at : self._at + length])
        self._at += length + 2
        return data

    async def _line(self) -> bytes:
        searched = self._at
        while (end := self._buf.find(b"\r\n", searched)) < 0:
            if len(self._buf) - self._at > LINE_LIMIT:
                raise ReplyTooLarge(
                    f"reply line longer than the {size_text(LINE_LIMIT)} limit (no CRLF): not a Redis server?"
                )
            searched = max(self._at, len(self._buf) - 1)
            await self._fill(0)
        return self._take_line(end)

    def _buffered(self, disable_decoding: bool) -> Any:
        """The next element if it is not an array and is wholly buffered (consumed), else ``_MISSING``.

        The fast path: most elements of a reply are already in the buffer, and
        a plain call costs a fraction of a coroutine's await.
        """
        end = self._buf.find(b"\r\n", self._at)
        if end < 0 or self._buf[self._at] == 0x2A:  # no whole line yet, or an array: the slow path
            return _MISSING
        if self._buf[self._at] == 0x24 and end + 2 + max(_integer(self._buf[self._at : end]), 0) + 2 > len(self._buf):
            return _MISSING  # a bulk string not wholly here yet
        return self._element(self._take_line(end), disable_decoding)

    def _element(self, raw: bytes, disable_decoding: bool) -> Any:
        """A non-array element from its line; a bulk string's body must be buffered."""
        kind, rest = raw[:1], raw[1:]
        if kind == b"-":
            error = self.parse_error(rest.decode("utf-8", errors="replace"))  # type: ignore[no-untyped-call]
            if isinstance(error, RedisConnectionError):
                raise error
            return error  # a ResponseError inside a pipeline is returned, as redis-py does
        if kind == b":":
            return _integer(raw)
        response: Any
        if kind == b"+":
            response = rest
        elif kind == b"$":
            length = _length(raw)
            if length is None:
                return None
            self._charge(length + 2)
            response = self._take_bulk(length)
        else:
            raise InvalidResponse(f"Protocol Error: {raw[:80]!r}")
        return response if disable_decoding else self.encoder.decode(response)  # type: ignore[union-attr]

    async def _reply(self, disable_decoding: bool, depth: int) -> Any:
        item = self._buffered(disable_decoding)
        if item is not _MISSING:
            return item
        raw = await self._line()
        kind = raw[:1]
        if kind == b"$":
            length = _length(raw)
            if length is None:
                return None
            self._charge(length + 2)  # an announced length is charged before a byte of it is read
            while (missing := self._at + length + 2 - len(self._buf)) > 0:
                await self._fill(missing)
            data = self._take_bulk(length)
            return data if disable_decoding else self.encoder.decode(data)  # type: ignore[union-attr]
        if kind != b"*":
            return self._element(raw, disable_decoding)
        count = _length(raw)
        if count is None:
            return None
        if depth >= MAX_DEPTH:
            raise InvalidResponse(f"Protocol Error: arrays nested deeper than {MAX_DEPTH}")
        response: list[Any] = []
        raw_bulks = disable_decoding or not self.encoder.decode_responses  # type: ignore[union-attr]
        while len(response) < count:
            if not (raw_bulks and self._bulks(response, count)):
                item = self._buffered(disable_decoding)
                response.append(item if item is not _MISSING else await self._reply(disable_decoding, depth + 1))
        return response

    def _bulks(self, out: list[Any], count: int) -> bool:
        """Append the buffered bulk strings that come next, up to ``count`` elements in ``out``.

        The hot loop of a SCAN reply (1,000 keys), with the checks of
        ``_take_line`` and the bulk charge inlined; returns whether it took any.
        """
        buf, at, size = self._buf, self._at, len(self._buf)
        used, lines, limit = self._used, self._lines, self.max_reply_bytes
        taken = 0
        while len(out) < count:
            end = buf.find(b"\r\n", at)
            if end < 0 or buf[at] != 0x24:  # not a whole line, or not a bulk string
                break
            try:
                n = int(buf[at + 1 : end])
            except ValueError:
                break  # the slow path raises the protocol error
            if n < 0 or end + n + 4 > size:
                break
            used += end - at + 4 + ELEMENT_OVERHEAD + n
            lines += 1
            if used > limit or lines > MAX_REPLY_ELEMENTS:
                break  # the slow path raises the error
            out.append(bytes(buf[end + 2 : end + 2 + n]))
            at = end + n + 4
            taken += 1
        self._at, self._used, self._lines = at, used, lines
        return taken > 0


_MISSING = object()


def _length(raw: bytes) -> int | None:
    """A bulk string's or array's announced length; None for the null ones (-1)."""
    n = _integer(raw)
    if n < -1:
        raise InvalidResponse(f"Protocol Error: {raw[:80]!r}")
    return None if n == -1 else n


def _integer(raw: bytes | bytearray) -> int:
    """The number after a line's type byte (an integer reply, a length)."""
    try:
        return int(raw[1:])
    except ValueError:
        raise InvalidResponse(f"Protocol Error: {bytes(raw[:80])!r}") from None


def bounded_parser(max_reply_bytes: int) -> type[BoundedRESP2Parser]:
    """The parser class for connections whose replies may occupy at most ``max_reply_bytes``."""
    return type("BoundedRESP2Parser", (BoundedRESP2Parser,), {"max_reply_bytes": max_reply_bytes})


def make_client(cfg: RedisTarget, db: int, max_connections: int = 4) -> aioredis.Redis:
    kwargs: dict[str, Any] = {
        "max_connections": max_connections,
        "socket_connect_timeout": 5,
        "client_name": "stack-exporter",
        # redis-py announces itself with CLIENT SETINFO, which Redis < 7.2
        # rejects: every new connection would add to the server's errorstats
        "lib_name": None,
        "lib_version": None,
        # one immediate retry replaces a connection the server dropped
        # (restart, idle timeout); the default backs off for seconds, and
        # also retries a wrong password, which only burns the deadline
        "retry": Retry(NoBackoff(), 1),
        "parser_class": bounded_parser(cfg.max_reply_bytes),
    }
    if cfg.password is not None:
        kwargs["password"] = cfg.password.get()
    if cfg.username is not None:
        kwargs["username"] = cfg.username
    if cfg.tls is not None:
        kwargs["ssl_ca_certs"] = cfg.tls.ca_file
        kwargs["ssl_certfile"] = cfg.tls.cert_file
        kwargs["ssl_keyfile"] = cfg.tls.key_file
        if cfg.tls.insecure_skip_verify:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
    pool = aioredis.ConnectionPool.from_url(cfg.url, **kwargs)
    pool.connection_kwargs["db"] = db  # from_url lets the URL's /N win over db=
    # RESP3 (?protocol=3 in a URL) would swap in redis-py's own RESP3 parser, unbounded
    pool.connection_kwargs["protocol"] = 2
    client = aioredis.Redis(connection_pool=pool)
    # raw INFO text: our parser is simpler and faster than redis-py's dicts
    client.set_response_callback("INFO", _raw)
    return client


def _raw(response: Any, **options: Any) -> Any:
    return response


def text(value: Any) -> str:
    """A reply as text, whether redis-py decoded it or not."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for logs and CollectError, without repeating a message that is only the type."""
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message != type(exc).__name__ else message
