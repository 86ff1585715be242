// Request rate, error ratios and latency quantiles of the app, per route, named
// level:metric:operations.  Status codes and routes are normalised into `code` and
// `route` whatever the instrumentation calls them (config.libsonnet, app).
local app = import '../lib/app.libsonnet';
local promql = import '../lib/promql.libsonnet';
{
  prometheusRules+:: {
    local c = $._config,
    local by = app.by(c),
    local ratio(source, codes) =
      '(\n  sum by (%(by)s) (%(s)s{code=~"%(codes)s"})\n  or\n  0 * sum by (%(by)s) (%(s)s)\n)\n/\nsum by (%(by)s) (%(s)s)' % {
        by: by,
        s: source,
        codes: codes,
      },
    groups+: [
      {
        name: 'stack-exporter.app.rules',
        rules: [
          { record: app.routeCodeRate(c), expr: app.requests(c, '5m', ['route', 'code']) },
          { record: app.routeRate(c), expr: 'sum by (%s) (%s)' % [app.by(c, ['route']), app.routeCodeRate(c)] },
          {
            record: app.routeErrorRatio(c),
            expr: '(\n  sum by (%(by)s) (%(s)s{code=~"5.."})\n  or\n  0 * sum by (%(by)s) (%(s)s)\n)\n/\nsum by (%(by)s) (%(s)s)' % {
              by: app.by(c, ['route']),
              s: app.routeCodeRate(c),
            },
          },
        ] + [
          { record: app.codeRate(c, w), expr: app.requests(c, w, ['code']) }
          for w in app.windows(c)
        ] + [
          { record: app.errorRatio(c, w), expr: ratio(app.codeRate(c, w), '5..') }
          for w in app.windows(c)
        ] + [
          { record: app.clientErrorRatio(c, w), expr: ratio(app.codeRate(c, w), '4..') }
          for w in ['5m', '1h']
        ] + [
          {
            record: app.latencyBuckets(c),
            expr: 'sum by (%s) (\n  %s\n)' % [
              app.by(c, ['route', 'le']),
              std.join('\n  or\n  ', [
                promql.normalise('rate(%s_bucket{%s}[5m])' % [h, c.app.selector], 'route', c.app.routeLabels)
                for h in c.app.latencyHistograms
              ]),
            ],
          },
        ] + [
          {
            record: app.latencyQuantile(c),
            expr: 'histogram_quantile(%s, %s)' % [q, app.latencyBuckets(c)],
            labels: { quantile: q },
          }
          for q in ['0.5', '0.95', '0.99']
        ],
      },
    ],
  },
}
