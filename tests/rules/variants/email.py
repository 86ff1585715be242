"""Email providers as variants: SendGrid, Mailgun, Postmark, Resend and AWS SES.

Each is captured from the real exporter scraping the fake of that provider's API, which
serves the real API bodies (tests/fakes/, shapes from ../shared/api-fixtures): so each
variant carries exactly the events its docs column reports (docs/metrics/email.md), the
reputation figures only Postmark and SES have, SES's account state, Resend's domains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from exporter.collectors.email.common import EVENTS
from tests.fakes.common import FakeServer
from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.fakes.resend import FakeResend
from tests.fakes.ses import FakeSes
from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Sample,
    Source,
    Variant,
    becomes,
    constant,
    exporter_incidents,
    grows,
    keeps_growing,
    source_down,
    stops,
)

KEY = "matrix-secret-key-0123456789"
SES_KEY_ID = "AKIAMATRIXTESTKEY0001"
SES_REGION = "eu-west-1"


async def _capture(fake: FakeServer, section: str) -> str:
    async with (
        fake.running(),
        exporter(f"{section}:\n  - name: mail\n    refresh_interval: 0s\n{_target(fake, section)}") as client,
    ):
        return await scrape(client)


def _target(fake: FakeServer, section: str) -> str:
    lines = {
        "sendgrid": f"url: {fake.url}\napi_key: {KEY}",
        "mailgun": f"url: {fake.url}\ndomain: mg.example.com\napi_key: {KEY}",
        "postmark": f"url: {fake.url}\nserver_token: {KEY}",
        "resend": f"url: {fake.url}\napi_key: {KEY}",
        "ses": f"region: {SES_REGION}\nendpoint_url: {fake.url}\ncloudwatch_endpoint_url: {fake.url}\n"
        f"access_key_id: {SES_KEY_ID}\nsecret_access_key: {KEY}",
    }[section]
    return "".join(f"    {line}\n" for line in lines.splitlines())


async def sendgrid(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakeSendgrid(KEY), "sendgrid")


async def mailgun(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakeMailgun(KEY, "mg.example.com"), "mailgun")


async def postmark(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakePostmark(KEY), "postmark")


async def resend(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakeResend(KEY), "resend")


async def ses(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakeSes(SES_KEY_ID, KEY, SES_REGION), "ses")


# ------------------------------------------------------------------ a healthy account

# Per minute: 2 emails requested (2,880 a day); 0.5% bounce, 0.005% complaints, a quarter
# opened.  Every provider's stats day turns in the run (counters restart from 0).
SENT = 2.0
DAY_TURNS = tuple(200 + 1440 * day for day in range(7))


def _event(event: str, per_minute: float) -> Rule:
    return Rule("email_events_total", grows(per_minute), {"event": event}, resets=DAY_TURNS)


HEALTHY = (
    _event("requested", SENT),
    _event("delivered", SENT * 0.97),
    _event("bounced", SENT * 0.005),
    _event("deferred", SENT * 0.01),
    _event("dropped", SENT * 0.002),
    _event("blocked", SENT * 0.001),
    _event("complained", SENT * 0.00005),
    _event("opened", SENT * 0.25),
    _event("clicked", SENT * 0.04),
    _event("unsubscribed", SENT * 0.001),
    Rule("email_provider_up", constant(1)),
    Rule("email_reputation_bounce_ratio", constant(0.005)),
    Rule("email_reputation_complaint_ratio", constant(0.00005)),
    Rule("email_domain_verified", constant(1)),
    Rule("ses_account_sending_enabled", constant(1)),
    Rule("ses_account_production_access", constant(1)),
    Rule("ses_account_enforcement_status", constant(1), {"status": "healthy"}),
    Rule("ses_account_enforcement_status", constant(0)),
    Rule("email_send_quota_max_24h", constant(50000)),
    Rule("email_send_quota_sent_24h", constant(SENT * 1440)),
    *EXPORTER_HEALTHY,
)


# ------------------------------------------------------------------ incidents


def _figure(what: str) -> Callable[[Variant, Sequence[Sample]], dict[str, str]]:
    """The firing alert says which figure it read: the provider's own where it has one."""

    def labels(_variant: Variant, samples: Sequence[Sample]) -> dict[str, str]:
        own = any(s.name == f"email_reputation_{what}_ratio" for s in samples)
        return {"figure": "provider" if own else "computed"}

    return labels


def _ratio_incident(condition: str, alert: str, severity: str, what: str, event: str, share: float) -> Incident:
    """`share` of the requested emails bounce (or complain) from the start; a provider with
    its own reputation figure reports the same share."""
    return Incident(
        condition,
        alert,
        severity,
        (
            Change("email_events_total", keeps_growing(SENT * share), {"event": event}),
            Change(f"email_reputation_{what}_ratio", becomes(share)),
        ),
        fires_within=180,
        required=(("email_events_total", {"event": event}), ("email_events_total", {"event": "requested"})),
        expect_labels=_figure(what),
    )


INCIDENTS = (
    # escalation.emailProviderDown (1h) instead of the 15m `for`: the warning's first page
    source_down(
        "the provider's API cannot be reached",
        "EmailProviderDown",
        "warning",
        "email_provider_up",
        20,
        escalates_within=65,
    ),
    _ratio_incident(
        "bounces above the warning threshold", "EmailBounceRatioHigh", "warning", "bounce", "bounced", 0.05
    ),
    _ratio_incident(
        "bounces above the critical threshold", "EmailBounceRatioHigh", "critical", "bounce", "bounced", 0.15
    ),
    _ratio_incident(
        "spam complaints above the warning threshold",
        "EmailComplaintRatioHigh",
        "warning",
        "complaint",
        "complained",
        0.003,
    ),
    _ratio_incident(
        "spam complaints above the critical threshold",
        "EmailComplaintRatioHigh",
        "critical",
        "complaint",
        "complained",
        0.01,
    ),
    Incident(
        "emails are requested but none is delivered",
        "EmailDeliveriesStopped",
        "critical",
        (Change("email_events_total", stops(), {"event": "delivered"}),),
        fires_within=90,
        # escalation.emailDeliveriesStopped (1h) instead of the 15m `for`
        escalates_within=135,
    ),
    Incident(
        # a steady two days, then opens fall to a tenth: the 1-day ratio falls under half its
        # baseline after about 14 hours, and the alert waits two more
        "the open rate falls far below its own baseline",
        "EmailOpenRateDropped",
        "info",
        (Change("email_events_total", keeps_growing(SENT * 0.025), {"event": "opened"}),),
        fires_within=18 * 60,
        start=2 * 1440,
    ),
    Incident(
        "AWS has paused the account's sending",
        "EmailSESSendingPaused",
        "critical",
        (Change("ses_account_sending_enabled", becomes(0)),),
        fires_within=10,
    ),
    Incident(
        "AWS has put the account on probation",
        "EmailSESProbation",
        "warning",
        (
            Change("ses_account_enforcement_status", becomes(1), {"status": "probation"}),
            Change("ses_account_enforcement_status", becomes(0), {"status": "healthy"}),
        ),
        fires_within=20,
    ),
    Incident(
        "the 24-hour send quota is almost used up",
        "EmailSendQuotaNearlyExhausted",
        "warning",
        (Change("email_send_quota_sent_24h", becomes(47500)),),
        fires_within=20,
        required=(("email_send_quota_sent_24h", {}), ("email_send_quota_max_24h", {})),
    ),
    Incident(
        "a sending domain is not verified at the provider",
        "EmailDomainUnverified",
        "warning",
        (Change("email_domain_verified", becomes(0)),),
        fires_within=20,
    ),
    *exporter_incidents("email_provider_up"),
)

# ------------------------------------------------------------------ the docs' event table

DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics" / "email.md"
# The column headings of the event-mapping table start with these names.
COLUMNS = {"sendgrid": "SendGrid", "mailgun": "Mailgun", "postmark": "Postmark", "resend": "Resend", "ses": "AWS SES"}


def documented_events(provider: str) -> set[str]:
    """The events the docs' "Event mapping" table says the provider reports."""
    lines = DOCS.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| event |"))
    cells = [c.strip() for c in lines[header].strip("|").split("|")]
    column = next(i for i, c in enumerate(cells) if c.startswith(COLUMNS[provider]))
    reported = set()
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        row = [c.strip() for c in line.strip("|").split("|")]
        if row[0] in EVENTS and "(not reported)" not in row[column]:
            reported.add(row[0])
    return reported


def check_events(variant: Variant, samples: Sequence[Sample]) -> list[str]:
    """The events the variant really emits are the ones its docs column reports."""
    emitted = {s.label("event") for s in samples if s.name == "email_events_total"}
    documented = documented_events(variant.name)
    if emitted == documented:
        return []
    return [f"{variant.name} emits events {sorted(e for e in emitted if e)}, the event table says {sorted(documented)}"]


SOURCE = Source(
    name="email",
    docs="email",
    variants=tuple(Variant("email", v.__name__, v) for v in (sendgrid, mailgun, postmark, resend, ses)),
    healthy=HEALTHY,
    incidents=INCIDENTS,
    check=check_events,
)
