(import 'mixin.libsonnet').prometheusCompatRules
