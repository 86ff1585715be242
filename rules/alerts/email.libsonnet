// Email providers (sendgrid, mailgun, postmark, resend, ses): their APIs, sender
// reputation, delivery, quotas and sending domains.  The status pages' incidents are in
// statuspages.libsonnet, the domains' DNS records (SPF, DKIM, DMARC) in email_domains.libsonnet.
local email = import '../lib/email.libsonnet';
local esc = import '../lib/escalate.libsonnet';
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.email,
    local s = c.selector,
    // The provider's figure where it reports one, else the computed ratio; the `figure`
    // label (provider or computed) says which, and so does the description.
    local ratioAlert(r, t) = {
      alert: r.alert,
      expr: |||
        label_replace(%(rep)s{%(s)s} > %(t)s, "figure", "provider", "", "")
        or
        label_replace(%(comp)s{%(s)s} > %(t)s unless %(rep)s{%(s)s}, "figure", "computed", "", "")
      ||| % { rep: r.reputation, comp: r.computed, s: s, t: n(t.ratio) },
      'for': c.reputationFor,
      labels: { severity: t.severity },
      annotations: {
        summary: r.summary,
        description: "The %s ratio of {{ $labels.provider }} account {{ $labels.target }} is {{ $value | humanizePercentage }} (threshold %s), {{ if eq $labels.figure \"provider\" }}by the provider's own reputation figure{{ else }}computed from its %s and requested emails over the last %s (the provider reports no reputation figure){{ end }}." % [r.what, promql.pct(t.ratio), r.events, c.ratioWindow],
      },
    },
    groups+: [
      {
        name: 'stack-exporter.email',
        dashboard:: 'email',
        rules: esc.escalate({
          alert: 'EmailProviderDown',
          expr: 'email_provider_up{%s} == 0' % s,
          'for': c.providerDownFor,
          labels: { severity: 'warning' },
          annotations: {
            summary: 'An email provider API does not answer.',
            description: 'The exporter cannot reach the {{ $labels.provider }} API for {{ $labels.target }}.',
          },
        }, $._config.escalation.emailProviderDown) + [
          // One alert per condition and severity, read from the provider's own reputation
          // figure where it reports one (Postmark, AWS SES) and from the ratio the pack
          // computes from email_events_total otherwise; the description says which.
          ratioAlert(r, t)
          for r in [
            {
              alert: 'EmailBounceRatioHigh',
              summary: 'Too many emails bounce.',
              what: 'bounce',
              reputation: 'email_reputation_bounce_ratio',
              computed: email.bounceRatio($._config),
              events: 'bounced',
              levels: [{ ratio: c.bounceWarning, severity: 'warning' }, { ratio: c.bounceCritical, severity: 'critical' }],
            },
            {
              alert: 'EmailComplaintRatioHigh',
              summary: 'Too many recipients mark emails as spam.',
              what: 'complaint',
              reputation: 'email_reputation_complaint_ratio',
              computed: email.complaintRatio($._config),
              events: 'complained',
              levels: [{ ratio: c.complaintWarning, severity: 'warning' }, { ratio: c.complaintCritical, severity: 'critical' }],
            },
          ]
          for t in r.levels
        ] + esc.escalate({
          // Only where the provider reports deliveries (SendGrid, Mailgun, Resend): a
          // provider that never reports `delivered` has no such series, and `and` drops it.
          alert: 'EmailDeliveriesStopped',
          expr: |||
            sum without (event) (increase(email_events_total{%(s)s, event="requested"}[%(w)s])) > %(min)s
            and
            sum without (event) (increase(email_events_total{%(s)s, event="delivered"}[%(w)s])) == 0
          ||| % { s: s, w: c.deliveriesWindow, min: n(c.deliveriesMinRequests) },
          'for': c.deliveriesFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'Emails are requested but none are delivered.',
            description: '{{ $value | humanize }} emails were requested from {{ $labels.provider }} ({{ $labels.target }}) in the last %s and none was delivered.' % c.deliveriesWindow,
          },
        }, $._config.escalation.emailDeliveriesStopped) + [
          {
            // Opens are inflated by Apple's Mail Privacy Protection: a relative drop against
            // the account's own baseline still says "mail goes to spam", an absolute level does not.
            alert: 'EmailOpenRateDropped',
            expr: '%(r)s < %(f)s * avg_over_time(%(r)s[%(b)s])' % { r: email.openRatio($._config), f: n(c.openDropRatio), b: c.openBaselineWindow },
            'for': c.openDropFor,
            labels: { severity: 'info' },
            annotations: {
              summary: 'Fewer emails are opened than usual: mail may land in spam.',
              description: 'Of the emails {{ $labels.provider }} account {{ $labels.target }} sent in the last %s, {{ $value | humanizePercentage }} were opened: below %s of its own %s average.' % [c.engagementWindow, promql.pct(c.openDropRatio), c.openBaselineWindow],
            },
          },
          {
            alert: 'EmailSESSendingPaused',
            expr: 'ses_account_sending_enabled{%s} == 0' % s,
            'for': c.sesPausedFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'AWS SES has paused sending for the account: no email goes out.',
              description: 'SES account {{ $labels.target }} may not send email (paused by AWS for reputation, or by hand): every email the app sends fails.',
            },
          },
          {
            alert: 'EmailSESProbation',
            expr: 'ses_account_enforcement_status{%s, status="probation"} == 1' % s,
            'for': c.sesProbationFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'AWS SES has put the account on probation.',
              description: 'SES account {{ $labels.target }} is under review (probation): unless bounces and complaints come down, AWS will pause its sending.',
            },
          },
          {
            // -1 (unlimited) and 0 never fire: the quota must be positive.
            alert: 'EmailSendQuotaNearlyExhausted',
            expr: 'email_send_quota_sent_24h{%(s)s} / (email_send_quota_max_24h{%(s)s} > 0) > %(r)s' % { s: s, r: n(c.sendQuotaRatio) },
            'for': c.sendQuotaFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The 24-hour send quota is almost used up.',
              description: '{{ $labels.provider }} account {{ $labels.target }} has used {{ $value | humanizePercentage }} of its 24-hour send quota; past 100% sends are refused.',
            },
          },
          {
            alert: 'EmailDomainUnverified',
            expr: 'email_domain_verified{%s} == 0' % s,
            'for': c.domainUnverifiedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A sending domain is not verified at the email provider.',
              description: 'Domain {{ $labels.domain }} is not verified at {{ $labels.provider }} ({{ $labels.target }}): mail from it fails or is rewritten.',
            },
          },
        ],
      },
    ],
  },
}
