// PgBouncer's panels (the `pgbouncer` source).  Not a view of its own: its pools sit in
// front of the PostgreSQL servers, so postgres.libsonnet shows these panels in its rows.
local g = import 'lib/grafana.libsonnet';
local s = import 'lib/stack.libsonnet';

function(config)
  local b = config.pgbouncer;
  local source = s.source(config, 'pgbouncer', b.selector, 'pgbouncer_up', 'PgBouncer job', 'The scrape job(s) of the exporter watching PgBouncer.');
  local bsel(extra=[]) = s.sel(source.selector, extra);
  local q = g.query;
  {
    // For the view's job variables.
    source: source,
    // The Availability row.
    availability: [
      g.stat('PgBouncer up',
             'Whether the exporter could query the PgBouncer admin console (pgbouncer_up). DOWN for %s fires PgBouncerDown.' % b.downFor,
             'none',
             [q('pgbouncer_up%s' % bsel(), '{{target}}', instant=true)],
             w=6,
             mappings=g.upMappings(),
             base='red',
             thresholds=[[1, 'green']]),
    ],
    // The Connections and pools row.
    pools: [
      g.timeseries('PgBouncer clients waiting',
                   'Clients queued for a server connection, per pool. Any for %s fires PgBouncerClientsWaiting: the pool is too small or queries too slow.' % b.clientsWaitingFor,
                   'short',
                   [q('pgbouncer_pools_client_waiting_connections%s' % bsel(), '{{target}} {{database}}/{{user}}')],
                   w=8,
                   thresholds=[[1, 'orange']],
                   min=0),
      g.timeseries('PgBouncer longest wait',
                   'How long the oldest waiting client of each pool has waited. Above %ss for %s fires PgBouncerPoolExhausted.' % [s.num(b.maxWaitSeconds), b.maxWaitFor],
                   's',
                   [q('pgbouncer_pools_client_maxwait_seconds%s' % bsel(), '{{target}} {{database}}/{{user}}')],
                   w=8,
                   thresholds=[[b.maxWaitSeconds, 'red']],
                   min=0),
      g.timeseries('PgBouncer server connections',
                   'Server connections per pool by state, against default_pool_size.',
                   'short',
                   [
                     q('pgbouncer_pools_server_active_connections%s' % bsel(), '{{target}} {{database}}/{{user}} active'),
                     q('pgbouncer_pools_server_idle_connections%s' % bsel(), '{{target}} {{database}}/{{user}} idle'),
                     q('pgbouncer_config_default_pool_size%s' % bsel(), '{{target}} default_pool_size'),
                   ],
                   w=8,
                   fill=0),
    ],
  }
