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
            alert: 'NodeDown',
            expr: 'up{%s} == 0' % c.selector,
            'for': c.downFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus cannot scrape a host: it is down, unreachable or node_exporter stopped.',
              description: 'The scrape of {{ $labels.instance }} ({{ $labels.job }}) has failed for %s; every other alert about this host is blind.' % c.downFor,
            },
          },
          {
            alert: 'NodeAbsent',
            expr: 'absent(up{%s})' % c.selector,
            'for': c.absentFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Prometheus has no host target at all.',
              description: 'Prometheus has known no target of job {{ $labels.job }} (selector {%s}) for %s: service discovery or the scrape config lost every host.' % [c.selector, c.absentFor],
            },
          },
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
            ||| % { fs: fs, w: c.fsPredictWindow, h: n(t.hours), max: n(t.maxFree) },
            'for': c.fsPredictFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A filesystem is predicted to fill up within %s.' % t.within,
              description: '{{ $labels.mountpoint }} on {{ $labels.instance }} will be full within %s hours at the rate of the last %s; {{ $value | humanizePercentage }} is free now (threshold %s).' % [n(t.hours), c.fsPredictWindow, promql.pct(t.maxFree)],
            },
          }
          for t in [
            { hours: c.fsPredictWarningHours, maxFree: c.fsPredictWarningMaxFree, severity: 'warning', within: 'a day' },
            { hours: c.fsPredictHours, maxFree: c.fsPredictMaxFree, severity: 'critical', within: 'hours' },
          ]
        ] + [
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
          {
            // The average number of IO requests in flight or queued (node-mixin's measure).
            alert: 'NodeDiskIOSaturated',
            expr: 'rate(node_disk_io_time_weighted_seconds_total{%s, %s}[5m]) > %s' % [c.selector, c.diskDeviceSelector, n(c.diskIOQueueDepth)],
            'for': c.diskIOFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A disk is saturated: IO requests queue up.',
              description: 'The IO queue of {{ $labels.device }} on {{ $labels.instance }} has averaged {{ $value | humanize }} requests for %s (threshold %s).' % [c.diskIOFor, n(c.diskIOQueueDepth)],
            },
          },
          {
            alert: 'NodeConntrackTableFilling',
            expr: |||
              node_nf_conntrack_entries{%(s)s} / node_nf_conntrack_entries_limit{%(s)s} > %(t)s
            ||| % { s: c.selector, t: n(c.conntrackRatio) },
            'for': c.conntrackFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The connection tracking table of a host is filling up.',
              description: '{{ $value | humanizePercentage }} of the conntrack table of {{ $labels.instance }} is in use (threshold %s); when it is full the kernel drops new connections.' % promql.pct(c.conntrackRatio),
            },
          },
        ] + [
          {
            alert: 'NodeFileDescriptorsRunningOut',
            expr: |||
              node_filefd_allocated{%(s)s} / node_filefd_maximum{%(s)s} > %(t)s
            ||| % { s: c.selector, t: n(t.ratio) },
            'for': c.fileDescriptorsFor,
            labels: { severity: t.severity },
            annotations: {
              summary: 'A host is running out of file descriptors.',
              description: '{{ $value | humanizePercentage }} of the kernel file handles of {{ $labels.instance }} are allocated (threshold %s); at the maximum every open() and accept() fails.' % promql.pct(t.ratio),
            },
          }
          for t in [{ ratio: c.fileDescriptorsWarning, severity: 'warning' }, { ratio: c.fileDescriptorsCritical, severity: 'critical' }]
        ] + [
          {
            // node_exporter's systemd collector (--collector.systemd); without it this never fires.
            alert: 'NodeSystemdUnitFailed',
            expr: 'node_systemd_unit_state{%s, %s} == 1' % [c.selector, c.systemdSelector],
            'for': c.systemdFailedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A systemd unit of a host has failed.',
              description: 'The systemd unit {{ $labels.name }} on {{ $labels.instance }} is in state failed.',
            },
          },
        ],
      },
    ],
  },
}
