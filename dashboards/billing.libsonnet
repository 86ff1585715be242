// Billing (Lago).  Lago's counts are gauges (totals of list endpoints), so trends are
// differences against the past (`offset`), exactly as the alerts compute them.
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.lago;
  local lago = s.source(config, 'lago', c.selector, 'lago_up', 'Lago job', 'The scrape job(s) of the exporter watching Lago.');
  local sel(extra=[]) = s.sel(lago.selector, extra);
  local q = g.query;
  local pct(x) = s.num(x * 100) + '%';
  // Lago counts amounts in the currency's minor unit (ISO 4217's exponent): cents for most,
  // the unit itself for these zero-decimal currencies, thousandths for the three-decimal ones.
  local zeroDecimal = 'BIF|CLP|DJF|GNF|ISK|JPY|KMF|KRW|PYG|RWF|UGX|UYI|VND|VUV|XAF|XOF|XPF';
  local threeDecimal = 'BHD|IQD|JOD|KWD|LYD|OMR|TND';
  // An amount in cents as the currency's major unit (euros, dollars, yen ...).
  local major(metric) = |||
    %(m)s%(cents)s / 100
    or %(m)s%(three)s / 1000
    or %(m)s%(zero)s
  ||| % {
    m: metric,
    cents: sel(['currency!~"%s|%s"' % [zeroDecimal, threeDecimal]]),
    three: sel(['currency=~"%s"' % threeDecimal]),
    zero: sel(['currency=~"%s"' % zeroDecimal]),
  };
  local subs(status, offset='') = 'sum by (target) (lago_subscriptions%s%s)' % [sel(['status="%s"' % status]), if offset == '' then '' else ' offset ' + offset];

  g.dashboard(
    uid=config.dashboardUids.billing,
    title='Billing (Lago)',
    description='Lago billing: the API, failed and overdue invoices, the overdue balance, subscriptions by status and terminations against their baseline.',
    tags=['lago', 'billing'],
    variables=s.jobVariables([lago]) + [
      s.instanceVariable('lago_up', lago.selector, description='The stack-exporter instance(s).'),
      s.targetVariable(['lago'], lago.selector, description='Lago targets (the name configured in the exporter).'),
    ],
    rows=[
      g.row('API', [
        g.stat('Lago up',
               "Whether Lago's /health answered (lago_up). DOWN for %s fires LagoDown." % c.downFor,
               'none',
               [q('lago_up%s' % sel(), '{{target}}', instant=true)],
               w=8,
               mappings=g.upMappings(),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('API key accepted',
               'Whether Lago accepted the API key: a rejected key leaves every billing panel empty.',
               'none',
               [q('lago_api_authorized%s' % sel(), '{{target}}', instant=true)],
               w=8,
               mappings=g.okMappings('OK', 'REJECTED'),
               base='red',
               thresholds=[[1, 'green']]),
        g.stat('Version',
               'Lago version from /health.',
               'none',
               [q('lago_info%s' % sel(), '{{target}}: {{version}}', instant=true)],
               w=8,
               textMode='name',
               colorMode='none'),
      ]),
      g.row('Payments', [
        g.stat('Invoices with failed payments',
               'Invoices whose payment failed, now.',
               'short',
               [q('sum by (target) (lago_invoices%s)' % sel(['payment_status="failed"']), '{{target}}', instant=true)],
               w=6,
               thresholds=[[1, 'orange']],
               colorMode='value'),
        g.timeseries('New failed payments (%s)' % c.failedWindow,
                     'Change in invoices with a failed payment over %s; %s or more, and more than %s of the invoices finalized in the window, fires LagoFailedPaymentsIncreasing. %s or more failed payment requests (dunning retries) with none succeeding fire LagoFailedPaymentRetries.' % [c.failedWindow, s.num(c.failedPaymentsMin), s.num(c.failedPaymentsShare * 100) + '%', s.num(c.failedRetriesMin)],
                     'short',
                     [
                       q('sum by (target) (lago_invoices%(s)s) - sum by (target) (lago_invoices%(s)s offset %(w)s)' % { s: sel(['payment_status="failed"']), w: c.failedWindow }, '{{target}} invoices'),
                       q('sum by (target) (lago_payment_requests%(s)s) - sum by (target) (lago_payment_requests%(s)s offset %(w)s)' % { s: sel(['payment_status="failed"']), w: c.failedWindow }, '{{target}} payment requests'),
                     ],
                     w=10,
                     thresholds=[[c.failedPaymentsMin, 'red']]),
        g.stat('Overdue invoices',
               'Invoices whose payment is overdue.',
               'short',
               [q('lago_invoices_payment_overdue%s' % sel(), '{{target}}', instant=true)],
               w=8,
               thresholds=[[1, 'orange']],
               colorMode='value'),
        g.timeseries('Overdue balance',
                     "Overdue invoice balance per currency, in the currency's major unit (euros, dollars; yen for JPY): Lago reports minor units (cents), converted here by the currency's ISO 4217 decimals. Growth above %s in %s (and by at least %s minor units) for %s fires LagoOverdueBalanceGrowing." % [pct(c.overdueGrowthRatio), c.overdueWindow, s.num(c.overdueMinCents), c.overdueFor],
                     'short',
                     [q(major('lago_overdue_balance_cents'), '{{target}} {{currency}}')],
                     w=12,
                     decimals=2),
        g.timeseries('Overdue balance growth (%s)' % c.overdueWindow,
                     'Change of the overdue balance against %s ago, as a fraction; not drawn where the balance was 0 then (no ratio from nothing).' % c.overdueWindow,
                     'percentunit',
                     [q('(lago_overdue_balance_cents%(s)s - lago_overdue_balance_cents%(s)s offset %(w)s) / (lago_overdue_balance_cents%(s)s offset %(w)s > 0)' % { s: sel(), w: c.overdueWindow }, '{{target}} {{currency}}')],
                     w=12,
                     thresholds=[[c.overdueGrowthRatio, 'red']]),
        g.table('Invoices by status',
                'Invoices by invoice status and payment status, now.',
                'short',
                [q('lago_invoices%s' % sel(), '')],
                w=12,
                hide=['Time', '__name__', 'job', 'instance']),
        g.timeseries('Payment requests by status',
                     'Payment requests (retried collections of overdue invoices) by payment status.',
                     'short',
                     [q('lago_payment_requests%s' % sel(), '{{target}} {{payment_status}}')],
                     w=12),
      ]),
      g.row('Subscriptions', [
        g.timeseries('Subscriptions by status',
                     'Subscriptions per status (active, pending, terminated, canceled).',
                     'short',
                     [q('lago_subscriptions%s' % sel(), '{{target}} {{status}}')],
                     w=12),
        g.timeseries('Terminations per day against baseline',
                     'Subscriptions terminated in the last day, against %sx the daily average of the week before. Above that line and at least %s fires LagoSubscriptionTerminationsHigh.' % [s.num(c.terminationsFactor), s.num(c.terminationsMin)],
                     'short',
                     [
                       q('%s - %s' % [subs('terminated'), subs('terminated', '1d')], '{{target}} last day'),
                       q('%s * (%s - %s) / 7' % [s.num(c.terminationsFactor), subs('terminated', '1d'), subs('terminated', '8d')], '{{target}} alert level'),
                     ],
                     w=12,
                     thresholds=[[c.terminationsMin, 'orange']]),
        g.stat('Customers', 'Customers in Lago.', 'short', [q('lago_customers%s' % sel(), '{{target}}', instant=true)], w=24, colorMode='value', graphMode='area'),
      ]),
    ],
  )
