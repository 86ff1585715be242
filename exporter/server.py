"""The aiohttp app: landing page, /metrics, /probe, /sd (HTTP service discovery), /-/healthy,
/-/ready, /-/reload, and the status-page bridge's webhook (POST /bridge/alertmanager) when configured.
Real user monitoring's beacons and the email providers' webhooks come in on their own listener
(exporter/rum/ingest.py, exporter/email_webhooks/host.py); their series are served here, on /metrics."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from exporter import sd, status
from exporter.bridge.bridge import WEBHOOK_PATH, BridgeHost
from exporter.collectors import SOURCES
from exporter.config import Config, ConfigError
from exporter.email_webhooks.host import BuildError, WebhookHost
from exporter.exposition import render_text
from exporter.rum.ingest import RumHost
from exporter.scrape import Engine, Result, TargetRunner
from exporter.webconfig import WebSettings, default_web_settings
from exporter.webguard import GuardedSite

log = logging.getLogger("exporter.server")

ENGINE = web.AppKey("engine", Engine)
Reloader = Callable[[], Awaitable[None]]
RELOAD: web.AppKey[Reloader] = web.AppKey("reload")
WEB = web.AppKey("web", WebSettings)
READY = web.AppKey("ready", asyncio.Event)
BRIDGE = web.AppKey("bridge", BridgeHost)
RUM = web.AppKey("rum", RumHost)
WEBHOOKS = web.AppKey("email_webhooks", WebhookHost)
EXTERNAL_URL = web.AppKey("external_url", sd.ReachedAt)

# gzip level 1: exposition text compresses ~8x even at the fastest level, and
# the CPU a scrape costs matters more than a few kilobytes on a LAN.
GZIP_LEVEL = 1


OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def accepts_gzip(header: str) -> bool:
    """Accept-Encoding as RFC 9110 12.5.3 reads it: case-insensitive codings, q-values, ``*``."""
    explicit: float | None = None
    wildcard: float | None = None
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, val = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
                if not 0 <= q <= 1:  # also NaN
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif coding == "*":
            wildcard = q
    chosen = explicit if explicit is not None else wildcard
    return chosen is not None and chosen > 0


def _encode(
    request: web.Request,
    engine: Engine,
    results: Sequence[tuple[TargetRunner, Result]],
    *,
    self_metrics: bool,
    extra: Sequence[Metric] = (),
) -> web.Response:
    _, content_type = choose_encoder(request.headers.get("Accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    if openmetrics:
        # what render_text writes, whatever version was asked for (choose_encoder echoes it)
        content_type = OPENMETRICS_CONTENT_TYPE
    settings = request.app.get(WEB)
    if self_metrics and settings is not None:
        extra = [*extra, *settings.stats.families()]
    groups = engine.groups(results, self_metrics=self_metrics)
    if extra:
        groups.append((None, extra))
    body = render_text(groups, openmetrics=openmetrics)
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def metrics(request: web.Request) -> web.Response:
    """Every target and the exporter's own series; ``?targets=none``: the exporter's own only.

    With per-target scraping (``/sd`` and ``/probe``, docs/scale-out.md) the exporter's own
    series (build info, reloads, listener, process, bridge, real user monitoring, email webhooks) have
    no other home, and a plain ``/metrics`` job would collect every target a second time.
    """
    engine = request.app[ENGINE]
    targets = request.query.get("targets")
    if targets is not None and targets != "none":
        raise web.HTTPBadRequest(text=f"targets={targets!r}: the only value is none (the exporter's own series)\n")
    if targets == "none":
        results = []
    else:
        bound = engine.header_bound(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        results = await engine.scrape(bound)
    extra = [*request.app[BRIDGE].families(), *request.app[RUM].families(), *request.app[WEBHOOKS].families()]
    return _encode(request, engine, results, self_metrics=True, extra=extra)


async def probe(request: web.Request) -> web.Response:
    """One configured target by name; never an address taken from the URL."""
    engine = request.app[ENGINE]
    name = request.query.get("target", "")
    kind = request.query.get("collector") or None
    if not name:
        raise web.HTTPBadRequest(text="the target parameter is missing: /probe?target=NAME\n")
    if kind is not None and kind not in SOURCES:
        raise web.HTTPBadRequest(text=f"unknown collector {kind!r}; known: {', '.join(SOURCES)}\n")
    found = engine.find(name, kind)
    if not found:
        known = ", ".join(sorted({n for _, n in engine.runners})) or "none"
        raise web.HTTPBadRequest(text=f"unknown target {name!r}; configured targets: {known}\n")
    if len(found) > 1:
        kinds = ", ".join(r.kind for r in found)
        raise web.HTTPBadRequest(
            text=f"target name {name!r} is configured for several collectors ({kinds}); add &collector=KIND\n"
        )
    bound = engine.header_bound(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
    if request.query.get("debug", "").lower() in ("true", "1"):
        try:
            text = await status.debug_probe(engine, found[0], bound)
        except status.DebugBusy as exc:
            raise web.HTTPTooManyRequests(text=engine.redactor.redact(f"{exc}\n")) from None
        return web.Response(text=text, content_type="text/plain")
    results = await engine.scrape(bound, found)
    return _encode(request, engine, results, self_metrics=False)


async def service_discovery(request: web.Request) -> web.Response:
    """Every configured target for Prometheus's http_sd_configs (exporter/sd.py)."""
    try:
        at = sd.reached_at(request.headers.get("Host"), request.scheme, request.app.get(EXTERNAL_URL))
    except sd.AddressError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    return web.json_response(sd.target_groups(request.app[ENGINE], at))


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def ready(request: web.Request) -> web.Response:
    if not request.app[READY].is_set():
        raise web.HTTPServiceUnavailable(text="Not ready\n")
    return web.Response(text="Ready\n")


async def reload(request: web.Request) -> web.Response:
    """500 with the message when the reload failed (as Prometheus does); the old config keeps serving."""
    engine = request.app[ENGINE]
    try:
        await request.app[RELOAD]()
    except ConfigError as exc:  # make_reloader has logged and counted it
        raise web.HTTPInternalServerError(text=engine.redactor.redact(f"failed to reload config: {exc}\n")) from None
    except Exception as exc:  # noqa: BLE001 - e.g. the bridge's apply after the config loaded: still a failure
        engine.reload_failed()
        err = f"{type(exc).__name__}: {exc}"
        log.error("config reload failed", extra={"kv": {"err": err}})
        raise web.HTTPInternalServerError(text=engine.redactor.redact(f"failed to reload config: {err}\n")) from None
    return web.Response(text="config reloaded\n")


async def landing(request: web.Request) -> web.Response:
    return web.Response(text=status.landing_page(request.app[ENGINE]), content_type="text/html")


@web.middleware
async def security(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    settings = request.app.get(WEB)
    # the webhook has its own bearer token: Alertmanager's http_config sends one
    # Authorization header, which cannot carry both that token and basic auth
    if settings is not None and settings.auth_required and request.path != WEBHOOK_PATH:
        # cached good credentials answer at once; bcrypt runs in its own bounded pool
        verdict = await settings.authenticate(request.headers.get("Authorization"), request.remote)
        if verdict.status == 429:
            raise web.HTTPTooManyRequests(
                text="too many failed login attempts from this address\n",
                headers={"Retry-After": str(verdict.retry_after)},
            )
        if verdict.status == 503:
            raise web.HTTPServiceUnavailable(
                text="too many logins being checked\n", headers={"Retry-After": str(verdict.retry_after)}
            )
        if not verdict.ok:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="stack-exporter"'})
    response = await handler(request)
    if settings is not None:
        response.headers.update(settings.headers)
    return response


def make_app(
    engine: Engine,
    reloader: Callable[[], Awaitable[None]],
    web_settings: WebSettings | None = None,
    bridge_host: BridgeHost | None = None,
    external_url: sd.ReachedAt | None = None,
    rum_host: RumHost | None = None,
    webhook_host: WebhookHost | None = None,
) -> web.Application:
    app = web.Application(middlewares=[security])
    host = bridge_host or BridgeHost(redact=engine.redactor.redact)
    rum = rum_host or RumHost()
    webhooks = webhook_host or WebhookHost()

    async def apply_webhooks() -> None:
        try:
            await webhooks.apply(engine.config.email_webhooks)
        except BuildError as exc:
            # a provider that cannot be built (its module fails to import): the previous
            # providers keep serving, and the reload is reported as failed
            engine.reload_failed()
            log.error("config reload failed; keeping the previous webhook providers", extra={"kv": {"err": str(exc)}})
            raise ConfigError(engine.config.source, exc.problems) from None

    async def reload_all() -> None:
        await reloader()
        # new origins, routes and limits; the store stays, so RUM counters never go back
        rum.apply(engine.config.rum)
        # new providers, types and limits; counts, the replay cache and the limiter stay
        await apply_webhooks()
        await host.apply(engine.config.bridge)

    app[ENGINE] = engine
    app[RELOAD] = reload_all
    app[READY] = asyncio.Event()
    app[BRIDGE] = host
    app[RUM] = rum
    app[WEBHOOKS] = webhooks
    if web_settings is not None:
        app[WEB] = web_settings
    if external_url is not None:
        app[EXTERNAL_URL] = external_url

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        rum.apply(engine.config.rum)
        # the CLI has applied the section before serving (and reported a provider that
        # cannot be built): the same section again keeps what it built
        await webhooks.apply(engine.config.email_webhooks)
        await host.apply(engine.config.bridge)
        app[READY].set()
        yield
        app[READY].clear()
        await host.close()
        await webhooks.close()
        await app[ENGINE].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get(sd.SD_PATH, service_discovery)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_put("/-/reload", reload)
    app.router.add_post(WEBHOOK_PATH, webhook)
    return app


async def webhook(request: web.Request) -> web.Response:
    return await request.app[BRIDGE].handle(request)


async def own_webhook(request: web.Request) -> web.Response:
    return await request.app[BRIDGE].handle(request, own_listener=True)


def make_bridge_app(host: BridgeHost, web_settings: WebSettings | None = None) -> web.Application:
    """The webhook alone, for the bridge's own listen_address; the main app runs the bridge."""
    app = web.Application(middlewares=[security])
    app[BRIDGE] = host
    if web_settings is not None:
        app[WEB] = web_settings
    app.router.add_post(WEBHOOK_PATH, own_webhook)
    return app


def make_reloader(engine: Engine, load: Callable[[], Config]) -> Callable[[], Awaitable[None]]:
    """Reload: a bad new config keeps the old one serving and is reported as a metric.

    ``load`` runs in a worker thread, so reading and checking a large config never
    stalls a scrape or /-/healthy; the lock keeps reloads one at a time.  Any failure,
    a ConfigError or not, sets stack_exporter_config_last_reload_successful to 0, is
    logged once here and is raised as a ConfigError carrying the message.
    """
    lock = asyncio.Lock()

    def failed(exc: Exception) -> ConfigError:
        engine.reload_failed()
        if not isinstance(exc, ConfigError):
            exc = ConfigError(engine.config.source, [f"{type(exc).__name__}: {exc}"])
        log.error("config reload failed; keeping the previous config", extra={"kv": {"err": str(exc)}})
        return exc

    async def do_reload() -> None:
        async with lock:
            try:
                config = await asyncio.to_thread(load)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none is a traceback
                raise failed(exc) from None
            try:
                await engine.apply(config)
            except Exception as exc:  # noqa: BLE001
                raise failed(exc) from None
            log.info("config reloaded", extra={"kv": {"targets": len(engine.runners)}})

    return do_reload


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:9847``, ``0.0.0.0:9847``, ``[::1]:9847`` -> (host or None for all, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid --web.listen-address {address!r}: expected HOST:PORT such as :9847")
    host = host.strip("[]")
    return (host or None), int(port_text)


async def serve(
    app: web.Application, address: str, settings: WebSettings | None = None, *, logger: logging.Logger | None = None
) -> web.AppRunner:
    """Listen on ``address`` with the listener guards of ``settings`` (connection cap, timeouts).

    ``logger`` takes aiohttp's server log (malformed requests, handler errors), which names
    the client and quotes the request: the RUM listener passes one that leaves both out.
    """
    settings = settings or default_web_settings()
    host, port = parse_listen_address(address)
    limits = settings.limits
    args = limits.handler_args()
    if logger is not None:
        args["logger"] = logger
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **args)
    await runner.setup()
    site = GuardedSite(
        runner,
        host,
        port,
        limits=limits,
        stats=settings.stats,
        ssl_context=settings.ssl_context,
        reuse_address=True,
    )
    await site.start()
    if settings.auth_required:
        settings.bcrypt.warm()
    return runner
