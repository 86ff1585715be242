// Email: provider APIs and status pages, sender reputation, engagement, delivery, AWS SES
// account state, and each sending domain's authentication records in DNS.  Reputation
// first: that is what gets an account suspended; DNS and provider state explain it.
//
// Providers do not all report the same series (docs/metrics/email.md, "Event mapping"):
// every panel that reads a series some providers lack says which ones fill it.
//
// "Per email type (webhooks)" reads what the providers post to the exporter's signed
// webhook endpoint (email_webhooks:, docs/metrics/email.md): those series have `provider`
// and `email_type` but no `target`, so that row has `provider` and `email_type` variables
// of its own, and a type without events says so rather than drawing 0.
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

  // ---------------------------------------------------------------- per email type (webhooks)
  // Webhook series have no target (one endpoint per exporter, whatever the account): the
  // row filters by the `provider` and `email_type` variables instead.
  local wsel(extra=[]) = s.sel(es.selector, ['provider=~"$provider"'] + extra, target=false);
  local tsel(extra=[]) = wsel(['email_type=~"$email_type"'] + extra);
  // A Prometheus duration of one unit ('30m', '1h', '1d') in seconds.
  local seconds(d) =
    local unit = d[std.length(d) - 1];
    std.parseInt(d[:std.length(d) - 1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit];
  local noEvents = 'No webhook events';
  local nodata(panel, text=noEvents) = panel { fieldConfig+: { defaults+: { noValue: text } } };
  local noEventsNote = '"%s" (no data) means that no webhook reported such an event for the selected providers and types in the window, not a value of 0; a type only appears once the exporter counted an event of it.' % noEvents;
  // Which provider's webhook reports which event (docs/metrics/email.md, "Webhooks").
  local whoReports = 'Every provider posts delivered, bounced, deferred, dropped and complained. requested comes from SendGrid (processed), Mailgun (accepted), Resend (email.sent) and AWS SES (Send), never from Postmark; blocked from SendGrid, Mailgun and Postmark only; opened and clicked from SendGrid, Mailgun, Postmark and Resend with tracking on, and from AWS SES only through a configuration set (event publishing); unsubscribed from SendGrid, Mailgun, Postmark and AWS SES, not Resend.';
  local typeNote = "A type is one of email_webhooks.email_types, matched by the email's tags (SendGrid category, Mailgun tag, Postmark tag or message stream, Resend tag, SES message tag or configuration set); other is every email no type matched.";
  local dashedBy(regex) = {
    matcher: { id: 'byRegexp', options: regex },
    properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }, { id: 'custom.fillOpacity', value: 0 }],
  };
  local typeRatioPanel(title, what, ratio, event, alert, warning, critical, decimals) =
    nodata(g.timeseries(title,
                        std.join(' ', [
                          '%s share of the emails of each type that were sent (delivered or bounced), per provider, over %s, from the webhook events (recording rule %s, recorded only where at least %s emails of the type were sent in the window).' % [what, c.ratioWindow, ratio, s.num(c.ratioMinRequests)],
                          'Every provider (SendGrid, Mailgun, Postmark, Resend and AWS SES) posts delivered, bounced and %s events, so every provider with a webhook fills it.' % event,
                          "The thresholds are the account alerts': above %s for %s fires %s (warning), above %s is critical." % [pct(warning), c.typeRatioFor, alert, pct(critical)],
                          typeNote,
                          '"No ratio" (no data): fewer than %s emails of the selected types were sent in the window, or no webhook is configured.' % s.num(c.ratioMinRequests),
                        ]),
                        'percentunit',
                        [q('%s%s' % [ratio, tsel()], '{{email_type}} ({{provider}})')],
                        thresholds=[[warning, 'orange'], [critical, 'red']],
                        min=0,
                        decimals=decimals,
                        w=8),
           'No ratio');

  g.dashboard(
    uid=config.dashboardUids.email,
    title='Email',
    description="Email delivery: bounce and complaint ratios against their thresholds, opens and clicks, events by provider, per email type from the providers' signed webhooks (bounce and complaint ratios, deliveries against a day earlier, events, and the webhook endpoint itself), AWS SES account state, provider APIs and status pages, and the SPF, DKIM and DMARC state of each sending domain.",
    tags=['email'],
    variables=s.jobVariables([es, ss]) + [
      s.instanceVariable('stack_exporter_build_info', es.selector, description='The stack-exporter instance(s).'),
      s.targetVariable(collectors,
                       es.selector,
                       description='Provider accounts, sending domains and status pages (the names configured in the exporter).'),
      g.queryVariable('provider',
                      'Webhook provider',
                      'email_webhook_requests_total{%s, instance=~"$instance"}' % es.selector,
                      'provider',
                      description='Providers with a webhook configured (email_webhooks:). Filters the "Per email type (webhooks)" row only: webhook series have no target.'),
      g.queryVariable('email_type',
                      'Email type',
                      'email_webhook_events_total{%s, instance=~"$instance", provider=~"$provider"}' % es.selector,
                      'email_type',
                      description='The email types of email_webhooks.email_types (and other) that have had a webhook event. Filters the "Per email type (webhooks)" row only.'),
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
      g.row('Per email type (webhooks)', [
        typeRatioPanel('Bounce ratio per email type',
                       'Bounced',
                       email.typeBounceRatio(config),
                       'bounced',
                       'EmailTypeBounceRatioHigh',
                       c.bounceWarning,
                       c.bounceCritical,
                       null),
        typeRatioPanel('Complaint ratio per email type',
                       'Spam-complaint',
                       email.typeComplaintRatio(config),
                       'complained',
                       'EmailTypeComplaintRatioHigh',
                       c.complaintWarning,
                       c.complaintCritical,
                       2),
        nodata(g.timeseries('Delivered per email type (%s), now and %s earlier' % [c.typeSilentWindow, c.typeSilentBaselineOffset],
                            std.join(' ', [
                              'Delivered emails of each type over the last %s, per provider, from the webhook events; dashed: the same %s %s earlier.' % [c.typeSilentWindow, c.typeSilentWindow, c.typeSilentBaselineOffset],
                              'Every provider (SendGrid, Mailgun, Postmark, Resend and AWS SES) posts delivered events.',
                              'None delivered now while at least %s were %s earlier, and the provider still posts other events, for %s fires EmailTypeDeliveriesStopped (critical): that type of mail is broken (a template, a job of the app, a suppression), not the webhook.' % [s.num(c.typeSilentMinDelivered), c.typeSilentBaselineOffset, c.typeSilentFor],
                              typeNote,
                              noEventsNote,
                            ]),
                            'short',
                            [
                              q('sum by (provider, email_type) (increase(email_webhook_events_total%s[%s]))' % [tsel(['event="delivered"']), c.typeSilentWindow], '{{email_type}} ({{provider}})'),
                              q('sum by (provider, email_type) (increase(email_webhook_events_total%s[%s] offset %s))' % [tsel(['event="delivered"']), c.typeSilentWindow, c.typeSilentBaselineOffset], '{{email_type}} ({{provider}}) %s earlier' % c.typeSilentBaselineOffset),
                            ],
                            w=8,
                            min=0,
                            overrides=[dashedBy('.* earlier$')])),
        nodata(g.timeseries('Events per email type',
                            std.join(' ', [
                              'Webhook events per second of each type, by event and provider (email_webhook_events_total), on the polled vocabulary of email_events_total.',
                              whoReports,
                              'A batch (SendGrid) or a retried request is counted once: replays go to "Duplicates and ignored events".',
                              typeNote,
                              noEventsNote,
                            ]),
                            'ops',
                            [q('sum by (provider, email_type, event) (rate(email_webhook_events_total%s[$__rate_interval]))' % tsel(), '{{email_type}} {{event}} ({{provider}})')],
                            w=24,
                            legendCalcs=['mean', 'max'])),
        g.timeseries('Webhook requests accepted and refused',
                     std.join(' ', [
                       'Webhook requests per second per provider: accepted (signature or credentials verified, email_webhook_requests_total) and refused by reason (email_webhook_refused_total): bad_signature (missing or wrong signature or credentials, an SNS topic not configured), stale (signed timestamp too old), too_large, malformed, rate_limited, unavailable (the SNS signing certificate could not be fetched), unknown_provider (provider "unknown": a path naming no configured provider).',
                       "Refusals for bad_signature or stale above %s of a provider's requests over %s, with at least %s of them, for %s fire EmailWebhookRefused (warning): a rotated signing key or password not yet in the config, or a clock far off." % [pct(c.webhookRefusedRatio), c.webhookRefusedWindow, s.num(c.webhookRefusedMin), c.webhookRefusedFor],
                       'Refused requests with reasons such as malformed or rate_limited from strangers add no series.',
                     ]),
                     'ops',
                     [
                       q('sum by (provider) (rate(email_webhook_requests_total%s[$__rate_interval]))' % wsel(), '{{provider}} accepted'),
                       q('sum by (provider, reason) (rate(email_webhook_refused_total%s[$__rate_interval]))' % wsel(), '{{provider}} refused {{reason}}'),
                     ],
                     w=12),
        g.timeseries('Duplicates and ignored events',
                     std.join(' ', [
                       "Webhook events per second per provider that were not counted per type: duplicates (a replayed or retried request or event id the exporter had seen: answered 200 so the provider stops retrying, email_webhook_duplicates_total) and ignored (events outside the vocabulary, such as SendGrid's group_resubscribe or a Postmark SubscriptionChange that is no unsubscribe, email_webhook_events_ignored_total).",
                       'Some duplicates are normal (providers retry on a timeout); many mean a provider keeps retrying, or someone replays captured requests.',
                     ]),
                     'ops',
                     [
                       q('sum by (provider) (rate(email_webhook_duplicates_total%s[$__rate_interval]))' % wsel(), '{{provider}} duplicates'),
                       q('sum by (provider) (rate(email_webhook_events_ignored_total%s[$__rate_interval]))' % wsel(), '{{provider}} ignored'),
                     ],
                     w=6),
        nodata(g.stat('Since the last webhook request',
                      std.join(' ', [
                        'Seconds since the exporter last verified a webhook request from each provider (email_webhook_last_request_timestamp_seconds; none before the first one since the exporter started).',
                        'Quiet hours are normal for a small sender; no verified request for %s while the polled stats show at least %s emails requested, for %s, fires EmailWebhookStopped (warning): the per-type figures above are blind.' % [c.webhookSilentWindow, s.num(c.webhookSilentMinRequested), c.webhookSilentFor],
                      ]),
                      's',
                      [q('time() - max by (provider) (email_webhook_last_request_timestamp_seconds%s)' % wsel(), '{{provider}}', instant=true)],
                      w=6,
                      h=8,
                      thresholds=[[seconds(c.webhookSilentWindow), 'orange']],
                      colorMode='value'),
               'No request yet'),
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
