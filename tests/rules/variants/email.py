"""Email providers as variants: SendGrid, Mailgun, Postmark, Resend and AWS SES.

Each is captured from the real exporter scraping the fake of that provider's API, which
serves the real API bodies (tests/fakes/, shapes from ../shared/api-fixtures): so each
variant carries exactly the events its docs column reports (docs/metrics/email.md), the
reputation figures only Postmark and SES have, SES's account state, Resend's domains.

The same exporter process also has an `email_webhooks:` section for that provider, and is
posted that provider's signed, real-shaped webhook requests (tests/fakes/email_webhooks/)
on its ingest listener: each event the provider's webhook sends, once for each of three
email types (and a delivery without a tag, `other`), one request with a wrong signature,
and for SES the SNS subscription confirmation first.  The exporter exposes every event of
the vocabulary from start, at 0; a healthy account grows only the events the provider
really sent (Postmark's webhook never says `requested`, SES's and Resend's never
`blocked`), so a rule that reads an event a provider's webhook does not send cannot work
there, and the matrix says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.collectors.email.common import EVENTS
from peers.process import LOOPBACK, free_port
from tests.fakes.common import FakeServer
from tests.fakes.email import FakeMailgun, FakePostmark, FakeSendgrid
from tests.fakes.email_webhooks import mailgun as mailgun_hooks
from tests.fakes.email_webhooks import postmark as postmark_hooks
from tests.fakes.email_webhooks import resend as resend_hooks
from tests.fakes.email_webhooks import sendgrid as sendgrid_hooks
from tests.fakes.email_webhooks import ses as ses_hooks
from tests.fakes.resend import FakeResend
from tests.fakes.ses import FakeSes
from tests.helpers import ExporterProcess
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Sample,
    Source,
    Values,
    Variant,
    becomes,
    constant,
    exporter_incidents,
    grows,
    keeps_growing,
    parse,
    source_down,
    stops,
)

KEY = "matrix-secret-key-0123456789"
SES_KEY_ID = "AKIAMATRIXTESTKEY0001"
SES_REGION = "eu-west-1"


def _target(fake: FakeServer, section: str) -> dict[str, Any]:
    target: dict[str, Any] = {"name": "mail", "refresh_interval": "0s"}
    target |= {
        "sendgrid": {"url": fake.url, "api_key": KEY},
        "mailgun": {"url": fake.url, "domain": "mg.example.com", "api_key": KEY},
        "postmark": {"url": fake.url, "server_token": KEY},
        "resend": {"url": fake.url, "api_key": KEY},
        "ses": {
            "region": SES_REGION,
            "endpoint_url": fake.url,
            "cloudwatch_endpoint_url": fake.url,
            "access_key_id": SES_KEY_ID,
            "secret_access_key": KEY,
        },
    }[section]
    return target


# ------------------------------------------------------------------ the webhooks

# The app's email types and the tag each carries (SendGrid category, Mailgun tag, Postmark
# Tag, Resend tag value, SES message tag value); a delivery without a tag counts as `other`.
TYPES = ("password_reset", "invoice", "welcome")
TAG = {t: f"app-{t.replace('_', '-')}" for t in TYPES}
# The events each provider's webhook sends, as the neutral events they count as (the
# senders' EXAMPLES, and for Resend and SES the brief's mapping of their event types).
RESEND_EVENTS = {
    "requested": ("email.sent", {}),
    "delivered": ("email.delivered", {}),
    "deferred": ("email.delivery_delayed", {}),
    "bounced": ("email.bounced", {"bounce_type": "Permanent"}),
    "dropped": ("email.failed", {}),
    "complained": ("email.complained", {}),
    "opened": ("email.opened", {}),
    "clicked": ("email.clicked", {}),
}
SES_EVENTS = {
    "requested": ("Send", {}),
    "delivered": ("Delivery", {}),
    "bounced": ("Bounce", {"bounce_type": "Permanent"}),
    "deferred": ("DeliveryDelay", {}),
    "dropped": ("Reject", {}),
    "complained": ("Complaint", {}),
    "opened": ("Open", {}),
    "clicked": ("Click", {}),
    "unsubscribed": ("Subscription", {}),
}
WEBHOOK_EVENTS = {
    "sendgrid": tuple(sendgrid_hooks.EXAMPLES),
    "mailgun": tuple(mailgun_hooks.EXAMPLES),
    "postmark": tuple(postmark_hooks.EXAMPLES),
    "resend": tuple(RESEND_EVENTS),
    "ses": tuple(SES_EVENTS),
}
# (headers, body) of one signed request
Request = tuple[dict[str, str], bytes]


class _Hooks:
    """One provider's signer: its config section and its signed requests for the capture."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.sender: Any = {
            "sendgrid": sendgrid_hooks.SendgridSender,
            "mailgun": mailgun_hooks.MailgunSender,
            "postmark": postmark_hooks.PostmarkSender,
            "resend": resend_hooks.ResendSender,
            "ses": ses_hooks.SesSender,
        }[provider]()

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """SES: the signing certificate and SubscribeURL on loopback (the config's sns_url)."""
        if self.provider != "ses":
            yield
            return
        async with self.sender.cert_server():
            yield

    def requests(self) -> list[Request]:
        """What the provider posts: every event its webhook sends for each type, one untagged
        delivery; SES's subscription confirmation first."""
        sent: list[Request] = []
        if self.provider == "ses":
            sent.append(self.sender.subscription())
        for email_type in TYPES:
            tag = TAG[email_type]
            if self.provider == "sendgrid":  # one batch per type, as SendGrid posts batches
                batch = [sendgrid_hooks.example(e, tags=[tag]) for e in WEBHOOK_EVENTS["sendgrid"]]
                sent.append(self.sender.sign(sendgrid_hooks.encode(batch)))
                continue
            sent.extend(self._event(event, tag) for event in WEBHOOK_EVENTS[self.provider])
        sent.append(self._event("delivered", None))
        return sent

    def _event(self, event: str, tag: str | None) -> Request:
        if self.provider == "sendgrid":
            item = sendgrid_hooks.example(event, tags=[tag] if tag else None)
            return self.sender.sign(sendgrid_hooks.encode([item]))  # type: ignore[no-any-return]
        if self.provider == "mailgun":
            return self.sender.sign(mailgun_hooks.example(event, tags=[tag] if tag else None))  # type: ignore[no-any-return]
        if self.provider == "postmark":
            body = postmark_hooks.example(event, tags=[tag] if tag else ())
            return self.sender.sign(postmark_hooks.encode(body))  # type: ignore[no-any-return]
        if self.provider == "resend":
            kind, kw = RESEND_EVENTS[event]
            body = resend_hooks.payload(kind, tags={"email_type": tag} if tag else None, **kw)
            return self.sender.sign(resend_hooks.encode(body))  # type: ignore[no-any-return]
        kind, kw = SES_EVENTS[event]
        record = ses_hooks.payload(kind, tags={"email_type": tag} if tag else None, **kw)
        return self.sender.sign(ses_hooks.encode(record))  # type: ignore[no-any-return]

    def forged(self) -> Request:
        """A delivery signed with another key (a rotated one): refused as bad_signature."""
        other = _Hooks(self.provider)
        if self.provider == "ses":  # the same certificate URL, another key
            other.sender.sns_url = self.sender.sns_url
            other.sender.cert_path = self.sender.cert_path
        return other._event("delivered", TAG[TYPES[0]])

    def config(self) -> dict[str, Any]:
        return {
            "email_types": {t: [TAG[t]] for t in TYPES},
            self.provider: self.sender.config(),
        }


async def _capture(fake: FakeServer, section: str, request: pytest.FixtureRequest) -> str:
    tmp = request.getfixturevalue("tmp_path_factory").mktemp(f"email-{section}")
    hooks = _Hooks(section)
    listen = f"{LOOPBACK}:{free_port()}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(fake.running())
        await stack.enter_async_context(hooks.serving())
        config = {section: [_target(fake, section)], "email_webhooks": hooks.config()}
        exporter = ExporterProcess(tmp, config, "--rum.listen-address", listen)
        await asyncio.to_thread(exporter.start)
        try:
            url = f"http://{listen}/webhooks/v1/{section}"
            async with aiohttp.ClientSession() as client:
                for headers, body in hooks.requests():
                    async with client.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 200, f"{section} webhook: {resp.status} {await resp.text()}"
                headers, body = hooks.forged()
                async with client.post(url, data=body, headers=headers) as resp:
                    assert resp.status >= 400, f"{section}: a forged webhook was accepted"
            text = await asyncio.to_thread(exporter.get, "/metrics")
        finally:
            await asyncio.to_thread(exporter.stop)
    # each event posted was counted once, for its type, and nothing else was: the series
    # the twins grow are the provider's own (the rest stay the exporter's zero series)
    samples = parse(text)
    counted = {
        (s.label("event"), s.label("email_type"), s.value)
        for s in samples
        if s.name == "email_webhook_events_total" and s.value
    }
    posted = {(e, t, 1.0) for t in TYPES for e in WEBHOOK_EVENTS[section]} | {("delivered", "other", 1.0)}
    assert counted == posted, f"{section}: counted {sorted(counted - posted)}, not {sorted(posted - counted)}"
    refused = {s.label("reason"): s.value for s in samples if s.name == "email_webhook_refused_total"}
    assert refused.get("bad_signature") == 1 and sum(refused.values()) == 1, f"{section}: refused {refused}"
    return text


async def sendgrid(request: pytest.FixtureRequest) -> str:
    return await _capture(FakeSendgrid(KEY), "sendgrid", request)


async def mailgun(request: pytest.FixtureRequest) -> str:
    return await _capture(FakeMailgun(KEY, "mg.example.com"), "mailgun", request)


async def postmark(request: pytest.FixtureRequest) -> str:
    return await _capture(FakePostmark(KEY), "postmark", request)


async def resend(request: pytest.FixtureRequest) -> str:
    return await _capture(FakeResend(KEY), "resend", request)


async def ses(request: pytest.FixtureRequest) -> str:
    return await _capture(FakeSes(SES_KEY_ID, KEY, SES_REGION), "ses", request)


# ------------------------------------------------------------------ a healthy account

# Per minute: 2 emails requested (2,880 a day); 0.5% bounce, 0.005% complaints, a quarter
# opened.  Every provider's stats day turns in the run (counters restart from 0).
SENT = 2.0
DAY_TURNS = tuple(200 + 1440 * day for day in range(7))


def _event(event: str, per_minute: float) -> Rule:
    return Rule("email_events_total", grows(per_minute), {"event": event}, resets=DAY_TURNS)


# The webhooks: each of the three types and `other` a quarter of the mail, with the same
# shares; the exporter's counters do not restart daily.  An event the provider's webhook
# never sent was captured at 0 (the exporter's zero series) and stays 0.
TYPE_SENT = SENT / 4


def _if_sent(per_minute: float) -> Values:
    return lambda s, t: s.value + per_minute * t if s.value > 0 else s.value


def _hook(event: str, share: float) -> Rule:
    return Rule("email_webhook_events_total", _if_sent(TYPE_SENT * share), {"event": event})


WEBHOOK_HEALTHY = (
    _hook("requested", 1.0),
    _hook("delivered", 0.97),
    _hook("bounced", 0.005),
    _hook("deferred", 0.01),
    _hook("dropped", 0.002),
    _hook("blocked", 0.001),
    _hook("complained", 0.00005),
    _hook("opened", 0.25),
    _hook("clicked", 0.04),
    _hook("unsubscribed", 0.001),
    # about one request per event (SendGrid batches them: fewer, which changes nothing here)
    Rule("email_webhook_requests_total", grows(SENT * 1.5)),
    Rule("email_webhook_last_request_timestamp_seconds", grows(60)),
)


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
    *WEBHOOK_HEALTHY,
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


def _sends(email_type: str, *events: str) -> Callable[[Sequence[Sample]], bool]:
    """Whether the provider's webhook sent these events of the type (not only the zero series)."""

    def sent(samples: Sequence[Sample]) -> bool:
        return all(
            any(
                s.matches("email_webhook_events_total", {"event": e, "email_type": email_type}) and s.value > 0
                for s in samples
            )
            for e in events
        )

    return sent


def _type_ratio_incident(condition: str, alert: str, severity: str, event: str, share: float) -> Incident:
    """`share` of one type's mail (invoice) bounces (or complains) from the start, by webhook."""
    return Incident(
        condition,
        alert,
        severity,
        (
            Change(
                "email_webhook_events_total",
                keeps_growing(TYPE_SENT * share),
                {"event": event, "email_type": "invoice"},
            ),
        ),
        fires_within=180,
        applies=_sends("invoice", event, "delivered", "bounced"),
        expect_labels=lambda _v, _s: {"email_type": "invoice"},
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
    _type_ratio_incident(
        "one email type's bounces above the warning threshold", "EmailTypeBounceRatioHigh", "warning", "bounced", 0.045
    ),
    _type_ratio_incident(
        "one email type's bounces above the critical threshold", "EmailTypeBounceRatioHigh", "critical", "bounced", 0.15
    ),
    _type_ratio_incident(
        "one email type's spam complaints above the warning threshold",
        "EmailTypeComplaintRatioHigh",
        "warning",
        "complained",
        0.0025,
    ),
    _type_ratio_incident(
        "one email type's spam complaints above the critical threshold",
        "EmailTypeComplaintRatioHigh",
        "critical",
        "complained",
        0.01,
    ),
    Incident(
        # a steady day first: the alert compares with the same hour a day earlier
        "one email type is no longer delivered",
        "EmailTypeDeliveriesStopped",
        "critical",
        (Change("email_webhook_events_total", stops(), {"event": "delivered", "email_type": "password_reset"}),),
        fires_within=90,
        start=1440 + 60,
        applies=_sends("password_reset", "delivered"),
        expect_labels=lambda _v, _s: {"email_type": "password_reset"},
    ),
    Incident(
        "the provider's webhook stops arriving",
        "EmailWebhookStopped",
        "warning",
        (
            Change("email_webhook_requests_total", stops()),
            Change("email_webhook_events_total", stops()),
            Change("email_webhook_last_request_timestamp_seconds", stops()),
        ),
        fires_within=80,
        required=(("email_webhook_requests_total", {}), ("email_events_total", {"event": "requested"})),
        expect_labels=lambda v, _s: {"provider": v.name},
    ),
    Incident(
        # a signing key rotated at the provider and not in the exporter: every request refused
        "the provider's webhook requests are refused",
        "EmailWebhookRefused",
        "warning",
        (
            Change("email_webhook_requests_total", stops()),
            Change("email_webhook_events_total", stops()),
            Change("email_webhook_refused_total", keeps_growing(SENT * 1.5), {"reason": "bad_signature"}),
        ),
        fires_within=35,
        required=(("email_webhook_requests_total", {}), ("email_webhook_refused_total", {"reason": "bad_signature"})),
        expect_labels=lambda v, _s: {"provider": v.name},
    ),
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
