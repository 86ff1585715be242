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
          {
            // The status-page bridge wants a component changed and the provider has not
            // taken it (refused, rate-limited, down) for this long: the public page is
            // wrong, and the people handling the outage must update it by hand.
            alert: 'StackExporterStatusPageBridgeFailing',
            expr: 'stack_exporter_bridge_sync_pending{%s} == 1' % s,
            'for': c.bridgeStaleFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The public status page is not updated: the status-page bridge cannot reach it.',
              description: 'The bridge on {{ $labels.instance }} has not been able to set component {{ $labels.component }} for %s; the public page shows an old status. See the exporter log for the provider error.' % c.bridgeStaleFor,
            },
          },
          {
            // The collector still succeeds when one of its queries fails (the rest of the
            // scrape goes on): only this counter says that query's series are gone.
            alert: 'StackExporterQueryFailing',
            expr: 'increase(stack_exporter_query_errors_total{%s}[%s]) > 0' % [s, c.queryErrorsWindow],
            'for': c.queryFailingFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A query of stack-exporter keeps failing: its metrics are dropped and alerts on them are blind.',
              description: 'Query {{ $labels.query }} of the {{ $labels.collector }} collector has failed on every run for target {{ $labels.target }} for %s; see the exporter log for the error.' % c.queryFailingFor,
            },
          },
          {
            // Excluded from StackExporterCollectorFailing (statuspage_up says it), and the
            // email group's EmailProviderIncident reads only a page that answers.
            alert: 'StackExporterStatusPageDown',
            expr: 'statuspage_up{%s} == 0' % $._config.email.statuspageSelector,
            'for': c.statuspageDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A provider status page cannot be read: provider incidents go unseen.',
              description: 'The status page {{ $labels.target }} has not answered with a readable summary.json for %s; EmailProviderIncident is blind to it.' % c.statuspageDownFor,
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
              description: "This alert fires all the time. If your dead man's switch stops receiving it, Prometheus or Alertmanager is broken.",
            },
          },
          {
            // Info alerts are context, not news: Alertmanager inhibits them with this alert
            // unless a warning or critical alert fires about the same thing.  The thing is
            // the first of infoInhibitorLabels an alert has, copied into a join label on
            // both sides (a status page's target `sendgrid` meets SendGrid accounts'
            // provider `sendgrid`) and removed again, so the inhibitor carries exactly the
            // info alert's labels for Alertmanager's `equal`.
            local subject = 'infoinhibitor_subject',
            local on = promql.labels([subject] + $._config.infoInhibitorScopeLabels),
            local keyed(expr) = promql.normalise(expr, subject, $._config.infoInhibitorLabels),
            alert: 'InfoInhibitor',
            expr: |||
              label_replace(
                %(info)s
                unless on (%(on)s)
                %(other)s,
                "%(subject)s", "", "", ""
              )
            ||| % {
              info: keyed('ALERTS{severity="info", alertstate="firing", alertname!~"Watchdog|InfoInhibitor"} == 1'),
              other: keyed('ALERTS{severity=~"warning|critical", alertstate="firing"} == 1'),
              on: on,
              subject: subject,
            },
            labels: { severity: 'info' },
            annotations: {
              summary: 'Inhibits info alerts that fire without a warning or critical alert beside them.',
              description: 'Info alert {{ $labels.alertname }} fires alone for%s; route this alert to a null receiver.' % std.join('', ['{{ with $labels.%s }} %s={{ . }}{{ end }}' % [l, l] for l in $._config.infoInhibitorLabels]),
            },
          },
        ],
      },
    ],
  },
}
