// Redis servers, replicas, cluster nodes and sentinels (collector `redis`).
// Rows go from what users feel (down, full, slow, evicting) to why (clients,
// replication, persistence, keys, commands).
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.redis;
  local redis = s.source(config, 'redis', c.selector, 'redis_up', 'Redis job', 'The scrape job(s) of the exporter watching Redis.');
  local sel(extra=[]) = s.sel(redis.selector, extra);
  local q = g.query;
  local rate(m, extra=[]) = 'rate(%s%s[$__rate_interval])' % [m, sel(extra)];

  g.dashboard(
    uid=config.dashboardUids.redis,
    title='Redis',
    description='Redis servers watched by stack-exporter: availability, memory against maxmemory, hit ratio, evictions, clients, replication, cluster and sentinel state, key groups and commands.',
    tags=['redis'],
    variables=s.jobVariables([redis]) + [
      s.instanceVariable('redis_up', redis.selector, description='The stack-exporter instance(s) that scrape these servers.'),
      s.targetVariable(['redis'], redis.selector, description='Redis targets (the name configured in the exporter).'),
    ],
    rows=[
      g.row('Availability', [
        g.stat('Up', 'Whether the exporter reached the server at its last scrape (redis_up). DOWN for %s fires RedisDown.' % c.downFor,
               'none', [q('redis_up%s' % sel(), '{{target}}', instant=true)], w=6, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
        g.stat('Role', 'Replication role per server, from INFO (redis_instance_info). A change of role, or a new replication history (redis_second_repl_offset rising), is a failover (RedisFailover).',
               'none', [q('redis_instance_info%s' % sel(), '{{target}}: {{role}}', instant=true)], w=6, textMode='name', colorMode='none'),
        g.stat('Uptime', 'Seconds since the server started: a small value means a restart, which empties a cache without persistence.',
               's', [q('redis_uptime_in_seconds%s' % sel(), '{{target}}', instant=true)], w=6, thresholds=[[0, 'orange'], [3600, 'green']], base='orange'),
        g.stat('PING round trip', 'Round trip of the PING the exporter sends first each scrape (includes reconnecting after a drop).',
               's', [q('redis_ping_duration_seconds%s' % sel(), '{{target}}', instant=true)], w=6, thresholds=[[0.1, 'orange'], [1, 'red']], colorMode='value'),
        g.timeseries('Commands per second', 'Commands processed per second (rate of redis_commands_processed_total).',
                     'ops', [q('sum by (target) (%s)' % rate('redis_commands_processed_total'), '{{target}}')], w=24, h=6),
      ]),
      g.row('Memory and evictions', [
        g.timeseries('Memory used / limit',
                     'Used memory as a fraction of maxmemory; for servers without a limit (maxmemory 0), resident memory as a fraction of the host memory, the limit they really have (in a container set maxmemory: the host is not the container). Sentinels have no memory series. Above %s for %s fires RedisMemoryHigh, except against the maxmemory of a cache (maxmemory-policy %s), which runs full by design.' % [s.num(c.memoryRatio), c.memoryFor, c.cachePolicies],
                     'percentunit', [
                       q('redis_memory_used_bytes%(s)s / (redis_memory_max_bytes%(s)s > 0)' % { s: sel() }, '{{target}} of maxmemory'),
                       q('redis_memory_used_rss_bytes%(s)s / redis_total_system_memory_bytes%(s)s and redis_memory_max_bytes%(s)s == 0' % { s: sel() }, '{{target}} of host memory'),
                     ],
                     thresholds=[[c.memoryRatio, 'red']], min=0, max=1),
        g.timeseries('Memory used and limit', 'Bytes allocated by Redis, its resident set and the maxmemory setting (0 means no limit).',
                     'bytes', [
                       q('redis_memory_used_bytes%s' % sel(), '{{target}} used'),
                       q('redis_memory_used_rss_bytes%s' % sel(), '{{target}} rss'),
                       q('redis_memory_max_bytes%s > 0' % sel(), '{{target}} maxmemory'),
                     ], fill=0),
        g.timeseries('Evicted keys per second',
                     'Keys evicted because of maxmemory. Above %s/s for %s fires RedisEvictions, except on caches (maxmemory-policy %s), which evict by design.' % [s.num(c.evictionsRate), c.evictionsFor, c.cachePolicies],
                     'ops', [q('sum by (target) (%s)' % rate('redis_evicted_keys_total'), '{{target}}')], thresholds=[[c.evictionsRate, 'red']], min=0),
        g.timeseries('Fragmentation ratio', 'RSS divided by used memory: well above 1.5 wastes memory (consider active defrag); below 1 means swapping.',
                     'none', [q('redis_mem_fragmentation_ratio%s' % sel(), '{{target}}')], w=12, h=6, thresholds=[[1.5, 'orange']]),
        g.timeseries('Expired keys per second', 'Keys removed by expiry; a drop to zero with growing memory can mean TTLs are missing.',
                     'ops', [q('sum by (target) (%s)' % rate('redis_expired_keys_total'), '{{target}}')], w=12, h=6),
      ]),
      g.row('Cache effectiveness', [
        g.timeseries('Hit ratio', 'Key lookups that found the key, of all lookups (keyspace hits / (hits + misses)). Empty when there are no lookups.',
                     'percentunit', [q(|||
                       sum by (target) (%(hits)s)
                       /
                       (sum by (target) (%(hits)s) + sum by (target) (%(misses)s))
                     ||| % { hits: rate('redis_keyspace_hits_total'), misses: rate('redis_keyspace_misses_total') }, '{{target}}')], w=12, min=0, max=1),
        g.timeseries('Lookups per second', 'Keyspace hits and misses per second.',
                     'ops', [
                       q('sum by (target) (%s)' % rate('redis_keyspace_hits_total'), '{{target}} hits'),
                       q('sum by (target) (%s)' % rate('redis_keyspace_misses_total'), '{{target}} misses'),
                     ], w=12),
      ]),
      g.row('Clients', [
        g.timeseries('Connected clients / maxclients', 'Client connections as a fraction of maxclients; at 1 new connections are rejected. Above %s for %s fires RedisClientsNearMax.' % [s.num(c.clientsRatio), c.clientsFor],
                     'percentunit', [q('redis_connected_clients%(s)s / redis_config_maxclients%(s)s' % { s: sel() }, '{{target}}')],
                     thresholds=[[c.clientsRatio, 'orange'], [1, 'red']], min=0),
        g.timeseries('Clients', 'Connected clients (replicas excluded) and clients blocked on BLPOP, WAIT and the like.',
                     'short', [
                       q('redis_connected_clients%s' % sel(), '{{target}} connected'),
                       q('redis_blocked_clients%s' % sel(), '{{target}} blocked'),
                     ]),
        g.timeseries('Rejected connections per second', 'Connections refused because maxclients was reached; any fires RedisRejectedConnections.',
                     'ops', [q('sum by (target) (%s)' % rate('redis_rejected_connections_total'), '{{target}}')], thresholds=[[0, 'red']], min=0),
      ]),
      g.row('Replication, cluster and sentinel', [
        g.stat('Connected replicas', 'Replicas connected to each primary (primaries only: servers whose role is master; replicas, cluster replicas and sentinels are left out). A primary that had replicas within %s and has none fires RedisNoReplicas.' % c.replicasLookback,
               'short', [q('redis_connected_slaves%s and on (target) redis_instance_info%s' % [sel(), sel(['role="master"'])], '{{target}}', instant=true)],
               w=6, colorMode='value'),
        g.stat('Replica link', 'Whether the link to the primary is up (redis_master_link_up: replicas only, primaries and sentinels have no such series). DOWN for %s fires RedisReplicaLinkDown.' % c.replicaLinkDownFor,
               'none', [q('redis_master_link_up%s' % sel(), '{{target}}', instant=true)], w=6, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
        g.timeseries('Replica lag (seen by the primary)', 'Seconds since each replica last acknowledged its primary, as the primary reports it (primaries with connected replicas only).',
                     's', [q('redis_connected_slave_lag_seconds%s' % sel(), '{{target}} → {{slave_ip}}:{{slave_port}}')], w=12, h=4),
        g.stat('Cluster state', 'CLUSTER INFO state (cluster nodes only: standalone servers and sentinels have no redis_cluster_* series). FAIL means the cluster refuses queries (RedisClusterStateNotOk).',
               'none', [q('redis_cluster_state%s' % sel(), '{{target}}', instant=true)], w=6, mappings=g.okMappings('OK', 'FAIL'), base='red', thresholds=[[1, 'green']]),
        g.timeseries('Cluster slots', 'Slots whose node is reachable, possibly failing or failed (cluster nodes only). Any failing slot fires RedisClusterSlotsFailing.',
                     'short', [
                       q('redis_cluster_slots_ok%s' % sel(), '{{target}} ok'),
                       q('redis_cluster_slots_pfail%s' % sel(), '{{target}} pfail'),
                       q('redis_cluster_slots_fail%s' % sel(), '{{target}} fail'),
                     ], w=6, h=4),
        g.stat('Sentinel: primary status', 'Whether each sentinel sees its primary as ok (sentinels only: redis_sentinel_* comes from sentinel targets). DOWN for %s fires RedisSentinelMasterDown.' % c.sentinelMasterDownFor,
               'none', [q('redis_sentinel_master_status%s' % sel(), '{{target}}: {{master_name}}', instant=true)], w=6, mappings=g.upMappings('OK', 'DOWN'), base='red', thresholds=[[1, 'green']]),
        g.stat('Sentinel: healthy peers', 'Sentinels and replicas of each primary that are not flagged down, as each sentinel sees them (sentinels only): fewer healthy sentinels than a majority of those watching the primary for %s fires RedisSentinelQuorumLost (no failover can be authorized).' % c.sentinelQuorumFor,
               'short', [
                 q('redis_sentinel_master_ok_sentinels%s' % sel(), '{{target}}: {{master_name}} sentinels', instant=true),
                 q('redis_sentinel_master_ok_slaves%s' % sel(), '{{target}}: {{master_name}} replicas', instant=true),
               ], w=6, colorMode='value'),
      ]),
      g.row('Persistence', [
        g.stat('Last RDB save', 'Whether the last background save succeeded; FAILED for %s fires RedisLastSaveFailed (writes may be refused).' % c.lastSaveFailedFor,
               'none', [q('redis_rdb_last_bgsave_status%s' % sel(), '{{target}}', instant=true)], w=8, mappings=g.okMappings(), base='red', thresholds=[[1, 'green']]),
        g.stat('Time since last save', 'Age of the last successful RDB save: what a crash would lose if persistence relies on RDB. Above %ss with unsaved changes for %s fires RedisNoRecentSave.' % [s.num(c.lastSaveMaxAgeSeconds), c.lastSaveAgeFor],
               's', [q('time() - redis_rdb_last_save_timestamp_seconds%s' % sel(), '{{target}}', instant=true)], w=8, colorMode='value', thresholds=[[c.lastSaveMaxAgeSeconds, 'red']]),
        g.timeseries('Changes since last save', 'Writes not yet in an RDB snapshot.',
                     'short', [q('redis_rdb_changes_since_last_save%s' % sel(), '{{target}}')], w=8, h=4),
      ]),
      g.row('Keys', [
        g.timeseries('Keys per database', 'Keys in each database, and how many have an expiry.',
                     'short', [
                       q('redis_db_keys%s' % sel(), '{{target}} {{db}}'),
                       q('redis_db_keys_expiring%s' % sel(), '{{target}} {{db}} expiring'),
                     ], w=12),
        g.timeseries('Key groups', 'Keys matching each configured pattern (only targets with key_patterns configured, once the first background SCAN pass has finished; a lower bound when a pass was incomplete). A drop of more than %s in %s fires RedisSessionKeysDropped for groups matching "%s".' % [s.num(c.keyDropRatio * 100) + '%', '1h', c.sessionKeyGroups],
                     'short', [q('redis_key_group_keys%s' % sel(), '{{target}} {{db}} {{key_group}}')], w=12),
      ]),
      g.row('Commands', [
        g.timeseries('Top commands per second', 'The ten busiest commands by calls per second.',
                     'ops', [q('topk(10, sum by (target, cmd) (%s))' % rate('redis_commands_total'), '{{target}} {{cmd}}')], w=12),
        g.timeseries('Command latency p99', "Redis's own 99th percentile latency per command (LATENCYSTATS: Redis 7 and later only), the ten slowest.",
                     's', [q('topk(10, redis_commands_latency_seconds%s)' % sel(['quantile="0.99"']), '{{target}} {{cmd}}')], w=12),
      ]),
    ],
  )
