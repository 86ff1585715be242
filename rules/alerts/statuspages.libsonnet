// Incidents the providers' status pages report (the `statuspages` source).  Its settings
// (statuspageSelector, incidentFor) stay under _config.email, where overrides expect them.
{
  prometheusAlerts+:: {
    local c = $._config.email,
    groups+: [
      {
        name: 'stack-exporter.statuspages',
        dashboard:: 'email',
        rules: [
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
        ],
      },
    ],
  },
}
