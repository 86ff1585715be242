// Hosts, from node_exporter.  Rows go from saturation (CPU, memory, disk full) to
// the resources behind it (CPU modes, memory breakdown, disk I/O, network, clock).
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local c = config.node;
  // node_exporter's job has a variable of its own (node_job): hosts are never the exporter's job.
  local node = s.source(config, 'node', c.selector, 'node_uname_info', 'node_exporter job', "node_exporter's scrape job(s).", shared=false);
  local sel(extra=[]) = s.sel(node.selector, extra, target=false);
  local fs = sel([c.fsSelector]);
  local q = g.query;
  local rate(m, extra=[]) = 'rate(%s%s[$__rate_interval])' % [m, sel(extra)];
  local pct(x) = s.num(x * 100) + '%';

  g.dashboard(
    uid=config.dashboardUids.hosts,
    title='Hosts',
    description='Hosts from node_exporter: CPU, memory, disk space and its fill forecast, disk I/O, network and clock.',
    tags=['node'],
    variables=s.jobVariables([node]) + [
      g.queryVariable('instance', 'Instance', 'node_uname_info{%s}' % node.selector, 'instance', description='node_exporter instances (hosts).'),
    ],
    rows=[
      g.row('Saturation', [
        g.gauge('CPU use',
                'CPU time not idle (recording rule instance:node_cpu_utilisation:rate5m). Above %s for %s fires NodeHighCPU.' % [pct(c.cpuRatio), c.cpuFor],
                'percentunit',
                [q('instance:node_cpu_utilisation:rate5m{instance=~"$instance"}', '{{instance}}', instant=true)],
                w=6,
                thresholds=[[c.cpuRatio, 'red']]),
        g.gauge('Memory use',
                'Memory not available to new work (recording rule instance:node_memory_utilisation:ratio). Above %s for %s fires NodeHighMemory.' % [pct(c.memoryRatio), c.memoryFor],
                'percentunit',
                [q('instance:node_memory_utilisation:ratio{instance=~"$instance"}', '{{instance}}', instant=true)],
                w=6,
                thresholds=[[c.memoryRatio, 'red']]),
        g.gauge('Least free filesystem',
                'Free space of the fullest watched filesystem per host. Below %s for %s warns, below %s is critical (NodeFilesystemSpaceLow).' % [pct(c.fsFreeWarning), c.fsFreeFor, pct(c.fsFreeCritical)],
                'percentunit',
                [q('min by (instance) (node_filesystem_avail_bytes%(fs)s / node_filesystem_size_bytes%(fs)s)' % { fs: fs }, '{{instance}}', instant=true)],
                w=6,
                thresholds=[[c.fsFreeCritical, 'orange'], [c.fsFreeWarning, 'green']],
                base='red'),
        g.stat('Uptime',
               'Seconds since boot: a small value means a reboot.',
               's',
               [q('time() - node_boot_time_seconds%s' % sel(), '{{instance}}', instant=true)],
               w=6,
               h=6,
               thresholds=[[0, 'orange'], [3600, 'green']],
               base='orange'),
      ]),
      g.row('CPU', [
        g.timeseries('CPU use',
                     'CPU utilisation per host over time, with the NodeHighCPU threshold.',
                     'percentunit',
                     [q('instance:node_cpu_utilisation:rate5m{instance=~"$instance"}', '{{instance}}')],
                     thresholds=[[c.cpuRatio, 'red']],
                     min=0,
                     max=1),
        g.timeseries('CPU time by mode',
                     'Share of CPU time per mode, averaged over the cores: iowait points at disks, steal at a noisy neighbour.',
                     'percentunit',
                     [q('sum by (instance, mode) (%s) / on (instance) group_left () count by (instance) (node_cpu_seconds_total%s)' % [rate('node_cpu_seconds_total', ['mode!="idle"']), sel(['mode="idle"'])], '{{instance}} {{mode}}')],
                     stack=true,
                     min=0),
        g.timeseries('Load per core',
                     'Load averages divided by the number of cores: above 1 means work is queuing.',
                     'short',
                     [
                       q('node_load1%s / on (instance) count by (instance) (node_cpu_seconds_total%s)' % [sel(), sel(['mode="idle"'])], '{{instance}} 1m'),
                       q('node_load15%s / on (instance) count by (instance) (node_cpu_seconds_total%s)' % [sel(), sel(['mode="idle"'])], '{{instance}} 15m'),
                     ],
                     thresholds=[[1, 'orange']]),
      ]),
      g.row('Memory', [
        g.timeseries('Memory',
                     'Total, available, cached and buffered memory.',
                     'bytes',
                     [
                       q('node_memory_MemTotal_bytes%s' % sel(), '{{instance}} total'),
                       q('node_memory_MemAvailable_bytes%s' % sel(), '{{instance}} available'),
                       q('node_memory_Cached_bytes%s' % sel(), '{{instance}} cached'),
                       q('node_memory_Buffers_bytes%s' % sel(), '{{instance}} buffers'),
                     ],
                     fill=0),
        g.timeseries('Swap used',
                     'Swap in use: steady growth means memory pressure.',
                     'bytes',
                     [q('node_memory_SwapTotal_bytes%(s)s - node_memory_SwapFree_bytes%(s)s' % { s: sel() }, '{{instance}}')]),
        g.timeseries('OOM kills',
                     'Processes the kernel killed for lack of memory in the last 5 minutes; any fires NodeOOMKill.',
                     'short',
                     [q('increase(node_vmstat_oom_kill%s[5m])' % sel(), '{{instance}}')],
                     thresholds=[[1, 'red']],
                     min=0),
      ]),
      g.row('Disk', [
        g.timeseries('Free space',
                     'Free fraction of each watched filesystem, with the NodeFilesystemSpaceLow thresholds.',
                     'percentunit',
                     [q('node_filesystem_avail_bytes%(fs)s / node_filesystem_size_bytes%(fs)s' % { fs: fs }, '{{instance}} {{mountpoint}}')],
                     thresholds=[[c.fsFreeCritical, 'red'], [c.fsFreeWarning, 'orange']],
                     min=0,
                     max=1),
        g.timeseries('Free space forecast (%s h and %s h)' % [s.num(c.fsPredictHours), s.num(c.fsPredictWarningHours)],
                     'Bytes free in %s and in %s hours at the rate of the last %s (predict_linear). Below zero in %s h while under %s free for %s fires NodeFilesystemFillingUp as a warning; below zero in %s h while under %s free, as critical.' % [s.num(c.fsPredictHours), s.num(c.fsPredictWarningHours), c.fsPredictWindow, s.num(c.fsPredictWarningHours), pct(c.fsPredictWarningMaxFree), c.fsPredictFor, s.num(c.fsPredictHours), pct(c.fsPredictMaxFree)],
                     'bytes',
                     [
                       q('predict_linear(node_filesystem_avail_bytes%s[%s], %s * 3600)' % [fs, c.fsPredictWindow, s.num(h)], '{{instance}} {{mountpoint}} in %s h' % s.num(h))
                       for h in [c.fsPredictHours, c.fsPredictWarningHours]
                     ],
                     thresholds=[[0, 'green']],
                     base='red'),
        g.timeseries('Free inodes',
                     'Free fraction of inodes; below %s for %s fires NodeFilesystemInodesLow.' % [pct(c.inodesFreeRatio), c.inodesFor],
                     'percentunit',
                     [q('node_filesystem_files_free%(fs)s / node_filesystem_files%(fs)s' % { fs: fs }, '{{instance}} {{mountpoint}}')],
                     thresholds=[[c.inodesFreeRatio, 'green']],
                     base='red',
                     min=0,
                     max=1),
        g.timeseries('Disk busy',
                     'Share of time each disk was busy with I/O: near 1 the disk is the bottleneck.',
                     'percentunit',
                     [q(rate('node_disk_io_time_seconds_total'), '{{instance}} {{device}}')],
                     w=12,
                     min=0),
        g.timeseries('Disk throughput',
                     'Bytes read (positive) and written (negative) per second.',
                     'Bps',
                     [
                       q(rate('node_disk_read_bytes_total'), '{{instance}} {{device}} read'),
                       q('-' + rate('node_disk_written_bytes_total'), '{{instance}} {{device}} written'),
                     ],
                     w=12),
      ]),
      g.row('Network and clock', [
        g.timeseries('Network traffic',
                     'Bytes received (positive) and sent (negative) per second per interface.',
                     'Bps',
                     [
                       q(rate('node_network_receive_bytes_total', ['device!="lo"']), '{{instance}} {{device}} in'),
                       q('-' + rate('node_network_transmit_bytes_total', ['device!="lo"']), '{{instance}} {{device}} out'),
                     ]),
        g.timeseries('Network errors',
                     'Packets with errors, of all packets, per interface. Above %s for %s fires NodeNetworkErrors.' % [pct(c.networkErrorRatio), c.networkErrorsFor],
                     'percentunit',
                     [q(|||
                       (%(rerr)s + %(terr)s)
                       /
                       (%(rpk)s + %(tpk)s)
                     ||| % {
                       rerr: rate('node_network_receive_errs_total'),
                       terr: rate('node_network_transmit_errs_total'),
                       rpk: rate('node_network_receive_packets_total'),
                       tpk: rate('node_network_transmit_packets_total'),
                     }, '{{instance}} {{device}}')],
                     thresholds=[[c.networkErrorRatio, 'red']],
                     min=0),
        g.timeseries('Clock offset',
                     'Offset of the clock from NTP time. Beyond ±%ss for %s fires NodeClockSkew.' % [s.num(c.clockSkewSeconds), c.clockSkewFor],
                     's',
                     [q('node_timex_offset_seconds%s' % sel(), '{{instance}}')],
                     thresholds=[[-c.clockSkewSeconds, 'green'], [c.clockSkewSeconds, 'red']],
                     base='red'),
      ]),
    ],
  )
