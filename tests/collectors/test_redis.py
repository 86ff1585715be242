"""The Redis collector against real redis-server processes: values checked against the server."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import exporter, promtool_check, scrape, value, values
from tests.servers.redis import REDIS_PASSWORD, RedisSentinelSetup, RedisServer, replication

pytestmark = pytest.mark.timeout(90)


def redis_config(*targets: tuple[str, str], timeout: str = "5s", **extra: Any) -> dict[str, Any]:
    """One redis target per (name, url), each with the ``extra`` keys."""
    return {"global": {"scrape_timeout": timeout}, "redis": [{"name": n, "url": u, **extra} for n, u in targets]}


def success(text: str, target: str) -> float | None:
    return value(text, "stack_exporter_collector_success", collector="redis", target=target)


async def test_standalone_values_match_the_server(redis_server: RedisServer) -> None:
    client = redis_server.client(db=5)
    client.flushdb()
    client.mset({f"k:{i}": i for i in range(37)})
    for i in range(11):
        client.set(f"ttl:{i}", "x", ex=3600)
    client.config_set("maxmemory", "64mb")
    try:
        async with exporter(redis_config(("main", redis_server.url))) as http:
            text = await scrape(http)
        info = redis_server.client().info("all")
        assert value(text, "redis_up", target="main") == 1
        assert success(text, "main") == 1
        assert value(text, "redis_db_keys", target="main", db="db5") == 48
        assert value(text, "redis_db_keys_expiring", target="main", db="db5") == 11
        ttl = value(text, "redis_db_avg_ttl_seconds", target="main", db="db5")
        # Redis estimates avg_ttl in its expire cycle: 0 until it has sampled the db
        assert ttl is not None and 0 <= ttl <= 3600
        assert value(text, "redis_memory_max_bytes", target="main") == 64 * 1024 * 1024
        assert value(text, "redis_config_maxclients", target="main") == info["maxclients"]
        (inst,) = values(text, "redis_instance_info", target="main")
        assert inst.labels["role"] == "master"
        assert inst.labels["redis_version"] == info["redis_version"]
        assert inst.labels["redis_mode"] == "standalone"
        assert inst.labels["tcp_port"] == str(redis_server.port)
        assert value(text, "redis_uptime_in_seconds", target="main") == pytest.approx(info["uptime_in_seconds"], abs=2)
        # commandstats: the MSET this test sent is counted
        mset_calls = value(text, "redis_commands_total", target="main", cmd="mset")
        assert mset_calls is not None and mset_calls >= 1
        ping = value(text, "redis_ping_duration_seconds", target="main")
        assert ping is not None and 0 < ping < 1
        # INFO calls these active_defrag_*: a wrong field name silently drops the series
        assert value(text, "redis_defrag_hits_total", target="main") == info["active_defrag_hits"]
        assert value(text, "redis_defrag_misses_total", target="main") == info["active_defrag_misses"]
        # latencystats' p99.9 is quantile "0.999", as Redis names it, not a float's repr
        quantiles = {s.labels["quantile"] for s in values(text, "redis_commands_latency_seconds", target="main")}
        assert quantiles == {"0.5", "0.99", "0.999"}
    finally:
        client.flushdb()
        client.config_set("maxmemory", "0")


async def test_errorstats_slowlog_and_latency_spikes(redis_fresh: RedisServer) -> None:
    client = redis_fresh.client()
    client.config_set("slowlog-log-slower-than", "0")
    client.config_set("latency-monitor-threshold", "1")
    client.execute_command("DEBUG", "SLEEP", "0.02")  # a latency event of about 20 ms
    with pytest.raises(Exception, match="unknown command"):
        client.execute_command("NOSUCHCOMMAND")
    id_before = client.slowlog_get(1)[0]["id"]
    errors_before = client.info("errorstats")["errorstat_ERR"]["count"]
    async with exporter(redis_config(("r", redis_fresh.url))) as http:
        text = await scrape(http)
    id_after = client.slowlog_get(1)[0]["id"]
    errors_after = client.info("errorstats")["errorstat_ERR"]["count"]
    assert value(text, "redis_errors_total", target="r", err="ERR") == errors_after
    # monitoring adds no errors of its own (redis-py's CLIENT SETINFO would, on Redis 7.0)
    assert errors_after == errors_before
    length = value(text, "redis_slowlog_length", target="r")
    assert length is not None and length >= 3
    last_id = value(text, "redis_slowlog_last_id", target="r")
    assert last_id is not None and id_before <= last_id < id_after
    spike = value(text, "redis_latency_spike_duration_seconds", target="r", event_name="command")
    assert spike is not None and 0.015 <= spike < 1
    at = value(text, "redis_latency_spike_last_timestamp_seconds", target="r", event_name="command")
    assert at is not None and abs(at - time.time()) < 60


async def test_replication_link_lag_and_link_down(tmp_path: Path) -> None:
    with replication(tmp_path) as pair:
        pair.primary.client().set("x", "1")
        config = redis_config(("primary", pair.primary.url), ("replica", pair.replica.url))
        async with exporter(config) as http:
            text = await scrape(http)
            assert value(text, "redis_connected_slaves", target="primary") == 1
            (lag,) = values(text, "redis_connected_slave_lag_seconds", target="primary")
            assert lag.labels["slave_port"] == str(pair.replica.port)
            assert lag.labels["slave_state"] == "online"
            assert value(text, "redis_master_link_up", target="replica") == 1
            (inst,) = values(text, "redis_instance_info", target="replica")
            assert inst.labels["role"] == "slave"
            (slave,) = values(text, "redis_slave_info", target="replica")
            assert slave.labels["master_port"] == str(pair.primary.port)

            pair.primary.stop()
            pair.replica.wait_for_link_down()
            text = await scrape(http)
            assert value(text, "redis_up", target="primary") == 0
            assert success(text, "primary") == 0
            assert value(text, "redis_up", target="replica") == 1
            assert value(text, "redis_master_link_up", target="replica") == 0
            down = value(text, "redis_master_link_down_since_seconds", target="replica")
            assert down is not None and down >= 0


async def test_cluster_state_and_slots(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    node = redis_cluster.nodes[0]
    async with exporter(redis_config(("node0", node.url))) as http:
        text = await scrape(http)
        text = await scrape(http)  # the second scrape uses the learnt mode in one pipeline
    assert value(text, "redis_cluster_enabled", target="node0") == 1
    assert value(text, "redis_cluster_state", target="node0") == 1
    assert value(text, "redis_cluster_slots_assigned", target="node0") == 16384
    assert value(text, "redis_cluster_slots_ok", target="node0") == 16384
    assert value(text, "redis_cluster_slots_fail", target="node0") == 0
    assert value(text, "redis_cluster_known_nodes", target="node0") == len(redis_cluster.nodes)
    assert value(text, "redis_cluster_size", target="node0") == 3
    (inst,) = values(text, "redis_instance_info", target="node0")
    assert inst.labels["redis_mode"] == "cluster"


async def test_sentinel_masters_and_ok_counts(redis_sentinel: RedisSentinelSetup) -> None:
    sentinel = redis_sentinel.sentinel
    async with exporter(redis_config(("sentinel", sentinel.url))) as http:

        async def linked() -> str:
            # a just-discovered replica is flagged "disconnected" until the
            # sentinel's own link to it is up
            text = await scrape(http)
            assert value(text, "redis_sentinel_master_ok_slaves", target="sentinel") == 1
            return text

        text = await eventually(linked)
    assert value(text, "redis_up", target="sentinel") == 1
    assert value(text, "redis_sentinel_masters", target="sentinel") == 1
    (status,) = values(text, "redis_sentinel_master_status", target="sentinel")
    assert status.labels["master_name"] == "mymaster"
    assert status.labels["master_status"] == "ok"
    assert status.labels["master_address"] == f"127.0.0.1:{redis_sentinel.primary.port}"
    assert status.value == 1
    assert value(text, "redis_sentinel_master_ok_slaves", target="sentinel") == 1
    assert value(text, "redis_sentinel_master_ok_sentinels", target="sentinel") == 1
    (inst,) = values(text, "redis_instance_info", target="sentinel")
    assert inst.labels["redis_mode"] == "sentinel"


async def test_key_groups_count_matching_keys_in_the_background(redis_fresh: RedisServer) -> None:
    client = redis_fresh.client(db=2)
    client.mset({f"session:{i}": "x" for i in range(1234)})
    client.mset({f"user:{i}": "x" for i in range(300)})
    key_patterns = [
        {"name": "sessions", "pattern": "session:*", "db": 2},
        {"name": "users", "pattern": "user:*", "db": 2},
        {"name": "none", "pattern": "nothing:*", "db": 2},
    ]
    async with exporter(redis_config(("r", redis_fresh.url), key_patterns=key_patterns)) as http:
        await scrape(http)  # starts the background pass

        async def counted() -> str:
            text = await scrape(http)
            assert value(text, "redis_key_group_keys", key_group="none") is not None
            return text

        text = await eventually(counted)
    assert value(text, "redis_key_group_keys", target="r", key_group="sessions", db="db2") == 1234
    assert value(text, "redis_key_group_keys", target="r", key_group="users", db="db2") == 300
    assert value(text, "redis_key_group_keys", target="r", key_group="none", db="db2") == 0
    assert value(text, "redis_key_group_scan_complete", target="r", key_group="sessions") == 1


async def test_key_group_budget_bounds_a_huge_keyspace(redis_fresh: RedisServer) -> None:
    client = redis_fresh.client()
    pipe = client.pipeline(transaction=False)
    for i in range(20000):
        pipe.set(f"session:{i}", "x")
    pipe.execute()
    config = redis_config(
        ("r", redis_fresh.url),
        key_patterns=[{"name": "sessions", "pattern": "session:*"}],
        key_pattern_max_scan_calls=2,
    )
    async with exporter(config) as http:
        await scrape(http)

        async def counted() -> str:
            text = await scrape(http)
            assert value(text, "redis_key_group_scan_complete", key_group="sessions") is not None
            return text

        text = await eventually(counted)
    assert value(text, "redis_key_group_scan_complete", target="r", key_group="sessions") == 0
    assert value(text, "redis_key_group_scan_calls", target="r", key_group="sessions") == 2
    found = value(text, "redis_key_group_keys", target="r", key_group="sessions")
    assert found is not None and 0 < found < 20000


async def test_killed_server_goes_down_in_time_and_recovers(redis_fresh: RedisServer) -> None:
    redis_fresh.client().set("k", "v")
    async with exporter(redis_config(("r", redis_fresh.url), timeout="2s")) as http:
        assert value(await scrape(http), "redis_up", target="r") == 1
        redis_fresh.kill()
        start = time.monotonic()
        text = await scrape(http)
        assert time.monotonic() - start < 2.5
        assert value(text, "redis_up", target="r") == 0
        assert success(text, "r") == 0
        assert value(text, "stack_exporter_collector_failures_total", target="r") == 1
        redis_fresh.start()
        text = await scrape(http)
        assert value(text, "redis_up", target="r") == 1
        assert success(text, "r") == 1


async def test_hung_server_fails_alone_and_the_others_do_not_wait(
    redis_fresh: RedisServer, redis_server: RedisServer
) -> None:
    config = redis_config(("hung", redis_fresh.url), ("healthy", redis_server.url), timeout="1s")
    async with exporter(config) as http:
        await scrape(http)  # warm the pools
        sleeper = asyncio.create_task(
            asyncio.to_thread(redis_fresh.client(socket_timeout=10).execute_command, "DEBUG", "SLEEP", "3")
        )
        await asyncio.sleep(0.2)
        start = time.monotonic()
        text = await scrape(http)
        elapsed = time.monotonic() - start
        await sleeper
    assert elapsed < 1.6, f"the scrape took {elapsed:.2f}s with a 1s deadline"
    assert success(text, "hung") == 0
    assert value(text, "redis_up", target="hung") == 0
    assert success(text, "healthy") == 1
    assert value(text, "redis_up", target="healthy") == 1


async def test_prometheus_timeout_header_lowers_the_deadline(redis_fresh: RedisServer) -> None:
    async with exporter(redis_config(("r", redis_fresh.url), timeout="10s")) as http:
        await scrape(http)
        sleeper = asyncio.create_task(
            asyncio.to_thread(redis_fresh.client(socket_timeout=10).execute_command, "DEBUG", "SLEEP", "2")
        )
        await asyncio.sleep(0.2)
        start = time.monotonic()
        text = await scrape(http, **{"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
        elapsed = time.monotonic() - start
        await sleeper
    assert elapsed < 1.4  # 1.5 s minus the 0.5 s offset, plus slack
    assert success(text, "r") == 0


async def test_wrong_password_fails_clearly_without_leaking(
    redis_with_password: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-PASSWORD-91c2"
    good_url = redis_with_password.url.replace("redis://", f"redis://:{REDIS_PASSWORD}@")
    config = {
        "redis": [
            {"name": "wrong", "url": redis_with_password.url, "password": wrong},
            {"name": "good", "url": good_url},
        ]
    }
    caplog.set_level(logging.DEBUG)
    async with exporter(config) as http:
        text = await scrape(http)
        landing = await (await http.get("/")).text()
    assert value(text, "redis_up", target="wrong") == 0
    assert value(text, "redis_up", target="good") == 1
    messages = [r.getMessage() + str(getattr(r, "kv", "")) for r in caplog.records]
    assert any("wrong" in m and ("WRONGPASS" in m or "invalid" in m.lower()) for m in messages), messages
    for blob in (text, landing, "\n".join(messages)):
        assert wrong not in blob
        assert REDIS_PASSWORD not in blob


async def test_fifty_concurrent_scrapes_cost_one_round_of_commands(redis_fresh: RedisServer) -> None:
    client = redis_fresh.client()

    def info_calls() -> int:
        stats: dict[str, dict[str, int]] = client.info("commandstats")  # type: ignore[assignment]
        return int(stats.get("cmdstat_info", {}).get("calls", 0))

    async with exporter(redis_config(("r", redis_fresh.url))) as http:
        await scrape(http)  # learn the mode and warm the pool
        before = info_calls()
        texts = await asyncio.gather(*(scrape(http) for _ in range(50)))
        after = info_calls()
    assert all(value(t, "redis_up", target="r") == 1 for t in texts)
    # +1 for the INFO that read `before`; the 50 scrapes shared one collection
    assert after - before == 2


async def test_blocked_config_and_latency_commands_fail_soft(tmp_path: Path) -> None:
    # managed services rename or disable these; the rest must still come
    args = ["--rename-command", "LATENCY", "", "--rename-command", "CONFIG", "", "--rename-command", "SLOWLOG", ""]
    with RedisServer(tmp_path / "managed", extra_args=args) as server:
        async with exporter(redis_config(("managed", server.url))) as http:
            text = await scrape(http)
            text = await scrape(http)
    assert success(text, "managed") == 1
    assert value(text, "redis_up", target="managed") == 1
    assert value(text, "redis_memory_used_bytes", target="managed") is not None
    assert value(text, "redis_slowlog_length", target="managed") is None
    assert not values(text, "redis_latency_spike_duration_seconds")


async def every_mode(tmp_path: Path, redis_cluster, redis_sentinel: RedisSentinelSetup) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """Scrapes of a primary, its replica, a cluster node and a sentinel, with every optional part present.

    Returns the text exposition, the same after the primary died (the replica's
    link-down series), and an OpenMetrics exposition of the second state.
    """
    with replication(tmp_path) as pair:
        client = pair.primary.client()
        client.config_set("slowlog-log-slower-than", "0")
        client.config_set("latency-monitor-threshold", "1")
        client.execute_command("DEBUG", "SLEEP", "0.01")
        client.set("session:1", "x", ex=100)
        with pytest.raises(Exception, match="unknown command"):
            client.execute_command("NOSUCHCOMMAND")
        config = redis_config(
            ("primary", pair.primary.url),
            ("replica", pair.replica.url),
            ("cluster", redis_cluster.nodes[0].url),
            ("sentinel", redis_sentinel.sentinel.url),
            key_patterns=[{"name": "sessions", "pattern": "session:*"}],
        )
        async with exporter(config) as http:
            await scrape(http)

            async def ready() -> str:
                text = await scrape(http)
                assert value(text, "redis_key_group_keys", target="primary") == 1
                return text

            text = await eventually(ready)
            pair.primary.stop()
            pair.replica.wait_for_link_down()
            down_text = await scrape(http)
            openmetrics = await scrape(http, Accept="application/openmetrics-text; version=1.0.0")
    return text, down_text, openmetrics


async def test_promtool_over_every_mode(tmp_path: Path, redis_cluster, redis_sentinel: RedisSentinelSetup) -> None:  # type: ignore[no-untyped-def]
    text, down_text, openmetrics = await every_mode(tmp_path, redis_cluster, redis_sentinel)
    assert promtool_check(text) == ""
    assert promtool_check(down_text) == ""
    assert openmetrics.rstrip().endswith("# EOF")


async def eventually(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """Retry an async check until it stops raising AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_connections_are_pooled_across_scrapes(redis_fresh: RedisServer) -> None:
    client = redis_fresh.client()
    async with exporter(redis_config(("r", redis_fresh.url))) as http:
        await scrape(http)
        before = client.info("stats")["total_connections_received"]
        for _ in range(10):
            await scrape(http)
        after = client.info("stats")["total_connections_received"]
    assert after == before
