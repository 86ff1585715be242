// Per email type, from the providers' signed webhooks (the exporter's email_webhooks:
// listener): how many emails of each type were sent over the ratio window, and which share
// of them bounced or drew a spam complaint.  "Sent" is delivered + bounced, the two events
// every provider's webhook reports (Postmark's never says `requested`, so nothing here
// reads it).  Names come from lib/email.libsonnet.
local email = import '../lib/email.libsonnet';
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusRules+:: {
    local c = $._config.email,
    local events(matcher) =
      'sum without (event) (increase(email_webhook_events_total{%s, %s}[%s]))' % [c.selector, matcher, c.ratioWindow],
    // `event` per sent email of the type, only with at least `ratioMinRequests` sent.
    local ratio(event) = |||
      %(events)s
      /
      (%(sent)s >= %(min)s)
    ||| % { events: events('event="%s"' % event), sent: email.typeSent($._config), min: n(c.ratioMinRequests) },
    groups+: [
      {
        name: 'stack-exporter.email_webhooks.rules',
        rules: [
          { record: email.typeSent($._config), expr: events('event=~"delivered|bounced"') },
          { record: email.typeBounceRatio($._config), expr: ratio('bounced') },
          { record: email.typeComplaintRatio($._config), expr: ratio('complained') },
        ],
      },
    ],
  },
}
