// Email: the providers, their status pages, sender reputation, delivery, and the
// domain's authentication records in DNS (SPF, DKIM, DMARC), whose target is the domain.
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.email,
    local s = c.selector,
    groups+: [
      {
        name: 'stack-exporter.email',
        dashboard:: 'email',
        rules: [
          {
            alert: 'EmailProviderDown',
            expr: 'email_provider_up{%s} == 0' % s,
            'for': c.providerDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'An email provider API does not answer.',
              description: 'The exporter cannot reach the {{ $labels.provider }} API for {{ $labels.target }}.',
            },
          },
        ] + [
          {
            alert: 'EmailProviderIncident',
            expr: 'statuspage_indicator{%s, indicator=~"%s"} == 1' % [c.statuspageSelector, t.indicators],
            'for': c.incidentFor,
            labels: { severity: t.severity },
            annotations: {
              summary: "An email provider's status page reports an incident.",
              description: 'The status page {{ $labels.target }} reports a {{ $labels.indicator }} incident.',
            },
          }
          for t in [{ indicators: 'minor', severity: 'info' }, { indicators: 'major|critical', severity: 'warning' }]
        ] + [
          {
            alert: 'EmailBounceRatioHigh',
            expr: 'email_reputation_bounce_ratio{%s} > %s' % [s, n(t.ratio)],
            'for': c.reputationFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'Too many emails bounce.',
              description: 'The bounce ratio of {{ $labels.provider }} account {{ $labels.target }} is {{ $value | humanizePercentage }} (threshold %s).' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: c.bounceWarning, severity: 'warning' }, { ratio: c.bounceCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'EmailComplaintRatioHigh',
            expr: 'email_reputation_complaint_ratio{%s} > %s' % [s, n(t.ratio)],
            'for': c.reputationFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'Too many recipients mark emails as spam.',
              description: 'The complaint ratio of {{ $labels.provider }} account {{ $labels.target }} is {{ $value | humanizePercentage }} (threshold %s).' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: c.complaintWarning, severity: 'warning' }, { ratio: c.complaintCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'EmailDeliveriesStopped',
            expr: |||
              sum by (target, provider) (increase(email_events_total{%(s)s, event="requested"}[%(w)s])) > %(min)s
              unless on (target, provider)
              sum by (target, provider) (increase(email_events_total{%(s)s, event="delivered"}[%(w)s])) > 0
            ||| % { s: s, w: c.deliveriesWindow, min: n(c.deliveriesMinRequests) },
            'for': c.deliveriesFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Emails are requested but none are delivered.',
              description: '{{ $value | humanize }} emails were requested from {{ $labels.provider }} ({{ $labels.target }}) in the last %s and none was delivered.' % c.deliveriesWindow,
            },
          },
          {
            alert: 'EmailSPFInvalid',
            expr: 'email_dns_spf_valid{%s} == 0' % s,
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "A domain's SPF record is missing or invalid.",
              description: 'The SPF record of {{ $labels.target }} is missing, duplicated or invalid: receivers may reject or junk its mail.',
            },
          },
          {
            alert: 'EmailSPFTooManyLookups',
            expr: 'email_dns_spf_lookups{%s} > %s' % [s, n(c.spfMaxLookups)],
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "A domain's SPF record needs too many DNS lookups.",
              description: 'The SPF record of {{ $labels.target }} needs {{ $value }} DNS lookups; above %s receivers return permerror.' % n(c.spfMaxLookups),
            },
          },
          {
            alert: 'EmailDMARCInvalid',
            expr: 'email_dns_dmarc_valid{%s} == 0' % s,
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: "A domain's DMARC record is missing or invalid.",
              description: 'The DMARC record of {{ $labels.target }} is missing or invalid: bulk-sender rules of Gmail and Yahoo require one.',
            },
          },
          {
            alert: 'EmailDMARCPolicyNone',
            expr: 'email_dns_dmarc_policy{%s, policy="none"} == 1' % s,
            'for': c.dnsFor,
            labels: { severity: 'info' },
            annotations: {
              summary: "A domain's DMARC policy only monitors (p=none).",
              description: 'The DMARC policy of {{ $labels.target }} is none: spoofed mail is not rejected.',
            },
          },
          {
            alert: 'EmailDKIMInvalid',
            expr: 'email_dns_dkim_valid{%s} == 0' % s,
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A DKIM key is missing, revoked or invalid.',
              description: 'The DKIM record of selector {{ $labels.selector }} of {{ $labels.target }} is missing, revoked or invalid: signed mail fails DKIM.',
            },
          },
          {
            // ed25519 keys are 256 bits and strong: only RSA sizes are judged.
            alert: 'EmailDKIMKeyTooShort',
            expr: 'email_dns_dkim_key_bits{%(s)s} < %(t)s and email_dns_dkim_key_bits{%(s)s} != 256' % { s: s, t: n(c.dkimMinBits) },
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A DKIM key is shorter than recommended.',
              description: 'The DKIM key of selector {{ $labels.selector }} of {{ $labels.target }} has {{ $value }} bits (minimum %s).' % n(c.dkimMinBits),
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
