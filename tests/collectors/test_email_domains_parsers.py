"""The email_domains parsers on their own: SPF's tree walk over a dict, DKIM key DER, tag lists.

The end-to-end verdicts against a real name server are in test_email_domains.py;
these cover the branches no zone there reaches (loops, the query bound, PKCS#1
keys) and show each parser can be used without DNS.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from exporter.collectors.email_domains.dkim import check_dkim, rsa_key_bits
from exporter.collectors.email_domains.dmarc import check_dmarc
from exporter.collectors.email_domains.spf import SpfChecker, parse_spf
from exporter.collectors.email_domains.taglist import is_tagged, parse_tag_list


@dataclass
class Answer:
    records: list[str]

    @property
    def void(self) -> bool:
        return not self.records


class DictResolver:
    """TXT and address records from a dict; everything else is missing."""

    def __init__(self, zone: dict[tuple[str, str], list[str]]) -> None:
        self.zone = zone
        self.asked: list[tuple[str, str]] = []

    async def lookup(self, name: str, rdtype: str) -> Answer:
        self.asked.append((name, rdtype))
        return Answer(self.zone.get((name.lower().rstrip("."), rdtype), []))


async def test_spf_walk_counts_lookups_and_follows_includes() -> None:
    resolver = DictResolver(
        {
            ("example.test", "TXT"): ["v=spf1 include:a.example.test mx ptr -all"],
            ("a.example.test", "TXT"): ["v=spf1 a:host.example.test ~all"],
            ("host.example.test", "A"): ["192.0.2.1"],
        }
    )
    result = await SpfChecker(resolver, "example.test").run()
    # include(1) + a(1) inside it + mx(1, void: no MX) + ptr(1, counted, never followed)
    assert (result.lookups, result.void_lookups) == (4, 1)
    assert result.includes == {"a.example.test"}
    assert result.all_qualifier == "fail"  # the top record's own, not the include's ~all
    assert result.valid
    assert not any(name.startswith("ptr") or rdtype == "PTR" for name, rdtype in resolver.asked)


async def test_spf_redirect_is_ignored_beside_all_and_followed_without() -> None:
    zone = {
        ("with-all.test", "TXT"): ["v=spf1 redirect=target.test -all"],
        ("without.test", "TXT"): ["v=spf1 redirect=target.test"],
        ("target.test", "TXT"): ["v=spf1 ?all"],
    }
    with_all = await SpfChecker(DictResolver(zone), "with-all.test").run()
    assert (with_all.all_qualifier, with_all.lookups) == ("fail", 0)
    without = await SpfChecker(DictResolver(zone), "without.test").run()
    assert (without.all_qualifier, without.lookups) == ("neutral", 1)


async def test_spf_include_loop_is_a_problem_not_a_hang() -> None:
    zone = {
        ("a.test", "TXT"): ["v=spf1 include:b.test -all"],
        ("b.test", "TXT"): ["v=spf1 include:a.test -all"],
    }
    result = await SpfChecker(DictResolver(zone), "a.test").run()
    assert result.problems == ["include:a.test: loop"]
    assert not result.valid


async def test_spf_walk_stops_at_its_query_bound() -> None:
    # a chain far longer than any limit: the walk gives up instead of following it
    zone = {(f"n{i}.test", "TXT"): [f"v=spf1 include:n{i + 1}.test -all"] for i in range(100)}
    resolver = DictResolver(zone)
    result = await SpfChecker(resolver, "n0.test").run()
    assert any("too many lookups" in p for p in result.problems)
    assert len(resolver.asked) <= 41
    assert not result.valid


def test_parse_spf_terms() -> None:
    terms, problems = parse_spf("v=spf1 ~a/24 mx:mail.example.com/24//64 -ip4:192.0.2.0/24 exp=why.example.com")
    assert problems == []
    assert [(t.qualifier, t.mechanism, t.value) for t in terms] == [
        ("~", "a", None),
        ("+", "mx", "mail.example.com"),
        ("-", "ip4", "192.0.2.0/24"),
        ("", "exp", "why.example.com"),
    ]


def test_parse_spf_drops_unknown_mechanisms_and_says_so() -> None:
    terms, problems = parse_spf("v=spf1 frobnicate -all")
    assert [t.mechanism for t in terms] == ["all"]
    assert problems == ["frobnicate: unknown mechanism"]


def _der(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x10000
    length = bytes([len(content)]) if len(content) < 0x80 else b"\x82" + len(content).to_bytes(2, "big")
    return bytes([tag]) + length + content


def _integer(n: int) -> bytes:
    return _der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # leading 0: positive


PKCS1_2048 = _der(0x30, _integer(2**2047 + 1) + _integer(65537))
SPKI_2048 = _der(
    0x30,
    _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b"")) + _der(0x03, b"\x00" + PKCS1_2048),
)


def test_rsa_key_bits_reads_spki_and_bare_pkcs1() -> None:
    assert rsa_key_bits(SPKI_2048) == 2048
    assert rsa_key_bits(PKCS1_2048) == 2048
    with pytest.raises(ValueError, match="not a DER SEQUENCE"):
        rsa_key_bits(PKCS1_2048 + b"\x00")


def test_dkim_verdicts_without_dns() -> None:
    spki = base64.b64encode(SPKI_2048).decode()
    good = check_dkim([f"v=DKIM1; k=rsa; p={spki}", "unrelated=1"])
    assert (good.present, good.valid, good.bits, good.key_type) == (True, True, 2048, "rsa")
    short = _der(0x30, _integer(2**511 + 1) + _integer(65537))
    weak = check_dkim(["p=" + base64.b64encode(short).decode()])
    assert (weak.valid, weak.bits) == (False, 512)
    two = check_dkim([f"v=DKIM1; p={spki}", f"v=DKIM1; p={spki}"])
    assert (two.present, two.valid) == (True, False)
    assert not check_dkim(["unrelated=1"]).present


def test_dmarc_subdomain_policy_follows_p_and_counts_records() -> None:
    result = check_dmarc(["v=DMARC1; p=quarantine; aspf=s", "some other text"])
    assert (result.records, result.valid, result.subdomain_policy, result.aspf) == (1, True, "quarantine", "strict")
    assert check_dmarc(["v=DMARC1; p=reject", "v=DMARC1; p=none"]).policy is None


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("v=DKIM1; p=abc;", {"v": "DKIM1", "p": "abc"}),
        (" a = 1 ;b=", {"a": "1", "b": ""}),
        ("a=1; a=2", None),
        ("a=1; =2", None),
        ("novalue", None),
    ],
)
def test_parse_tag_list(text: str, tags: dict[str, str] | None) -> None:
    assert parse_tag_list(text) == tags


def test_is_tagged_wants_version_first_and_the_required_tag() -> None:
    assert is_tagged("v=STSv1; id=20240101", "STSv1", "id")
    assert not is_tagged("id=20240101; v=STSv1", "STSv1", "id")
    assert not is_tagged("v=STSv1; id=", "STSv1", "id")
    assert not is_tagged("v=TLSRPTv1; rua=mailto:x@example.com", "STSv1", "rua")


@pytest.mark.parametrize(
    ("record", "ok"),
    [
        ("v=spf1 -all", True),
        ("v=spf1 a/24 mx:example.com/24//64 ip6:2001:db8::/32 ?all", True),
        ("v=spf1 include:%{d}.spf.example.com exists:%{i}._spf.%{d} -all", True),
        ("v=spf1 inclde:example.com -all", False),
        ("v=spf1 ip4:10.0.0.0/33 -all", False),
        ("v=spf1 ip6:10.0.0.1 -all", False),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", False),
        ("v=spf1 include: -all", False),
        ("v=spf1 include:%{z}.example.com -all", False),
        ("v=spf1 a:example.123 -all", False),
        ("v=spf1 foo=bar -all", True),  # unknown modifiers are ignored (RFC 7208 6)
    ],
)
def test_spf_syntax(record: str, ok: bool) -> None:
    _, problems = parse_spf(record)
    assert (not problems) == ok, problems


@pytest.mark.parametrize(
    ("term", "ok"),
    [
        # RFC 7208 5.6: dual-cidr-length = [ "/" ip4-cidr-length ] [ "//" ip6-cidr-length ]
        ("mx//64", True),  # was reported invalid: the IPv6 length alone
        ("mx:example.com//64", True),
        ("a:example.com//128", True),
        ("a/24//64", True),
        ("mx:example.com/24", True),
        ("a/0", True),
        ("a//0", True),
        ("a/32//128", True),
        ("a//129", False),
        ("a/33", False),
        ("mx:example.com/24//129", False),
        ("a/024", False),  # no leading zeros
        ("mx//", False),
        ("a/", False),
        ("a/24/", False),
        ("a//64//64", False),
        ("a/\u00b2", False),  # a superscript two is a digit to str.isdigit, not to RFC 7208
        ("ptr/24", False),
    ],
)
def test_spf_dual_cidr_length(term: str, ok: bool) -> None:
    _, problems = parse_spf(f"v=spf1 {term} -all")
    assert (not problems) == ok, problems


@pytest.mark.parametrize(
    ("record", "valid", "policy"),
    [
        ("v=DMARC1; p=quarantine; pct=50; rua=mailto:a@example.com,mailto:b@example.com!10m", True, "quarantine"),
        ("v=DMARC1; p=reject; adkim=x", False, "reject"),
        ("v=DMARC1; rua=mailto:a@example.com", False, None),
        ("p=reject; v=DMARC1", False, None),
        ("v=DMARC1; p=reject; rua=not a uri", False, "reject"),
    ],
)
def test_dmarc_syntax(record: str, valid: bool, policy: str | None) -> None:
    result = check_dmarc([record])
    assert result.valid == valid
    assert result.policy == policy


def test_dkim_key_parsing_rejects_garbage() -> None:
    assert not check_dkim(["v=DKIM1; p=!!notbase64"]).valid
    assert not check_dkim(["v=DKIM1; k=ed25519; p=" + base64.b64encode(b"short").decode()]).valid
    assert not check_dkim(["v=DKIM2; p=" + base64.b64encode(b"x" * 32).decode()]).valid
    assert check_dkim(["v=DKIM1; k=rsa; p= "]).revoked
