// The first screen: what is wrong, where, since when.  Rows go from what users feel
// (app errors and latency, probes) to which service is down, to the alerts and the
// rule pack that judge them.  Each service has its own dashboard for the causes.
local app = import '../rules/lib/app.libsonnet';
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local a = config.app;
  local p = config.probe;
  local es = config.exporterSelector;
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  local by = app.by(config);
  local psel = s.sel(p.selector);

  g.dashboard(
    uid=config.dashboardUids.overview,
    title='Stack overview',
    description='Every service at a glance: app errors and latency, uptime probes, the state of each watched service, firing alerts by severity and the deployed rule pack version.',
    tags=['overview'],
    variables=[
      s.instanceVariable('stack_exporter_build_info', es, description='The stack-exporter instance(s).'),
      g.queryVariable('target', 'Target', 'stack_exporter_collector_success{%s, instance=~"$instance"}' % es, 'target', description='Targets of every collector.'),
      g.queryVariable('job', 'App job', 'up{%s}' % a.selector, 'job', description="The application's scrape job(s), as the app recording rules aggregate them."),
    ],
    rows=[
      g.row('Application', [
        g.timeseries('Error ratio (5xx)', 'Requests answered with a 5xx status, of all requests, over 5 minutes (recording rule %s). Above %s for %s fires AppHighErrorRatio.' % [app.errorRatio(config, '5m'), pct(a.errorRatioWarning), a.errorRatioFor],
                     'percentunit', [q('%s{job=~"$job"}' % app.errorRatio(config, '5m'), '{{job}}')], thresholds=[[a.errorRatioWarning, 'red']], min=0),
        g.timeseries('Latency p50 / p95 / p99', 'Request latency quantiles over all routes, from the recorded histogram buckets. Per route, p95 above %ss or p99 above %ss for %s fires AppRouteHighLatencyP95/P99.' % [s.num(a.latencyP95Seconds), s.num(a.latencyP99Seconds), a.latencyFor],
                     's', [
                       q('histogram_quantile(%s, sum by (%s, le) (%s{job=~"$job"}))' % [qt, by, app.latencyBuckets(config)], '{{job}} p%s' % std.strReplace(qt, '0.', ''))
                       for qt in ['0.5', '0.95', '0.99']
                     ], thresholds=[[a.latencyP95Seconds, 'orange'], [a.latencyP99Seconds, 'red']], min=0),
        g.timeseries('Requests per second by status', 'Request rate per status code over 5 minutes (recording rule %s).' % app.codeRate(config, '5m'),
                     'reqps', [q('sum by (%s, code) (%s{job=~"$job"})' % [by, app.codeRate(config, '5m')], '{{job}} {{code}}')], stack=true),
      ]),
      g.row('Uptime probes', [
        g.stat('Probe status', 'Whether each HTTP probe succeeded at its last run (probe_success). DOWN for %s fires ProbeEndpointDown.' % p.downFor,
               'none', [q('probe_success%s' % psel, '{{target}}', instant=true)], w=8, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
        g.timeseries('Probe duration', 'Total time of each probe. Above %ss for %s fires ProbeSlow.' % [s.num(p.slowSeconds), p.slowFor],
                     's', [q('probe_duration_seconds%s' % psel, '{{target}}')], w=8, thresholds=[[p.slowSeconds, 'red']], min=0),
        g.stat('Certificate expiry', 'Time until the earliest certificate of each probed HTTPS endpoint expires. Under %s days warns, under %s days is critical (ProbeCertificateExpiringSoon).' % [s.num(p.certWarningDays), s.num(p.certCriticalDays)],
               's', [q('probe_ssl_earliest_cert_expiry%s - time()' % psel, '{{target}}', instant=true)], w=8,
               thresholds=[[p.certCriticalDays * 86400, 'orange'], [p.certWarningDays * 86400, 'green']], base='red'),
      ]),
      g.row('Services', [
        g.stat('Service state', 'Every watched service by its own up metric (%s): DOWN means the exporter cannot reach it.' % std.join(', ', config.exporter.upMetrics),
               'none', [
                 q('%s%s' % [m, s.sel(es)], '%s {{target}}%s' % [std.strReplace(m, '_up', ''), if m == 'email_provider_up' then ' {{provider}}' else ''], instant=true)
                 for m in config.exporter.upMetrics
               ], w=16, h=6, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
        g.stat('Collectors failing', 'Exporter targets whose last collection failed although the service may be up: see the stack-exporter dashboard.',
               'short', [q('count(stack_exporter_collector_success%s == 0) or vector(0)' % s.sel(es), 'failing', instant=true)], w=4, h=6, thresholds=[[1, 'red']]),
        g.stat('Exporter scraped', 'Whether Prometheus scrapes stack-exporter at all: when DOWN every service above is unknown, not fine.',
               'none', [q('up%s' % s.sel(es, target=false), '{{instance}}', instant=true)], w=4, h=6, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
      ]),
      g.row('Alerts and rule pack', [
        g.stat('Firing alerts by severity', 'Alerts firing now, by severity (the always-firing Watchdog and InfoInhibitor left out).',
               'short', [
                 q('count(ALERTS{alertstate="firing", severity="%s", alertname!~"Watchdog|InfoInhibitor"}) or vector(0)' % sev, sev, instant=true)
                 for sev in ['critical', 'warning', 'info']
               ], w=8, h=6, thresholds=[[1, 'orange']], overrides=[g.overrideThresholds('critical', [[1, 'red']]), g.overrideThresholds('info', [[1, 'blue']])]),
        g.table('Firing alerts', 'Every alert firing now with its labels; the Watchdog always fires when the pipeline works.',
                'none', [q('ALERTS{alertstate="firing"}', '')], w=12, h=6, hide=['Time', '__name__', 'alertstate', 'Value']),
        g.stat('Rule pack version', 'Version of the rule pack Prometheus runs (stack_rulepack_info). These dashboards were generated with version %s: a different one here means rules and dashboards are out of step.' % config.rulepackVersion,
               'none', [q('stack_rulepack_info', '{{version}}', instant=true)], w=4, h=6, textMode='name', colorMode='none'),
      ]),
    ],
  )
