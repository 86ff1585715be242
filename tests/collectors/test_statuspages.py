"""Status page collector against a fake Statuspage v2 page serving the fixture bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exporter.collectors.statuspages import COMPONENT_STATUSES
from tests.fakes.checks import assert_clean_error, capture
from tests.fakes.common import Fault, fixture
from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import exporter, promtool_check, scrape, value, values


@pytest.fixture
async def page() -> AsyncIterator[FakeStatuspage]:
    async with FakeStatuspage().running() as fake:
        yield fake  # type: ignore[misc]


def config(*targets: tuple[str, str], timeout: str = "5s") -> dict[str, Any]:
    return {
        "statuspages": [{"name": n, "url": u, "refresh_interval": "0s", "scrape_timeout": timeout} for n, u in targets]
    }


async def test_happy_path_from_summary(page: FakeStatuspage) -> None:
    summary = fixture("statuspage", "summary.json")
    async with exporter(config(("sendgrid", page.url))) as client:
        text = await scrape(client)
    assert value(text, "statuspage_up", target="sendgrid") == 1
    current = summary["status"]["indicator"]
    assert value(text, "statuspage_indicator", indicator=current) == 1
    assert sum(s.value for s in values(text, "statuspage_indicator")) == 1
    names = {c["id"]: c["name"] for c in summary["components"]}
    for comp in summary["components"]:
        group = names.get(comp["group_id"] or "", "")
        for state in COMPONENT_STATUSES:
            want = 1.0 if state == comp["status"] else 0.0
            assert value(text, "statuspage_component_status", component=comp["name"], group=group, status=state) == want
    assert value(text, "statuspage_unresolved_incidents") == len(summary["incidents"])
    in_progress = sum(1 for m in summary["scheduled_maintenances"] if m["status"] == "in_progress")
    assert value(text, "statuspage_maintenances_in_progress") == in_progress
    assert value(text, "statuspage_page_updated_timestamp_seconds") is not None
    assert promtool_check(text) == ""


async def test_page_changes_state(page: FakeStatuspage) -> None:
    async with exporter(config(("mailgun", page.url))) as client:
        await scrape(client)
        page.summary["status"] = fixture("statuspage", "status_operational.json")["status"]
        page.summary["incidents"] = fixture("statuspage", "incidents_unresolved_empty.json")["incidents"]
        page.summary["components"][1]["status"] = "maintenance_window"  # a state the docs do not list
        text = await scrape(client)
    assert value(text, "statuspage_indicator", indicator="none") == 1
    assert value(text, "statuspage_indicator", indicator="minor") == 0
    assert value(text, "statuspage_unresolved_incidents") == 0
    name = page.summary["components"][1]["name"]
    assert value(text, "statuspage_component_status", component=name, status="maintenance_window") == 1
    assert promtool_check(text) == ""


async def test_rate_limit_backs_off(page: FakeStatuspage, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with exporter(config(("sendgrid", page.url))) as client:
        await scrape(client)
        page.faults["/api/v2"] = Fault("ratelimit", seconds=120)
        text = await scrape(client)
        for _ in range(3):
            again = await scrape(client)
    assert page.calls_to("/api/v2/summary.json") == 2
    assert value(again, "statuspage_up", target="sendgrid") == 1  # the last good result is served
    until = value(text, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="sendgrid")
    assert until is not None and until > time.time() + 100
    assert_clean_error(caplog, "Status page", "429")


async def test_slow_page_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with FakeStatuspage().running() as slow, FakeStatuspage().running() as fast:
        slow.faults["/api/v2"] = Fault("slow", seconds=5)
        async with exporter(config(("slow", slow.url), ("fast", fast.url), timeout="1s")) as client:
            started = time.monotonic()
            text = await scrape(client)
            assert time.monotonic() - started < 2.5
    assert value(text, "statuspage_up", target="slow") == 0
    assert value(text, "statuspage_up", target="fast") == 1
    assert_clean_error(caplog, "Status page", "deadline")


@pytest.mark.parametrize(
    ("fault", "needle"),
    [(Fault("html"), "HTML instead of JSON"), (Fault("truncated"), "invalid JSON"), (Fault("huge"), "cap")],
    ids=["html", "truncated", "huge"],
)
async def test_bad_bodies(page: FakeStatuspage, caplog: pytest.LogCaptureFixture, fault: Fault, needle: str) -> None:
    capture(caplog)
    page.faults["/api/v2"] = fault
    async with exporter(config(("sendgrid", page.url))) as client:
        text = await scrape(client)
    assert value(text, "statuspage_up", target="sendgrid") == 0
    assert_clean_error(caplog, "Status page", needle, "summary.json")


async def test_missing_field_is_named(page: FakeStatuspage, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    del page.summary["status"]
    async with exporter(config(("sendgrid", page.url))) as client:
        text = await scrape(client)
    assert value(text, "statuspage_up", target="sendgrid") == 0
    assert_clean_error(caplog, "Status page", "'status'", "missing")


async def test_not_a_statuspage(page: FakeStatuspage, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with exporter(config(("postmark", page.url + "/elsewhere"))) as client:
        text = await scrape(client)
    assert value(text, "statuspage_up", target="postmark") == 0
    assert_clean_error(caplog, "Status page", "404")
