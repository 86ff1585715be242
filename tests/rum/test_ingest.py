"""The RUM listener in the real exporter process: beacons counted where they belong, CORS,
hostile beacons that cannot add a series, the rate limiter and trusted proxies, reloads,
and ``--check-config`` for the ``rum:`` section.

Every request comes from 127.0.0.1. The main config trusts 127.0.0.1 as a proxy, so each
test client is a distinct ``X-Forwarded-For`` address with its own token bucket; the
trusted-proxy test checks that this is so only for a trusted peer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import socket
import ssl
import string
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from peers.process import free_port, port_is_open, wait_until
from tests.helpers import ExporterProcess, check_config, self_signed_cert, value, write_config

pytestmark = pytest.mark.timeout(120)

SHOP = "https://shop.example.com"
LOCAL = "http://127.0.0.1:8000"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
REASONS = ("origin", "rate_limited", "too_large", "malformed", "invalid_value", "unknown_metric")
BURST = 5
MAX_BODY = 16384


def rum_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "allowed_origins": [SHOP, LOCAL],
        "routes": ["/", "/product/:id", "/blog/*"],
        "max_body_bytes": MAX_BODY,
        # a bucket that never refills within a test: exactly BURST beacons per client
        "rate_limit": 0.0001,
        "rate_burst": BURST,
        "max_clients": 100,
        "trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"],
    }
    section.update(overrides)
    return section


@dataclass
class Rum:
    """The exporter process, its RUM address and an HTTP session."""

    proc: ExporterProcess
    rum_port: int
    http: aiohttp.ClientSession
    clients: Iterator[str] = field(default_factory=lambda: (f"198.51.{i // 256}.{i % 256}" for i in range(1, 65000)))

    @property
    def beacon_url(self) -> str:
        return f"http://127.0.0.1:{self.rum_port}/rum/v1/beacon"

    async def post(
        self,
        body: bytes | str | Mapping[str, Any] | Any,
        *,
        origin: str | None = SHOP,
        content_type: str = "text/plain;charset=UTF-8",
        client: str | None = None,
        user_agent: str = DESKTOP_UA,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST a beacon; a fresh client address (X-Forwarded-For) unless ``client`` is given."""
        if isinstance(body, Mapping):
            body = json.dumps(body)
        sent = {"Content-Type": content_type, "User-Agent": user_agent}
        if origin is not None:
            sent["Origin"] = origin
        sent["X-Forwarded-For"] = client or next(self.clients)
        sent.update(headers or {})
        async with self.http.post(self.beacon_url, data=body, headers=sent) as resp:
            await resp.read()
            return resp

    async def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.proc.port}/metrics?targets=none"
        async with self.http.get(url) as resp:
            assert resp.status == 200
            return await resp.text()


@contextmanager
def exporter_process(tmp_path: Path, config: Mapping[str, Any], *args: str) -> Iterator[tuple[ExporterProcess, int]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    rum_port = free_port()
    proc = ExporterProcess(tmp_path, config, "--rum.listen-address", f"127.0.0.1:{rum_port}", *args)
    try:
        proc.start()
        wait_until(lambda: port_is_open("127.0.0.1", rum_port), timeout=15)
        yield proc, rum_port
    finally:
        proc.stop()


@pytest.fixture
async def rum(tmp_path: Path) -> AsyncIterator[Rum]:
    with exporter_process(tmp_path, {"rum": rum_section()}) as (proc, port):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            yield Rum(proc, port, http)


def beacon(page: str = "/", **fields: Any) -> dict[str, Any]:
    return {"v": 1, "page": page, **fields}


def rum_series(text: str) -> list[str]:
    """The sample lines of every rum_* family (one line per series)."""
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("rum_")]


def rejected(text: str) -> dict[str, float]:
    return {reason: value(text, "rum_beacons_rejected_total", reason=reason) or 0.0 for reason in REASONS}


# --------------------------------------------------------------------------- accepted beacons


async def test_a_valid_beacon_is_counted_on_its_route_and_device(rum: Rum) -> None:
    before = await rum.metrics()
    # nothing observed yet: no series but the fixed ones
    assert "rum_lcp_seconds_bucket" not in before
    assert rejected(before) == dict.fromkeys(REASONS, 0.0)
    assert value(before, "rum_beacons_accepted_total") == 0

    resp = await rum.post(
        beacon(
            "/product/42?session=s3cr3t#reviews",
            view=True,
            metrics=[
                {"name": "LCP", "value": 2950.4, "navigation_type": "navigate"},
                {"name": "CLS", "value": 0.12},
                {"name": "INP", "value": 180, "navigation_type": "reload"},
                {"name": "load", "value": 3100, "navigation_type": "navigate"},
            ],
            errors={"error": 2, "unhandledrejection": 0},
            api={"5xx": 1},
        ),
        user_agent=IPHONE_UA,
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in resp.headers["Vary"]
    # a sendBeacon body is text/plain; fetch's is application/json, charset or not
    resp = await rum.post(beacon("/blog/2024/hello", view=True), content_type="application/json")
    assert resp.status == 204

    text = await rum.metrics()
    product = {"page": "/product/:id", "device": "mobile"}
    lcp = {**product, "navigation_type": "navigate"}
    assert value(text, "rum_lcp_seconds_bucket", le="2.5", **lcp) == 0
    assert value(text, "rum_lcp_seconds_bucket", le="3.0", **lcp) == 1
    assert value(text, "rum_lcp_seconds_sum", **lcp) == pytest.approx(2.9504)
    assert value(text, "rum_cls_bucket", le="0.1", **lcp) == 0
    assert value(text, "rum_cls_bucket", le="0.15", **lcp) == 1
    assert value(text, "rum_inp_seconds_bucket", le="0.2", **{**product, "navigation_type": "reload"}) == 1
    assert value(text, "rum_page_load_seconds_count", **lcp) == 1
    assert value(text, "rum_page_views_total", **product) == 1
    assert value(text, "rum_page_views_total", page="/blog/*", device="desktop") == 1
    assert value(text, "rum_js_errors_total", page="/product/:id", kind="error") == 2
    assert value(text, "rum_api_failures_total", page="/product/:id", status_class="5xx") == 1
    assert value(text, "rum_beacons_accepted_total") == 2
    # a page never visited has no series; the raw path and its query never show
    assert 'page="/"' not in text
    assert "s3cr3t" not in text and "/product/42" not in text and "hello" not in text
    assert "rum_js_errors_total" in text and "Traceback" not in rum.proc.log()
    for secret in ("s3cr3t", "/product/42", "iPhone", "198.51."):
        assert secret not in rum.proc.log()


async def test_cors_preflight_answers_allowed_origins_only(rum: Rum) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with rum.http.options(rum.beacon_url, headers={"Origin": LOCAL, **ask}) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == LOCAL
        assert resp.headers["Access-Control-Allow-Methods"] == "POST"
        assert resp.headers["Access-Control-Allow-Headers"] == "Content-Type"
        assert resp.headers["Access-Control-Max-Age"] == "86400"
        assert resp.headers["Vary"] == "Origin"
    for origin in ("https://evil.example", "https://shop.example.com.evil.example", "null", SHOP + ":443"):
        async with rum.http.options(rum.beacon_url, headers={"Origin": origin, **ask}) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
    # a refused POST carries no CORS header either, so the page cannot even read the answer
    resp = await rum.post(beacon(view=True), origin="https://evil.example")
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await rum.post(beacon(view=True), origin=None)
    assert resp.status == 403
    assert rejected(await rum.metrics())["origin"] == 2


async def test_the_adapter_is_served_as_a_module_with_cors_for_allowed_origins(rum: Rum) -> None:
    url = f"http://127.0.0.1:{rum.rum_port}/rum/v1/rum.js"
    async with rum.http.get(url, headers={"Origin": SHOP}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/javascript")
        assert resp.headers["Access-Control-Allow-Origin"] == SHOP
        assert resp.headers["Cache-Control"] == "max-age=3600"
        script = await resp.text()
    assert "export function start(" in script
    async with rum.http.get(url, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    # the RUM listener serves nothing else: no /metrics, no reload, no other path
    for path in ("/metrics", "/-/reload", "/", "/rum/v1/other", "/rum/v1/rum.js/x"):
        async with rum.http.get(f"http://127.0.0.1:{rum.rum_port}{path}") as resp:
            assert resp.status == 404, path
    async with rum.http.get(f"http://127.0.0.1:{rum.rum_port}/-/healthy") as resp:
        assert resp.status == 200
    # and the beacon endpoint is not on the main listener
    async with rum.http.post(f"http://127.0.0.1:{rum.proc.port}/rum/v1/beacon", data="{}") as resp:
        assert resp.status in (404, 405)


# --------------------------------------------------------------------------- hostile beacons


def random_path(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.~%:@!$&'()*+,;="
    segments = ["".join(rng.choices(alphabet, k=rng.randint(1, 24))) for _ in range(rng.randint(1, 6))]
    return "/zz/" + "/".join(segments) + rng.choice(["", "?q=1", "#x", "/"])


async def test_hostile_beacons_add_no_series_and_are_counted_by_reason(rum: Rum) -> None:
    rng = random.Random(18)
    # the series random pages may legitimately use, observed once: "other" on desktop, an
    # unknown navigation type ("other"), every error kind and API class
    template = beacon(
        view=True,
        metrics=[{"name": "LCP", "value": 1200, "navigation_type": "weird"}, {"name": "TTFB", "value": 90}],
        errors={"error": 1, "unhandledrejection": 1},
        api={"4xx": 1, "5xx": 1, "network": 1},
    )
    assert (await rum.post({**template, "page": "/not-a-route"})).status == 204
    baseline = await rum.metrics()
    series = rum_series(baseline)
    assert value(baseline, "rum_lcp_seconds_count", page="other", device="desktop", navigation_type="other") == 1

    async def many(bodies: list[Any], **kwargs: Any) -> list[int]:
        statuses: list[int] = []
        for start in range(0, len(bodies), 50):
            batch = await asyncio.gather(*(rum.post(b, **kwargs) for b in bodies[start : start + 50]))
            statuses.extend(r.status for r in batch)
        return statuses

    # 1,000 random pages with random navigation types: accepted, all on "other"
    pages = [random_path(rng) for _ in range(1000)]
    bodies = [
        {**template, "page": page, "metrics": [{**template["metrics"][0], "navigation_type": random_path(rng)}]}
        for page in pages
    ]
    assert set(await many(bodies)) == {204}
    # 1,000 random origins: refused before anything is read
    origins = [f"https://{random_path(rng)[4:12].strip('/') or 'x'}.example" for _ in range(1000)]
    refused = [
        await asyncio.gather(*(rum.post(template, origin=o) for o in origins[i : i + 50])) for i in range(0, 1000, 50)
    ]
    assert {r.status for batch in refused for r in batch} == {403}

    expected = dict.fromkeys(REASONS, 0)
    expected["origin"] = 1000

    # oversized: by Content-Length, and chunked with no length at all
    big = json.dumps({**template, "page": "/" + "a" * MAX_BODY})
    assert (await rum.post(big)).status == 413
    assert (await rum.post("x" * (1024 * 1024))).status == 413

    async def chunks(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // 1024):
            yield b"[" * 1024

    assert (await rum.post(chunks(64 * 1024))).status == 413  # Transfer-Encoding: chunked
    expected["too_large"] = 3
    # a chunked body under the limit is read and parsed as any other
    assert (await rum.post(chunks(4096))).status == 400

    malformed: list[Any] = [
        "{",
        "[]",
        "null",
        "not json",
        b"\xff\xfe\x00",
        json.dumps({**template, "v": 2}),
        json.dumps({**template, "user": "alice"}),  # unknown key
        json.dumps({**template, "page": "https://shop.example.com/"}),
        json.dumps({**template, "page": "/" + "a" * 3000}),
        json.dumps({**template, "view": "yes"}),
        json.dumps({**template, "metrics": [{"name": "LCP", "value": 1, "navigation_type": 7}]}),
        json.dumps({**template, "metrics": [{"name": "LCP", "value": 1, "stack": "Error at x.js:1"}]}),
        json.dumps({**template, "errors": {"error": 1, "TypeError: x is undefined": 1}}),
        '{"v": 1, "page": "/", "metrics": ' + "[" * 5000 + "]" * 5000 + "}",  # deep nesting
        '{"v": 1, "page": "/", "errors": ' + '{"a":' * 2000 + "1" + "}" * 2000 + "}",
    ]
    statuses = await many(malformed)
    assert statuses == [400] * len(malformed), statuses
    expected["malformed"] = len(malformed) + 1  # and the small chunked body of "[" above
    # another content type: 415, counted malformed
    assert (await rum.post(template, content_type="application/x-www-form-urlencoded")).status == 415
    expected["malformed"] += 1

    invalid = [
        '{"v": 1, "page": "/", "metrics": [{"name": "LCP", "value": NaN}]}',
        '{"v": 1, "page": "/", "metrics": [{"name": "INP", "value": Infinity}]}',
        '{"v": 1, "page": "/", "metrics": [{"name": "CLS", "value": -Infinity}]}',
        json.dumps(beacon(metrics=[{"name": "FCP", "value": -1}])),
        json.dumps(beacon(metrics=[{"name": "LCP", "value": 86_400_000}])),  # an LCP of a day
        json.dumps(beacon(metrics=[{"name": "INP", "value": 60_001}])),
        json.dumps(beacon(metrics=[{"name": "CLS", "value": 11}])),
        json.dumps(beacon(errors={"error": 1001})),
        json.dumps(beacon(api={"5xx": -1})),
    ]
    statuses = await many(invalid)
    assert statuses == [400] * len(invalid)
    expected["invalid_value"] = len(invalid)
    unknown = [
        json.dumps(beacon(metrics=[{"name": name, "value": 1}]))
        for name in ("FID", "lcp", "TTI", "x" * 200, "rum_lcp_seconds")
    ]
    assert await many(unknown) == [400] * len(unknown)
    expected["unknown_metric"] = len(unknown)

    # a flood from one client: BURST accepted, every one after refused unread
    flood = [{**template, "page": "/also-not-a-route"}] * (BURST + 30)
    statuses = await many(flood, client="203.0.113.9")
    assert statuses.count(204) == BURST
    assert statuses.count(429) == 30
    expected["rate_limited"] = 30

    after = await rum.metrics()
    assert sorted(rum_series(after)) == sorted(series), set(rum_series(after)) ^ set(series)
    assert rejected(after) == {reason: float(n) for reason, n in expected.items()}
    assert value(after, "rum_beacons_accepted_total") == 1 + 1000 + BURST
    assert (
        value(after, "rum_lcp_seconds_count", page="other", device="desktop", navigation_type="other") == 1001 + BURST
    )
    # the limiter's table is bounded (max_clients: 100) though 2,000 clients posted
    limited = value(after, "rum_clients_limited")
    assert limited is not None and 0 < limited <= 100
    # no page, origin or address a client sent reaches the metrics or the log
    log = rum.proc.log()
    for sent in (*pages[:50], *origins[:50]):
        assert sent not in after and sent not in log
    assert "198.51." not in log and "203.0.113.9" not in log and "Traceback" not in log


async def test_the_rate_limit_answers_429_with_retry_after(rum: Rum) -> None:
    for _ in range(BURST):
        assert (await rum.post(beacon(view=True), client="192.0.2.1")).status == 204
    resp = await rum.post(beacon(view=True), client="192.0.2.1")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert resp.headers["Access-Control-Allow-Origin"] == SHOP
    # another client is not held back by the first
    assert (await rum.post(beacon(view=True), client="192.0.2.2")).status == 204
    # IPv6 clients share a bucket per /64
    for i in range(BURST):
        assert (await rum.post(beacon(view=True), client=f"2001:db8:1:2::{i + 1}")).status == 204
    assert (await rum.post(beacon(view=True), client="2001:db8:1:2:ffff::1")).status == 429
    assert (await rum.post(beacon(view=True), client="2001:db8:1:3::1")).status == 204


def test_malformed_http_is_logged_without_the_client_or_what_it_sent(tmp_path: Path) -> None:
    """aiohttp's own log of a bad request names the peer and quotes the request: not on this listener."""
    requests = [
        b"POST /rum/v1/beacon?private-query HTTP/1.1\r\nHost: x\r\nX-Big: " + b"private-header" * 700 + b"\r\n\r\n",
        b"GET /private-path\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /rum/v1/beacon HTTP/1.1\r\nHost: x\r\nOrigin: " + SHOP.encode() + b"\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nprivate-chunk\r\nprivate-body\r\n",
    ]
    with exporter_process(tmp_path, {"rum": rum_section()}, "--log.level", "debug") as (proc, port):
        for raw in requests:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(raw)
                assert conn.recv(64).startswith(b"HTTP/1.")  # answered (400), then closed
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(4096):
                    pass
        # each is logged (debug level), one way or the other
        wait_until(
            lambda: len(re.findall("malformed HTTP request refused|Error handling", proc.log())) >= 3, timeout=10
        )
    log = proc.log()
    assert "Error handling request" not in log
    assert "private" not in log
    # the only address in the log is the listeners' own, at start
    assert all("127.0.0.1" not in line for line in log.splitlines() if "listening" not in line), log


# --------------------------------------------------------------------------- trusted proxies


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        # 127.0.0.1 is not trusted: X-Forwarded-For is ignored, every beacon is the peer's
        with exporter_process(tmp_path / "untrusted", {"rum": rum_section(trusted_proxies=[])}) as (proc, port):
            rum = Rum(proc, port, http)
            statuses = [(await rum.post(beacon(view=True))).status for _ in range(BURST + 3)]
            assert statuses == [204] * BURST + [429] * 3
        # 127.0.0.1 and 10.0.0.0/8 trusted: the right-most address that is not a proxy is the client
        with exporter_process(tmp_path / "trusted", {"rum": rum_section()}) as (proc, port):
            rum = Rum(proc, port, http)
            # addresses the client wrote left of the real one change nothing
            chain = [f"{i}.{i}.{i}.{i}, 203.0.113.7, 10.1.1.1" for i in range(1, BURST + 4)]
            statuses = [(await rum.post(beacon(view=True), client=c)).status for c in chain]
            assert statuses == [204] * BURST + [429] * 3
            # the proxy's own address is never the key while a client address is on the list
            assert (await rum.post(beacon(view=True), client="203.0.113.8, 10.1.1.1")).status == 204
            # garbage where an address should be: the peer (the proxy) is the key, not the garbage
            for i in range(BURST):
                assert (await rum.post(beacon(view=True), client=f"junk-{i}")).status == 204
            assert (await rum.post(beacon(view=True), client="more-junk")).status == 429
            text = await rum.metrics()
            assert value(text, "rum_beacons_rejected_total", reason="rate_limited") == 4
            assert value(text, "rum_clients_limited") == 3  # 203.0.113.7, 203.0.113.8, 127.0.0.1


# --------------------------------------------------------------------------- reload


async def test_reload_changes_origins_and_routes_and_keeps_the_counts(rum: Rum) -> None:
    for page in ("/product/1", "/blog/x", "/nowhere"):
        assert (await rum.post(beacon(page, view=True))).status == 204
    assert (await rum.post(beacon(view=True), origin="https://new.example.com")).status == 403
    config = {"rum": rum_section(allowed_origins=["https://new.example.com"], routes=["/product/:id", "/new/*"])}
    write_config(rum.proc.config_path.parent, config)
    status, answer = rum.proc.post("/-/reload")
    assert status == 200, answer
    assert (await rum.post(beacon("/new/a", view=True), origin="https://new.example.com")).status == 204
    assert (await rum.post(beacon(view=True), origin=SHOP)).status == 403

    text = await rum.metrics()
    assert value(text, "rum_beacons_accepted_total") == 4
    assert value(text, "rum_beacons_rejected_total", reason="origin") == 2
    assert value(text, "rum_page_views_total", page="/product/:id", device="desktop") == 1
    assert value(text, "rum_page_views_total", page="/new/*", device="desktop") == 1
    assert value(text, "rum_page_views_total", page="other", device="desktop") == 1
    # the route the reload removed went with its series
    assert 'page="/blog/*"' not in text

    # a broken rum section is refused whole: the old one keeps serving
    write_config(rum.proc.config_path.parent, {"rum": rum_section(allowed_origins=["not an origin"])})
    status, answer = rum.proc.post("/-/reload")
    assert status == 500 and "rum.allowed_origins[0]" in answer
    assert (await rum.post(beacon(view=True), origin="https://new.example.com")).status == 204


# --------------------------------------------------------------------------- --check-config


def test_check_config_names_every_rum_key_and_never_prints_a_traceback(tmp_path: Path) -> None:
    section = {
        "listen_address": "nowhere",
        "allowed_origins": ["https://shop.example.com/path", "shop.example.com"],
        "routes": ["product/:id", "/ok", "/a/*/b"],
        "max_body_bytes": 0,
        "rate_limit": -1,
        "rate_burst": 0,
        "max_clients": 0,
        "trusted_proxies": ["10.0.0.0/33", "proxy.local"],
        "colour": "blue",
    }
    proc = check_config(write_config(tmp_path, {"rum": section}))
    assert proc.returncode == 1
    for key in (
        "rum.listen_address",
        "rum.allowed_origins[0]",
        "rum.allowed_origins[1]",
        "rum.routes[0]",
        "rum.routes[2]",
        "rum.max_body_bytes",
        "rum.rate_limit",
        "rum.rate_burst",
        "rum.max_clients",
        "rum.trusted_proxies[0]",
        "rum.trusted_proxies[1]",
        "rum.colour",
    ):
        assert key in proc.stderr, (key, proc.stderr)
    assert "rum.routes[1]" not in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

    # missing and wrongly typed
    for bad, key in (({}, "rum.allowed_origins"), ({"allowed_origins": SHOP}, "rum.allowed_origins"), ("on", "rum")):
        proc = check_config(write_config(tmp_path, {"rum": bad}))
        assert proc.returncode == 1 and key in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_check_config_refuses_a_rum_address_another_listener_has(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"rum": {"allowed_origins": [SHOP], "listen_address": "127.0.0.1:9999"}})
    proc = check_config(path, "--web.listen-address", ":9999")
    assert proc.returncode == 1
    assert "rum.listen_address: 127.0.0.1:9999 is --web.listen-address already" in proc.stderr
    proc = check_config(path, "--rum.listen-address", ":9847")  # the main listener's default
    assert proc.returncode == 1 and "--rum.listen-address: :9847 is --web.listen-address" in proc.stderr
    proc = check_config(path, "--rum.listen-address", "9847")
    assert proc.returncode == 1 and "invalid --rum.listen-address '9847'" in proc.stderr

    (tmp_path / "token").write_text("a-bridge-token-of-some-length\n")
    (tmp_path / "key").write_text("a-provider-key\n")
    bridge = {
        "token_file": "token",
        "listen_address": "127.0.0.1:9999",
        "provider": {"kind": "statuspage", "page_id": "page1", "api_key_file": "key"},
        "components": [{"name": "Cache", "id": "cmp1", "match": ['alertname="RedisDown"']}],
    }
    path = write_config(
        tmp_path, {"statuspage_bridge": bridge, "rum": {"allowed_origins": [SHOP], "listen_address": ":9999"}}
    )
    proc = check_config(path)
    assert proc.returncode == 1
    assert "rum.listen_address: :9999 is statuspage_bridge.listen_address already" in proc.stderr

    # a flag without a section is a mistake worth saying
    proc = check_config(write_config(tmp_path, {}), "--rum.listen-address", ":9848")
    assert proc.returncode == 1 and "no rum: section" in proc.stderr

    path = write_config(tmp_path, {"rum": {"allowed_origins": [SHOP, LOCAL], "routes": ["/"]}})
    proc = check_config(path)
    assert proc.returncode == 0, proc.stderr
    assert "real user monitoring for 2 origin(s)" in proc.stdout


# --------------------------------------------------------------------------- TLS, no basic auth


async def test_the_rum_listener_has_the_main_listeners_tls_and_headers_but_no_basic_auth(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
        "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n"
    )
    ctx = ssl.create_default_context(cafile=str(cert))
    rum_port = free_port()
    proc = ExporterProcess(
        tmp_path, {"rum": rum_section()}, "--web.config.file", str(web), "--rum.listen-address", f"127.0.0.1:{rum_port}"
    )
    proc.scheme = "https"
    try:
        proc.start(context=ctx)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
            url = f"https://127.0.0.1:{rum_port}/rum/v1/beacon"
            headers = {"Origin": SHOP, "Content-Type": "text/plain"}
            # browsers cannot send basic auth to a beacon endpoint: none is asked for
            async with http.post(url, data=json.dumps(beacon(view=True)), headers=headers) as resp:
                assert resp.status == 204
                assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
            # plain HTTP is not served on the RUM address
            with pytest.raises(aiohttp.ClientError):
                async with aiohttp.ClientSession() as plain, plain.post(url.replace("https", "http"), data="{}"):
                    pass
            # /metrics still asks for credentials
            async with http.get(f"https://127.0.0.1:{proc.port}/metrics") as resp:
                assert resp.status == 401
            auth = {"Authorization": "Basic " + base64.b64encode(b"prometheus:scrape-pass").decode()}
            async with http.get(f"https://127.0.0.1:{proc.port}/metrics?targets=none", headers=auth) as resp:
                text = await resp.text()
    finally:
        proc.stop()
    assert value(text, "rum_page_views_total", page="/", device="desktop") == 1
