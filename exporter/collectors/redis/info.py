"""INFO: its parser, the table of plain fields, and the families built from it.

INFO is one text reply of ``field:value`` lines under ``# Section`` headers.
Most fields map one to one onto a metric through :data:`INFO_METRICS`; the
record sections (one ``key:a=1,b=2`` line per database, command, error) and the
replica lines become labelled families.  CLUSTER INFO has the same shape, so the
cluster and sentinel tables go through the same parser and builder.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

# Sections made of one record per line (db0:keys=1,..., cmdstat_get:calls=1,...); kept
# apart so the per-record families never scan the few hundred plain fields.
RECORD_SECTIONS = frozenset({"keyspace", "commandstats", "errorstats", "latencystats"})


def parse_info(text: str) -> dict[str, str]:
    """INFO text -> {field: raw value}; sub-records (db0, cmdstat_*) stay raw."""
    return parse_info_sections(text)[0]


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


def num(value: str | None) -> float | None:
    """A field as a number; None when absent or not numeric."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- tables

# (INFO field, metric name, kind "g"/"c", help, scale or {raw value: number})
# Counters are named without _total here: prometheus-client appends it.
Row = tuple[str, str, str, str, float | dict[str, float]]

# Status fields read ok/up when healthy; any other word (err, down) is 0.
STATUS_OK = {"ok": 1.0, "up": 1.0}

INFO_METRICS: tuple[Row, ...] = (
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
        STATUS_OK,
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
    (
        "aof_last_bgrewrite_status",
        "redis_aof_last_bgrewrite_status",
        "g",
        "1 if the last AOF rewrite succeeded.",
        STATUS_OK,
    ),
    ("aof_last_write_status", "redis_aof_last_write_status", "g", "1 if the last AOF write succeeded.", STATUS_OK),
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
    ("master_link_status", "redis_master_link_up", "g", "On a replica: 1 if the link to its primary is up.", STATUS_OK),
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


def table_families(table: Sequence[Row], info: dict[str, str]) -> list[Metric]:
    """One single-sample family per table row whose field is present and numeric."""
    out: list[Metric] = []
    for field, name, kind, doc, conv in table:
        raw = info.get(field)
        if raw is None:
            continue
        if isinstance(conv, dict):
            value: float | None = conv.get(raw, 0.0)
        else:
            value = num(raw)
            if value is not None and conv != 1:
                value *= conv
        if value is None:
            continue
        out.append(unchecked_family(name, doc, "counter" if kind == "c" else "gauge", value))
    return out


def unchecked_family(name: str, doc: str, typ: str, value: float) -> Metric:
    """A one-sample, unlabelled family, equal to what Gauge/CounterMetricFamily(name, doc, value=value) make.

    It skips their constructor, which validates the name and type and zips the
    (empty) label lists on every call: about a third of the cost of each family
    (1.5 of 4 microseconds here), paid about a hundred times per target per
    scrape, for names and types that are constants checked once by the tests
    (promtool, the metrics reference).  ``typ`` is "gauge" or "counter"; a
    counter's sample gets ``_total`` as prometheus-client's does.
    tests/collectors/test_redis_families.py holds it equal to the real constructor.
    """
    family = Metric.__new__(Metric)
    family.name, family.documentation, family.unit, family.type = name, doc, "", typ
    family.samples = [Sample(name + "_total" if typ == "counter" else name, {}, value)]
    return family


# --------------------------------------------------------------------------- families


def info_families(info: dict[str, str], records: dict[str, list[tuple[str, str]]], mode: str) -> list[Metric]:
    """Everything INFO ALL says, in exposition order: the table, then the described and record families."""
    fams = table_families(INFO_METRICS, info)
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
    server_time = num(info.get("server_time_usec"))
    uptime = num(info.get("uptime_in_seconds"))
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
    fams.extend(keyspace_families(records))
    fams.extend(replica_families(info))
    command_fams, totals = command_families(records)
    fams.extend(command_fams)
    fams.extend(error_families(records))
    fams.extend(command_latency_families(records, totals))
    return fams


def keyspace_families(records: dict[str, list[tuple[str, str]]]) -> list[Metric]:
    """Keys, expiring keys and average TTL per database, from the keyspace section."""
    db_keys = GaugeMetricFamily("redis_db_keys", "Keys in the database.", labels=["db"])
    db_exp = GaugeMetricFamily("redis_db_keys_expiring", "Keys with an expiry in the database.", labels=["db"])
    db_ttl = GaugeMetricFamily(
        "redis_db_avg_ttl_seconds", "Average TTL of expiring keys, as Redis estimates it.", labels=["db"]
    )
    for key, value in records.get("keyspace", ()):
        rec = parse_record(value)
        db_keys.add_metric([key], num(rec.get("keys")) or 0.0)
        db_exp.add_metric([key], num(rec.get("expires")) or 0.0)
        db_ttl.add_metric([key], (num(rec.get("avg_ttl")) or 0.0) / 1000)
    return [db_keys, db_exp, db_ttl]


def replica_families(info: dict[str, str]) -> list[Metric]:
    """On a primary, lag and offset per connected replica (the slave0..slaveN fields)."""
    slave_labels = ["slave_ip", "slave_port", "slave_state"]
    lag = GaugeMetricFamily(
        "redis_connected_slave_lag_seconds", "Seconds since the replica last acknowledged.", labels=slave_labels
    )
    offset = GaugeMetricFamily(
        "redis_connected_slave_offset_bytes", "Replication offset the replica acknowledged.", labels=slave_labels
    )
    i = 0
    while (replica := info.get(f"slave{i}")) is not None:
        rec = parse_record(replica)
        lv = [rec.get("ip", ""), rec.get("port", ""), rec.get("state", "")]
        lag.add_metric(lv, num(rec.get("lag")) or 0.0)
        offset.add_metric(lv, num(rec.get("offset")) or 0.0)
        i += 1
    return [lag, offset]


def command_families(
    records: dict[str, list[tuple[str, str]]],
) -> tuple[list[Metric], dict[str, tuple[float, float]]]:
    """Per-command counters from commandstats, and {command: (calls, seconds)} for the latency summary."""
    calls = CounterMetricFamily("redis_commands", "Calls per command.", labels=["cmd"])
    usec = CounterMetricFamily("redis_commands_duration_seconds", "Seconds spent per command.", labels=["cmd"])
    rejected = CounterMetricFamily(
        "redis_commands_rejected_calls", "Calls rejected before running (bad arguments, ACL, OOM).", labels=["cmd"]
    )
    failed = CounterMetricFamily("redis_commands_failed_calls", "Calls that failed while running.", labels=["cmd"])
    totals: dict[str, tuple[float, float]] = {}
    for key, value in records.get("commandstats", ()):
        rec = parse_record(value)
        cmd = key.removeprefix("cmdstat_")
        n = num(rec.get("calls")) or 0.0
        total = (num(rec.get("usec")) or 0.0) / 1e6
        calls.add_metric([cmd], n)
        usec.add_metric([cmd], total)
        rejected.add_metric([cmd], num(rec.get("rejected_calls")) or 0.0)
        failed.add_metric([cmd], num(rec.get("failed_calls")) or 0.0)
        totals[cmd] = (n, total)
    return [calls, usec, rejected, failed], totals


def error_families(records: dict[str, list[tuple[str, str]]]) -> list[Metric]:
    """Error replies per error prefix, from errorstats."""
    errors = CounterMetricFamily("redis_errors", "Error replies per error prefix.", labels=["err"])
    for key, value in records.get("errorstats", ()):
        errors.add_metric([key.removeprefix("errorstat_")], num(parse_record(value).get("count")) or 0.0)
    return [errors]


def command_latency_families(
    records: dict[str, list[tuple[str, str]]], totals: dict[str, tuple[float, float]]
) -> list[Metric]:
    """A summary per command from latencystats (Redis 7+), with count and sum from commandstats; none before 7."""
    latency = Metric(
        "redis_commands_latency_seconds",
        "Latency per command: Redis's own percentiles, with count and sum from commandstats.",
        "summary",
    )
    percentiles: dict[str, dict[str, str]] = {}
    for key, value in records.get("latencystats", ()):
        percentiles[key.removeprefix("latency_percentiles_usec_")] = parse_record(value)
    for cmd, recs in percentiles.items():
        for q, v in recs.items():
            value_s = num(v)
            if q.startswith("p") and value_s is not None:
                # p99.9 -> "0.999" (99.9 / 100 is 0.9990000000000001 as a float)
                quantile = f"{float(q[1:]) / 100:.10g}"
                latency.add_sample(latency.name, {"cmd": cmd, "quantile": quantile}, value_s / 1e6)
        n, total = totals.get(cmd, (0.0, 0.0))
        latency.add_sample(latency.name + "_count", {"cmd": cmd}, n)
        latency.add_sample(latency.name + "_sum", {"cmd": cmd}, total)
    return [latency] if latency.samples else []
