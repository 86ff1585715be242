"""stack-exporter: one Prometheus exporter for a small SaaS stack."""

__version__ = "0.1.0"
