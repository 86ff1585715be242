"""What every email provider collector shares: the neutral metric names and event vocabulary.

One rule and one dashboard serve every provider, because each provider's own
event names are mapped onto ``EVENTS`` (the mappings are in docs/metrics/email.md)::

    email_provider_up{target="mail",provider="sendgrid"} 1.0
    email_events_total{target="mail",provider="sendgrid",event="delivered"} 114.0
    email_reputation_bounce_ratio{target="mail",provider="postmark"} 0.104
    email_domain_verified{target="mail",provider="resend",domain="example.com"} 1.0

``email_events_total`` counts since the start of the provider's current stats
day and resets when the day turns, which ``rate()`` and ``increase()`` treat as a
counter reset.  Events a provider does not report are absent, not 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import ClassVar, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.api import ApiCollector, AuthError, RateLimited, ShapeError
from exporter.collectors.base import CollectError
from exporter.schema import TargetConfig

C = TypeVar("C", bound=TargetConfig)

EVENTS = (
    "requested",
    "delivered",
    "bounced",
    "deferred",
    "dropped",
    "blocked",
    "complained",
    "opened",
    "clicked",
    "unsubscribed",
)


def day_start(tz: tzinfo = UTC, now: datetime | None = None) -> datetime:
    """Midnight of the provider's current stats day."""
    local = (now or datetime.now(UTC)).astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class EmailCollector(ApiCollector[C]):
    """Base of the provider collectors: ``email_provider_up`` and the neutral families."""

    provider_label: ClassVar[str]
    up_metric = "email_provider_up"
    up_help = (
        "1 if the provider's API answered (even to reject the credentials or rate limit us),"
        " 0 if it could not be reached or failed."
    )

    def _up(self, value: float) -> GaugeMetricFamily:
        fam = GaugeMetricFamily("email_provider_up", self.up_help, labels=["provider"])
        fam.add_metric([self.provider_label], value)
        return fam

    def down(self) -> list[Metric]:
        return [self._up(0)]

    def answered(self) -> list[Metric]:
        return [self._up(1)]

    async def fetch(self) -> list[Metric]:
        try:
            return [self._up(1), *await self.fetch_provider()]
        except (RateLimited, ShapeError, AuthError) as exc:
            if isinstance(exc, RateLimited):
                raise
            # the API answered: the service is up, the collection is not
            raise CollectError(str(exc), partial=[self._up(1)]) from None
        except CollectError as exc:
            raise CollectError(str(exc), partial=[self._up(0)]) from None

    async def fetch_provider(self) -> list[Metric]:
        raise NotImplementedError

    def events(self, counts: Mapping[str, float]) -> CounterMetricFamily:
        fam = CounterMetricFamily(
            "email_events",
            "Email events since the start of the provider's current stats day (resets daily), by normalised event.",
            labels=["provider", "event"],
        )
        for event in EVENTS:
            if event in counts:
                fam.add_metric([self.provider_label, event], counts[event])
        return fam

    def ratio(self, name: str, help_text: str, value: float) -> GaugeMetricFamily:
        fam = GaugeMetricFamily(name, help_text, labels=["provider"])
        fam.add_metric([self.provider_label], value)
        return fam

    def domains_verified(self, domains: Iterable[tuple[str, bool]]) -> GaugeMetricFamily:
        fam = GaugeMetricFamily(
            "email_domain_verified",
            "1 if the provider reports the sending domain as verified, 0 if not.",
            labels=["provider", "domain"],
        )
        for domain, ok in domains:
            fam.add_metric([self.provider_label, domain], 1.0 if ok else 0.0)
        return fam


BOUNCE_RATIO_HELP = "Bounced share of sent email as the provider reports it, 0 to 1."
COMPLAINT_RATIO_HELP = "Spam-complaint share of sent email as the provider reports it, 0 to 1."
