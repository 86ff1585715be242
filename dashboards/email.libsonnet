// Email: provider APIs and status pages, sender reputation, delivery, and each sending
// domain's authentication records in DNS.  Reputation first: that is what gets an
// account suspended; DNS and provider state explain it.
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.email;
  local sel(extra=[]) = s.sel(c.selector, extra);
  local ssel(extra=[]) = s.sel(c.statuspageSelector, extra);
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  // DNS metrics: the target label is the domain.
  local dns(m, extra=[]) = '%s%s' % [m, sel(extra)];

  g.dashboard(
    uid=config.dashboardUids.email,
    title='Email',
    description='Email delivery: bounce and complaint ratios against their thresholds, events by provider, provider APIs and status pages, and the SPF, DKIM and DMARC state of each sending domain.',
    tags=['email'],
    variables=[
      s.instanceVariable('stack_exporter_build_info', config.exporterSelector, description='The stack-exporter instance(s).'),
      s.targetVariable(['sendgrid', 'mailgun', 'postmark', 'email_domains', 'statuspages'], config.exporterSelector,
                       description='Provider accounts, sending domains and status pages (the names configured in the exporter).'),
    ],
    rows=[
      g.row('Reputation', [
        g.timeseries('Bounce ratio', 'Bounced share of sent email as each provider reports it. Above %s for %s warns, above %s is critical (EmailBounceRatioHigh).' % [pct(c.bounceWarning), c.reputationFor, pct(c.bounceCritical)],
                     'percentunit', [q('email_reputation_bounce_ratio%s' % sel(), '{{target}} {{provider}}')],
                     thresholds=[[c.bounceWarning, 'orange'], [c.bounceCritical, 'red']], min=0, w=12),
        g.timeseries('Complaint ratio', 'Spam-complaint share of sent email. Above %s for %s warns, above %s is critical (EmailComplaintRatioHigh).' % [pct(c.complaintWarning), c.reputationFor, pct(c.complaintCritical)],
                     'percentunit', [q('email_reputation_complaint_ratio%s' % sel(), '{{target}} {{provider}}')],
                     thresholds=[[c.complaintWarning, 'orange'], [c.complaintCritical, 'red']], min=0, decimals=2, w=12),
      ]),
      g.row('Events', [
        g.timeseries('Events by provider', "Email events per provider and event since the start of the provider's stats day (the counters reset daily).",
                     'short', [q('sum by (target, provider, event) (email_events_total%s)' % sel(), '{{target}} {{provider}} {{event}}')], w=12),
        g.timeseries('Delivered / requested (%s)' % c.deliveriesWindow, 'Delivered emails as a share of requested ones over %s. None delivered while at least %s were requested, for %s, fires EmailDeliveriesStopped.' % [c.deliveriesWindow, s.num(c.deliveriesMinRequests), c.deliveriesFor],
                     'percentunit', [q(|||
                       sum by (target, provider) (increase(email_events_total%(d)s[%(w)s]))
                       /
                       (sum by (target, provider) (increase(email_events_total%(r)s[%(w)s])) > 0)
                     ||| % { d: sel(['event="delivered"']), r: sel(['event="requested"']), w: c.deliveriesWindow }, '{{target}} {{provider}}')],
                     w=12, min=0, thresholds=[[0, 'red'], [0.9, 'green']]),
      ]),
      g.row('Providers', [
        g.stat('Provider API', 'Whether each provider API answered. DOWN for %s fires EmailProviderDown (stats are cached, so allow time).' % c.providerDownFor,
               'none', [q('email_provider_up%s' % sel(), '{{target}} {{provider}}', instant=true)], w=8, mappings=g.upMappings(), base='red', thresholds=[[1, 'green']]),
        g.stat('Status page', "Each provider status page's overall indicator. A minor incident is info; major or critical for %s fires EmailProviderIncident." % c.incidentFor,
               'none', [q('statuspage_indicator%s == 1' % ssel(), '{{target}}: {{indicator}}', instant=true)], w=8, textMode='name', colorMode='background',
               overrides=[
                 { matcher: { id: 'byRegexp', options: '.*: %s' % o[0] }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: o[1] } }] }
                 for o in [['none', 'green'], ['minor', 'orange'], ['(major|critical)', 'red']]
               ]),
        g.stat('Unresolved incidents', 'Incidents not resolved yet on each status page (any impact).', 'short',
               [q('statuspage_unresolved_incidents%s' % ssel(), '{{target}}', instant=true)], w=8, thresholds=[[1, 'orange']], colorMode='value'),
        g.table('Degraded components', 'Status-page components not operational now.', 'none',
                [q('statuspage_component_status%s == 1' % ssel(['status!="operational"']), '')], w=12, hide=['Time', '__name__', 'job', 'instance', 'Value']),
        g.table('Sending domains at providers', 'Whether each provider reports the sending domain as verified. Unverified for %s fires EmailDomainUnverified.' % c.domainUnverifiedFor,
                'none', [q('email_domain_verified%s' % sel(), '')], w=12, mappings=g.okMappings('verified', 'NOT VERIFIED'), base='red', thresholds=[[1, 'green']],
                hide=['Time', '__name__', 'job', 'instance']),
      ]),
      g.row('Domain authentication (DNS)', [
        g.table('SPF, DKIM and DMARC', 'Per domain: SPF, DMARC and (per selector) DKIM validity. Invalid for %s fires EmailSPFInvalid, EmailDMARCInvalid or EmailDKIMInvalid.' % c.dnsFor,
                'none', [
                  q('label_replace(%s, "check", "SPF", "", "")' % dns('email_dns_spf_valid'), ''),
                  q('label_replace(%s, "check", "DMARC", "", "")' % dns('email_dns_dmarc_valid'), ''),
                  q('label_replace(%s, "check", "DKIM $1", "selector", "(.*)")' % dns('email_dns_dkim_valid'), ''),
                ], w=12, h=10, mappings=g.okMappings('valid', 'INVALID'), base='red', thresholds=[[1, 'green']],
                hide=['Time', '__name__', 'job', 'instance', 'selector']),
        g.stat('DMARC policy', 'The DMARC policy of each domain: none only monitors (EmailDMARCPolicyNone), quarantine and reject protect.',
               'none', [q('%s == 1' % dns('email_dns_dmarc_policy'), '{{target}}: {{policy}}', instant=true)], w=6, h=5, textMode='name', colorMode='none'),
        g.stat('DNS lookups', 'Whether every DNS lookup for the domain got an answer: on a timeout or SERVFAIL no verdict is given.',
               'none', [q(dns('email_dns_up'), '{{target}}', instant=true)], w=6, h=5, mappings=g.okMappings('answered', 'FAILED'), base='red', thresholds=[[1, 'green']]),
        g.stat('SPF DNS lookups', 'DNS-querying terms of the SPF record, counted recursively. Above %s receivers return permerror (EmailSPFTooManyLookups).' % s.num(c.spfMaxLookups),
               'short', [q(dns('email_dns_spf_lookups'), '{{target}}', instant=true)], w=6, h=5, thresholds=[[c.spfMaxLookups + 1, 'red']], colorMode='value'),
        g.stat('DKIM key size', 'Bits of each DKIM public key. RSA keys under %s bits fire EmailDKIMKeyTooShort (256-bit ed25519 keys are strong).' % s.num(c.dkimMinBits),
               'short', [q(dns('email_dns_dkim_key_bits'), '{{target}} {{selector}}', instant=true)], w=6, h=5,
               thresholds=[[256, 'green'], [257, 'red'], [c.dkimMinBits, 'green']], base='red', colorMode='value'),
      ]),
    ],
  )
