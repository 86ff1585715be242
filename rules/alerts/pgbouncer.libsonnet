// PgBouncer pools in front of PostgreSQL (the `pgbouncer` source).
local esc = import '../lib/escalate.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local b = $._config.pgbouncer,
    groups+: [
      {
        name: 'stack-exporter.pgbouncer',
        dashboard:: 'postgres',
        rules: esc.escalate({
          alert: 'PgBouncerDown',
          expr: 'pgbouncer_up{%s} == 0' % b.selector,
          'for': b.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A PgBouncer admin console cannot be reached.',
            description: 'The exporter cannot query PgBouncer {{ $labels.target }}.',
          },
        }, $._config.escalation.pgBouncerDown) + [
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
        ] + esc.escalate({
          alert: 'PgBouncerPoolExhausted',
          expr: 'pgbouncer_pools_client_maxwait_seconds{%s} > %s' % [b.selector, n(b.maxWaitSeconds)],
          'for': b.maxWaitFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'A PgBouncer pool is exhausted: clients wait seconds for a connection.',
            description: 'The oldest waiting client of pool {{ $labels.database }}/{{ $labels.user }} on {{ $labels.target }} has waited {{ $value | humanizeDuration }} (threshold %ss).' % n(b.maxWaitSeconds),
          },
        }, $._config.escalation.pgBouncerPoolExhausted) + [
          {
            alert: 'PgBouncerClientConnectionsHigh',
            expr: |||
              pgbouncer_used_clients{%(s)s}
              /
              pgbouncer_config_max_client_connections{%(s)s}
              > %(t)s
            ||| % { s: b.selector, t: n(t.ratio) },
            'for': b.clientConnectionsFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'PgBouncer nears max_client_conn: past it new clients are refused.',
              description: 'PgBouncer {{ $labels.target }} holds {{ $value | humanizePercentage }} of its max_client_conn client connections (threshold %s).' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: b.clientConnectionsWarning, severity: 'warning' }, { ratio: b.clientConnectionsCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'PgBouncerDatabasePaused',
            expr: 'pgbouncer_databases_paused{%s} == 1' % b.selector,
            'for': b.pausedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A PgBouncer database is paused: its clients wait until RESUME.',
              description: 'Database {{ $labels.name }} on PgBouncer {{ $labels.target }} has been paused for %s; its clients hang until someone runs RESUME.' % b.pausedFor,
            },
          },
        ],
      },
    ],
  },
}
