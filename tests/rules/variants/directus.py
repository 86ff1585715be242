"""Directus as variants: a real Directus 12 and a Directus 11 from its captured bodies.

Directus 12 is the real server the suite starts (tests/servers/directus.py, SQLite); Directus 11
(11.4 and later need Node 22) is served by the fake that replays what a real 11.3.5 sent
(tests/fakes/directus.py).  Both are scraped with an admin token, as docs/metrics/directus.md
recommends: the health checks (response times, the connection pool) and the version need one.
11.3.5 has no `/metrics` route, but the pack reads Directus only through the exporter's
`/server/health` series, which both versions answer with the same checks.
"""

from __future__ import annotations

import pytest

from tests.fakes.directus import FakeDirectus
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
    source_down,
)
from tests.servers.directus import ADMIN_TOKEN

FAKE_TOKEN = "matrix-directus-token-11x-77d0"


async def _capture(url: str, token: str) -> str:
    config = (
        f"directus:\n  - name: cms\n    url: {url}\n    token: {token}\n"
        "    refresh_interval: 0s\n    collections: [widgets]\n"
    )
    async with exporter(config) as client:
        return await scrape(client)


async def directus12(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue("directus")
    return await _capture(server.url, ADMIN_TOKEN)


async def directus11(_request: pytest.FixtureRequest) -> str:
    fake = FakeDirectus.v11(FAKE_TOKEN)
    async with fake.running():
        return await _capture(fake.url, FAKE_TOKEN)


# ------------------------------------------------------------------ a healthy CMS

# Directus checks its database and storage with every health answer (cached 5 min by default):
# a few milliseconds on a healthy host, under the 150 ms / 750 ms thresholds it warns at.  The
# pool is mostly idle between requests (SQLite's pool holds one connection).
HEALTHY = (
    Rule("directus_up", constant(1)),
    Rule("directus_health_status", constant(1), {"status": "ok"}),
    Rule("directus_health_status", constant(0)),
    Rule("directus_health_check_ok", constant(1)),
    Rule("directus_health_database_response_time_seconds", constant(0.004)),
    Rule("directus_health_storage_response_time_seconds", constant(0.005)),
    Rule("directus_health_database_connections_used", constant(0)),
    Rule("directus_health_database_connections_available", lambda s, _t: max(s.value, 1)),
    # an editor adds a few items an hour
    Rule("directus_items", lambda s, t: s.value + t // 20),
    *EXPORTER_HEALTHY,
)


# ------------------------------------------------------------------ incidents


def _pool_size(sample: Sample, _t: int, _start: float) -> float:
    """Every connection of Directus's pool: one on SQLite, knex's default of 10 elsewhere."""
    return 1 if sample.label("client") == "sqlite3" else 10


INCIDENTS = (
    # escalation.directusDown (30m) instead of the 5m `for`
    source_down("Directus does not answer", "DirectusDown", "critical", "directus_up", 15, escalates_within=40),
    Incident(
        # the database answers, slowly: Directus turns that check (and itself) to warn
        "Directus reports its health as warn (a slow database)",
        "DirectusUnhealthy",
        "warning",
        (
            Change("directus_health_status", becomes(1), {"status": "warn"}),
            Change("directus_health_status", becomes(0), {"status": "ok"}),
            Change("directus_health_database_response_time_seconds", becomes(0.6)),
            Change("directus_health_check_ok", becomes(0), {"check": ".*:responseTime"}),
        ),
        fires_within=15,
        required=(("directus_health_status", {"status": "warn"}),),
    ),
    Incident(
        # the database is gone: /server/health answers 503 with status error, the pool empty
        "Directus reports its health as error (the database is unreachable)",
        "DirectusUnhealthy",
        "critical",
        (
            Change("directus_health_status", becomes(1), {"status": "error"}),
            Change("directus_health_status", becomes(0), {"status": "ok"}),
            Change("directus_health_check_ok", becomes(0), {"check": "(sqlite3|pg|mysql).*"}),
            Change("directus_health_database_connections_available", becomes(0)),
        ),
        fires_within=15,
        # escalation.directusUnhealthy (30m) instead of the 5m `for`; the warn level does not escalate
        escalates_within=40,
        required=(("directus_health_status", {"status": "error"}),),
    ),
    Incident(
        # every pooled connection is busy (a slow query piling up requests): the health
        # check waits for one too, so its response time grows
        "the database connection pool is nearly exhausted",
        "DirectusDatabaseConnectionsHigh",
        "warning",
        (
            Change("directus_health_database_connections_used", _pool_size),
            Change("directus_health_database_connections_available", becomes(0)),
            Change("directus_health_database_response_time_seconds", becomes(0.12)),
        ),
        fires_within=25,
        required=(
            ("directus_health_database_connections_used", {}),
            ("directus_health_database_connections_available", {}),
        ),
    ),
    *exporter_incidents("directus_up"),
)

SOURCE = Source(
    name="directus",
    docs="directus",
    variants=(Variant("directus", "directus12", directus12), Variant("directus", "directus11", directus11)),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
