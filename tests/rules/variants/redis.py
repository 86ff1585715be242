"""Redis as variants: a standalone server with and without maxmemory, a cache (allkeys-lru),
a primary with a replica, that replica, a cluster node and a sentinel.

Each is captured from the real exporter scraping the real server the suite starts
(tests/servers/redis.py): the shared standalone (`redis_server`, maxmemory 0, the default,
never had a replica), a standalone of this test's own with `maxmemory` set (the shared one
must keep its settings), the sentinel-managed pair and its sentinel (`redis_sentinel`) and
a node of the 3-primary cluster (`redis_cluster`).  Every target counts a `sessions` key
group (`key_patterns`), as a production config would; the capture waits for the first
background counting pass, so the key-group series are there.  A sentinel counts nothing:
it holds no keys, and it has no memory, persistence or replication series either.

The target is named after the variant, so a change can depend on the variant (the memory
limit that applies to it).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

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
    grows,
    keeps_growing,
    source_down,
    stops,
)
from tests.servers.redis import RedisServer

# The maxmemory of the `standalone_maxmemory` variant, and the host every variant runs on:
# pinned, so an incident knows the limit it approaches (the capture machine's own memory
# would do as well, but would make the test depend on the machine).
MAXMEMORY = 1 << 30
HOST_MEMORY = 16 << 30
KEY_WAIT_SECONDS = 15.0


def _config(name: str, url: str) -> str:
    return (
        f"redis:\n  - name: {name}\n    url: {url}\n"
        "    key_patterns:\n      - name: sessions\n        pattern: 'session:*'\n"
    )


async def _capture(name: str, url: str, *, key_groups: bool = True) -> str:
    """One scrape, after the first background counting of the key groups has finished."""
    async with exporter(_config(name, url)) as client:
        text = await scrape(client)
        deadline = time.monotonic() + KEY_WAIT_SECONDS
        while key_groups and "redis_key_group_keys{" not in text:
            assert time.monotonic() < deadline, f"{name}: no key group counted in {KEY_WAIT_SECONDS:g} s"
            await asyncio.sleep(0.1)
            text = await scrape(client)
        return text


async def standalone(request: pytest.FixtureRequest) -> str:
    """The shared standalone: maxmemory 0 (no limit), no replica ever."""
    return await _capture("standalone", request.getfixturevalue("redis_server").url)


async def standalone_maxmemory(request: pytest.FixtureRequest) -> str:
    """A standalone with a memory limit and an eviction policy: a server of our own, so
    the shared one keeps its settings."""
    tmp: Path = request.getfixturevalue("tmp_path")
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "volatile-lru"]
    with RedisServer(tmp / "redis-maxmemory", extra_args=args) as server:
        return await _capture("standalone_maxmemory", server.url)


async def cache(request: pytest.FixtureRequest) -> str:
    """A cache: a memory limit and a policy that evicts any key (allkeys-lru), which runs
    full and evicting as a matter of course."""
    tmp: Path = request.getfixturevalue("tmp_path")
    args = ["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(tmp / "redis-cache", extra_args=args) as server:
        return await _capture("cache", server.url)


async def primary(request: pytest.FixtureRequest) -> str:
    """The sentinel-managed primary, its replica connected."""
    return await _capture("primary", request.getfixturevalue("redis_sentinel").primary.url)


async def replica(request: pytest.FixtureRequest) -> str:
    """The sentinel-managed replica, its link up."""
    return await _capture("replica", request.getfixturevalue("redis_sentinel").replica.url)


async def cluster(request: pytest.FixtureRequest) -> str:
    """A primary of the shared cluster (three primaries, every slot assigned, no replicas)."""
    return await _capture("cluster", request.getfixturevalue("redis_cluster").url)


async def sentinel(request: pytest.FixtureRequest) -> str:
    """The sentinel watching the pair; configured with the same key group, which it skips."""
    return await _capture("sentinel", request.getfixturevalue("redis_sentinel").sentinel.url, key_groups=False)


# ------------------------------------------------------------------ a healthy server

# Per minute: 30,000 commands (500/s), 20 new connections, 24,000 lookups of which 95% hit,
# 600 keys expiring, 2 MB of replication stream.  Memory: 300 MiB used, 330 MiB resident:
# under a third of the 1 GiB limit, 2% of the host.
COMMANDS = 30_000.0
REPLICATION_BYTES = 2e6
USED = 300 * (1 << 20)
SAVE_EVERY = 30


def _sessions(_s: Sample, t: int) -> float:
    """Logged-in sessions over a day: 2,000 at night, 5,000 at the afternoon peak."""
    return round(3500 + 1500 * math.sin(2 * math.pi * t / 1440))


HEALTHY = (
    Rule("redis_up", constant(1)),
    Rule("redis_commands_processed_total", grows(COMMANDS)),
    Rule("redis_connections_received_total", grows(20)),
    Rule("redis_keyspace_hits_total", grows(24_000 * 0.95)),
    Rule("redis_keyspace_misses_total", grows(24_000 * 0.05)),
    Rule("redis_expired_keys_total", grows(600)),
    Rule("redis_net_input_bytes_total", grows(3e6)),
    Rule("redis_net_output_bytes_total", grows(6e6)),
    Rule("redis_cpu_user_seconds_total", grows(3)),
    Rule("redis_cpu_sys_seconds_total", grows(1.5)),
    Rule("redis_cpu_user_main_thread_seconds_total", grows(2.8)),
    Rule("redis_cpu_sys_main_thread_seconds_total", grows(1.4)),
    Rule("redis_connected_clients", constant(120)),
    Rule("redis_instantaneous_operations_per_second", constant(COMMANDS / 60)),
    Rule("redis_evicted_keys_total", constant()),
    Rule("redis_rejected_connections_total", constant()),
    Rule("redis_memory_used_bytes", constant(USED)),
    Rule("redis_memory_used_rss_bytes", constant(USED * 1.1)),
    Rule("redis_memory_used_peak_bytes", constant(USED * 1.2)),
    Rule("redis_total_system_memory_bytes", constant(HOST_MEMORY)),
    Rule("redis_db_keys", constant(60_000)),
    Rule("redis_key_group_keys", _sessions, {"key_group": "sessions"}),
    Rule("redis_key_group_scan_complete", constant(1)),
    # replication: the primary's offset, the replica's, and what the primary sees it acknowledge
    Rule("redis_master_repl_offset", grows(REPLICATION_BYTES)),
    Rule("redis_slave_repl_offset", grows(REPLICATION_BYTES)),
    Rule("redis_connected_slave_offset_bytes", grows(REPLICATION_BYTES)),
    Rule("redis_connected_slave_lag_seconds", constant(0)),
    Rule("redis_master_last_io_seconds_ago", constant(1)),
    Rule("redis_master_link_up", constant(1)),
    Rule("redis_second_repl_offset", constant(-1)),
    Rule("redis_rdb_last_bgsave_status", constant(1)),
    # the default save points snapshot a busy server every few minutes; here every 30 (on
    # the twin's clock, which starts at 0), so the changes since then grow and fall back
    Rule("redis_rdb_last_save_timestamp_seconds", lambda _s, t: 60 * (t - t % SAVE_EVERY)),
    Rule("redis_rdb_saves_total", lambda s, t: s.value + 1 + t // SAVE_EVERY),
    Rule("redis_rdb_changes_since_last_save", lambda _s, t: 900 * (t % SAVE_EVERY)),
    Rule("redis_aof_last_write_status", constant(1)),
    Rule("redis_sentinel_tilt", constant(0)),
    # cluster bus: pings and pongs with two peers
    Rule("redis_cluster_messages_sent_total", grows(120)),
    Rule("redis_cluster_messages_received_total", grows(120)),
    Rule("redis_cluster_state", constant(1)),
    Rule("redis_cluster_slots_fail", constant(0)),
    Rule("redis_cluster_slots_pfail", constant(0)),
    Rule("redis_sentinel_master_status", constant(1)),
    *EXPORTER_HEALTHY,
)


# ------------------------------------------------------------------ incidents


def _limited(samples: Sequence[Sample]) -> bool:
    return any(s.name == "redis_memory_max_bytes" and s.value > 0 for s in samples)


def _not_a_cache(samples: Sequence[Sample]) -> bool:
    """Whether the server keeps its data when full: a cache's policy (allkeys-*) makes full
    and evicting its normal state, which the memory and eviction alerts leave alone."""
    return not any(
        s.name == "redis_instance_info" and (s.label("maxmemory_policy") or "").startswith("allkeys-") for s in samples
    )


def _limit(_variant: Variant, samples: Sequence[Sample]) -> dict[str, str]:
    """The firing alert says which limit it measured: maxmemory where one is set."""
    return {"limit": "maxmemory" if _limited(samples) else "system"}


# Memory fills to 95% of the limit that applies: maxmemory on the variant that sets one
# (used memory, which Redis compares with maxmemory), the host's memory elsewhere (resident
# memory, which the OOM killer counts; used memory is about a tenth less).
def _near_limit(rss: bool) -> Callable[[Sample, int, float], float]:
    def values(s: Sample, _t: int, _start: float) -> float:
        if s.label("target") == "standalone_maxmemory":
            used = 0.95 * MAXMEMORY
            return used * 1.1 if rss else used
        resident = 0.95 * HOST_MEMORY
        return resident if rss else resident / 1.1

    return values


def _failover(_s: Sample, t: int, start: float) -> float:
    """second_repl_offset from one minute into the incident: where the new history starts.

    RedisFailover has no `for` (a failover is an event) and the matrix's "not before" check
    includes the incident's first minute, so the failover happens just after it."""
    return start if t < 1 else 8.4e9


# Slots of one of the three primaries (16384 / 3, rounded as redis-cli assigns them).
ONE_PRIMARY_SLOTS = 5461

INCIDENTS = (
    # escalation.redisDown (30m) instead of the 1m `for`
    source_down("the server cannot be reached", "RedisDown", "critical", "redis_up", 10, escalates_within=40),
    Incident(
        "memory used approaches the limit",
        "RedisMemoryHigh",
        "warning",
        (
            Change("redis_memory_used_bytes", _near_limit(rss=False)),
            Change("redis_memory_used_rss_bytes", _near_limit(rss=True)),
        ),
        fires_within=20,
        required=(("redis_memory_used_bytes", {}), ("redis_memory_max_bytes", {})),
        expect_labels=_limit,
        applies=_not_a_cache,
    ),
    Incident(
        # 10 keys a second; with maxmemory the memory sits at the limit meanwhile
        "keys are evicted",
        "RedisEvictions",
        "warning",
        (
            Change("redis_evicted_keys_total", keeps_growing(600)),
            Change("redis_memory_used_bytes", becomes(MAXMEMORY), {"target": "standalone_maxmemory"}),
        ),
        fires_within=20,
        required=(("redis_evicted_keys_total", {}), ("redis_memory_max_bytes", {})),
        applies=_not_a_cache,
    ),
    Incident(
        # a connection leak: 9,500 of the default maxclients of 10,000 taken
        "clients approach maxclients",
        "RedisClientsNearMax",
        "warning",
        (Change("redis_connected_clients", becomes(9500)), Change("redis_config_maxclients", becomes(10_000))),
        fires_within=15,
    ),
    Incident(
        # AOF on, and its disk fills: every write to the AOF fails
        "the AOF cannot be written",
        "RedisAofWriteFailing",
        "critical",
        (Change("redis_aof_enabled", becomes(1)), Change("redis_aof_last_write_status", becomes(0))),
        fires_within=10,
        required=(("redis_aof_last_write_status", {}),),
    ),
    Incident(
        # the save points were removed at runtime (CONFIG SET save ""): no snapshot is taken
        # while writes go on; the alert waits for the last one to be over 2 h old
        "snapshots stop while data changes",
        "RedisNoRecentSave",
        "warning",
        (
            Change("redis_rdb_last_save_timestamp_seconds", stops()),
            Change("redis_rdb_saves_total", stops()),
            Change("redis_rdb_changes_since_last_save", keeps_growing(900)),
        ),
        fires_within=150,
        required=(("redis_rdb_last_save_timestamp_seconds", {}), ("redis_rdb_saves_total", {})),
    ),
    Incident(
        "connections are rejected at maxclients",
        "RedisRejectedConnections",
        "warning",
        (
            Change("redis_rejected_connections_total", keeps_growing(5)),
            Change("redis_connected_clients", becomes(10_000)),
        ),
        fires_within=10,
        required=(("redis_rejected_connections_total", {}), ("redis_config_maxclients", {})),
    ),
    Incident(
        # the primary is unreachable from the replica: the link drops, the offset stops,
        # and INFO reports the last I/O as -1
        "a replica loses its link to the primary",
        "RedisReplicaLinkDown",
        "warning",
        (
            Change("redis_master_link_up", becomes(0)),
            Change("redis_slave_repl_offset", stops()),
            Change("redis_master_last_io_seconds_ago", becomes(-1)),
        ),
        fires_within=10,
        required=(("redis_master_link_up", {}),),
    ),
    Incident(
        "a primary that had replicas loses them all",
        "RedisNoReplicas",
        "warning",
        (Change("redis_connected_slaves", becomes(0)), Change("redis_connected_slave_offset_bytes", stops())),
        fires_within=15,
        # a primary that has a replica: the per-replica series exist only then
        required=(("redis_connected_slaves", {}), ("redis_connected_slave_lag_seconds", {})),
    ),
    Incident(
        # Sentinel demotes the primary: it follows the new primary, keeps its replication
        # stream through a partial resync that starts a new history at its offset, and has
        # no replica of its own any more.  (Its role label turns to "slave" as well: a
        # change of labels the matrix cannot replay.)
        "the primary is demoted in a failover",
        "RedisFailover",
        "warning",
        (
            Change("redis_second_repl_offset", _failover),
            Change("redis_connected_slaves", becomes(0)),
        ),
        # the alert lasts the failover window (10 minutes) after the event
        fires_within=5,
        required=(("redis_second_repl_offset", {}), ("redis_connected_slave_lag_seconds", {})),
    ),
    Incident(
        "the replica is promoted in a failover",
        "RedisFailover",
        "warning",
        (
            Change("redis_second_repl_offset", _failover),
            Change("redis_connected_slaves", becomes(1)),
        ),
        fires_within=5,
        required=(("redis_second_repl_offset", {}), ("redis_master_link_up", {})),
    ),
    Incident(
        "the last RDB snapshot fails",
        "RedisLastSaveFailed",
        "warning",
        (
            Change("redis_rdb_last_bgsave_status", becomes(0)),
            Change("redis_rdb_changes_since_last_save", keeps_growing(900)),
        ),
        fires_within=15,
        required=(("redis_rdb_last_bgsave_status", {}),),
    ),
    Incident(
        # a primary without a replica dies: its slots fail and the cluster stops serving
        "a cluster primary fails and its slots are lost",
        "RedisClusterStateNotOk",
        "critical",
        (
            Change("redis_cluster_state", becomes(0)),
            Change("redis_cluster_slots_fail", becomes(ONE_PRIMARY_SLOTS)),
            Change("redis_cluster_slots_ok", becomes(16384 - ONE_PRIMARY_SLOTS)),
        ),
        fires_within=10,
    ),
    Incident(
        # a primary is unreachable but not (yet) agreed failed: its slots are pfail
        "a cluster node is possibly failing",
        "RedisClusterSlotsFailing",
        "warning",
        (
            Change("redis_cluster_slots_pfail", becomes(ONE_PRIMARY_SLOTS)),
            Change("redis_cluster_slots_ok", becomes(16384 - ONE_PRIMARY_SLOTS)),
        ),
        fires_within=10,
    ),
    Incident(
        # the primary is down and no failover completes (no replica good enough, no quorum)
        "the sentinel sees its primary down",
        "RedisSentinelMasterDown",
        "critical",
        (
            Change("redis_sentinel_master_status", becomes(0)),
            Change("redis_sentinel_master_ok_slaves", becomes(1)),
        ),
        fires_within=10,
        required=(("redis_sentinel_master_status", {}),),
    ),
    Incident(
        # the sentinel's host is stalled again and again (an overloaded VM): it stays in TILT
        "the sentinel stays in TILT mode",
        "RedisSentinelTilt",
        "warning",
        (Change("redis_sentinel_tilt", becomes(1)),),
        fires_within=15,
    ),
    Incident(
        # two of the three sentinels go down: the last one cannot authorize a failover
        "too few sentinels are left to authorize a failover",
        "RedisSentinelQuorumLost",
        "warning",
        (Change("redis_sentinel_master_ok_sentinels", becomes(1)),),
        fires_within=15,
        required=(("redis_sentinel_master_ok_sentinels", {}), ("redis_sentinel_master_sentinels", {})),
    ),
    Incident(
        # a FLUSHDB, an eviction storm or a deploy that changed the key prefix: 90% of the
        # sessions go at once (the database's keys with them)
        "session keys drop suddenly",
        "RedisSessionKeysDropped",
        "warning",
        (
            Change("redis_key_group_keys", lambda _s, _t, start: round(start * 0.1), {"key_group": "sessions"}),
            Change("redis_db_keys", lambda _s, _t, start: round(start * 0.1)),
        ),
        fires_within=15,
        required=(("redis_key_group_keys", {"key_group": "sessions"}),),
    ),
    *exporter_incidents("redis_up"),
)

# A sentinel serves a handful of clients (the other sentinels, clients asking where the
# primary is) and pings its primary, replica and peers: a few commands a second, no keys.
SENTINEL_HEALTHY = (
    Rule("redis_commands_processed_total", grows(300)),
    Rule("redis_connections_received_total", grows(2)),
    Rule("redis_connected_clients", constant(6)),
    Rule("redis_instantaneous_operations_per_second", constant(5)),
    Rule("redis_net_input_bytes_total", grows(3e4)),
    Rule("redis_net_output_bytes_total", grows(9e4)),
    Rule("redis_cpu_user_seconds_total", grows(0.1)),
    Rule("redis_cpu_sys_seconds_total", grows(0.05)),
    Rule("redis_cpu_user_main_thread_seconds_total", grows(0.1)),
    Rule("redis_cpu_sys_main_thread_seconds_total", grows(0.05)),
    Rule("redis_keyspace_hits_total", constant()),
    Rule("redis_keyspace_misses_total", constant()),
    Rule("redis_expired_keys_total", constant()),
    # a production deployment runs three sentinels (the suite starts one), all healthy
    Rule("redis_sentinel_master_sentinels", constant(3)),
    Rule("redis_sentinel_master_ok_sentinels", constant(3)),
)

# A cache (allkeys-lru) sits just under its maxmemory and evicts 10 keys a second all day.
CACHE_HEALTHY = (
    Rule("redis_memory_used_bytes", constant(0.97 * MAXMEMORY)),
    Rule("redis_memory_used_rss_bytes", constant(0.97 * MAXMEMORY * 1.1)),
    Rule("redis_memory_used_peak_bytes", constant(MAXMEMORY)),
    Rule("redis_evicted_keys_total", grows(600)),
)

SOURCE = Source(
    name="redis",
    docs="redis",
    variants=(
        *(Variant("redis", v.__name__, v) for v in (standalone, standalone_maxmemory, primary, replica, cluster)),
        Variant("redis", "cache", cache, healthy=CACHE_HEALTHY),
        Variant("redis", "sentinel", sentinel, healthy=SENTINEL_HEALTHY),
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
