"""The application's HTTP service as variants: the two ways a Python app is instrumented.

Each variant is a real aiohttp app the test starts on loopback, instrumented as its library's
docs show, sent a few requests (2xx, 4xx and 5xx on two routes) and scraped like Prometheus
scrapes it (`job="app"`, the pack's default `app.selector`):

- `prometheus-client`: a `Counter` `http_requests_total{method, handler, code}` and a
  `Histogram` `http_request_duration_seconds{method, handler}` with the client's default
  buckets, on a registry holding the client's default process, platform and GC collectors;
- `opentelemetry`: the OpenTelemetry SDK with its Prometheus exporter
  (`PrometheusMetricReader`) and the semantic conventions' `http.server.request.duration`
  histogram (unit `s`, the conventions' advised buckets, attributes `http.request.method`,
  `http.route`, `http.response.status_code`), which the exporter names
  `http_server_request_duration_seconds` with `http_route` and `http_response_status_code`;
  its `_count` is the request counter.

The exporter writes an attribute a request did not have (`error.type` on a success) as an
empty label; Prometheus stores an empty label as no label, and so does the capture here.

A healthy app serves 20 requests a second (15 on `/api/items`, 5 on `/api/orders`), 2% of
them 4xx, 0.05% 5xx, with a p99 latency around 0.4 s.  AppDown and AppAbsent read
Prometheus's own `up` of the app's scrape, not a series of the app (test_variant_matrix.py's
NOT_PER_VARIANT).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from peers.process import LOOPBACK, free_port
from tests.rules.variants import Change, Incident, Rule, Sample, Source, Variant

# The labels of the pack's default app scrape (`app.selector`); WATCHED_JOBS's app job.
SCRAPE_LABELS = {"job": "app", "instance": "app:8000"}
DAY = 1440

ITEMS, ORDERS = "/api/items", "/api/orders"
# What the capture asks each route for: a success, a client error and a server error.
REQUESTS = ((ITEMS, "GET", (200, 404, 500)), (ORDERS, "POST", (201, 400, 500)))

# ------------------------------------------------------------------ the apps


Record = Callable[[str, str, int, float], None]


async def _serve(record: Record, metrics: Callable[[], bytes]) -> str:
    """Run the app on a free loopback port, send it the capture's requests, scrape it."""

    @web.middleware
    async def instrument(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        if route == "/metrics":
            return await handler(request)
        started = time.perf_counter()
        status = 500  # unless the handler answers
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            record(request.method, route, status, time.perf_counter() - started)
        return response

    async def items(request: web.Request) -> web.Response:
        return _answer(request)

    async def orders(request: web.Request) -> web.Response:
        return _answer(request)

    async def scrape(_request: web.Request) -> web.Response:
        return web.Response(body=metrics(), content_type="text/plain", charset="utf-8")

    app = web.Application(middlewares=[instrument])
    app.router.add_get(ITEMS, items)
    app.router.add_post(ORDERS, orders)
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, LOOPBACK, port)
    await site.start()
    try:
        async with aiohttp.ClientSession(f"http://{LOOPBACK}:{port}") as client:
            for path, method, codes in REQUESTS:
                for code in codes:
                    async with client.request(method, path, params={"status": str(code)}) as resp:
                        assert resp.status == code, f"{method} {path}: {resp.status}"
            async with client.get("/metrics") as resp:
                assert resp.status == 200
                return await resp.text()
    finally:
        await runner.cleanup()


def _answer(request: web.Request) -> web.Response:
    """The status the request asks for (the test's way to make a route fail)."""
    status = int(request.query.get("status", "200"))
    if status >= 500:
        raise web.HTTPInternalServerError()
    return web.json_response({"ok": status < 400}, status=status)


async def prometheus_client_app(_request: pytest.FixtureRequest) -> str:
    registry = CollectorRegistry()
    # what the default registry holds
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    requests = Counter("http_requests_total", "HTTP requests.", ["method", "handler", "code"], registry=registry)
    latency = Histogram(
        "http_request_duration_seconds", "HTTP request latency.", ["method", "handler"], registry=registry
    )

    def record(method: str, route: str, status: int, seconds: float) -> None:
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)

    return await _serve(record, lambda: generate_latest(registry))


async def opentelemetry_app(_request: pytest.FixtureRequest) -> str:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "shop"}))
    try:
        duration = provider.get_meter("shop.http").create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            # the semantic conventions' advice: the SDK's default buckets are for milliseconds
            explicit_bucket_boundaries_advisory=[
                0.005,
                0.01,
                0.025,
                0.05,
                0.075,
                0.1,
                0.25,
                0.5,
                0.75,
                1,
                2.5,
                5,
                7.5,
                10,
            ],
        )

        def record(method: str, route: str, status: int, seconds: float) -> None:
            attributes: dict[str, str | int] = {
                "http.request.method": method,
                "http.route": route,
                "http.response.status_code": status,
                "url.scheme": "http",
            }
            if status >= 500:
                attributes["error.type"] = str(status)
            duration.record(seconds, attributes)

        text = await _serve(record, lambda: generate_latest(registry))
    finally:
        provider.shutdown()
    # Prometheus stores a label with an empty value as no label at all
    return re.sub(r'(?<=[{,])[a-zA-Z_][a-zA-Z0-9_]*="",?', "", text).replace(",}", "}")


# ------------------------------------------------------------------ traffic

# Cumulative share of requests at or under each bucket bound (the clients' default bounds).
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
FAST = (0.02, 0.1, 0.4, 0.7, 0.85, 0.92, 0.98, 0.995, 0.998, 0.999, 1, 1, 1, 1)
# 8% of requests over a second (the database is slow): p95 around 1.7 s, p99 under 2.5 s
SLOW_P95 = (0.01, 0.05, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.88, 0.92, 0.995, 1, 1, 1)
# 97% under a second but 2% over 2.5 s (a lock held by a few requests): p99 around 3.3 s
SLOW_P99 = (0.02, 0.1, 0.4, 0.7, 0.85, 0.92, 0.96, 0.965, 0.968, 0.97, 0.98, 1, 1, 1)


@dataclass(frozen=True)
class Route:
    per_minute: float
    client_errors: float  # share of 4xx
    server_errors: float  # share of 5xx
    latency: tuple[float, ...] = FAST
    mean_seconds: float = 0.045


@dataclass(frozen=True)
class Traffic:
    routes: Mapping[str, Route]

    def with_route(self, name: str, **changes: object) -> Traffic:
        return Traffic({**self.routes, name: replace(self.routes[name], **changes)})  # type: ignore[arg-type]

    def everywhere(self, **changes: object) -> Traffic:
        return Traffic({k: replace(v, **changes) for k, v in self.routes.items()})  # type: ignore[arg-type]


# 20 requests/s, 2% of them 4xx (a stale link, a bad form), 0.05% 5xx
HEALTHY_TRAFFIC = Traffic(
    {
        ITEMS: Route(900, client_errors=0.02, server_errors=0.0005),
        ORDERS: Route(300, client_errors=0.02, server_errors=0.0005),
    }
)

STATUS_LABELS = ("code", "status", "status_code", "http_response_status_code")
ROUTE_LABELS = ("route", "handler", "http_route", "path")
REQUEST_SERIES = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "http_request_duration_seconds_count",
    "http_request_duration_seconds_sum",
    "http_server_request_duration_seconds_bucket",
    "http_server_request_duration_seconds_count",
    "http_server_request_duration_seconds_sum",
}


def _first(s: Sample, keys: Sequence[str]) -> str | None:
    return next((v for k in keys if (v := s.label(k))), None)


def per_minute(s: Sample, traffic: Traffic) -> float:
    """How much the series grows each minute under `traffic`."""
    route = traffic.routes[str(_first(s, ROUTE_LABELS))]
    requests = route.per_minute
    status = _first(s, STATUS_LABELS)
    if status is not None:
        requests *= {"4": route.client_errors, "5": route.server_errors}.get(
            status[0], 1 - route.client_errors - route.server_errors
        )
    if s.name.endswith("_bucket"):
        le = float(str(s.label("le")))
        return requests * (1.0 if le == float("inf") else route.latency[BOUNDS.index(le)])
    if s.name.endswith("_sum"):
        return requests * route.mean_seconds
    return requests


def _healthy(s: Sample, t: int) -> float:
    return s.value + per_minute(s, HEALTHY_TRAFFIC) * t


# A deploy restarts the app twice a day: every counter starts again from 0.
DEPLOYS = (8 * 60, 20 * 60)
HEALTHY = tuple(Rule(name, _healthy, resets=DEPLOYS) for name in sorted(REQUEST_SERIES))


def traffic_becomes(traffic: Traffic) -> tuple[Change, ...]:
    """From the incident's start every request series grows at `traffic`'s pace."""
    return tuple(
        Change(name, lambda s, t, start: start + per_minute(s, traffic) * t) for name in sorted(REQUEST_SERIES)
    )


def _counts_requests(samples: Sequence[Sample]) -> bool:
    return any(s.name in {"http_requests_total", "http_server_request_duration_seconds_count"} for s in samples)


def _labels(**labels: str) -> Callable[[Variant, Sequence[Sample]], dict[str, str]]:
    return lambda _v, _s: dict(labels)


def incident(condition: str, alert: str, severity: str, traffic: Traffic, fires_within: int, **kw: object) -> Incident:
    # Both instrumentations count requests by status and route and time them by route: the
    # changes name the series of both, so none is required by name.
    return Incident(
        condition,
        alert,
        severity,
        traffic_becomes(traffic),
        fires_within=fires_within,
        required=(),
        applies=_counts_requests,
        **kw,  # type: ignore[arg-type]
    )


def _burn(long: str, short: str) -> Callable[[Variant, Sequence[Sample]], dict[str, str]]:
    return _labels(long=long, short=short)


INCIDENTS = (
    incident(
        "a tenth of the requests fail with a 5xx",
        "AppHighErrorRatio",
        "warning",
        HEALTHY_TRAFFIC.everywhere(server_errors=0.1),
        # the 5-minute ratio over 5% within minutes, then `errorRatioFor`
        fires_within=20,
        # escalation.appHighErrorRatio (30 minutes) after the ratio crossed
        escalates_within=45,
    ),
    incident(
        "one route fails",
        "AppRouteHighErrorRatio",
        "warning",
        HEALTHY_TRAFFIC.with_route(ORDERS, server_errors=0.4),
        fires_within=25,
        expect_labels=_labels(route=ORDERS),
    ),
    incident(
        # a deploy broke a form: 20% of the item requests get a 4xx, ten times the same hour
        # of the day before
        "client errors spike against the same hour a day before",
        "AppClientErrorSpike",
        "warning",
        HEALTHY_TRAFFIC.with_route(ITEMS, client_errors=0.2),
        fires_within=25,
        # the baseline is the ratio of the same hour one day before: a day of history first
        start=DAY + 120,
    ),
    incident(
        "a route's p95 latency is over the threshold",
        "AppRouteHighLatencyP95",
        "warning",
        HEALTHY_TRAFFIC.with_route(ITEMS, latency=SLOW_P95, mean_seconds=0.8),
        fires_within=25,
        expect_labels=_labels(route=ITEMS),
    ),
    incident(
        "a route's p99 latency is over the threshold",
        "AppRouteHighLatencyP99",
        "warning",
        HEALTHY_TRAFFIC.with_route(ITEMS, latency=SLOW_P99, mean_seconds=0.2),
        fires_within=25,
        expect_labels=_labels(route=ITEMS),
    ),
    incident(
        # 2.5% of requests fail: the 1h budget burn over 14.4x within 35 minutes, `for` 2m
        "the error budget burns over 14.4x (1h and 5m)",
        "AppErrorBudgetBurn",
        "critical",
        HEALTHY_TRAFFIC.everywhere(server_errors=0.025),
        fires_within=50,
        expect_labels=_burn("1h", "5m"),
        # escalation.appErrorBudgetBurn['1h'] (30m) instead of the 2m `for`; the slower
        # windows do not escalate
        escalates_within=78,
    ),
    incident(
        # 1.2%: under 14.4x; 6x over 6 hours after about 170 minutes, `for` 15m
        "the error budget burns over 6x (6h and 30m)",
        "AppErrorBudgetBurn",
        "critical",
        HEALTHY_TRAFFIC.everywhere(server_errors=0.012),
        fires_within=215,
        expect_labels=_burn("6h", "30m"),
    ),
    incident(
        # 0.5%: 3x over the day after about 230 minutes, `for` 1h
        "the error budget burns over 3x (1d and 2h)",
        "AppErrorBudgetBurn",
        "warning",
        HEALTHY_TRAFFIC.everywhere(server_errors=0.005),
        fires_within=320,
        expect_labels=_burn("1d", "2h"),
    ),
    incident(
        # 0.2%: over 1x after about 90 minutes, `for` 3h
        "the error budget burns over 1x (3d and 6h)",
        "AppErrorBudgetBurn",
        "warning",
        HEALTHY_TRAFFIC.everywhere(server_errors=0.002),
        fires_within=300,
        expect_labels=_burn("3d", "6h"),
    ),
)

SOURCE = Source(
    name="app",
    docs="app",
    variants=(
        Variant("app", "prometheus-client", prometheus_client_app),
        Variant("app", "opentelemetry", opentelemetry_app),
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
    # a day and three hours: the 4xx spike compares with the same hour of the day before
    minutes=DAY + 180,
    scrape_labels=SCRAPE_LABELS,
)
