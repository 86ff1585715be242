(import 'overview.libsonnet')((import '../rules/config.libsonnet')._config)
