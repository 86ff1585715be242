(import 'hosts.libsonnet')((import '../rules/config.libsonnet')._config)
