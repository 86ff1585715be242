(import 'mixin.libsonnet').prometheusAlerts
