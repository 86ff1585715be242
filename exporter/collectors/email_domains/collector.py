"""The email_domains collector: one domain's SPF, DKIM, DMARC, MX, MTA-STS and TLS-RPT per scrape.

What a mailbox provider sees when it checks the domain.  A sample of the
exposition (target label added by the engine)::

    email_dns_up{target="example.com"} 1.0
    email_dns_spf_records{target="example.com"} 1.0
    email_dns_spf_valid{target="example.com"} 1.0
    email_dns_spf_lookups{target="example.com"} 4.0
    email_dns_spf_void_lookups{target="example.com"} 0.0
    email_dns_spf_all_qualifier{target="example.com",qualifier="fail"} 1.0
    email_dns_spf_expected_include{target="example.com",include="_spf.google.com"} 1.0
    email_dns_dkim_valid{target="example.com",selector="s1"} 1.0
    email_dns_dkim_key_length{target="example.com",selector="s1"} 2048.0
    email_dns_dmarc_policy{target="example.com",policy="reject"} 1.0
    email_dns_mx_records{target="example.com"} 2.0
    email_dns_lookup_duration_seconds{target="example.com"} 0.012

A lookup that gets no answer (timeout, SERVFAIL, REFUSED) fails the whole
collection for the domain (``email_dns_up 0``) rather than reporting records
missing; see :mod:`.resolver` for the cache and what counts as missing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.email_domains.dkim import DKIM_KEY_TYPES, DkimResult, check_dkim
from exporter.collectors.email_domains.dmarc import ALIGNMENT_MODES, DMARC_POLICIES, DmarcResult, check_dmarc
from exporter.collectors.email_domains.resolver import CachingResolver, DnsFailure, DnsResolverSettings
from exporter.collectors.email_domains.spf import SPF_ALL_STATES, SpfChecker, SpfResult
from exporter.collectors.email_domains.taglist import is_tagged
from exporter.schema import TargetConfig

_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _bad_domain(name: str) -> str | None:
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        return f"{name!r} is not a domain name"
    return None


@dataclass(frozen=True, kw_only=True)
class EmailDomain(TargetConfig):
    domain: str
    dkim_selectors: tuple[str, ...] = ()
    # Provider includes that must be authorised somewhere in the SPF tree, e.g. _spf.google.com.
    expect_spf_includes: tuple[str, ...] = ()

    def target_name(self) -> str:
        return self.domain

    def check(self) -> Iterable[tuple[str, str]]:
        problem = _bad_domain(self.domain)
        if problem:
            yield "domain", problem
        for i, selector in enumerate(self.dkim_selectors):
            if _bad_domain(selector):
                yield f"dkim_selectors[{i}]", f"{selector!r} is not a DKIM selector (DNS labels)"
        if len(set(self.dkim_selectors)) != len(self.dkim_selectors):
            yield "dkim_selectors", "duplicate selector"
        for i, include in enumerate(self.expect_spf_includes):
            problem = _bad_domain(include)
            if problem:
                yield f"expect_spf_includes[{i}]", problem


@dataclass
class DomainReport:
    spf: SpfResult
    dkim: dict[str, DkimResult]
    dmarc: DmarcResult
    mx: int
    mta_sts: bool
    tls_rpt: bool
    duration: float


class EmailDomainsCollector(Collector[EmailDomain]):
    config_class = EmailDomain
    up_metric = "email_dns_up"
    up_help = (
        "1 if every DNS lookup for the domain got an answer (records, NXDOMAIN or NODATA);"
        " 0 on a timeout, SERVFAIL or REFUSED, when no verdict is given."
    )

    def __init__(self, config: EmailDomain, ctx: Context) -> None:
        super().__init__(config, ctx)
        self.settings: DnsResolverSettings = ctx.settings.get("dns_resolver") or DnsResolverSettings()

    def describe(self) -> str:
        selectors = ", ".join(self.config.dkim_selectors) or "none"
        where = ", ".join(self.settings.nameservers) or "system resolver"
        return f"{self.config.domain} (DKIM selectors: {selectors}; resolver: {where})"

    def _resolver(self) -> CachingResolver:
        # One resolver (and so one cache) for every domain: providers' includes are shared.
        resolver: CachingResolver = self.ctx.shared("email_domains.resolver", lambda: CachingResolver(self.settings))
        return resolver

    async def collect(self) -> list[Metric]:
        try:
            report = await self._check()
        except DnsFailure as exc:
            raise CollectError(f"DNS lookup failed, no verdict for {self.config.domain}: {exc}") from None
        return [
            GaugeMetricFamily(self.up_metric or "", self.up_help, value=1.0),
            *_spf_families(report.spf, self.config.expect_spf_includes),
            *_dkim_families(report.dkim),
            *_dmarc_families(report.dmarc),
            *_domain_families(report),
        ]

    async def _check(self) -> DomainReport:
        resolver = self._resolver()
        domain = self.config.domain.rstrip(".")
        start = time.perf_counter()

        async def txt(name: str) -> list[str]:
            return (await resolver.lookup(name, "TXT")).records

        try:
            async with asyncio.TaskGroup() as tg:
                spf = tg.create_task(SpfChecker(resolver, domain).run())
                dmarc = tg.create_task(txt(f"_dmarc.{domain}"))
                mx = tg.create_task(resolver.lookup(domain, "MX"))
                sts = tg.create_task(txt(f"_mta-sts.{domain}"))
                rpt = tg.create_task(txt(f"_smtp._tls.{domain}"))
                dkim = {s: tg.create_task(txt(f"{s}._domainkey.{domain}")) for s in self.config.dkim_selectors}
        except* DnsFailure as group:
            raise group.exceptions[0] from None
        return DomainReport(
            spf=spf.result(),
            dkim={s: check_dkim(t.result()) for s, t in dkim.items()},
            dmarc=check_dmarc(dmarc.result()),
            mx=len(mx.result().records),
            mta_sts=any(is_tagged(r, "STSv1", "id") for r in sts.result()),
            tls_rpt=any(is_tagged(r, "TLSRPTv1", "rua") for r in rpt.result()),
            duration=time.perf_counter() - start,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _spf_families(spf: SpfResult, expected_includes: Sequence[str]) -> list[Metric]:
    syntax_valid = spf.records == 1 and spf.syntax_valid
    fams: list[Metric] = [
        _gauge(
            "email_dns_spf_records", "TXT records at the domain starting with v=spf1 (exactly 1 is valid).", spf.records
        ),
        _gauge(
            "email_dns_spf_syntax_valid",
            "1 if the domain's single SPF record parses per RFC 7208.",
            float(syntax_valid),
        ),
        _gauge(
            "email_dns_spf_valid",
            "1 if SPF would evaluate without a permerror: one record, valid syntax in the whole tree,"
            " every include resolvable, at most 10 DNS lookups and 2 void lookups.",
            float(spf.valid),
        ),
    ]
    # Counts and the qualifier mean nothing without one parsable record: absent rather than 0.
    if syntax_valid:
        qualifier = GaugeMetricFamily(
            "email_dns_spf_all_qualifier",
            "State set: the effective qualifier of the SPF 'all' mechanism (none when there is none).",
            labels=["qualifier"],
        )
        for state in SPF_ALL_STATES:
            qualifier.add_metric([state], float(state == spf.all_qualifier))
        fams += [
            _gauge(
                "email_dns_spf_lookups",
                "DNS-querying terms (include, a, mx, ptr, exists, redirect) counted recursively; the limit is 10.",
                spf.lookups,
            ),
            _gauge(
                "email_dns_spf_void_lookups",
                "Lookups in the SPF tree that returned NXDOMAIN or no records; the limit is 2.",
                spf.void_lookups,
            ),
            qualifier,
        ]
    if expected_includes:
        expected = GaugeMetricFamily(
            "email_dns_spf_expected_include",
            "1 if the configured include is present anywhere in the SPF include tree.",
            labels=["include"],
        )
        for include in expected_includes:
            expected.add_metric([include], float(include.lower().rstrip(".") in spf.includes))
        fams.append(expected)
    return fams


def _dkim_families(dkim: Mapping[str, DkimResult]) -> list[Metric]:
    present = GaugeMetricFamily(
        "email_dns_dkim_present", "1 if the selector has a DKIM key record.", labels=["selector"]
    )
    valid = GaugeMetricFamily(
        "email_dns_dkim_valid",
        "1 if the selector's key record is usable: valid tags, a key that parses, not revoked, RSA at least 1024 bits.",
        labels=["selector"],
    )
    revoked = GaugeMetricFamily(
        "email_dns_dkim_revoked", "1 if the selector's key is revoked (empty p=).", labels=["selector"]
    )
    key_type = GaugeMetricFamily(
        "email_dns_dkim_key_type", "State set: the selector's key type (k=).", labels=["selector", "key_type"]
    )
    # Not "_bits": promtool's lint reads that suffix as a data size and asks for bytes,
    # and a key length in bytes (256 for a 2048-bit key) would mislead.
    length = GaugeMetricFamily(
        "email_dns_dkim_key_length",
        "Length of the selector's public key in bits (RSA modulus length; 256 for ed25519).",
        labels=["selector"],
    )
    for selector, dk in dkim.items():
        present.add_metric([selector], float(dk.present))
        valid.add_metric([selector], float(dk.valid))
        if dk.present:
            revoked.add_metric([selector], float(dk.revoked))
        if dk.key_type is not None:
            for kt in DKIM_KEY_TYPES:
                key_type.add_metric([selector, kt], float(kt == dk.key_type))
        if dk.bits is not None:
            length.add_metric([selector], float(dk.bits))
    return [present, valid, revoked, key_type, length]


def _dmarc_families(dm: DmarcResult) -> list[Metric]:
    fams: list[Metric] = [
        _gauge(
            "email_dns_dmarc_records",
            "TXT records at _dmarc.<domain> starting with v=DMARC1 (exactly 1 is valid).",
            dm.records,
        ),
        _gauge("email_dns_dmarc_valid", "1 if the single DMARC record is valid per RFC 7489.", float(dm.valid)),
    ]
    for name, doc, current in (
        ("email_dns_dmarc_policy", "State set: the DMARC policy (p=).", dm.policy),
        (
            "email_dns_dmarc_subdomain_policy",
            "State set: the DMARC subdomain policy (sp=, else p=).",
            dm.subdomain_policy,
        ),
    ):
        fam = GaugeMetricFamily(name, doc, labels=["policy"])
        if current is not None:
            for policy in DMARC_POLICIES:
                fam.add_metric([policy], float(policy == current))
        fams.append(fam)
    if dm.records == 1:
        if dm.pct is not None:
            fams.append(
                _gauge("email_dns_dmarc_pct", "Percentage of failing mail the DMARC policy applies to (pct=).", dm.pct)
            )
        fams += [
            _gauge(
                "email_dns_dmarc_rua_requested", "1 if aggregate reports are requested (valid rua=).", float(dm.rua)
            ),
            _gauge("email_dns_dmarc_ruf_requested", "1 if failure reports are requested (valid ruf=).", float(dm.ruf)),
        ]
    for name, doc, mode in (
        ("email_dns_dmarc_dkim_alignment", "State set: DKIM identifier alignment (adkim=).", dm.adkim),
        ("email_dns_dmarc_spf_alignment", "State set: SPF identifier alignment (aspf=).", dm.aspf),
    ):
        fam = GaugeMetricFamily(name, doc, labels=["mode"])
        if dm.records == 1 and mode is not None:
            for m in ALIGNMENT_MODES.values():
                fam.add_metric([m], float(m == mode))
        fams.append(fam)
    return fams


def _domain_families(r: DomainReport) -> list[Metric]:
    return [
        _gauge("email_dns_mx_records", "MX records of the domain.", r.mx),
        _gauge(
            "email_dns_mta_sts_present", "1 if _mta-sts.<domain> has a v=STSv1 record with an id.", float(r.mta_sts)
        ),
        _gauge(
            "email_dns_tls_rpt_present", "1 if _smtp._tls.<domain> has a v=TLSRPTv1 record with rua.", float(r.tls_rpt)
        ),
        _gauge(
            "email_dns_lookup_duration_seconds",
            "Seconds all lookups for the domain took in this collection (cached answers cost nothing).",
            r.duration,
        ),
    ]


COLLECTOR = EmailDomainsCollector
