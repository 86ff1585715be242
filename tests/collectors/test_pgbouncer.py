"""The PgBouncer collector against a real PgBouncer (transaction mode) in front of PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from peers.process import wait_until
from tests.helpers import exporter, promtool_check, scrape, value, values
from tests.servers.postgres import STATS_PASSWORD, PgBouncer, PostgresServer, private_dir

pytestmark = pytest.mark.timeout(90)


def bouncer_config(*targets: tuple[str, str], timeout: str = "5s") -> dict[str, Any]:
    return {"global": {"scrape_timeout": timeout}, "pgbouncer": [{"name": n, "dsn": d} for n, d in targets]}


async def test_values_match_show_output(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.app_dsn()) as conn:
        conn.execute("SELECT 1")
    async with exporter(bouncer_config(("b", pgbouncer.dsn))) as http:
        text = await scrape(http)
    assert promtool_check(text) == ""
    assert value(text, "pgbouncer_up", target="b") == 1
    pools = {(r["database"], r["user"]): r for r in pgbouncer.show("POOLS")}
    app = pools[("appdb", "app")]
    lv = {"target": "b", "database": "appdb", "user": "app"}
    assert value(text, "pgbouncer_pools_server_idle_connections", **lv) == app["sv_idle"]
    assert value(text, "pgbouncer_pools_client_waiting_connections", **lv) == 0
    (info,) = values(text, "pgbouncer_pools_info", **lv)
    assert info.labels["pool_mode"] == "transaction"
    config = {r["key"]: r["value"] for r in pgbouncer.show("CONFIG")}
    assert value(text, "pgbouncer_config_max_client_connections", target="b") == int(config["max_client_conn"])
    assert value(text, "pgbouncer_config_default_pool_size", target="b") == pgbouncer.pool_size
    dbs = {r["name"]: r for r in pgbouncer.show("DATABASES")}
    (pool_size,) = [s for s in values(text, "pgbouncer_databases_pool_size", target="b") if s.labels["name"] == "appdb"]
    assert pool_size.value == dbs["appdb"]["pool_size"]
    stats = {r["database"]: r for r in pgbouncer.show("STATS")}
    queries = value(text, "pgbouncer_stats_queries_pooled_total", target="b", database="appdb")
    assert queries is not None and 1 <= queries <= int(stats["appdb"]["total_query_count"])
    lists = {r["list"]: r["items"] for r in pgbouncer.show("LISTS")}
    assert value(text, "pgbouncer_databases", target="b") == lists["databases"]


async def test_clients_beyond_the_pool_wait_and_max_wait_rises(pgbouncer: PgBouncer) -> None:
    clients = pgbouncer.pool_size + 2
    barrier = threading.Barrier(clients)

    def hold() -> None:
        with psycopg.connect(pgbouncer.app_dsn(), autocommit=True) as conn:
            barrier.wait(10)
            conn.execute("SELECT pg_sleep(2.5)")

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: next(r for r in pgbouncer.show("POOLS") if r["database"] == "appdb")["cl_waiting"] >= 2,
            10,
            message="clients waiting in pgbouncer",
        )
        await asyncio.sleep(0.5)
        async with exporter(bouncer_config(("b", pgbouncer.dsn))) as http:
            text = await scrape(http)
        app = next(r for r in pgbouncer.show("POOLS") if r["database"] == "appdb")
    finally:
        for t in threads:
            t.join(15)
    lv = {"target": "b", "database": "appdb", "user": "app"}
    waiting = value(text, "pgbouncer_pools_client_waiting_connections", **lv)
    assert waiting == clients - pgbouncer.pool_size == app["cl_waiting"]
    assert value(text, "pgbouncer_pools_server_active_connections", **lv) == pgbouncer.pool_size
    maxwait = value(text, "pgbouncer_pools_client_maxwait_seconds", **lv)
    assert maxwait is not None and 0.4 <= maxwait <= app["maxwait"] + app["maxwait_us"] / 1e6 + 0.01


async def test_many_scrapes_on_one_connection(pgbouncer: PgBouncer) -> None:
    # prepare_threshold: psycopg would prepare a query run 5 times, which the console rejects
    async with exporter(bouncer_config(("b", pgbouncer.dsn))) as http:
        ups = [value(await scrape(http), "pgbouncer_up", target="b") for _ in range(8)]
    assert ups == [1.0] * 8


@pytest.fixture
def own_bouncer(pg_primary: PostgresServer) -> Iterator[PgBouncer]:
    base = private_dir("stack-pgb-own-")
    try:
        with PgBouncer(base, pg_primary) as bouncer:
            yield bouncer
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_stopped_bouncer_is_down_in_time_and_recovers(own_bouncer: PgBouncer) -> None:
    async with exporter(bouncer_config(("b", own_bouncer.dsn), timeout="2s")) as http:
        assert value(await scrape(http), "pgbouncer_up", target="b") == 1
        own_bouncer.stop()
        start = time.monotonic()
        text = await scrape(http)
        assert time.monotonic() - start < 2
        assert value(text, "pgbouncer_up", target="b") == 0
        own_bouncer.start()
        assert value(await scrape(http), "pgbouncer_up", target="b") == 1


async def test_frozen_bouncer_does_not_stall_the_scrape(own_bouncer: PgBouncer) -> None:
    assert own_bouncer.process is not None
    async with exporter(bouncer_config(("b", own_bouncer.dsn), timeout="1s")) as http:
        assert value(await scrape(http), "pgbouncer_up", target="b") == 1
        own_bouncer.process.pause()
        try:
            start = time.monotonic()
            text = await scrape(http)
            assert time.monotonic() - start < 1.5
            assert value(text, "pgbouncer_up", target="b") == 0
        finally:
            own_bouncer.process.resume()
        ups = [value(await scrape(http), "pgbouncer_up", target="b") for _ in range(2)]
        assert ups[-1] == 1


async def test_bad_password_and_secrets_never_leak(pgbouncer: PgBouncer, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-PGB-password-0c1d"
    config = bouncer_config(("bad", pgbouncer.dsn.replace(STATS_PASSWORD, wrong)), ("good", pgbouncer.dsn))
    caplog.set_level(logging.DEBUG)
    async with exporter(config) as http:
        text = await scrape(http)
        landing = await (await http.get("/")).text()
    assert value(text, "pgbouncer_up", target="bad") == 0
    assert value(text, "pgbouncer_up", target="good") == 1
    messages = "\n".join(r.getMessage() + str(getattr(r, "kv", "")) for r in caplog.records)
    assert "password authentication failed" in messages
    for blob in (text, landing, messages):
        assert wrong not in blob
        assert STATS_PASSWORD not in blob


def test_config_rejects_a_dsn_that_is_not_the_admin_console() -> None:
    from exporter.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config("pgbouncer:\n  - name: b\n    dsn: postgresql://stats:pw@127.0.0.1:6432/appdb\n")
    assert "pgbouncer[0].dsn: the database must be pgbouncer" in str(err.value)
    assert ":pw@" not in str(err.value)
