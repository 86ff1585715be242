// Which version of the rule pack a Prometheus runs, for dashboards and for "is my fix deployed?".
{
  prometheusRules+:: {
    groups+: [
      {
        name: 'stack-exporter.rulepack.rules',
        rules: [
          {
            record: 'stack_rulepack_info',
            expr: 'vector(1)',
            labels: { version: $._config.rulepackVersion },
          },
        ],
      },
    ],
  },
}
