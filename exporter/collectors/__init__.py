"""The registration table: every source, its config section, collector and docs.

One row per source.  The config loader, the ``--collector.<name>`` flags, the
landing page and the metrics-reference test all read this table, so adding a
source means adding its module and one row here.  Modules are imported only
when their section is configured: an exporter watching only Redis never loads
asyncpg.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from exporter.collectors.base import Collector


@dataclass(frozen=True)
class SourceSpec:
    key: str  # config section, collector label value and flag name
    module: str  # module defining COLLECTOR (a Collector subclass)
    summary: str


SOURCES: dict[str, SourceSpec] = {
    spec.key: spec
    for spec in (
        SourceSpec("redis", "exporter.collectors.redis", "Redis servers, replicas, cluster nodes and sentinels"),
        SourceSpec(
            "postgres",
            "exporter.collectors.postgres",
            "PostgreSQL: connections, locks, replication, statements, tables",
        ),
        SourceSpec(
            "pgbouncer",
            "exporter.collectors.pgbouncer",
            "PgBouncer pools, clients, servers and traffic (admin console)",
        ),
        SourceSpec("lago", "exporter.collectors.lago", "Lago billing: invoices, subscriptions, payment requests"),
        SourceSpec("directus", "exporter.collectors.directus", "Directus CMS: health, version, item counts"),
        SourceSpec("statuspages", "exporter.collectors.statuspage", "Statuspage-style provider status pages"),
        SourceSpec("sendgrid", "exporter.collectors.email.sendgrid", "SendGrid email stats"),
        SourceSpec("mailgun", "exporter.collectors.email.mailgun", "Mailgun email stats (US and EU regions)"),
        SourceSpec("postmark", "exporter.collectors.email.postmark", "Postmark email stats and reputation"),
        SourceSpec("resend", "exporter.collectors.email.resend", "Resend: domain verification, recent emails' events"),
        SourceSpec("ses", "exporter.collectors.email.ses", "AWS SES: quota, send statistics, account, reputation"),
        SourceSpec(
            "email_domains", "exporter.collectors.dns_auth", "Email authentication in DNS: SPF, DKIM, DMARC, MX"
        ),
        SourceSpec(
            "http_probes",
            "exporter.collectors.http_probe",
            "HTTP probes: status, latency phases, TLS expiry, CDN cache",
        ),
    )
}

# Sections that are one mapping of shared settings rather than a list of targets:
# key -> "module:ClassName".
SETTINGS: dict[str, str] = {
    "dns_resolver": "exporter.collectors.dns_auth:DnsResolverSettings",
}


@cache
def load_source(key: str) -> type[Collector[Any]]:
    module = importlib.import_module(SOURCES[key].module)
    collector: type[Collector[Any]] = module.COLLECTOR
    return collector


@cache
def load_settings_class(key: str) -> type[Any]:
    module_name, _, cls_name = SETTINGS[key].partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), cls_name)
    return cls
