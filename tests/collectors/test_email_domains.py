"""Email authentication DNS checks against a real NSD serving zones this suite writes.

Every domain below is one case the checks must tell apart; the expected counts are worked
out by hand from the records written here (the comments show the sums), and
key sizes are read back with openssl, not assumed.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import pytest

from tests.helpers import exporter, promtool_check, scrape, value, values
from tests.servers.nsd import NsdServer, txt, zone_text

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class DkimKey:
    record: str  # the p= value
    bits: int  # as openssl reports it


def openssl_key(tmp: Path, algorithm: str, bits: int | None = None) -> DkimKey:
    """A fresh key pair; the public half as DKIM's p= (SubjectPublicKeyInfo, or raw ed25519)."""
    key = tmp / f"{algorithm}-{bits}.pem"
    args = ["openssl", "genpkey", "-algorithm", algorithm, "-out", str(key)]
    if bits:
        args += ["-pkeyopt", f"rsa_keygen_bits:{bits}"]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True, timeout=30
    ).stdout
    text = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-text_pub", "-noout"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    # "RSA Public-Key: (2048 bit)" / "ED25519 Public-Key:" (whose size openssl does not print)
    size = int(text.split("(", 1)[1].split(" bit", 1)[0]) if "bit)" in text else 8 * (len(der) - 12)
    if algorithm == "ed25519":
        der = der[-32:]  # RFC 8463: the raw key, not the SubjectPublicKeyInfo
    return DkimKey(base64.b64encode(der).decode(), size)


@dataclass
class EmailZones:
    nsd: NsdServer
    keys: dict[str, DkimKey]


def records(tmp: Path) -> tuple[list[str], dict[str, DkimKey]]:
    keys = {
        "rsa2048": openssl_key(tmp, "RSA", 2048),
        "rsa1024": openssl_key(tmp, "RSA", 1024),
        "ed25519": openssl_key(tmp, "ed25519"),
    }
    tokens = [f"@ IN TXT {txt(f'site-verification-{i}=' + 'x' * 230)}" for i in range(6)]
    zone = [
        # healthy: mx(1) + include(1) + include(1) at the top; _spf: a(1); spf.provider: include(1) -> 5
        f"healthy IN TXT {txt('v=spf1 mx include:_spf.healthy.test include:spf.provider.test -all')}",
        f"_spf.healthy IN TXT {txt('v=spf1 ip4:192.0.2.0/24 a:mail.healthy.test ?all')}",
        f"spf.provider IN TXT {txt('v=spf1 include:_netblocks.provider.test ~all')}",
        f"_netblocks.provider IN TXT {txt('v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 ~all')}",
        "healthy IN MX 10 mx1.healthy.test.",
        "healthy IN MX 20 mx2.healthy.test.",
        "mx1.healthy IN A 192.0.2.10",
        "mx2.healthy IN A 192.0.2.11",
        "mail.healthy IN A 192.0.2.12",
        f"s2048._domainkey.healthy IN TXT {txt('v=DKIM1; k=rsa; p=' + keys['rsa2048'].record)}",
        f"ed._domainkey.healthy IN TXT {txt('v=DKIM1; k=ed25519; p=' + keys['ed25519'].record)}",
        f"_dmarc.healthy IN TXT {txt('v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@healthy.test; adkim=s')}",
        f"_mta-sts.healthy IN TXT {txt('v=STSv1; id=20240101T000000')}",
        f"_smtp._tls.healthy IN TXT {txt('v=TLSRPTv1; rua=mailto:tlsrpt@healthy.test')}",
        # eleven: a(1) mx(1) include(1) include(1) = 4; l1: 3 x a + mx = 4 -> 8; l2: exists, a, redirect -> 11
        f"eleven IN TXT {txt('v=spf1 a mx include:l1.eleven.test include:l2.eleven.test -all')}",
        "eleven IN A 192.0.2.20",
        "eleven IN MX 10 eleven.test.",
        f"l1.eleven IN TXT {txt('v=spf1 a:h1.eleven.test a:h2.eleven.test a:h3.eleven.test mx:eleven.test ~all')}",
        f"l2.eleven IN TXT {txt('v=spf1 exists:h1.eleven.test a:h2.eleven.test redirect=l3.eleven.test')}",
        f"l3.eleven IN TXT {txt('v=spf1 ip4:192.0.2.1 -all')}",
        "h1.eleven IN A 192.0.2.21",
        "h2.eleven IN A 192.0.2.22",
        "h3.eleven IN AAAA 2001:db8::23",
        # two SPF records at one name
        f"tworecords IN TXT {txt('v=spf1 mx -all')}",
        f"tworecords IN TXT {txt('v=spf1 ip4:192.0.2.0/24 -all')}",
        # void: two NXDOMAIN names and one name without MX -> 3 void lookups
        f"void IN TXT {txt('v=spf1 a:gone1.void.test a:gone2.void.test mx:nomx.void.test ~all')}",
        "nomx.void IN A 192.0.2.30",
        # an include of a name that does not exist
        f"missinginclude IN TXT {txt('v=spf1 include:gone.missinginclude.test -all')}",
        # syntax errors
        f"spfsyntax IN TXT {txt('v=spf1 ip4:192.0.2.300 include:_spf.healthy.test -all')}",
        f"_dmarc.dmarcsyntax IN TXT {txt('v=DMARC1; p=rejected; pct=150')}",
        # weak: p=none, a 1024-bit key, a revoked key, a selector with no record
        f"weak IN TXT {txt('v=spf1 redirect=_spf.healthy.test')}",
        f"_dmarc.weak IN TXT {txt('v=DMARC1; p=none')}",
        f"k1024._domainkey.weak IN TXT {txt('v=DKIM1; p=' + keys['rsa1024'].record)}",
        f"old._domainkey.weak IN TXT {txt('v=DKIM1; k=rsa; p=')}",
        # empty: the name exists (an A record) but holds no mail records (NODATA everywhere)
        "empty IN A 192.0.2.40",
        # big: TXT RRset far beyond 512 bytes, so the UDP answer is truncated
        f"big IN TXT {txt('v=spf1 include:_spf.healthy.test -all')}",
        *[t.replace("@", "big", 1) for t in tokens],
    ]
    return zone, keys


@pytest.fixture(scope="module")
def email_zones(nsd_factory: Callable[..., NsdServer], tmp_path_factory: pytest.TempPathFactory) -> EmailZones:
    zone, keys = records(tmp_path_factory.mktemp("dkim"))
    nsd = nsd_factory({"test.": zone_text("test.", zone)}, broken_zones=["servfail.test."])
    return EmailZones(nsd, keys)


def dns_config(port: int, domains: list[dict[str, Any]], **resolver: Any) -> dict[str, Any]:
    """The domains, checked through the test's NSD; ``resolver`` adds dns_resolver keys."""
    return {
        "global": {"scrape_timeout": "5s"},
        "dns_resolver": {"nameservers": ["127.0.0.1"], "port": port, "timeout": "1s", **resolver},
        "email_domains": domains,
    }


DOMAINS: list[dict[str, Any]] = [
    {
        "domain": "healthy.test",
        "dkim_selectors": ["s2048", "ed"],
        "expect_spf_includes": ["spf.provider.test", "_netblocks.provider.test", "other.provider.test"],
    },
    {"domain": "eleven.test"},
    {"domain": "tworecords.test"},
    {"domain": "void.test"},
    {"domain": "missinginclude.test"},
    {"domain": "spfsyntax.test"},
    {"domain": "dmarcsyntax.test"},
    {"domain": "weak.test", "dkim_selectors": ["k1024", "old", "nokey"]},
    {"domain": "empty.test", "dkim_selectors": ["s1"]},
    {"domain": "missing.test"},
    {"domain": "big.test"},
    {"domain": "x.servfail.test"},
    {"domain": "outside.example"},
]


def states(text: str, name: str, label: str, **labels: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in values(text, name, **labels)}


@pytest.fixture(scope="module")
def exposition(email_zones: EmailZones) -> str:
    """One scrape of every case, shared by the verdict tests (each is read-only)."""

    async def once() -> str:
        async with exporter(dns_config(email_zones.nsd.port, DOMAINS)) as http:
            return await scrape(http)

    return asyncio.run(once())


def v(text: str, name: str, domain: str, **labels: str) -> float | None:
    return value(text, name, target=domain, **labels)


async def test_healthy_domain(exposition: str, email_zones: EmailZones) -> None:
    t, d = exposition, "healthy.test"
    assert v(t, "email_dns_up", d) == 1
    assert v(t, "email_dns_spf_records", d) == 1
    assert v(t, "email_dns_spf_syntax_valid", d) == 1
    assert v(t, "email_dns_spf_valid", d) == 1
    assert v(t, "email_dns_spf_lookups", d) == 5
    assert v(t, "email_dns_spf_void_lookups", d) == 0
    assert states(t, "email_dns_spf_all_qualifier", "qualifier", target=d) == {
        "pass": 0,
        "fail": 1,
        "softfail": 0,
        "neutral": 0,
        "none": 0,
    }
    assert states(t, "email_dns_spf_expected_include", "include", target=d) == {
        "spf.provider.test": 1,
        "_netblocks.provider.test": 1,
        "other.provider.test": 0,
    }
    for selector, key in (("s2048", email_zones.keys["rsa2048"]), ("ed", email_zones.keys["ed25519"])):
        assert v(t, "email_dns_dkim_present", d, selector=selector) == 1
        assert v(t, "email_dns_dkim_valid", d, selector=selector) == 1
        assert v(t, "email_dns_dkim_revoked", d, selector=selector) == 0
        assert v(t, "email_dns_dkim_key_length", d, selector=selector) == key.bits
    assert email_zones.keys["rsa2048"].bits == 2048
    assert states(t, "email_dns_dkim_key_type", "key_type", target=d, selector="s2048") == {"rsa": 1, "ed25519": 0}
    assert states(t, "email_dns_dkim_key_type", "key_type", target=d, selector="ed") == {"rsa": 0, "ed25519": 1}
    assert v(t, "email_dns_dmarc_records", d) == 1
    assert v(t, "email_dns_dmarc_valid", d) == 1
    assert states(t, "email_dns_dmarc_policy", "policy", target=d) == {"none": 0, "quarantine": 0, "reject": 1}
    assert states(t, "email_dns_dmarc_subdomain_policy", "policy", target=d) == {
        "none": 0,
        "quarantine": 1,
        "reject": 0,
    }
    assert v(t, "email_dns_dmarc_pct", d) == 100
    assert v(t, "email_dns_dmarc_rua_requested", d) == 1
    assert v(t, "email_dns_dmarc_ruf_requested", d) == 0
    assert states(t, "email_dns_dmarc_dkim_alignment", "mode", target=d) == {"relaxed": 0, "strict": 1}
    assert states(t, "email_dns_dmarc_spf_alignment", "mode", target=d) == {"relaxed": 1, "strict": 0}
    assert v(t, "email_dns_mx_records", d) == 2
    assert v(t, "email_dns_mta_sts_present", d) == 1
    assert v(t, "email_dns_tls_rpt_present", d) == 1
    duration = v(t, "email_dns_lookup_duration_seconds", d)
    assert duration is not None and 0 < duration < 2


@pytest.mark.parametrize(
    ("domain", "records", "syntax", "valid", "lookups", "void", "qualifier"),
    [
        ("eleven.test", 1, 1, 0, 11, 0, "fail"),
        ("tworecords.test", 2, 0, 0, None, None, None),
        ("void.test", 1, 1, 0, 3, 3, "softfail"),
        ("missinginclude.test", 1, 1, 0, 1, 1, "fail"),
        ("spfsyntax.test", 1, 0, 0, None, None, None),
        # redirect counts 1, then _spf.healthy's a: 1; its ?all is the effective one
        ("weak.test", 1, 1, 1, 2, 0, "neutral"),
        ("big.test", 1, 1, 1, 2, 0, "fail"),
        ("empty.test", 0, 0, 0, None, None, None),
        ("missing.test", 0, 0, 0, None, None, None),
    ],
)
async def test_spf_verdicts(
    exposition: str,
    domain: str,
    records: int,
    syntax: int,
    valid: int,
    lookups: int | None,
    void: int | None,
    qualifier: str | None,
) -> None:
    t = exposition
    assert v(t, "email_dns_up", domain) == 1
    assert v(t, "email_dns_spf_records", domain) == records
    assert v(t, "email_dns_spf_syntax_valid", domain) == syntax
    assert v(t, "email_dns_spf_valid", domain) == valid
    assert v(t, "email_dns_spf_lookups", domain) == lookups
    assert v(t, "email_dns_spf_void_lookups", domain) == void
    current = {k for k, val in states(t, "email_dns_spf_all_qualifier", "qualifier", target=domain).items() if val}
    assert current == ({qualifier} if qualifier else set())


async def test_dmarc_and_dkim_problems(exposition: str, email_zones: EmailZones) -> None:
    t = exposition
    # p=rejected and pct=150: present but invalid, no policy state
    assert v(t, "email_dns_dmarc_records", "dmarcsyntax.test") == 1
    assert v(t, "email_dns_dmarc_valid", "dmarcsyntax.test") == 0
    assert states(t, "email_dns_dmarc_policy", "policy", target="dmarcsyntax.test") == {}
    # p=none, and defaults: sp follows p, pct 100, no rua, relaxed alignment
    w = "weak.test"
    assert v(t, "email_dns_dmarc_valid", w) == 1
    assert states(t, "email_dns_dmarc_policy", "policy", target=w) == {"none": 1, "quarantine": 0, "reject": 0}
    assert states(t, "email_dns_dmarc_subdomain_policy", "policy", target=w) == {
        "none": 1,
        "quarantine": 0,
        "reject": 0,
    }
    assert v(t, "email_dns_dmarc_rua_requested", w) == 0
    assert v(t, "email_dns_dmarc_pct", w) == 100
    assert states(t, "email_dns_dmarc_dkim_alignment", "mode", target=w) == {"relaxed": 1, "strict": 0}
    # a 1024-bit key is still acceptable (RFC 8301) but its size shows
    assert email_zones.keys["rsa1024"].bits == 1024
    assert v(t, "email_dns_dkim_valid", w, selector="k1024") == 1
    assert v(t, "email_dns_dkim_key_length", w, selector="k1024") == 1024
    # revoked: present, not valid, no key size
    assert v(t, "email_dns_dkim_present", w, selector="old") == 1
    assert v(t, "email_dns_dkim_revoked", w, selector="old") == 1
    assert v(t, "email_dns_dkim_valid", w, selector="old") == 0
    assert v(t, "email_dns_dkim_key_length", w, selector="old") is None
    # a selector without a record
    assert v(t, "email_dns_dkim_present", w, selector="nokey") == 0
    assert v(t, "email_dns_dkim_valid", w, selector="nokey") == 0
    # nothing at all for a domain that exists without mail records, or does not exist
    for d in ("empty.test", "missing.test"):
        assert v(t, "email_dns_up", d) == 1
        assert v(t, "email_dns_dmarc_records", d) == 0
        assert v(t, "email_dns_dmarc_valid", d) == 0
        assert v(t, "email_dns_mx_records", d) == 0
        assert v(t, "email_dns_mta_sts_present", d) == 0
        assert v(t, "email_dns_tls_rpt_present", d) == 0
    assert v(t, "email_dns_dkim_present", "empty.test", selector="s1") == 0


async def test_servfail_and_refused_fail_the_domain_not_report_missing(exposition: str) -> None:
    for domain in ("x.servfail.test", "outside.example"):
        assert v(exposition, "email_dns_up", domain) == 0
        assert value(exposition, "stack_exporter_collector_success", collector="email_domains", target=domain) == 0
        assert v(exposition, "email_dns_spf_records", domain) is None
        assert v(exposition, "email_dns_dmarc_records", domain) is None
    # the other domains still answered
    assert value(exposition, "stack_exporter_collector_success", collector="email_domains", target="healthy.test") == 1


async def test_truncated_udp_answer_falls_back_to_tcp(exposition: str, email_zones: EmailZones) -> None:
    query = dns.message.make_query("big.test", "TXT")
    udp = dns.query.udp(query, "127.0.0.1", port=email_zones.nsd.port, timeout=2)
    assert udp.flags & dns.flags.TC, "the test record must not fit in a UDP answer"
    assert not udp.answer
    # the collector still found the SPF record among the big RRset
    assert v(exposition, "email_dns_spf_valid", "big.test") == 1


async def test_stopped_server_fails_the_domain_unless_cached(
    nsd_factory: Callable[..., NsdServer], tmp_path: Path
) -> None:
    zone = [
        f"ok IN TXT {txt('v=spf1 ip4:192.0.2.0/24 -all')}",
        f"_dmarc.ok IN TXT {txt('v=DMARC1; p=reject')}",
    ]
    nsd = nsd_factory({"test.": zone_text("test.", zone)})
    domains = [{"domain": "ok.test"}]
    uncached = dns_config(nsd.port, domains, cache_max_ttl="0s")
    async with exporter(dns_config(nsd.port, domains)) as cached_http, exporter(uncached) as uncached_http:
        for http in (cached_http, uncached_http):
            text = await scrape(http)
            assert v(text, "email_dns_up", "ok.test") == 1
            assert v(text, "email_dns_spf_valid", "ok.test") == 1
        nsd.stop()
        start = time.monotonic()
        text = await scrape(uncached_http)
        assert time.monotonic() - start < 4
        assert v(text, "email_dns_up", "ok.test") == 0
        assert v(text, "email_dns_spf_valid", "ok.test") is None
        assert v(text, "email_dns_dmarc_valid", "ok.test") is None
        # answers within their TTL (300 s here) are reused: no query reaches the dead server
        text = await scrape(cached_http)
        assert v(text, "email_dns_up", "ok.test") == 1
        assert v(text, "email_dns_spf_valid", "ok.test") == 1


async def test_failure_is_logged_with_the_domain_and_rcode(
    email_zones: EmailZones, caplog: pytest.LogCaptureFixture
) -> None:
    config = dns_config(email_zones.nsd.port, [{"domain": "x.servfail.test"}])
    async with exporter(config) as http:
        await scrape(http)
    messages = [getattr(r, "kv", {}).get("err", "") for r in caplog.records]
    assert any("x.servfail.test" in m and "SERVFAIL" in m for m in messages), messages


async def test_exposition_is_clean(exposition: str) -> None:
    assert promtool_check(exposition) == ""


# ---------------------------------------------------------------- parsers on records no server serves
