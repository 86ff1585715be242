// Billing (Lago): the API and the trends of failed payments, overdue balance and churn.
// Lago's counts are gauges (totals of list endpoints), so trends are differences over time.
local n = (import '../lib/promql.libsonnet').num;
{
  prometheusAlerts+:: {
    local c = $._config.lago,
    local s = c.selector,
    groups+: [
      {
        name: 'stack-exporter.lago',
        dashboard:: 'billing',
        rules: [
          {
            alert: 'LagoDown',
            expr: 'lago_up{%s} == 0' % s,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'The Lago billing API does not answer.',
              description: 'The exporter cannot reach the Lago API {{ $labels.target }}.',
            },
          },
          {
            alert: 'LagoFailedPaymentsIncreasing',
            expr: |||
              sum by (target) (lago_invoices{%(s)s, payment_status="failed"})
              - sum by (target) (lago_invoices{%(s)s, payment_status="failed"} offset %(w)s)
              > %(t)s
            ||| % { s: s, w: c.failedWindow, t: n(c.failedPaymentsIncrease) },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'More invoices have a failed payment.',
              description: '{{ $value | humanize }} more invoices on {{ $labels.target }} have a failed payment than %s ago.' % c.failedWindow,
            },
          },
          {
            alert: 'LagoFailedPaymentRetries',
            expr: |||
              sum by (target) (lago_payment_requests{%(s)s, payment_status="failed"})
              - sum by (target) (lago_payment_requests{%(s)s, payment_status="failed"} offset %(w)s)
              > %(t)s
            ||| % { s: s, w: c.failedWindow, t: n(c.failedRetriesIncrease) },
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Payment retries (payment requests) are failing.',
              description: '{{ $value | humanize }} more payment requests on {{ $labels.target }} have failed than %s ago.' % c.failedWindow,
            },
          },
          {
            alert: 'LagoOverdueBalanceGrowing',
            expr: |||
              (lago_overdue_balance_cents{%(s)s} - lago_overdue_balance_cents{%(s)s} offset %(w)s)
              / lago_overdue_balance_cents{%(s)s} offset %(w)s
              > %(t)s
            ||| % { s: s, w: c.overdueWindow, t: n(c.overdueGrowthRatio) },
            'for': c.overdueFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The overdue balance of customers is growing.',
              description: 'The overdue balance in {{ $labels.currency }} on {{ $labels.target }} grew by {{ $value | humanizePercentage }} in %s.' % c.overdueWindow,
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
