// Billing (Lago): the API and the trends of failed payments, overdue balance and churn.
// Lago's counts are gauges (totals of list endpoints), so trends are differences over time.
local esc = import '../lib/escalate.libsonnet';
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusAlerts+:: {
    local c = $._config.lago,
    local s = c.selector,
    groups+: [
      {
        name: 'stack-exporter.lago',
        dashboard:: 'billing',
        rules: esc.escalate({
          alert: 'LagoDown',
          expr: 'lago_up{%s} == 0' % s,
          'for': c.downFor,
          labels: { severity: 'critical' },
          annotations: {
            summary: 'The Lago billing API does not answer.',
            description: 'The exporter cannot reach the Lago API {{ $labels.target }}.',
          },
        }, $._config.escalation.lagoDown) + [
          {
            alert: 'LagoFailedPaymentsIncreasing',
            // More failed invoices than `failedWindow` ago: enough of them, and most of the
            // window's new invoices (a provider rejecting every charge), not the routine declines.
            local failed = '(sum by (target) (lago_invoices{%(s)s, payment_status="failed"}) - sum by (target) (lago_invoices{%(s)s, payment_status="failed"} offset %(w)s))' % { s: s, w: c.failedWindow },
            expr: |||
              %(failed)s >= %(min)s
              and
              %(failed)s > %(share)s * (
                sum by (target) (lago_invoices{%(s)s, status="finalized"})
                - sum by (target) (lago_invoices{%(s)s, status="finalized"} offset %(w)s)
              )
            ||| % {
              failed: failed,
              s: s,
              w: c.failedWindow,
              min: n(c.failedPaymentsMin),
              share: n(c.failedPaymentsShare),
            },
            'for': c.failedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'More invoices have a failed payment.',
              description: '{{ $value | humanize }} more invoices on {{ $labels.target }} have a failed payment than %s ago.' % c.failedWindow,
            },
          },
          {
            alert: 'LagoFailedPaymentRetries',
            // Enough payment requests failed within `failedWindow` and none succeeded.
            local failed = '(sum by (target) (lago_payment_requests{%(s)s, payment_status="failed"}) - sum by (target) (lago_payment_requests{%(s)s, payment_status="failed"} offset %(w)s))' % { s: s, w: c.failedWindow },
            expr: |||
              %(failed)s >= %(min)s
              unless on (target)
              (
                sum by (target) (lago_payment_requests{%(s)s, payment_status="succeeded"})
                - sum by (target) (lago_payment_requests{%(s)s, payment_status="succeeded"} offset %(w)s)
              ) > 0
            ||| % { failed: failed, s: s, w: c.failedWindow, min: n(c.failedRetriesMin) },
            'for': c.failedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Payment retries (payment requests) are failing.',
              description: '{{ $value | humanize }} more payment requests on {{ $labels.target }} have failed than %s ago, and none succeeded.' % c.failedWindow,
            },
          },
          {
            alert: 'LagoOverdueBalanceGrowing',
            // The balance per currency where Lago reports it (plans with analytics); the number
            // of overdue invoices where it does not, so the alert is not silent there.  Only
            // against a balance that was there (no "+Inf%%" from zero), and by a minimum amount.
            expr: |||
              (
                (lago_overdue_balance_cents{%(s)s} - lago_overdue_balance_cents{%(s)s} offset %(w)s)
                / (lago_overdue_balance_cents{%(s)s} offset %(w)s > 0)
                > %(t)s
                and
                lago_overdue_balance_cents{%(s)s} - lago_overdue_balance_cents{%(s)s} offset %(w)s >= %(minCents)s
              )
              or
              (
                (lago_invoices_payment_overdue{%(s)s} - lago_invoices_payment_overdue{%(s)s} offset %(w)s)
                / (lago_invoices_payment_overdue{%(s)s} offset %(w)s > 0)
                > %(t)s
                and
                lago_invoices_payment_overdue{%(s)s} - lago_invoices_payment_overdue{%(s)s} offset %(w)s >= %(min)s
                unless on (target)
                lago_overdue_balance_cents{%(s)s}
              )
            ||| % { s: s, w: c.overdueWindow, t: n(c.overdueGrowthRatio), min: n(c.overdueInvoicesMin), minCents: n(c.overdueMinCents) },
            'for': c.overdueFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The overdue balance of customers is growing.',
              description: '{{ if $labels.currency }}The overdue balance in {{ $labels.currency }}{{ else }}The number of overdue invoices{{ end }} on {{ $labels.target }} grew by {{ $value | humanizePercentage }} in %s.' % c.overdueWindow,
            },
          },
          {
            // Invoice status `failed`: finalization failed (the tax integration rejected the
            // invoice), so it was never sent.  Lago keeps it failed until someone retries it.
            alert: 'LagoInvoicesFailingToFinalize',
            expr: |||
              sum by (target) (lago_invoices{%(s)s, status="failed"})
              - sum by (target) (lago_invoices{%(s)s, status="failed"} offset %(w)s)
              >= %(min)s
            ||| % { s: s, w: c.finalizeFailedWindow, min: n(c.finalizeFailedMin) },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Lago invoices fail to finalize.',
              description: '{{ $value | humanize }} more invoices on {{ $labels.target }} failed to finalize than %s ago: they are not sent, and nobody is billed for them until they are retried.' % c.finalizeFailedWindow,
            },
          },
          {
            // Terminations are a cumulative count: the last day's new ones against the daily
            // average of the seven days before.
            alert: 'LagoSubscriptionTerminationsHigh',
            expr: |||
              (
                sum by (target) (lago_subscriptions{%(s)s, status="terminated"})
                - sum by (target) (lago_subscriptions{%(s)s, status="terminated"} offset 1d)
              )
              > %(f)s * (
                sum by (target) (lago_subscriptions{%(s)s, status="terminated"} offset 1d)
                - sum by (target) (lago_subscriptions{%(s)s, status="terminated"} offset 8d)
              ) / 7
              and
              (
                sum by (target) (lago_subscriptions{%(s)s, status="terminated"})
                - sum by (target) (lago_subscriptions{%(s)s, status="terminated"} offset 1d)
              )
              >= %(min)s
            ||| % { s: s, f: n(c.terminationsFactor), min: n(c.terminationsMin) },
            'for': c.terminationsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Subscriptions are being terminated faster than usual.',
              description: '{{ $value | humanize }} subscriptions on {{ $labels.target }} were terminated in the last day, more than %sx the daily average of the previous week.' % n(c.terminationsFactor),
            },
          },
        ],
      },
    ],
  },
}
