// The application's HTTP service: errors, latency and the availability SLO.
local app = import '../lib/app.libsonnet';
local esc = import '../lib/escalate.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config,
    local a = c.app,
    local on = app.by(c),
    local e = c.escalation,
    groups+: [
      {
        name: 'stack-exporter.app',
        dashboard:: 'overview',
        rules: esc.escalate({
          alert: 'AppDown',
          expr: 'up{%s} == 0' % a.selector,
          'for': a.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'Prometheus cannot scrape the app: it is down or unreachable.',
            description: 'The scrape of {{ $labels.instance }} ({{ $labels.job }}) has failed for %s; the app alerts about errors and latency are blind for it.' % a.downFor,
          },
        }, e.appDown) + [
          {
            // Not escalated: service discovery lost the app, which says nothing about its
            // users (AppDown, ProbeEndpointDown and the error alerts do).
            alert: 'AppAbsent',
            expr: 'absent(up{%s})' % a.selector,
            'for': a.absentFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus has no target of the app at all.',
              description: 'Prometheus has known no target of job {{ $labels.job }} (selector {%s}) for %s: service discovery or the scrape config lost the app.' % [a.selector, a.absentFor],
            },
          },
        ] + esc.escalate({
          alert: 'AppHighErrorRatio',
          // Only with enough requests that one failure is not the ratio (errorRatioMinRequests).
          expr: |||
            %(ratio)s > %(t)s
            and on (%(on)s)
            %(count)s >= %(min)s
          ||| % { ratio: app.errorRatio(c, '5m'), t: n(a.errorRatioWarning), on: on, count: app.requestCount(c, '5m'), min: n(a.errorRatioMinRequests) },
          'for': a.errorRatioFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'The app answers too many requests with a server error (5xx).',
            description: '{{ $value | humanizePercentage }} of the requests to {{ $labels.job }} failed with a 5xx status over the last 5 minutes (threshold %s).' % promql.pct(a.errorRatioWarning),
          },
        }, e.appHighErrorRatio) + [
          {
            alert: 'AppRouteHighErrorRatio',
            expr: |||
              %(ratio)s > %(threshold)s
              and on (%(on)s, route)
              %(rate)s > %(min)s
            ||| % { ratio: app.routeErrorRatio(c), threshold: n(a.routeErrorRatio), on: on, rate: app.routeRate(c), min: n(a.routeMinRequestRate) },
            'for': a.routeErrorRatioFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'One route of the app fails with server errors (5xx).',
              description: '{{ $value | humanizePercentage }} of the requests to route {{ $labels.route }} of {{ $labels.job }} failed with a 5xx status over the last 5 minutes.',
            },
          },
          {
            alert: 'AppClientErrorSpike',
            expr: |||
              %(now)s > %(factor)s * (%(base)s offset %(offset)s)
              and
              %(now)s > %(min)s
            ||| % { now: app.clientErrorRatio(c, '5m'), base: app.clientErrorRatio(c, '1h'), factor: n(a.clientErrorSpikeFactor), offset: a.clientErrorBaselineOffset, min: n(a.clientErrorMinRatio) },
            'for': a.clientErrorSpikeFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Client errors (4xx) spiked far above the same hour on the previous day.',
              description: '{{ $value | humanizePercentage }} of the requests to {{ $labels.job }} got a 4xx status over the last 5 minutes, more than %sx the ratio of the same hour %s ago.' % [n(a.clientErrorSpikeFactor), a.clientErrorBaselineOffset],
            },
          },
        ] + [
          {
            alert: 'AppRouteHighLatencyP%s' % q.name,
            expr: '%s{quantile="%s"} > %s' % [app.latencyQuantile(c), q.quantile, n(q.threshold)],
            'for': a.latencyFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A route of the app is slow at the %sth percentile.' % q.name,
              description: 'The p%s latency of route {{ $labels.route }} of {{ $labels.job }} is {{ $value | humanizeDuration }} (threshold %ss).' % [q.name, n(q.threshold)],
            },
          }
          for q in [
            { name: '95', quantile: '0.95', threshold: a.latencyP95Seconds },
            { name: '99', quantile: '0.99', threshold: a.latencyP99Seconds },
          ]
        ] + (
          if a.slo.enabled then std.flattenArrays([
            esc.escalate({
              alert: 'AppErrorBudgetBurn',
              expr: |||
                %(long)s > (%(factor)s * %(budget)s)
                and
                %(short)s > (%(factor)s * %(budget)s)
                and on (%(on)s)
                %(count)s >= %(min)s
              ||| % {
                long: app.errorRatio(c, w.long),
                short: app.errorRatio(c, w.short),
                factor: n(w.factor),
                budget: n(1 - a.slo.target),
                on: on,
                count: app.requestCount(c, w.long),
                min: n(a.slo.minRequests),
              },
              'for': w['for'],
              labels: { severity: w.severity, long: w.long, short: w.short },
              annotations: {
                summary: 'The app is burning its availability error budget too fast.',
                description: '{{ $labels.job }} has failed {{ $value | humanizePercentage }} of its requests over the last %s, %sx the rate a %s%% SLO allows over 30 days.' % [w.long, n(w.factor), n(a.slo.target * 100)],
              },
            }, if std.objectHas(e.appErrorBudgetBurn, w.long) then e.appErrorBudgetBurn[w.long] else null)
            for w in a.slo.windows
          ]) else []
        ),
      },
    ],
  },
}
