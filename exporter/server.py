"""The aiohttp app: landing page, /metrics, /probe, /-/healthy, /-/ready, /-/reload,
and the status-page bridge's webhook (POST /bridge/alertmanager) when configured."""

from __future__ import annotations

import asyncio
import gzip
import html
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.bridge.bridge import WEBHOOK_PATH, BridgeHost
from exporter.collectors import SOURCES
from exporter.config import Config, ConfigError
from exporter.exposition import render_text
from exporter.scrape import Engine, Result, TargetRunner
from exporter.webconfig import WebSettings

log = logging.getLogger("exporter.server")

ENGINE = web.AppKey("engine", Engine)
Reloader = Callable[[], Awaitable[None]]
RELOAD: web.AppKey[Reloader] = web.AppKey("reload")
WEB = web.AppKey("web", WebSettings)
READY = web.AppKey("ready", asyncio.Event)
BRIDGE = web.AppKey("bridge", BridgeHost)

# gzip level 1: exposition text compresses ~8x even at the fastest level, and
# the CPU a scrape costs matters more than a few kilobytes on a LAN.
GZIP_LEVEL = 1


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
    groups = engine.groups(results, self_metrics=self_metrics)
    if extra:
        groups.append((None, extra))
    body = render_text(groups, openmetrics=openmetrics)
    headers = {"Content-Type": content_type}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    bound = engine.header_bound(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
    results = await engine.scrape(bound)
    return _encode(request, engine, results, self_metrics=True, extra=request.app[BRIDGE].families())


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
    results = await engine.scrape(bound, found)
    return _encode(request, engine, results, self_metrics=False)


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def ready(request: web.Request) -> web.Response:
    if not request.app[READY].is_set():
        raise web.HTTPServiceUnavailable(text="Not ready\n")
    return web.Response(text="Ready\n")


async def reload(request: web.Request) -> web.Response:
    try:
        await request.app[RELOAD]()
    except ConfigError as exc:
        raise web.HTTPInternalServerError(text=f"failed to reload config: {exc}\n") from None
    return web.Response(text="config reloaded\n")


async def landing(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    rows = []
    for runner in engine.runners.values():
        probe_link = f"/probe?{urlencode({'target': runner.name, 'collector': runner.kind})}"
        rows.append(
            "<tr>"
            f"<td>{html.escape(runner.kind)}</td>"
            f"<td>{html.escape(runner.name)}</td>"
            f"<td><code>{html.escape(runner.collector.describe())}</code></td>"
            f'<td><a href="{html.escape(probe_link, quote=True)}">probe</a></td>'
            "</tr>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stack-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style></head>
<body><h1>stack-exporter</h1>
<p>Version {html.escape(__version__)}. Config: <code>{html.escape(engine.config.source)}</code></p>
<ul><li><a href="/metrics">Metrics</a></li><li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li></ul>
<h2>Targets</h2>
<table><tr><th>Collector</th><th>Target</th><th>Address</th><th></th></tr>
{"".join(rows) or '<tr><td colspan="4">none configured</td></tr>'}
</table></body></html>
"""
    return web.Response(text=engine.redactor.redact(page), content_type="text/html")


@web.middleware
async def security(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    settings = request.app.get(WEB)
    # the webhook has its own bearer token: Alertmanager's http_config sends one
    # Authorization header, which cannot carry both that token and basic auth
    if settings is not None and settings.auth_required and request.path != WEBHOOK_PATH:
        header = request.headers.get("Authorization")
        loop = asyncio.get_running_loop()
        # bcrypt is slow by design: keep it off the event loop
        if not await loop.run_in_executor(None, settings.authorized, header):
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
) -> web.Application:
    app = web.Application(middlewares=[security])
    host = bridge_host or BridgeHost(redact=engine.redactor.redact)

    async def reload_all() -> None:
        await reloader()
        await host.apply(engine.config.bridge)

    app[ENGINE] = engine
    app[RELOAD] = reload_all
    app[READY] = asyncio.Event()
    app[BRIDGE] = host
    if web_settings is not None:
        app[WEB] = web_settings

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await host.apply(engine.config.bridge)
        app[READY].set()
        yield
        app[READY].clear()
        await host.close()
        await app[ENGINE].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
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
    """Reload: a bad new config keeps the old one serving and is reported as a metric."""
    lock = asyncio.Lock()

    async def do_reload() -> None:
        async with lock:
            try:
                config = load()
            except ConfigError as exc:
                engine.reload_failed()
                log.error("config reload failed; keeping the previous config", extra={"kv": {"err": str(exc)}})
                raise
            await engine.apply(config)
            log.info("config reloaded", extra={"kv": {"targets": len(engine.runners)}})

    return do_reload


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:9847``, ``0.0.0.0:9847``, ``[::1]:9847`` -> (host or None for all, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid --web.listen-address {address!r}: expected HOST:PORT such as :9847")
    host = host.strip("[]")
    return (host or None), int(port_text)


async def serve(app: web.Application, address: str, ssl_context: Any = None) -> web.AppRunner:
    host, port = parse_listen_address(address)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    return runner
