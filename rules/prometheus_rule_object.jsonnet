(import 'mixin.libsonnet').prometheusRuleObject
