"""stack-exporter: one Prometheus exporter for a small SaaS stack."""

__version__ = "0.2.0"
