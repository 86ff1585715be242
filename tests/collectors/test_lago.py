"""Lago collector against a fake lago-api serving the fixture bodies."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exporter.collectors.lago import INVOICE_STATUSES, PAYMENT_STATUSES, SUBSCRIPTION_STATUSES
from tests.fakes.checks import assert_clean_error, assert_no_secret, capture, logged
from tests.fakes.common import Fault, fixture
from tests.fakes.lago import FakeLago, records
from tests.helpers import exporter, promtool_check, scrape, value

KEY = "lago-key-0b5e1a7c9d3f4e2a"


@pytest.fixture
async def lago() -> AsyncIterator[FakeLago]:
    async with FakeLago(KEY).running() as fake:
        yield fake  # type: ignore[misc]


def config(*targets: tuple[str, str, str], timeout: str = "5s", refresh_interval: str = "0s") -> dict[str, Any]:
    return {
        "lago": [
            {"name": n, "url": u, "api_key": k, "refresh_interval": refresh_interval, "scrape_timeout": timeout}
            for n, u, k in targets
        ]
    }


async def test_happy_path_counts_come_from_the_records(lago: FakeLago) -> None:
    data = records()
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "lago_up", target="billing") == 1
    assert value(text, "lago_api_authorized", target="billing") == 1
    assert value(text, "lago_info", version=fixture("lago", "health_ok.json")["version"]) == 1
    combos = Counter((i["status"], i["payment_status"]) for i in data["invoices"])
    for s in INVOICE_STATUSES:
        for p in PAYMENT_STATUSES:
            assert value(text, "lago_invoices", status=s, payment_status=p) == combos[(s, p)], (s, p)
    assert combos[("finalized", "failed")] > 0  # the fixture data exercises a non-zero combination
    overdue = sum(1 for i in data["invoices"] if i["payment_overdue"])
    assert value(text, "lago_invoices_payment_overdue") == overdue
    subs = Counter(s["status"] for s in data["subscriptions"])
    for s in SUBSCRIPTION_STATUSES:
        assert value(text, "lago_subscriptions", status=s) == subs[s], s
    assert subs["terminated"] == 1  # proves status[] is passed explicitly (the default is active only)
    assert value(text, "lago_customers") == len(data["customers"])
    reqs = Counter(r["payment_status"] for r in data["payment_requests"])
    for p in PAYMENT_STATUSES:
        assert value(text, "lago_payment_requests", payment_status=p) == reqs[p]
    balances: Counter[str] = Counter()
    for row in fixture("lago", "analytics_overdue_balance.json")["overdue_balances"]:
        balances[row["currency"]] += row["amount_cents"]
    for currency, cents in balances.items():
        assert value(text, "lago_overdue_balance_cents", currency=currency) == cents
    assert value(text, "stack_exporter_collector_success", collector="lago", target="billing") == 1
    assert value(text, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="billing") == 0
    assert promtool_check(text) == ""
    # one request per count: health + 15 invoice combos + overdue + 4 subs + customers + 3 payment requests + analytics
    assert sum(lago.calls.values()) == 1 + 15 + 1 + 4 + 1 + 3 + 1


async def test_wrong_key_is_up_but_unauthorized(lago: FakeLago, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    wrong = "lago-wrong-key-77c1d0e4aa"
    async with exporter(config(("billing", lago.url, wrong))) as client:
        text = await scrape(client)
    assert value(text, "lago_up", target="billing") == 1
    assert value(text, "lago_api_authorized", target="billing") == 0
    assert value(text, "stack_exporter_collector_success", collector="lago", target="billing") == 0
    assert value(text, "lago_invoices_payment_overdue") is None
    assert_clean_error(caplog, "Lago", "unauthorized", "401")
    assert_no_secret(wrong, text, logged(caplog))


async def test_service_down_is_lago_up_0(lago: FakeLago, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    lago.healthy = False
    async with exporter(config(("billing", lago.url, KEY), ("gone", "http://127.0.0.1:9", KEY))) as client:
        text = await scrape(client)
    assert value(text, "lago_up", target="billing") == 0
    assert value(text, "lago_up", target="gone") == 0
    assert value(text, "lago_api_authorized", target="billing") is None
    err = assert_clean_error(caplog, "Lago")
    assert "500" in "\n".join(logged(caplog).splitlines()) or "connect" in err
    assert lago.calls_to("/api/v1") == 0  # an unhealthy Lago is not asked for counts


async def test_rate_limit_backs_off_and_serves_last_good(lago: FakeLago, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with exporter(config(("billing", lago.url, KEY))) as client:
        first = await scrape(client)
        customers = value(first, "lago_customers")
        assert customers is not None
        lago.faults["/api/v1/customers"] = Fault("ratelimit", seconds=30)
        before = sum(lago.calls.values())
        await asyncio.sleep(0.5)
        limited = await scrape(client)
        # the data served is the first scrape's, and its age says so
        age = value(limited, "stack_exporter_collector_cache_age_seconds", target="billing")
        assert age is not None and age >= 0.5
        after_429 = sum(lago.calls.values())
        assert lago.calls_to("/api/v1/customers") == 2  # the one that got 429; no retry of a 429
        # the last good values are still served, and the backoff is visible
        assert value(limited, "lago_customers", target="billing") == customers
        until = value(limited, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="billing")
        assert until is not None and time.time() + 25 < until < time.time() + 35
        assert value(limited, "stack_exporter_collector_success", target="billing") == 0
        for _ in range(3):
            again = await scrape(client)
            assert value(again, "lago_customers", target="billing") == customers
        assert sum(lago.calls.values()) == after_429, "requests were sent during the backoff"
        assert after_429 - before <= 26
    assert_clean_error(caplog, "Lago", "rate limited")


async def test_rate_limit_before_any_success(lago: FakeLago) -> None:
    lago.faults["/api/v1"] = Fault("ratelimit", seconds=60)
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
        calls = sum(lago.calls.values())
        await scrape(client)
        assert sum(lago.calls.values()) == calls
    assert value(text, "lago_up", target="billing") == 1
    assert value(text, "stack_exporter_collector_success", target="billing") == 0


async def test_slow_target_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with FakeLago(KEY).running() as slow, FakeLago(KEY).running() as fast:
        slow.faults["/api/v1/customers"] = Fault("slow", seconds=5)
        cfg = config(("slow", slow.url, KEY), ("fast", fast.url, KEY), timeout="1s")
        async with exporter(cfg) as client:
            started = time.monotonic()
            text = await scrape(client)
            took = time.monotonic() - started
    assert took < 2.5
    assert value(text, "stack_exporter_collector_success", target="slow") == 0
    assert value(text, "stack_exporter_collector_success", target="fast") == 1
    assert value(text, "lago_customers", target="fast") == len(records()["customers"])
    assert value(text, "lago_up", target="slow") == 1  # health answered; the API was too slow
    assert_clean_error(caplog, "Lago", "/api/v1/customers", "deadline")


@pytest.mark.parametrize(
    ("fault", "needles"),
    [
        (Fault("html"), ["HTML instead of JSON", "/api/v1/customers"]),
        (Fault("truncated"), ["invalid JSON", "/api/v1/customers"]),
        (Fault("huge"), ["cap", "/api/v1/customers"]),
    ],
    ids=["html", "truncated", "huge"],
)
async def test_bad_bodies_are_clear_errors(
    lago: FakeLago, caplog: pytest.LogCaptureFixture, fault: Fault, needles: list[str]
) -> None:
    capture(caplog)
    lago.faults["/api/v1/customers"] = fault
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "lago_up", target="billing") == 1
    assert value(text, "stack_exporter_collector_success", target="billing") == 0
    assert_clean_error(caplog, "Lago", *needles)
    assert promtool_check(text) == ""


async def test_count_as_string_is_read(lago: FakeLago) -> None:
    lago.count_as_string = True
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="billing") == 1
    assert value(text, "lago_customers") == len(records()["customers"])


async def test_missing_field_is_named(lago: FakeLago, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    lago.drop_total_count = True
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="billing") == 0
    assert_clean_error(caplog, "Lago", "meta.total_count", "missing")


async def test_analytics_unavailable_on_plan_is_not_a_failure(lago: FakeLago) -> None:
    lago.analytics_forbidden = True
    async with exporter(config(("billing", lago.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="billing") == 1
    assert value(text, "lago_overdue_balance_cents", currency="USD") is None


async def test_refresh_interval_serves_cache(lago: FakeLago) -> None:
    cfg = config(("billing", lago.url, KEY), refresh_interval="60s")
    async with exporter(cfg) as client:
        await scrape(client)
        calls = sum(lago.calls.values())
        text = await scrape(client)
    assert sum(lago.calls.values()) == calls
    assert value(text, "stack_exporter_collector_cache_age_seconds", target="billing") is not None
