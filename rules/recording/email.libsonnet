// Email ratios computed from email_events_total, so bounce, complaint, open and click
// figures exist for every provider, not only for the two (Postmark, AWS SES) that report
// a reputation figure of their own.  Names come from lib/email.libsonnet.
local email = import '../lib/email.libsonnet';
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusRules+:: {
    local c = $._config.email,
    local events(event, window) =
      'sum without (event) (increase(email_events_total{%s, event="%s"}[%s]))' % [c.selector, event, window],
    // `event` per requested email over `window`, only with at least `min` requested in it.
    local ratio(event, window, min) = |||
      %(events)s
      /
      (%(requested)s >= %(min)s)
    ||| % { events: events(event, window), requested: events('requested', window), min: n(min) },
    groups+: [
      {
        name: 'stack-exporter.email.rules',
        rules: [
          { record: email.requested($._config), expr: events('requested', c.ratioWindow) },
          { record: email.bounceRatio($._config), expr: ratio('bounced', c.ratioWindow, c.ratioMinRequests) },
          { record: email.complaintRatio($._config), expr: ratio('complained', c.ratioWindow, c.ratioMinRequests) },
          { record: email.openRatio($._config), expr: ratio('opened', c.engagementWindow, c.openMinRequests) },
          { record: email.clickRatio($._config), expr: ratio('clicked', c.engagementWindow, c.openMinRequests) },
        ],
      },
    ],
  },
}
