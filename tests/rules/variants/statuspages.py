"""Status pages as variants: an Atlassian Statuspage v2 page, and one in a scheduled maintenance.

SendGrid's and Mailgun's pages are both hosted Statuspage v2 pages: the same `summary.json`
shape, so the same families (only component names differ); the fixtures hold one such page
(tests/fakes/statuspage.py serves it).  What does change the series is the overall indicator
`maintenance`, which some pages show during a scheduled maintenance although the API documents
only none/minor/major/critical: the collector adds it as a fifth `statuspage_indicator` series,
so a page in maintenance is its own variant.  Both are captured from the real exporter.
"""

from __future__ import annotations

import pytest

from tests.fakes.statuspage import FakeStatuspage
from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Change,
    Incident,
    Rule,
    Source,
    Variant,
    becomes,
    constant,
    exporter_incidents,
    source_down,
)


async def _capture(fake: FakeStatuspage) -> str:
    async with fake.running():
        config = f"statuspages:\n  - name: sendgrid\n    url: {fake.url}\n    refresh_interval: 0s\n"
        async with exporter(config) as client:
            return await scrape(client)


async def statuspage(_request: pytest.FixtureRequest) -> str:
    return await _capture(FakeStatuspage())


async def maintenance(_request: pytest.FixtureRequest) -> str:
    fake = FakeStatuspage()
    fake.summary["status"] = {"indicator": "maintenance", "description": "Service Under Maintenance"}
    fake.summary["incidents"] = []
    return await _capture(fake)


# ------------------------------------------------------------------ a healthy provider

HEALTHY = (
    Rule("statuspage_up", constant(1)),
    Rule("statuspage_indicator", constant(1), {"indicator": "none"}),
    Rule("statuspage_indicator", constant(0)),
    Rule("statuspage_component_status", constant(1), {"status": "operational"}),
    Rule("statuspage_component_status", constant(0)),
    Rule("statuspage_unresolved_incidents", constant(0)),
    Rule("statuspage_maintenances_in_progress", constant(0)),
    *EXPORTER_HEALTHY,
)

# A scheduled maintenance of the provider's dashboard, hours long: nothing to page about.
IN_MAINTENANCE = (
    Rule("statuspage_indicator", constant(1), {"indicator": "maintenance"}),
    Rule("statuspage_indicator", constant(0)),
    Rule("statuspage_component_status", constant(1), {"component": "Dashboard", "status": "under_maintenance"}),
    Rule("statuspage_component_status", constant(0), {"component": "Dashboard"}),
    Rule("statuspage_maintenances_in_progress", constant(1)),
)


# ------------------------------------------------------------------ incidents


def _incident(condition: str, indicator: str, severity: str, component: str) -> Incident:
    """The provider opens an incident of `indicator` impact with SMTP Relay at `component`;
    the page's overall indicator becomes the incident's (a maintenance indicator gives way)."""
    smtp = {"component": "SMTP Relay"}
    return Incident(
        condition,
        "EmailProviderIncident",
        severity,
        (
            Change("statuspage_indicator", becomes(1), {"indicator": indicator}),
            Change("statuspage_indicator", becomes(0), {"indicator": f"(?!{indicator}$).*"}),
            Change("statuspage_component_status", becomes(1), {**smtp, "status": component}),
            Change("statuspage_component_status", becomes(0), {**smtp, "status": f"(?!{component}$).*"}),
            Change("statuspage_unresolved_incidents", becomes(1)),
        ),
        fires_within=15,
        required=(("statuspage_indicator", {"indicator": indicator}),),
    )


INCIDENTS = (
    _incident("the provider reports a minor incident", "minor", "info", "degraded_performance"),
    _incident("the provider reports a major outage", "major", "warning", "partial_outage"),
    _incident("the provider reports a critical outage", "critical", "warning", "major_outage"),
    # the page stops answering (moved off Statuspage, an egress firewall): the collector
    # fails and reports the page down, which keeps StackExporterCollectorFailing quiet
    source_down("the status page cannot be read", "StackExporterStatusPageDown", "warning", "statuspage_up", 45),
    *exporter_incidents("statuspage_up"),
)

SOURCE = Source(
    name="statuspages",
    docs="statuspages",
    variants=(
        Variant("statuspages", "statuspage", statuspage),
        Variant("statuspages", "maintenance", maintenance, healthy=IN_MAINTENANCE),
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
