"""Redis: servers, replicas, cluster nodes and sentinels.

Names follow redis_exporter wherever its name is correct, so community
dashboards and alerts keep working; the renames are listed in
docs/metrics/redis.md.  A sample of the exposition (target label added by the
engine)::

    redis_up{target="cache"} 1.0
    redis_instance_info{target="cache",role="master",redis_version="7.0.15",redis_mode="standalone",...} 1.0
    redis_memory_used_bytes{target="cache"} 1.08936e+06
    redis_db_keys{target="cache",db="db0"} 150000.0
    redis_commands_total{target="cache",cmd="get"} 42.0
    redis_connected_slave_lag_seconds{target="cache",slave_ip="127.0.0.1",slave_port="6380",slave_state="online"} 0.0
    redis_key_group_keys{target="cache",key_group="sessions",db="db0"} 100000.0

Round trips per scrape: one, a pipeline with INFO ALL and the mode's extra
commands, with a PING sent just before it on a second pooled connection (its
round trip is a metric).  The mode (standalone,
cluster, sentinel) is learnt from INFO; when it changes, or on the first
scrape, one more round trip fetches that mode's extras.  Commands that managed
services block (CONFIG, LATENCY, SLOWLOG) fail soft: they are skipped for ten
minutes and every other metric still comes.  Key groups are counted with SCAN
in the background under a call and time budget, and served from cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from exporter.collectors.base import CollectError, Collector, Context
from exporter.config import Duration, Secret, TargetConfig
from exporter.redact import url_without_userinfo

log = logging.getLogger("exporter.collectors.redis")

# --------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class KeyPattern:
    name: str
    pattern: str
    db: int | None = None  # default: the target URL's database


@dataclass(frozen=True, kw_only=True)
class RedisTLS:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, kw_only=True)
class RedisTarget(TargetConfig):
    name: str
    url: str
    username: str | None = None
    password: Secret | None = None
    tls: RedisTLS | None = None
    key_patterns: tuple[KeyPattern, ...] = ()
    # Key groups are counted in the background at most this often.
    key_pattern_refresh_interval: Duration = Duration(60.0)
    # Budget of one counting pass: SCAN calls (COUNT 1000 each) and time.
    key_pattern_max_scan_calls: int = 1000
    key_pattern_max_duration: Duration = Duration(10.0)

    def check(self) -> Iterable[tuple[str, str]]:
        try:
            parts = urlsplit(self.url)
            port = parts.port
        except ValueError as exc:
            yield "url", f"invalid URL: {exc}"
            return
        if parts.scheme not in ("redis", "rediss", "unix"):
            yield (
                "url",
                f"scheme must be redis://, rediss:// or unix://, got {parts.scheme or 'none'}",
            )
            return
        if parts.scheme == "unix":
            if not parts.path:
                yield "url", "unix:// URL needs a socket path, e.g. unix:///run/redis/redis.sock"
        else:
            if not parts.hostname:
                yield "url", "missing host, e.g. redis://127.0.0.1:6379/0"
            if port is not None and not 0 < port < 65536:
                yield "url", f"invalid port {port}"
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                yield "url", f"the path must be a database number such as /0, got /{db}"
        if parts.password and self.password is not None:
            yield "password", "the URL already has a password; set one or the other"
        if self.tls is not None and parts.scheme != "rediss":
            yield "tls", "tls settings need a rediss:// URL"
        seen: set[str] = set()
        for i, kp in enumerate(self.key_patterns):
            if kp.name in seen:
                yield f"key_patterns[{i}].name", f"duplicate key group name {kp.name!r}"
            seen.add(kp.name)
            if not kp.pattern:
                yield f"key_patterns[{i}].pattern", "must not be empty"
            if kp.db is not None and kp.db < 0:
                yield f"key_patterns[{i}].db", "must not be negative"
        if self.key_pattern_max_scan_calls < 1:
            yield "key_pattern_max_scan_calls", "must be at least 1"

    def secret_values(self) -> list[str]:
        try:
            password = urlsplit(self.url).password
        except ValueError:
            return []
        return [unquote(password)] if password else []

    def db(self) -> int:
        path = urlsplit(self.url).path.lstrip("/")
        return int(path) if path.isdigit() else 0


# --------------------------------------------------------------------------- INFO parsing


def parse_info(text: str) -> dict[str, str]:
    """INFO text -> {field: raw value}; sub-records (db0, cmdstat_*) stay raw."""
    return parse_info_sections(text)[0]


# Sections made of one record per line (db0:keys=1,..., cmdstat_get:calls=1,...); kept
# apart so the per-record families never scan the few hundred plain fields.
RECORD_SECTIONS = frozenset({"keyspace", "commandstats", "errorstats", "latencystats"})


def parse_info_sections(text: str) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """INFO text -> (plain fields, {record section: [(key, raw record)]})."""
    fields: dict[str, str] = {}
    records: dict[str, list[tuple[str, str]]] = {}
    target: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        if not line:
            continue
        if line[0] == "#":
            section = line[1:].strip().lower()
            target = records.setdefault(section, []) if section in RECORD_SECTIONS else None
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if target is not None:
            target.append((key, value))
        else:
            fields[key] = value
    return fields, records


def parse_record(value: str) -> dict[str, str]:
    """``keys=1,expires=0,avg_ttl=0`` -> dict."""
    out: dict[str, str] = {}
    for part in value.split(","):
        k, sep, v = part.partition("=")
        if sep:
            out[k] = v
    return out


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# (INFO field, metric name, kind "g"/"c", help, scale or converter)
# Counters are named without _total here: prometheus-client appends it.
_OK = {"ok": 1.0, "up": 1.0}
INFO_METRICS: tuple[tuple[str, str, str, str, Any], ...] = (
    # server
    ("uptime_in_seconds", "redis_uptime_in_seconds", "g", "Seconds since the server started.", 1),
    ("io_threads_active", "redis_io_threads_active", "g", "1 if I/O threads are active.", 1),
    # clients
    ("connected_clients", "redis_connected_clients", "g", "Client connections, replicas excluded.", 1),
    ("blocked_clients", "redis_blocked_clients", "g", "Clients blocked on BLPOP, WAIT and the like.", 1),
    ("maxclients", "redis_config_maxclients", "g", "The maxclients setting.", 1),
    ("tracking_clients", "redis_tracking_clients", "g", "Clients being tracked (client-side caching).", 1),
    ("clients_in_timeout_table", "redis_clients_in_timeout_table", "g", "Clients in the timeout table.", 1),
    ("cluster_connections", "redis_cluster_connections", "g", "Connections used by the cluster bus.", 1),
    (
        "client_recent_max_input_buffer",
        "redis_client_recent_max_input_buffer_bytes",
        "g",
        "Largest recent client input buffer.",
        1,
    ),
    (
        "client_recent_max_output_buffer",
        "redis_client_recent_max_output_buffer_bytes",
        "g",
        "Largest recent client output buffer.",
        1,
    ),
    # memory
    ("used_memory", "redis_memory_used_bytes", "g", "Bytes allocated by Redis.", 1),
    ("used_memory_rss", "redis_memory_used_rss_bytes", "g", "Resident set size of the Redis process.", 1),
    ("used_memory_peak", "redis_memory_used_peak_bytes", "g", "Peak of used memory.", 1),
    ("used_memory_overhead", "redis_memory_used_overhead_bytes", "g", "Memory used for internal overhead.", 1),
    ("used_memory_startup", "redis_memory_used_startup_bytes", "g", "Memory used at startup.", 1),
    ("used_memory_dataset", "redis_memory_used_dataset_bytes", "g", "Memory used by the dataset.", 1),
    ("used_memory_lua", "redis_memory_used_lua_bytes", "g", "Memory used by the Lua engine.", 1),
    ("used_memory_scripts", "redis_memory_used_scripts_bytes", "g", "Memory used by cached scripts.", 1),
    ("maxmemory", "redis_memory_max_bytes", "g", "The maxmemory setting; 0 means no limit.", 1),
    ("total_system_memory", "redis_total_system_memory_bytes", "g", "Memory of the host Redis runs on.", 1),
    ("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", "g", "RSS divided by used memory.", 1),
    ("mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", "g", "RSS minus used memory.", 1),
    ("mem_clients_normal", "redis_mem_clients_normal_bytes", "g", "Memory used by normal clients' buffers.", 1),
    ("mem_clients_slaves", "redis_mem_clients_slaves_bytes", "g", "Memory used by replicas' buffers.", 1),
    (
        "mem_not_counted_for_evict",
        "redis_mem_not_counted_for_eviction_bytes",
        "g",
        "Memory not counted for eviction.",
        1,
    ),
    ("allocator_allocated", "redis_allocator_allocated_bytes", "g", "Bytes allocated by the allocator.", 1),
    ("allocator_active", "redis_allocator_active_bytes", "g", "Bytes in the allocator's active pages.", 1),
    ("allocator_resident", "redis_allocator_resident_bytes", "g", "Bytes resident in the allocator.", 1),
    ("allocator_frag_ratio", "redis_allocator_frag_ratio", "g", "Allocator fragmentation ratio.", 1),
    ("allocator_frag_bytes", "redis_allocator_frag_bytes", "g", "Allocator fragmentation in bytes.", 1),
    ("lazyfree_pending_objects", "redis_lazyfree_pending_objects", "g", "Objects waiting to be freed lazily.", 1),
    ("active_defrag_running", "redis_active_defrag_running", "g", "1 while active defragmentation runs.", 1),
    ("number_of_cached_scripts", "redis_number_of_cached_scripts", "g", "Cached Lua scripts.", 1),
    # persistence
    ("loading", "redis_loading_dump_file", "g", "1 while a dump file is loading.", 1),
    ("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", "g", "Changes since the last RDB save.", 1),
    ("rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", "g", "1 while an RDB background save runs.", 1),
    (
        "rdb_last_save_time",
        "redis_rdb_last_save_timestamp_seconds",
        "g",
        "Unix time of the last successful RDB save.",
        1,
    ),
    (
        "rdb_last_bgsave_status",
        "redis_rdb_last_bgsave_status",
        "g",
        "1 if the last RDB background save succeeded.",
        _OK,
    ),
    (
        "rdb_last_bgsave_time_sec",
        "redis_rdb_last_bgsave_duration_seconds",
        "g",
        "Duration of the last RDB save; -1 if none.",
        1,
    ),
    (
        "rdb_current_bgsave_time_sec",
        "redis_rdb_current_bgsave_duration_seconds",
        "g",
        "Duration of the running RDB save; -1 if none.",
        1,
    ),
    ("rdb_saves", "redis_rdb_saves", "c", "RDB saves since startup.", 1),
    ("rdb_last_cow_size", "redis_rdb_last_cow_size_bytes", "g", "Copy-on-write memory of the last RDB save.", 1),
    ("aof_enabled", "redis_aof_enabled", "g", "1 if AOF is on.", 1),
    ("aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", "g", "1 while an AOF rewrite runs.", 1),
    ("aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", "g", "1 if an AOF rewrite is scheduled.", 1),
    (
        "aof_last_rewrite_time_sec",
        "redis_aof_last_rewrite_duration_seconds",
        "g",
        "Duration of the last AOF rewrite; -1 if none.",
        1,
    ),
    (
        "aof_current_rewrite_time_sec",
        "redis_aof_current_rewrite_duration_seconds",
        "g",
        "Duration of the running AOF rewrite; -1 if none.",
        1,
    ),
    ("aof_last_bgrewrite_status", "redis_aof_last_bgrewrite_status", "g", "1 if the last AOF rewrite succeeded.", _OK),
    ("aof_last_write_status", "redis_aof_last_write_status", "g", "1 if the last AOF write succeeded.", _OK),
    ("aof_last_cow_size", "redis_aof_last_cow_size_bytes", "g", "Copy-on-write memory of the last AOF rewrite.", 1),
    ("module_fork_in_progress", "redis_module_fork_in_progress", "g", "1 while a module fork runs.", 1),
    (
        "module_fork_last_cow_size",
        "redis_module_fork_last_cow_size_bytes",
        "g",
        "Copy-on-write memory of the last module fork.",
        1,
    ),
    # stats
    ("total_connections_received", "redis_connections_received", "c", "Connections accepted.", 1),
    ("total_commands_processed", "redis_commands_processed", "c", "Commands processed.", 1),
    (
        "instantaneous_ops_per_sec",
        "redis_instantaneous_operations_per_second",
        "g",
        "Commands per second, as Redis samples it.",
        1,
    ),
    ("total_net_input_bytes", "redis_net_input_bytes", "c", "Bytes read from the network.", 1),
    ("total_net_output_bytes", "redis_net_output_bytes", "c", "Bytes written to the network.", 1),
    ("rejected_connections", "redis_rejected_connections", "c", "Connections rejected because of maxclients.", 1),
    ("sync_full", "redis_replica_resyncs_full", "c", "Full resynchronisations with replicas.", 1),
    ("sync_partial_ok", "redis_replica_partial_resync_accepted", "c", "Partial resync requests accepted.", 1),
    ("sync_partial_err", "redis_replica_partial_resync_denied", "c", "Partial resync requests denied.", 1),
    ("expired_keys", "redis_expired_keys", "c", "Keys expired.", 1),
    ("expired_stale_perc", "redis_expired_stale_percentage", "g", "Estimated percentage of keys already expired.", 1),
    (
        "expired_time_cap_reached_count",
        "redis_expired_time_cap_reached",
        "c",
        "Times the active expiry cycle hit its time cap.",
        1,
    ),
    ("evicted_keys", "redis_evicted_keys", "c", "Keys evicted because of maxmemory.", 1),
    ("evicted_clients", "redis_evicted_clients", "c", "Clients evicted because of maxmemory-clients.", 1),
    ("keyspace_hits", "redis_keyspace_hits", "c", "Successful key lookups.", 1),
    ("keyspace_misses", "redis_keyspace_misses", "c", "Failed key lookups.", 1),
    ("pubsub_channels", "redis_pubsub_channels", "g", "Pub/sub channels with subscribers.", 1),
    ("pubsub_patterns", "redis_pubsub_patterns", "g", "Pub/sub patterns with subscribers.", 1),
    ("latest_fork_usec", "redis_latest_fork_seconds", "g", "Duration of the latest fork.", 1e-6),
    ("total_forks", "redis_forks", "c", "Forks since startup.", 1),
    ("migrate_cached_sockets", "redis_migrate_cached_sockets", "g", "Sockets open for MIGRATE.", 1),
    ("total_error_replies", "redis_error_replies", "c", "Error replies sent.", 1),
    (
        "unexpected_error_replies",
        "redis_unexpected_error_replies",
        "c",
        "Unexpected error replies (AOF load, replication).",
        1,
    ),
    ("total_reads_processed", "redis_reads_processed", "c", "Read events processed.", 1),
    ("total_writes_processed", "redis_writes_processed", "c", "Write events processed.", 1),
    ("io_threaded_reads_processed", "redis_io_threaded_reads_processed", "c", "Reads processed by I/O threads.", 1),
    ("io_threaded_writes_processed", "redis_io_threaded_writes_processed", "c", "Writes processed by I/O threads.", 1),
    ("tracking_total_keys", "redis_tracking_total_keys", "g", "Keys tracked for client-side caching.", 1),
    ("tracking_total_items", "redis_tracking_total_items", "g", "Items tracked for client-side caching.", 1),
    ("tracking_total_prefixes", "redis_tracking_total_prefixes", "g", "Prefixes tracked for client-side caching.", 1),
    ("dump_payload_sanitizations", "redis_dump_payload_sanitizations", "c", "Deep dump payload sanitisations.", 1),
    ("active_defrag_hits", "redis_defrag_hits", "c", "Reallocations by active defragmentation.", 1),
    ("active_defrag_misses", "redis_defrag_misses", "c", "Aborted reallocations by active defragmentation.", 1),
    # replication
    ("connected_slaves", "redis_connected_slaves", "g", "Connected replicas.", 1),
    ("master_repl_offset", "redis_master_repl_offset", "g", "Replication offset of this server, in bytes.", 1),
    ("second_repl_offset", "redis_second_repl_offset", "g", "Offset up to which replication IDs are accepted.", 1),
    ("repl_backlog_active", "redis_repl_backlog_is_active", "g", "1 if the replication backlog is active.", 1),
    ("repl_backlog_size", "redis_replication_backlog_bytes", "g", "Size of the replication backlog.", 1),
    (
        "repl_backlog_first_byte_offset",
        "redis_repl_backlog_first_byte_offset",
        "g",
        "Master offset of the backlog's first byte.",
        1,
    ),
    ("repl_backlog_histlen", "redis_repl_backlog_history_bytes", "g", "Bytes of data in the replication backlog.", 1),
    ("master_link_status", "redis_master_link_up", "g", "On a replica: 1 if the link to its primary is up.", _OK),
    (
        "master_last_io_seconds_ago",
        "redis_master_last_io_seconds_ago",
        "g",
        "On a replica: seconds since the last interaction with its primary.",
        1,
    ),
    (
        "master_sync_in_progress",
        "redis_master_sync_in_progress",
        "g",
        "On a replica: 1 while syncing from its primary.",
        1,
    ),
    (
        "master_link_down_since_seconds",
        "redis_master_link_down_since_seconds",
        "g",
        "On a replica: seconds the link to its primary has been down.",
        1,
    ),
    ("slave_repl_offset", "redis_slave_repl_offset", "g", "On a replica: replication offset, in bytes.", 1),
    (
        "slave_expires_tracked_keys",
        "redis_slave_expires_tracked_keys",
        "g",
        "On a replica: keys tracked for expiry.",
        1,
    ),
    # cpu
    ("used_cpu_sys", "redis_cpu_sys_seconds", "c", "System CPU consumed by Redis.", 1),
    ("used_cpu_user", "redis_cpu_user_seconds", "c", "User CPU consumed by Redis.", 1),
    ("used_cpu_sys_children", "redis_cpu_sys_children_seconds", "c", "System CPU consumed by background processes.", 1),
    ("used_cpu_user_children", "redis_cpu_user_children_seconds", "c", "User CPU consumed by background processes.", 1),
    (
        "used_cpu_sys_main_thread",
        "redis_cpu_sys_main_thread_seconds",
        "c",
        "System CPU consumed by the main thread.",
        1,
    ),
    (
        "used_cpu_user_main_thread",
        "redis_cpu_user_main_thread_seconds",
        "c",
        "User CPU consumed by the main thread.",
        1,
    ),
    # cluster
    ("cluster_enabled", "redis_cluster_enabled", "g", "1 if cluster mode is on.", 1),
)

CLUSTER_METRICS: tuple[tuple[str, str, str, str, Any], ...] = (
    ("cluster_state", "redis_cluster_state", "g", "1 if CLUSTER INFO reports the state ok.", _OK),
    (
        "cluster_slots_assigned",
        "redis_cluster_slots_assigned",
        "g",
        "Slots assigned to a node (16384 when complete).",
        1,
    ),
    ("cluster_slots_ok", "redis_cluster_slots_ok", "g", "Slots whose node is reachable.", 1),
    ("cluster_slots_pfail", "redis_cluster_slots_pfail", "g", "Slots whose node is possibly failing.", 1),
    ("cluster_slots_fail", "redis_cluster_slots_fail", "g", "Slots whose node has failed.", 1),
    ("cluster_known_nodes", "redis_cluster_known_nodes", "g", "Nodes known to this node.", 1),
    ("cluster_size", "redis_cluster_size", "g", "Primaries serving at least one slot.", 1),
    ("cluster_current_epoch", "redis_cluster_current_epoch", "g", "Current cluster epoch.", 1),
    ("cluster_my_epoch", "redis_cluster_my_epoch", "g", "This node's config epoch.", 1),
    ("cluster_stats_messages_sent", "redis_cluster_messages_sent", "c", "Cluster bus messages sent.", 1),
    ("cluster_stats_messages_received", "redis_cluster_messages_received", "c", "Cluster bus messages received.", 1),
)

SENTINEL_METRICS: tuple[tuple[str, str, str, str, Any], ...] = (
    ("sentinel_masters", "redis_sentinel_masters", "g", "Primaries this sentinel watches.", 1),
    ("sentinel_tilt", "redis_sentinel_tilt", "g", "1 if the sentinel is in TILT mode.", 1),
    ("sentinel_running_scripts", "redis_sentinel_running_scripts", "g", "Scripts running.", 1),
    ("sentinel_scripts_queue_length", "redis_sentinel_scripts_queue_length", "g", "Scripts queued.", 1),
)


def _table_families(table: Sequence[tuple[str, str, str, str, Any]], info: dict[str, str]) -> list[Metric]:
    out: list[Metric] = []
    for field, name, kind, doc, conv in table:
        raw = info.get(field)
        if raw is None:
            continue
        if isinstance(conv, dict):
            value: float | None = conv.get(raw, 0.0)
        else:
            value = _num(raw)
            if value is not None and conv != 1:
                value *= conv
        if value is None:
            continue
        # built directly rather than through Gauge/CounterMetricFamily: this
        # table makes ~100 single-sample families per scrape, and its names are
        # constants (promtool checks them in the tests), so skip re-validating
        out.append(_family(name, doc, "counter" if kind == "c" else "gauge", value))
    return out


def _family(name: str, doc: str, typ: str, value: float) -> Metric:
    """A one-sample family from a constant, known-good name."""
    family = Metric.__new__(Metric)
    family.name, family.documentation, family.unit, family.type = name, doc, "", typ
    family.samples = [Sample(name + "_total" if typ == "counter" else name, {}, value)]
    return family


# --------------------------------------------------------------------------- collector

SOFT_RETRY_SECONDS = 600.0  # how long a blocked command (CONFIG, LATENCY...) is not retried
SCAN_COUNT = 1000


@dataclass
class _KeyGroupResult:
    keys: int
    complete: bool
    calls: int
    duration: float
    finished_at: float


class RedisCollector(Collector[RedisTarget]):
    kind = "redis"
    config_class = RedisTarget
    up_metric = "redis_up"
    up_help = "1 if the Redis server answered INFO, 0 if it could not be reached in time."

    def __init__(self, config: RedisTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._client = self._make_client(config.db())
        self._scan_clients: dict[int, aioredis.Redis] = {}
        self._mode: str | None = None  # standalone, cluster or sentinel, learnt from INFO
        self._blocked: dict[str, float] = {}  # command -> monotonic time to retry
        self._groups: dict[str, _KeyGroupResult] = {}
        self._scan_task: asyncio.Task[None] | None = None
        self._scan_started = -1e18

    def _make_client(self, db: int, max_connections: int = 4) -> aioredis.Redis:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "max_connections": max_connections,
            "socket_connect_timeout": 5,
            "client_name": "stack-exporter",
            # redis-py announces itself with CLIENT SETINFO, which Redis < 7.2
            # rejects: every new connection would add to the server's errorstats
            "lib_name": None,
            "lib_version": None,
            # one immediate retry replaces a connection the server dropped
            # (restart, idle timeout); the default backs off for seconds, and
            # also retries a wrong password, which only burns the deadline
            "retry": Retry(NoBackoff(), 1),
        }
        if cfg.password is not None:
            kwargs["password"] = cfg.password.get()
        if cfg.username is not None:
            kwargs["username"] = cfg.username
        if cfg.tls is not None:
            kwargs["ssl_ca_certs"] = cfg.tls.ca_file
            kwargs["ssl_certfile"] = cfg.tls.cert_file
            kwargs["ssl_keyfile"] = cfg.tls.key_file
            if cfg.tls.insecure_skip_verify:
                kwargs["ssl_cert_reqs"] = "none"
                kwargs["ssl_check_hostname"] = False
        pool = aioredis.ConnectionPool.from_url(cfg.url, **kwargs)
        pool.connection_kwargs["db"] = db  # from_url lets the URL's /N win over db=
        client = aioredis.Redis(connection_pool=pool)
        # raw INFO text: our parser is simpler and faster than redis-py's dicts
        client.set_response_callback("INFO", _raw)
        return client

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    async def close(self) -> None:
        if self._scan_task is not None:
            self._scan_task.cancel()
            await asyncio.gather(self._scan_task, return_exceptions=True)
        for client in (self._client, *self._scan_clients.values()):
            await client.aclose(close_connection_pool=True)

    # ------------------------------------------------------------------ collect

    async def collect(self) -> list[Metric]:
        extras = self._extra_commands(self._mode)
        # PING goes out first on its own pooled connection and the pipeline right
        # behind it, so the round trip is measured without costing a sequential one
        ping_result, replies = await asyncio.gather(
            self._timed_ping(), self._pipeline(["INFO ALL", *extras]), return_exceptions=True
        )
        if isinstance(ping_result, BaseException):
            raise CollectError(f"PING failed: {_describe_error(ping_result)}")
        if isinstance(replies, BaseException):
            raise CollectError(f"INFO failed: {_describe_error(replies)}")
        ping = ping_result
        raw_info = replies[0]
        if isinstance(raw_info, BaseException):
            raise CollectError(f"INFO failed: {_describe_error(raw_info)}")
        info, records = parse_info_sections(_text(raw_info))
        mode = info.get("redis_mode", "standalone")
        if mode == "standalone" and info.get("cluster_enabled") == "1":
            mode = "cluster"
        if mode != self._mode:
            self._mode = mode
            extras = self._extra_commands(mode)
            replies = ["", *await self._pipeline(extras)] if extras else [""]
        extra = dict(zip(extras, replies[1:], strict=True))

        families: list[Metric] = [GaugeMetricFamily(self.up_metric or "", self.up_help, value=1)]
        families.append(
            GaugeMetricFamily(
                "redis_ping_duration_seconds",
                "Round trip of a PING sent alongside the scrape's other commands (includes reconnecting after a drop).",
                value=ping,
            )
        )
        families.extend(self._info_families(info, records, mode))
        if mode == "sentinel":
            families.extend(await self._sentinel_families(info))
        else:
            families.extend(self._extra_families(extra, info))
        if self.config.key_patterns and mode != "sentinel":
            self._maybe_start_scan()
            families.extend(self._key_group_families())
        return families

    async def _timed_ping(self) -> float:
        start = time.perf_counter()
        await self._client.ping()
        return time.perf_counter() - start

    def _extra_commands(self, mode: str | None) -> list[str]:
        if mode is None or mode == "sentinel":
            return []
        now = time.monotonic()
        wanted = ["SLOWLOG LEN", "SLOWLOG GET 1", "LATENCY LATEST"]
        if mode == "cluster":
            wanted.append("CLUSTER INFO")
        return [c for c in wanted if self._blocked.get(c.split()[0], 0) <= now]

    async def _pipeline(self, commands: Sequence[str]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command.split())
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ResponseError) and command != "INFO ALL":
                # managed services (ElastiCache, Memorystore...) block or rename
                # these; skip them for a while rather than add to errorstats
                self._blocked[command.split()[0]] = time.monotonic() + SOFT_RETRY_SECONDS
                self.log.info(
                    "command refused; skipping it for a while",
                    extra={"kv": {"target": self.config.name, "command": command, "err": str(reply)}},
                )
            elif isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                raise reply
        return replies

    def _info_families(
        self, info: dict[str, str], records: dict[str, list[tuple[str, str]]], mode: str
    ) -> list[Metric]:
        fams = _table_families(INFO_METRICS, info)
        labels = {
            "role": info.get("role", ""),
            "redis_version": info.get("redis_version", ""),
            "redis_build_id": info.get("redis_build_id", ""),
            "redis_mode": mode,
            "os": info.get("os", ""),
            "maxmemory_policy": info.get("maxmemory_policy", ""),
            "tcp_port": info.get("tcp_port", ""),
            "run_id": info.get("run_id", ""),
        }
        inst = GaugeMetricFamily("redis_instance_info", "Always 1; labels describe the server.", labels=list(labels))
        inst.add_metric(list(labels.values()), 1.0)
        fams.append(inst)
        server_time = _num(info.get("server_time_usec"))
        uptime = _num(info.get("uptime_in_seconds"))
        if server_time is not None and uptime is not None:
            fams.append(
                GaugeMetricFamily(
                    "redis_start_time_seconds", "Unix time the server started.", value=server_time / 1e6 - uptime
                )
            )
        if info.get("role") == "slave":
            slave = GaugeMetricFamily(
                "redis_slave_info",
                "On a replica, always 1; labels name its primary.",
                labels=["master_host", "master_port", "read_only"],
            )
            slave.add_metric(
                [info.get("master_host", ""), info.get("master_port", ""), info.get("slave_read_only", "")], 1.0
            )
            fams.append(slave)
        fams.extend(self._record_families(info, records))
        return fams

    def _record_families(self, info: dict[str, str], records: dict[str, list[tuple[str, str]]]) -> list[Metric]:
        """Families from INFO's sub-records: keyspace, replicas, commandstats, errorstats, latencystats."""
        db_keys = GaugeMetricFamily("redis_db_keys", "Keys in the database.", labels=["db"])
        db_exp = GaugeMetricFamily("redis_db_keys_expiring", "Keys with an expiry in the database.", labels=["db"])
        db_ttl = GaugeMetricFamily(
            "redis_db_avg_ttl_seconds", "Average TTL of expiring keys, as Redis estimates it.", labels=["db"]
        )
        slave_labels = ["slave_ip", "slave_port", "slave_state"]
        lag = GaugeMetricFamily(
            "redis_connected_slave_lag_seconds", "Seconds since the replica last acknowledged.", labels=slave_labels
        )
        offset = GaugeMetricFamily(
            "redis_connected_slave_offset_bytes", "Replication offset the replica acknowledged.", labels=slave_labels
        )
        calls = CounterMetricFamily("redis_commands", "Calls per command.", labels=["cmd"])
        usec = CounterMetricFamily("redis_commands_duration_seconds", "Seconds spent per command.", labels=["cmd"])
        rejected = CounterMetricFamily(
            "redis_commands_rejected_calls", "Calls rejected before running (bad arguments, ACL, OOM).", labels=["cmd"]
        )
        failed = CounterMetricFamily("redis_commands_failed_calls", "Calls that failed while running.", labels=["cmd"])
        errors = CounterMetricFamily("redis_errors", "Error replies per error prefix.", labels=["err"])
        latency = Metric(
            "redis_commands_latency_seconds",
            "Latency per command: Redis's own percentiles, with count and sum from commandstats.",
            "summary",
        )
        cmd_totals: dict[str, tuple[float, float]] = {}
        percentiles: dict[str, dict[str, str]] = {}
        for key, value in records.get("keyspace", ()):
            rec = parse_record(value)
            db_keys.add_metric([key], _num(rec.get("keys")) or 0.0)
            db_exp.add_metric([key], _num(rec.get("expires")) or 0.0)
            db_ttl.add_metric([key], (_num(rec.get("avg_ttl")) or 0.0) / 1000)
        for key, value in records.get("commandstats", ()):
            rec = parse_record(value)
            cmd = key.removeprefix("cmdstat_")
            n = _num(rec.get("calls")) or 0.0
            total = (_num(rec.get("usec")) or 0.0) / 1e6
            calls.add_metric([cmd], n)
            usec.add_metric([cmd], total)
            rejected.add_metric([cmd], _num(rec.get("rejected_calls")) or 0.0)
            failed.add_metric([cmd], _num(rec.get("failed_calls")) or 0.0)
            cmd_totals[cmd] = (n, total)
        for key, value in records.get("errorstats", ()):
            errors.add_metric([key.removeprefix("errorstat_")], _num(parse_record(value).get("count")) or 0.0)
        for key, value in records.get("latencystats", ()):
            percentiles[key.removeprefix("latency_percentiles_usec_")] = parse_record(value)
        # replicas are slave0..slaveN among the plain replication fields
        i = 0
        while (replica := info.get(f"slave{i}")) is not None:
            rec = parse_record(replica)
            lv = [rec.get("ip", ""), rec.get("port", ""), rec.get("state", "")]
            lag.add_metric(lv, _num(rec.get("lag")) or 0.0)
            offset.add_metric(lv, _num(rec.get("offset")) or 0.0)
            i += 1
        for cmd, recs in percentiles.items():
            for q, v in recs.items():
                value_s = _num(v)
                if q.startswith("p") and value_s is not None:
                    # p99.9 -> "0.999" (99.9 / 100 is 0.9990000000000001 as a float)
                    quantile = f"{float(q[1:]) / 100:.10g}"
                    latency.add_sample(latency.name, {"cmd": cmd, "quantile": quantile}, value_s / 1e6)
            n, total = cmd_totals.get(cmd, (0.0, 0.0))
            latency.add_sample(latency.name + "_count", {"cmd": cmd}, n)
            latency.add_sample(latency.name + "_sum", {"cmd": cmd}, total)
        fams: list[Metric] = [db_keys, db_exp, db_ttl, lag, offset, calls, usec, rejected, failed, errors]
        if latency.samples:
            fams.append(latency)
        return fams

    def _extra_families(self, extra: dict[str, Any], info: dict[str, str]) -> list[Metric]:
        fams: list[Metric] = []
        slowlog_len = extra.get("SLOWLOG LEN")
        if isinstance(slowlog_len, int):
            fams.append(GaugeMetricFamily("redis_slowlog_length", "Entries in the slow log.", value=slowlog_len))
        last = extra.get("SLOWLOG GET 1")
        if isinstance(last, list) and last:
            entry = last[0]
            # redis-py parses entries into dicts; raw replies are lists
            entry_id = entry.get("id") if isinstance(entry, dict) else entry[0]
            entry_us = entry.get("duration") if isinstance(entry, dict) else entry[2]
            fams.append(GaugeMetricFamily("redis_slowlog_last_id", "ID of the newest slow log entry.", value=entry_id))
            fams.append(
                GaugeMetricFamily(
                    "redis_last_slow_execution_duration_seconds",
                    "Duration of the newest slow log entry.",
                    value=float(entry_us or 0) / 1e6,
                )
            )
        latest = extra.get("LATENCY LATEST")
        if isinstance(latest, list):
            spike_at = GaugeMetricFamily(
                "redis_latency_spike_last_timestamp_seconds",
                "Unix time of the latest latency spike per event (LATENCY LATEST).",
                labels=["event_name"],
            )
            spike = GaugeMetricFamily(
                "redis_latency_spike_duration_seconds",
                "Duration of the latest latency spike per event.",
                labels=["event_name"],
            )
            for row in latest:
                if isinstance(row, list) and len(row) >= 3:
                    event = _text(row[0])
                    spike_at.add_metric([event], float(row[1]))
                    spike.add_metric([event], float(row[2]) / 1000)
            fams.extend([spike_at, spike])
        cluster = extra.get("CLUSTER INFO")
        if isinstance(cluster, (str, bytes)):
            fams.extend(_table_families(CLUSTER_METRICS, parse_info(_text(cluster))))
        return fams

    async def _sentinel_families(self, info: dict[str, str]) -> list[Metric]:
        fams = _table_families(SENTINEL_METRICS, info)
        labels = ["master_name", "master_address"]
        status = GaugeMetricFamily(
            "redis_sentinel_master_status",
            "1 if the sentinel sees the primary as ok; the master_status label says what it sees.",
            labels=[*labels, "master_status"],
        )
        slaves = GaugeMetricFamily("redis_sentinel_master_slaves", "Replicas the sentinel knows of.", labels=labels)
        sentinels = GaugeMetricFamily(
            "redis_sentinel_master_sentinels", "Sentinels watching the primary, this one included.", labels=labels
        )
        ok_slaves = GaugeMetricFamily(
            "redis_sentinel_master_ok_slaves", "Replicas not flagged down or disconnected.", labels=labels
        )
        ok_sentinels = GaugeMetricFamily(
            "redis_sentinel_master_ok_sentinels",
            "Sentinels watching the primary that are not flagged down, this one included.",
            labels=labels,
        )
        masters: list[dict[str, str]] = []
        for key, value in info.items():
            if key.startswith("master") and key[6:].isdigit():
                masters.append(parse_record(value))
        commands: list[tuple[str, ...]] = []
        for m in masters:
            commands.append(("SENTINEL", "REPLICAS", m.get("name", "")))
            commands.append(("SENTINEL", "SENTINELS", m.get("name", "")))
        replies: list[Any] = []
        if commands:
            async with self._client.pipeline(transaction=False) as pipe:
                for cmd in commands:
                    pipe.execute_command(*cmd)
                replies = await pipe.execute(raise_on_error=False)
        for i, m in enumerate(masters):
            lv = [m.get("name", ""), m.get("address", "")]
            state = m.get("status", "")
            status.add_metric([*lv, state], 1.0 if state == "ok" else 0.0)
            slaves.add_metric(lv, _num(m.get("slaves")) or 0.0)
            sentinels.add_metric(lv, _num(m.get("sentinels")) or 0.0)
            if replies:
                ok_slaves.add_metric(lv, float(_count_ok(replies[2 * i])))
                # the sentinel answering is not in its own SENTINELS list
                ok_sentinels.add_metric(lv, float(_count_ok(replies[2 * i + 1]) + 1))
        fams.extend([status, slaves, sentinels, ok_slaves, ok_sentinels])
        return fams

    # ------------------------------------------------------------------ key groups

    def _maybe_start_scan(self) -> None:
        if self._scan_task is not None and not self._scan_task.done():
            return
        if time.monotonic() - self._scan_started < self.config.key_pattern_refresh_interval:
            return
        self._scan_started = time.monotonic()
        self._scan_task = asyncio.create_task(self._scan_all(), name=f"redis key groups {self.config.name}")

    async def _scan_all(self) -> None:
        for kp in self.config.key_patterns:
            db = self.config.db() if kp.db is None else kp.db
            try:
                self._groups[kp.name] = await self._scan(kp.pattern, db)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next pass retries; the old count stays with its timestamp
                self.log.warning(
                    "key group scan failed",
                    extra={"kv": {"target": self.config.name, "key_group": kp.name, "err": _describe_error(exc)}},
                )

    async def _scan(self, pattern: str, db: int) -> _KeyGroupResult:
        client = self._scan_clients.get(db)
        if client is None:
            client = self._scan_clients[db] = self._make_client(db, max_connections=1)
        start = time.perf_counter()
        deadline = start + self.config.key_pattern_max_duration
        cursor: int = 0
        keys = calls = 0
        complete = False
        while calls < self.config.key_pattern_max_scan_calls and time.perf_counter() < deadline:
            cursor, batch = await client.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            calls += 1
            keys += len(batch)
            if cursor == 0:
                complete = True
                break
        return _KeyGroupResult(keys, complete, calls, time.perf_counter() - start, time.time())

    def _key_group_families(self) -> list[Metric]:
        labels = ["key_group", "db"]
        keys = GaugeMetricFamily(
            "redis_key_group_keys",
            "Keys matching the group's pattern, counted with SCAN in the background (a lower bound when incomplete).",
            labels=labels,
        )
        complete = GaugeMetricFamily(
            "redis_key_group_scan_complete",
            "1 if the last counting pass covered the whole keyspace within its budget.",
            labels=labels,
        )
        calls = GaugeMetricFamily(
            "redis_key_group_scan_calls", "SCAN calls the last counting pass made.", labels=labels
        )
        duration = GaugeMetricFamily(
            "redis_key_group_scan_duration_seconds", "Duration of the last counting pass.", labels=labels
        )
        finished = GaugeMetricFamily(
            "redis_key_group_scan_timestamp_seconds", "Unix time the last counting pass ended.", labels=labels
        )
        for kp in self.config.key_patterns:
            result = self._groups.get(kp.name)
            if result is None:
                continue
            lv = [kp.name, f"db{self.config.db() if kp.db is None else kp.db}"]
            keys.add_metric(lv, float(result.keys))
            complete.add_metric(lv, 1.0 if result.complete else 0.0)
            calls.add_metric(lv, float(result.calls))
            duration.add_metric(lv, result.duration)
            finished.add_metric(lv, result.finished_at)
        return [keys, complete, calls, duration, finished]


def _raw(response: Any, **options: Any) -> Any:
    return response


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _count_ok(reply: Any) -> int:
    """Entries of SENTINEL REPLICAS/SENTINELS not flagged down or disconnected."""
    if not isinstance(reply, list):
        return 0
    ok = 0
    for entry in reply:
        if isinstance(entry, dict):
            flags = _text(entry.get("flags", ""))
        elif isinstance(entry, list):
            pairs = dict(zip(entry[::2], entry[1::2], strict=False))
            flags = _text(pairs.get(b"flags", pairs.get("flags", "")))
        else:
            continue
        bad = {"s_down", "o_down", "disconnected"}
        if not bad.intersection(flags.split(",")):
            ok += 1
    return ok


def _describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


COLLECTOR = RedisCollector
