"""PgBouncer as a variant: the suite's PgBouncer (transaction pooling) in front of the primary.

Captured from the real exporter reading the admin console as a `stats_users` user, after an
application client has logged in through it (PgBouncer lists a pool once a client of that
database and user has connected, as every pool of a running application has): so the capture
holds the application's pool `appdb/app` and the admin console's own `pgbouncer` pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
import pytest

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
    becomes,
    constant,
    exporter_incidents,
    grows,
    source_down,
)
from tests.servers.postgres import PgBouncer


async def pgbouncer(request: pytest.FixtureRequest) -> str:
    bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    with psycopg.connect(bouncer.app_dsn()) as conn:
        conn.execute("SELECT 1")
    config = f"global:\n  scrape_timeout: 10s\npgbouncer:\n  - name: pool\n    dsn: {bouncer.dsn}\n"
    async with exporter(config) as client:
        return await scrape(client)


# ------------------------------------------------------------------ a healthy pool

POOL = {"user": "app"}
POOL_SIZE = 20


def _burst(value: float) -> Values:
    """A busy pool queues a client for milliseconds now and then: at one scrape in seven."""
    return lambda _s, t: value if t % 7 == 3 else 0.0


HEALTHY = (
    Rule("pgbouncer_up", constant(1)),
    # 200 application clients share 20 server connections (transaction pooling)
    Rule("pgbouncer_pools_client_active_connections", constant(200), POOL),
    Rule("pgbouncer_pools_server_active_connections", constant(12), POOL),
    Rule("pgbouncer_pools_server_idle_connections", constant(8), POOL),
    Rule("pgbouncer_pools_client_waiting_connections", _burst(2), POOL),
    Rule("pgbouncer_pools_client_maxwait_seconds", _burst(0.02), POOL),
    Rule("pgbouncer_pools_client_waiting_connections", constant(0)),
    Rule("pgbouncer_pools_client_maxwait_seconds", constant(0)),
    Rule("pgbouncer_databases_pool_size", constant(POOL_SIZE)),
    Rule("pgbouncer_config_default_pool_size", constant(POOL_SIZE)),
    Rule("pgbouncer_config_max_client_connections", constant(1000)),
    # the 200 application clients, a few logging in and the admin sessions
    Rule("pgbouncer_used_clients", constant(210)),
    Rule("pgbouncer_databases_paused", constant(0)),
    # 50 transactions/s of 2 queries each
    Rule("pgbouncer_stats_sql_transactions_pooled_total", grows(3000), {"database": "appdb"}),
    Rule("pgbouncer_stats_queries_pooled_total", grows(6000), {"database": "appdb"}),
    Rule("pgbouncer_stats_client_wait_seconds_total", grows(0.5), {"database": "appdb"}),
    *EXPORTER_HEALTHY,
)


# ------------------------------------------------------------------ incidents


def _pool(_variant: Variant, _samples: Sequence[Sample]) -> dict[str, str]:
    return {"database": "appdb", "user": "app"}


def _saturated(waiting: int, maxwait: Callable[[Sample, int, float], float]) -> tuple[Change, ...]:
    """Every server connection of the pool is busy and clients queue behind them."""
    return (
        Change("pgbouncer_pools_client_waiting_connections", becomes(waiting), POOL),
        Change("pgbouncer_pools_client_maxwait_seconds", maxwait, POOL),
        Change("pgbouncer_pools_server_active_connections", becomes(POOL_SIZE), POOL),
        Change("pgbouncer_pools_server_idle_connections", becomes(0), POOL),
    )


def _maxwait(_s: Sample, t: int, _start: float) -> float:
    # the oldest waiting client waits longer and longer, until query_wait_timeout (120 s)
    # cancels it and the next in line is the oldest
    return min(110.0, 10.0 + 60.0 * t)


def _clients(severity: str, clients: int) -> Incident:
    """A deploy starts a second set of app instances (or a client leaks connections): the
    clients near max_client_conn, past which PgBouncer refuses new ones."""
    return Incident(
        f"clients near max_client_conn ({severity})",
        "PgBouncerClientConnectionsHigh",
        severity,
        (Change("pgbouncer_used_clients", becomes(clients)),),
        fires_within=15,
        required=(("pgbouncer_used_clients", {}), ("pgbouncer_config_max_client_connections", {})),
    )


INCIDENTS = (
    # escalation.pgBouncerDown (15m) instead of the 1m `for`
    source_down(
        "the admin console cannot be reached", "PgBouncerDown", "critical", "pgbouncer_up", 10, escalates_within=25
    ),
    Incident(
        # the pool is too small for the peak: clients queue for most of a second
        "clients keep waiting for a server connection",
        "PgBouncerClientsWaiting",
        "warning",
        _saturated(6, becomes(0.8)),
        fires_within=15,
        required=(("pgbouncer_pools_client_waiting_connections", POOL),),
        expect_labels=_pool,
    ),
    Incident(
        # the database slows down (or a lock piles up): queries hold the server connections
        # and the queue's oldest client waits for many seconds
        "the pool is exhausted: clients wait for seconds",
        "PgBouncerPoolExhausted",
        "critical",
        _saturated(40, _maxwait),
        fires_within=10,
        # escalation.pgBouncerPoolExhausted (15m) instead of the 1m `for`
        escalates_within=25,
        required=(("pgbouncer_pools_client_maxwait_seconds", POOL),),
        expect_labels=_pool,
    ),
    _clients("warning", 850),  # 85% of max_client_conn
    _clients("critical", 970),  # 97%
    Incident(
        # a switchover script ran PAUSE appdb and died before RESUME: every client of the
        # database waits
        "a database stays paused",
        "PgBouncerDatabasePaused",
        "warning",
        (Change("pgbouncer_databases_paused", becomes(1), {"name": "appdb"}),),
        fires_within=15,
        expect_labels=lambda _v, _s: {"name": "appdb"},
    ),
    *exporter_incidents("pgbouncer_up"),
)

SOURCE = Source(
    name="pgbouncer",
    docs="pgbouncer",
    variants=(Variant("pgbouncer", "pgbouncer", pgbouncer),),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
