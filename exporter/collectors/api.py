"""The API collectors' base class and the HTTP client it owns (Lago, Directus, email providers, status pages).

* One aiohttp session per process (``ctx.shared("http", ...)``), so connections
  to a provider are reused across targets and scrapes.
* A connection budget per target (:data:`CONNECTIONS_PER_TARGET`), and no shared
  per-host cap: slow targets on one host:port cannot starve a healthy one there.
  A request whose deadline passes while it waits for a connection fails with
  "waited N s for a free connection to HOST; no request sent", never with a
  "no answer" for a request the server never saw.
* Every request gets a timeout inside what is left of the collection's deadline,
  read through ``base.time_left()`` (the engine's deadline; child tasks inherit it).
* Transient failures (connection errors, 500/502/503/504) are retried with full
  jitter, only while the remaining time still fits another attempt.
* 429 answers and exhausted rate-limit headers (``Retry-After``,
  ``X-RateLimit-Reset``/``-Remaining``, ``RateLimit-Reset``) put the target in
  backoff: no request is sent until then, the collector serves its last good
  result, and ``stack_exporter_http_rate_limited_until_timestamp_seconds`` says so.
* Bodies are read up to a size cap; JSON that does not parse, or lacks the
  expected shape, becomes a :class:`CollectError` naming the provider and field.
* Errors name the provider, method and path; never the query string, headers or
  credentials.  The credential headers sent are handed to the redactor
  (:func:`~exporter.redact.remember_sent`), so a server echoing them back in an
  error body is masked in every form.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.collectors.base import DEADLINE_MARGIN, CollectError, Collector, Context, deadline_scope, time_left
from exporter.redact import remember_sent
from exporter.retry_after import parse_reset, parse_retry_after
from exporter.schema import TargetConfig

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# A 429 without any reset header: wait this long before asking again.
DEFAULT_RATE_LIMIT_BACKOFF = 60.0
# A provider asking for more than this is capped: a wrong header must not silence a target for days.
MAX_RATE_LIMIT_BACKOFF = 3600.0
RETRY_STATUSES = frozenset({500, 502, 503, 504})

C = TypeVar("C", bound=TargetConfig)

# --------------------------------------------------------------------------- errors


class HttpError(CollectError):
    """A request failed; the message names provider and endpoint, never credentials."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(HttpError):
    """401/403: the service answers but rejects the credentials."""


class RateLimited(HttpError):
    """429, or a backoff from an earlier 429 still running."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message, 429)
        self.until = until


class ShapeError(HttpError):
    """The body is not JSON, is too large, or lacks an expected field."""


# --------------------------------------------------------------------------- JSON fields


def field(obj: Any, path: str, provider: str, what: str = "") -> Any:
    """``obj["a"]["b"]`` for ``path="a.b"``, or a ShapeError naming the provider and field."""
    cur = obj
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(cur, Mapping) or part not in cur:
            where = f" in {what}" if what else ""
            raise ShapeError(f"{provider}: field {'.'.join(walked)!r} missing{where}")
        cur = cur[part]
    return cur


def number(value: Any, provider: str, name: str) -> float:
    """A JSON number, or a numeric string (Directus on PostgreSQL sends counts as strings)."""
    if isinstance(value, bool) or value is None:
        raise ShapeError(f"{provider}: field {name!r} is {json.dumps(value)}, expected a number")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ShapeError(f"{provider}: field {name!r} is {value[:40]!r}, expected a number") from None
    else:
        raise ShapeError(f"{provider}: field {name!r} is a {type(value).__name__}, expected a number")
    if not math.isfinite(result):
        raise ShapeError(f"{provider}: field {name!r} is not a finite number")
    return result


def number_field(obj: Any, path: str, provider: str, what: str = "") -> float:
    return number(field(obj, path, provider, what), provider, path)


def list_field(obj: Any, path: str, provider: str, what: str = "") -> list[Any]:
    value = field(obj, path, provider, what)
    if not isinstance(value, list):
        raise ShapeError(f"{provider}: field {path!r} is a {type(value).__name__}, expected a list")
    return value


# --------------------------------------------------------------------------- the session


# Connections: a budget per target, not per host.  Each target holds at most
# CONNECTIONS_PER_TARGET connections at once (HttpClient's slots), and the shared
# connector has no per-host or total cap of its own: a shared cap let eight slow
# targets on one host:port take every connection from a healthy target on the same
# host:port, which then failed without sending a request.  The process's total is
# bounded by the config instead: API targets x CONNECTIONS_PER_TARGET.
CONNECTIONS_PER_TARGET = 4


@dataclass
class _Progress:
    """How far one request got, filled in by the session's trace hooks: what a timeout interrupted."""

    stage: str = "slot"  # slot (the target's budget) -> pool -> queued (the shared pool) -> connecting -> sent
    waited: float = 0.0  # seconds spent waiting for a connection (the target's budget, the pool)
    queued_at: float | None = None


def _progress(params: Any) -> _Progress | None:
    ctx = getattr(params, "trace_request_ctx", None)
    return ctx if isinstance(ctx, _Progress) else None


async def _on_queued_start(_session: Any, ctx: Any, _params: Any) -> None:
    if (p := _progress(ctx)) is not None:
        p.stage, p.queued_at = "queued", time.monotonic()


async def _on_queued_end(_session: Any, ctx: Any, _params: Any) -> None:
    if (p := _progress(ctx)) is not None and p.queued_at is not None:
        p.waited += time.monotonic() - p.queued_at
        p.queued_at = None


async def _on_create_start(_session: Any, ctx: Any, _params: Any) -> None:
    if (p := _progress(ctx)) is not None:
        p.stage = "connecting"


async def _on_headers_sent(_session: Any, ctx: Any, _params: Any) -> None:
    if (p := _progress(ctx)) is not None:
        p.stage = "sent"


def _new_session() -> aiohttp.ClientSession:
    # ssl/proxy from the environment stay off: credentials only travel where the config says
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(_on_queued_start)
    trace.on_connection_queued_end.append(_on_queued_end)
    trace.on_connection_create_start.append(_on_create_start)
    trace.on_request_headers_sent.append(_on_headers_sent)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"stack-exporter/{__version__}"},
        timeout=aiohttp.ClientTimeout(total=None),
        raise_for_status=False,
        trace_configs=[trace],
    )


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


def shared_session(ctx: Context) -> aiohttp.ClientSession:
    session: aiohttp.ClientSession = ctx.shared("http", _new_session, _close_session)
    return session


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str


def _reset_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until a rate limit lifts, from whichever header the provider sends (exporter/retry_after.py)."""
    delay = parse_retry_after(headers.get("Retry-After"), now, MAX_RATE_LIMIT_BACKOFF)
    if delay is not None:
        return delay
    for name in ("X-RateLimit-Reset", "RateLimit-Reset", "X-Ratelimit-Reset-After"):
        delay = parse_reset(headers.get(name), now, MAX_RATE_LIMIT_BACKOFF)
        if delay is not None:
            return delay
    return None


class HttpClient:
    """One target's view of the shared session: its deadline, backoff and request counts."""

    def __init__(
        self,
        ctx: Context,
        *,
        collector: str,
        provider: str,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        retries: int = 2,
        concurrency: int = CONNECTIONS_PER_TARGET,
    ) -> None:
        self.ctx = ctx
        self.collector = collector
        self.provider = provider
        self.max_body_bytes = max_body_bytes
        self.retries = retries
        # the target's connection budget: a handful of parallel requests keeps a scrape fast
        # without bursting the provider, and no other target can take them (see CONNECTIONS_PER_TARGET)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self.rate_limited_until = 0.0  # wall clock
        self.requests: dict[str, int] = {}
        self.connection_waits_timed_out = 0

    # ------------------------------------------------------------------ deadline and backoff

    def backoff_remaining(self) -> float:
        return max(0.0, self.rate_limited_until - time.time())

    def min_interval(self, refresh_interval: float) -> float:
        """The collector's refresh interval, stretched to the end of a rate-limit backoff."""
        return max(refresh_interval, self.backoff_remaining())

    def note_rate_limit(self, headers: Mapping[str, str], status: int) -> float | None:
        now = time.time()
        delay: float | None = None
        if status == 429:
            delay = _reset_delay(headers, now)
            if delay is None:
                delay = DEFAULT_RATE_LIMIT_BACKOFF
        else:
            left = headers.get("X-RateLimit-Remaining") or headers.get("RateLimit-Remaining")
            if left is not None and left.strip() in ("0", "0.0"):
                delay = _reset_delay(headers, now)
        if delay is None:
            return None
        until = now + delay
        self.rate_limited_until = max(self.rate_limited_until, until)
        return until

    # ------------------------------------------------------------------ requests

    def count(self, code: str) -> None:
        self.requests[code] = self.requests.get(code, 0) + 1

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
        check_auth: bool = True,
    ) -> Response:
        """One request with retries; statuses outside ``ok`` become clear errors."""
        path = urlsplit(url).path or "/"
        where = f"{method} {path}"
        wait = self.backoff_remaining()
        if wait > 0:
            raise RateLimited(
                f"{self.provider}: rate limited, backing off for {wait:.0f}s more (no request sent)",
                self.rate_limited_until,
            )
        attempt = 0
        while True:
            started = time.monotonic()
            outcome = await self._attempt(method, url, where, params, headers, ok, check_auth)
            if isinstance(outcome, Response):
                return outcome
            # a transient failure: retry only if another attempt still fits
            attempt += 1
            took = time.monotonic() - started
            delay = random.uniform(0, 0.2 * 2**attempt)
            if attempt > self.retries or time_left() - DEADLINE_MARGIN - delay < max(0.25, took):
                raise HttpError(f"{self.provider}: {outcome}" + (f" (after {attempt} tries)" if attempt > 1 else ""))
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        where: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
        headers: Mapping[str, str] | None,
        ok: Sequence[int],
        check_auth: bool,
    ) -> Response | str:
        """One try: the response, or why it is worth retrying; final failures raise."""
        left = time_left() - DEADLINE_MARGIN
        if left <= 0:
            raise HttpError(f"{self.provider}: no time left for {where} within the target's deadline")
        session = shared_session(self.ctx)
        remember_sent(self.ctx.redact, headers)
        progress = _Progress()
        started = time.monotonic()
        try:
            async with asyncio.timeout(left):
                await self._slots.acquire()
        except TimeoutError:
            raise self._unsent(url, time.monotonic() - started, own=True) from None
        try:
            progress.stage, progress.waited = "pool", time.monotonic() - started
            left = time_left() - DEADLINE_MARGIN
            if left <= 0:
                raise self._unsent(url, progress.waited, own=True)
            timeout = aiohttp.ClientTimeout(total=left)
            async with session.request(
                method,
                url,
                params=params,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                trace_request_ctx=progress,
            ) as resp:
                status = resp.status
                # case-insensitive: Resend sends lowercase ratelimit-*/retry-after names
                resp_headers = CIMultiDict(resp.headers)
                content_type = resp.headers.get("Content-Type", "")
                if status in ok or status in (401, 403):
                    body = await self._read(resp, where)
                else:
                    # error pages are only quoted, never parsed: a short prefix is enough
                    body = await resp.content.read(512)
        except HttpError:
            raise
        except TimeoutError:
            if progress.stage in ("pool", "queued"):
                if progress.queued_at is not None:
                    progress.waited += time.monotonic() - progress.queued_at
                raise self._unsent(url, progress.waited, own=False) from None
            if progress.stage == "connecting":
                self.count("timeout")
                raise HttpError(
                    f"{self.provider}: could not connect to {_host_of(url)} within the target's deadline"
                    f" ({left:.3g}s left); no request sent"
                ) from None
            self.count("timeout")
            raise HttpError(
                f"{self.provider}: no answer to {where} within the target's deadline ({left:.3g}s left)"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            self.count("error")
            return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
        except aiohttp.ClientError as exc:
            self.count("error")
            return f"{where} failed: {type(exc).__name__}: {exc}"
        finally:
            self._slots.release()
        self.count(str(status))
        return self._judge(Response(status, resp_headers, body, content_type), where, ok, check_auth)

    def _unsent(self, url: str, waited: float, *, own: bool) -> HttpError:
        """The deadline passed while the request waited for a connection: nothing was sent, say so."""
        self.connection_waits_timed_out += 1
        why = (
            f"the target's {self.concurrency} connections were all in use by its other requests"
            if own
            else "the shared connection pool was full"
        )
        return HttpError(
            f"{self.provider}: waited {waited:.3g}s for a free connection to {_host_of(url)}; no request sent ({why})"
        )

    def _judge(self, resp: Response, where: str, ok: Sequence[int], check_auth: bool) -> Response | str:
        """What an answer means: itself when wanted, a retry reason when transient, else an error."""
        status, body = resp.status, resp.body
        until = self.note_rate_limit(resp.headers, status)
        if status == 429:
            assert until is not None
            raise RateLimited(
                f"{self.provider}: rate limited (HTTP 429) on {where}; backing off for"
                f" {max(0.0, until - time.time()):.0f}s",
                until,
            )
        if status in ok:
            return resp
        if check_auth and status in (401, 403):
            raise AuthError(
                f"{self.provider}: {'unauthorized' if status == 401 else 'forbidden'} (HTTP {status}) on"
                f" {where}: the service answered but rejected the configured credentials",
                status,
            )
        if status in (401, 403):
            return resp
        if status not in RETRY_STATUSES:
            raise HttpError(f"{self.provider}: HTTP {status} on {where}{_snippet(body)}", status)
        return f"HTTP {status} on {where}{_snippet(body)}"

    async def _read(self, resp: aiohttp.ClientResponse, where: str) -> bytes:
        cap = self.max_body_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise ShapeError(
                f"{self.provider}: response to {where} is {resp.content_length} bytes, over the {cap}-byte cap"
            )
        buf = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            buf += chunk
            if len(buf) > cap:
                raise ShapeError(f"{self.provider}: response to {where} is over the {cap}-byte cap")
        return bytes(buf)

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> Any:
        resp = await self.request("GET", url, params=params, headers=headers, ok=ok)
        return self.parse_json(resp, f"GET {urlsplit(url).path or '/'}")

    def parse_json(self, resp: Response, where: str) -> Any:
        text = resp.body.lstrip()
        if text[:1] == b"<" or "html" in resp.content_type.lower():
            raise ShapeError(
                f"{self.provider}: {where} answered HTML instead of JSON (HTTP {resp.status},"
                f" {resp.content_type or 'no content type'}){_snippet(resp.body)}"
            )
        try:
            return json.loads(resp.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            pos = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
            raise ShapeError(
                f"{self.provider}: {where} answered invalid JSON ({detail}{pos} of {len(resp.body)})"
            ) from None

    # ------------------------------------------------------------------ self metrics

    def families(self) -> list[Metric]:
        """Self metrics for this target (the engine adds the ``target`` label)."""
        until = GaugeMetricFamily(
            "stack_exporter_http_rate_limited_until_timestamp_seconds",
            "Unix time until which the target's API asked us to back off (429 or exhausted rate limit);"
            " while in the future no request is sent and the last good result is served. 0 if never limited.",
            labels=["collector"],
        )
        until.add_metric([self.collector], self.rate_limited_until)
        reqs = CounterMetricFamily(
            "stack_exporter_http_requests",
            "HTTP requests sent to the target's API by status code ('error' and 'timeout' when none came back).",
            labels=["collector", "code"],
        )
        for code, count in sorted(self.requests.items()):
            reqs.add_metric([self.collector, code], float(count))
        waits = CounterMetricFamily(
            "stack_exporter_http_connection_wait_timeouts",
            "Requests to the target's API never sent because no connection of the target's budget"
            " became free before the deadline.",
            labels=["collector"],
        )
        waits.add_metric([self.collector], float(self.connection_waits_timed_out))
        return [until, reqs, waits]


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP Basic (aiohttp's BasicAuth is deprecated)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _host_of(url: str) -> str:
    """``host:port`` of a URL, without credentials, for messages."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:
        return "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def _snippet(body: bytes) -> str:
    text = " ".join(body[:160].decode("utf-8", "replace").split())
    return f": {text[:120]!r}" if text else ""


# --------------------------------------------------------------------------- API collectors


async def gather_all(*coros: Any) -> list[Any]:
    """Run requests concurrently; the first failure cancels the rest and is raised as is.

    When several fail, the most telling one wins: a rate limit (so the backoff is
    honoured), then rejected credentials, then the first other error.
    """
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as group:
        errors = list(_leaves(group))
        for kind in (RateLimited, AuthError, CollectError):
            for exc in errors:
                if isinstance(exc, kind):
                    raise exc from None
        raise errors[0] from None
    return [t.result() for t in tasks]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


class ApiCollector(Collector[C]):
    """Base of the HTTP API collectors: shared client, refresh interval, rate-limit backoff.

    Subclasses implement :meth:`fetch`. While a rate limit lasts, the last good
    result is served (as a failed collection, so ``stack_exporter_collector_success``
    is honest) and no request is sent: :attr:`min_interval` stretches to the
    backoff's end, so the engine does not even call ``collect()``.
    """

    provider: ClassVar[str]
    max_body_bytes: ClassVar[int] = DEFAULT_MAX_BODY_BYTES

    def __init__(self, config: C, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.http = HttpClient(ctx, collector=self.source, provider=self.provider, max_body_bytes=self.max_body_bytes)
        self._last_good: list[Metric] | None = None
        self._last_good_at: float | None = None

    @property
    def refresh_interval(self) -> float:
        return float(getattr(self.config, "refresh_interval", 0.0))

    @property
    def min_interval(self) -> float:
        return self.http.min_interval(self.refresh_interval)

    async def fetch(self) -> list[Metric]:
        raise NotImplementedError

    def answered(self) -> list[Metric]:
        """The up metric at 1, for when the API answered but gave nothing to show (a first 429)."""
        if self.up_metric is None:
            return []
        return [GaugeMetricFamily(self.up_metric, self.up_help, value=1)]

    async def collect(self) -> list[Metric]:
        with deadline_scope():
            try:
                families = await self.fetch()
            except RateLimited as exc:
                served = self._last_good
                if served is None:
                    # a 429 is an answer: the service is up even though we have nothing else yet
                    served = self.answered()
                note = "; serving the last good result" if self._last_good is not None else ""
                raise CollectError(
                    f"{exc}{note}",
                    partial=[*served, *self.http.families()],
                    data_from=self._last_good_at if self._last_good is not None else None,
                ) from None
            except CollectError as exc:
                raise CollectError(str(exc), partial=[*exc.partial, *self.http.families()]) from None
        self._last_good = families
        self._last_good_at = time.time()
        return [*families, *self.http.families()]
