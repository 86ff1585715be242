// Email: provider APIs and status pages, sender reputation, engagement, delivery, AWS SES
// account state, and each sending domain's authentication records in DNS.  Reputation
// first: that is what gets an account suspended; DNS and provider state explain it.
//
// Providers do not all report the same series (docs/metrics/email.md, "Event mapping"):
// every panel that reads a series some providers lack says which ones fill it.
local email = import '../rules/lib/email.libsonnet';
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.email;
  local es = s.source(config, 'email', c.selector, 'email_provider_up', 'Email job', 'The scrape job(s) of the exporter watching the email providers and domains.');
  local ss = s.source(config, 'statuspage', c.statuspageSelector, 'statuspage_up', 'Status page job', 'The scrape job(s) of the exporter watching the status pages.');
  local sel(extra=[]) = s.sel(es.selector, extra);
  local ssel(extra=[]) = s.sel(ss.selector, extra);
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  // DNS metrics: the target label is the domain.
  local dns(m, extra=[]) = '%s%s' % [m, sel(extra)];
  // The email sources of the exporter's registration table (exporter/collectors/__init__.py
  // SOURCES; tests/dashboards checks the two agree).
  local collectors = ['sendgrid', 'mailgun', 'postmark', 'resend', 'ses', 'email_domains', 'statuspages'];
  // The provider's own reputation figure is drawn dashed beside the computed ratio.
  local figure = "provider's figure";
  local dashed = {
    matcher: { id: 'byRegexp', options: '.* %s$' % figure },
    properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }, { id: 'custom.lineWidth', value: 2 }],
  };
  local ratioPanel(title, what, computed, reputation, events, cloudwatch, alert, warning, critical, decimals) =
    g.timeseries(title,
                 std.stripChars(|||
                   %(What)s share of requested email per account (target, provider), as two series. "computed": %(events)s / requested emails from email_events_total over %(w)s (recording rule %(rule)s), for every provider (SendGrid, Mailgun, Postmark, Resend and AWS SES), recorded only where at least %(min)s emails were requested in the window. "%(figure)s" (dashed): %(reputation)s, the provider's own reputation figure, which only Postmark (over its reputation_days) and AWS SES (CloudWatch %(cloudwatch)s) report. %(alert)s uses the provider's own figure where there is one, else the computed ratio: above %(warning)s for %(for)s warns, above %(critical)s is critical.
                 ||| % {
                   What: what,
                   events: events,
                   w: c.ratioWindow,
                   rule: computed,
                   min: s.num(c.ratioMinRequests),
                   figure: figure,
                   reputation: reputation,
                   cloudwatch: cloudwatch,
                   alert: alert,
                   warning: pct(warning),
                   critical: pct(critical),
                   'for': c.reputationFor,
                 }, '\n'),
                 'percentunit',
                 [
                   q('%s%s' % [computed, sel()], '{{target}} {{provider}} computed'),
                   q('%s%s' % [reputation, sel()], '{{target}} {{provider}} %s' % figure),
                 ],
                 thresholds=[[warning, 'orange'], [critical, 'red']],
                 min=0,
                 decimals=decimals,
                 w=12,
                 overrides=[dashed]);
  local engagementPanel(title, ratio, what, extra, targets) =
    g.timeseries(title,
                 std.stripChars(|||
                   %(What)s per requested email over %(w)s, per account (recording rule %(rule)s; only with at least %(min)s emails requested in the window). SendGrid, Mailgun, Postmark and Resend report opens and clicks; AWS SES reports neither, so SES accounts have no series. %(extra)s
                 ||| % { What: what, w: c.engagementWindow, rule: ratio, min: s.num(c.openMinRequests), extra: extra }, '\n'),
                 'percentunit',
                 targets,
                 min=0,
                 w=12);

  g.dashboard(
    uid=config.dashboardUids.email,
    title='Email',
    description='Email delivery: bounce and complaint ratios against their thresholds, opens and clicks, events by provider, AWS SES account state, provider APIs and status pages, and the SPF, DKIM and DMARC state of each sending domain.',
    tags=['email'],
    variables=s.jobVariables([es, ss]) + [
      s.instanceVariable('stack_exporter_build_info', es.selector, description='The stack-exporter instance(s).'),
      s.targetVariable(collectors,
                       es.selector,
                       description='Provider accounts, sending domains and status pages (the names configured in the exporter).'),
    ],
    rows=[
      g.row('Reputation', [
        ratioPanel('Bounce ratio',
                   'Bounced',
                   email.bounceRatio(config),
                   'email_reputation_bounce_ratio',
                   'bounced',
                   'Reputation.BounceRate',
                   'EmailBounceRatioHigh',
                   c.bounceWarning,
                   c.bounceCritical,
                   null),
        ratioPanel('Complaint ratio',
                   'Spam-complaint',
                   email.complaintRatio(config),
                   'email_reputation_complaint_ratio',
                   'complained',
                   'Reputation.ComplaintRate',
                   'EmailComplaintRatioHigh',
                   c.complaintWarning,
                   c.complaintCritical,
                   2),
      ]),
      g.row('Engagement', [
        engagementPanel('Open rate (%s)' % c.engagementWindow,
                        email.openRatio(config),
                        'Opened emails',
                        "Since Apple's Mail Privacy Protection (2021) opens are inflated by prefetching: read this as a trend, not as a count of readers. The dashed line is the alert level: below %s of the account's own %s average for %s fires EmailOpenRateDropped (info), the usual first sign that mail lands in spam." % [pct(c.openDropRatio), c.openBaselineWindow, c.openDropFor],
                        [
                          q('%s%s' % [email.openRatio(config), sel()], '{{target}} {{provider}}'),
                          q('%s * avg_over_time(%s%s[%s])' % [s.num(c.openDropRatio), email.openRatio(config), sel(), c.openBaselineWindow], '{{target}} {{provider}} alert level'),
                        ]) {
          fieldConfig+: { overrides+: [{
            matcher: { id: 'byRegexp', options: '.* alert level$' },
            properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }, { id: 'custom.fillOpacity', value: 0 }],
          }] },
        },
        engagementPanel('Click rate (%s)' % c.engagementWindow,
                        email.clickRatio(config),
                        'Clicked emails',
                        'Clicks are not inflated by privacy prefetching the way opens are, so they are the better engagement figure.',
                        [q('%s%s' % [email.clickRatio(config), sel()], '{{target}} {{provider}}')]),
      ]),
      g.row('Events', [
        g.timeseries('Events by provider',
                     "Email events per provider and event since the start of the provider's stats day (the counters reset daily). Providers report different events (docs/metrics/email.md): requested, bounced, dropped and complained come from all five; delivered and deferred from SendGrid, Mailgun and Resend (not Postmark or AWS SES); opened and clicked from SendGrid, Mailgun, Postmark and Resend (not AWS SES); blocked and unsubscribed from SendGrid and Mailgun only. Resend's counts are the exporter's own sample of recent emails, SES's arrive in 15-minute buckets.",
                     'short',
                     [q('sum by (target, provider, event) (email_events_total%s)' % sel(), '{{target}} {{provider}} {{event}}')],
                     w=12),
        g.timeseries('Delivered / requested (%s)' % c.deliveriesWindow,
                     'Delivered emails as a share of requested ones over %s. Only SendGrid, Mailgun and Resend report deliveries: Postmark and AWS SES do not, so their accounts have no series here (watch their bounce ratio instead). None delivered while at least %s were requested, for %s, fires EmailDeliveriesStopped.' % [c.deliveriesWindow, s.num(c.deliveriesMinRequests), c.deliveriesFor],
                     'percentunit',
                     [q(|||
                       sum by (target, provider) (increase(email_events_total%(d)s[%(w)s]))
                       /
                       (sum by (target, provider) (increase(email_events_total%(r)s[%(w)s])) > 0)
                     ||| % { d: sel(['event="delivered"']), r: sel(['event="requested"']), w: c.deliveriesWindow }, '{{target}} {{provider}}')],
                     w=12,
                     min=0,
                     thresholds=[[0, 'red'], [0.9, 'green']]),
      ]),
      g.row('AWS SES account', [
        g.stat('SES sending',
               'AWS SES only: whether SES lets the account send (ses_account_sending_enabled). PAUSED for %s fires EmailSESSendingPaused (critical): every email the app sends fails.' % c.sesPausedFor,
               'none',
               [q('ses_account_sending_enabled%s' % sel(), '{{target}}', instant=true)],
               w=6,
               h=6,
               mappings=g.okMappings('ENABLED', 'PAUSED'),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('SES enforcement status',
               "AWS SES only: the account's enforcement status (ses_account_enforcement_status: healthy, probation or shutdown). Probation for %s fires EmailSESProbation (warning): AWS reviews the account and pauses it unless bounces and complaints come down." % c.sesProbationFor,
               'none',
               [q('ses_account_enforcement_status%s == 1' % sel(), '{{target}}: {{status}}', instant=true)],
               w=6,
               h=6,
               textMode='name',
               colorMode='background',
               overrides=[
                 { matcher: { id: 'byRegexp', options: '.*: %s' % o[0] }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: o[1] } }] }
                 for o in [['healthy', 'green'], ['probation', 'orange'], ['shutdown', 'red']]
               ]),
        g.stat('SES production access',
               'AWS SES only: whether the account is out of the SES sandbox (ses_account_production_access). In the sandbox it may only send to verified addresses.',
               'none',
               [q('ses_account_production_access%s' % sel(), '{{target}}', instant=true)],
               w=6,
               h=6,
               mappings=g.okMappings('PRODUCTION', 'SANDBOX'),
               base='orange',
               thresholds=[[1, 'green']]),
        g.timeseries('Send quota used (24h)',
                     "AWS SES only: emails sent in the rolling 24 hours as a share of the account's quota (email_send_quota_sent_24h / email_send_quota_max_24h); an unlimited quota (-1) is left out. Above %s for %s fires EmailSendQuotaNearlyExhausted (warning): past 100%% sends are refused." % [pct(c.sendQuotaRatio), c.sendQuotaFor],
                     'percentunit',
                     [q('email_send_quota_sent_24h%(s)s / (email_send_quota_max_24h%(s)s > 0)' % { s: sel() }, '{{target}} {{provider}}')],
                     w=6,
                     h=6,
                     min=0,
                     thresholds=[[c.sendQuotaRatio, 'red']]),
      ]),
      g.row('Providers', [
        g.stat('Provider API',
               'Whether each provider API answered. DOWN for %s fires EmailProviderDown (stats are cached, so allow time).' % c.providerDownFor,
               'none',
               [q('email_provider_up%s' % sel(), '{{target}} {{provider}}', instant=true)],
               w=8,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('Status page',
               "Each provider status page's overall indicator (Statuspage-style pages: SendGrid and Mailgun have one, Postmark and AWS do not). A minor incident is info; major or critical for %s fires EmailProviderIncident." % c.incidentFor,
               'none',
               [q('statuspage_indicator%s == 1' % ssel(), '{{target}}: {{indicator}}', instant=true)],
               w=8,
               textMode='name',
               colorMode='background',
               overrides=[
                 { matcher: { id: 'byRegexp', options: '.*: %s' % o[0] }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: o[1] } }] }
                 for o in [['none', 'green'], ['minor', 'orange'], ['(major|critical)', 'red']]
               ]),
        g.stat('Unresolved incidents',
               'Incidents not resolved yet on each status page (any impact).',
               'short',
               [q('statuspage_unresolved_incidents%s' % ssel(), '{{target}}', instant=true)],
               w=8,
               thresholds=[[1, 'orange']],
               colorMode='value'),
        g.table('Degraded components',
                'Status-page components not operational now.',
                'none',
                [q('statuspage_component_status%s == 1' % ssel(['status!="operational"']), '')],
                w=12,
                hide=['Time', '__name__', 'job', 'instance', 'Value']),
        g.table('Sending domains at providers',
                'Whether the provider reports each sending domain as verified (email_domain_verified). Only Resend reports it (GET /domains; partially verified counts as not verified): SendGrid, Mailgun, Postmark and AWS SES accounts have no rows. Unverified for %s fires EmailDomainUnverified.' % c.domainUnverifiedFor,
                'none',
                [q('email_domain_verified%s' % sel(), '')],
                w=12,
                mappings=g.okMappings('verified', 'NOT VERIFIED'),
                base='red',
                thresholds=[[1, 'green']],
                hide=['Time', '__name__', 'job', 'instance']),
      ]),
      g.row('Domain authentication (DNS)', [
        g.table('SPF, DKIM and DMARC',
                'Per domain: SPF, DMARC and (per selector) DKIM validity. Invalid for %s fires EmailSPFInvalid, EmailDMARCInvalid or EmailDKIMInvalid.' % c.dnsFor,
                'none',
                [
                  q('label_replace(%s, "check", "SPF", "", "")' % dns('email_dns_spf_valid'), ''),
                  q('label_replace(%s, "check", "DMARC", "", "")' % dns('email_dns_dmarc_valid'), ''),
                  q('label_replace(%s, "check", "DKIM $1", "selector", "(.*)")' % dns('email_dns_dkim_valid'), ''),
                ],
                w=12,
                h=10,
                mappings=g.okMappings('valid', 'INVALID'),
                base='red',
                thresholds=[[1, 'green']],
                hide=['Time', '__name__', 'job', 'instance', 'selector']),
        g.stat('DMARC policy',
               'The DMARC policy of each domain: none only monitors (EmailDMARCPolicyNone), quarantine and reject protect.',
               'none',
               [q('%s == 1' % dns('email_dns_dmarc_policy'), '{{target}}: {{policy}}', instant=true)],
               w=6,
               h=5,
               textMode='name',
               colorMode='none'),
        g.stat('DNS lookups',
               'Whether every DNS lookup for the domain got an answer: on a timeout or SERVFAIL no verdict is given.',
               'none',
               [q(dns('email_dns_up'), '{{target}}', instant=true)],
               w=6,
               h=5,
               mappings=g.okMappings('answered', 'FAILED'),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('SPF DNS lookups',
               'DNS-querying terms of the SPF record, counted recursively. Above %s receivers return permerror (EmailSPFTooManyLookups).' % s.num(c.spfMaxLookups),
               'short',
               [q(dns('email_dns_spf_lookups'), '{{target}}', instant=true)],
               w=6,
               h=5,
               thresholds=[[c.spfMaxLookups + 1, 'red']],
               colorMode='value'),
        g.stat('DKIM key length',
               'Length in bits of each DKIM public key (email_dns_dkim_key_length; revoked keys have none). RSA keys under %s bits fire EmailDKIMKeyTooShort (256-bit ed25519 keys are strong).' % s.num(c.dkimMinBits),
               'short',
               [q(dns('email_dns_dkim_key_length'), '{{target}} {{selector}}', instant=true)],
               w=6,
               h=5,
               thresholds=[[256, 'green'], [257, 'red'], [c.dkimMinBits, 'green']],
               base='red',
               colorMode='value'),
      ]),
    ],
  )
