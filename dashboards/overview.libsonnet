// The first screen: what is wrong, where, since when.  Rows go from what users feel
// (app errors and latency, probes) to which service is down, to the alerts and the
// rule pack that judge them.  Each service has its own dashboard for the causes.
local app = import '../rules/lib/app.libsonnet';
local promql = import '../rules/lib/promql.libsonnet';
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local a = config.app;
  local p = config.probe;
  local exporter = s.exporterSource(config);
  local es = exporter.selector;
  local probe = s.source(config, 'probe', p.selector, 'probe_success', 'Probe job', 'The scrape job(s) of the HTTP probes (stack-exporter, or blackbox_exporter).');
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  local by = app.by(config);
  local psel = s.sel(probe.selector);

  // The app's recorded series keep only the aggregation labels: filter on the job (and on
  // other matchers of app.selector) only where they survive.  Without `job` among the
  // aggregation labels there is nothing to choose, and no app_job variable.
  local appJob = std.member(a.aggregationLabels, 'job');
  local appSource = s.source(config,
                             'app',
                             a.selector,
                             app.codeRate(config, '5m'),
                             'App job',
                             "The application's scrape job(s), as the app recording rules aggregate them.",
                             shared=false);
  local appSel = promql.sel([m for m in appSource.rest if std.member(a.aggregationLabels, s.labelOf(m))]
                            + (if appJob then ['job=~"$app_job"'] else []));
  local appLegend = std.join(' ', ['{{%s}}' % l for l in a.aggregationLabels]);

  // The up metric of each watched service, read with its own source's selector.
  local upSelectors = {
    redis: ['redis', config.redis.selector],
    postgres: ['postgres', config.postgres.selector],
    pgbouncer: ['pgbouncer', config.pgbouncer.selector],
    lago: ['lago', config.lago.selector],
    directus: ['directus', config.directus.selector],
    statuspages: ['statuspage', config.email.statuspageSelector],
    email_domains: ['email', config.email.selector],
    http_probes: ['probe', p.selector],
  };
  local upSource(u) =
    local key = if std.objectHas(u, 'collector') && std.objectHas(upSelectors, u.collector) then upSelectors[u.collector]
    else if std.objectHas(u, 'collectorLabel') then ['email', config.email.selector]
    else ['exporter', config.exporterSelector];
    s.source(config, key[0], key[1], u.metric, '%s job' % key[0], 'The scrape job(s) of the exporter watching %s.' % key[0]);
  local ups = [{ metric: u.metric, source: upSource(u) } for u in config.exporter.upMetrics];

  g.dashboard(
    uid=config.dashboardUids.overview,
    title='Stack overview',
    description='Every service at a glance: app errors and latency, uptime probes, the state of each watched service, firing alerts by severity and the deployed rule pack version.',
    tags=['overview'],
    variables=s.jobVariables([exporter, probe] + (if appJob then [appSource] else []) + [u.source for u in ups]) + [
      s.instanceVariable('stack_exporter_build_info', es, description='The stack-exporter instance(s).'),
      g.queryVariable('target', 'Target', 'stack_exporter_collector_success{%s, instance=~"$instance"}' % es, 'target', description='Targets of every collector.'),
    ],
    rows=[
      g.row('Application', [
        g.timeseries('Error ratio (5xx)',
                     'Requests answered with a 5xx status, of all requests, over 5 minutes (recording rule %s). Above %s for %s fires AppHighErrorRatio.' % [app.errorRatio(config, '5m'), pct(a.errorRatioWarning), a.errorRatioFor],
                     'percentunit',
                     [q('%s%s' % [app.errorRatio(config, '5m'), appSel], appLegend)],
                     thresholds=[[a.errorRatioWarning, 'red']],
                     min=0),
        g.timeseries('Latency p50 / p95 / p99',
                     'Request latency quantiles over all routes, from the recorded histogram buckets. Per route, p95 above %ss or p99 above %ss for %s fires AppRouteHighLatencyP95/P99.' % [s.num(a.latencyP95Seconds), s.num(a.latencyP99Seconds), a.latencyFor],
                     's',
                     [
                       q('histogram_quantile(%s, sum by (%s, le) (%s%s))' % [qt[0], by, app.latencyBuckets(config), appSel], '%s %s' % [appLegend, qt[1]])
                       for qt in [['0.5', 'p50'], ['0.95', 'p95'], ['0.99', 'p99']]
                     ],
                     thresholds=[[a.latencyP95Seconds, 'orange'], [a.latencyP99Seconds, 'red']],
                     min=0),
        g.timeseries('Requests per second by status',
                     'Request rate per status code over 5 minutes (recording rule %s).' % app.codeRate(config, '5m'),
                     'reqps',
                     [q('sum by (%s, code) (%s%s)' % [by, app.codeRate(config, '5m'), appSel], appLegend + ' {{code}}')],
                     stack=true),
      ]),
      g.row('Uptime probes', [
        g.stat('Probe status',
               'Whether each HTTP probe succeeded at its last run (probe_success). DOWN for %s fires ProbeEndpointDown.' % p.downFor,
               'none',
               [q('probe_success%s' % psel, '{{target}}', instant=true)],
               w=8,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.timeseries('Probe duration',
                     'Total time of each probe. Above %ss for %s fires ProbeSlow.' % [s.num(p.slowSeconds), p.slowFor],
                     's',
                     [q('probe_duration_seconds%s' % psel, '{{target}}')],
                     w=8,
                     thresholds=[[p.slowSeconds, 'red']],
                     min=0),
        g.stat('Certificate expiry',
               'Time until the earliest certificate of each probed endpoint expires (HTTPS probes only, and only when the certificate verified: plain HTTP probes have no expiry series). Under %s days warns, under %s days is critical (ProbeCertificateExpiringSoon).' % [s.num(p.certWarningDays), s.num(p.certCriticalDays)],
               's',
               [q('probe_ssl_earliest_cert_expiry%s - time()' % psel, '{{target}}', instant=true)],
               w=8,
               thresholds=[[p.certCriticalDays * 86400, 'orange'], [p.certWarningDays * 86400, 'green']],
               base='red'),
      ]),
      // Probes with `check_cache: true` in the exporter's config: static assets behind a CDN.
      g.row('CDN and static assets', [
        g.stat('Cache status',
               'Whether the last probe of each asset came from a cache (probe_http_cache_hit: CF-Cache-Status, else X-Cache, else an Age above 0). Only probes with check_cache: true fill it.',
               'none',
               [q('probe_http_cache_hit%s' % psel, '{{target}}', instant=true)],
               w=6,
               h=8,
               mappings=g.okMappings('HIT', 'MISS'),
               base='orange',
               thresholds=[[1, 'green']]),
        g.timeseries('Cache hit ratio (%s)' % p.cacheHitWindow,
                     'Share of the probes in the last %s that were cache hits (only probes with check_cache: true). Below %s for %s on a probe that was a hit within %s fires ProbeCacheMissing: the CDN stopped caching and every request reaches the origin.' % [p.cacheHitWindow, pct(p.cacheHitRatio), p.cacheFor, p.cacheLookback],
                     'percentunit',
                     [q('avg_over_time(probe_http_cache_hit%s[%s])' % [psel, p.cacheHitWindow], '{{target}}')],
                     w=9,
                     min=0,
                     max=1,
                     thresholds=[[0, 'red'], [p.cacheHitRatio, 'green']]),
        g.timeseries('Cache lifetime (max-age, s-maxage)',
                     "The response's Cache-Control max-age (browsers) and s-maxage (what CDNs obey). Only probes with check_cache: true fill it, and each series exists only while the response carries that directive: a dropped header is a gap, not 0. Both under %ss for %s on a probe that had a longer one within %s fires ProbeCacheHeadersLost." % [s.num(p.cacheMinMaxAgeSeconds), p.cacheFor, p.cacheLookback],
                     's',
                     [
                       q('probe_http_cache_max_age_seconds%s' % psel, '{{target}} max-age'),
                       q('probe_http_cache_shared_max_age_seconds%s' % psel, '{{target}} s-maxage'),
                     ],
                     w=9,
                     min=0,
                     fill=0,
                     thresholds=[[0, 'red'], [p.cacheMinMaxAgeSeconds, 'green']]),
      ]),
      g.row('Services', [
        g.stat('Service state',
               "Every watched service by its own up metric (%s), each read with its source's selector: DOWN means the exporter cannot reach it. A source that is not configured has no series." % std.join(', ', [u.metric for u in ups]),
               'none',
               [
                 q('%s%s' % [u.metric, s.sel(u.source.selector)], '%s {{target}}%s' % [std.strReplace(u.metric, '_up', ''), if u.metric == 'email_provider_up' then ' {{provider}}' else ''], instant=true)
                 for u in ups
               ],
               w=16,
               h=6,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('Collectors failing',
               'Exporter targets whose last collection failed although the service may be up: see the stack-exporter dashboard.',
               'short',
               [q('count(stack_exporter_collector_success%s == 0) or vector(0)' % s.sel(es), 'failing', instant=true)],
               w=4,
               h=6,
               thresholds=[[1, 'red']]),
        g.stat('Exporter scraped',
               'Whether Prometheus scrapes stack-exporter at all: when DOWN every service above is unknown, not fine.',
               'none',
               [q('up%s' % s.sel(es, target=false), '{{instance}}', instant=true)],
               w=4,
               h=6,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
      ]),
      g.row('Alerts and rule pack', [
        g.stat('Firing alerts by severity',
               'Alerts firing now, by severity (the always-firing Watchdog and InfoInhibitor left out).',
               'short',
               [
                 q('count(ALERTS{alertstate="firing", severity="%s", alertname!~"Watchdog|InfoInhibitor"}) or vector(0)' % sev, sev, instant=true)
                 for sev in ['critical', 'warning', 'info']
               ],
               w=8,
               h=6,
               thresholds=[[1, 'orange']],
               overrides=[g.overrideThresholds('critical', [[1, 'red']]), g.overrideThresholds('info', [[1, 'blue']])]),
        g.table('Firing alerts',
                'Every alert firing now with its labels; the Watchdog always fires when the pipeline works.',
                'none',
                [q('ALERTS{alertstate="firing"}', '')],
                w=12,
                h=6,
                hide=['Time', '__name__', 'alertstate', 'Value']),
        g.stat('Rule pack version',
               'Version of the rule pack Prometheus runs (stack_rulepack_info). These dashboards were generated with version %s: a different one here means rules and dashboards are out of step.' % config.rulepackVersion,
               'none',
               [q('stack_rulepack_info', '{{version}}', instant=true)],
               w=4,
               h=6,
               textMode='name',
               colorMode='none'),
      ]),
    ],
  )
