// Uptime and TLS of the configured URLs, from probe metrics (blackbox_exporter names).
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusAlerts+:: {
    local c = $._config.probe,
    groups+: [
      {
        name: 'stack-exporter.probe',
        dashboard:: 'overview',
        rules: [
          {
            alert: 'ProbeEndpointDown',
            expr: 'probe_success{%s} == 0' % c.selector,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'An HTTP endpoint is down.',
              description: 'The probe of {{ $labels.target }} has failed for %s.' % c.downFor,
            },
          },
          {
            alert: 'ProbeSlow',
            expr: 'probe_duration_seconds{%s} > %s' % [c.selector, n(c.slowSeconds)],
            'for': c.slowFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'An HTTP endpoint answers slowly.',
              description: 'The probe of {{ $labels.target }} took {{ $value | humanizeDuration }} (threshold %ss).' % n(c.slowSeconds),
            },
          },
        ] + [
          {
            alert: 'ProbeCertificateExpiringSoon',
            expr: 'probe_ssl_earliest_cert_expiry{%s} - time() < %s * 86400' % [c.selector, n(t.days)],
            labels: { severity: t.severity },
            annotations: {
              summary: 'A TLS certificate expires soon.',
              description: 'The certificate served by {{ $labels.target }} expires in {{ $value | humanizeDuration }} (threshold %s days).' % n(t.days),
            },
          }
          for t in [{ days: c.certWarningDays, severity: 'warning' }, { days: c.certCriticalDays, severity: 'critical' }]
        ],
      },
    ],
  },
}
