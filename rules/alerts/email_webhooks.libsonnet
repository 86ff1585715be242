// Email types and the webhooks themselves, from the providers' signed webhooks (the
// exporter's email_webhooks: listener, docs/metrics/email.md): a type of email that bounces,
// draws complaints or stops being delivered while the rest of the account looks healthy,
// and a webhook that stopped arriving or is refused.  Webhook series carry `provider` (and
// `email_type`), never `target`.  The polled account alerts are in email.libsonnet.
local email = import '../lib/email.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.email,
    local s = c.selector,
    local perProvider = 'job, instance, provider',
    local ratioAlert(r, t) = {
      alert: r.alert,
      expr: '%s{%s} > %s' % [r.ratio, s, n(t.ratio)],
      'for': c.typeRatioFor,
      labels: { severity: t.severity },
      annotations: {
        summary: r.summary,
        description: 'Of the {{ $labels.email_type }} emails {{ $labels.provider }} delivered or bounced over the last %s, {{ $value | humanizePercentage }} %s (threshold %s), by its webhook events.' % [c.ratioWindow, r.what, promql.pct(t.ratio)],
      },
    },
    // bad_signature or stale refusals of a provider's webhook over the window
    local refused = 'sum by (%s) (increase(email_webhook_refused_total{%s, reason=~"bad_signature|stale"}[%s]))' % [perProvider, s, c.webhookRefusedWindow],
    groups+: [
      {
        name: 'stack-exporter.email_webhooks',
        dashboard:: 'email',
        rules: [
          ratioAlert(r, t)
          for r in [
            {
              alert: 'EmailTypeBounceRatioHigh',
              summary: 'Too many emails of one type bounce.',
              ratio: email.typeBounceRatio($._config),
              what: 'bounced',
              levels: [{ ratio: c.bounceWarning, severity: 'warning' }, { ratio: c.bounceCritical, severity: 'critical' }],
            },
            {
              alert: 'EmailTypeComplaintRatioHigh',
              summary: 'Recipients mark too many emails of one type as spam.',
              ratio: email.typeComplaintRatio($._config),
              what: 'were marked as spam',
              levels: [{ ratio: c.complaintWarning, severity: 'warning' }, { ratio: c.complaintCritical, severity: 'critical' }],
            },
          ]
          for t in r.levels
        ] + [
          {
            // A type that delivered at this hour yesterday and delivers nothing now, while
            // the provider's webhook still posts: that type's mail is broken (a template,
            // a job of the app, a suppression), not the webhook.  `unless` also fires when
            // the type has no delivered series any more (the exporter restarted since).
            alert: 'EmailTypeDeliveriesStopped',
            expr: |||
              sum without (event) (increase(email_webhook_events_total{%(s)s, event="delivered"}[%(w)s] offset %(offset)s)) >= %(min)s
              unless
              sum without (event) (increase(email_webhook_events_total{%(s)s, event="delivered"}[%(w)s])) > 0
              and on (%(by)s)
              sum by (%(by)s) (increase(email_webhook_requests_total{%(s)s}[%(w)s])) > 0
            ||| % { s: s, w: c.typeSilentWindow, offset: c.typeSilentBaselineOffset, min: n(c.typeSilentMinDelivered), by: perProvider },
            'for': c.typeSilentFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'No email of one type is delivered any more.',
              description: '{{ $labels.provider }} reported no delivered {{ $labels.email_type }} email in the last %s, against {{ $value | humanize }} in the same hour %s earlier, while its webhook still posts other events.' % [c.typeSilentWindow, c.typeSilentBaselineOffset],
            },
          },
          {
            // The polled stats say mail goes out, the webhook says nothing: every per-type
            // alert above is blind.  Joined on `provider` only (webhook series have no `target`).
            alert: 'EmailWebhookStopped',
            expr: |||
              sum by (%(by)s) (increase(email_webhook_requests_total{%(s)s}[%(w)s])) == 0
              and on (provider)
              sum by (provider) (increase(email_events_total{%(s)s, event="requested"}[%(w)s])) >= %(min)s
            ||| % { s: s, w: c.webhookSilentWindow, min: n(c.webhookSilentMinRequested), by: perProvider },
            'for': c.webhookSilentFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "An email provider's webhook stopped arriving.",
              description: 'The exporter verified no webhook request from {{ $labels.provider }} in the last %s although its stats show %s or more emails requested: the webhook endpoint, its URL or credentials at the provider, or the way to it is broken, and the per-type email alerts are blind.' % [c.webhookSilentWindow, n(c.webhookSilentMinRequested)],
            },
          },
          {
            // Refused over all requests that named the provider (refused + verified).
            alert: 'EmailWebhookRefused',
            expr: |||
              %(refused)s
              /
              (%(refused)s + sum by (%(by)s) (increase(email_webhook_requests_total{%(s)s}[%(w)s])))
              > %(ratio)s
              and
              %(refused)s >= %(min)s
            ||| % { refused: refused, s: s, w: c.webhookRefusedWindow, by: perProvider, ratio: n(c.webhookRefusedRatio), min: n(c.webhookRefusedMin) },
            'for': c.webhookRefusedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "Most of an email provider's webhook requests are refused.",
              description: '{{ $value | humanizePercentage }} of the webhook requests for {{ $labels.provider }} in the last %s were refused for a bad signature or a stale timestamp (threshold %s): a rotated signing key or password not yet in the exporter config, a clock far off, or someone forging requests.' % [c.webhookRefusedWindow, promql.pct(c.webhookRefusedRatio)],
            },
          },
        ],
      },
    ],
  },
}
