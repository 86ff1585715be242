"""Resend: domain verification from ``GET /domains``; today's events from the recent emails' ``last_event``.

Resend has no daily stats counter in its public API, only the list of sent
emails (newest first, 100 a page, cursor ``after``) with each email's latest
event.  So ``email_events_total`` is built here: every collection reads the
newest emails back to 00:00 UTC (at most ``max_pages`` pages) and remembers,
per email id, every neutral event its ``last_event`` says it has reached
(``clicked`` implies ``delivered`` and ``requested``).  The counter is the
number of emails created today seen to reach each event; it only grows during
the day and restarts at 00:00 UTC, like the other providers' daily stats::

    email_events_total{provider="resend",event="delivered"} 812.0
    email_domain_verified{provider="resend",domain="example.com"} 1.0
    resend_emails_sampled 300.0
    resend_emails_sample_complete 1.0

It is a sample, not Resend's own count: a state an email passes through between
two collections (``delivery_delayed`` for a minute) is only counted if a
collection saw it, and an email that falls out of the newest ``max_pages`` pages
is not watched any more.  ``resend_emails_sample_complete`` says whether the
last collection reached every email sent since the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.api import AuthError, ShapeError, field, list_field
from exporter.collectors.base import Context, time_left
from exporter.collectors.email.common import EVENTS, EmailCollector, day_start
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, Secret, TargetConfig, check_url

PAGE_SIZE = 100  # Resend's maximum ``limit``

# Resend last_event -> neutral events the email has reached.  scheduled and
# canceled emails have not been handed to Resend's senders, so they count for nothing.
LAST_EVENT_MAP: dict[str, tuple[str, ...]] = {
    "queued": ("requested",),
    "sent": ("requested",),
    "scheduled": (),
    "canceled": (),
    "delivered": ("requested", "delivered"),
    "delivery_delayed": ("requested", "deferred"),
    "bounced": ("requested", "bounced"),
    "failed": ("requested", "dropped"),
    "suppressed": ("requested", "dropped"),
    "opened": ("requested", "delivered", "opened"),
    "clicked": ("requested", "delivered", "clicked"),
    "complained": ("requested", "delivered", "complained"),
}
# an event Resend adds later still means the email was submitted
UNKNOWN_LAST_EVENT = ("requested",)
BIT = {event: 1 << i for i, event in enumerate(EVENTS)}
# events a Resend email can be seen to reach: these are always exposed (0 until seen)
REPORTED = tuple(e for e in EVENTS if any(e in reached for reached in LAST_EVENT_MAP.values()))


@dataclass(frozen=True, kw_only=True)
class ResendTarget(TargetConfig):
    name: str
    api_key: Secret
    url: str = "https://api.resend.com"
    # pages of 100 recent emails read per collection; raise it if resend_emails_sample_complete drops to 0
    max_pages: int = 5
    # Resend allows 2 requests per second per team: pages are spaced to stay under it
    requests_per_second: float = 2.0
    refresh_interval: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://api.resend.com", credential_key="api_key")
        if not 1 <= self.max_pages <= 100:
            yield "max_pages", "must be between 1 and 100"
        if not 0 < self.requests_per_second <= 100:
            yield "requests_per_second", "must be above 0 and at most 100"


class ResendCollector(EmailCollector[ResendTarget]):
    config_class = ResendTarget
    provider = "Resend"
    provider_label = "resend"

    def __init__(self, config: ResendTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._day: date | None = None
        # email id -> bit set of the neutral events it was seen to reach today
        self._reached: dict[str, int] = {}
        self._last_request = 0.0

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        # spacing instead of a burst: a collection is a handful of requests, Resend's limit is per second
        loop = asyncio.get_running_loop()
        wait = self._last_request + 1.0 / self.config.requests_per_second - loop.time()
        # "ratelimit-remaining: 0" with a reset in a second or two: slow down rather than fail the
        # collection; a longer backoff (a 429's retry-after) is left to the shared layer
        backoff = self.http.backoff_remaining()
        if 0 < backoff < time_left() - 1.0:
            wait = max(wait, backoff + 0.01)
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = loop.time()
        try:
            return await self.http.get_json(
                f"{self.config.url.rstrip('/')}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self.config.api_key.get()}", "Accept": "application/json"},
            )
        except AuthError as exc:
            # Resend's "sending access" keys are refused on every read endpoint
            raise AuthError(f"{exc} (the exporter needs a Resend API key with full access)", exc.status) from None

    async def _pages(self, path: str, max_pages: int) -> tuple[list[list[Any]], bool]:
        """Pages of a cursor-paginated list, and whether it read all it needed before max_pages ran out."""
        pages: list[list[Any]] = []
        params = {"limit": str(PAGE_SIZE)}
        for _ in range(max_pages):
            body = await self._get(path, params)
            data = list_field(body, "data", self.provider, f"GET {path}")
            pages.append(data)
            if not field(body, "has_more", self.provider, f"GET {path}") or not data:
                return pages, True
            # emails come newest first: once a page reaches yesterday, older pages hold nothing for today
            if path == "/emails" and self._created(data[-1], len(data) - 1) < day_start():
                return pages, True
            params = {"limit": str(PAGE_SIZE), "after": str(field(data[-1], "id", self.provider, f"GET {path}"))}
        return pages, False

    def _created(self, email: Any, i: int) -> datetime:
        raw = field(email, "created_at", self.provider, f"GET /emails data[{i}]")
        try:
            return datetime.fromisoformat(str(raw))
        except ValueError:
            raise ShapeError(f"Resend: field 'created_at' is {str(raw)[:40]!r}, expected a timestamp") from None

    async def fetch_provider(self) -> list[Metric]:
        domain_pages, _ = await self._pages("/domains", 10)
        domains: list[tuple[str, bool]] = []
        for data in domain_pages:
            for i, d in enumerate(data):
                name = field(d, "name", self.provider, f"GET /domains data[{i}]")
                status = field(d, "status", self.provider, f"GET /domains data[{i}]")
                # partially_verified still fails some records: only "verified" counts
                domains.append((str(name), status == "verified"))

        email_pages, read_all = await self._pages("/emails", self.config.max_pages)
        start = day_start()
        if self._day != start.date():
            self._day = start.date()
            self._reached = {}
        oldest_known = False
        sampled = 0
        updates: dict[str, int] = {}
        for page, data in enumerate(email_pages):
            for i, email in enumerate(data):
                sampled += 1
                where = f"GET /emails page {page + 1} data[{i}]"
                if self._created(email, i) < start:
                    continue
                email_id = str(field(email, "id", self.provider, where))
                last_event = field(email, "last_event", self.provider, where)
                if not isinstance(last_event, str):
                    raise ShapeError(
                        f"Resend: field 'last_event' in {where} is {type(last_event).__name__}, expected a string"
                    )
                bits = 0
                for event in LAST_EVENT_MAP.get(last_event, UNKNOWN_LAST_EVENT):
                    bits |= BIT[event]
                updates[email_id] = bits
                # ends as: was the oldest email of today in this sample already seen by a previous collection?
                oldest_known = email_id in self._reached
        # applied only once the whole sample parsed: a bad page must not leave a half-counted collection
        for email_id, bits in updates.items():
            self._reached[email_id] = self._reached.get(email_id, 0) | bits
        counts = {event: float(sum(1 for bits in self._reached.values() if bits & BIT[event])) for event in REPORTED}

        sampled_fam = GaugeMetricFamily(
            "resend_emails_sampled",
            "Emails read from GET /emails in the last collection (newest first, at most max_pages × 100).",
        )
        sampled_fam.add_metric([], float(sampled))
        complete = GaugeMetricFamily(
            "resend_emails_sample_complete",
            "1 if the last collection read back to 00:00 UTC, the end of the list or an email already seen,"
            " so no email sent since the previous collection was missed; 0 if max_pages ran out first.",
        )
        complete.add_metric([], 1.0 if read_all or oldest_known else 0.0)
        return [self.events(counts), self.domains_verified(domains), sampled_fam, complete]


COLLECTOR = ResendCollector
