"""Real user monitoring in a real browser: Debian's headless Chromium on a small site.

The site (tests/rum/site/) is what a team would have: two routes, web-vitals installed from
npm (pinned in site/package.json, `npm ci` by scripts/install-test-deps.sh) and served from
the site itself, and the adapter imported from the RUM listener on another port, so every
beacon is a real cross-origin request.  ``/products/:id`` is slow on purpose (its hero
image is held back by the server, so LCP lands in "poor"; its button's click handler
busy-waits ~300 ms, so INP has something to measure); ``/checkout`` calls an API that
answers 500, throws an uncaught error and leaves a rejection unhandled; ``/about`` is
configured but never visited.  Chromium is driven over the DevTools protocol
(tests/rum/cdp.py): navigate, click with trusted input, leave the page so it flushes.

Two runs of the same walk: once against a recorder that stands where the RUM listener
would, to check what Chromium really puts on the wire (the metric names, the path without
query or fragment, no error text), and once against the exporter as its own process, to
check its /metrics.
"""

from __future__ import annotations

import asyncio
import json
import random
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from peers.process import LOOPBACK, free_port, wait_for_port
from tests.helpers import ROOT, ExporterProcess, samples
from tests.rum.cdp import CHROMIUM, CDPError, Page, chromium

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: `make test-deps` installs it"),
]

SITE = Path(__file__).resolve().parent / "site"
WEB_VITALS = SITE / "node_modules" / "web-vitals" / "dist" / "web-vitals.js"
ADAPTER = ROOT / "exporter" / "rum" / "static" / "rum.js"

ROUTES = ["/products/:id", "/checkout", "/about"]
PRODUCT = "/products/:id"
CHECKOUT = "/checkout"
# what the walk visits: a query and a fragment that must never reach a beacon
PRODUCT_URL = "/products/42?utm_source=newsletter&email=jane%40example.com#reviews"
SECRETS = ("utm_source", "jane", "reviews", "4111111111111111", "exploded", "unavailable")

# What Chromium measures: all five of web-vitals' metrics and the load time (the Chromium row
# of the rules' browser-engine variants, tests/rules/variants/rum.py); /checkout has no
# interaction, so no INP.
CHROMIUM_METRICS = {"LCP", "INP", "CLS", "FCP", "TTFB", "load"}
HERO_DELAY = 4.5  # seconds the server holds the hero image back: LCP > 4 s, "poor"
CLICK_BUSY_MS = 300  # the click handler's busy wait (site/products.html)
WAIT = 15.0  # seconds to wait for beacons to arrive after leaving the last page


def noise_png(width: int, height: int) -> bytes:
    """A grey-noise PNG: Chromium ignores low-entropy images (a flat colour) for LCP."""
    rng = random.Random(18)
    rows = b"".join(b"\x00" + rng.randbytes(width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


HERO = noise_png(800, 450)


def site_app(rum_origin: str) -> web.Application:
    """The team's site: its pages, its own copy of web-vitals, a slow image and a failing API."""

    def page(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        html = (SITE / f"{name}.html").read_text(encoding="utf-8").replace("{{RUM_ORIGIN}}", rum_origin)

        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

        return handler

    async def hero(request: web.Request) -> web.Response:
        await asyncio.sleep(HERO_DELAY)
        return web.Response(body=HERO, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def cart(request: web.Request) -> web.Response:
        return web.json_response({"error": "the cart service is down"}, status=500)

    app = web.Application()
    app.router.add_get("/products/{id}", page("products"))
    app.router.add_get("/checkout", page("checkout"))
    app.router.add_get("/about", page("about"))
    app.router.add_get("/img/hero.png", hero)
    app.router.add_get("/api/cart", cart)
    # no favicon, but no 404 in the console output a failure shows either
    app.router.add_get("/favicon.ico", no_content)
    app.router.add_static("/node_modules/", SITE / "node_modules")
    return app


@dataclass
class Recorder:
    """Stands where the RUM listener would and records what the browser sends it."""

    origin: str  # the site's: the one origin it answers with CORS
    beacons: list[dict[str, Any]] = field(default_factory=list)  # {"content_type", "origin", "body"}
    preflights: int = 0

    def app(self) -> web.Application:
        cors = {"Access-Control-Allow-Origin": self.origin, "Vary": "Origin"}

        async def script(request: web.Request) -> web.Response:
            # the adapter the exporter serves, from the tree under test
            return web.Response(body=ADAPTER.read_bytes(), content_type="text/javascript", headers=cors)

        async def preflight(request: web.Request) -> web.Response:
            self.preflights += 1
            return web.Response(
                status=204,
                headers={
                    **cors,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Content-Type",
                },
            )

        async def beacon(request: web.Request) -> web.Response:
            self.beacons.append(
                {
                    "content_type": request.headers.get("Content-Type", ""),
                    "origin": request.headers.get("Origin"),
                    "body": (await request.read()).decode(),
                }
            )
            return web.Response(status=204, headers=cors)

        app = web.Application()
        app.router.add_get("/rum/v1/rum.js", script)
        app.router.add_route("OPTIONS", "/rum/v1/beacon", preflight)
        app.router.add_post("/rum/v1/beacon", beacon)
        return app

    def bodies(self, page: str) -> list[dict[str, Any]]:
        out = []
        for beacon in self.beacons:
            body = json.loads(beacon["body"])
            if body.get("page") == page:
                out.append(body)
        return out


@asynccontextmanager
async def serve(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    server = TestServer(app, host=LOOPBACK, port=port)
    await server.start_server()
    try:
        yield f"http://{LOOPBACK}:{server.port}"
    finally:
        await server.close()


@dataclass
class Walk:
    """What the page itself measured during the walk, for failure messages."""

    lcp_ms: float = 0.0
    lcp_element: str = ""
    click_ms: float = 0.0
    cart: str = ""


# the largest-contentful-paint entries so far (buffered), once the image is the largest
LCP_SCRIPT = """new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const last = list.getEntries().at(-1);
    if (last && last.element && last.element.id === 'hero') resolve({ms: last.startTime, element: 'img#hero'});
  }).observe({type: 'largest-contentful-paint', buffered: true});
})"""
# the click's Event Timing entry, which exists once the frame after the handler is presented
CLICK_SCRIPT = """new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const click = list.getEntries().find((e) => e.name === 'click' && e.interactionId);
    if (click) resolve(click.duration);
  }).observe({type: 'event', buffered: true, durationThreshold: 16});
})"""


async def walk(page: Page, site: str) -> Walk:
    """Slow product page, a click, checkout, then away: each departure flushes a beacon."""
    out = Walk()
    step = "opening the product page"
    try:
        await page.navigate(site + PRODUCT_URL)  # the load event waits for the late hero image
        step = "waiting for the hero image to be the largest contentful paint"
        lcp = await page.evaluate(LCP_SCRIPT, await_promise=True)
        out.lcp_ms, out.lcp_element = lcp["ms"], lcp["element"]
        step = "clicking the slow button"
        await page.click("#add")
        out.click_ms = await page.evaluate(CLICK_SCRIPT, await_promise=True)
        assert await page.evaluate("document.getElementById('added').textContent") == "added", "no click handled"
        # a user reads on for a moment: web-vitals handles the click's timing in an idle
        # callback, and 5.3.0 loses an INP still waiting for one when the page is hidden
        step = "waiting for the page to be idle"
        await page.idle()
        # leaving the product page (pagehide, visibilitychange) sends its beacon
        step = "opening the checkout page"
        await page.navigate(site + CHECKOUT)
        step = "waiting for the checkout page's API call and errors"
        await page.evaluate(
            "new Promise((resolve) => { const t = setInterval(() => {"
            " if (document.body.dataset.done === 'yes') { clearInterval(t); resolve(); } }, 20); })",
            await_promise=True,
        )
        out.cart = await page.evaluate("document.getElementById('cart').textContent")
        step = "leaving the checkout page"
        await page.navigate("about:blank")
    except (CDPError, AssertionError, KeyError, TypeError) as err:
        raise AssertionError(seen(f"the walk failed {step}: {err!r}", out, page)) from err
    return out


def seen(what: str, walk_result: Walk | None, page: Page | None, extra: str = "") -> str:
    """A failure message: what was seen, what the page measured, and Chromium's console."""
    lines = [what]
    if walk_result is not None:
        lines.append(f"in the page: {walk_result}")
    if page is not None:
        lines.append("Chromium's console:")
        lines.extend(f"  {line}" for line in page.console or ["(nothing)"])
        lines.append(f"Chromium's own log: {page.log_path}")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def require_site() -> None:
    assert WEB_VITALS.exists(), f"{WEB_VITALS} is missing: scripts/install-test-deps.sh runs `npm ci` in {SITE}"
    assert ADAPTER.exists(), f"the adapter {ADAPTER} is missing"


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds have passed; whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


# --- what Chromium sends ----------------------------------------------------------------


async def test_chromium_sends_one_beacon_per_page_view_with_its_vitals_and_nothing_private(tmp_path: Path) -> None:
    require_site()
    rum_port = free_port()
    async with serve(site_app(f"http://{LOOPBACK}:{rum_port}")) as site:
        recorder = Recorder(site)
        async with serve(recorder.app(), rum_port), chromium(tmp_path) as browser:
            page = await browser.new_page()
            done = await walk(page, site)

            async def arrived() -> bool:
                # each page's beacons: pagehide sends one, visibilitychange (web-vitals' CLS,
                # INP and a pending LCP) usually a second a moment later
                def names(path: str) -> set[str]:
                    return {m["name"] for b in recorder.bodies(path) for m in b.get("metrics", [])}

                return (
                    names("/products/42") >= CHROMIUM_METRICS
                    and names(CHECKOUT) >= CHROMIUM_METRICS - {"INP"}
                    and any("errors" in b for b in recorder.bodies(CHECKOUT))
                    and any("api" in b for b in recorder.bodies(CHECKOUT))
                )

            await wait_for(arrived)
            report = seen(f"beacons: {json.dumps(recorder.beacons, indent=1)}", done, page)

    assert recorder.beacons, report
    assert recorder.preflights == 0, report
    for beacon in recorder.beacons:
        # sendBeacon's string body: a CORS-safelisted type, so no preflight
        assert beacon["origin"] == site, report
        assert beacon["content_type"].split(";")[0] == "text/plain", report
        assert not any(secret in beacon["body"] for secret in SECRETS), report
        body = json.loads(beacon["body"])
        assert set(body) <= {"v", "page", "view", "metrics", "errors", "api"}, report
        assert body["v"] == 1, report
        # location.pathname only: the query and fragment stayed in the browser
        assert body["page"] in ("/products/42", CHECKOUT), report
        names = [m["name"] for m in body.get("metrics", [])]
        assert len(names) == len(set(names)), report

    product, checkout = recorder.bodies("/products/42"), recorder.bodies(CHECKOUT)
    # one page view each, counted once
    assert [b.get("view", False) for b in product].count(True) == 1, report
    assert [b.get("view", False) for b in checkout].count(True) == 1, report
    # every metric Chromium measures, each sent once per page view
    product_metrics = [m for b in product for m in b.get("metrics", [])]
    assert sorted(m["name"] for m in product_metrics) == sorted(CHROMIUM_METRICS), report
    checkout_names = sorted(m["name"] for b in checkout for m in b.get("metrics", []))
    assert checkout_names == sorted(CHROMIUM_METRICS - {"INP"}), report
    by_name = {m["name"]: m for m in product_metrics}
    assert by_name["LCP"]["value"] > HERO_DELAY * 1000, report
    assert by_name["INP"]["value"] >= CLICK_BUSY_MS, report
    assert by_name["load"]["value"] > HERO_DELAY * 1000, report
    assert all(m.get("navigation_type", "navigate") == "navigate" for m in product_metrics), report
    # the failures, as counts by kind and status class only
    errors = {k: sum(b.get("errors", {}).get(k, 0) for b in checkout) for k in ("error", "unhandledrejection")}
    api = {k: sum(b.get("api", {}).get(k, 0) for b in checkout) for k in ("4xx", "5xx", "network")}
    assert errors == {"error": 1, "unhandledrejection": 1}, report
    assert api == {"4xx": 0, "5xx": 1, "network": 0}, report
    # nothing failed on the product page
    assert all(not any(b.get("api", {}).values()) and not any(b.get("errors", {}).values()) for b in product), report


# --- what the exporter makes of it -------------------------------------------------------


def rum_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for s in samples(text) if s.name.startswith("rum_")]


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in rum_samples(text) if n == name and labels.items() <= ls.items())


def bucket(text: str, name: str, le: float, **labels: str) -> float:
    """The summed ``_bucket`` samples of ``name`` whose upper bound is ``le``."""
    return sum(
        v
        for n, ls, v in rum_samples(text)
        if n == f"{name}_bucket" and float(ls["le"]) == le and labels.items() <= ls.items()
    )


async def test_exporter_metrics_show_the_slow_page_the_error_and_the_failed_call(tmp_path: Path) -> None:
    require_site()
    rum_port = free_port()
    rum_origin = f"http://{LOOPBACK}:{rum_port}"
    async with serve(site_app(rum_origin)) as site:
        config = {"rum": {"listen_address": f"{LOOPBACK}:{rum_port}", "allowed_origins": [site], "routes": ROUTES}}
        exporter = ExporterProcess(tmp_path, config)
        try:
            await asyncio.to_thread(exporter.start)
            await asyncio.to_thread(wait_for_port, LOOPBACK, rum_port, 15)
            async with chromium(tmp_path) as browser:
                page = await browser.new_page()
                done = await walk(page, site)
                text = ""

                async def arrived() -> bool:
                    nonlocal text
                    text = await asyncio.to_thread(exporter.get, "/metrics")
                    return (
                        total(text, "rum_lcp_seconds_count", page=PRODUCT) >= 1
                        and total(text, "rum_inp_seconds_count", page=PRODUCT) >= 1
                        and total(text, "rum_page_views_total", page=PRODUCT) >= 1
                        and total(text, "rum_js_errors_total", page=CHECKOUT, kind="error") >= 1
                        and total(text, "rum_js_errors_total", page=CHECKOUT, kind="unhandledrejection") >= 1
                        and total(text, "rum_api_failures_total", page=CHECKOUT, status_class="5xx") >= 1
                        and total(text, "rum_page_views_total", page=CHECKOUT) >= 1
                    )

                await wait_for(arrived)
                # the buckets only where the assertions look at them, or the message drowns in them
                shown = "\n".join(
                    f"  {n}{ls} {v}"
                    for n, ls, v in rum_samples(text)
                    if not n.endswith("_bucket") or (ls["page"] == PRODUCT and float(ls["le"]) in (0.2, 4))
                )
                report = seen("the exporter's rum_ series:\n" + shown, done, page, "exporter log:\n" + exporter.log())
        finally:
            await asyncio.to_thread(exporter.stop)

    # the slow page: its LCP sample in the poor bucket (above 4 s)
    assert total(text, "rum_lcp_seconds_count", page=PRODUCT) >= 1, report
    assert bucket(text, "rum_lcp_seconds", 4, page=PRODUCT) == 0, report
    # the click's INP, above the 200 ms "good" threshold (the handler alone takes 300 ms)
    assert total(text, "rum_inp_seconds_count", page=PRODUCT) >= 1, report
    assert bucket(text, "rum_inp_seconds", 0.2, page=PRODUCT) == 0, report
    # Chromium is a desktop browser here, on a plain navigation
    lcp_labels = [ls for n, ls, _ in rum_samples(text) if n == "rum_lcp_seconds_count" and ls["page"] == PRODUCT]
    assert lcp_labels == [{"page": PRODUCT, "device": "desktop", "navigation_type": "navigate"}], report
    # the error and the failed API call, on the page they happened on
    assert total(text, "rum_js_errors_total", page=CHECKOUT, kind="error") >= 1, report
    assert total(text, "rum_js_errors_total", page=CHECKOUT, kind="unhandledrejection") >= 1, report
    assert total(text, "rum_api_failures_total", page=CHECKOUT, status_class="5xx") >= 1, report
    assert total(text, "rum_js_errors_total", page=PRODUCT) == 0, report
    # a page view for each visited page
    assert total(text, "rum_page_views_total", page=PRODUCT) >= 1, report
    assert total(text, "rum_page_views_total", page=CHECKOUT) >= 1, report
    # nothing at all for the configured page nobody visited, and nothing unmatched
    assert not [s for s in rum_samples(text) if s[1].get("page") in ("/about", "other")], report
    assert total(text, "rum_beacons_accepted_total") >= 2, report
    assert total(text, "rum_beacons_rejected_total") == 0, report
