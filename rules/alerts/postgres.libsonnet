// PostgreSQL servers and their PgBouncer pools.
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.postgres,
    local b = $._config.pgbouncer,
    groups+: [
      {
        name: 'stack-exporter.postgres',
        dashboard:: 'postgres',
        rules: [
          {
            alert: 'PostgresDown',
            expr: 'pg_up{%s} == 0' % c.selector,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PostgreSQL server cannot be reached.',
              description: 'The exporter cannot query PostgreSQL {{ $labels.target }}.',
            },
          },
        ] + [
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
            'for': '10m',
            labels: { severity: t.severity },
            annotations: {
              summary: 'A PostgreSQL database is approaching transaction-ID wraparound.',
              description: 'The oldest unfrozen transaction ID of database {{ $labels.datname }} on {{ $labels.target }} is {{ $value | humanize }} transactions old.',
            },
          }
          for t in [{ age: c.xidAgeWarning, severity: 'warning' }, { age: c.xidAgeCritical, severity: 'critical' }]
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
        ],
      },
      {
        name: 'stack-exporter.pgbouncer',
        dashboard:: 'postgres',
        rules: [
          {
            alert: 'PgBouncerDown',
            expr: 'pgbouncer_up{%s} == 0' % b.selector,
            'for': b.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PgBouncer admin console cannot be reached.',
              description: 'The exporter cannot query PgBouncer {{ $labels.target }}.',
            },
          },
          {
            alert: 'PgBouncerClientsWaiting',
            expr: 'pgbouncer_pools_client_waiting_connections{%s} > 0' % b.selector,
            'for': b.clientsWaitingFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Clients wait for a server connection in a PgBouncer pool.',
              description: '{{ $value }} clients of pool {{ $labels.database }}/{{ $labels.user }} on {{ $labels.target }} have been waiting for a server connection for %s.' % b.clientsWaitingFor,
            },
          },
          {
            alert: 'PgBouncerPoolExhausted',
            expr: 'pgbouncer_pools_client_maxwait_seconds{%s} > %s' % [b.selector, n(b.maxWaitSeconds)],
            'for': b.maxWaitFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A PgBouncer pool is exhausted: clients wait seconds for a connection.',
              description: 'The oldest waiting client of pool {{ $labels.database }}/{{ $labels.user }} on {{ $labels.target }} has waited {{ $value | humanizeDuration }} (threshold %ss).' % n(b.maxWaitSeconds),
            },
          },
        ],
      },
    ],
  },
}
