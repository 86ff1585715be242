"""Postmark: ``GET /stats/outbound`` for today (events) and a trailing window (reputation rates).

Postmark's stats days are US Eastern; its rates are percentages (10.406 means
10.4 %) and are converted to ratios.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import Metric

from exporter.collectors.api import gather_all, number_field
from exporter.collectors.email.common import BOUNCE_RATIO_HELP, COMPLAINT_RATIO_HELP, EmailCollector, day_start
from exporter.schema import Duration, Secret, TargetConfig, check_url

EASTERN = ZoneInfo("America/New_York")
# Postmark field -> neutral event
EVENT_MAP = {
    "Sent": "requested",
    "Bounced": "bounced",
    "SMTPApiErrors": "dropped",
    "SpamComplaints": "complained",
    "Opens": "opened",
    "TotalClicks": "clicked",
}


@dataclass(frozen=True, kw_only=True)
class PostmarkTarget(TargetConfig):
    name: str
    server_token: Secret
    url: str = "https://api.postmarkapp.com"
    message_stream: str | None = None
    # days the reputation rates are computed over (today included)
    reputation_days: int = 30
    refresh_interval: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://api.postmarkapp.com", credential_key="server_token")
        if not 1 <= self.reputation_days <= 365:
            yield "reputation_days", "must be between 1 and 365"


class PostmarkCollector(EmailCollector[PostmarkTarget]):
    config_class = PostmarkTarget
    provider = "Postmark"
    provider_label = "postmark"

    def describe(self) -> str:
        return self.config.url

    async def fetch_provider(self) -> list[Metric]:
        today = day_start(EASTERN).date()
        since = today - timedelta(days=self.config.reputation_days - 1)
        headers = {"X-Postmark-Server-Token": self.config.server_token.get(), "Accept": "application/json"}
        url = f"{self.config.url.rstrip('/')}/stats/outbound"

        def params(start: Any) -> dict[str, str]:
            p = {"fromdate": start.isoformat(), "todate": today.isoformat()}
            if self.config.message_stream:
                p["messagestream"] = self.config.message_stream
            return p

        day, window = await gather_all(
            self.http.get_json(url, params=params(today), headers=headers),
            self.http.get_json(url, params=params(since), headers=headers),
        )
        counts = {event: number_field(day, name, self.provider, "/stats/outbound") for name, event in EVENT_MAP.items()}
        bounce = number_field(window, "BounceRate", self.provider, "/stats/outbound") / 100
        spam = number_field(window, "SpamComplaintsRate", self.provider, "/stats/outbound") / 100
        return [
            self.events(counts),
            self.ratio("email_reputation_bounce_ratio", BOUNCE_RATIO_HELP, bounce),
            self.ratio("email_reputation_complaint_ratio", COMPLAINT_RATIO_HELP, spam),
        ]


COLLECTOR = PostmarkCollector
