"""Email authentication in DNS (the ``email_domains`` source): one module per concern.

* :mod:`.resolver`: the ``dns_resolver`` settings, the cached resolver, what a failure is;
* :mod:`.spf`, :mod:`.dkim`, :mod:`.dmarc`: the RFC parsers, each usable without DNS;
* :mod:`.taglist`: the ``tag=value`` syntax DKIM, DMARC, MTA-STS and TLS-RPT share;
* :mod:`.collector`: the target config and the collector that asks and builds the families.
"""

from __future__ import annotations

from exporter.collectors.email_domains.collector import COLLECTOR, EmailDomain
from exporter.collectors.email_domains.dkim import check_dkim
from exporter.collectors.email_domains.dmarc import check_dmarc
from exporter.collectors.email_domains.resolver import DnsResolverSettings
from exporter.collectors.email_domains.spf import parse_spf

__all__ = ["COLLECTOR", "DnsResolverSettings", "EmailDomain", "check_dkim", "check_dmarc", "parse_spf"]
