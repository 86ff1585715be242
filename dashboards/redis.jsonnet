(import 'redis.libsonnet')((import '../rules/config.libsonnet')._config)
