// Directus (CMS).
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.directus,
    local s = c.selector,
    groups+: [
      {
        name: 'stack-exporter.directus',
        dashboard:: 'overview',
        rules: [
          {
            alert: 'DirectusDown',
            expr: 'directus_up{%s} == 0' % s,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'The Directus CMS does not answer.',
              description: 'The exporter cannot reach Directus {{ $labels.target }}.',
            },
          },
        ] + [
          {
            alert: 'DirectusUnhealthy',
            expr: 'directus_health_status{%s, status="%s"} == 1' % [s, t.status],
            'for': c.healthFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'Directus reports itself unhealthy.',
              description: 'Directus {{ $labels.target }} reports its health as {{ $labels.status }}.',
            },
          }
          for t in [{ status: 'warn', severity: 'warning' }, { status: 'error', severity: 'critical' }]
        ] + [
          {
            alert: 'DirectusDatabaseConnectionsHigh',
            expr: |||
              directus_health_database_connections_used{%(s)s}
              / (directus_health_database_connections_used{%(s)s} + directus_health_database_connections_available{%(s)s})
              > %(t)s
            ||| % { s: s, t: n(c.connectionsRatio) },
            'for': c.connectionsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Directus is using most of its database connection pool.',
              description: 'Directus {{ $labels.target }} uses {{ $value | humanizePercentage }} of its {{ $labels.client }} connection pool (threshold %s).' % promql.pct(c.connectionsRatio),
            },
          },
        ],
      },
    ],
  },
}
