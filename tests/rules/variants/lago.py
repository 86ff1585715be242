"""Lago as variants: an organisation whose plan has analytics, and one whose plan has none.

Both are captured from the real exporter scraping the fake lago-api (tests/fakes/lago.py), which
serves the real list bodies and answers `/analytics/overdue_balance` with 403 when the plan has
no analytics (lago-api's `feature_unavailable`): that variant has every count but no
`lago_overdue_balance_cents` (docs/metrics/lago.md).

Lago's counts are gauges (a list's `meta.total_count`), so a healthy billing system is modelled
as whole invoices, payment requests and subscriptions arriving over days: a mid-sized
usage-billing SaaS invoicing on subscription anniversaries, where some card payments fail every
day and dunning recovers most of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from tests.fakes.lago import FakeLago
from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Sample,
    Source,
    Values,
    Variant,
    constant,
    exporter_incidents,
    source_down,
    stops,
)

KEY = "matrix-lago-key-0123456789abcdef"
DAY = 1440


async def _capture(analytics: bool) -> str:
    fake = FakeLago(KEY)
    fake.analytics_forbidden = not analytics
    async with fake.running():
        config = f"lago:\n  - name: billing\n    url: {fake.url}\n    api_key: {KEY}\n    refresh_interval: 0s\n"
        async with exporter(config) as client:
            return await scrape(client)


async def analytics(_request: pytest.FixtureRequest) -> str:
    return await _capture(analytics=True)


async def no_analytics(_request: pytest.FixtureRequest) -> str:
    return await _capture(analytics=False)


# ------------------------------------------------------------------ a healthy billing system


def every(minutes: float, offset: float = 0, base: float | None = None) -> Values:
    """A count that gains one every `minutes` (whole items, as a list's total_count does)."""
    return lambda s, t: (s.value if base is None else base) + math.floor((t + offset) / minutes)


def counts(*parts: tuple[float, float, float]) -> Values:
    """A count from `base` plus whole steps: each part (every minutes, offset, sign)."""

    def values(s: Sample, t: int) -> float:
        return s.value + sum(sign * math.floor((t + offset) / minutes) for minutes, offset, sign in parts)

    return values


# 100 invoices a day (about 3,000 customers billed on their anniversaries); 8% of the first
# payment attempts fail (one every 3 h), dunning recovers most of them (one every 4 h).
FAILS_EVERY, RECOVERED_EVERY = 180.0, 240.0
# Dunning: one payment request every 2 h, two thirds of them fail (retrying a card that already
# failed is expected to fail often).
# Overdue: about 30 invoices past due at any time (360,000 cents), one more every 6 h, one paid
# every 6 h.
OVERDUE, OVERDUE_CENTS, INVOICE_CENTS = 30.0, 360_000.0, 12_000.0
# Churn: 5 terminations a day out of ~3,000 subscriptions, 6 new ones a day.

HEALTHY = (
    Rule("lago_up", constant(1)),
    Rule("lago_api_authorized", constant(1)),
    Rule(
        "lago_invoices",
        counts((DAY / 92, 0, 1), (RECOVERED_EVERY, 90, 1)),
        {"status": "finalized", "payment_status": "succeeded"},
    ),
    Rule(
        "lago_invoices",
        counts((FAILS_EVERY, 0, 1), (RECOVERED_EVERY, 90, -1)),
        {"status": "finalized", "payment_status": "failed"},
    ),
    Rule("lago_invoices", every(DAY / 100), {"status": "draft", "payment_status": "pending"}),
    Rule(
        "lago_invoices_payment_overdue",
        lambda _s, t: OVERDUE + math.floor(t / 360) - math.floor((t + 180) / 360),
    ),
    Rule(
        "lago_overdue_balance_cents",
        lambda _s, t: OVERDUE_CENTS + INVOICE_CENTS * (math.floor(t / 360) - math.floor((t + 180) / 360)),
    ),
    Rule("lago_payment_requests", every(360, 120), {"payment_status": "succeeded"}),
    Rule("lago_payment_requests", counts((360, 0, 1), (360, 240, 1)), {"payment_status": "failed"}),
    Rule("lago_subscriptions", every(DAY / 6, base=3000), {"status": "active"}),
    Rule("lago_subscriptions", every(DAY / 5), {"status": "terminated"}),
    Rule("lago_customers", every(DAY / 6, base=3000)),
    *EXPORTER_HEALTHY,
)


# ------------------------------------------------------------------ incidents


def burst(count: int, per_minute: float = 1.0) -> Callable[[Sample, int, float], float]:
    """`count` more, arriving at `per_minute` (a batch job's run)."""
    return lambda _s, t, start: start + min(count, math.floor(per_minute * t))


def from_start(minutes: float) -> Callable[[Sample, int, float], float]:
    """One more every `minutes` from the incident's start."""
    return lambda _s, t, start: start + math.floor(t / minutes)


INCIDENTS = (
    # escalation.lagoDown (30m) instead of the 5m `for`
    source_down("Lago does not answer", "LagoDown", "critical", "lago_up", 15, escalates_within=40),
    Incident(
        # the payment provider rejects every charge (revoked key, provider outage): each new
        # invoice's payment fails, none succeeds and dunning recovers nothing
        "the payment provider rejects every new invoice's payment",
        "LagoFailedPaymentsIncreasing",
        "warning",
        (
            Change("lago_invoices", from_start(DAY / 100), {"status": "finalized", "payment_status": "failed"}),
            Change("lago_invoices", stops(), {"status": "finalized", "payment_status": "succeeded"}),
        ),
        # an hour to gather 3 failures, then `failedFor` (10 minutes)
        fires_within=90,
        required=(("lago_invoices", {"payment_status": "failed"}),),
    ),
    Incident(
        # the daily dunning run: all ten of its payment requests fail, none succeeds
        "every payment request of a dunning run fails",
        "LagoFailedPaymentRetries",
        "warning",
        (
            Change("lago_payment_requests", burst(10, 0.5), {"payment_status": "failed"}),
            Change("lago_payment_requests", stops(), {"payment_status": "succeeded"}),
        ),
        # 5 failed by 10 minutes in, then `failedFor`; the run's failures leave the hour's
        # window after 60 minutes, so the check must come before
        fires_within=30,
        required=(("lago_payment_requests", {"payment_status": "failed"}),),
    ),
    Incident(
        # the tax integration rejects invoices (an expired API key): each new invoice of the
        # next hour fails to finalize, one every 15 minutes
        "invoices fail to finalize",
        "LagoInvoicesFailingToFinalize",
        "warning",
        (Change("lago_invoices", from_start(15), {"status": "failed", "payment_status": "pending"}),),
        fires_within=30,
        required=(("lago_invoices", {"status": "failed"}),),
    ),
    Incident(
        # collection has stalled: invoices keep passing their due date (one every 90 min)
        # and nobody pays; the balance grows with them where Lago reports it
        "the overdue balance grows day over day",
        "LagoOverdueBalanceGrowing",
        "warning",
        (
            Change("lago_invoices_payment_overdue", from_start(90)),
            Change(
                "lago_overdue_balance_cents",
                lambda _s, t, start: start + INVOICE_CENTS * math.floor(t / 90),
            ),
        ),
        fires_within=9 * 60,
        required=(("lago_invoices_payment_overdue", {}),),
        start=DAY + 60,
    ),
    Incident(
        # a week at 5 terminations a day, then one every 40 minutes (36 a day)
        "subscriptions are terminated much faster than the past week's average",
        "LagoSubscriptionTerminationsHigh",
        "warning",
        (Change("lago_subscriptions", from_start(40), {"status": "terminated"}),),
        fires_within=8 * 60,
        start=8 * DAY + 60,
    ),
    *exporter_incidents("lago_up"),
)

SOURCE = Source(
    name="lago",
    docs="lago",
    variants=(Variant("lago", "analytics", analytics), Variant("lago", "no-analytics", no_analytics)),
    healthy=HEALTHY,
    incidents=INCIDENTS,
    # nine days: the terminations alert compares the last day with the seven before it
    minutes=9 * DAY,
    # nine days of 5-minute evaluations take half a minute per variant; Lago's alerts look
    # at hours and days
    evaluation_interval="15m",
)
