// Real users: what pages feel like in the browsers of the people using them, from the
// beacons the exporter's RUM endpoint receives (docs/rum.md, docs/metrics/rum.md).
// Symptoms first: the Core Web Vitals at p75 against Google's thresholds, then the
// good / needs improvement / poor split, page loads, errors, devices, and last the
// endpoint itself (beacons accepted and rejected).
//
// The thresholds are the Core Web Vitals' own (web.dev/articles/vitals): the exporter's
// histogram buckets bracket exactly these values, so "good" and "poor" are bucket counts at
// those `le`s (a threshold without a bucket could not be computed).  Those the alerts use
// (LCP good and poor, INP poor) come from the rule pack's config (`rum`), like every
// dashboard's thresholds, and must stay bucket bounds.  The series have no target label
// (one endpoint per exporter): the view has `page` and `device` variables instead.
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.rum;
  local src = s.source(config,
                       'rum',
                       c.selector,
                       'rum_beacons_rejected_total',
                       'RUM job',
                       'The scrape job(s) of the exporter receiving the beacons.');
  // RUM series have no target label: the endpoint is one per exporter.
  local isel(extra=[]) = s.sel(src.selector, extra, target=false);
  local psel(extra=[]) = isel(['page=~"$page"'] + extra);
  local dsel(extra=[]) = psel(['device=~"$device"'] + extra);
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  // `le` as the exporter writes it: Python's float text, so 4 is "4.0"; both spellings
  // match, whichever a relabelling or a later Prometheus (which normalises `le`) keeps.
  local le(v) = if v == std.floor(v) then 'le=~"%d|%d.0"' % [v, v] else 'le="%s"' % s.num(v);

  local noBeacons = 'No beacons';
  local nodata(panel, text=noBeacons) = panel { fieldConfig+: { defaults+: { noValue: text } } };
  local noDataNote = '"%s" (no data) means that no beacon reported this for the selected pages and devices in the window, not a value of 0.' % noBeacons;

  local vitals = [
    {
      key: 'LCP',
      name: 'Largest Contentful Paint',
      metric: 'rum_lcp_seconds',
      unit: 's',
      good: c.lcpGoodSeconds,
      poor: c.lcpPoorSeconds,
      alert: ' A p75 above %s s over %s (with at least %s views reporting LCP) for %s fires RumLcpPoor.' % [s.num(c.lcpPoorSeconds), c.window, s.num(c.minViews), c.lcpFor],
      what: 'time until the largest image or text block was painted',
      who: 'Not every browser reports it: web-vitals measures LCP only where the browser has the Largest Contentful Paint API (Chromium-based browsers, Firefox, Safari 26.2 and later; not older Safari: docs/metrics/rum.md), and not for pages opened in a background tab or left before anything was painted. A page with no beacon from such browsers has no LCP here.',
    },
    {
      key: 'INP',
      name: 'Interaction to Next Paint',
      metric: 'rum_inp_seconds',
      unit: 's',
      good: 0.2,
      poor: c.inpPoorSeconds,
      alert: ' A p75 above %s s over %s (with at least %s views reporting INP) for %s fires RumInpPoor.' % [s.num(c.inpPoorSeconds), c.window, s.num(c.minViews), c.inpFor],
      what: 'delay from a click, tap or key press to the next paint (the slowest interactions of a page view)',
      who: 'Not every browser reports it: INP needs the Event Timing API with interaction ids (Chromium-based browsers, Firefox, Safari 26.2 and later; not older Safari: docs/metrics/rum.md), and a page view without any click, tap or key press has none at all, so INP has fewer reports than page views.',
    },
    {
      key: 'CLS',
      name: 'Cumulative Layout Shift',
      metric: 'rum_cls',
      unit: 'none',
      good: 0.1,
      poor: 0.25,
      what: 'unitless score of unexpected layout shifts (the largest burst of a page view)',
      who: 'Not every browser reports it: CLS needs the Layout Instability API, which only Chromium-based browsers have; Safari and Firefox page views report none.',
    },
    {
      key: 'FCP',
      name: 'First Contentful Paint',
      metric: 'rum_fcp_seconds',
      unit: 's',
      good: 1.8,
      poor: 3,
      what: 'time until the first text or image was painted',
      who: 'Reported by all current browsers, but not for pages opened in a background tab.',
    },
    {
      key: 'TTFB',
      name: 'Time to First Byte',
      metric: 'rum_ttfb_seconds',
      unit: 's',
      good: 0.8,
      poor: 1.8,
      what: 'time from the start of the navigation until the first byte of the response (redirects, DNS, TLS and server time)',
      who: 'Reported by all current browsers for every navigation.',
    },
  ];
  local load = 'rum_page_load_seconds';
  local loadShares = [1, 2, 3, 5, 10];
  local fmt(v, unit) = if unit == 's' then s.num(v) + ' s' else s.num(v);
  local bands(v) = 'good up to %s, poor above %s' % [fmt(v.good, v.unit), fmt(v.poor, v.unit)];

  // p75 per page: histogram_quantile gives NaN over a window without observations,
  // which `>= 0` drops, so an idle page shows no data rather than a made-up value.
  local quantile(phi, metric, window='$__rate_interval', by='page') =
    'histogram_quantile(%(phi)s, sum by (%(by)s) (rate(%(m)s_bucket%(s)s[%(w)s]))) >= 0'
    % { phi: s.num(phi), by: std.join(', ', ['le'] + (if by == '' then [] else [by])), m: metric, s: dsel(), w: window };
  local p75(v, window='$__rate_interval', by='page') = quantile(0.75, v.metric, window, by);
  local p75Range(v) =
    'histogram_quantile(0.75, sum by (le, page) (increase(%(m)s_bucket%(s)s[$__range]))) >= 0'
    % { m: v.metric, s: dsel() };
  // Shares of the observations: good at or below the good threshold, poor above the poor
  // one, needs improvement between; a window without observations has none (`> 0`).
  local count(v, fn, window, by) = 'sum%s (%s(%s_count%s[%s]))' % [by, fn, v.metric, dsel(), window];
  local bucket(v, at, fn, window, by) = 'sum%s (%s(%s_bucket%s[%s]))' % [by, fn, v.metric, dsel([le(at)]), window];
  local goodShare(v, fn='rate', window='$__rate_interval', by='') =
    '%s / (%s > 0)' % [bucket(v, v.good, fn, window, by), count(v, fn, window, by)];
  local poorShare(v) =
    '1 - %s / (%s > 0)' % [bucket(v, v.poor, 'rate', '$__rate_interval', ''), count(v, 'rate', '$__rate_interval', '')];
  local niShare(v) =
    '(%s - %s) / (%s > 0)' % [
      bucket(v, v.poor, 'rate', '$__rate_interval', ''),
      bucket(v, v.good, 'rate', '$__rate_interval', ''),
      count(v, 'rate', '$__rate_interval', ''),
    ];

  local fixedColor(name, color) = {
    matcher: { id: 'byName', options: name },
    properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
  };
  // A column of a merged table: its name, unit and colour thresholds.
  local column(ref, name, unit, pairs, base) = {
    matcher: { id: 'byName', options: 'Value #' + ref },
    properties: [
      { id: 'displayName', value: name },
      { id: 'unit', value: unit },
      { id: 'thresholds', value: g.steps(pairs, base) },
      { id: 'color', value: { mode: 'thresholds' } },
      { id: 'custom.cellOptions', value: { type: 'color-text' } },
    ],
  };
  local refs = 'ABCDEF';

  local p75Panel(v, w) =
    nodata(g.timeseries('%s p75' % v.key,
                        std.join(' ', [
                          '%s (%s): the 75th percentile per page, the figure Google assesses a page by, over the selected devices and navigation types, %s.' % [v.name, v.what, bands(v)],
                          'The dashed lines are those thresholds.' + std.get(v, 'alert', ''),
                          v.who,
                          noDataNote,
                          'A quiet page has gaps: widen the time range or read the table above, which takes the whole range.',
                        ]),
                        v.unit,
                        [q(p75(v, '$__rate_interval'), '{{page}} p75')],
                        w=w,
                        thresholds=[[v.good, 'orange'], [v.poor, 'red']],
                        min=0,
                        fill=0));

  local splitPanel(v, w) =
    nodata(g.timeseries('%s good / needs improvement / poor' % v.key,
                        std.join(' ', std.filter(function(sentence) sentence != '', [
                          'Shares of the %s reports of the selected pages and devices: good (%s at most %s), needs improvement, poor (above %s).' % [v.key, v.key, fmt(v.good, v.unit), fmt(v.poor, v.unit)],
                          'From the histogram buckets at the thresholds: good = bucket{le="%s"} / count, poor = 1 - bucket{le="%s"} / count.' % [s.num(v.good), s.num(v.poor)],
                          'A page passes when at least 75% of its reports are good (its p75 is good).',
                          if v.key == 'LCP' then
                            "A page's good share over %s falling below %s of its own share over %s (with at least %s views reporting LCP) for %s fires RumGoodShareDrop." % [c.window, pct(c.goodShareDropRatio), c.goodShareBaselineWindow, s.num(c.minViews), c.goodShareFor]
                          else '',
                          v.who,
                          noDataNote,
                        ])),
                        'percentunit',
                        [
                          q(goodShare(v), 'good'),
                          q(niShare(v), 'needs improvement'),
                          q(poorShare(v), 'poor'),
                        ],
                        w=w,
                        min=0,
                        max=1,
                        stack=true,
                        fill=60,
                        overrides=[
                          fixedColor('good', 'green'),
                          fixedColor('needs improvement', 'orange'),
                          fixedColor('poor', 'red'),
                        ]));

  g.dashboard(
    uid=config.dashboardUids.rum,
    title='Real users',
    description="What pages feel like in users' browsers (real user monitoring): Core Web Vitals at p75 per page against Google's thresholds, the good / needs improvement / poor split, page load times, JavaScript errors and failed API calls per page, devices, and the beacons the RUM endpoint accepted and rejected.",
    tags=['rum', 'web-vitals'],
    variables=s.jobVariables([src]) + [
      s.instanceVariable('rum_beacons_rejected_total', src.selector, description='The stack-exporter instance(s) receiving the beacons.'),
      g.queryVariable('page',
                      'Page',
                      'rum_page_views_total{%s, instance=~"$instance"}' % src.selector,
                      'page',
                      description='Route patterns of rum.routes (the raw URL is never a label); "other" is every path no pattern matched.'),
      g.queryVariable('device',
                      'Device',
                      'rum_page_views_total{%s, instance=~"$instance"}' % src.selector,
                      'device',
                      description='mobile, tablet, desktop (from the User-Agent and Sec-CH-UA-Mobile), unknown without a User-Agent.'),
    ],
    rows=[
      g.row('Core Web Vitals (p75)', [
        nodata(g.table('p75 per page over the time range',
                       std.join(' ', [
                         'Per page, over the whole time range: the 75th percentile of each Core Web Vital and of TTFB, coloured green (good), orange (needs improvement) or red (poor) at the thresholds:',
                         std.join('; ', ['%s %s' % [v.key, bands(v)] for v in vitals]) + '.',
                         'Page views: the page views the beacons counted in the range (a p75 of a handful of views says little).',
                         'Not every browser reports every metric (docs/metrics/rum.md): LCP and INP not in Safari before 26.2, INP only after an interaction, CLS only in Chromium-based browsers.',
                         'An empty cell reads "%s": no beacon reported that metric for that page in the range, not 0.' % noBeacons,
                       ]),
                       's',
                       [q(p75Range(v), '%s p75' % v.key) for v in vitals]
                       + [q('sum by (page) (increase(rum_page_views_total%s[$__range]))' % dsel(), 'page views')],
                       w=24,
                       h=8,
                       hide=['Time'],
                       sortBy=[{ displayName: 'page', desc: false }],
                       overrides=[
                         column(refs[i], '%s p75' % vitals[i].key, vitals[i].unit, [[vitals[i].good, 'orange'], [vitals[i].poor, 'red']], 'green')
                         for i in std.range(0, std.length(vitals) - 1)
                       ] + [{
                         matcher: { id: 'byName', options: 'Value #F' },
                         properties: [{ id: 'displayName', value: 'page views' }, { id: 'unit', value: 'short' }, { id: 'decimals', value: 0 }],
                       }])),
      ] + [p75Panel(v, if v.key == 'LCP' || v.key == 'INP' || v.key == 'CLS' then 8 else 12) for v in vitals]),
      g.row('Good / needs improvement / poor', [
        nodata(g.table('Share of good reports per page over the time range',
                       std.join(' ', [
                         'Per page, over the whole time range: the share of the reports of each metric that were good (%s).' % std.join('; ', ['%s at most %s' % [v.key, fmt(v.good, v.unit)] for v in vitals]),
                         'At least 75% good means the p75 is good (green); below 50% is red.',
                         'Not every browser reports every metric (docs/metrics/rum.md): LCP and INP not in Safari before 26.2, INP only after an interaction, CLS only in Chromium-based browsers.',
                         'An empty cell reads "%s": no beacon reported that metric for that page in the range.' % noBeacons,
                       ]),
                       'percentunit',
                       [q(goodShare(v, 'increase', '$__range', ' by (page)'), '%s good' % v.key) for v in vitals],
                       w=24,
                       h=8,
                       hide=['Time'],
                       sortBy=[{ displayName: 'page', desc: false }],
                       overrides=[
                         column(refs[i], '%s good' % vitals[i].key, 'percentunit', [[0.5, 'orange'], [0.75, 'green']], 'red')
                         for i in std.range(0, std.length(vitals) - 1)
                       ])),
      ] + [splitPanel(v, if v.key == 'LCP' || v.key == 'INP' || v.key == 'CLS' then 8 else 12) for v in vitals]),
      g.row('Page load', [
        nodata(g.timeseries('Page load p50 / p75 / p95',
                            std.join(' ', [
                              'Time from the start of the navigation to the end of the load event (PerformanceNavigationTiming loadEventEnd), over the selected pages and devices: the median, p75 and p95, from rum_page_load_seconds (buckets 0.5 s to 60 s).',
                              'Pages restored from the back/forward cache have no load timing of their own, and a page left before its load event ended reports none.',
                              noDataNote,
                            ]),
                            's',
                            [
                              q(quantile(0.5, load, by=''), 'p50'),
                              q(quantile(0.75, load, by=''), 'p75'),
                              q(quantile(0.95, load, by=''), 'p95'),
                            ],
                            w=12,
                            min=0,
                            fill=0)),
        nodata(g.timeseries('Page load p75 per page',
                            'The 75th percentile of the page load time (end of the load event) per page, over the selected devices. %s' % noDataNote,
                            's',
                            [q(quantile(0.75, load), '{{page}} p75')],
                            w=12,
                            min=0,
                            fill=0)),
        nodata(g.timeseries('Page loads within 1 / 2 / 3 / 5 / 10 s',
                            'The distribution of page load times over the selected pages and devices: the share of page loads that ended their load event within 1, 2, 3, 5 and 10 s (from the rum_page_load_seconds buckets; each line includes the faster ones). A line sinking means loads got slower. %s' % noDataNote,
                            'percentunit',
                            [q(|||
                                 sum by (le) (rate(rum_page_load_seconds_bucket%(b)s[$__rate_interval]))
                                 / ignoring (le) group_left ()
                                 (sum(rate(rum_page_load_seconds_count%(s)s[$__rate_interval])) > 0)
                               ||| % { b: dsel(['le=~"%s"' % std.join('|', ['%d|%d.0' % [x, x] for x in loadShares])]), s: dsel() },
                               'within {{le}} s')],
                            w=24,
                            min=0,
                            max=1,
                            fill=0)),
      ]),
      g.row('Traffic and devices', [
        nodata(g.timeseries('Page views per page',
                            'Page views per second per page (beacons with "view": true, one per page load), over the selected devices. Pages nobody visited have no series at all. %s' % noDataNote,
                            'ops',
                            [q('sum by (page) (rate(rum_page_views_total%s[$__rate_interval]))' % dsel(), '{{page}}')],
                            w=12)),
        nodata(g.timeseries('Page views by device',
                            'Page views per second per device class: mobile, tablet and desktop from the User-Agent (and the Sec-CH-UA-Mobile client hint), unknown when the browser sent no User-Agent. %s' % noDataNote,
                            'ops',
                            [q('sum by (device) (rate(rum_page_views_total%s[$__rate_interval]))' % dsel(), '{{device}}')],
                            w=6,
                            stack=true)),
        nodata(g.stat('Device split over the time range',
                      'Share of the page views of the selected pages per device class over the whole time range. %s' % noDataNote,
                      'percentunit',
                      [q('sum by (device) (increase(rum_page_views_total%(s)s[$__range])) / scalar(sum(increase(rum_page_views_total%(s)s[$__range])) > 0)' % { s: dsel() }, '{{device}}', instant=true)],
                      w=6,
                      h=8,
                      colorMode='none')),
        nodata(g.timeseries('LCP p75 by device',
                            'Largest Contentful Paint p75 per device class over the selected pages (good up to 2.5 s, poor above 4 s: the dashed lines). Phones on slow networks usually fare worst. %s %s' % [vitals[0].who, noDataNote],
                            's',
                            [q(p75(vitals[0], '$__rate_interval', 'device'), '{{device}} p75')],
                            w=8,
                            thresholds=[[2.5, 'orange'], [4, 'red']],
                            min=0,
                            fill=0)),
        nodata(g.timeseries('INP p75 by device',
                            'Interaction to Next Paint p75 per device class over the selected pages (good up to 0.2 s, poor above 0.5 s: the dashed lines). %s %s' % [vitals[1].who, noDataNote],
                            's',
                            [q(p75(vitals[1], '$__rate_interval', 'device'), '{{device}} p75')],
                            w=8,
                            thresholds=[[0.2, 'orange'], [0.5, 'red']],
                            min=0,
                            fill=0)),
        nodata(g.timeseries('Navigations by type',
                            "FCP reports per second by web-vitals' navigation type: navigate, reload, back-forward, back-forward-cache (restored from the back/forward cache: near-instant, so many of them lower the percentiles), prerender, restore. FCP is counted because every current browser reports it for every kind of navigation. %s" % noDataNote,
                            'ops',
                            [q('sum by (navigation_type) (rate(rum_fcp_seconds_count%s[$__rate_interval]))' % dsel(), '{{navigation_type}}')],
                            w=8,
                            stack=true)),
      ]),
      g.row('Errors', [
        nodata(g.timeseries('JavaScript errors per page',
                            'Uncaught errors ("error") and unhandled promise rejections ("unhandledrejection") per second per page, as the adapter counted them in the browser. Messages and stack traces are never sent or stored: only the count. Not split by device (the error counters carry no device label). No data means no beacon reported an error, which on a page with page views is good news.',
                            'ops',
                            [q('sum by (page, kind) (rate(rum_js_errors_total%s[$__rate_interval]))' % psel(), '{{page}} {{kind}}')],
                            w=12),
               'No errors reported'),
        nodata(g.timeseries('JavaScript errors per page view',
                            "JavaScript errors (both kinds) per page view, per page: a page whose errors grow with its traffic stays flat here, a new bug does not. Over all devices (the error counters carry no device label). Over %s, above %sx the page's own ratio over %s and above %s (the dashed line) with at least %s page views, for %s, fires RumJsErrorSpike. No data: no page views, or no error reported." % [c.window, s.num(c.jsErrorSpikeFactor), c.jsErrorBaselineWindow, s.num(c.jsErrorMinPerView), s.num(c.minViews), c.jsErrorFor],
                            'short',
                            [q('sum by (page) (rate(rum_js_errors_total%(s)s[$__rate_interval])) / (sum by (page) (rate(rum_page_views_total%(s)s[$__rate_interval])) > 0)' % { s: psel() }, '{{page}}')],
                            w=12,
                            min=0,
                            thresholds=[[c.jsErrorMinPerView, 'orange']]),
               'No errors or no views'),
        nodata(g.timeseries('Failed API calls per page',
                            "fetch calls made by the page that failed, per second, per page and status class: 4xx and 5xx responses, and network (the request never got a response: offline, DNS, CORS, aborted). Counted by the adapter's fetch wrapper (never the beacon itself); XMLHttpRequest calls are not counted. Not split by device. No data means no failure was reported.",
                            'ops',
                            [q('sum by (page, status_class) (rate(rum_api_failures_total%s[$__rate_interval]))' % psel(), '{{page}} {{status_class}}')],
                            w=12),
               'No failures reported'),
        nodata(g.timeseries('Failed API calls per page view',
                            'Failed fetch calls (all status classes) per page view, per page, over all devices. No data: no page views, or no failure reported.',
                            'short',
                            [q('sum by (page) (rate(rum_api_failures_total%(s)s[$__rate_interval])) / (sum by (page) (rate(rum_page_views_total%(s)s[$__rate_interval])) > 0)' % { s: psel() }, '{{page}}')],
                            w=12,
                            min=0),
               'No failures or no views'),
      ]),
      g.row('Beacons (the RUM endpoint)', [
        g.timeseries('Beacons accepted and rejected',
                     'Beacons per second the RUM endpoint accepted, and rejected by reason: origin (not in rum.allowed_origins, or no Origin header), rate_limited (the per-client token bucket), too_large (over rum.max_body_bytes), malformed (not the beacon format, or another content type), invalid_value (negative, NaN or impossible values), unknown_metric. A beacon is accepted or rejected whole. Accepted falling to 0 while the site has visitors means the instrumentation or the endpoint broke (none accepted in %(w)s, after %(min)s or more at the same time %(off)s before, while the uptime probes succeed, for %(for)s, fires RumBeaconsStopped); many rejected for origin or malformed is usually someone posting junk, which adds no series.' % { w: c.beaconsStoppedWindow, min: s.num(c.beaconsMinBaseline), off: c.beaconsBaselineOffset, 'for': c.beaconsStoppedFor },
                     'ops',
                     [
                       q('sum(rate(rum_beacons_accepted_total%s[$__rate_interval]))' % isel(), 'accepted'),
                       q('sum by (reason) (rate(rum_beacons_rejected_total%s[$__rate_interval]))' % isel(), 'rejected {{reason}}'),
                     ],
                     w=12,
                     overrides=[fixedColor('accepted', 'green')]),
        g.timeseries('Rejected share',
                     'Rejected beacons as a share of all beacons received. No data: no beacon was received in the window at all.',
                     'percentunit',
                     [q('sum(rate(rum_beacons_rejected_total%(s)s[$__rate_interval])) / (sum(rate(rum_beacons_rejected_total%(s)s[$__rate_interval])) + sum(rate(rum_beacons_accepted_total%(s)s[$__rate_interval])) > 0)' % { s: isel() }, 'rejected')],
                     w=6,
                     min=0,
                     max=1),
        g.timeseries('Clients the rate limiter remembers',
                     'Clients (IPv4 addresses, IPv6 /64 networks; behind a trusted proxy the forwarded address) the per-client token bucket keeps (rum_clients_limited). It is bounded by rum.max_clients: at the bound the least recently seen client is forgotten, so a flood from many addresses cannot grow memory.',
                     'short',
                     [q('rum_clients_limited%s' % isel(), '{{instance}}')],
                     w=6,
                     min=0),
      ]),
    ],
  )
