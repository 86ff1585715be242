// Names and expressions of the app's recording rules, shared by the recording and
// alert files so an alert cannot refer to a series the pack does not record.
local promql = import 'promql.libsonnet';
{
  level(config, extra=[]):: std.join('_', config.app.aggregationLabels + extra),
  by(config, extra=[]):: promql.labels(config.app.aggregationLabels + extra),

  // Request rate over `window` from every configured counter, status in `code` and route in `route`.
  // The route is normalised only when the result keeps it.
  normalisedRate(config, metric, window, withRoute)::
    local code = promql.normalise('rate(%s{%s}[%s])' % [metric, config.app.selector, window], 'code', config.app.statusLabels);
    if withRoute then promql.normalise(code, 'route', config.app.routeLabels) else code,

  requests(config, window, extra)::
    'sum by (%s) (\n  %s\n)' % [
      $.by(config, extra),
      std.join('\n  or\n  ', [$.normalisedRate(config, m, window, std.member(extra, 'route')) for m in config.app.requestMetrics]),
    ],

  // Recorded names.
  routeCodeRate(config):: $.level(config, ['route', 'code']) + ':app_http_requests:rate5m',
  codeRate(config, window):: $.level(config, ['code']) + ':app_http_requests:rate' + window,
  routeRate(config):: $.level(config, ['route']) + ':app_http_requests:rate5m',
  errorRatio(config, window):: $.level(config) + ':app_http_requests_5xx:ratio_rate' + window,
  clientErrorRatio(config, window):: $.level(config) + ':app_http_requests_4xx:ratio_rate' + window,
  routeErrorRatio(config):: $.level(config, ['route']) + ':app_http_requests_5xx:ratio_rate5m',
  latencyBuckets(config):: $.level(config, ['route', 'le']) + ':app_http_request_duration_seconds_bucket:rate5m',
  latencyQuantile(config):: $.level(config, ['route']) + ':app_http_request_duration_seconds:histogram_quantile',

  // Requests counted over `window` (from the recorded per-code rate), for request floors.
  requestCount(config, window)::
    'sum by (%s) (%s) * %s' % [$.by(config), $.codeRate(config, window), $.seconds(window)],
  // A Prometheus duration of one unit ('5m', '6h', '3d') in seconds.
  seconds(window)::
    local unit = window[std.length(window) - 1];
    std.parseInt(window[:std.length(window) - 1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit],

  // Every window a ratio is recorded for: the alerts' own plus the SLO burn-rate windows.
  windows(config)::
    std.set(['5m', '1h'] + (
      if config.app.slo.enabled
      then std.flattenArrays([[w.long, w.short] for w in config.app.slo.windows])
      else []
    )),
}
