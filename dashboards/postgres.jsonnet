(import 'postgres.libsonnet')((import '../rules/config.libsonnet')._config)
