// PostgreSQL servers (PgBouncer's pools have their own file, pgbouncer.libsonnet).
local esc = import '../lib/escalate.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.postgres,
    groups+: [
      {
        name: 'stack-exporter.postgres',
        dashboard:: 'postgres',
        rules: esc.escalate({
          alert: 'PostgresDown',
          expr: 'pg_up{%s} == 0' % c.selector,
          'for': c.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A PostgreSQL server cannot be reached.',
            description: 'The exporter cannot query PostgreSQL {{ $labels.target }}.',
          },
        }, $._config.escalation.postgresDown) + [
          {
            alert: 'PostgresTooManyConnections',
            expr: 'target:pg_connections:ratio > %s' % n(t.ratio),
            'for': c.connectionsFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A PostgreSQL server is running out of connections.',
              description: 'PostgreSQL {{ $labels.target }} uses {{ $value | humanizePercentage }} of the connections available to applications (threshold %s).' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: c.connectionsWarning, severity: 'warning' }, { ratio: c.connectionsCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'PostgresReplicationLag',
            expr: |||
              pg_replication_lag_seconds{%(s)s} > %(t)s
              and on (target)
              pg_replication_is_replica{%(s)s} == 1
            ||| % { s: c.selector, t: n(t.seconds) },
            'for': c.replicationLagFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A PostgreSQL replica is behind its primary.',
              description: 'Replica {{ $labels.target }} replays WAL {{ $value | humanizeDuration }} behind its primary (threshold %ss).' % n(t.seconds),
            },
          }
          for t in [{ seconds: c.replicationLagWarning, severity: 'warning' }, { seconds: c.replicationLagCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'PostgresReplicaNotStreaming',
            expr: |||
              pg_replication_is_replica{%(s)s} == 1
              unless on (target)
              pg_stat_wal_receiver_up{%(s)s} == 1
            ||| % { s: c.selector },
            'for': c.replicaNotStreamingFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PostgreSQL replica is not streaming WAL from its primary.',
              description: 'Replica {{ $labels.target }} has no streaming WAL receiver; it falls behind and cannot take over.',
            },
          },
          {
            alert: 'PostgresInactiveReplicationSlot',
            expr: |||
              pg_replication_slot_wal_retained_bytes{%(s)s} > %(t)s
              and on (target, slot_name)
              pg_replication_slot_active{%(s)s} == 0
            ||| % { s: c.selector, t: n(c.inactiveSlotRetainedBytes) },
            'for': c.inactiveSlotFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'An inactive replication slot retains WAL on a PostgreSQL primary.',
              description: 'Slot {{ $labels.slot_name }} on {{ $labels.target }} is inactive and retains {{ $value | humanize1024 }}B of WAL.',
            },
          },
          {
            alert: 'PostgresDeadlocks',
            expr: 'increase(pg_stat_database_deadlocks_total{%s}[%s]) > %s' % [c.selector, c.deadlocksWindow, n(c.deadlocksThreshold)],
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Transactions deadlocked in a PostgreSQL database.',
              description: '{{ $value | humanize }} deadlocks in database {{ $labels.datname }} on {{ $labels.target }} in the last %s.' % c.deadlocksWindow,
            },
          },
          {
            alert: 'PostgresLongRunningTransaction',
            expr: 'pg_stat_activity_max_tx_duration_seconds{%s} > %s' % [c.selector, n(c.longTransactionSeconds)],
            'for': c.longTransactionFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PostgreSQL transaction has been open for a long time.',
              description: 'The oldest transaction in database {{ $labels.datname }} on {{ $labels.target }} has been open for {{ $value | humanizeDuration }}.',
            },
          },
          {
            alert: 'PostgresIdleInTransaction',
            expr: 'pg_stat_activity_max_idle_in_transaction_seconds{%s} > %s' % [c.selector, n(c.idleInTransactionSeconds)],
            'for': c.longTransactionFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PostgreSQL session sits idle inside an open transaction.',
              description: 'A session in database {{ $labels.datname }} on {{ $labels.target }} has been idle in transaction for {{ $value | humanizeDuration }}.',
            },
          },
        ] + [
          {
            alert: 'PostgresTxIDWraparound',
            expr: 'pg_database_frozen_xid_age{%s} > %s' % [c.selector, n(t.age)],
            'for': c.wraparoundFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A PostgreSQL database is approaching transaction-ID wraparound.',
              description: 'The oldest unfrozen transaction ID of database {{ $labels.datname }} on {{ $labels.target }} is {{ $value | humanize }} transactions old.',
            },
          }
          for t in [{ age: c.xidAgeWarning, severity: 'warning' }, { age: c.xidAgeCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'PostgresMultiXactWraparound',
            expr: 'pg_database_frozen_mxid_age{%s} > %s' % [c.selector, n(t.age)],
            'for': c.wraparoundFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A PostgreSQL database is approaching MultiXact-ID wraparound.',
              description: 'The oldest unfrozen MultiXact ID of database {{ $labels.datname }} on {{ $labels.target }} is {{ $value | humanize }} MultiXacts old.',
            },
          }
          for t in [{ age: c.mxidAgeWarning, severity: 'warning' }, { age: c.mxidAgeCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'PostgresSessionsBlocked',
            expr: 'pg_stat_activity_blocked_connections{%s} >= %s' % [c.selector, n(c.blockedSessions)],
            'for': c.blockedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'PostgreSQL sessions queue behind locks held by other sessions.',
              description: '{{ $value }} sessions in database {{ $labels.datname }} on {{ $labels.target }} have been blocked on locks for %s.' % c.blockedFor,
            },
          },
          {
            alert: 'PostgresDeadTuplesAccumulating',
            expr: |||
              (
                pg_stat_user_tables_n_dead_tup{%(s)s}
                / (pg_stat_user_tables_n_dead_tup{%(s)s} + pg_stat_user_tables_n_live_tup{%(s)s})
                > %(r)s
                and
                pg_stat_user_tables_n_dead_tup{%(s)s} > %(min)s
              )
              unless on (target, datname, schemaname, relname)
              pg_stat_user_tables_last_autovacuum_age_seconds{%(s)s} < %(age)s
            ||| % { s: c.selector, r: n(c.deadTupleRatio), min: n(c.deadTupleMinRows), age: n(c.autovacuumStalledSeconds) },
            'for': c.deadTupleFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Dead rows pile up in a PostgreSQL table that autovacuum does not vacuum.',
              description: '{{ $value | humanizePercentage }} of the rows of {{ $labels.schemaname }}.{{ $labels.relname }} in {{ $labels.datname }} on {{ $labels.target }} are dead, and autovacuum has not vacuumed it for %sh.' % n(c.autovacuumStalledSeconds / 3600),
            },
          },
          {
            alert: 'PostgresReplicationSlotLagging',
            expr: |||
              pg_replication_slot_wal_retained_bytes{%(s)s} > %(t)s
              and on (target, slot_name)
              pg_replication_slot_active{%(s)s} == 1
            ||| % { s: c.selector, t: n(c.activeSlotRetainedBytes) },
            'for': c.activeSlotFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The consumer of an active replication slot falls behind and the slot retains WAL.',
              description: 'The consumer of {{ $labels.slot_type }} slot {{ $labels.slot_name }} on {{ $labels.target }} is attached but reads slowly: the slot retains {{ $value | humanize1024 }}B of WAL.',
            },
          },
          {
            alert: 'PostgresReplayPaused',
            expr: 'pg_replication_replay_paused{%s} == 1' % c.selector,
            'for': c.replayPausedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'WAL replay is paused on a PostgreSQL replica.',
              description: 'Replica {{ $labels.target }} has paused WAL replay for %s: it serves ever older data and retains WAL.' % c.replayPausedFor,
            },
          },
        ] + [
          {
            alert: 'PostgresLowCacheHitRatio',
            expr: |||
              sum by (target, datname) (rate(pg_stat_database_blks_hit_total{%(s)s}[10m]))
              /
              (
                sum by (target, datname) (rate(pg_stat_database_blks_hit_total{%(s)s}[10m]))
                + sum by (target, datname) (rate(pg_stat_database_blks_read_total{%(s)s}[10m]))
              )
              < %(t)s
              and on (target, datname)
              sum by (target, datname) (rate(pg_stat_database_blks_read_total{%(s)s}[10m])) > %(min)s
            ||| % { s: c.selector, t: n(c.cacheHitRatio), min: n(c.cacheMinReadRate) },
            'for': c.cacheHitFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PostgreSQL database reads much of its data from disk.',
              description: 'Only {{ $value | humanizePercentage }} of the block reads of {{ $labels.datname }} on {{ $labels.target }} hit the buffer cache (threshold %s).' % promql.pct(c.cacheHitRatio),
            },
          },
          {
            alert: 'PostgresDatabaseGrowth',
            expr: |||
              (pg_database_size_bytes{%(s)s} - pg_database_size_bytes{%(s)s} offset %(w)s)
              / pg_database_size_bytes{%(s)s} offset %(w)s
              > %(t)s
              and
              pg_database_size_bytes{%(s)s} > %(min)s
            ||| % { s: c.selector, w: c.growthWindow, t: n(c.growthRatio), min: n(c.growthMinBytes) },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PostgreSQL database is growing unusually fast.',
              description: 'Database {{ $labels.datname }} on {{ $labels.target }} grew by {{ $value | humanizePercentage }} in %s.' % c.growthWindow,
            },
          },
          {
            alert: 'PostgresDataRetentionExceeded',
            expr: '%s{%s} > %s' % [c.retentionMetric, c.selector, n(c.retentionMaxAgeSeconds)],
            'for': c.retentionFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Rows older than the data-retention policy remain in PostgreSQL.',
              description: 'The oldest row of table {{ $labels.table }} on {{ $labels.target }} is {{ $value | humanizeDuration }} old, beyond the %s days policy.' % n(c.retentionMaxAgeSeconds / 86400),
            },
          },
          {
            // The guard of the one above: a custom query that fails drops its series, and
            // an alert on a missing series never fires.
            alert: 'PostgresDataRetentionUnknown',
            expr: |||
              max by (target, table) (max_over_time(%(m)s{%(s)s}[%(l)s]))
              unless on (target, table)
              %(m)s{%(s)s}
              and on (target)
              pg_up{%(s)s} == 1
            ||| % { m: c.retentionMetric, s: c.selector, l: c.retentionLookback },
            'for': c.retentionMissingFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The data-retention check of PostgreSQL reports nothing: its alert is blind.',
              description: 'PostgreSQL {{ $labels.target }} answers, but %s of table {{ $labels.table }} has not been reported for %s; PostgresDataRetentionExceeded cannot fire.' % [c.retentionMetric, c.retentionMissingFor],
            },
          },
        ],
      },
    ],
  },
}
