// The one list of dashboards.  rules/mixin.libsonnet mixes this in, so its
// grafanaDashboards holds every view, keyed by file name, built from the same _config
// as the alerts: override it once for both, e.g.
//   (import 'rules/mixin.libsonnet') + { _config+:: { redis+: { memoryRatio: 0.8 } } }
// Each view is a function of that _config; scripts/generate_dashboards.py writes them
// to generated/<view>.json.
local views = {
  overview: import 'overview.libsonnet',
  redis: import 'redis.libsonnet',
  postgres: import 'postgres.libsonnet',
  billing: import 'billing.libsonnet',
  email: import 'email.libsonnet',
  hosts: import 'hosts.libsonnet',
  exporter: import 'exporter.libsonnet',
  rum: import 'rum.libsonnet',
};

{
  grafanaDashboards+:: {
    [view + '.json']: views[view]($._config)
    for view in std.objectFields(views)
  },
}
