"""The source registry: one row per source, and everything about it.

A row names the source's config key (also its ``collector`` label value, its
``--collector.<key>`` flag and the name of its docs page, alerts file and test
file, through ``page``), the module defining its collector class, and the
single-mapping settings section it declares, if any.  The config loader, the
flags, the landing page and the completeness tests all read this table, so
adding a source means adding its module and one row here.

Modules are imported only when their section is configured: an exporter
watching only Redis never loads asyncpg.  Validating a section needs only its
target class (``target``), which a source module defines without importing its
client library: the library loads with the collector (``COLLECTOR``, resolved
lazily by the package) or inside the collector's methods, so ``--check-config``
on every section loads no Redis, PostgreSQL, DNS or AWS client.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from exporter.collectors.base import Collector
from exporter.schema import TargetConfig


@dataclass(frozen=True)
class SourceSpec:
    key: str  # config section, collector label value and flag name
    module: str  # module defining COLLECTOR (a Collector subclass)
    summary: str
    # Class name, in module, of a target's config: the schema, loaded without the collector.
    target: str = ""
    # Name of the docs page (docs/metrics/<page>.md), alerts file and collector test
    # file; sources that share them (the email providers) share a page.
    page: str = ""
    # A single-mapping settings section this source declares: (section, class name in module).
    settings_section: tuple[str, str] | None = None

    @property
    def docs_page(self) -> str:
        return self.page or self.key

    @property
    def settings(self) -> str | None:
        return self.settings_section[0] if self.settings_section else None

    def collector(self) -> type[Collector[Any]]:
        return _load_collector(self.module)

    def target_class(self) -> type[TargetConfig]:
        """The target's config class, for validation; imports no client library."""
        if not self.target:
            raise LookupError(f"source {self.key} names no target class")
        cls: type[TargetConfig] = getattr(importlib.import_module(self.module), self.target)
        return cls

    def settings_class(self) -> type[Any]:
        if self.settings_section is None:
            raise LookupError(f"source {self.key} declares no settings section")
        cls: type[Any] = getattr(importlib.import_module(self.module), self.settings_section[1])
        return cls


@cache
def _load_collector(module_name: str) -> type[Collector[Any]]:
    collector: type[Collector[Any]] = importlib.import_module(module_name).COLLECTOR
    return collector


SOURCES: dict[str, SourceSpec] = {
    spec.key: spec
    for spec in (
        SourceSpec(
            "redis",
            "exporter.collectors.redis",
            "Redis servers, replicas, cluster nodes and sentinels",
            target="RedisTarget",
        ),
        SourceSpec(
            "postgres",
            "exporter.collectors.postgres",
            "PostgreSQL: connections, locks, replication, statements, tables",
            target="PostgresTarget",
        ),
        SourceSpec(
            "pgbouncer",
            "exporter.collectors.pgbouncer",
            "PgBouncer pools, clients, servers and traffic (admin console)",
            target="PgBouncerTarget",
        ),
        SourceSpec(
            "lago",
            "exporter.collectors.lago",
            "Lago billing: invoices, subscriptions, payment requests",
            target="LagoTarget",
        ),
        SourceSpec(
            "directus",
            "exporter.collectors.directus",
            "Directus CMS: health, version, item counts",
            target="DirectusTarget",
        ),
        SourceSpec(
            "statuspages",
            "exporter.collectors.statuspages",
            "Statuspage-style provider status pages",
            target="StatuspageTarget",
        ),
        SourceSpec(
            "sendgrid",
            "exporter.collectors.email.sendgrid",
            "SendGrid email stats",
            target="SendgridTarget",
            page="email",
        ),
        SourceSpec(
            "mailgun",
            "exporter.collectors.email.mailgun",
            "Mailgun email stats (US and EU regions)",
            target="MailgunTarget",
            page="email",
        ),
        SourceSpec(
            "postmark",
            "exporter.collectors.email.postmark",
            "Postmark email stats and reputation",
            target="PostmarkTarget",
            page="email",
        ),
        SourceSpec(
            "resend",
            "exporter.collectors.email.resend",
            "Resend: domain verification, recent emails' events",
            target="ResendTarget",
            page="email",
        ),
        SourceSpec(
            "ses",
            "exporter.collectors.email.ses",
            "AWS SES: quota, send statistics, account, reputation",
            target="SesTarget",
            page="email",
        ),
        SourceSpec(
            "email_domains",
            "exporter.collectors.email_domains",
            "Email authentication in DNS: SPF, DKIM, DMARC, MX",
            target="EmailDomain",
            settings_section=("dns_resolver", "DnsResolverSettings"),
        ),
        SourceSpec(
            "http_probes",
            "exporter.collectors.http_probes",
            "HTTP probes: status, latency phases, TLS expiry, CDN cache",
            target="HttpProbe",
        ),
    )
}

# Single-mapping settings sections (``dns_resolver``) -> the source declaring each;
# derived from the rows above, so the two cannot disagree.
SETTINGS: dict[str, SourceSpec] = {spec.settings: spec for spec in SOURCES.values() if spec.settings}
