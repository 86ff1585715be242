// Hosts, from node_exporter.
local promql = import '../lib/promql.libsonnet';
local n = promql.num;
{
  prometheusAlerts+:: {
    local c = $._config.node,
    local fs = '%s, %s' % [c.selector, c.fsSelector],
    groups+: [
      {
        name: 'stack-exporter.node',
        dashboard:: 'hosts',
        rules: [
          {
            alert: 'NodeHighCPU',
            expr: 'instance:node_cpu_utilisation:rate5m > %s' % n(c.cpuRatio),
            'for': c.cpuFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A host has been busy on CPU for a long time.',
              description: 'CPU use on {{ $labels.instance }} is {{ $value | humanizePercentage }} (threshold %s).' % promql.pct(c.cpuRatio),
            },
          },
          {
            alert: 'NodeHighMemory',
            expr: 'instance:node_memory_utilisation:ratio > %s' % n(c.memoryRatio),
            'for': c.memoryFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A host is running out of memory.',
              description: 'Memory use on {{ $labels.instance }} is {{ $value | humanizePercentage }} (threshold %s).' % promql.pct(c.memoryRatio),
            },
          },
        ] + [
          {
            alert: 'NodeFilesystemSpaceLow',
            expr: |||
              node_filesystem_avail_bytes{%(fs)s} / node_filesystem_size_bytes{%(fs)s} < %(t)s
              and
              node_filesystem_readonly{%(fs)s} == 0
            ||| % { fs: fs, t: n(t.ratio) },
            'for': c.fsFreeFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A filesystem is almost full.',
              description: 'Only {{ $value | humanizePercentage }} of {{ $labels.mountpoint }} on {{ $labels.instance }} is free (threshold %s).' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: c.fsFreeWarning, severity: 'warning' }, { ratio: c.fsFreeCritical, severity: 'critical' }]
        ] + [
          {
            alert: 'NodeFilesystemFillingUp',
            expr: |||
              node_filesystem_avail_bytes{%(fs)s} / node_filesystem_size_bytes{%(fs)s} < %(max)s
              and
              predict_linear(node_filesystem_avail_bytes{%(fs)s}[%(w)s], %(h)s * 3600) < 0
              and
              node_filesystem_readonly{%(fs)s} == 0
            ||| % { fs: fs, w: c.fsPredictWindow, h: n(c.fsPredictHours), max: n(c.fsPredictMaxFree) },
            'for': c.fsPredictFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A filesystem is predicted to fill up within hours.',
              description: '{{ $labels.mountpoint }} on {{ $labels.instance }} will be full within %s hours at the rate of the last %s; {{ $value | humanizePercentage }} is free now.' % [n(c.fsPredictHours), c.fsPredictWindow],
            },
          },
          {
            alert: 'NodeFilesystemInodesLow',
            expr: |||
              node_filesystem_files_free{%(fs)s} / node_filesystem_files{%(fs)s} < %(t)s
              and
              node_filesystem_readonly{%(fs)s} == 0
            ||| % { fs: fs, t: n(c.inodesFreeRatio) },
            'for': c.inodesFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A filesystem is running out of inodes.',
              description: 'Only {{ $value | humanizePercentage }} of the inodes of {{ $labels.mountpoint }} on {{ $labels.instance }} are free.',
            },
          },
          {
            alert: 'NodeFilesystemReadOnly',
            expr: 'node_filesystem_readonly{%s} == 1' % fs,
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A filesystem was remounted read-only.',
              description: '{{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} is read-only.',
            },
          },
          {
            alert: 'NodeOOMKill',
            expr: 'increase(node_vmstat_oom_kill{%s}[5m]) > 0' % c.selector,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The kernel killed a process for lack of memory.',
              description: '{{ $value | humanize }} processes were OOM-killed on {{ $labels.instance }} in the last 5 minutes.',
            },
          },
          {
            alert: 'NodeNetworkErrors',
            expr: |||
              (
                rate(node_network_receive_errs_total{%(s)s}[5m]) + rate(node_network_transmit_errs_total{%(s)s}[5m])
              )
              /
              (
                rate(node_network_receive_packets_total{%(s)s}[5m]) + rate(node_network_transmit_packets_total{%(s)s}[5m])
              )
              > %(t)s
            ||| % { s: c.selector, t: n(c.networkErrorRatio) },
            'for': c.networkErrorsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A network interface is failing to send or receive packets.',
              description: '{{ $value | humanizePercentage }} of the packets on {{ $labels.device }} of {{ $labels.instance }} have errors.',
            },
          },
          {
            alert: 'NodeClockSkew',
            expr: 'abs(node_timex_offset_seconds{%s}) > %s' % [c.selector, n(c.clockSkewSeconds)],
            'for': c.clockSkewFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A host clock is off.',
              description: 'The clock of {{ $labels.instance }} is {{ $value | humanizeDuration }} off (threshold %ss).' % n(c.clockSkewSeconds),
            },
          },
          {
            // maxerror reaches 16 s when the kernel has not been told the time for a long while.
            alert: 'NodeClockNotSynchronising',
            expr: |||
              min_over_time(node_timex_sync_status{%(s)s}[5m]) == 0
              and
              node_timex_maxerror_seconds{%(s)s} >= 16
            ||| % { s: c.selector },
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A host clock is not synchronised.',
              description: 'NTP is not synchronising the clock of {{ $labels.instance }}.',
            },
          },
        ],
      },
    ],
  },
}
