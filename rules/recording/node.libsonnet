// Host utilisation ratios, named as node-mixin names them so its dashboards can reuse them.
{
  prometheusRules+:: {
    local c = $._config.node,
    groups+: [
      {
        name: 'stack-exporter.node.rules',
        rules: [
          {
            record: 'instance:node_cpu_utilisation:rate5m',
            // Idle, iowait and steal are time the CPU was not working for this host.
            expr: '1 - avg by (instance) (sum by (instance, cpu) (rate(node_cpu_seconds_total{%s, mode=~"idle|iowait|steal"}[5m])))' % c.selector,
          },
          {
            record: 'instance:node_memory_utilisation:ratio',
            expr: '1 - node_memory_MemAvailable_bytes{%(s)s} / node_memory_MemTotal_bytes{%(s)s}' % { s: c.selector },
          },
        ],
      },
    ],
  },
}
