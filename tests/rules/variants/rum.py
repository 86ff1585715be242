"""Real user monitoring as variants: the browser engines, by what web-vitals reports in each.

The series a site's RUM emits depend on its visitors' browsers: web-vitals registers
`onCLS` everywhere but only Chromium has the Layout Instability API, so a Firefox or
Safari visitor sends no CLS, and Safari before LCP and Event Timing sends neither LCP nor
INP.  A page visited only by such browsers has no `rum_lcp_seconds` series at all, and an
alert on it must stay quiet there rather than read "no LCP" as anything.

The table of what each engine reports is BROWSER_SUPPORT below: the "Browser Support"
section of web-vitals 5.3.0's README, in its own words, from which each variant's metrics
follow (docs/metrics/rum.md shows the same table; `check` compares them, and compares each
variant's captured histograms with its row).  One variant is ours, not the README's:
`safari-legacy`, Safari before 26.2 (WebKit's release notes: LCP and Event Timing's
`interactionId` came in 26.2; the README names engines, not versions).  web-vitals 5.3.0 then
reports nothing for LCP or INP: `onLCP` observes `largest-contentful-paint` only when
`PerformanceObserver.supportedEntryTypes` lists it, and `onINP` returns at once unless
`PerformanceEventTiming.prototype` has `interactionId` (src/lib/observe.ts, src/onINP.ts).
`load` is the adapter's own (PerformanceNavigationTiming, in all three engines), as are the
error and failed-API counts.

Each variant is captured from the real exporter: it starts with a `rum:` section (its own
listener) and an `http_probes` probe of that listener's `/-/healthy` (the site's uptime
probe, which RumBeaconsStopped reads), is sent the beacons that engine's browser would send
(only its metric names) for three page views of two routes from a phone and a desktop, an
error and a failed API call on each route, and is scraped on its main listener.  The
capture also checks the metrics table of docs/metrics/rum.md (type, labels, help) against
what it scraped, as far as that engine's beacons fill it.

A healthy site: 4 views a minute per route and device, except at night (minutes 600 to 780
of each day: nobody visits, every rum counter stands still), most views in the good
buckets, 0.01 JavaScript errors per view.  The twin runs a day and 14 hours so the second
night is compared with the first (RumBeaconsStopped's baseline is the same half hour a day
earlier).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
import pytest

from peers.process import LOOPBACK, free_port
from tests.helpers import ROOT, ExporterProcess, reference_problems
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Sample,
    Source,
    Variant,
    constant,
    stops,
)

DAY = 1440
DOCS = ROOT / "docs" / "metrics" / "rum.md"

# ------------------------------------------------------------------ what each engine reports

WEB_VITALS = "5.3.0"
# web-vitals 5.3.0 README, "Browser Support": "The latest browser support for each function
# is as follows:"
BROWSER_SUPPORT = {
    "onCLS()": "Chromium",
    "onFCP()": "Chromium, Firefox, Safari",
    "onINP()": "Chromium, Firefox, Safari",
    "onLCP()": "Chromium, Firefox, Safari",
    "onTTFB()": "Chromium, Firefox, Safari",
}
# The beacon's names: web-vitals' `metric.name` and the adapter's `load`.
ORDER = ("LCP", "INP", "CLS", "FCP", "TTFB", "load")
# Histogram family of each beacon name (the brief's metrics table, docs/metrics/rum.md).
FAMILIES = {
    "LCP": "rum_lcp_seconds",
    "INP": "rum_inp_seconds",
    "CLS": "rum_cls",
    "FCP": "rum_fcp_seconds",
    "TTFB": "rum_ttfb_seconds",
    "load": "rum_page_load_seconds",
}


def _readme(engine: str) -> tuple[str, ...]:
    listed = {fn.removeprefix("on").removesuffix("()") for fn, engines in BROWSER_SUPPORT.items() if engine in engines}
    return tuple(m for m in ORDER if m in listed or m == "load")


@dataclass(frozen=True)
class Browser:
    name: str  # the variant
    browsers: str  # which browsers, for the docs table
    reports: tuple[str, ...]  # beacon metric names it sends
    desktop_ua: str
    mobile_ua: str


BROWSERS = (
    Browser(
        "chromium",
        "Chrome, Edge, Opera, Samsung Internet (Blink)",
        _readme("Chromium"),
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36"
        " (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36",
    ),
    Browser(
        "firefox",
        "Firefox (Gecko)",
        _readme("Firefox"),
        "Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0",
        "Mozilla/5.0 (Android 15; Mobile; rv:145.0) Gecko/145.0 Firefox/145.0",
    ),
    Browser(
        "safari",
        "Safari 26.2 and later, every iOS browser on it (WebKit)",
        _readme("Safari"),
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/26.2 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/26.2 Mobile/15E148 Safari/604.1",
    ),
    Browser(
        "safari-legacy",
        "Safari before 26.2 (WebKit without LCP and Event Timing)",
        tuple(m for m in _readme("Safari") if m not in {"LCP", "INP"}),
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/18.6 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1",
    ),
)

# ------------------------------------------------------------------ the capture

ORIGIN = "https://shop.example.com"
ROUTES = ("/", "/product/:id")
# The paths the capture's views visit, and the route each matches.
PATHS = {"/": "/", "/product/42": "/product/:id"}
VIEWS = 3  # per path and device
# Good values, in the beacon's units (ms; CLS unitless): most healthy views land here.
GOOD = {"LCP": 1800.0, "INP": 120.0, "CLS": 0.03, "FCP": 900.0, "TTFB": 250.0, "load": 2100.0}
# Metrics a browser reports while the page loads, and those it reports when the page is
# hidden (web-vitals finalises INP and CLS then); one beacon each, as the adapter flushes.
AT_LOAD = ("LCP", "FCP", "TTFB", "load")


def _beacons(browser: Browser, path: str, view: int) -> list[dict[str, object]]:
    def metrics(names: Sequence[str]) -> list[dict[str, object]]:
        return [
            {"name": m, "value": GOOD[m] * (1 + 0.1 * view), "navigation_type": "navigate"}
            for m in names
            if m in browser.reports
        ]

    first: dict[str, object] = {"v": 1, "page": path, "view": True, "metrics": metrics(AT_LOAD)}
    last: dict[str, object] = {"v": 1, "page": path, "metrics": metrics([m for m in ORDER if m not in AT_LOAD])}
    if view == 0:
        # a script error and a failed API call on each route, so the counters exist
        last["errors"] = {"error": 1, "unhandledrejection": 1}
        last["api"] = {"5xx": 1}
    return [first, last]


async def _capture(browser: Browser, request: pytest.FixtureRequest) -> str:
    tmp = request.getfixturevalue("tmp_path_factory").mktemp(f"rum-{browser.name}")
    rum_port = free_port()
    rum_address = f"{LOOPBACK}:{rum_port}"
    config = {
        "rum": {
            "listen_address": rum_address,
            "allowed_origins": [ORIGIN],
            "routes": list(ROUTES),
            # every beacon comes from one loopback address
            "rate_limit": 1000.0,
            "rate_burst": 1000,
        },
        "http_probes": [{"name": "home", "url": f"http://{rum_address}/-/healthy"}],
    }
    exporter = ExporterProcess(tmp, config, "--rum.listen-address", rum_address)
    await asyncio.to_thread(exporter.start)
    try:
        async with aiohttp.ClientSession(f"http://{rum_address}") as client:
            for path in PATHS:
                for ua in (browser.desktop_ua, browser.mobile_ua):
                    for view in range(VIEWS):
                        for beacon in _beacons(browser, path, view):
                            headers = {"Origin": ORIGIN, "User-Agent": ua, "Content-Type": "text/plain;charset=UTF-8"}
                            async with client.post("/rum/v1/beacon", data=json.dumps(beacon), headers=headers) as resp:
                                assert resp.status == 204, f"{browser.name} {path}: {resp.status} {await resp.text()}"
        text = await asyncio.to_thread(exporter.get, "/metrics")
    finally:
        await asyncio.to_thread(exporter.stop)
    # the metrics table of docs/metrics/rum.md (type, labels, help), as far as this engine's
    # beacons fill it: the histograms of metrics it does not report have no series (at most
    # an empty family, without labels)
    absent = tuple(f"{FAMILIES[m]}{end}" for m in ORDER if m not in browser.reports for end in (" is documented", ":"))
    problems = [p for p in reference_problems("rum", text, prefixes=("rum_",)) if not p.startswith(absent)]
    assert not problems, "\n".join(problems)
    return text


def _variant(browser: Browser) -> Variant:
    async def capture(request: pytest.FixtureRequest) -> str:
        return await _capture(browser, request)

    return Variant("rum", browser.name, capture)


# ------------------------------------------------------------------ a healthy site

VIEWS_PER_MINUTE = 4.0  # per route and device, by day
NIGHT = (600, 780)  # minutes of each day without a single visit
# Of the views, the share that reports each metric (INP needs an interaction; `load` is
# lost when the user leaves before the load event).
REPORTED = {"LCP": 1.0, "INP": 0.6, "CLS": 1.0, "FCP": 1.0, "TTFB": 1.0, "load": 0.95}
BEACONS_PER_VIEW = 2.0
ERRORS_PER_VIEW = 0.01  # per kind: extensions and old browsers throw on every site
API_FAILURES_PER_VIEW = 0.005  # per status class


def _active(minutes: int) -> int:
    """Minutes with visitors in [0, minutes)."""
    days, rest = divmod(minutes, DAY)
    night = NIGHT[1] - NIGHT[0]
    return days * (DAY - night) + rest - max(0, min(rest, NIGHT[1]) - NIGHT[0])


@dataclass(frozen=True)
class Distribution:
    """A log-normal spread of one metric's values (seconds; CLS unitless)."""

    median: float
    sigma: float

    def share_under(self, bound: float) -> float:
        if math.isinf(bound):
            return 1.0
        return 0.5 * (1 + math.erf(math.log(bound / self.median) / (self.sigma * math.sqrt(2))))

    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


HEALTHY_SPREAD = {
    "rum_lcp_seconds": Distribution(1.6, 0.5),  # 81% good, p75 2.2 s
    "rum_inp_seconds": Distribution(0.1, 0.6),  # p75 150 ms
    "rum_cls": Distribution(0.02, 0.8),
    "rum_fcp_seconds": Distribution(1.0, 0.5),
    "rum_ttfb_seconds": Distribution(0.3, 0.5),
    "rum_page_load_seconds": Distribution(2.0, 0.5),
}
REPORTED_BY_FAMILY = {FAMILIES[m]: share for m, share in REPORTED.items()}
_HISTOGRAM = re.compile(r"^(rum_[a-z_]+?)(_bucket|_sum|_count)$")


def _per_view(s: Sample, spread: Mapping[str, Distribution]) -> float:
    """What one page view of the series' (page, device) adds to it."""
    match = _HISTOGRAM.match(s.name)
    if match:
        family, part = match.groups()
        reported = REPORTED_BY_FAMILY[family]
        if part == "_bucket":
            return reported * spread[family].share_under(float(str(s.label("le"))))
        if part == "_sum":
            return reported * spread[family].mean()
        return reported
    if s.name == "rum_page_views_total":
        return 1.0
    # per page: both devices' views
    if s.name == "rum_js_errors_total":
        return 2 * ERRORS_PER_VIEW
    if s.name == "rum_api_failures_total":
        return 2 * API_FAILURES_PER_VIEW
    if s.name == "rum_beacons_accepted_total":
        # every route and device
        return len(ROUTES) * 2 * BEACONS_PER_VIEW
    raise AssertionError(f"no healthy pace for {s.name}")


def _grid(x: float) -> float:
    """`x` on a grid of 1/512: every value and step of the twin is then an exact binary
    fraction that promtool's `a+bxn` expands without rounding.  Otherwise the end of one run
    and the start of the next can differ by 1e-12 downwards, which Prometheus reads as a
    counter reset (a whole counter's worth of errors in a minute)."""
    return round(x * 512) / 512


def _pace(s: Sample, spread: Mapping[str, Distribution]) -> float:
    """How much the series grows in a minute with visitors."""
    return _grid(VIEWS_PER_MINUTE * _per_view(s, spread))


def _healthy(s: Sample, t: int) -> float:
    return _grid(s.value) + _pace(s, HEALTHY_SPREAD) * _active(t)


GROWING = (
    *(f"{family}{part}" for family in FAMILIES.values() for part in ("_bucket", "_sum", "_count")),
    "rum_page_views_total",
    "rum_js_errors_total",
    "rum_api_failures_total",
    "rum_beacons_accepted_total",
)
HEALTHY = (
    *(Rule(name, _healthy) for name in GROWING),
    # bots and scanners: a few refused beacons an hour, by origin and malformed
    Rule("rum_beacons_rejected_total", lambda s, t: s.value + t / 16, {"reason": "origin|malformed"}),
    Rule("probe_success", constant(1)),
    *EXPORTER_HEALTHY,
)

# ------------------------------------------------------------------ incidents

PRODUCT = {"page": "/product/:id"}


def _labels(**labels: str) -> Callable[[Variant, Sequence[Sample]], dict[str, str]]:
    return lambda _v, _s: dict(labels)


def _spread_becomes(family: str, spread: Distribution) -> tuple[Change, ...]:
    """From the incident's start the product page's `family` follows `spread` (by day)."""
    spreads = {**HEALTHY_SPREAD, family: spread}
    return tuple(
        Change(
            f"{family}{part}",
            lambda s, t, start: start + _pace(s, spreads) * t,
            PRODUCT,
        )
        for part in ("_bucket", "_sum", "_count")
    )


def _errors_per_view(per_view: float) -> Change:
    return Change(
        "rum_js_errors_total",
        lambda _s, t, start: start + _grid(VIEWS_PER_MINUTE * 2 * per_view) * t,
        {**PRODUCT, "kind": "error"},
    )


INCIDENTS = (
    Incident(
        # a deploy ships an unoptimised hero image: the median LCP goes to 4.5 s
        "a page's p75 LCP is poor",
        "RumLcpPoor",
        "warning",
        _spread_becomes("rum_lcp_seconds", Distribution(4.5, 0.5)),
        fires_within=50,
        expect_labels=_labels(page="/product/:id"),
    ),
    Incident(
        # a third-party widget blocks the main thread on every click
        "a page's p75 INP is poor",
        "RumInpPoor",
        "warning",
        _spread_becomes("rum_inp_seconds", Distribution(0.6, 0.6)),
        fires_within=50,
        expect_labels=_labels(page="/product/:id"),
    ),
    Incident(
        # the median LCP creeps from 1.6 to 2.6 s: the p75 (3.6 s) is not poor yet, but the
        # good share falls from 81% to 47%
        "a page's share of good LCPs drops below its baseline",
        "RumGoodShareDrop",
        "warning",
        _spread_becomes("rum_lcp_seconds", Distribution(2.6, 0.5)),
        fires_within=50,
        expect_labels=_labels(page="/product/:id"),
    ),
    Incident(
        "JavaScript errors per view spike on a page",
        "RumJsErrorSpike",
        "warning",
        (_errors_per_view(0.2),),
        fires_within=40,
        expect_labels=_labels(page="/product/:id"),
    ),
    Incident(
        # a deploy drops the adapter's script tag: every rum counter stands still, the site
        # answers its probe
        "beacons stop while the site is up",
        "RumBeaconsStopped",
        "warning",
        tuple(Change(name, stops()) for name in GROWING),
        fires_within=60,
        required=(("rum_beacons_accepted_total", {}), ("probe_success", {})),
        # the baseline is the same half hour a day before
        start=DAY + 120,
    ),
)

# ------------------------------------------------------------------ the docs table

TABLE_HEADER = "| Variant | Browsers | Reports |"


def docs_browsers() -> dict[str, tuple[str, tuple[str, ...]]]:
    lines = DOCS.read_text().splitlines()
    assert TABLE_HEADER in lines, f"docs/metrics/rum.md: no '{TABLE_HEADER}' table"
    rows = {}
    for line in lines[lines.index(TABLE_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        name, browsers, reports = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = (browsers, tuple(r.strip().strip("`") for r in reports.split(",")))
    return rows


def _check(variant: Variant, samples: Sequence[Sample]) -> list[str]:
    problems = []
    ours = {b.name: (b.browsers, b.reports) for b in BROWSERS}
    if docs_browsers() != ours:
        problems.append(f"the browser table differs from tests/rules/variants/rum.py BROWSERS: {ours}")
    if f"web-vitals {WEB_VITALS}" not in DOCS.read_text():
        problems.append(f"the docs do not name the web-vitals version the table is from ({WEB_VITALS})")
    browser = next(b for b in BROWSERS if b.name == variant.name)
    emitted = {
        s.name.removesuffix("_count") for s in samples if s.name.startswith("rum_") and s.name.endswith("_count")
    }
    expected = {FAMILIES[m] for m in browser.reports}
    if emitted != expected:
        problems.append(f"{variant.name}: histograms {sorted(emitted)}, the table says {sorted(expected)}")
    pages = {s.label("page") for s in samples if s.name == "rum_page_views_total"}
    if pages != set(ROUTES):
        problems.append(f"{variant.name}: pages {sorted(map(str, pages))}, expected the route patterns {ROUTES}")
    return problems


SOURCE = Source(
    name="rum",
    docs="rum",
    variants=tuple(_variant(b) for b in BROWSERS),
    healthy=HEALTHY,
    incidents=INCIDENTS,
    # a day, then the second night and an hour after it
    minutes=DAY + NIGHT[1] + 60,
    check=_check,
)
