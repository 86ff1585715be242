"""Resend collector against a fake serving the fixture bodies (tests/fakes/resend.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.checks import assert_clean_error, assert_no_secret, capture, logged
from tests.fakes.common import Fault
from tests.fakes.resend import FakeResend
from tests.helpers import exporter, promtool_check, scrape, value

KEY = "re_resend-secret-4d5e6f7a8b"
SENDING_ONLY = "re_sending-only-secret-1a2b3c"

# The mapping as docs/metrics/email.md states it, restated here so the collector's table is checked
# against the documentation rather than against itself.
DOCUMENTED = {
    "queued": {"requested"},
    "sent": {"requested"},
    "scheduled": set(),
    "canceled": set(),
    "delivered": {"requested", "delivered"},
    "delivery_delayed": {"requested", "deferred"},
    "bounced": {"requested", "bounced"},
    "failed": {"requested", "dropped"},
    "suppressed": {"requested", "dropped"},
    "opened": {"requested", "delivered", "opened"},
    "clicked": {"requested", "delivered", "clicked"},
    "complained": {"requested", "delivered", "complained"},
}
REPORTED = ("requested", "delivered", "bounced", "deferred", "dropped", "complained", "opened", "clicked")


def config(*targets: tuple[str, str, str], timeout: str = "5s", **extra: Any) -> dict[str, Any]:
    """One resend target per (name, url, api key); ``extra`` keys override or add to each."""
    return {
        "resend": [
            {
                "name": n,
                "url": u,
                "api_key": k,
                "refresh_interval": "0s",
                "requests_per_second": 100,
                "scrape_timeout": timeout,
                **extra,
            }
            for n, u, k in targets
        ]
    }


@asynccontextmanager
async def running(**kw: Any) -> AsyncIterator[FakeResend]:
    async with FakeResend(KEY, **kw).running() as fake:
        yield fake  # type: ignore[misc]


def today(email: dict[str, Any]) -> bool:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return datetime.fromisoformat(email["created_at"]) >= midnight


def expected(*emails: dict[str, Any]) -> dict[str, int]:
    counts = dict.fromkeys(REPORTED, 0)
    for e in emails:
        if today(e):
            for event in DOCUMENTED[e["last_event"]]:
                counts[event] += 1
    return counts


def events(text: str) -> dict[str, float | None]:
    return {e: value(text, "email_events_total", provider="resend", event=e) for e in REPORTED}


async def test_fixture_domains_and_emails() -> None:
    async with running() as fake, exporter(config(("mail", fake.url, KEY))) as client:
        text = await scrape(client)
    assert value(text, "email_provider_up", provider="resend", target="mail") == 1
    assert value(text, "stack_exporter_collector_success", collector="resend") == 1
    for d in fake.domains:
        want = 1.0 if d["status"] == "verified" else 0.0
        assert value(text, "email_domain_verified", provider="resend", domain=d["name"]) == want
    assert {e["last_event"] for e in fake.emails} == {"delivered", "bounced"}
    assert events(text) == {k: float(v) for k, v in expected(*fake.emails).items()}
    assert value(text, "email_events_total", event="unsubscribed") is None  # not reported by Resend
    assert value(text, "resend_emails_sampled") == len(fake.emails)
    assert value(text, "resend_emails_sample_complete") == 1
    assert promtool_check(text) == ""


async def test_every_last_event_and_paging() -> None:
    async with running() as fake:
        # 3 pages of today's mail, every last_event Resend documents, then yesterday's
        kinds = sorted(DOCUMENTED)
        fake.add_emails([kinds[i % len(kinds)] for i in range(230)])
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        fake.add_emails(["delivered"] * 150, created=midnight - timedelta(seconds=1))
        async with exporter(config(("mail", fake.url, KEY))) as client:
            text = await scrape(client)
        # stops at the first page that reaches yesterday: 232 today + 150 yesterday -> 3 pages of 100, not 4
        emails_asked = [q for q in fake.pages_asked if "after" in q or q.get("limit") == "100"]
        assert fake.calls["/emails"] == 3, emails_asked
        assert all(q["limit"] == "100" for q in fake.pages_asked)
        assert [q.get("after") for q in fake.pages_asked[-2:]] == [fake.emails[99]["id"], fake.emails[199]["id"]]
    assert events(text) == {k: float(v) for k, v in expected(*fake.emails).items()}
    assert value(text, "resend_emails_sampled") == 300
    assert value(text, "resend_emails_sample_complete") == 1


async def test_events_accumulate_and_never_decrease() -> None:
    async with running() as fake:
        mail = fake.add_emails(["delivery_delayed", "sent"])
        async with exporter(config(("mail", fake.url, KEY))) as client:
            first = events(await scrape(client))
            mail[0]["last_event"] = "delivered"  # the delay is over
            mail[1]["last_event"] = "opened"
            second = events(await scrape(client))
            mail[1]["last_event"] = "clicked"
            third = events(await scrape(client))
    assert first["deferred"] == 1 and first["delivered"] == 1  # the fixture's delivered one
    assert second["deferred"] == 1, "a state seen once stays counted for the day"
    assert second["delivered"] == 3 and second["opened"] == 1
    assert third["opened"] == 1 and third["clicked"] == 1
    for a, b in ((first, second), (second, third)):
        for event in REPORTED:
            assert (b[event] or 0) >= (a[event] or 0), f"{event} went down: counters must not"


async def test_bounded_pages_say_when_the_sample_is_incomplete() -> None:
    async with running() as fake:
        fake.add_emails(["delivered"] * 450)
        cfg = config(("mail", fake.url, KEY), max_pages=2)
        async with exporter(cfg) as client:
            first = await scrape(client)
            assert fake.calls["/emails"] == 2
            seen = {e["id"] for e in fake.emails[:200]}
            second = await scrape(client)  # nothing new: the oldest email read was seen before
            fake.add_emails(["sent"] * 250, created=datetime.now(UTC))  # more than 2 pages arrive at once
            third = await scrape(client)
            seen |= {e["id"] for e in fake.emails[:200]}
    assert value(first, "resend_emails_sampled") == 200
    assert value(first, "resend_emails_sample_complete") == 0
    assert value(first, "email_events_total", event="requested") == 200
    assert value(second, "resend_emails_sample_complete") == 1
    assert value(third, "resend_emails_sample_complete") == 0
    assert value(third, "email_events_total", event="requested") == len(seen)
    assert len(seen) > 350


async def test_pacing_stays_under_resends_limit() -> None:
    async with running() as fake:
        fake.limit_per_second = 2
        fake.add_emails(["delivered"] * 250)
        cfg = config(("mail", fake.url, KEY), requests_per_second=2)
        async with exporter(cfg) as client:
            started = time.monotonic()
            text = await scrape(client)
            took = time.monotonic() - started
    assert value(text, "stack_exporter_collector_success", collector="resend") == 1
    assert value(text, "stack_exporter_http_requests_total", code="429") is None
    assert value(text, "stack_exporter_http_requests_total", code="200") == 4  # domains + 3 pages
    assert took < 5


async def test_exhausted_ratelimit_headers_slow_the_collector_down() -> None:
    async with running() as fake:
        # stricter than the configured pace: only Resend's lowercase ratelimit-remaining/-reset can keep us under it
        fake.limit_per_second = 1
        fake.add_emails(["delivered"] * 150)
        cfg = config(("mail", fake.url, KEY), requests_per_second=2)
        async with exporter(cfg) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", collector="resend") == 1
    assert value(text, "stack_exporter_http_requests_total", code="429") is None
    assert value(text, "stack_exporter_http_requests_total", code="200") == 3  # domains + 2 pages


@pytest.mark.parametrize(
    ("key", "needles"),
    [("re_wrong-resend-key-77", ("forbidden", "403")), (SENDING_ONLY, ("unauthorized", "401", "full access"))],
    ids=["invalid-key", "sending-only-key"],
)
async def test_rejected_keys(key: str, needles: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running(sending_only_key=SENDING_ONLY) as fake, exporter(config(("mail", fake.url, key))) as client:
        text = await scrape(client)
    assert value(text, "email_provider_up", provider="resend") == 1  # it answered
    assert value(text, "stack_exporter_collector_success", collector="resend") == 0
    assert value(text, "email_events_total", event="requested") is None
    assert_clean_error(caplog, "Resend", *needles)
    assert_no_secret(key, text, logged(caplog))


async def test_rate_limit_backoff(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake, exporter(config(("mail", fake.url, KEY))) as client:
        first = await scrape(client)
        calls = sum(fake.calls.values())
        fake.faults["/emails"] = Fault("ratelimit", seconds=90)
        limited = await scrape(client)
        after = sum(fake.calls.values())
        for _ in range(3):
            again = await scrape(client)
        assert sum(fake.calls.values()) == after, "requests sent during the backoff"
    assert after - calls == 2  # /domains, then the 429 on /emails; nothing more
    assert value(limited, "stack_exporter_http_requests_total", code="429") == 1
    until = value(limited, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="mail")
    assert until is not None and time.time() + 80 < until < time.time() + 100  # retry-after: 90, lowercase
    got = value(again, "email_events_total", event="requested")
    assert got == value(first, "email_events_total", event="requested")
    assert_clean_error(caplog, "Resend", "rate limited")


async def test_slow_target_fails_alone(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as slow, running() as fast:
        slow.faults["/emails"] = Fault("slow", seconds=5)
        cfg = config(("slow", slow.url, KEY), ("fast", fast.url, KEY), timeout="1s")
        async with exporter(cfg) as client:
            started = time.monotonic()
            text = await scrape(client)
            assert time.monotonic() - started < 2.5
    assert value(text, "email_provider_up", target="slow") == 0
    assert value(text, "email_provider_up", target="fast") == 1
    assert value(text, "stack_exporter_collector_success", target="fast") == 1
    assert_clean_error(caplog, "Resend", "deadline")


@pytest.mark.parametrize(
    ("fault", "needle"),
    [(Fault("html"), "HTML instead of JSON"), (Fault("truncated"), "invalid JSON"), (Fault("huge"), "cap")],
    ids=["html", "truncated", "huge"],
)
async def test_bad_bodies(fault: Fault, needle: str, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake:
        fake.faults["/emails"] = fault
        async with exporter(config(("mail", fake.url, KEY))) as client:
            text = await scrape(client)
    assert value(text, "email_provider_up", target="mail") == 1
    assert value(text, "stack_exporter_collector_success", target="mail") == 0
    assert value(text, "email_events_total", target="mail", event="requested") is None
    assert_clean_error(caplog, "Resend", needle)


@pytest.mark.parametrize(
    ("breaks", "needles"),
    [
        (lambda e: e.pop("last_event"), ("'last_event'", "missing")),
        (lambda e: e.update(last_event=7), ("'last_event'", "expected a string")),
        (lambda e: e.update(created_at="yesterday"), ("'created_at'", "expected a timestamp")),
    ],
    ids=["missing", "wrong-type", "bad-time"],
)
async def test_bad_fields(breaks: Any, needles: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running() as fake:
        breaks(fake.emails[0])
        async with exporter(config(("mail", fake.url, KEY))) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="mail") == 0
    assert_clean_error(caplog, "Resend", *needles)


async def test_a_bad_page_counts_nothing() -> None:
    async with running() as fake:
        fake.add_emails(["delivered"] * 150)
        async with exporter(config(("mail", fake.url, KEY))) as client:
            fake.emails[120].pop("id")  # page 2 is broken
            broken = await scrape(client)
            fake.emails[120]["id"] = "restored-id"
            fixed = await scrape(client)
    assert value(broken, "stack_exporter_collector_success", target="mail") == 0
    assert value(fixed, "email_events_total", event="requested") == expected(*fake.emails)["requested"]
