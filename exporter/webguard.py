"""Guards for the HTTP listener and for basic auth: what a hostile client cannot do.

* A connection cap, a read-header timeout for the first request and an idle
  (keep-alive) timeout: slowloris and idle floods cannot hold the listener.
* bcrypt runs in its own small pool with a bounded queue, and only for
  credentials not verified before: good credentials are checked on the event
  loop against a cache (constant-time compare), so a wrong-password flood
  never makes a real scrape wait behind bcrypt.
* Failed attempts are rate-limited per client address (a token bucket, in a
  table of bounded size), so one client cannot keep the bcrypt pool busy.

Defaults, flags and metrics are listed in docs (Limits and guards).
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import bcrypt
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

AUTH_FAILURE_REASONS = ("missing", "malformed", "invalid", "rate_limited", "overloaded")
DROP_REASONS = ("max_connections", "header_timeout")
# bcrypt reads at most 72 bytes of a password; bcrypt 5 refuses longer ones
BCRYPT_MAX_PASSWORD = 72


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """Bounds of the HTTP listener and of basic auth (flags ``--web.*``)."""

    max_connections: int = 512
    idle_timeout: float = 60.0
    read_header_timeout: float = 10.0
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 100
    auth_failure_burst: int = 10
    auth_failure_rate: float = 0.2  # failed attempts per second a client earns back
    auth_clients: int = 4096  # clients remembered by the failure limiter
    # one thread: new credentials are rare, and bcrypt must not take every CPU from the loop
    bcrypt_threads: int = 1
    bcrypt_queue: int = 16  # checks waiting for the bcrypt thread before 503

    def handler_args(self) -> dict[str, Any]:
        """Keyword arguments for aiohttp's request handler."""
        return {
            "keepalive_timeout": self.idle_timeout,
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_field_size,
            "max_headers": self.max_headers,
        }


class GuardStats:
    """Counters behind the ``stack_exporter_web_*`` self-metrics."""

    def __init__(self) -> None:
        self.auth_failures: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.open_connections = 0

    def families(self) -> list[Metric]:
        failures = CounterMetricFamily(
            "stack_exporter_web_auth_failures",
            "Requests refused by basic auth, by reason (missing, malformed, invalid, rate_limited, overloaded).",
            labels=["reason"],
        )
        for reason in AUTH_FAILURE_REASONS:
            failures.add_metric([reason], float(self.auth_failures[reason]))
        dropped = CounterMetricFamily(
            "stack_exporter_web_connections_dropped",
            "Connections the listener closed unserved, by reason (max_connections, header_timeout).",
            labels=["reason"],
        )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], float(self.dropped[reason]))
        open_ = GaugeMetricFamily(
            "stack_exporter_web_open_connections",
            "Connections open to the exporter's HTTP listeners.",
            value=float(self.open_connections),
        )
        return [failures, dropped, open_]


class Overloaded(Exception):
    """The bcrypt queue is full."""


class BcryptPool:
    """bcrypt in a dedicated pool with a bounded queue, never in the default executor."""

    def __init__(self, threads: int, queue: int, cost: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="bcrypt")
        self._limit = max(1, threads) + max(0, queue)
        self._pending = 0
        self._lock = threading.Lock()
        self.cost = cost
        self._placeholder: bytes | None = None
        # cost -> checks run: lets tests see every attempt paid the same price
        self.calls: Counter[int] = Counter()

    def placeholder(self) -> bytes:
        """A hash of a random password at the configured cost, for unknown users."""
        if self._placeholder is None:
            self._placeholder = bcrypt.hashpw(os.urandom(18), bcrypt.gensalt(rounds=self.cost))
        return self._placeholder

    def warm(self) -> None:
        """Make the placeholder now, off the loop, so the first unknown user is not faster or slower."""
        self._executor.submit(self.placeholder)

    def _check(self, password: bytes, hashed: bytes | None) -> bool:
        target = self.placeholder() if hashed is None else hashed
        try:
            self.calls[int(target[4:6])] += 1
            ok = bcrypt.checkpw(password, target)
        except ValueError:  # a malformed hash; the config check refuses those
            return False
        return ok and hashed is not None

    def _done(self, _: Future[bool]) -> None:
        with self._lock:
            self._pending -= 1

    async def check(self, password: bytes, hashed: bytes | None) -> bool:
        """bcrypt of ``password`` against ``hashed`` (None: an unknown user, always False)."""
        with self._lock:
            if self._pending >= self._limit:
                raise Overloaded
            self._pending += 1
        future = self._executor.submit(self._check, password, hashed)
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)


class FailureLimiter:
    """A token bucket per client address for failed auth attempts, in a bounded LRU table."""

    def __init__(self, rate: float, burst: int, max_clients: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max(1, max_clients)
        self._clock = clock
        self._table: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def __len__(self) -> int:
        return len(self._table)

    def take(self, client: str) -> float:
        """Spend a token: 0 when allowed, else the seconds until the next token."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, last = self._table.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._table[client] = (tokens, now)
        while len(self._table) > self.max_clients:
            self._table.popitem(last=False)
        return wait

    def refund(self, client: str) -> None:
        """Give back the token of an attempt that succeeded."""
        entry = self._table.get(client)
        if entry is not None:
            self._table[client] = (min(float(self.burst), entry[0] + 1), entry[1])


def client_key(remote: str | None) -> str:
    """The limiter's key: the address, or its /64 for IPv6 (one host holds a whole /64)."""
    if not remote:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if not address.is_loopback:
            return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """An address from a peer or an X-Forwarded-For entry (``[v6]:port`` and ``v4:port`` too)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str | None:
    """The peer; behind a ``trusted`` proxy, the right-most forwarded address not itself trusted.

    The public ingest listener's rule (RUM beacons, email webhooks): ``X-Forwarded-For`` is
    believed only from a trusted peer, and garbage where a proxy should have written an
    address falls back to the peer.
    """

    def is_trusted(address: Address) -> bool:
        return any(address.version == net.version and address in net for net in trusted)

    peer = _address(request.remote or "")
    if peer is None:
        return request.remote
    if not is_trusted(peer):
        return str(peer)
    hops = [hop for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        if not is_trusted(address):
            return str(address)
    return str(peer)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    status: int = 200
    retry_after: int | None = None


ALLOWED = Verdict(True)
DENIED = Verdict(False, 401)


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


async def read_limited(request: web.Request, limit: int, chunk: int = 64 * 1024) -> bytes | None:
    """A request body, or None as soon as it is known to exceed ``limit`` bytes.

    Refused from its Content-Length before anything is read, then read in chunks that stop
    at the limit, so a chunked body without a length cannot grow past it either.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for part in request.content.iter_chunked(chunk):
        size += len(part)
        if size > limit:
            return None
        chunks.append(part)
    return b"".join(chunks)


_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\ntoo many open connections\n"
)


class _GuardedConnection(asyncio.Protocol):
    """Wraps aiohttp's protocol: refuses over the cap, times out a slow first request head."""

    def __init__(self, inner: asyncio.Protocol, limits: ServerLimits, stats: GuardStats) -> None:
        self._inner = inner
        self._limits = limits
        self._stats = stats
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._served = False  # forwarded to aiohttp (counted as open)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        if self._stats.open_connections >= self._limits.max_connections:
            self._stats.dropped["max_connections"] += 1
            transport.write(_REFUSAL)
            transport.close()
            return
        self._served = True
        self._stats.open_connections += 1
        if self._limits.read_header_timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._limits.read_header_timeout, self._header_timeout)
        self._inner.connection_made(transport)

    def _header_timeout(self) -> None:
        self._timer = None
        self._stats.dropped["header_timeout"] += 1
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._served:
            return
        if self._timer is not None:
            window = self._tail + data
            # the end of the head; LF-only lines end it too for a lenient parser
            if b"\n\r\n" in window or b"\n\n" in window:
                self._timer.cancel()
                self._timer = None
            self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._served else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._served:
            self._served = False
            self._stats.open_connections -= 1
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._served:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._served:
            self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through the listener guards."""

    __slots__ = ("_limits", "_stats")

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, *, limits: ServerLimits,
                 stats: GuardStats, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(runner, host, port, **kwargs)
        self._limits = limits
        self._stats = stats

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        limits, stats = self._limits, self._stats

        def factory() -> asyncio.Protocol:
            return _GuardedConnection(server(), limits, stats)

        self._server = await asyncio.get_running_loop().create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
