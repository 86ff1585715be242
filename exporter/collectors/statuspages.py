"""Statuspage-style status pages (SendGrid, Mailgun and most SaaS providers): the provider's own view.

One request per collection, ``GET /api/v2/summary.json`` (public, no auth),
which carries the overall indicator, every component, the unresolved
incidents and the active maintenances.  A sample (target label added by the
engine)::

    statuspage_up{target="sendgrid"} 1.0
    statuspage_indicator{target="sendgrid",indicator="minor"} 1.0
    statuspage_indicator{target="sendgrid",indicator="none"} 0.0
    statuspage_component_status{target="sendgrid",component="SMTP Relay",group="Email Delivery",
                                status="degraded_performance"} 1.0
    statuspage_unresolved_incidents{target="sendgrid"} 1.0
    statuspage_maintenances_in_progress{target="sendgrid"} 1.0

Indicator and component statuses are state sets: one series per known state,
1 for the current one, so ``statuspage_indicator{indicator="major"} == 1``
alerts without regexes.  A state the documentation does not list
(``maintenance`` is seen in the wild) is added as one more series.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.api import ApiCollector, HttpError, RateLimited, ShapeError, field, list_field
from exporter.collectors.base import CollectError
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, TargetConfig, check_url

INDICATORS = ("none", "minor", "major", "critical")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
PROVIDER = "Status page"


@dataclass(frozen=True, kw_only=True)
class StatuspageTarget(TargetConfig):
    name: str
    # the page's root, e.g. https://status.sendgrid.com; /api/v2/summary.json is appended
    url: str
    refresh_interval: Duration = Duration(60.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://status.sendgrid.com")

    def summary_url(self) -> str:
        url = self.url.rstrip("/")
        for suffix in ("/api/v2/summary.json", "/api/v2"):
            url = url.removesuffix(suffix)
        return f"{url}/api/v2/summary.json"


class StatuspageCollector(ApiCollector[StatuspageTarget]):
    config_class = StatuspageTarget
    provider = PROVIDER
    up_metric = "statuspage_up"
    up_help = "1 if the status page's summary.json answered and could be read, 0 otherwise."

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    async def fetch(self) -> list[Metric]:
        try:
            body = await self.http.get_json(self.config.summary_url(), headers={"Accept": "application/json"})
            return self._families(body)
        except RateLimited:
            raise
        except HttpError as exc:
            # the page itself is what we watch: any failure to read it is "down"
            raise CollectError(str(exc), partial=self.down()) from None

    def _families(self, body: Any) -> list[Metric]:
        what = "summary.json"
        indicator = field(body, "status.indicator", PROVIDER, what)
        if not isinstance(indicator, str):
            raise ShapeError(f"{PROVIDER}: field 'status.indicator' is not a string")
        components = list_field(body, "components", PROVIDER, what)
        incidents = list_field(body, "incidents", PROVIDER, what)
        maintenances = body.get("scheduled_maintenances") or []
        if not isinstance(maintenances, list):
            raise ShapeError(f"{PROVIDER}: field 'scheduled_maintenances' is not a list")

        ind = GaugeMetricFamily(
            "statuspage_indicator",
            "Overall status as a state set: 1 for the page's current indicator (none, minor, major, critical).",
            labels=["indicator"],
        )
        for state in _states(INDICATORS, indicator):
            ind.add_metric([state], 1.0 if state == indicator else 0.0)

        comp_fam = _component_family(components)

        unresolved = GaugeMetricFamily(
            "statuspage_unresolved_incidents",
            "Incidents on the page that are not resolved yet (any impact).",
            value=float(len(incidents)),
        )
        in_progress = sum(1 for m in maintenances if isinstance(m, dict) and m.get("status") == "in_progress")
        maint = GaugeMetricFamily(
            "statuspage_maintenances_in_progress",
            "Scheduled maintenances currently in progress.",
            value=float(in_progress),
        )
        families: list[Metric] = [self._up(1.0), ind, comp_fam, unresolved, maint]
        updated = _timestamp(body.get("page", {}).get("updated_at") if isinstance(body.get("page"), dict) else None)
        if updated is not None:
            families.append(
                GaugeMetricFamily(
                    "statuspage_page_updated_timestamp_seconds",
                    "Unix time the provider last updated the page.",
                    value=updated,
                )
            )
        return families

    def _up(self, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily("statuspage_up", self.up_help, value=value)


def _states(known: tuple[str, ...], current: str) -> tuple[str, ...]:
    return known if current in known else (*known, current)


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _component_family(components: list[Any]) -> GaugeMetricFamily:
    """Each component's status as a state set, under its parent group's name."""
    by_id: dict[str, str] = {}
    for i, comp in enumerate(components):
        cid, name = (
            field(comp, "id", PROVIDER, f"components[{i}]"),
            field(comp, "name", PROVIDER, f"components[{i}]"),
        )
        if isinstance(cid, str) and isinstance(name, str):
            by_id[cid] = name
    comp_fam = GaugeMetricFamily(
        "statuspage_component_status",
        "Status of each component as a state set: 1 for its current status; group is the parent group's name"
        " ('' at top level).",
        labels=["component", "group", "status"],
    )
    seen: set[tuple[str, str]] = set()
    for i, comp in enumerate(components):
        status = field(comp, "status", PROVIDER, f"components[{i}]")
        name = str(comp.get("name", ""))
        group = by_id.get(str(comp.get("group_id") or ""), "")
        if not isinstance(status, str) or (name, group) in seen:
            continue  # two components with one name in one group would be duplicate series
        seen.add((name, group))
        for state in _states(COMPONENT_STATUSES, status):
            comp_fam.add_metric([name, group, state], 1.0 if state == status else 0.0)
    return comp_fam


COLLECTOR = StatuspageCollector
