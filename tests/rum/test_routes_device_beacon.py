"""The pure parts of RUM: route patterns, device classes, beacon parsing and the ``rum:`` section."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from exporter.rum.beacon import (
    MAX_METRICS,
    MAX_PAGE_LENGTH,
    METRICS,
    NAVIGATION_TYPES,
    REJECT_REASONS,
    Beacon,
    Measurement,
    Rejected,
    parse_beacon,
)
from exporter.rum.config import RumConfig
from exporter.rum.device import DEVICES, device_class
from exporter.rum.routes import MAX_ROUTES, OTHER, Routes, pattern_problem
from exporter.schema import Converter

# --------------------------------------------------------------------------- routes

ROUTES = Routes(["/", "/product/:id", "/product/:id/reviews", "/blog/*", "/docs/:section/*", "/About", "/caf%C3%A9"])


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/", "/"),
        ("/?utm_source=mail", "/"),
        ("/#top", "/"),
        ("/product/42", "/product/:id"),
        ("/product/42/", "/product/:id"),  # a trailing slash is insignificant
        ("/product/42?color=red#reviews", "/product/:id"),
        ("/product/42/reviews", "/product/:id/reviews"),
        ("/product/42/reviews/", "/product/:id/reviews"),
        ("/product", OTHER),  # :id needs a segment
        ("/product/", OTHER),
        ("/product//", OTHER),  # ... a non-empty one
        ("/product//reviews", OTHER),
        ("/product/42/43", OTHER),
        ("/blog", "/blog/*"),  # * matches zero segments too
        ("/blog/", "/blog/*"),
        ("/blog/2026/12/hello", "/blog/*"),
        ("/blogs", OTHER),
        ("/docs/api", "/docs/:section/*"),
        ("/docs/api/v1/index.html", "/docs/:section/*"),
        ("/docs", OTHER),
        ("/About", "/About"),
        ("/about", OTHER),  # case-sensitive
        ("/caf%C3%A9", "/caf%C3%A9"),  # percent escapes compared as written
        ("/caf%c3%a9", OTHER),
        ("/café", OTHER),
        ("//", OTHER),
        ("/nope", OTHER),
        ("", OTHER),  # never reaches match through a beacon; still no crash
        ("product/42", OTHER),
        ("?x=/", OTHER),
    ],
)
def test_a_path_maps_to_the_first_matching_pattern_or_other(path: str, page: str) -> None:
    assert ROUTES.match(path) == page


def test_the_first_pattern_in_config_order_wins() -> None:
    assert Routes(["/product/:id", "/product/new"]).match("/product/new") == "/product/:id"
    assert Routes(["/product/new", "/product/:id"]).match("/product/new") == "/product/new"
    catch_all = Routes(["/*", "/checkout"])
    assert catch_all.match("/") == "/*"
    assert catch_all.match("/checkout") == "/*"


def test_slash_is_only_the_root_and_no_routes_means_other() -> None:
    assert Routes(["/"]).match("/x") == OTHER
    assert Routes(["/blog/"]).match("/blog") == "/blog/"  # the label is the pattern as written
    assert Routes([]).match("/") == OTHER
    assert Routes([]).labels() == (OTHER,)
    assert ROUTES.labels()[-1] == OTHER and len(ROUTES.labels()) == len(ROUTES) + 1


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "must be a path pattern"),
        ("product/:id", "must start with /"),
        ("/a?b=1", "must not contain ? or #"),
        ("/a#b", "must not contain ? or #"),
        ("/a b", "spaces or control characters"),
        ("/a//b", "empty segment"),
        ("/*/x", "* may only be the last segment"),
        ("/blog*", "* must be a whole segment"),
        ("/a/:", "a parameter is : followed by a name"),
        ("/a/:1d", "a parameter is : followed by a name"),
        ("/a/:id-x", "a parameter is : followed by a name"),
        ("/" + "a" * 300, "longer than"),
    ],
)
def test_invalid_patterns_say_why(pattern: str, problem: str) -> None:
    found = pattern_problem(pattern)
    assert found is not None and problem in found
    with pytest.raises(ValueError, match="route"):
        Routes([pattern])


@pytest.mark.parametrize("pattern", ["/", "/*", "/a/b/", "/product/:id", "/docs/:section/*", "/a:b", "/%7Euser"])
def test_valid_patterns(pattern: str) -> None:
    assert pattern_problem(pattern) is None


def test_at_most_max_routes_patterns() -> None:
    assert len(Routes([f"/p{i}" for i in range(MAX_ROUTES)])) == MAX_ROUTES
    with pytest.raises(ValueError, match="at most"):
        Routes([f"/p{i}" for i in range(MAX_ROUTES + 1)])


def test_hostile_paths_map_to_a_bounded_set_of_labels() -> None:
    rng = random.Random(18)
    alphabet = "/ab:*?#%.-_~123"
    labels = ROUTES.labels()
    for _ in range(5000):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        assert ROUTES.match(path) in labels
    # a long path of many segments is one pass over its segments per pattern
    assert ROUTES.match("/" * MAX_PAGE_LENGTH) == OTHER
    assert ROUTES.match("/blog" + "/x" * 1000) == "/blog/*"


# --------------------------------------------------------------------------- devices

CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/18.5 Mobile/15E148 Safari/604.1"
)
IPHONE_CHROME = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " CriOS/137.0.7151.79 Mobile/15E148 Safari/604.1"
)
IPAD_SAFARI_MOBILE_UA = (
    "Mozilla/5.0 (iPad; CPU OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/18.5 Mobile/15E148 Safari/604.1"
)
# iPadOS 13+ Safari by default: the same User-Agent as Safari on a Mac
IPAD_SAFARI_DEFAULT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/18.5 Safari/605.1.15"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:139.0) Gecko/20100101 Firefox/139.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:139.0) Gecko/20100101 Firefox/139.0"
FIREFOX_ANDROID_PHONE = "Mozilla/5.0 (Android 15; Mobile; rv:139.0) Gecko/139.0 Firefox/139.0"
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 15; Tablet; rv:139.0) Gecko/139.0 Firefox/139.0"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0"
    " Safari/537.36 Edg/137.0.0.0"
)
EDGE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0"
    " Mobile Safari/537.36 EdgA/137.0.0.0"
)
SAMSUNG_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko)"
    " SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-X910) AppleWebKit/537.36 (KHTML, like Gecko)"
    " SamsungBrowser/28.0 Chrome/130.0.0.0 Safari/537.36"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/137.0.0.0 Safari/537.36"
)
# "Request desktop site" on Chrome for Android: a desktop Linux User-Agent and ?0
CHROME_ANDROID_DESKTOP_SITE = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36"
)
KINDLE_SILK = (
    "Mozilla/5.0 (Linux; Android 11; KFRASWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/137.3.1"
    " like Chrome/137.0.7151.89 Safari/537.36"
)
WINDOWS_PHONE = (
    "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063"
)
IE11_TABLET_PC = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; Tablet PC 2.0; rv:11.0) like Gecko"
)


@pytest.mark.parametrize(
    ("user_agent", "ch_mobile", "device"),
    [
        (CHROME_ANDROID_PHONE, "?1", "mobile"),
        (CHROME_ANDROID_PHONE, None, "mobile"),
        (CHROME_ANDROID_TABLET, "?0", "tablet"),
        (CHROME_ANDROID_TABLET, None, "tablet"),
        (IPHONE_SAFARI, None, "mobile"),
        (IPHONE_CHROME, None, "mobile"),
        (IPAD_SAFARI_MOBILE_UA, None, "tablet"),
        (IPAD_SAFARI_DEFAULT, None, "desktop"),  # indistinguishable from a Mac
        (FIREFOX_WINDOWS, None, "desktop"),
        (FIREFOX_LINUX, None, "desktop"),
        (FIREFOX_ANDROID_PHONE, None, "mobile"),
        (FIREFOX_ANDROID_TABLET, None, "tablet"),
        (EDGE_WINDOWS, "?0", "desktop"),
        (EDGE_ANDROID, "?1", "mobile"),
        (SAMSUNG_PHONE, "?1", "mobile"),
        (SAMSUNG_TABLET, "?0", "tablet"),
        (CHROME_MAC, "?0", "desktop"),
        (CHROME_MAC, "?1", "mobile"),  # the client hint wins (DevTools device emulation sends it)
        (CHROME_ANDROID_DESKTOP_SITE, "?0", "desktop"),
        (KINDLE_SILK, None, "tablet"),
        (WINDOWS_PHONE, None, "mobile"),
        (IE11_TABLET_PC, None, "desktop"),  # "Tablet PC" is a Windows desktop feature
        ("curl/8.5.0", None, "desktop"),
        (None, None, "unknown"),
        ("", None, "unknown"),
        ("   ", "?0", "unknown"),
        (None, "?1", "mobile"),
        (CHROME_ANDROID_TABLET, "garbage", "tablet"),
    ],
)
def test_device_class(user_agent: str | None, ch_mobile: str | None, device: str) -> None:
    assert device_class(user_agent, ch_mobile) == device


def test_device_class_is_bounded_and_deterministic() -> None:
    rng = random.Random(7)
    words = ["Mozilla/5.0", "iPad", "iPhone", "Android", "Mobile", "Tablet", "Silk/1", "X11", "(", ";", "\x00", "é"]
    for _ in range(2000):
        ua = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 12)))
        hint = rng.choice([None, "?1", "?0", "", "1"])
        first = device_class(ua, hint)
        assert first in DEVICES and device_class(ua, hint) == first


# --------------------------------------------------------------------------- beacons


def body(**fields: Any) -> bytes:
    beacon: dict[str, Any] = {"v": 1, "page": "/product/42"}
    beacon.update(fields)
    return json.dumps(beacon).encode()


def reason(raw: bytes) -> str:
    with pytest.raises(Rejected) as caught:
        parse_beacon(raw)
    assert caught.value.reason in REJECT_REASONS
    return caught.value.reason


def test_a_full_beacon() -> None:
    beacon = parse_beacon(
        body(
            view=True,
            metrics=[
                {"name": "LCP", "value": 2950.4, "navigation_type": "navigate"},
                {"name": "INP", "value": 200, "navigation_type": "back-forward-cache"},
                {"name": "CLS", "value": 0.1, "navigation_type": "reload"},
                {"name": "FCP", "value": 1800},
                {"name": "TTFB", "value": 0, "navigation_type": "prerender"},
                {"name": "load", "value": 3100, "navigation_type": "weird-new-type"},
            ],
            errors={"error": 1, "unhandledrejection": 0},
            api={"4xx": 0, "5xx": 1, "network": 2},
        )
    )
    assert beacon == Beacon(
        path="/product/42",
        view=True,
        measurements=(
            Measurement("LCP", 2.9504, "navigate"),
            Measurement("INP", 0.2, "back-forward-cache"),
            Measurement("CLS", 0.1, "reload"),
            Measurement("FCP", 1.8, "navigate"),  # missing: navigate
            Measurement("TTFB", 0.0, "prerender"),
            Measurement("load", 3.1, "other"),  # unknown strings: other
        ),
        errors={"error": 1, "unhandledrejection": 0},
        api={"4xx": 0, "5xx": 1, "network": 2},
    )


def test_a_minimal_beacon_and_optional_keys() -> None:
    assert parse_beacon(b'{"v":1,"page":"/"}') == Beacon(path="/", view=False)
    assert parse_beacon(body(errors={"error": 3})).errors == {"error": 3}
    beacon = parse_beacon(body(page="/a?q=1#x", metrics=[]))
    assert beacon.path == "/a?q=1#x" and beacon.measurements == ()


def test_every_navigation_type_is_kept() -> None:
    for navigation in NAVIGATION_TYPES:
        beacon = parse_beacon(body(metrics=[{"name": "LCP", "value": 1, "navigation_type": navigation}]))
        assert beacon.measurements[0].navigation_type == navigation


@pytest.mark.parametrize(("name", "spec"), list(METRICS.items()))
def test_each_metrics_bounds_are_inclusive(name: str, spec: Any) -> None:
    top = parse_beacon(body(metrics=[{"name": name, "value": spec.max}])).measurements[0]
    assert top.value == spec.max / spec.scale
    assert parse_beacon(body(metrics=[{"name": name, "value": 0}])).measurements[0].value == 0
    assert reason(body(metrics=[{"name": name, "value": spec.max * 1.0001}])) == "invalid_value"
    assert reason(body(metrics=[{"name": name, "value": -0.001}])) == "invalid_value"


def test_seconds_and_unitless_cls() -> None:
    measurements = parse_beacon(
        body(metrics=[{"name": "LCP", "value": 2500}, {"name": "CLS", "value": 0.25}, {"name": "INP", "value": 500}])
    ).measurements
    assert [m.value for m in measurements] == [2.5, 0.25, 0.5]  # exactly the thresholds


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":NaN}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":Infinity}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"CLS","value":-Infinity}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1e999}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":-1}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"INP","value":60001}]}', "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1' + b"0" * 400 + b"}]}", "invalid_value"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1' + b"0" * 5000 + b"}]}", "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":true}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":"2500"}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":null}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP"}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"FID","value":10}]}', "unknown_metric"),
        (b'{"v":1,"page":"/","metrics":[{"name":"lcp","value":10}]}', "unknown_metric"),
        (b'{"v":1,"page":"/","metrics":[{"name":7,"value":10}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"value":10}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1,"id":"v4-1"}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1,"navigation_type":1}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1,"navigation_type":null}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1},{"name":"LCP","value":2}]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":[["LCP",1]]}', "malformed"),
        (b'{"v":1,"page":"/","metrics":{"LCP":1}}', "malformed"),
        # the first problem decides
        (b'{"v":1,"page":"/","metrics":[{"name":"FID","value":1},{"name":"LCP","value":-1}]}', "unknown_metric"),
        (b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":-1},{"name":"FID","value":1}]}', "invalid_value"),
        (b'{"v":1,"page":"/","errors":{"error":1001}}', "invalid_value"),
        (b'{"v":1,"page":"/","errors":{"error":-1}}', "invalid_value"),
        (b'{"v":1,"page":"/","errors":{"error":1.0}}', "malformed"),
        (b'{"v":1,"page":"/","errors":{"error":true}}', "malformed"),
        (b'{"v":1,"page":"/","errors":{"TypeError":1}}', "malformed"),
        (b'{"v":1,"page":"/","errors":[1]}', "malformed"),
        (b'{"v":1,"page":"/","api":{"3xx":1}}', "malformed"),
        (b'{"v":1,"page":"/","api":{"5xx":NaN}}', "invalid_value"),
        (b'{"v":1,"page":"/","api":{"network":1001}}', "invalid_value"),
        (b'{"v":1,"page":"/","view":1}', "malformed"),
        (b'{"v":1,"page":"/","view":null}', "malformed"),
        (b'{"v":1,"page":"/","user":"alice"}', "malformed"),
        (b'{"v":2,"page":"/"}', "malformed"),
        (b'{"v":true,"page":"/"}', "malformed"),
        (b'{"v":1.0,"page":"/"}', "malformed"),
        (b'{"v":"1","page":"/"}', "malformed"),
        (b'{"page":"/"}', "malformed"),
        (b'{"v":1}', "malformed"),
        (b'{"v":1,"page":""}', "malformed"),
        (b'{"v":1,"page":"product/42"}', "malformed"),
        (b'{"v":1,"page":"https://shop.example.com/"}', "malformed"),
        (b'{"v":1,"page":["/"]}', "malformed"),
        (b"", "malformed"),
        (b"null", "malformed"),
        (b"[]", "malformed"),
        (b'"/"', "malformed"),
        (b"{", "malformed"),
        (b'{"v":1,"page":"/"} {}', "malformed"),
        (b'\xef\xbb\xbf{"v":1,"page":"/"}', "malformed"),  # a BOM is not what sendBeacon sends
        (b'{"v":1,"page":"/\xff"}', "malformed"),  # not UTF-8
        (b'{"v":1,"page":"/\xed\xa0\x80"}', "malformed"),  # a UTF-8-encoded surrogate
        (b"[" * 100_000 + b"]" * 100_000, "malformed"),  # deeper than the interpreter's recursion limit
        (b'{"v":1,"page":"/","metrics":' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed"),
    ],
)
def test_rejections(raw: bytes, expected: str) -> None:
    assert reason(raw) == expected


def test_page_length_and_metric_count_limits() -> None:
    assert parse_beacon(body(page="/" + "a" * (MAX_PAGE_LENGTH - 1))).path.startswith("/a")
    assert reason(body(page="/" + "a" * MAX_PAGE_LENGTH)) == "malformed"
    names = list(METRICS)
    many = [{"name": names[i % len(names)], "value": 1} for i in range(MAX_METRICS + 1)]
    assert reason(body(metrics=many)) == "malformed"


def test_a_rejection_never_quotes_the_beacon() -> None:
    secret = "alice@example.com"
    for raw in (
        body(page=secret),
        body(metrics=[{"name": secret, "value": 1}]),
        body(errors={secret: 1}),
        body(**{secret: 1}),
        body(metrics=[{"name": "LCP", "value": secret}]),
    ):
        with pytest.raises(Rejected) as caught:
            parse_beacon(raw)
        assert secret not in str(caught.value) and secret not in caught.value.detail


def test_rejected_only_takes_the_six_reasons() -> None:
    assert len(REJECT_REASONS) == 6
    with pytest.raises(ValueError, match="unknown rejection reason"):
        Rejected("something_else")


def test_random_bodies_are_a_beacon_or_a_rejection() -> None:
    """Fuzz: mutate a valid beacon byte by byte; nothing but Rejected ever escapes."""
    rng = random.Random(18)
    valid = body(
        view=True,
        metrics=[{"name": "LCP", "value": 2950.4}, {"name": "CLS", "value": 0.01, "navigation_type": "reload"}],
        errors={"error": 1},
        api={"5xx": 1},
    )
    reasons: set[str] = set()
    accepted = 0
    for _ in range(5000):
        raw = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(raw))
            action = rng.randrange(3)
            if action == 0:
                raw[pos] = rng.randrange(256)
            elif action == 1:
                del raw[pos]
            else:
                raw.insert(pos, rng.choice(b'{}[]",:-.0123456789eEtnNI'))
        try:
            beacon = parse_beacon(bytes(raw))
        except Rejected as exc:
            reasons.add(exc.reason)
            continue
        accepted += 1
        assert beacon.path.startswith("/") and len(beacon.measurements) <= MAX_METRICS
        for m in beacon.measurements:
            assert m.name in METRICS and math.isfinite(m.value) and m.value >= 0
    assert {"malformed", "unknown_metric"} <= reasons and accepted > 0


# --------------------------------------------------------------------------- the rum: section


def convert(value: Any) -> tuple[RumConfig | None, list[str]]:
    conv = Converter(Path("."))
    config = conv.convert_dataclass(RumConfig, value, "rum")
    return config, conv.problems


def test_a_section_with_its_defaults() -> None:
    config, problems = convert({"allowed_origins": ["https://shop.example.com"]})
    assert problems == []
    assert config == RumConfig(
        listen_address=":9848",
        allowed_origins=("https://shop.example.com",),
        routes=(),
        max_body_bytes=16384,
        rate_limit=1.0,
        rate_burst=20,
        max_clients=65536,
        trusted_proxies=(),
    )


def test_a_full_section() -> None:
    config, problems = convert(
        {
            "listen_address": "127.0.0.1:9900",
            "allowed_origins": ["https://shop.example.com", "http://localhost:8080", "https://[::1]:8443"],
            "routes": ["/", "/product/:id", "/blog/*"],
            "max_body_bytes": 4096,
            "rate_limit": 0.5,
            "rate_burst": 5,
            "max_clients": 1000,
            "trusted_proxies": ["10.0.0.0/8", "192.168.1.7", "2001:DB8::/32"],
        }
    )
    assert problems == [] and config is not None
    assert config.routes == ("/", "/product/:id", "/blog/*")
    assert [str(n) for n in config.proxy_networks()] == ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"allowed_origins": []}, "rum.allowed_origins: needs at least one origin"),
        ({"allowed_origins": "https://shop.example.com"}, "rum.allowed_origins: expected a list"),
        ({"allowed_origins": ["shop.example.com"]}, "rum.allowed_origins[0]: must be an origin such as"),
        ({"allowed_origins": ["*"]}, "rum.allowed_origins[0]: must be an origin such as"),
        ({"allowed_origins": ["ftp://shop.example.com"]}, "rum.allowed_origins[0]: must be an origin such as"),
        ({"allowed_origins": ["https://shop.example.com/"]}, "write 'https://shop.example.com'"),
        ({"allowed_origins": ["https://shop.example.com/app"]}, "an origin has no path"),
        ({"allowed_origins": ["https://Shop.example.com"]}, "write 'https://shop.example.com'"),
        ({"allowed_origins": ["https://shop.example.com:443"]}, "leave out the default port"),
        ({"allowed_origins": ["https://shop.example.com:99999"]}, "rum.allowed_origins[0]: invalid"),
        ({"allowed_origins": ["https://u:p@shop.example.com"]}, "must not contain credentials"),
        ({"allowed_origins": ["https://"]}, "missing host"),
        (
            {"allowed_origins": ["https://a.example", "https://a.example"]},
            "rum.allowed_origins[1]: duplicate of allowed_origins[0]",
        ),
        ({"routes": ["product/:id"]}, "rum.routes[0]: must start with /"),
        ({"routes": ["/", "/blog/*/x"]}, "rum.routes[1]: * may only be the last segment"),
        ({"routes": ["/blog", "/blog/"]}, "rum.routes[1]: matches the same paths as routes[0]"),
        ({"routes": [f"/p{i}" for i in range(MAX_ROUTES + 1)]}, "rum.routes: at most 200 patterns"),
        ({"routes": [1]}, "rum.routes[0]: expected a string"),
        ({"listen_address": "9848"}, "rum.listen_address: expected HOST:PORT"),
        ({"listen_address": ":0"}, "rum.listen_address: expected HOST:PORT"),
        ({"listen_address": ":70000"}, "rum.listen_address: expected HOST:PORT"),
        ({"max_body_bytes": 0}, "rum.max_body_bytes: must be between 1 and"),
        ({"max_body_bytes": 2**30}, "rum.max_body_bytes: must be between 1 and"),
        ({"rate_limit": 0}, "rum.rate_limit: must be a number of beacons a second greater than 0"),
        ({"rate_limit": -1.5}, "rum.rate_limit: must be a number"),
        ({"rate_limit": float("inf")}, "rum.rate_limit: must be a number"),
        ({"rate_limit": "1/s"}, "rum.rate_limit: expected a number"),
        ({"rate_burst": 0}, "rum.rate_burst: must be between 1 and"),
        ({"rate_burst": 2.5}, "rum.rate_burst: expected an integer"),
        ({"max_clients": 0}, "rum.max_clients: must be between 1 and"),
        ({"max_clients": 10**9}, "rum.max_clients: must be between 1 and"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "rum.trusted_proxies[0]: expected an address or CIDR"),
        ({"trusted_proxies": ["proxy.internal"]}, "rum.trusted_proxies[0]: expected an address or CIDR"),
        ({"trusted_proxies": ["10.0.0.1/8"]}, "rum.trusted_proxies[0]: has host bits set: did you mean '10.0.0.0/8'?"),
        ({"allowed_origin": ["https://a.example"]}, "rum.allowed_origin: unknown key"),
    ],
)
def test_section_problems_name_their_key(change: dict[str, Any], expected: str) -> None:
    value: dict[str, Any] = {"allowed_origins": ["https://shop.example.com"]}
    value.update(change)
    _, problems = convert(value)
    assert any(expected in p for p in problems), problems


def test_allowed_origins_is_required_and_every_problem_is_reported_at_once() -> None:
    _, problems = convert({"routes": ["x"], "rate_burst": 0})
    assert any(p.startswith("rum.allowed_origins: needs at least one origin") for p in problems)
    assert any(p.startswith("rum.routes[0]:") for p in problems)
    assert any(p.startswith("rum.rate_burst:") for p in problems)


def test_the_section_module_stays_light() -> None:
    """The loader imports it for every config: only the schema, routes and the standard library."""
    import ast
    import sys

    import exporter.rum.config as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"}
    assert outside <= {"exporter.schema", "exporter.rum.routes"}
