"""Email authentication in DNS: SPF, DKIM, DMARC, MX, MTA-STS and TLS-RPT per domain.

What a mailbox provider sees when it checks the domain, evaluated statically
(no sender address is known, so macros are not expanded and ``ptr`` is not
followed).  A sample of the exposition (target label added by the engine)::

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

Answers are cached process-wide per (name, type) for their TTL, bounded by
``dns_resolver.cache_min_ttl`` / ``cache_max_ttl`` (default at most 5 minutes),
negative answers for the SOA's negative TTL (RFC 2308).  Failures are never
cached.  NXDOMAIN and NODATA mean "record missing"; a timeout, SERVFAIL or
REFUSED fails the whole collection for the domain (``email_dns_up 0``), since
reporting "no DMARC record" because a resolver hiccupped would page someone
for the wrong reason.  dnspython retries a truncated UDP answer over TCP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.config import Duration, TargetConfig
from exporter.der import read_tlv

# --------------------------------------------------------------------------- config

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


@dataclass(frozen=True, kw_only=True)
class DnsResolverSettings:
    # Empty: the system resolver (/etc/resolv.conf).
    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: Duration = Duration(2.0)
    # Bounds on how long an answer is reused: its TTL, clamped to these.
    cache_min_ttl: Duration = Duration(0.0)
    cache_max_ttl: Duration = Duration(300.0)

    def check(self) -> Iterable[tuple[str, str]]:
        for i, ns in enumerate(self.nameservers):
            try:
                ipaddress.ip_address(ns)
            except ValueError:
                yield f"nameservers[{i}]", f"{ns!r} is not an IP address"
        if not 0 < self.port < 65536:
            yield "port", f"invalid port {self.port}"
        if self.timeout <= 0:
            yield "timeout", "must be positive"
        if self.cache_min_ttl > self.cache_max_ttl:
            yield "cache_min_ttl", "must not exceed cache_max_ttl"


# --------------------------------------------------------------------------- resolving


class DnsFailure(Exception):
    """A lookup that got no usable answer (timeout, SERVFAIL, REFUSED): not "missing"."""


@dataclass
class Lookup:
    """One answer: the record texts (TXT joined per RFC 7208 3.3) or empty when missing."""

    records: list[str]
    nxdomain: bool = False

    @property
    def void(self) -> bool:
        return not self.records


class CachingResolver:
    """dnspython's asyncio resolver plus a TTL cache shared by every domain in the process."""

    def __init__(self, settings: DnsResolverSettings) -> None:
        self.settings = settings
        if settings.nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = list(settings.nameservers)
            resolver.port = settings.port
        else:
            try:
                resolver = dns.asyncresolver.Resolver()
            except dns.exception.DNSException as exc:
                raise DnsFailure(f"no system resolver ({exc}); set dns_resolver.nameservers") from None
        resolver.timeout = float(settings.timeout)
        resolver.lifetime = float(settings.timeout)
        self.resolver = resolver
        self._cache: dict[tuple[str, str], tuple[float, Lookup]] = {}
        # one query per (name, type) at a time even when domains share includes
        self._inflight: dict[tuple[str, str], asyncio.Future[Lookup]] = {}

    def describe(self) -> str:
        if self.settings.nameservers:
            return ", ".join(f"{ns}:{self.settings.port}" for ns in self.settings.nameservers)
        return "system resolver"

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        key = (name.lower().rstrip("."), rdtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Lookup] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result, ttl = await self._query(key[0], rdtype)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            else:
                future.cancel()
            raise
        finally:
            self._inflight.pop(key, None)
        ttl = min(max(ttl, self.settings.cache_min_ttl), self.settings.cache_max_ttl)
        if ttl > 0:
            self._cache[key] = (time.monotonic() + ttl, result)
        future.set_result(result)
        return result

    async def _query(self, name: str, rdtype: str) -> tuple[Lookup, float]:
        where = f"{name} {rdtype} via {self.describe()}"
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            return Lookup([], nxdomain=True), _negative_ttl((exc.kwargs.get("responses") or {}).values())
        except dns.resolver.NoAnswer as exc:
            return Lookup([]), _negative_ttl([exc.kwargs.get("response")])
        except dns.resolver.NoNameservers as exc:
            raise DnsFailure(f"{where}: {_rcode_summary(exc)}") from None
        except dns.exception.Timeout:
            raise DnsFailure(f"{where}: no answer within {float(self.settings.timeout):g}s") from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"{where}: {type(exc).__name__}: {exc}") from None
        if answer.rrset is None:
            return Lookup([]), 0.0
        if rdtype == "TXT":
            texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        else:
            texts = [r.to_text() for r in answer.rrset]
        return Lookup(texts), max(0.0, answer.expiration - time.time())


def _negative_ttl(responses: Iterable[Any]) -> float:
    """RFC 2308: the SOA's TTL capped by its MINIMUM; 0 (no caching) without a SOA."""
    ttls: list[float] = []
    for response in responses:
        if not isinstance(response, dns.message.QueryMessage):
            continue
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                ttls.extend(min(rrset.ttl, rd.minimum) for rd in rrset)
    return min(ttls) if ttls else 0.0


def _rcode_summary(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    parts = []
    for err in errors:
        # dnspython records (nameserver, tcp, port, exception, response)
        server, port, error = err[0], err[2], err[3]
        response = err[4] if len(err) > 4 else None
        text = dns.rcode.to_text(response.rcode()) if response is not None else str(error)
        parts.append(f"{text} from {server}:{port}")
    return "; ".join(parts) or "no nameserver answered"


# --------------------------------------------------------------------------- tag lists

_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_tag_list(text: str) -> dict[str, str] | None:
    """RFC 6376 3.2 tag=value list; None on a syntax error or a duplicate tag."""
    tags: dict[str, str] = {}
    parts = text.split(";")
    if parts and not parts[-1].strip():
        parts = parts[:-1]  # a trailing ';' is allowed
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _TAG_RE.match(name) or name in tags:
            return None
        tags[name] = value.strip()
    return tags


# --------------------------------------------------------------------------- SPF (RFC 7208)

SPF_LOOKUP_LIMIT = 10
SPF_VOID_LIMIT = 2
# Bound on DNS work for one tree, whatever a broken or hostile record says.
_SPF_MAX_QUERIES = 40
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
SPF_ALL_STATES = ("pass", "fail", "softfail", "neutral", "none")
_MACRO_RE = re.compile(r"%(?:\{[slodiphcrtv]\d*r?[.\-+,/_=]*\}|%|_|-)", re.IGNORECASE)
_TOPLABEL_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_MODIFIER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def is_spf(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _valid_domain_spec(spec: str) -> bool:
    """RFC 7208 7.1 domain-spec: a macro-string ending in a top label or a macro."""
    if not spec or any(not 0x21 <= ord(c) <= 0x7E for c in spec):
        return False
    stripped = _MACRO_RE.sub("", spec)
    if "%" in stripped:
        return False
    if _MACRO_RE.search(spec) and spec.endswith("}"):
        return True
    labels = spec.rstrip(".").split(".")
    return len(labels) >= 2 and bool(_TOPLABEL_RE.match(labels[-1])) and all(labels)


def _has_macro(spec: str) -> bool:
    return "%" in spec


@dataclass
class SpfTerm:
    qualifier: str
    mechanism: str  # all include a mx ptr ip4 ip6 exists, or redirect / exp / other modifier
    value: str | None  # the domain-spec or network, when given


def parse_spf(record: str) -> tuple[list[SpfTerm], list[str]]:
    """Terms and syntax problems of one ``v=spf1`` record (RFC 7208 4.6.1, 12)."""
    terms: list[SpfTerm] = []
    problems: list[str] = []
    seen_modifiers: set[str] = set()
    for raw in record.split(" ")[1:]:
        if not raw:
            continue
        name, eq, mod_value = raw.partition("=")
        if eq and _MODIFIER_NAME_RE.match(name) and ":" not in name and "/" not in name:
            lname = name.lower()
            if lname in ("redirect", "exp"):
                if lname in seen_modifiers:
                    problems.append(f"{lname}= appears twice")
                seen_modifiers.add(lname)
                if not _valid_domain_spec(mod_value):
                    problems.append(f"{raw}: invalid domain")
            terms.append(SpfTerm("", lname, mod_value))
            continue
        qualifier = "+"
        if raw[0] in _QUALIFIERS:
            qualifier, raw = raw[0], raw[1:]
        mech, colon, arg = raw.partition(":")
        slash_mech, slash, cidr = mech.partition("/")
        mech = mech.lower()
        value: str | None = arg if colon else None
        if mech == "all" and not colon:
            terms.append(SpfTerm(qualifier, "all", None))
        elif mech in ("include", "exists"):
            if not colon or not _valid_domain_spec(arg):
                problems.append(f"{raw}: {mech} needs a valid domain")
            terms.append(SpfTerm(qualifier, mech, value))
        elif mech == "ptr" or slash_mech.lower() in ("a", "mx"):
            base = slash_mech.lower() if slash else mech
            spec = value
            cidr_text = cidr if slash else None
            if spec is not None and "/" in spec:
                spec, _, cidr_text = spec.partition("/")
            if spec is not None and not _valid_domain_spec(spec):
                problems.append(f"{raw}: invalid domain")
            if cidr_text is not None and (base == "ptr" or not _valid_dual_cidr(cidr_text)):
                problems.append(f"{raw}: invalid CIDR length")
            terms.append(SpfTerm(qualifier, base, spec))
        elif mech in ("ip4", "ip6") and colon:
            try:
                net = arg if "/" in arg else arg + ("/32" if mech == "ip4" else "/128")
                parsed = ipaddress.ip_network(net, strict=False)
                if parsed.version != int(mech[-1]):
                    raise ValueError
            except ValueError:
                problems.append(f"{raw}: invalid {mech} network")
            terms.append(SpfTerm(qualifier, mech, value))
        else:
            problems.append(f"{raw}: unknown mechanism")
    return terms, problems


def _valid_dual_cidr(text: str) -> bool:
    """``24``, ``24//64`` or ``/64`` after the first slash (RFC 7208 5.6)."""
    v4, sep, v6 = text.partition("//")
    if v4 and not (v4.isdigit() and int(v4) <= 32 and str(int(v4)) == v4):
        return False
    if sep and not (v6.isdigit() and int(v6) <= 128 and str(int(v6)) == v6):
        return False
    if not v4 and not text.startswith("/"):
        return False
    return bool(v4 or sep)


@dataclass
class SpfResult:
    records: int = 0
    syntax_valid: bool = False
    lookups: int = 0
    void_lookups: int = 0
    all_qualifier: str = "none"
    includes: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return (
            self.records == 1
            and self.syntax_valid
            and not self.problems
            and self.lookups <= SPF_LOOKUP_LIMIT
            and self.void_lookups <= SPF_VOID_LIMIT
        )


class SpfChecker:
    """Walks the include/redirect tree counting what RFC 7208 4.6.4 limits."""

    def __init__(self, resolver: CachingResolver, domain: str) -> None:
        self.resolver = resolver
        self.domain = domain
        self.result = SpfResult()
        self._queries = 0

    async def run(self) -> SpfResult:
        lookup = await self.resolver.lookup(self.domain, "TXT")
        records = [r for r in lookup.records if is_spf(r)]
        self.result.records = len(records)
        if len(records) != 1:
            return self.result
        terms, problems = parse_spf(records[0])
        self.result.syntax_valid = not problems
        if problems:
            self.result.problems.extend(problems)
            return self.result
        self.result.all_qualifier = await self._walk(terms, [self.domain.lower()])
        return self.result

    async def _count(self, name: str, rdtype: str) -> Lookup | None:
        self._queries += 1
        if self._queries > _SPF_MAX_QUERIES:
            return None
        lookup = await self.resolver.lookup(name, rdtype)
        return lookup

    async def _walk(self, terms: Sequence[SpfTerm], path: list[str]) -> str:
        """Count one record's DNS terms, recursing; return its effective ``all`` state."""
        res = self.result
        all_state: str | None = None
        redirect: str | None = None
        for term in terms:
            mech = term.mechanism
            if mech == "all":
                all_state = all_state or _QUALIFIERS[term.qualifier]
            elif mech == "redirect":
                redirect = term.value
            elif mech in ("include", "a", "mx", "ptr", "exists"):
                res.lookups += 1
                target = term.value or path[-1]
                if mech == "ptr" or _has_macro(target):
                    continue  # depends on the sender: cannot be resolved statically
                if mech == "include":
                    res.includes.add(target.lower().rstrip("."))
                    await self._include(target, path)
                elif mech == "a":
                    a = await self._count(target, "A")
                    aaaa = await self._count(target, "AAAA")
                    if a is not None and aaaa is not None and a.void and aaaa.void:
                        res.void_lookups += 1
                else:
                    rdtype = "MX" if mech == "mx" else "A"
                    found = await self._count(target, rdtype)
                    if found is not None and found.void:
                        res.void_lookups += 1
        # 6.1: redirect is ignored when the record has an "all" mechanism
        if redirect is not None and all_state is None:
            res.lookups += 1
            if _has_macro(redirect):
                return "none"
            return await self._include(redirect, path, redirect=True) or "none"
        return all_state or "none"

    async def _include(self, target: str, path: list[str], *, redirect: bool = False) -> str | None:
        res = self.result
        what = "redirect=" if redirect else "include:"
        name = target.lower().rstrip(".")
        if name in path:
            res.problems.append(f"{what}{target}: loop")
            return None
        lookup = await self._count(name, "TXT")
        if lookup is None:
            res.problems.append(f"{what}{target}: too many lookups to follow")
            return None
        if lookup.void:
            res.void_lookups += 1
        records = [r for r in lookup.records if is_spf(r)]
        if len(records) != 1:
            res.problems.append(f"{what}{target}: {len(records)} SPF records")
            return None
        terms, problems = parse_spf(records[0])
        if problems:
            res.problems.extend(f"{what}{target}: {p}" for p in problems)
            return None
        return await self._walk(terms, [*path, name])


# --------------------------------------------------------------------------- DKIM (RFC 6376, 8301, 8463)

DKIM_KEY_TYPES = ("rsa", "ed25519")
# RFC 8301 3.2: verifiers must not accept RSA keys shorter than 1024 bits.
DKIM_MIN_RSA_BITS = 1024
_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1


@dataclass
class DkimResult:
    present: bool = False
    valid: bool = False
    revoked: bool = False
    key_type: str | None = None
    bits: int | None = None


_der = read_tlv


def rsa_key_bits(der: bytes) -> int:
    """Modulus bit length of an RSA SubjectPublicKeyInfo, or of a bare PKCS#1 RSAPublicKey."""
    tag, seq, end = _der(der)
    if tag != 0x30 or end != len(der):
        raise ValueError("not a DER SEQUENCE")
    tag, first, pos = _der(seq)
    if tag == 0x30:  # SubjectPublicKeyInfo: AlgorithmIdentifier, BIT STRING
        oid_tag, oid, _ = _der(first)
        if oid_tag != 0x06 or oid != _RSA_OID:
            raise ValueError("not an RSA key")
        tag, bits, _ = _der(seq, pos)
        if tag != 0x03 or not bits or bits[0] != 0:
            raise ValueError("bad BIT STRING")
        return rsa_key_bits(bits[1:])
    if tag != 0x02:  # RSAPublicKey: INTEGER modulus, INTEGER exponent
        raise ValueError("not an RSA key")
    tag, exponent, _ = _der(seq, pos)
    if tag != 0x02 or not exponent:
        raise ValueError("missing exponent")
    modulus = first.lstrip(b"\x00")
    if not modulus:
        raise ValueError("empty modulus")
    return int.from_bytes(modulus, "big").bit_length()


def check_dkim(records: Sequence[str]) -> DkimResult:
    result = DkimResult()
    keys = [parse_tag_list(r) for r in records]
    candidates = [r for r, tags in zip(records, keys, strict=True) if tags is None or "p" in tags or "v" in tags]
    if not candidates:
        return result
    result.present = True
    if len(candidates) != 1:
        return result  # several key records at one selector: verifiers pick unpredictably
    tags = parse_tag_list(candidates[0])
    if tags is None or "p" not in tags:
        return result
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"] != "DKIM1"):
        return result
    key_type = tags.get("k", "rsa").lower()
    result.key_type = key_type if key_type in DKIM_KEY_TYPES else None
    p = re.sub(r"\s+", "", tags["p"])
    if not p:
        result.revoked = True
        return result
    try:
        key = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        return result
    try:
        if key_type == "rsa":
            result.bits = rsa_key_bits(key)
        elif key_type == "ed25519":
            if len(key) != 32:  # RFC 8463: the raw 32-byte public key
                return result
            result.bits = 256
        else:
            return result
    except ValueError:
        return result
    result.valid = key_type != "rsa" or result.bits >= DKIM_MIN_RSA_BITS
    return result


# --------------------------------------------------------------------------- DMARC (RFC 7489)

DMARC_POLICIES = ("none", "quarantine", "reject")
ALIGNMENT_MODES = {"r": "relaxed", "s": "strict"}


@dataclass
class DmarcResult:
    records: int = 0
    valid: bool = False
    policy: str | None = None
    subdomain_policy: str | None = None
    pct: int | None = None
    rua: bool = False
    ruf: bool = False
    adkim: str | None = None
    aspf: str | None = None


def _valid_report_uris(value: str) -> bool:
    # 6.4: comma-separated URIs, each optionally suffixed "!size"; mailto: is what everyone uses
    uris = [u.strip() for u in value.split(",")]
    return bool(uris) and all(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s!]+(![0-9]+[kmgt]?)?$", u) for u in uris)


def check_dmarc(records: Sequence[str]) -> DmarcResult:
    result = DmarcResult()
    candidates = [r for r in records if re.match(r"^v\s*=\s*DMARC1\s*(;|$)", r)]
    result.records = len(candidates)
    if len(candidates) != 1:
        return result  # 6.6.3: none, or several, means no DMARC policy applies
    tags = parse_tag_list(candidates[0])
    if tags is None:
        return result
    ok = True
    policy = tags.get("p", "").lower()
    if policy in DMARC_POLICIES:
        result.policy = policy
    else:
        ok = False
    sp = tags.get("sp")
    if sp is None:
        result.subdomain_policy = result.policy
    elif sp.lower() in DMARC_POLICIES:
        result.subdomain_policy = sp.lower()
    else:
        ok = False
    pct = tags.get("pct", "100")
    if pct.isdigit() and 0 <= int(pct) <= 100:
        result.pct = int(pct)
    else:
        ok = False
    for tag in ("adkim", "aspf"):
        mode = ALIGNMENT_MODES.get(tags.get(tag, "r").lower())
        if mode is None:
            ok = False
        setattr(result, tag, mode)
    for tag in ("rua", "ruf"):
        if tag in tags:
            if _valid_report_uris(tags[tag]):
                setattr(result, tag, True)
            else:
                ok = False
    result.valid = ok
    return result


# --------------------------------------------------------------------------- collector


@dataclass
class DomainReport:
    spf: SpfResult
    dkim: dict[str, DkimResult]
    dmarc: DmarcResult
    mx: int
    mta_sts: bool
    tls_rpt: bool
    duration: float


def _make_resolver(settings: DnsResolverSettings) -> CachingResolver:
    return CachingResolver(settings)


class DnsAuthCollector(Collector[EmailDomain]):
    kind = "email_domains"
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
        resolver: CachingResolver = self.ctx.shared("dns_auth.resolver", lambda: _make_resolver(self.settings))
        return resolver

    async def collect(self) -> list[Metric]:
        try:
            report = await self._check()
        except DnsFailure as exc:
            raise CollectError(f"DNS lookup failed, no verdict for {self.config.domain}: {exc}") from None
        return self._families(report)

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
            mta_sts=any(_is_tagged(r, "STSv1", "id") for r in sts.result()),
            tls_rpt=any(_is_tagged(r, "TLSRPTv1", "rua") for r in rpt.result()),
            duration=time.perf_counter() - start,
        )

    def _families(self, r: DomainReport) -> list[Metric]:
        fams: list[Metric] = [GaugeMetricFamily(self.up_metric or "", self.up_help, value=1.0)]

        def gauge(name: str, doc: str, value: float) -> None:
            fams.append(GaugeMetricFamily(name, doc, value=value))

        spf = r.spf
        gauge(
            "email_dns_spf_records", "TXT records at the domain starting with v=spf1 (exactly 1 is valid).", spf.records
        )
        gauge(
            "email_dns_spf_syntax_valid",
            "1 if the domain's single SPF record parses per RFC 7208.",
            float(spf.records == 1 and spf.syntax_valid),
        )
        gauge(
            "email_dns_spf_valid",
            "1 if SPF would evaluate without a permerror: one record, valid syntax in the whole tree,"
            " every include resolvable, at most 10 DNS lookups and 2 void lookups.",
            float(spf.valid),
        )
        if spf.records == 1 and spf.syntax_valid:
            gauge(
                "email_dns_spf_lookups",
                "DNS-querying terms (include, a, mx, ptr, exists, redirect) counted recursively; the limit is 10.",
                spf.lookups,
            )
            gauge(
                "email_dns_spf_void_lookups",
                "Lookups in the SPF tree that returned NXDOMAIN or no records; the limit is 2.",
                spf.void_lookups,
            )
            qualifier = GaugeMetricFamily(
                "email_dns_spf_all_qualifier",
                "State set: the effective qualifier of the SPF 'all' mechanism (none when there is none).",
                labels=["qualifier"],
            )
            for state in SPF_ALL_STATES:
                qualifier.add_metric([state], float(state == spf.all_qualifier))
            fams.append(qualifier)
        if self.config.expect_spf_includes:
            expected = GaugeMetricFamily(
                "email_dns_spf_expected_include",
                "1 if the configured include is present anywhere in the SPF include tree.",
                labels=["include"],
            )
            for include in self.config.expect_spf_includes:
                expected.add_metric([include], float(include.lower().rstrip(".") in spf.includes))
            fams.append(expected)

        dk_labels = ["selector"]
        dk_present = GaugeMetricFamily(
            "email_dns_dkim_present", "1 if the selector has a DKIM key record.", labels=dk_labels
        )
        dk_valid = GaugeMetricFamily(
            "email_dns_dkim_valid",
            "1 if the selector's key record is usable: valid tags, a key that parses, not revoked,"
            " RSA at least 1024 bits.",
            labels=dk_labels,
        )
        dk_revoked = GaugeMetricFamily(
            "email_dns_dkim_revoked", "1 if the selector's key is revoked (empty p=).", labels=dk_labels
        )
        dk_type = GaugeMetricFamily(
            "email_dns_dkim_key_type", "State set: the selector's key type (k=).", labels=["selector", "key_type"]
        )
        # Not "_bits": promtool's lint reads that suffix as a data size and asks for bytes,
        # and a key length in bytes (256 for a 2048-bit key) would mislead.
        dk_bits = GaugeMetricFamily(
            "email_dns_dkim_key_length",
            "Length of the selector's public key in bits (RSA modulus length; 256 for ed25519).",
            labels=dk_labels,
        )
        for selector, dk in r.dkim.items():
            dk_present.add_metric([selector], float(dk.present))
            dk_valid.add_metric([selector], float(dk.valid))
            if dk.present:
                dk_revoked.add_metric([selector], float(dk.revoked))
            if dk.key_type is not None:
                for kt in DKIM_KEY_TYPES:
                    dk_type.add_metric([selector, kt], float(kt == dk.key_type))
            if dk.bits is not None:
                dk_bits.add_metric([selector], float(dk.bits))
        fams.extend([dk_present, dk_valid, dk_revoked, dk_type, dk_bits])

        dm = r.dmarc
        gauge(
            "email_dns_dmarc_records",
            "TXT records at _dmarc.<domain> starting with v=DMARC1 (exactly 1 is valid).",
            dm.records,
        )
        gauge("email_dns_dmarc_valid", "1 if the single DMARC record is valid per RFC 7489.", float(dm.valid))
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
        if dm.records == 1 and dm.pct is not None:
            gauge("email_dns_dmarc_pct", "Percentage of failing mail the DMARC policy applies to (pct=).", dm.pct)
        if dm.records == 1:
            gauge("email_dns_dmarc_rua_requested", "1 if aggregate reports are requested (valid rua=).", float(dm.rua))
            gauge("email_dns_dmarc_ruf_requested", "1 if failure reports are requested (valid ruf=).", float(dm.ruf))
        for name, doc, mode in (
            ("email_dns_dmarc_dkim_alignment", "State set: DKIM identifier alignment (adkim=).", dm.adkim),
            ("email_dns_dmarc_spf_alignment", "State set: SPF identifier alignment (aspf=).", dm.aspf),
        ):
            fam = GaugeMetricFamily(name, doc, labels=["mode"])
            if dm.records == 1 and mode is not None:
                for m in ALIGNMENT_MODES.values():
                    fam.add_metric([m], float(m == mode))
            fams.append(fam)

        gauge("email_dns_mx_records", "MX records of the domain.", r.mx)
        gauge("email_dns_mta_sts_present", "1 if _mta-sts.<domain> has a v=STSv1 record with an id.", float(r.mta_sts))
        gauge(
            "email_dns_tls_rpt_present", "1 if _smtp._tls.<domain> has a v=TLSRPTv1 record with rua.", float(r.tls_rpt)
        )
        gauge(
            "email_dns_lookup_duration_seconds",
            "Seconds all lookups for the domain took in this collection (cached answers cost nothing).",
            r.duration,
        )
        return fams


def _is_tagged(record: str, version: str, required: str) -> bool:
    tags = parse_tag_list(record)
    return tags is not None and tags.get("v") == version and next(iter(tags)) == "v" and bool(tags.get(required))


COLLECTOR = DnsAuthCollector
