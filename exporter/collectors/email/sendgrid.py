"""SendGrid: today's global stats from ``GET /v3/stats`` (UTC days), one request per collection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from exporter.collectors.api import ShapeError, field, list_field, number
from exporter.collectors.email.common import EmailCollector, day_start
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, Secret, TargetConfig, check_url

# SendGrid metric -> neutral event; several drops add up to "dropped".
EVENT_MAP: dict[str, str] = {
    "requests": "requested",
    "delivered": "delivered",
    "bounces": "bounced",
    "deferred": "deferred",
    "bounce_drops": "dropped",
    "spam_report_drops": "dropped",
    "unsubscribe_drops": "dropped",
    "invalid_emails": "dropped",
    "blocks": "blocked",
    "spam_reports": "complained",
    "opens": "opened",
    "clicks": "clicked",
    "unsubscribes": "unsubscribed",
}


@dataclass(frozen=True, kw_only=True)
class SendgridTarget(TargetConfig):
    name: str
    api_key: Secret
    url: str = "https://api.sendgrid.com"  # https://api.eu.sendgrid.com for EU subusers
    on_behalf_of: str | None = None  # a subuser's stats, seen from the parent account
    refresh_interval: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://api.sendgrid.com", credential_key="api_key")


class SendgridCollector(EmailCollector[SendgridTarget]):
    config_class = SendgridTarget
    provider = "SendGrid"
    provider_label = "sendgrid"

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    async def fetch_provider(self) -> list[Metric]:
        today = day_start().date().isoformat()
        headers = {"Authorization": f"Bearer {self.config.api_key.get()}", "Accept": "application/json"}
        if self.config.on_behalf_of:
            headers["on-behalf-of"] = self.config.on_behalf_of
        body: Any = await self.http.get_json(
            f"{self.config.url.rstrip('/')}/v3/stats",
            params={"start_date": today, "end_date": today, "aggregated_by": "day"},
            headers=headers,
        )
        if not isinstance(body, list):
            raise ShapeError("SendGrid: /v3/stats answered a JSON object, expected a list of days")
        counts: dict[str, float] = {}
        for i, day in enumerate(body):
            for j, stat in enumerate(list_field(day, "stats", self.provider, f"day {i}")):
                metrics = field(stat, "metrics", self.provider, f"day {i} stats[{j}]")
                if not isinstance(metrics, dict):
                    raise ShapeError(f"SendGrid: field '[{i}].stats[{j}].metrics' is not an object")
                for name, event in EVENT_MAP.items():
                    if name in metrics:
                        counts[event] = counts.get(event, 0.0) + number(metrics[name], self.provider, name)
        if body and "requested" not in counts:
            raise ShapeError("SendGrid: field 'metrics.requests' missing in /v3/stats")
        # no row yet today: nothing sent since midnight UTC
        for event in set(EVENT_MAP.values()):
            counts.setdefault(event, 0.0)
        return [self.events(counts)]


COLLECTOR = SendgridCollector
