"""The Redis fixtures start what they promise, and the process controls work."""

from __future__ import annotations

import time

import pytest
import redis

from peers.process import free_port, port_is_open, wait_until
from tests.servers.redis import (
    REDIS_PASSWORD,
    RedisCluster,
    RedisReplication,
    RedisSentinelSetup,
    RedisServer,
)

pytestmark = pytest.mark.timeout(60)


def test_free_port_never_repeats_and_is_not_the_machine_redis() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert 6379 not in ports


def test_wait_until_times_out_with_the_last_assertion() -> None:
    def never() -> None:
        raise AssertionError("still 41")

    with pytest.raises(TimeoutError) as info:
        wait_until(never, timeout=0.2, interval=0.05)
    assert "still 41" in str(info.value.__cause__)


def test_shared_server_answers(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    # A db of its own, so other tests sharing the server see nothing of it.
    with redis_server.client(db=15) as client:
        client.set("fixture-check", "1")
        assert client.get("fixture-check") == "1"
        client.delete("fixture-check")


def test_password_server_rejects_anonymous_clients(redis_with_password: RedisServer) -> None:
    assert REDIS_PASSWORD not in redis_with_password.url
    with (
        redis_with_password.client(password=None) as anonymous,
        pytest.raises(redis.AuthenticationError),
    ):
        anonymous.ping()
    with redis_with_password.client() as client:
        assert client.ping()


def test_kill_and_restart_on_the_same_port(redis_fresh: RedisServer) -> None:
    port = redis_fresh.port
    redis_fresh.kill()
    assert not redis_fresh.running
    assert not port_is_open("127.0.0.1", port)

    redis_fresh.restart()
    assert redis_fresh.port == port
    with redis_fresh.client() as client:
        assert client.ping()


def test_pause_hangs_clients_until_resume(redis_fresh: RedisServer) -> None:
    redis_fresh.pause()
    try:
        with (
            redis_fresh.client(socket_timeout=0.3) as client,
            pytest.raises(redis.TimeoutError),
        ):
            client.ping()
    finally:
        redis_fresh.resume()
    with redis_fresh.client() as client:
        assert client.ping()


def test_stop_works_on_a_paused_server(redis_fresh: RedisServer) -> None:
    redis_fresh.pause()
    started = time.monotonic()
    redis_fresh.stop(timeout=5)
    # SIGTERM reaches a stopped process only with SIGCONT: without it this
    # would wait for the SIGKILL fallback.
    assert time.monotonic() - started < 3
    assert redis_fresh.process is not None
    assert redis_fresh.process.returncode == 0


def test_replica_link_goes_down_when_the_primary_stops(
    redis_replication: RedisReplication,
) -> None:
    primary, replica = redis_replication.primary, redis_replication.replica
    assert replica.master_link_status() == "up"
    assert primary.master_link_status() is None

    with primary.client() as client:
        client.set("replicated", "yes")
    with replica.client() as client:
        wait_until(lambda: client.get("replicated") == "yes", timeout=5)

    primary.stop()
    replica.wait_for_link_down(timeout=5)


def test_cluster_has_every_slot(redis_cluster: RedisCluster) -> None:
    assert len(redis_cluster.nodes) == 3
    for node in redis_cluster.nodes:
        info = redis_cluster.cluster_info(node)
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384
        assert int(info["cluster_known_nodes"]) == 3
    with redis_cluster.client() as client:
        # Keys in different slots land on different nodes through redirects.
        for key in ("a", "b", "c"):
            client.set(f"fixture-check-{key}", key)
            assert client.get(f"fixture-check-{key}") == key
            client.delete(f"fixture-check-{key}")


def test_sentinel_sees_its_master_and_replica(redis_sentinel: RedisSentinelSetup) -> None:
    sentinel = redis_sentinel.sentinel
    assert sentinel.url == f"redis://127.0.0.1:{sentinel.port}"
    assert sentinel.master_address() == ("127.0.0.1", redis_sentinel.primary.port)
    master = sentinel.master()
    assert master["name"] == "mymaster"
    assert int(master["num-slaves"]) == 1
    assert [m["name"] for m in sentinel.masters()] == ["mymaster"]
