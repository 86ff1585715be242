// Opt-in (config.libsonnet, compat): the community exporters' names for the series this
// exporter renamed on purpose (docs/metrics/*.md, "Differences from ..."), rebuilt from ours
// with postgres_exporter's and redis_exporter's label names and units, so their dashboards and
// alerts keep working while a team moves over.  Each `record` is a community name, so these
// rules do not follow level:metric:operations.  What is left out, and why: README.md,
// "Keeping community dashboards and alerts".
//
// `prometheusCompatRules` is the group on its own (rendered to
// generated/prometheus_rules_compat.yaml); `compat.enabled` adds it to prometheusRules.
{
  local c = $._config,
  local pg = c.postgres.selector,
  local redis = c.redis.selector,

  local rename(community, ours, sel) = { record: community, expr: '%s{%s}' % [ours, sel] },
  // Our base units back to theirs (seconds -> milliseconds or microseconds).
  local scaled(community, ours, sel, factor) = { record: community, expr: '%s{%s} * %s' % [ours, sel, factor] },
  // Our per-target collector self metric as the community exporter's own (no `collector` label).
  local selfMetric(community, expr) = { record: community, expr: 'max without (collector) (%s)' % expr },

  // postgres_exporter's pg_stat_activity query cross-joins these states with pg_database, so
  // every database has a series per state, 0 when no session is in it.
  local activityStates = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled'],

  local postgresRules =
    [
      {
        // Ours adds `usename`; theirs counts per database and state only.  Client backends
        // only (theirs also counts autovacuum and parallel workers attached to a database).
        record: 'pg_stat_activity_count',
        expr: std.join('\nor\n', ['sum without (usename) (pg_stat_activity_connections{%s, datname!=""})' % pg] + [
          'label_replace(0 * pg_stat_database_numbackends{%s}, "state", "%s", "", "")' % [pg, state]
          for state in activityStates
        ]),
      },
      // Theirs is split by `state`; ours is the maximum over all states (what
      // `max by (datname)` of theirs gives), so the series carries no `state`.
      rename('pg_stat_activity_max_tx_duration', 'pg_stat_activity_max_tx_duration_seconds', pg),
      {
        // Theirs counts granted and waiting locks together, for locks inside a database
        // (pg_locks.database not null); mode is lower case in both.
        record: 'pg_locks_count',
        expr: 'pg_locks_held{%(s)s, datname!=""} + pg_locks_waiting{%(s)s, datname!=""}' % { s: pg },
      },
    ]
    + [
      rename('pg_stat_database_' + col, 'pg_stat_database_%s_total' % col, pg)
      for col in [
        'xact_commit',
        'xact_rollback',
        'blks_read',
        'blks_hit',
        'tup_returned',
        'tup_fetched',
        'tup_inserted',
        'tup_updated',
        'tup_deleted',
        'conflicts',
        'temp_files',
        'temp_bytes',
        'deadlocks',
        'sessions',
        'sessions_abandoned',
        'sessions_fatal',
        'sessions_killed',
      ]
    ]
    // PostgreSQL reports these in milliseconds and postgres_exporter passes them on as is.
    + [
      scaled('pg_stat_database_' + col, 'pg_stat_database_%s_seconds_total' % col, pg, '1000')
      for col in ['blk_read_time', 'blk_write_time', 'session_time', 'active_time', 'idle_in_transaction_time']
    ]
    + [
      scaled('pg_stat_bgwriter_checkpoint_%s_time_total' % stage, 'pg_stat_bgwriter_checkpoint_%s_time_seconds_total' % stage, pg, '1000')
      for stage in ['write', 'sync']
    ]
    + [
      {
        // short_version is "major.minor.0", from server_version_num (150014 -> 15.14.0);
        // their `version` (the whole `SELECT version()` text) is not collected.
        record: 'pg_static',
        expr: 'max without (version, version_num) (\n  label_replace(pg_version_info{%s}, "short_version", "$1.$2.0", "version_num", "([0-9]+?)0{0,3}([0-9]{1,4})")\n)' % pg,
      },
      {
        // Bytes the replica has not replayed; theirs has the replica's state as a label.
        record: 'pg_stat_replication_pg_wal_lsn_diff',
        expr: |||
          label_replace(
            pg_stat_replication_replay_lag_bytes{%(s)s}
            * ignoring (state, sync_state) group_left (state)
            pg_stat_replication_info{%(s)s},
            "client_addr", "", "client_addr", "local"
          )
        ||| % { s: pg },
      },
      // Slots: postgres_exporter's built-in query (pg_replication_slots_*) and its
      // replication_slot collector of 0.13+ (pg_replication_slot_slot_is_active).
      { record: 'pg_replication_slots_active', expr: 'max without (slot_type) (pg_replication_slot_active{%s})' % pg },
      { record: 'pg_replication_slots_pg_wal_lsn_diff', expr: 'max without (slot_type) (pg_replication_slot_wal_retained_bytes{%s})' % pg },
      { record: 'pg_replication_slot_slot_is_active', expr: 'max without (slot_type, database) (pg_replication_slot_active{%s})' % pg },
      {
        // The pg_replication query of postgres_exporter's example queries.yaml: 0 on a primary.
        // On a replica ours is 0 once everything received is replayed, where theirs keeps
        // growing while the primary is idle.
        record: 'pg_replication_lag',
        expr: 'pg_replication_lag_seconds{%(s)s}\nor\n0 * (pg_replication_is_replica{%(s)s} == 0)' % { s: pg },
      },
    ]
    // pg_stat_user_tables: the example queries.yaml of 0.11, a built-in collector from 0.13.
    + [
      rename('pg_stat_user_tables_' + col, 'pg_stat_user_tables_%s_total' % col, pg)
      for col in ['seq_scan', 'idx_scan']
    ]
    + [
      {
        // Theirs is the Unix time (0 when never); ours the age when scraped.  timestamp() is
        // the scrape time the age was measured at, so the difference is the event's time.
        record: 'pg_stat_user_tables_last_' + what,
        expr: |||
          timestamp(pg_stat_user_tables_last_%(w)s_age_seconds{%(s)s}) - pg_stat_user_tables_last_%(w)s_age_seconds{%(s)s}
          or
          0 * pg_stat_user_tables_n_live_tup{%(s)s}
        ||| % { w: what, s: pg },
      }
      for what in ['autovacuum', 'autoanalyze']
    ]
    + [
      selfMetric('pg_exporter_last_scrape_error', '1 - stack_exporter_collector_success{%s, collector="postgres"}' % pg),
      selfMetric('pg_exporter_last_scrape_duration_seconds', 'stack_exporter_collector_duration_seconds{%s, collector="postgres"}' % pg),
    ],

  // Redis's LATENCYSTATS percentiles: redis_exporter labels them quantile="99.9", we label
  // them quantile="0.999".  The optional tail tolerates a float printed with noise.
  local quantiles(expr) = std.foldl(
    function(acc, p)
      'label_replace(%s, "quantile", "%s", "quantile", "%s(0{5,}[0-9])?")' % [
        acc,
        p,
        std.strReplace(c.compat.redisLatencyQuantiles[p], '.', '\\\\.'),
      ],
    std.objectFields(c.compat.redisLatencyQuantiles),
    expr,
  ),

  local redisRules =
    [
      rename('redis_' + pair[0], 'redis_' + pair[1], redis)
      for pair in [
        ['rdb_last_bgsave_duration_sec', 'rdb_last_bgsave_duration_seconds'],
        ['rdb_current_bgsave_duration_sec', 'rdb_current_bgsave_duration_seconds'],
        ['aof_last_rewrite_duration_sec', 'aof_last_rewrite_duration_seconds'],
        ['aof_current_rewrite_duration_sec', 'aof_current_rewrite_duration_seconds'],
        ['mem_clients_normal', 'mem_clients_normal_bytes'],
        ['mem_clients_slaves', 'mem_clients_slaves_bytes'],
        ['module_fork_last_cow_size', 'module_fork_last_cow_size_bytes'],
        ['replica_resyncs_full', 'replica_resyncs_full_total'],
        ['replica_partial_resync_accepted', 'replica_partial_resync_accepted_total'],
        ['replica_partial_resync_denied', 'replica_partial_resync_denied_total'],
        ['total_error_replies', 'error_replies_total'],
        ['unexpected_error_replies', 'unexpected_error_replies_total'],
        ['total_reads_processed', 'reads_processed_total'],
        ['total_writes_processed', 'writes_processed_total'],
        ['io_threaded_reads_processed', 'io_threaded_reads_processed_total'],
        ['io_threaded_writes_processed', 'io_threaded_writes_processed_total'],
        ['dump_payload_sanitizations', 'dump_payload_sanitizations_total'],
        ['defrag_hits', 'defrag_hits_total'],
        ['defrag_misses', 'defrag_misses_total'],
        ['migrate_cached_sockets_total', 'migrate_cached_sockets'],
        ['latency_spike_last', 'latency_spike_last_timestamp_seconds'],
        // Keys per group: theirs groups by Lua regexes, ours by SCAN patterns.
        ['key_group_count', 'key_group_keys'],
        // redis_exporter emits it with --ping-on-connect: both time one PING round trip.
        ['exporter_last_scrape_ping_time_seconds', 'ping_duration_seconds'],
      ]
    ]
    + [
      { record: 'redis_latency_percentiles_usec', expr: quantiles('redis_commands_latency_seconds{%s}' % redis) + ' * 1e6' },
      scaled('redis_latency_percentiles_usec_sum', 'redis_commands_latency_seconds_sum', redis, '1e6'),
      rename('redis_latency_percentiles_usec_count', 'redis_commands_latency_seconds_count', redis),
      selfMetric('redis_exporter_last_scrape_duration_seconds', 'stack_exporter_collector_duration_seconds{%s, collector="redis"}' % redis),
    ],

  prometheusCompatRules:: {
    groups: [{ name: 'stack-exporter.compat.rules', rules: postgresRules + redisRules }],
  },

  prometheusRules+:: {
    groups+: if c.compat.enabled then $.prometheusCompatRules.groups else [],
  },
}
