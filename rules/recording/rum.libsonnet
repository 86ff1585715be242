// Real users (the exporter's rum: listener), per page over config.rum.window: the p75 of
// LCP and INP, how many views reported them, the share of views with a good LCP, and
// JavaScript errors per page view; the share and the error ratio also over their
// baseline windows.  Aggregated over device and navigation type.
local rum = import '../lib/rum.libsonnet';
{
  prometheusRules+:: {
    local c = $._config,
    local r = c.rum,
    local w = r.window,
    local page = rum.by(c, ['page']),
    local perPage(metric, window) = 'sum by (%s) (rate(%s{%s}[%s]))' % [page, metric, r.selector, window],
    local goodShare(window) =
      'sum by (%(by)s) (rate(rum_lcp_seconds_bucket{%(sel)s, %(le)s}[%(w)s]))\n/\nsum by (%(by)s) (rate(rum_lcp_seconds_count{%(sel)s}[%(w)s]))' % {
        by: page,
        sel: r.selector,
        le: rum.le(r.lcpGoodSeconds),
        w: window,
      },
    local errorsPerView(window) = '%s\n/\n%s' % [perPage('rum_js_errors_total', window), perPage('rum_page_views_total', window)],
    groups+: [
      {
        name: 'stack-exporter.rum.rules',
        rules: std.flattenArrays([
          [
            {
              record: rum.buckets(c, m, w),
              expr: 'sum by (%s) (rate(%s_bucket{%s}[%s]))' % [rum.by(c, ['page', 'le']), m, r.selector, w],
            },
            { record: rum.p75(c, m, w), expr: 'histogram_quantile(0.75, %s)' % rum.buckets(c, m, w) },
            {
              record: rum.count(c, m, w),
              expr: 'sum by (%s) (increase(%s_count{%s}[%s]))' % [page, m, r.selector, w],
            },
          ]
          for m in ['rum_lcp_seconds', 'rum_inp_seconds']
        ]) + [
          { record: rum.goodShare(c, window), expr: goodShare(window) }
          for window in std.set([w, r.goodShareBaselineWindow])
        ] + [
          {
            record: rum.views(c, w),
            expr: 'sum by (%s) (increase(rum_page_views_total{%s}[%s]))' % [page, r.selector, w],
          },
        ] + [
          { record: rum.errorsPerView(c, window), expr: errorsPerView(window) }
          for window in std.set([w, r.jsErrorBaselineWindow])
        ],
      },
    ],
  },
}
