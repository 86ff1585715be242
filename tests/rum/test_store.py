"""RumStore: bucket boundaries, series created on first observation, bounded keys, promtool-clean."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from exporter.exposition import render_text
from exporter.rum.beacon import (
    METRICS,
    NAVIGATION_TYPES,
    REJECT_REASONS,
    Beacon,
    Measurement,
    Rejected,
    navigation_labels,
    parse_beacon,
)
from exporter.rum.device import DEVICES, device_class
from exporter.rum.routes import OTHER, Routes
from exporter.rum.store import BUCKETS, RumStore
from tests.helpers import promtool_check, samples, value, values

# The table of the design, written out again: the store must say exactly this.
EXPECTED_BUCKETS = {
    "rum_lcp_seconds": [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20],
    "rum_inp_seconds": [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 5],
    "rum_cls": [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1],
    "rum_fcp_seconds": [0.5, 1, 1.4, 1.8, 2.4, 3, 4, 6, 10],
    "rum_ttfb_seconds": [0.1, 0.2, 0.4, 0.6, 0.8, 1.2, 1.8, 3, 6],
    "rum_page_load_seconds": [0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60],
}
# good / poor thresholds (web.dev), in the beacon's unit (ms; CLS as is)
THRESHOLDS = {"LCP": (2500, 4000), "INP": (200, 500), "CLS": (0.1, 0.25), "FCP": (1800, 3000), "TTFB": (800, 1800)}

ROUTES = Routes(["/", "/product/:id", "/blog/*"])
PHONE = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Mobile Safari/537.36"
)


def text_of(store: RumStore, limiter_clients: int = 0) -> str:
    return render_text([(None, store.families(limiter_clients))]).decode()


def beacon(**fields: Any) -> Beacon:
    raw: dict[str, Any] = {"v": 1, "page": "/product/42"}
    raw.update(fields)
    return parse_beacon(json.dumps(raw).encode())


def observe(store: RumStore, name: str, value_in_beacon_unit: float, page: str = "/", device: str = "desktop") -> None:
    store.record(beacon(metrics=[{"name": name, "value": value_in_beacon_unit}]), page, device)


def test_an_empty_store_has_only_the_beacon_counters() -> None:
    text = text_of(RumStore())
    assert value(text, "rum_beacons_accepted_total") == 0
    for reason in REJECT_REASONS:
        assert value(text, "rum_beacons_rejected_total", reason=reason) == 0
    assert value(text, "rum_clients_limited") == 0
    names = {s.name for s in samples(text)}
    assert names == {"rum_beacons_accepted_total", "rum_beacons_rejected_total", "rum_clients_limited"}
    assert promtool_check(text) == ""


def test_buckets_are_the_designs_table() -> None:
    assert {spec.family for spec in METRICS.values()} == set(EXPECTED_BUCKETS)
    store = RumStore()
    for name in METRICS:
        observe(store, name, 0)
    text = text_of(store)
    for family, bounds in EXPECTED_BUCKETS.items():
        les = [s.labels["le"] for s in values(text, f"{family}_bucket")]
        assert les == [*(repr(float(b)) for b in bounds), "+Inf"], family
        assert [float(le) for le in les[:-1]] == bounds
    for name, spec in METRICS.items():
        assert list(BUCKETS[name]) == EXPECTED_BUCKETS[spec.family]


@pytest.mark.parametrize(("name", "thresholds"), list(THRESHOLDS.items()))
def test_good_and_poor_thresholds_are_bracketed_exactly(name: str, thresholds: tuple[float, float]) -> None:
    """A value equal to a threshold is in its bucket (le means less or equal); a hair above is not."""
    family = METRICS[name].family
    scale = METRICS[name].scale
    for threshold in thresholds:
        le = repr(threshold / scale)
        at, above = RumStore(), RumStore()
        observe(at, name, threshold)
        observe(above, name, threshold + (0.0001 if name == "CLS" else 0.1))
        assert value(text_of(at), f"{family}_bucket", le=le) == 1
        assert value(text_of(above), f"{family}_bucket", le=le) == 0
        assert value(text_of(above), f"{family}_bucket", le="+Inf") == 1


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    store = RumStore()
    for ms in (300, 2500, 2600, 4100, 25000, 600000):
        observe(store, "LCP", ms, page="/product/:id", device="mobile")
    text = text_of(store)
    labels = {"page": "/product/:id", "device": "mobile", "navigation_type": "navigate"}
    got = {s.labels["le"]: s.value for s in values(text, "rum_lcp_seconds_bucket", **labels)}
    assert got == {
        "0.5": 1, "1.0": 1, "1.5": 1, "2.0": 1, "2.5": 2, "3.0": 3, "4.0": 3,
        "5.0": 4, "7.5": 4, "10.0": 4, "20.0": 4, "+Inf": 6,
    }  # fmt: skip
    assert value(text, "rum_lcp_seconds_count", **labels) == 6
    assert value(text, "rum_lcp_seconds_sum", **labels) == pytest.approx(0.3 + 2.5 + 2.6 + 4.1 + 25 + 600)
    assert promtool_check(text) == ""


def test_cls_is_unitless_and_inp_in_seconds() -> None:
    store = RumStore()
    observe(store, "CLS", 0.07)
    observe(store, "INP", 120)
    text = text_of(store)
    assert value(text, "rum_cls_sum") == pytest.approx(0.07)
    assert value(text, "rum_cls_bucket", le="0.05") == 0 and value(text, "rum_cls_bucket", le="0.1") == 1
    assert value(text, "rum_inp_seconds_sum") == pytest.approx(0.12)
    assert (
        value(text, "rum_inp_seconds_bucket", le="0.1") == 0 and value(text, "rum_inp_seconds_bucket", le="0.15") == 1
    )


def test_series_appear_on_first_observation_only() -> None:
    store = RumStore()
    store.record(beacon(metrics=[{"name": "LCP", "value": 1200, "navigation_type": "reload"}]), "/blog/*", "tablet")
    text = text_of(store)
    assert {s.labels["page"] for s in values(text, "rum_lcp_seconds_count")} == {"/blog/*"}
    assert value(text, "rum_lcp_seconds_count", navigation_type="reload", device="tablet") == 1
    assert values(text, "rum_lcp_seconds_count", navigation_type="navigate") == []
    for name in ("INP", "CLS", "FCP", "TTFB", "load"):
        assert values(text, f"{METRICS[name].family}_count") == [], name
    assert values(text, "rum_page_views_total") == []  # view was not true
    assert values(text, "rum_js_errors_total") == [] and values(text, "rum_api_failures_total") == []
    assert value(text, "rum_beacons_accepted_total") == 1


def test_views_errors_and_api_failures() -> None:
    store = RumStore()
    store.record(beacon(view=True, errors={"error": 2}, api={"5xx": 1, "network": 0}), "/product/:id", "mobile")
    store.record(beacon(view=True, errors={"error": 1, "unhandledrejection": 3}), "/product/:id", "mobile")
    store.record(beacon(view=True), "/product/:id", "desktop")
    store.record(beacon(view=False, api={"4xx": 4}), OTHER, "unknown")
    text = text_of(store)
    assert value(text, "rum_page_views_total", page="/product/:id", device="mobile") == 2
    assert value(text, "rum_page_views_total", page="/product/:id", device="desktop") == 1
    assert values(text, "rum_page_views_total", page=OTHER) == []
    assert value(text, "rum_js_errors_total", page="/product/:id", kind="error") == 3
    assert value(text, "rum_js_errors_total", page="/product/:id", kind="unhandledrejection") == 3
    assert value(text, "rum_api_failures_total", page="/product/:id", status_class="5xx") == 1
    # a class the beacon named with 0 starts its counter at 0: the first failure is then an increase
    assert value(text, "rum_api_failures_total", page="/product/:id", status_class="network") == 0
    assert value(text, "rum_api_failures_total", page=OTHER, status_class="4xx") == 4
    assert values(text, "rum_api_failures_total", status_class="4xx", page="/product/:id") == []
    assert value(text, "rum_beacons_accepted_total") == 4
    assert promtool_check(text) == ""


def test_rejections_by_reason_and_the_limiter_gauge() -> None:
    store = RumStore()
    for i, reason in enumerate(REJECT_REASONS):
        for _ in range(i + 1):
            store.reject(reason)
    text = text_of(store, limiter_clients=17)
    assert [value(text, "rum_beacons_rejected_total", reason=r) for r in REJECT_REASONS] == [1, 2, 3, 4, 5, 6]
    assert value(text, "rum_beacons_accepted_total") == 0
    assert value(text, "rum_clients_limited") == 17
    with pytest.raises(ValueError, match="unknown rejection reason"):
        store.reject("bogus")


def test_the_store_refuses_labels_outside_the_bounded_sets() -> None:
    store = RumStore()
    with pytest.raises(ValueError, match="device"):
        store.record(beacon(), "/", "smart-fridge")
    forged = Beacon(path="/", view=True, measurements=(Measurement("LCP", 1.0, "teleport"),))
    with pytest.raises(ValueError, match="bounded"):
        store.record(forged, "/", "mobile")
    assert store.series_count() == 0
    assert value(text_of(store), "rum_beacons_accepted_total") == 0


def test_a_full_store_passes_promtool_with_hostile_looking_pages() -> None:
    routes = Routes(["/", '/q"uote/:id', "/back\\slash/*", "/ünïcode"])
    store = RumStore()
    pages = [*routes.labels()]
    for page in pages:
        for device in DEVICES:
            for navigation in navigation_labels():
                metrics = [{"name": n, "value": 1, "navigation_type": navigation} for n in METRICS]
                store.record(beacon(view=True, metrics=metrics, errors={"error": 1}, api={"5xx": 1}), page, device)
    store.reject("origin")
    text = text_of(store, limiter_clients=3)
    assert promtool_check(text) == ""
    assert {s.labels["page"] for s in values(text, "rum_lcp_seconds_count")} == set(pages)
    openmetrics = render_text([(None, store.families(3))], openmetrics=True).decode()
    assert openmetrics.endswith("# EOF\n") and "rum_page_views_total" in openmetrics


def test_ten_thousand_random_pages_stay_within_the_routes() -> None:
    """Hostile beacons (random pages, User-Agents, navigation types) add no series past the bounds."""
    rng = random.Random(18)
    store = RumStore()
    segments = ["product", "blog", "42", "%2F", "..", "", ":id", "*", "a" * 50, "x?y", "#f"]
    agents = [PHONE, None, "", "curl/8", "iPad", "Android", "\x00" * 10]
    pages: set[str] = set()
    for i in range(10_000):
        path = "/" + "/".join(rng.choice(segments) for _ in range(rng.randrange(0, 6)))
        if rng.random() < 0.3:
            path += f"/{rng.getrandbits(64):x}?session={i}"
        navigation = rng.choice([*NAVIGATION_TYPES, f"nav-{i}", ""])
        parsed = beacon(
            page=path,
            view=True,
            metrics=[{"name": "LCP", "value": rng.uniform(0, 600000), "navigation_type": navigation}],
            errors={"error": rng.randrange(3)},
            api={"network": 1},
        )
        page = ROUTES.match(parsed.path)
        pages.add(page)
        store.record(parsed, page, device_class(rng.choice(agents), rng.choice([None, "?1", "?0", "?x"])))
    assert len(pages) <= len(ROUTES) + 1
    assert pages <= set(ROUTES.labels())
    text = text_of(store)
    assert value(text, "rum_beacons_accepted_total") == 10_000
    histogram_keys = {
        (s.labels["page"], s.labels["device"], s.labels["navigation_type"])
        for s in values(text, "rum_lcp_seconds_count")
    }
    bound = len(ROUTES.labels()) * len(DEVICES) * len(navigation_labels())
    assert len(histogram_keys) <= bound
    assert store.series_count() <= bound + len(ROUTES.labels()) * (len(DEVICES) + 2 + 3)
    assert sum(s.value for s in values(text, "rum_lcp_seconds_count")) == 10_000
    for s in samples(text):
        assert "session" not in str(s.labels) and "?" not in str(s.labels)


def test_keep_pages_drops_the_series_of_removed_routes() -> None:
    store = RumStore()
    store.record(beacon(view=True, metrics=[{"name": "LCP", "value": 1}], errors={"error": 1}), "/old", "mobile")
    store.record(beacon(view=True, metrics=[{"name": "LCP", "value": 1}]), "/kept", "mobile")
    store.reject("malformed")
    store.keep_pages(["/kept", OTHER])
    text = text_of(store)
    assert {s.labels["page"] for s in samples(text) if "page" in s.labels} == {"/kept"}
    assert value(text, "rum_beacons_accepted_total") == 2  # the totals stay
    assert value(text, "rum_beacons_rejected_total", reason="malformed") == 1


def test_families_are_built_fresh_on_each_call() -> None:
    store = RumStore()
    observe(store, "TTFB", 100)
    before = text_of(store)
    first = store.families()
    observe(store, "TTFB", 100)
    assert render_text([(None, first)]).decode() == before
    assert value(text_of(store), "rum_ttfb_seconds_count") == 2


def test_parse_then_record_keeps_the_first_rejection_out_of_the_store() -> None:
    store = RumStore()
    try:
        parse_beacon(b'{"v":1,"page":"/","metrics":[{"name":"LCP","value":1},{"name":"FID","value":1}]}')
    except Rejected as exc:
        store.reject(exc.reason)
    text = text_of(store)
    assert value(text, "rum_beacons_rejected_total", reason="unknown_metric") == 1
    assert values(text, "rum_lcp_seconds_count") == []  # a beacon is rejected whole
