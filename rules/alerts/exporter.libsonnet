// The exporter itself, plus the two meta alerts: the Watchdog (dead man's switch) and
// the InfoInhibitor.
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.exporter,
    local s = $._config.exporterSelector,
    groups+: [
      {
        name: 'stack-exporter.exporter',
        dashboard:: 'exporter',
        rules: [
          {
            alert: 'StackExporterDown',
            expr: 'up{%s} == 0' % s,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus cannot scrape stack-exporter: the stack is unwatched.',
              description: 'The scrape of {{ $labels.instance }} ({{ $labels.job }}) has failed for %s; every alert that depends on it is blind.' % c.downFor,
            },
          },
          {
            alert: 'StackExporterAbsent',
            expr: 'absent(up{%s})' % s,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus has no stack-exporter target at all.',
              description: 'Prometheus knows no target of job {{ $labels.job }} (selector {%s}): service discovery or the scrape config lost the exporter.' % s,
            },
          },
          {
            alert: 'StackExporterCollectorFailing',
            expr: |||
              stack_exporter_collector_success{%(s)s} == 0
              unless on (collector, target)
              (
                %(up)s
              )
            ||| % {
              s: s,
              up: std.join('\n  or\n  ', [
                if std.objectHas(u, 'collectorLabel')
                then 'label_replace(%s{%s} == 0, "collector", "$1", "%s", "(.+)")' % [u.metric, s, u.collectorLabel]
                else 'label_replace(%s{%s} == 0, "collector", "%s", "", "")' % [u.metric, s, u.collector]
                for u in c.upMetrics
              ]),
            },
            'for': c.collectorFailingFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A collector of stack-exporter keeps failing although its backend answers.',
              description: 'The {{ $labels.collector }} collector has failed for target {{ $labels.target }} for %s; see the exporter log for the error.' % c.collectorFailingFor,
            },
          },
          {
            alert: 'StackExporterStaleData',
            expr: 'stack_exporter_collector_cache_age_seconds{%s} > %s' % [s, n(c.staleSeconds)],
            'for': c.staleFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'stack-exporter serves stale cached data.',
              description: 'The data of {{ $labels.collector }} target {{ $labels.target }} is {{ $value | humanizeDuration }} old.',
            },
          },
          {
            alert: 'StackExporterConfigReloadFailed',
            expr: 'stack_exporter_config_last_reload_successful{%s} == 0' % s,
            'for': c.reloadFailedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The last configuration reload of stack-exporter failed.',
              description: '{{ $labels.instance }} rejected its new configuration and still runs the previous one.',
            },
          },
        ],
      },
      {
        name: 'stack-exporter.meta',
        dashboard:: 'overview',
        rules: [
          {
            // Always firing: route it to a dead man's switch, which pages when it stops arriving.
            alert: 'Watchdog',
            expr: 'vector(1)',
            labels: { severity: 'info' },
            annotations: {
              summary: 'The alerting pipeline works: this alert always fires.',
              description: 'This alert fires all the time. If your dead man\'s switch stops receiving it, Prometheus or Alertmanager is broken.',
            },
          },
          {
            // Info alerts are context, not news: Alertmanager inhibits them with this alert
            // unless a warning or critical alert fires for the same labels.
            alert: 'InfoInhibitor',
            expr: |||
              ALERTS{severity="info", alertstate="firing", alertname!~"Watchdog|InfoInhibitor"} == 1
              unless on (%(on)s)
              ALERTS{severity=~"warning|critical", alertstate="firing"} == 1
            ||| % { on: promql.labels($._config.infoInhibitorLabels) },
            labels: { severity: 'info' },
            annotations: {
              summary: 'Inhibits info alerts that fire without a warning or critical alert beside them.',
              description: 'Info alert {{ $labels.alertname }} fires alone for {{ $labels.target }}; route this alert to a null receiver.',
            },
          },
        ],
      },
    ],
  },
}
