// Connection use as a fraction of what applications may open, for the alert and the dashboard.
{
  prometheusRules+:: {
    local c = $._config.postgres,
    groups+: [
      {
        name: 'stack-exporter.postgres.rules',
        rules: [
          {
            // numbackends counts client backends only, which is what max_connections limits
            // (background workers and WAL senders have their own slots).
            record: 'target:pg_connections:ratio',
            expr: |||
              sum by (target) (pg_stat_database_numbackends{%(s)s})
              /
              max by (target) (pg_settings_max_connections{%(s)s} - pg_settings_superuser_reserved_connections{%(s)s})
            ||| % { s: c.selector },
          },
        ],
      },
    ],
  },
}
