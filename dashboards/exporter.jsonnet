(import 'exporter.libsonnet')((import '../rules/config.libsonnet')._config)
