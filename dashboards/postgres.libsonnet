// PostgreSQL servers and their PgBouncer pools (collectors `postgres` and `pgbouncer`).
// Rows go from symptoms (down, out of connections, clients waiting, replicas behind)
// to causes (locks, long transactions, slow statements, growth).
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';
// PgBouncer's panels sit in this view's rows, next to the servers its pools feed.
local pgbouncer = import 'pgbouncer.libsonnet';

function(config)
  local c = config.postgres;
  local pg = s.source(config, 'postgres', c.selector, 'pg_up', 'PostgreSQL job', 'The scrape job(s) of the exporter watching PostgreSQL.');
  local bouncer = pgbouncer(config);
  local sel(extra=[]) = s.sel(pg.selector, extra);
  local q = g.query;
  local rate(m, extra=[]) = 'rate(%s%s[$__rate_interval])' % [m, sel(extra)];
  local pct(x) = s.num(x * 100) + '%';

  g.dashboard(
    uid=config.dashboardUids.postgres,
    title='PostgreSQL',
    description='PostgreSQL servers and PgBouncer pools watched by stack-exporter: connections against the limit, pools and waiting clients, replication lag, throughput and cache, locks and long transactions, slow statements, sizes.',
    tags=['postgres', 'pgbouncer'],
    // Instances and targets are listed from the PostgreSQL source's job (the same job as
    // PgBouncer's unless the config gives them different ones).
    variables=s.jobVariables([pg, bouncer.source]) + [
      s.instanceVariable('stack_exporter_build_info', pg.selector, description='The stack-exporter instance(s) that query these servers.'),
      s.targetVariable(['postgres', 'pgbouncer'], pg.selector, description='PostgreSQL and PgBouncer targets (the name configured in the exporter).'),
    ],
    rows=[
      g.row('Availability', [
        g.stat('PostgreSQL up',
               'Whether the exporter could query the server at its last scrape (pg_up). DOWN for %s fires PostgresDown.' % c.downFor,
               'none',
               [q('pg_up%s' % sel(), '{{target}}', instant=true)],
               w=6,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
      ] + bouncer.availability + [
        g.stat('Role',
               'Primary or replica (pg_replication_is_replica).',
               'none',
               [q('pg_replication_is_replica%s' % sel(), '{{target}}', instant=true)],
               w=4,
               colorMode='none',
               mappings=[{ type: 'value', options: { '0': { text: 'primary', index: 0 }, '1': { text: 'replica', index: 1 } } }]),
        g.stat('Version',
               'Server version (pg_version_info).',
               'none',
               [q('pg_version_info%s' % sel(), '{{target}}: {{version}}', instant=true)],
               w=4,
               textMode='name',
               colorMode='none'),
        g.stat('Uptime',
               'Seconds since the postmaster started: a small value means a restart or a failover.',
               's',
               [q('time() - pg_postmaster_start_time_seconds%s' % sel(), '{{target}}', instant=true)],
               w=4,
               thresholds=[[0, 'orange'], [3600, 'green']],
               base='orange'),
      ]),
      g.row('Connections and pools', [
        g.gauge('Connections / limit',
                'Client backends as a fraction of max_connections minus the superuser reserve (recording rule target:pg_connections:ratio). Above %s for %s warns, above %s is critical (PostgresTooManyConnections).' % [pct(c.connectionsWarning), c.connectionsFor, pct(c.connectionsCritical)],
                'percentunit',
                [q('target:pg_connections:ratio{target=~"$target"}', '{{target}}', instant=true)],
                w=6,
                h=8,
                thresholds=[[c.connectionsWarning, 'orange'], [c.connectionsCritical, 'red']]),
        g.timeseries('Connections by state',
                     'Sessions per state (active, idle, idle in transaction ...) from pg_stat_activity.',
                     'short',
                     [q('sum by (target, state) (pg_stat_activity_connections%s)' % sel(), '{{target}} {{state}}')],
                     w=9,
                     stack=true),
        g.timeseries('Waiting and blocked sessions',
                     'Sessions waiting on a lock or other event, and sessions blocked by another session.',
                     'short',
                     [
                       q('sum by (target) (pg_stat_activity_waiting_connections%s)' % sel(), '{{target}} waiting'),
                       q('sum by (target) (pg_stat_activity_blocked_connections%s)' % sel(), '{{target}} blocked'),
                     ],
                     w=9),
      ] + bouncer.pools),
      g.row('Replication', [
        g.timeseries('Replica lag',
                     'How far each replica replays behind its primary, in seconds (replicas only: pg_replication_lag_seconds exists only on servers in recovery). Above %ss for %s warns, above %ss is critical (PostgresReplicationLag).' % [s.num(c.replicationLagWarning), c.replicationLagFor, s.num(c.replicationLagCritical)],
                     's',
                     [q('pg_replication_lag_seconds%(s)s and on (target) pg_replication_is_replica%(s)s == 1' % { s: sel() }, '{{target}}')],
                     thresholds=[[c.replicationLagWarning, 'orange'], [c.replicationLagCritical, 'red']],
                     min=0),
        g.timeseries('Replay lag seen by the primary',
                     'pg_stat_replication on the primary: replay lag of each connected standby (primaries with connected replicas only).',
                     's',
                     [q('pg_stat_replication_replay_lag_seconds%s' % sel(), '{{target}} → {{application_name}} {{client_addr}}')]),
        g.stat('WAL receiver',
               'Whether a WAL receiver streams from the primary (replicas only: primaries have no pg_stat_wal_receiver_up); none for %s fires PostgresReplicaNotStreaming.' % c.replicaNotStreamingFor,
               'none',
               [q('pg_stat_wal_receiver_up%s' % sel(), '{{target}}: {{status}}', instant=true)],
               w=4,
               h=8,
               mappings=g.upMappings('STREAMING', 'DOWN'),
               base='red',
               thresholds=[[1, 'green']]),
        g.timeseries('WAL retained by slots',
                     'WAL each replication slot keeps on the primary (servers with replication slots only). An inactive slot above %s for %s fires PostgresInactiveReplicationSlot: it will fill the disk.' % [s.num(c.inactiveSlotRetainedBytes / 1024 / 1024) + ' MiB', c.inactiveSlotFor],
                     'bytes',
                     [q('pg_replication_slot_wal_retained_bytes%s' % sel(), '{{target}} {{slot_name}}')],
                     w=4,
                     thresholds=[[c.inactiveSlotRetainedBytes, 'red']]),
      ]),
      g.row('Throughput and cache', [
        g.timeseries('Transactions per second',
                     'Commits and rollbacks per second; a jump in rollbacks is an application error.',
                     'ops',
                     [
                       q('sum by (target) (%s)' % rate('pg_stat_database_xact_commit_total'), '{{target}} commit'),
                       q('sum by (target) (%s)' % rate('pg_stat_database_xact_rollback_total'), '{{target}} rollback'),
                     ]),
        g.timeseries('Buffer cache hit ratio',
                     'Block reads served from shared buffers. Below %s while reading more than %s blocks/s for %s fires PostgresLowCacheHitRatio.' % [pct(c.cacheHitRatio), s.num(c.cacheMinReadRate), c.cacheHitFor],
                     'percentunit',
                     [q(|||
                       sum by (target, datname) (%(hit)s)
                       /
                       (sum by (target, datname) (%(hit)s) + sum by (target, datname) (%(read)s))
                     ||| % { hit: rate('pg_stat_database_blks_hit_total'), read: rate('pg_stat_database_blks_read_total') }, '{{target}} {{datname}}')],
                     thresholds=[[0, 'red'], [c.cacheHitRatio, 'green']],
                     max=1),
        g.timeseries('Rows per second',
                     'Rows returned, inserted, updated and deleted per second.',
                     'ops',
                     [
                       q('sum by (target) (%s)' % rate('pg_stat_database_tup_returned_total'), '{{target}} returned'),
                       q('sum by (target) (%s)' % rate('pg_stat_database_tup_inserted_total'), '{{target}} inserted'),
                       q('sum by (target) (%s)' % rate('pg_stat_database_tup_updated_total'), '{{target}} updated'),
                       q('sum by (target) (%s)' % rate('pg_stat_database_tup_deleted_total'), '{{target}} deleted'),
                     ]),
      ]),
      g.row('Locks and transactions', [
        g.timeseries('Locks waiting',
                     'Lock requests not granted yet, by mode: a queue behind one long transaction or DDL.',
                     'short',
                     [q('sum by (target, mode) (pg_locks_waiting%s)' % sel(), '{{target}} {{mode}}')],
                     w=6),
        g.timeseries('Locks held',
                     'Granted locks by mode.',
                     'short',
                     [q('sum by (target, mode) (pg_locks_held%s)' % sel(), '{{target}} {{mode}}')],
                     w=6),
        g.timeseries('Longest transaction',
                     'Age of the oldest open transaction per database. Above %s for %s fires PostgresLongRunningTransaction; idle in transaction above %s fires PostgresIdleInTransaction.' % [s.num(c.longTransactionSeconds) + 's', c.longTransactionFor, s.num(c.idleInTransactionSeconds) + 's'],
                     's',
                     [
                       q('max by (target) (pg_stat_activity_max_tx_duration_seconds%s)' % sel(), '{{target}} transaction'),
                       q('max by (target) (pg_stat_activity_max_idle_in_transaction_seconds%s)' % sel(), '{{target}} idle in transaction'),
                     ],
                     w=6,
                     thresholds=[[c.idleInTransactionSeconds, 'orange'], [c.longTransactionSeconds, 'red']]),
        g.timeseries('Deadlocks',
                     'Deadlocks in the last %s; any fires PostgresDeadlocks.' % c.deadlocksWindow,
                     'short',
                     [q('sum by (target, datname) (increase(pg_stat_database_deadlocks_total%s[%s]))' % [sel(), c.deadlocksWindow], '{{target}} {{datname}}')],
                     w=6,
                     thresholds=[[c.deadlocksThreshold + 1, 'red']],
                     min=0),
        g.timeseries('Transaction ID age',
                     'Age of the oldest unfrozen transaction ID per database; wraparound stops the server near 2.1 billion (PostgresTxIDWraparound).',
                     'short',
                     [q('pg_database_frozen_xid_age%s' % sel(), '{{target}} {{datname}}')],
                     w=24,
                     h=6,
                     thresholds=[[c.xidAgeWarning, 'orange'], [c.xidAgeCritical, 'red']]),
      ]),
      g.row('Statements', [
        g.table('Slowest statements (mean time per call)',
                "Statements with the highest mean execution time over the selected rate window, from pg_stat_statements (only where the pg_stat_statements extension is installed in the DSN's database; the exporter keeps the most expensive ones).",
                's',
                [q(|||
                  topk(10,
                    sum by (target, datname, user, queryid) (%(secs)s)
                    / (sum by (target, datname, user, queryid) (%(calls)s) > 0)
                  )
                  * on (target, datname, user, queryid) group_left (query)
                  max by (target, datname, user, queryid, query) (pg_stat_statements_query_info%(s)s)
                ||| % { secs: rate('pg_stat_statements_seconds_total'), calls: rate('pg_stat_statements_calls_total'), s: sel() })],
                w=24,
                sortBy=[{ displayName: 'Value', desc: true }],
                hide=['Time', 'queryid']),
        g.timeseries('Statement time per second',
                     'Seconds spent executing statements per second: the top ten statements by total time, the load they put on the server (only where the pg_stat_statements extension is installed).',
                     's',
                     [q('topk(10, sum by (target, datname, queryid) (%s))' % rate('pg_stat_statements_seconds_total'), '{{target}} {{datname}} {{queryid}}')],
                     w=12),
        g.timeseries('Temporary files',
                     'Bytes written to temporary files per second: sorts and hashes that did not fit in work_mem.',
                     'Bps',
                     [q('sum by (target, datname) (%s)' % rate('pg_stat_database_temp_bytes_total'), '{{target}} {{datname}}')],
                     w=12),
      ]),
      g.row('Sizes and tables', [
        g.timeseries('Database size',
                     'Size of each database. Growth above %s in %s for databases above %s GiB fires PostgresDatabaseGrowth.' % [pct(c.growthRatio), c.growthWindow, s.num(c.growthMinBytes / 1024 / 1024 / 1024)],
                     'bytes',
                     [q('pg_database_size_bytes%s' % sel(['datname!~"template.*"']), '{{target}} {{datname}}')]),
        g.table('Largest tables',
                'The ten largest user tables, indexes and TOAST included (from page counts as of the last VACUUM or ANALYZE).',
                'bytes',
                [q('topk(10, pg_stat_user_tables_size_bytes%s)' % sel(), '')],
                w=8,
                hide=['Time', '__name__'],
                sortBy=[{ displayName: 'Value', desc: true }]),
        g.timeseries('Dead rows',
                     'Estimated dead rows per table, the ten highest: vacuum is not keeping up when it only grows.',
                     'short',
                     [q('topk(10, pg_stat_user_tables_n_dead_tup%s)' % sel(), '{{target}} {{datname}}.{{schemaname}}.{{relname}}')]),
      ]),
      g.row('Data retention', [
        g.timeseries('Oldest row age',
                     'Age of the oldest row of each checked table (%s), from the custom query `pg_retention` in examples/queries.yaml: only targets that load that query (custom_queries_file) fill it. Older than %s days for %s fires PostgresDataRetentionExceeded: the cleanup job has stopped.' % [c.retentionMetric, s.num(c.retentionMaxAgeSeconds / 86400), c.retentionFor],
                     's',
                     [q('%s%s' % [c.retentionMetric, sel()], '{{target}} {{table}}')],
                     w=24,
                     h=6,
                     thresholds=[[c.retentionMaxAgeSeconds, 'red']],
                     min=0),
      ]),
    ],
  )
