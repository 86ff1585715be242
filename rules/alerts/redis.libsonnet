// Redis servers, replicas, clusters and sentinels.
local esc = import '../lib/escalate.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.redis,
    local s = c.selector,
    // Drops caches (an allkeys-* maxmemory-policy): full and evicting is how they work.
    local notCache = if c.cachePolicies == '' then '' else
      'unless on (job, instance, target) redis_instance_info%s' % promql.sel([s, 'maxmemory_policy=~"%s"' % c.cachePolicies]),
    groups+: [
      {
        name: 'stack-exporter.redis',
        dashboard:: 'redis',
        rules: esc.escalate({
          alert: 'RedisDown',
          expr: 'redis_up{%s} == 0' % s,
          'for': c.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A Redis server cannot be reached.',
            description: 'The exporter cannot reach Redis {{ $labels.target }}.',
          },
        }, $._config.escalation.redisDown) + [
          {
            // Against maxmemory where one is set; without it (maxmemory 0, the default) Redis
            // grows until the kernel's OOM killer stops it, so the limit is then the host's
            // memory, and what the kernel counts is the resident set.  `limit` says which.
            // A cache (allkeys-* policy) is full by design; noeviction and volatile-* refuse
            // writes when full.  Without maxmemory nothing is evicted whatever the policy.
            alert: 'RedisMemoryHigh',
            expr: |||
              label_replace(
                (
                  redis_memory_used_bytes{%(s)s} / redis_memory_max_bytes{%(s)s} > %(t)s
                  and
                  redis_memory_max_bytes{%(s)s} > 0
                )
                %(notCache)s,
                "limit", "maxmemory", "", ""
              )
              or
              label_replace(
                redis_memory_used_rss_bytes{%(s)s} / redis_total_system_memory_bytes{%(s)s} > %(t)s
                and
                redis_memory_max_bytes{%(s)s} == 0,
                "limit", "system", "", ""
              )
            ||| % { s: s, t: n(c.memoryRatio), notCache: notCache },
            'for': c.memoryFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server is close to its memory limit.',
              description: 'Redis {{ $labels.target }} uses {{ $value | humanizePercentage }} of {{ if eq $labels.limit "maxmemory" }}its maxmemory{{ else }}the memory of its host (no maxmemory is set){{ end }} (threshold %s).' % promql.pct(c.memoryRatio),
            },
          },
          {
            alert: 'RedisEvictions',
            // volatile-* evicts only keys with a TTL, before they expire: the data set outgrew
            // maxmemory.  Caches (allkeys-*) evict by design.
            expr: 'rate(redis_evicted_keys_total%s[5m]) > %s %s' % [promql.sel([s, c.evictionsSelector]), n(c.evictionsRate), notCache],
            'for': c.evictionsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server evicts keys because it is out of memory.',
              description: 'Redis {{ $labels.target }} evicts {{ $value | humanize }} keys per second.',
            },
          },
          {
            alert: 'RedisRejectedConnections',
            expr: 'increase(redis_rejected_connections_total{%s}[5m]) > 0' % s,
            'for': c.rejectedConnectionsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server rejects connections (maxclients reached).',
              description: 'Redis {{ $labels.target }} rejected {{ $value | humanize }} connections in the last 5 minutes.',
            },
          },
          {
            // Replicas' connections count against maxclients too, but redis_connected_clients
            // leaves them out: the share is a little low on a primary with many replicas.
            alert: 'RedisClientsNearMax',
            expr: |||
              redis_connected_clients{%(s)s} / redis_config_maxclients{%(s)s} > %(t)s
              and
              redis_config_maxclients{%(s)s} > 0
            ||| % { s: s, t: n(c.clientsRatio) },
            'for': c.clientsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server is close to its maxclients.',
              description: 'Redis {{ $labels.target }} has {{ $value | humanizePercentage }} of maxclients connected (threshold %s): past it, new connections are refused.' % promql.pct(c.clientsRatio),
            },
          },
          {
            alert: 'RedisReplicaLinkDown',
            expr: 'redis_master_link_up{%s} == 0' % s,
            'for': c.replicaLinkDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis replica lost its link to the primary.',
              description: 'Replica {{ $labels.target }} is not connected to its primary; its data is getting stale.',
            },
          },
          {
            alert: 'RedisNoReplicas',
            expr: |||
              redis_connected_slaves{%(s)s} == 0
              and on (target)
              max_over_time(redis_connected_slaves{%(s)s}[%(w)s]) > 0
              and on (target)
              redis_instance_info{%(s)s, role="master"}
            ||| % { s: s, w: c.replicasLookback },
            'for': c.noReplicasFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis primary that had replicas has none.',
              description: 'Redis primary {{ $labels.target }} had replicas within the last %s and now has none: a failure would lose data.' % c.replicasLookback,
            },
          },
          {
            alert: 'RedisClusterStateNotOk',
            expr: 'redis_cluster_state{%s} == 0' % s,
            'for': '1m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A Redis cluster reports its state as not ok.',
              description: 'Cluster node {{ $labels.target }} reports the cluster state fail: it refuses queries.',
            },
          },
          {
            alert: 'RedisClusterSlotsFailing',
            expr: 'redis_cluster_slots_fail{%(s)s} + redis_cluster_slots_pfail{%(s)s} > 0' % { s: s },
            'for': '1m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Redis cluster slots are served by failing nodes.',
              description: 'Cluster node {{ $labels.target }} sees {{ $value }} slots on failed or possibly failing nodes.',
            },
          },
          {
            // A failover shows as both roles seen on one target within the window, and as a
            // new replication history: on both sides of a failover (and on every replica that
            // follows the new primary) second_repl_offset jumps from -1, or from the previous
            // failover's offset, to where the new history starts.  A full resync sets it back
            // to -1, which is no failover: only a rise counts.
            alert: 'RedisFailover',
            expr: |||
              max by (target) (max_over_time(redis_instance_info{%(s)s, role="master"}[%(w)s]))
              and on (target)
              max by (target) (max_over_time(redis_instance_info{%(s)s, role="slave"}[%(w)s]))
              or
              max by (target) (redis_second_repl_offset{%(s)s} > min_over_time(redis_second_repl_offset{%(s)s}[%(w)s]))
            ||| % { s: s, w: c.failoverWindow },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server changed role (a failover happened).',
              description: 'Redis {{ $labels.target }} changed role or started a new replication history within the last %s: a failover.' % c.failoverWindow,
            },
          },
          {
            alert: 'RedisLastSaveFailed',
            expr: 'redis_rdb_last_bgsave_status{%s} == 0' % s,
            'for': c.lastSaveFailedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The last RDB save of a Redis server failed.',
              description: 'Redis {{ $labels.target }} could not write its last snapshot; with stop-writes-on-bgsave-error it refuses writes.',
            },
          },
          {
            // Redis refuses every write while the AOF cannot be written (disk full, I/O errors).
            alert: 'RedisAofWriteFailing',
            expr: |||
              redis_aof_last_write_status{%(s)s} == 0
              and on (job, instance, target)
              redis_aof_enabled{%(s)s} == 1
            ||| % { s: s },
            'for': c.aofWriteFailedFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A Redis server cannot write its append-only file.',
              description: 'Redis {{ $labels.target }} failed its last AOF write: it refuses writes until the AOF can be written again.',
            },
          },
          {
            // Failures of the save itself are RedisLastSaveFailed's; this catches saves that
            // stopped happening (save points changed, a stuck fork).  A server that never
            // saved since it started has snapshots off, or has just started.
            alert: 'RedisNoRecentSave',
            expr: |||
              time() - redis_rdb_last_save_timestamp_seconds{%(s)s} > %(age)s
              and on (job, instance, target)
              redis_rdb_changes_since_last_save{%(s)s} > 0
              and on (job, instance, target)
              redis_rdb_last_bgsave_status{%(s)s} == 1
              and on (job, instance, target)
              redis_rdb_saves_total{%(s)s} > 0
            ||| % { s: s, age: n(c.lastSaveMaxAgeSeconds) },
            'for': c.lastSaveAgeFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis server has not saved a snapshot for too long.',
              description: 'The last successful RDB save of Redis {{ $labels.target }} was {{ $value | humanizeDuration }} ago and it has unsaved changes: a restart would lose them.',
            },
          },
          {
            alert: 'RedisSentinelMasterDown',
            expr: 'redis_sentinel_master_status{%s} == 0' % s,
            'for': c.sentinelMasterDownFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A Redis sentinel reports its primary down.',
              description: 'Sentinel {{ $labels.target }} sees primary {{ $labels.master_name }} ({{ $labels.master_address }}) as {{ $labels.master_status }}.',
            },
          },
          {
            alert: 'RedisSentinelTilt',
            expr: 'redis_sentinel_tilt{%s} == 1' % s,
            'for': c.sentinelTiltFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A Redis sentinel is in TILT mode.',
              description: 'Sentinel {{ $labels.target }} has been in TILT mode for %s: it does not act, and takes no part in a failover.' % c.sentinelTiltFor,
            },
          },
          {
            // A failover needs the votes of a majority of the sentinels watching the primary
            // (whatever the configured quorum, which is not exported).
            alert: 'RedisSentinelQuorumLost',
            expr: |||
              redis_sentinel_master_ok_sentinels{%(s)s}
              < on (job, instance, target, master_name, master_address)
              floor(redis_sentinel_master_sentinels{%(s)s} / 2) + 1
            ||| % { s: s },
            'for': c.sentinelQuorumFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Too few Redis sentinels are reachable to authorize a failover.',
              description: 'Sentinel {{ $labels.target }} sees {{ $value }} healthy sentinels of those watching {{ $labels.master_name }}, fewer than a majority: if the primary fails, no failover happens.',
            },
          },
          {
            // Only complete counting passes count: an incomplete one is a lower bound.
            alert: 'RedisSessionKeysDropped',
            expr: |||
              redis_key_group_keys{%(s)s, key_group=~"%(g)s"}
              < %(keep)s * max_over_time(redis_key_group_keys{%(s)s, key_group=~"%(g)s"}[1h])
              and
              max_over_time(redis_key_group_keys{%(s)s, key_group=~"%(g)s"}[1h]) > %(min)s
              and on (target, key_group, db)
              redis_key_group_scan_complete{%(s)s} == 1
            ||| % { s: s, g: c.sessionKeyGroups, keep: n(1 - c.keyDropRatio), min: n(c.keyDropMinKeys) },
            'for': c.keyDropFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Session keys in Redis dropped suddenly.',
              description: 'Key group {{ $labels.key_group }} ({{ $labels.db }}) on {{ $labels.target }} has {{ $value }} keys, under %s of its peak of the last hour.' % promql.pct(1 - c.keyDropRatio),
            },
          },
        ],
      },
    ],
  },
}
