// Names and expressions of the real-user (rum) recording rules, shared by the recording
// and alert files so an alert cannot refer to a series the pack does not record.
local promql = import 'promql.libsonnet';
{
  level(config, extra=[]):: std.join('_', config.rum.aggregationLabels + extra),
  by(config, extra=[]):: promql.labels(config.rum.aggregationLabels + extra),

  // An `le` matcher for a bucket bound, whichever way the bound is written: the exporter
  // writes 4.0, Prometheus 3 normalises it to 4 on scrape.
  le(x)::
    local text = std.strReplace(promql.num(x), '.', '\\.');
    'le=~`%s`' % (if x == std.floor(x) then text + '(\\.0+)?' else text + '0*'),

  // Recorded names: per page, over a window.
  buckets(config, metric, window):: $.level(config, ['page', 'le']) + ':%s_bucket:rate%s' % [metric, window],
  p75(config, metric, window):: $.level(config, ['page']) + ':%s:p75_rate%s' % [metric, window],
  count(config, metric, window):: $.level(config, ['page']) + ':%s_count:increase%s' % [metric, window],
  goodShare(config, window):: $.level(config, ['page']) + ':rum_lcp_good:ratio_rate%s' % window,
  views(config, window):: $.level(config, ['page']) + ':rum_page_views:increase%s' % window,
  errorsPerView(config, window):: $.level(config, ['page']) + ':rum_js_errors_per_view:ratio_rate%s' % window,
}
