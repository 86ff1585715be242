"""What every status-page provider is, and the one HTTP request helper they share.

A provider is a small class (``statuspage.py``, ``instatus.py``): a name, how it
authenticates, and three calls that translate the bridge's generic statuses into
the provider's request bodies.  Everything that can go wrong on the wire is
turned into one :class:`ProviderError` here, so the sync worker needs to know
only two things: may it try again (``retryable``) and how long it should wait
first (``retry_after``).

* 429, 5xx, timeouts and connection errors are retryable; 429 and 503 carry
  the provider's ``Retry-After`` (seconds or an HTTP-date) when it sends one.
* Any other 4xx is not: a wrong key, page or component id, or a body the
  provider rejects will fail the same way on every attempt.
* Errors name the provider, method and path, and the provider's own error
  text; never the key, the request headers, or a traceback.
* Answers are read up to a size cap: a status page's answer to a write is a few
  kilobytes, so anything far larger is a wrong URL, not an answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, get_args
from urllib.parse import quote

import aiohttp

# the one Retry-After parser, shared with the API collectors (re-exported for the providers)
from exporter.retry_after import MAX_WAIT
from exporter.retry_after import parse_retry_after as parse_retry_after

ComponentStatus = Literal["operational", "degraded_performance", "partial_outage", "major_outage"]
# least to most severe: the worst of several firing alerts is the one with the highest index
COMPONENT_STATUSES: tuple[ComponentStatus, ...] = get_args(ComponentStatus)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# a provider asking for longer than this is capped: a wrong header must not freeze the page for a day
MAX_RETRY_AFTER = MAX_WAIT
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_DETAIL_CHARS = 200


class ProviderError(Exception):
    """A provider call failed.  ``retryable``: worth trying again; ``retry_after``: seconds to wait first."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status  # the HTTP status, None when no answer came


class Provider(Protocol):
    """What the bridge calls; one implementation per status-page service."""

    name: ClassVar[str]

    async def set_component(self, component_id: str, status: ComponentStatus) -> None: ...

    async def open_incident(
        self, title: str, message: str, component_ids: Sequence[str], status: ComponentStatus
    ) -> str: ...

    async def resolve_incident(self, incident_id: str, message: str) -> None: ...


def segment(value: str) -> str:
    """One path segment: an id with a ``/`` or ``..`` must not reach another endpoint."""
    return quote(value, safe="")


class HttpProvider:
    """The shared request helper.  Subclasses set ``name`` and ``auth_scheme`` and build the bodies."""

    name: ClassVar[str] = ""
    auth_scheme: ClassVar[str] = "Bearer"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        url: str,
        page_id: str,
        api_key: str,
        timeout: float,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.page_id = page_id
        self._api_key = api_key
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        # the key stays out of reprs, and with it out of logs and tracebacks
        return f"{type(self).__name__}(url={self.url!r}, page_id={self.page_id!r})"

    def _fail(self, method: str, path: str, what: str, **kw: Any) -> ProviderError:
        text = f"{self.name}: {method} {path}: {what}"
        if self._api_key:
            text = text.replace(self._api_key, "<redacted>")
        return ProviderError(text, **kw)

    async def request(self, method: str, path: str, body: Mapping[str, Any]) -> Any:
        """Send ``body`` as JSON to ``url + path``; the decoded JSON answer, or a ProviderError."""
        headers = {
            "Authorization": f"{self.auth_scheme} {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            async with asyncio.timeout(self.timeout):
                async with self.session.request(
                    method,
                    self.url + path,
                    data=json.dumps(body).encode(),
                    headers=headers,
                    # a redirect could carry the key to another host; the APIs never redirect
                    allow_redirects=False,
                ) as resp:
                    raw = await self._read(resp, method, path)
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), cap=MAX_RETRY_AFTER)
        except TimeoutError:
            raise self._fail(method, path, f"no answer within {self.timeout:g}s", retryable=True) from None
        except aiohttp.ClientError as exc:
            # the exception's text names host and port at most: the key only ever travels in a header
            what = f"connection failed ({type(exc).__name__}: {str(exc)[:_DETAIL_CHARS]})"
            raise self._fail(method, path, what, retryable=True) from None
        if 200 <= status < 300:
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError:
                raise self._fail(method, path, f"HTTP {status} with a body that is not JSON", retryable=False) from None
        detail = _error_detail(raw)
        what = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in RETRYABLE_STATUSES:
            raise self._fail(method, path, what, retryable=True, retry_after=retry_after, status=status)
        if status in (401, 403):
            what += " (check the API key and that it may write to this page)"
        raise self._fail(method, path, what, retryable=False, status=status)

    async def _read(self, resp: aiohttp.ClientResponse, method: str, path: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._fail(
                    method,
                    path,
                    f"HTTP {resp.status} answer larger than {self.max_body_bytes} bytes (is the URL right?)",
                    retryable=False,
                    status=resp.status,
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _error_detail(raw: bytes) -> str:
    """The provider's error text (Statuspage ``{"message"}``/``{"error"}``, Instatus ``{"error": {"message"}}``)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    found: Any = None
    if isinstance(body, dict):
        found = body.get("error", body.get("message", body.get("errors")))
        if isinstance(found, dict):
            found = found.get("message", found.get("code"))
        elif isinstance(found, list):
            found = "; ".join(str(x) for x in found[:3])
    if not isinstance(found, str | int | float):
        return ""
    # one line, bounded: the text ends up in a log line and a metric-free error message
    return " ".join(str(found).split())[:_DETAIL_CHARS]


def id_from(answer: Any, provider: str, what: str) -> str:
    """The ``id`` field of an answer; a ProviderError if the provider did not send one."""
    value = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise ProviderError(f"{provider}: {what}: the answer has no id", retryable=False)
    return str(value)
