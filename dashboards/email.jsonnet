(import 'email.libsonnet')((import '../rules/config.libsonnet')._config)
