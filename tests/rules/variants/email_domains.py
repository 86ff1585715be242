"""Sending domains as variants: DKIM signed with an RSA key, and with an ed25519 key.

Captured from the real exporter querying a real nsd (tests/servers/nsd.py) serving the
domain's SPF, DKIM, DMARC and MX records.  The two key types differ in what an alert may
judge: an ed25519 key is 256 bits and strong, so "key too short" only exists for RSA.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from peers.process import LOOPBACK
from tests.helpers import exporter, scrape
from tests.rules.variants import (
    EXPORTER_HEALTHY,
    Capture,
    Change,
    Incident,
    Sample,
    Source,
    Variant,
    becomes,
    exporter_incidents,
)
from tests.servers.nsd import NsdServer, txt, zone_text

DOMAIN = "shop.test"


def _public_key(tmp: Path, algorithm: list[str]) -> bytes:
    key = tmp / "dkim.pem"
    subprocess.run(["openssl", "genpkey", *algorithm, "-out", str(key)], check=True, capture_output=True, timeout=60)
    return subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True, timeout=30
    ).stdout


def rsa_key(tmp: Path) -> str:
    return (
        "k=rsa; p="
        + base64.b64encode(_public_key(tmp, ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])).decode()
    )


def ed25519_key(tmp: Path) -> str:
    # RFC 8463: p= is the raw 32-byte public key, the tail of the DER SubjectPublicKeyInfo
    return "k=ed25519; p=" + base64.b64encode(_public_key(tmp, ["-algorithm", "ed25519"])[-32:]).decode()


def _capture(key: Callable[[Path], str]) -> Capture:
    async def capture(request: pytest.FixtureRequest) -> str:
        tmp = request.getfixturevalue("tmp_path")
        records = [
            f"shop IN TXT {txt('v=spf1 ip4:192.0.2.0/24 include:_spf.shop.test -all')}",
            f"_spf.shop IN TXT {txt('v=spf1 ip4:198.51.100.0/24 -all')}",
            "shop IN MX 10 mx.shop.test.",
            "mx.shop IN A 192.0.2.10",
            f"s1._domainkey.shop IN TXT {txt('v=DKIM1; ' + key(tmp))}",
            f"_dmarc.shop IN TXT {txt('v=DMARC1; p=reject; rua=mailto:dmarc@shop.test')}",
        ]
        nsd: NsdServer = request.getfixturevalue("nsd_factory")({"test.": zone_text("test.", records)})
        config = (
            f"dns_resolver:\n  nameservers: [{LOOPBACK}]\n  port: {nsd.port}\n  timeout: 1s\n"
            f"email_domains:\n  - domain: {DOMAIN}\n    dkim_selectors: [s1]\n"
        )
        async with exporter(config) as client:
            return await scrape(client)

    return capture


HEALTHY = (*EXPORTER_HEALTHY,)  # a correct domain's records do not change by themselves


def _rsa(samples: Sequence[Sample]) -> bool:
    return any(s.name == "email_dns_dkim_key_type" and s.label("key_type") == "rsa" and s.value == 1 for s in samples)


INCIDENTS = (
    Incident(
        "the SPF record breaks",
        "EmailSPFInvalid",
        "warning",
        (Change("email_dns_spf_valid", becomes(0)),),
        fires_within=25,
    ),
    Incident(
        "the SPF record needs too many DNS lookups",
        "EmailSPFTooManyLookups",
        "warning",
        (Change("email_dns_spf_lookups", becomes(12)), Change("email_dns_spf_valid", becomes(0))),
        fires_within=25,
        required=(("email_dns_spf_lookups", {}),),
    ),
    Incident(
        "the DMARC record breaks",
        "EmailDMARCInvalid",
        "warning",
        (Change("email_dns_dmarc_valid", becomes(0)),),
        fires_within=25,
    ),
    Incident(
        "the DMARC policy is relaxed to none",
        "EmailDMARCPolicyNone",
        "info",
        (
            Change("email_dns_dmarc_policy", becomes(1), {"policy": "none"}),
            Change("email_dns_dmarc_policy", becomes(0), {"policy": "reject"}),
        ),
        fires_within=25,
    ),
    Incident(
        "the DKIM key record breaks",
        "EmailDKIMInvalid",
        "warning",
        (Change("email_dns_dkim_valid", becomes(0)),),
        fires_within=25,
    ),
    Incident(
        "the DKIM key is replaced by a short RSA key",
        "EmailDKIMKeyTooShort",
        "warning",
        (Change("email_dns_dkim_key_length", becomes(1024)),),
        fires_within=25,
        applies=_rsa,
    ),
    *exporter_incidents("email_dns_up"),
)

SOURCE = Source(
    name="email_domains",
    docs="email_domains",
    variants=(
        Variant("email_domains", "rsa-dkim", _capture(rsa_key)),
        Variant("email_domains", "ed25519-dkim", _capture(ed25519_key)),
    ),
    healthy=HEALTHY,
    incidents=INCIDENTS,
)
