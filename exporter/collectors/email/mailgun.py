"""Mailgun: today's domain stats from ``GET /v3/{domain}/stats/total`` (UTC days), US or EU region."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client.core import Metric

from exporter.collectors.api import basic_auth, field, list_field, number
from exporter.collectors.email.common import EmailCollector, day_start
from exporter.schema import Duration, Secret, TargetConfig, check_url

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
STATS_EVENTS = ("accepted", "delivered", "failed", "opened", "clicked", "unsubscribed", "complained")
# permanent failures Mailgun did not even try: suppressed addresses
SUPPRESSIONS = ("suppress-bounce", "suppress-unsubscribe", "suppress-complaint")


@dataclass(frozen=True, kw_only=True)
class MailgunTarget(TargetConfig):
    name: str
    domain: str
    api_key: Secret
    region: Literal["us", "eu"] = "us"
    url: str | None = None  # overrides region (tests, proxies)
    refresh_interval: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        if not self.domain or "/" in self.domain:
            yield "domain", "must be a sending domain such as mg.example.com"
        if self.url is not None:
            yield from check_url(self.url, example="https://api.eu.mailgun.net", credential_key="api_key")

    def base(self) -> str:
        return (self.url or REGIONS[self.region]).rstrip("/")


class MailgunCollector(EmailCollector[MailgunTarget]):
    config_class = MailgunTarget
    provider = "Mailgun"
    provider_label = "mailgun"

    def describe(self) -> str:
        return f"{self.config.base()} {self.config.domain}"

    async def fetch_provider(self) -> list[Metric]:
        start = int(day_start().timestamp())
        params = [("resolution", "day"), ("start", str(start)), *(("event", e) for e in STATS_EVENTS)]
        body: Any = await self.http.get_json(
            f"{self.config.base()}/v3/{self.config.domain}/stats/total",
            params=params,
            headers=basic_auth("api", self.config.api_key.get()),
        )
        counts = dict.fromkeys(
            ("requested", "delivered", "bounced", "deferred", "dropped", "blocked", "complained", "opened"), 0.0
        )
        counts.update(clicked=0.0, unsubscribed=0.0)

        def num(obj: Any, path: str, where: str) -> float:
            return number(field(obj, path, self.provider, where), self.provider, path)

        for i, row in enumerate(list_field(body, "stats", self.provider, "stats/total")):
            where = f"stats[{i}]"
            counts["requested"] += num(row, "accepted.outgoing", where)
            counts["delivered"] += num(row, "delivered.total", where)
            permanent = field(row, "failed.permanent", self.provider, where)
            temporary = field(row, "failed.temporary", self.provider, where)
            drops = sum(number(permanent.get(k, 0), self.provider, f"failed.permanent.{k}") for k in SUPPRESSIONS)
            counts["dropped"] += drops
            counts["bounced"] += num(permanent, "total", f"{where}.failed.permanent") - drops
            blocked = number(temporary.get("espblock", 0), self.provider, "failed.temporary.espblock")
            counts["blocked"] += blocked
            counts["deferred"] += num(temporary, "total", f"{where}.failed.temporary") - blocked
            counts["opened"] += num(row, "opened.total", where)
            counts["clicked"] += num(row, "clicked.total", where)
            counts["unsubscribed"] += num(row, "unsubscribed.total", where)
            counts["complained"] += num(row, "complained.total", where)
        return [self.events(counts)]


COLLECTOR = MailgunCollector
