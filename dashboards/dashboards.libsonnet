// Every dashboard, keyed by file name, the way monitoring mixins expose them
// (grafanaDashboards), built from the rule pack's settings.  To change thresholds or
// uids for both alerts and dashboards, override the config once:
//   (import 'rules/mixin.libsonnet') + (import 'dashboards/dashboards.libsonnet') + { _config+:: { redis+: { memoryRatio: 0.8 } } }
// The one-line entry points (<view>.jsonnet) render each with the defaults.
{
  grafanaDashboards+:: {
    [view + '.json']: (import 'views.libsonnet')[view]($._config)
    for view in std.objectFields(import 'views.libsonnet')
  },
}
