// Directus (CMS).
local esc = import '../lib/escalate.libsonnet';
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
        rules: esc.escalate({
          alert: 'DirectusDown',
          expr: 'directus_up{%s} == 0' % s,
          'for': c.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The Directus CMS does not answer.',
            description: 'The exporter cannot reach Directus {{ $labels.target }}.',
          },
        }, $._config.escalation.directusDown) + std.flattenArrays([
          // Only the critical level (health `error`) means users are affected: it escalates.
          esc.escalate({
            alert: 'DirectusUnhealthy',
            expr: 'directus_health_status{%s, status="%s"} == 1' % [s, t.status],
            'for': c.healthFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'Directus reports itself unhealthy.',
              description: 'Directus {{ $labels.target }} reports its health as {{ $labels.status }}.',
            },
          }, if t.severity == 'critical' then $._config.escalation.directusUnhealthy else null)
          for t in [{ status: 'warn', severity: 'warning' }, { status: 'error', severity: 'critical' }]
        ]) + [
          {
            // In use against the pool's maximum (`poolMax`, or the connections open if more):
            // "available" counts only idle open connections, so used / (used + available) read
            // 100% for a lazily grown pool whose few connections were all busy.
            local clients = [k for k in std.objectFields(c.poolMax) if k != 'default'],
            local ratio(matcher, max) = |||
              (
                directus_health_database_connections_used{%(s)s, %(m)s}
                / clamp_min(
                  directus_health_database_connections_used{%(s)s, %(m)s}
                  + directus_health_database_connections_available{%(s)s, %(m)s},
                  %(max)s
                )
                > %(t)s
              )
            ||| % { s: s, m: matcher, max: n(max), t: n(c.connectionsRatio) },
            alert: 'DirectusDatabaseConnectionsHigh',
            expr: std.join('or\n', [ratio('client="%s"' % k, c.poolMax[k]) for k in clients] + [
              ratio('client!~"%s"' % std.join('|', clients), c.poolMax.default),
            ]),
            'for': c.connectionsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Directus is using most of its database connection pool.',
              description: 'Directus {{ $labels.target }} has {{ $value | humanizePercentage }} of the maximum of its {{ $labels.client }} connection pool in use (threshold %s).' % promql.pct(c.connectionsRatio),
            },
          },
        ],
      },
    ],
  },
}
