(import 'billing.libsonnet')((import '../rules/config.libsonnet')._config)
