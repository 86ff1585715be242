"""Email provider collectors (SendGrid, Mailgun, Postmark) against fakes serving the fixture bodies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes.checks import assert_clean_error, assert_no_secret, capture, logged
from tests.fakes.common import FakeServer, Fault, fixture
from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.helpers import exporter, promtool_check, scrape, value

SG_KEY = "SG.sendgrid-secret-3f9a1c.e7d2b4"
MG_KEY = "key-mailgun-secret-8c1d2e3f"
PM_TOKEN = "postmark-secret-5a6b7c8d-token"
DOMAIN = "mg.example.com"


@dataclass
class Provider:
    key: str  # config section and provider label
    name: str  # in error messages
    make: Callable[[], FakeServer]
    target: Callable[[str, str, str], dict[str, Any]]  # (target, url, secret) -> the config list item
    secret: str
    path: str  # where faults are injected


PROVIDERS = [
    Provider(
        "sendgrid",
        "SendGrid",
        lambda: FakeSendgrid(SG_KEY),
        lambda t, url, s: {"name": t, "url": url, "api_key": s},
        SG_KEY,
        "/v3/stats",
    ),
    Provider(
        "mailgun",
        "Mailgun",
        lambda: FakeMailgun(MG_KEY, DOMAIN),
        lambda t, url, s: {"name": t, "url": url, "domain": DOMAIN, "api_key": s},
        MG_KEY,
        "/v3/",
    ),
    Provider(
        "postmark",
        "Postmark",
        lambda: FakePostmark(PM_TOKEN),
        lambda t, url, s: {"name": t, "url": url, "server_token": s},
        PM_TOKEN,
        "/stats/outbound",
    ),
]
IDS = [p.key for p in PROVIDERS]


def config(p: Provider, *targets: tuple[str, str, str], timeout: str = "5s") -> dict[str, Any]:
    items = [p.target(*t) | {"refresh_interval": "0s", "scrape_timeout": timeout} for t in targets]
    return {p.key: items}


@asynccontextmanager
async def running(p: Provider) -> AsyncIterator[Any]:
    async with p.make().running() as fake:
        yield fake


# --------------------------------------------------------------------------- happy paths, per provider


async def test_sendgrid_today_from_the_fixture() -> None:
    p = PROVIDERS[0]
    async with running(p) as fake:
        today = datetime.now(UTC).date().isoformat()
        metrics = fake.days[today][0]["metrics"]
        # the fixture's rows are all zeros: give today's row distinct values so the mapping is tested
        for i, name in enumerate(sorted(metrics)):
            metrics[name] = 10 + i
        async with exporter(config(p, ("mail", fake.url, SG_KEY))) as client:
            text = await scrape(client)
    assert value(text, "email_provider_up", provider="sendgrid", target="mail") == 1
    ev = lambda e: value(text, "email_events_total", provider="sendgrid", event=e)  # noqa: E731
    assert ev("requested") == metrics["requests"]
    assert ev("delivered") == metrics["delivered"]
    assert ev("bounced") == metrics["bounces"]
    assert ev("deferred") == metrics["deferred"]
    assert ev("blocked") == metrics["blocks"]
    assert ev("dropped") == sum(
        metrics[k] for k in ("bounce_drops", "spam_report_drops", "unsubscribe_drops", "invalid_emails")
    )
    assert ev("complained") == metrics["spam_reports"]
    assert ev("opened") == metrics["opens"]
    assert ev("clicked") == metrics["clicks"]
    assert ev("unsubscribed") == metrics["unsubscribes"]
    assert promtool_check(text) == ""


async def test_sendgrid_fixture_as_served_is_zero_today() -> None:
    p = PROVIDERS[0]
    async with running(p) as fake, exporter(config(p, ("mail", fake.url, SG_KEY))) as client:
        text = await scrape(client)
    newest = fixture("sendgrid", "v3_stats.json")[-1]["stats"][0]["metrics"]
    assert value(text, "email_events_total", event="delivered") == newest["delivered"]


async def test_mailgun_stats_mapping() -> None:
    p = PROVIDERS[1]
    row = fixture("mailgun", "v3_domain_stats_total.json")["stats"][0]
    async with running(p) as fake:
        async with exporter(config(p, ("mail", fake.url, MG_KEY))) as client:
            text = await scrape(client)
        assert sorted(fake.events_asked[0]) == sorted(
            ["accepted", "delivered", "failed", "opened", "clicked", "unsubscribed", "complained"]
        )
    ev = lambda e: value(text, "email_events_total", provider="mailgun", event=e)  # noqa: E731
    perm, temp = row["failed"]["permanent"], row["failed"]["temporary"]
    drops = perm["suppress-bounce"] + perm["suppress-unsubscribe"] + perm["suppress-complaint"]
    assert ev("requested") == row["accepted"]["outgoing"]
    assert ev("delivered") == row["delivered"]["total"]
    assert ev("dropped") == drops
    assert ev("bounced") == perm["total"] - drops
    assert ev("blocked") == temp["espblock"]
    assert ev("deferred") == temp["total"] - temp["espblock"]
    for event, key in (("opened", "opened"), ("clicked", "clicked"), ("complained", "complained")):
        assert ev(event) == row[key]["total"]
    assert ev("unsubscribed") == row["unsubscribed"]["total"]
    assert promtool_check(text) == ""


async def test_mailgun_region_eu_url() -> None:
    from exporter.collectors.email.mailgun import MailgunTarget
    from exporter.config import Secret

    assert (
        MailgunTarget(name="m", domain=DOMAIN, api_key=Secret("x"), region="eu").base() == "https://api.eu.mailgun.net"
    )
    assert MailgunTarget(name="m", domain=DOMAIN, api_key=Secret("x")).base() == "https://api.mailgun.net"


async def test_postmark_counts_and_rates() -> None:
    p = PROVIDERS[2]
    async with running(p) as fake:
        async with exporter(config(p, ("mail", fake.url, PM_TOKEN))) as client:
            text = await scrape(client)
        assert len(fake.windows_asked) == 2
    day, window = fake.today, fake.window
    ev = lambda e: value(text, "email_events_total", provider="postmark", event=e)  # noqa: E731
    assert ev("requested") == day["Sent"]
    assert ev("bounced") == day["Bounced"]
    assert ev("dropped") == day["SMTPApiErrors"]
    assert ev("complained") == day["SpamComplaints"]
    assert ev("opened") == day["Opens"]
    assert ev("clicked") == day["TotalClicks"]
    assert ev("delivered") is None  # Postmark does not report it: absent, not 0
    assert value(text, "email_reputation_bounce_ratio", provider="postmark") == pytest.approx(
        window["BounceRate"] / 100
    )
    assert value(text, "email_reputation_complaint_ratio", provider="postmark") == pytest.approx(
        window["SpamComplaintsRate"] / 100
    )
    assert promtool_check(text) == ""


# --------------------------------------------------------------------------- failure modes, every provider


@pytest.mark.parametrize("p", PROVIDERS, ids=IDS)
async def test_wrong_credentials(p: Provider, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    wrong = f"wrong-{p.key}-credential-91ab"
    async with running(p) as fake, exporter(config(p, ("mail", fake.url, wrong))) as client:
        text = await scrape(client)
    assert value(text, "email_provider_up", provider=p.key) == 1  # it answered
    assert value(text, "stack_exporter_collector_success", collector=p.key) == 0
    assert value(text, "email_events_total", event="requested") is None
    assert_clean_error(caplog, p.name, "unauthorized", "401")
    assert_no_secret(wrong, text, logged(caplog))


@pytest.mark.parametrize("p", PROVIDERS, ids=IDS)
async def test_rate_limit_backoff(p: Provider, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running(p) as fake, exporter(config(p, ("mail", fake.url, p.secret))) as client:
        first = await scrape(client)
        calls = sum(fake.calls.values())
        fake.faults[p.path] = Fault("ratelimit", seconds=90)
        limited = await scrape(client)
        after = sum(fake.calls.values())
        for _ in range(3):
            again = await scrape(client)
        assert sum(fake.calls.values()) == after, "requests sent during the backoff"
    assert after - calls <= 2
    until = value(limited, "stack_exporter_http_rate_limited_until_timestamp_seconds", target="mail")
    assert until is not None and time.time() + 60 < until < time.time() + 120
    got = value(again, "email_events_total", provider=p.key, event="requested")
    assert got == value(first, "email_events_total", provider=p.key, event="requested")
    assert_clean_error(caplog, p.name, "rate limited")


@pytest.mark.parametrize("p", PROVIDERS, ids=IDS)
async def test_slow_target_fails_alone(p: Provider, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running(p) as slow, running(p) as fast:
        slow.faults[p.path] = Fault("slow", seconds=5)
        cfg = config(p, ("slow", slow.url, p.secret), ("fast", fast.url, p.secret), timeout="1s")
        async with exporter(cfg) as client:
            started = time.monotonic()
            text = await scrape(client)
            assert time.monotonic() - started < 2.5
    assert value(text, "email_provider_up", target="slow") == 0
    assert value(text, "email_provider_up", target="fast") == 1
    assert value(text, "stack_exporter_collector_success", target="fast") == 1
    assert_clean_error(caplog, p.name, "deadline")


@pytest.mark.parametrize("p", PROVIDERS, ids=IDS)
@pytest.mark.parametrize(
    ("fault", "needle"),
    [(Fault("html"), "HTML instead of JSON"), (Fault("truncated"), "invalid JSON"), (Fault("huge"), "cap")],
    ids=["html", "truncated", "huge"],
)
async def test_bad_bodies(p: Provider, fault: Fault, needle: str, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    async with running(p) as fake:
        fake.faults[p.path] = fault
        async with exporter(config(p, ("mail", fake.url, p.secret))) as client:
            text = await scrape(client)
    assert value(text, "stack_exporter_collector_success", target="mail") == 0
    assert value(text, "email_events_total", target="mail", event="requested") is None
    assert_clean_error(caplog, p.name, needle)


async def test_counts_as_strings_and_missing_fields(caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    pm = PROVIDERS[2]
    async with running(pm) as fake:
        fake.today["Sent"] = str(fake.today["Sent"])
        async with exporter(config(pm, ("mail", fake.url, PM_TOKEN))) as client:
            text = await scrape(client)
            assert value(text, "email_events_total", event="requested") == float(fake.today["Sent"])
            del fake.today["Bounced"]
            await scrape(client)
    assert_clean_error(caplog, "Postmark", "'Bounced'", "missing")
    mg = PROVIDERS[1]
    async with running(mg) as fake:
        fake.body["stats"][0]["delivered"]["total"] = "not a number"
        async with exporter(config(mg, ("mail", fake.url, MG_KEY))) as client:
            await scrape(client)
    assert_clean_error(caplog, "Mailgun", "delivered.total", "expected a number")


async def test_all_providers_together_pass_promtool() -> None:
    async with AsyncExitStack() as stack:
        fakes = [await stack.enter_async_context(running(p)) for p in PROVIDERS]
        cfg: dict[str, Any] = {}
        for p, f in zip(PROVIDERS, fakes, strict=True):
            cfg |= config(p, (f"{p.key}-main", f.url, p.secret))
        async with exporter(cfg) as client:
            text = await scrape(client)
    for p in PROVIDERS:
        assert value(text, "email_provider_up", provider=p.key) == 1
    assert promtool_check(text) == ""
