// The sending domains' authentication records in DNS (the `email_domains` source): SPF,
// DKIM and DMARC, whose target is the domain.  Its settings (dnsFor, spfMaxLookups,
// dkimMinBits) stay under _config.email, where overrides expect them.
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusAlerts+:: {
    local c = $._config.email,
    local s = c.selector,
    groups+: [
      {
        name: 'stack-exporter.email_domains',
        dashboard:: 'email',
        rules: [
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
            expr: 'email_dns_dkim_key_length{%(s)s} < %(t)s and email_dns_dkim_key_length{%(s)s} != 256' % { s: s, t: n(c.dkimMinBits) },
            'for': c.dnsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A DKIM key is shorter than recommended.',
              description: 'The DKIM key of selector {{ $labels.selector }} of {{ $labels.target }} has {{ $value }} bits (minimum %s).' % n(c.dkimMinBits),
            },
          },
        ],
      },
    ],
  },
}
