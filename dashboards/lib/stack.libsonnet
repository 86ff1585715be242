// What every stack-exporter dashboard shares: selectors with the template variables
// applied, and the instance/target variables.  Settings come from the rule pack's
// config (rules/config.libsonnet), so a dashboard filters and colours exactly what
// the alerts look at.
local g = import 'grafana.libsonnet';
local promql = import '../../rules/lib/promql.libsonnet';
{
  num:: promql.num,

  // `{<selector>, instance=~"$instance", target=~"$target"}` (empty parts dropped).
  sel(selector, extra=[], target=true, instance=true)::
    promql.sel([selector]
               + (if instance then ['instance=~"$instance"'] else [])
               + (if target then ['target=~"$target"'] else [])
               + extra),

  // The exporter's instance (several exporters may watch several stacks).
  instanceVariable(metric, selector, label='Instance', description='')::
    g.queryVariable('instance', label, '%s{%s}' % [metric, selector], 'instance', description=description),

  // Targets (the `name` of a configured target) of the given collectors, on the chosen instances.
  targetVariable(collectors, selector, description='')::
    g.queryVariable(
      'target',
      'Target',
      'stack_exporter_collector_success{%s, collector=~"%s", instance=~"$instance"}' % [selector, std.join('|', collectors)],
      'target',
      description=description,
    ),
}
