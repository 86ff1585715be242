// The stack-exporter mixin: alerts, recording rules and dashboards from one import, as
// monitoring mixins expose them (prometheusAlerts, prometheusRules, grafanaDashboards).
// This file only puts the parts together: settings live in config.libsonnet, rules in
// alerts/ and recording/ (one file per source, named by its config key), helpers in lib/,
// the dashboards in ../dashboards/.
local links = import 'lib/links.libsonnet';

(import 'config.libsonnet')
+ (import 'alerts/app.libsonnet')
+ (import 'alerts/http_probes.libsonnet')
+ (import 'alerts/node.libsonnet')
+ (import 'alerts/postgres.libsonnet')
+ (import 'alerts/pgbouncer.libsonnet')
+ (import 'alerts/redis.libsonnet')
+ (import 'alerts/lago.libsonnet')
+ (import 'alerts/directus.libsonnet')
+ (import 'alerts/email.libsonnet')
+ (import 'alerts/statuspages.libsonnet')
+ (import 'alerts/email_domains.libsonnet')
+ (import 'alerts/exporter.libsonnet')
+ (import 'alerts/rum.libsonnet')
+ (import 'alerts/email_webhooks.libsonnet')
+ (import 'recording/rulepack.libsonnet')
+ (import 'recording/app.libsonnet')
+ (import 'recording/node.libsonnet')
+ (import 'recording/postgres.libsonnet')
+ (import 'recording/compat.libsonnet')
+ (import 'recording/email.libsonnet')
+ (import 'recording/rum.libsonnet')
+ (import 'recording/email_webhooks.libsonnet')
+ (import '../dashboards/dashboards.libsonnet')
+ {
  // Applied last, so it sees every alert of every file above.
  prometheusAlerts+:: { groups: links.addLinks($._config, super.groups) },

  // The same rules as one Kubernetes PrometheusRule for prometheus-operator.
  prometheusRuleObject:: {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'stack-exporter-rules',
      labels: $._config.prometheusRuleLabels,
      annotations: { 'stack-exporter/rulepack-version': $._config.rulepackVersion },
    },
    spec: { groups: $.prometheusRules.groups + $.prometheusAlerts.groups },
  },
}
