"""The RUM listener: browser beacons in, bounded series out (``rum:`` section, docs/rum.md).

It is the exporter's public ingest listener: the email providers' signed webhooks
(``email_webhooks:`` section, exporter/email_webhooks/host.py) come in here too, on
``POST /webhooks/v1/{provider}``. Either section starts it.

Browsers on the public internet post here, so this listener has no basic auth (a
browser cannot send it) and every request is treated as hostile:

* the ``Origin`` must be one of ``allowed_origins`` (no CORS header otherwise);
* a token bucket per client address (IPv6 per /64; behind a trusted proxy, the
  right-most forwarded address that is not itself a trusted proxy) is spent before
  anything is read;
* the body is refused from its Content-Length before it is read, and read in chunks
  that stop at ``max_body_bytes``, so a chunked body without a length is bounded too;
* the beacon is parsed whole (``exporter.rum.beacon``): one bad field rejects it.

Nothing a request carries is logged, stored or echoed: not the path it names, the
client's address, its User-Agent or the body. The page label is a configured route
pattern (or ``other``) and the device one of four classes, so no request can add a
series the config did not allow. Answers are short fixed texts naming the reason.

The listener guards (connection cap, header timeout) and TLS are the main listener's
(``exporter.server.serve``). A reload swaps origins, routes and limits in place; the
store and the limiter's table are kept, so counters never go back (only the series of a
route the reload removed go, with the route).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client.core import Metric

from exporter.email_webhooks.host import PATH as WEBHOOK_PATH
from exporter.email_webhooks.host import WebhookHost
from exporter.rum.beacon import Rejected, parse_beacon
from exporter.rum.config import RumConfig
from exporter.rum.device import device_class
from exporter.rum.routes import Routes
from exporter.rum.store import RumStore
from exporter.webconfig import WebSettings
from exporter.webguard import FailureLimiter, Network, client_address, client_key, read_limited, retry_after

log = logging.getLogger("exporter.rum")
# aiohttp's server log for this listener (``serve(..., logger=SERVER_LOG)``), see _Anonymous
SERVER_LOG = logging.getLogger("exporter.rum.http")

BEACON_PATH = "/rum/v1/beacon"
SCRIPT_PATH = "/rum/v1/rum.js"
CONTENT_TYPES = ("text/plain", "application/json")
# a beacon is a few hundred bytes: a body still dribbling in after this is not one
BODY_TIMEOUT = 10.0
_CHUNK = 4096
PREFLIGHT_MAX_AGE = "86400"
SCRIPT_MAX_AGE = "max-age=3600"


# the fixed answers: the reason, never anything the request carried
_TEXT = {
    "origin": "beacon refused: origin not allowed\n",
    "rate_limited": "beacon refused: rate limited\n",
    "too_large": "beacon refused: body too large\n",
    "malformed": "beacon refused: malformed\n",
    "invalid_value": "beacon refused: invalid value\n",
    "unknown_metric": "beacon refused: unknown metric\n",
}
_UNSUPPORTED_TYPE = "beacon refused: content type must be text/plain or application/json\n"
_OFF = "real user monitoring is not configured (rum: section)\n"


def load_script() -> bytes:
    """The browser adapter shipped in the package (exporter/rum/static/rum.js)."""
    return resources.files("exporter.rum").joinpath("static", "rum.js").read_bytes()


class _Anonymous(logging.Filter):
    """aiohttp's server log names the client's address and quotes what it sent (a request
    line, a header); on the RUM listener neither may be logged. Left: what happened and the
    error's type. A malformed request from the internet is noise: debug level."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        record.args = ()
        record.exc_info = record.exc_text = record.stack_info = None
        kv: dict[str, str] = {"err": type(exc).__name__ if exc is not None else "-"}
        if isinstance(exc, HttpProcessingError):
            record.msg = "malformed HTTP request refused"
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.kv = kv
            return SERVER_LOG.isEnabledFor(logging.DEBUG)
        tb = exc.__traceback__ if exc is not None else None
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:  # where, for a bug report; never the exception's text
            kv["at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        record.msg = "error handling a request on the ingest listener (RUM, email webhooks)"
        record.kv = kv
        return True


SERVER_LOG.addFilter(_Anonymous())


class RumHost:
    """RUM as the server holds it: the config of the moment, its routes and limiter, and the store.

    ``config`` None means the section is off: the beacon endpoint answers 404 and no
    series are exposed. The store outlives every reload, so counters never go back.
    """

    def __init__(self, config: RumConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = RumStore()
        self.config: RumConfig | None = None
        self.routes = Routes(())
        self.limiter = FailureLimiter(1.0, 1, 1, clock)
        self.origins: frozenset[str] = frozenset()
        self.trusted: tuple[Network, ...] = ()
        # the address of the RUM listener when the process serves one, fixed at start
        # (a listener cannot move without a restart); from_flag: set by --rum.listen-address
        self.own_address: str | None = None
        self.from_flag = False
        self.script = load_script()
        self.apply(config)

    def apply(self, config: RumConfig | None) -> None:
        """Take a (re)loaded section: origins, routes and limits change; the store stays."""
        if config is not None and self.own_address is None:
            log.warning("no RUM listener is serving: it starts with the next start of the exporter")
        elif config is not None and not self.from_flag and config.listen_address != self.own_address:
            log.warning(
                "the rum listen_address takes effect at the next start",
                extra={"kv": {"configured": config.listen_address, "serving": self.own_address}},
            )
        self.config = config
        if config is None:
            return
        self.routes = Routes(config.routes)
        # a route the new config dropped takes its series along (the rest keep counting), so
        # reloads with ever new patterns cannot pile up series
        self.store.keep_pages(self.routes.labels())
        self.origins = frozenset(config.allowed_origins)
        self.trusted = config.proxy_networks()
        # the same limiter, its table kept: a reload is no way around the rate limit
        self.limiter.rate = config.rate_limit
        self.limiter.burst = config.rate_burst
        self.limiter.max_clients = max(1, config.max_clients)

    def families(self) -> list[Metric]:
        if self.config is None:
            return []
        return self.store.families(len(self.limiter))

    # ----------------------------------------------------------------- requests

    def allowed_origin(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin is not None and origin in self.origins else None

    def client_address(self, request: web.Request) -> str | None:
        """The peer; behind a trusted proxy the right-most forwarded address not itself trusted."""
        return client_address(request, self.trusted)

    def _refuse(self, reason: str, status: int, cors: dict[str, str], **headers: str) -> web.Response:
        self.store.reject(reason)
        return web.Response(status=status, text=_TEXT[reason], headers={**cors, **headers})

    async def beacon(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        if config is None:
            return web.Response(status=404, text=_OFF)
        origin = self.allowed_origin(request)
        if origin is None:
            return self._refuse("origin", 403, {})
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        wait = self.limiter.take(client_key(self.client_address(request)))
        if wait > 0:
            return self._refuse("rate_limited", 429, cors, **{"Retry-After": str(retry_after(wait))})
        limit = config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._too_large(cors)
        if request.content_type not in CONTENT_TYPES:
            self.store.reject("malformed")
            return web.Response(status=415, text=_UNSUPPORTED_TYPE, headers=cors)
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await read_limited(request, limit, _CHUNK)
        except (TimeoutError, ConnectionError, HttpProcessingError):
            # a body that stops half way (or never ends): the connection goes with it
            response = self._refuse("malformed", 400, cors)
            response.force_close()
            return response
        if body is None:
            return self._too_large(cors)
        try:
            beacon = parse_beacon(body)
        except Rejected as exc:
            return self._refuse(exc.reason, 400, cors)
        device = device_class(request.headers.get("User-Agent"), request.headers.get("Sec-CH-UA-Mobile"))
        self.store.record(beacon, self.routes.match(beacon.path), device)
        return web.Response(status=204, headers=cors)

    def _too_large(self, cors: dict[str, str]) -> web.Response:
        response = self._refuse("too_large", 413, cors)
        # the rest of the body is never read: close rather than drain it for keep-alive
        response.force_close()
        return response

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        if self.config is None:
            return web.Response(status=404, text=_OFF)
        origin = self.allowed_origin(request)
        if origin is None:
            return web.Response(status=403, text=_TEXT["origin"])
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                "Vary": "Origin",
            },
        )

    async def serve_script(self, request: web.Request) -> web.StreamResponse:
        if self.config is None:
            return web.Response(status=404, text=_OFF)
        headers = {"Cache-Control": SCRIPT_MAX_AGE, "Vary": "Origin", "X-Content-Type-Options": "nosniff"}
        origin = self.allowed_origin(request)
        if origin is not None:
            # a cross-origin <script type="module"> is a CORS request: without this it does not run
            headers["Access-Control-Allow-Origin"] = origin
        return web.Response(body=self.script, content_type="text/javascript", charset="utf-8", headers=headers)


_WEB = web.AppKey("rum_web", WebSettings)


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The web config's extra response headers (HSTS ...), as on the main listener; no auth here."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # the router's 404 and 405
        response = exc
    settings = request.app.get(_WEB)
    if settings is not None:
        response.headers.update(settings.headers)
    return response


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


def make_rum_app(
    host: RumHost, web_settings: WebSettings | None = None, webhooks: WebhookHost | None = None
) -> web.Application:
    """The ingest listener's app: the beacon endpoint, its preflight, the adapter, /-/healthy and,
    with ``webhooks``, the email providers' webhook endpoints."""
    app = web.Application(middlewares=[_headers])
    if web_settings is not None:
        app[_WEB] = web_settings
    if webhooks is not None:
        app.router.add_post(WEBHOOK_PATH, webhooks.handle)
    app.router.add_post(BEACON_PATH, host.beacon)
    app.router.add_route("OPTIONS", BEACON_PATH, host.preflight)
    app.router.add_get(SCRIPT_PATH, host.serve_script)
    app.router.add_get("/-/healthy", _healthy)
    return app
