// Real users (the exporter's rum: listener): pages that feel slow or throw in users'
// browsers, and beacons that stopped arriving.  Every per-page alert needs `minViews`
// views of its metric in the window: a page nobody visits (at night, or a browser that
// never reports the metric) has no ratio and no p75, so it cannot fire.
local promql = import '../lib/promql.libsonnet';
local rum = import '../lib/rum.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config,
    local r = c.rum,
    local w = r.window,
    local on = rum.by(c, ['page']),
    local poor(name, metric, threshold, forTime, what, summary) = {
      alert: name,
      expr: |||
        %(p75)s > %(t)s
        and on (%(on)s)
        %(count)s >= %(min)s
      ||| % { p75: rum.p75(c, metric, w), t: n(threshold), on: on, count: rum.count(c, metric, w), min: n(r.minViews) },
      'for': forTime,
      labels: { severity: 'warning' },
      annotations: {
        summary: summary,
        description: 'The p75 %s of page {{ $labels.page }} ({{ $labels.job }}) is {{ $value | humanizeDuration }} over the last %s (poor above %ss).' % [what, w, n(threshold)],
      },
    },
    groups+: [
      {
        name: 'stack-exporter.rum',
        dashboard:: 'rum',
        rules: [
          poor('RumLcpPoor', 'rum_lcp_seconds', r.lcpPoorSeconds, r.lcpFor, 'Largest Contentful Paint', "A page's Largest Contentful Paint is poor for a quarter of its users."),
          poor('RumInpPoor', 'rum_inp_seconds', r.inpPoorSeconds, r.inpFor, 'Interaction to Next Paint', "A page's Interaction to Next Paint is poor for a quarter of its users."),
          {
            alert: 'RumGoodShareDrop',
            expr: |||
              %(now)s
              < %(ratio)s * %(base)s
              and on (%(on)s)
              %(count)s >= %(min)s
            ||| % {
              now: rum.goodShare(c, w),
              ratio: n(r.goodShareDropRatio),
              base: rum.goodShare(c, r.goodShareBaselineWindow),
              on: on,
              count: rum.count(c, 'rum_lcp_seconds', w),
              min: n(r.minViews),
            },
            'for': r.goodShareFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Far fewer views of a page have a good Largest Contentful Paint than usual.',
              description: 'Only {{ $value | humanizePercentage }} of the views of page {{ $labels.page }} ({{ $labels.job }}) had an LCP of at most %ss over the last %s, under %s of its share over the last %s.' % [n(r.lcpGoodSeconds), w, promql.pct(r.goodShareDropRatio), r.goodShareBaselineWindow],
            },
          },
          {
            alert: 'RumJsErrorSpike',
            expr: |||
              %(now)s > %(factor)s * %(base)s
              and
              %(now)s > %(floor)s
              and on (%(on)s)
              %(views)s >= %(min)s
            ||| % {
              now: rum.errorsPerView(c, w),
              factor: n(r.jsErrorSpikeFactor),
              base: rum.errorsPerView(c, r.jsErrorBaselineWindow),
              floor: n(r.jsErrorMinPerView),
              on: on,
              views: rum.views(c, w),
              min: n(r.minViews),
            },
            'for': r.jsErrorFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "JavaScript errors in users' browsers spiked on a page.",
              description: 'Page {{ $labels.page }} ({{ $labels.job }}) had {{ $value | printf "%%.3f" }} JavaScript errors per page view over the last %s, more than %sx its ratio over the last %s (and over %s).' % [w, n(r.jsErrorSpikeFactor), r.jsErrorBaselineWindow, n(r.jsErrorMinPerView)],
            },
          },
          {
            alert: 'RumBeaconsStopped',
            expr: |||
              sum by (%(by)s) (increase(rum_beacons_accepted_total{%(sel)s}[%(w)s])) == 0
              and
              sum by (%(by)s) (increase(rum_beacons_accepted_total{%(sel)s}[%(w)s] offset %(offset)s)) >= %(min)s
              and on ()
              min(min_over_time(probe_success{%(probe)s}[%(w)s])) == 1
            ||| % {
              by: rum.by(c),
              sel: r.selector,
              w: r.beaconsStoppedWindow,
              offset: r.beaconsBaselineOffset,
              min: n(r.beaconsMinBaseline),
              probe: r.probeSelector,
            },
            'for': r.beaconsStoppedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'No real-user beacons arrive although the site is up.',
              description: '{{ $labels.job }} accepted no browser beacon in the last %s (the same time %s ago it accepted %s or more) while the uptime probes succeeded: the adapter, its script or the beacon endpoint is broken or blocked, and every Rum alert is blind.' % [r.beaconsStoppedWindow, r.beaconsBaselineOffset, n(r.beaconsMinBaseline)],
            },
          },
        ],
      },
    ],
  },
}
