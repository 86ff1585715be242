// stack-exporter itself: is it scraped, do its collectors succeed, how fresh is what
// it serves, and what does it cost.  Symptoms (scrape down, collectors failing) first.
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.exporter;
  local src = s.exporterSource(config);
  local es = src.selector;
  local sel(extra=[]) = s.sel(es, extra);
  local isel(extra=[]) = s.sel(es, extra, target=false);
  local q = g.query;
  // Window of the rates of counters that move only when a source is collected: cached sources
  // (Lago, email stats, status pages) collect every 60-300 s, so $__rate_interval (a few
  // scrapes) sees no increase, or one spread over too short a window.  The staleness limit
  // exceeds every source's refresh interval by definition (config.exporter.staleSeconds).
  local collectWindow = if c.staleSeconds % 60 == 0 then '%dm' % (c.staleSeconds / 60) else '%ds' % c.staleSeconds;

  g.dashboard(
    uid=config.dashboardUids.exporter,
    title='stack-exporter',
    description="The exporter's own health: scrapes, collector success and duration, cache age of rate-limited sources, configuration reloads and the process.",
    tags=['exporter'],
    variables=s.jobVariables([src]) + [
      s.instanceVariable('stack_exporter_build_info', es, description='stack-exporter instances.'),
      g.queryVariable('target', 'Target', 'stack_exporter_collector_success{%s, instance=~"$instance"}' % es, 'target', description='Targets of every collector.'),
    ],
    rows=[
      g.row('Scrapes', [
        g.stat('Scrape',
               'Whether Prometheus scraped the exporter (up). DOWN for %s fires StackExporterDown: every other alert is blind.' % c.downFor,
               'none',
               [q('up%s' % isel(), '{{instance}}', instant=true)],
               w=6,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('Collectors failing',
               'Targets whose last collection failed or missed its deadline. Failing for %s while the backend itself is up fires StackExporterCollectorFailing.' % c.collectorFailingFor,
               'short',
               [q('count(stack_exporter_collector_success%s == 0) or vector(0)' % sel(), 'failing', instant=true)],
               w=6,
               thresholds=[[1, 'red']]),
        g.stat('Config reload',
               'Whether the last configuration reload succeeded; after a failed one the previous config keeps serving (StackExporterConfigReloadFailed after %s).' % c.reloadFailedFor,
               'none',
               [q('stack_exporter_config_last_reload_successful%s' % isel(), '{{instance}}', instant=true)],
               w=6,
               mappings=g.okMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('Version',
               'Exporter and Python versions (stack_exporter_build_info).',
               'none',
               [q('stack_exporter_build_info%s' % isel(), '{{instance}}: {{version}} (Python {{python_version}})', instant=true)],
               w=6,
               textMode='name',
               colorMode='none'),
        g.timeseries('Scrape duration',
                     'How long the whole scrape took, as Prometheus measured it; it must stay below the scrape timeout.',
                     's',
                     [q('scrape_duration_seconds%s' % isel(), '{{instance}}')],
                     w=12,
                     h=6),
        g.timeseries('Samples per scrape',
                     'Series the exporter returned: a jump means a cardinality leak (statements, tables, key groups).',
                     'short',
                     [q('scrape_samples_scraped%s' % isel(), '{{instance}}')],
                     w=12,
                     h=6),
      ]),
      g.row('Collectors', [
        g.table('Collector status',
                'Per target: last collection success, its duration and the age of the data served.',
                'none',
                [
                  q('stack_exporter_collector_success%s' % sel(), ''),
                ],
                w=8,
                mappings=g.okMappings(),
                base='red',
                thresholds=[[1, 'green']],
                hide=['Time', '__name__', 'job']),
        g.timeseries('Collection duration',
                     'Seconds the last collection of each target took; close to the scrape timeout means deadlines will be missed.',
                     's',
                     [q('stack_exporter_collector_duration_seconds%s' % sel(), '{{collector}} {{target}}')],
                     w=8),
        g.timeseries('Failures per second',
                     'Collections that failed or missed their deadline, averaged over %s (longer than any refresh interval, so a source collected every few minutes shows its real rate).' % collectWindow,
                     'ops',
                     [q('sum by (collector, target) (rate(stack_exporter_collector_failures_total%s[%s]))' % [sel(), collectWindow], '{{collector}} {{target}}')],
                     w=8,
                     thresholds=[[0, 'red']],
                     min=0),
        g.timeseries('Cache age',
                     'Age of the data served per target: 0 when collected for the scrape, larger for sources with a minimum refresh interval. Above %ss for %s fires StackExporterStaleData.' % [s.num(c.staleSeconds), c.staleFor],
                     's',
                     [q('stack_exporter_collector_cache_age_seconds%s' % sel(), '{{collector}} {{target}}')],
                     w=12,
                     thresholds=[[c.staleSeconds, 'red']],
                     min=0),
        g.timeseries('Time since last success',
                     'Seconds since each target was last collected successfully.',
                     's',
                     [q('time() - stack_exporter_collector_last_success_timestamp_seconds%s' % sel(), '{{collector}} {{target}}')],
                     w=12,
                     thresholds=[[c.staleSeconds, 'red']],
                     min=0),
      ]),
      g.row('HTTP APIs', [
        g.timeseries('API requests by status',
                     'Requests the exporter sent to HTTP APIs (Lago, email providers, status pages) by status code; error and timeout when none came back. Averaged over %s: the APIs are called once per refresh interval (60-300 s), not at every scrape.' % collectWindow,
                     'reqps',
                     [q('sum by (collector, target, code) (rate(stack_exporter_http_requests_total%s[%s]))' % [sel(), collectWindow], '{{collector}} {{target}} {{code}}')],
                     w=12),
        g.timeseries('Rate-limit back-off',
                     'Seconds until which an API asked the exporter to back off (429 or an exhausted limit); cached data is served meanwhile.',
                     's',
                     [q('clamp_min(stack_exporter_http_rate_limited_until_timestamp_seconds%s - time(), 0)' % sel(), '{{collector}} {{target}}')],
                     w=12),
      ]),
      g.row('Configuration and process', [
        g.stat('Targets',
               'Configured targets per collector.',
               'short',
               [q('sum by (collector) (stack_exporter_targets%s)' % isel(), '{{collector}}', instant=true)],
               w=8,
               colorMode='value'),
        g.timeseries('CPU',
                     'CPU seconds per second used by the exporter process.',
                     'percentunit',
                     [q('rate(process_cpu_seconds_total%s[$__rate_interval])' % isel(), '{{instance}}')],
                     w=8),
        g.timeseries('Memory and file descriptors',
                     'Resident memory, and open file descriptors against the limit (connection pools hold descriptors).',
                     'bytes',
                     [
                       q('process_resident_memory_bytes%s' % isel(), '{{instance}} resident'),
                       q('process_open_fds%(s)s / process_max_fds%(s)s' % { s: isel() }, '{{instance}} fds used'),
                     ],
                     w=8,
                     overrides=[{
                       matcher: { id: 'byRegexp', options: '.* fds used' },
                       properties: [{ id: 'unit', value: 'percentunit' }, { id: 'custom.axisPlacement', value: 'right' }],
                     }]),
      ]),
    ],
  )
