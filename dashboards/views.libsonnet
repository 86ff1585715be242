// Each view is a function of the rule pack's _config.
{
  overview: import 'overview.libsonnet',
  redis: import 'redis.libsonnet',
  postgres: import 'postgres.libsonnet',
  billing: import 'billing.libsonnet',
  email: import 'email.libsonnet',
  hosts: import 'hosts.libsonnet',
  exporter: import 'exporter.libsonnet',
}
