"""SPF (RFC 7208): the record parser and the walk of its include/redirect tree.

Evaluated statically, as a mailbox provider would see the domain before any
mail arrives: no sender address is known, so macros are not expanded and
``ptr`` is not followed, but both still count toward the lookup limit.  The
walk asks any object with an async ``lookup(name, rdtype)`` (see
:class:`Resolver`), so it runs against a dict in a unit test as well as
against DNS.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

SPF_LOOKUP_LIMIT = 10
SPF_VOID_LIMIT = 2
# Bound on DNS work for one tree, whatever a broken or hostile record says.
_SPF_MAX_QUERIES = 40
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
SPF_ALL_STATES = ("pass", "fail", "softfail", "neutral", "none")
_MACRO_RE = re.compile(r"%(?:\{[slodiphcrtv]\d*r?[.\-+,/_=]*\}|%|_|-)", re.IGNORECASE)
_TOPLABEL_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_MODIFIER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class Answer(Protocol):
    """What the walk reads from one DNS answer."""

    @property
    def records(self) -> list[str]: ...

    @property
    def void(self) -> bool: ...


class Resolver(Protocol):
    async def lookup(self, name: str, rdtype: str) -> Answer: ...


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


# RFC 7208 5.6: dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], each "/" and a
# number without leading zeros: "/24", "//64", "/24//64"
_DUAL_CIDR_RE = re.compile(r"(?:/(?P<v4>0|[1-9][0-9]?))?(?://(?P<v6>0|[1-9][0-9]{0,2}))?")


def _valid_dual_cidr(text: str) -> bool:
    """The text after a mechanism's first slash: ``24``, ``24//64`` or ``/64`` (RFC 7208 5.6)."""
    match = _DUAL_CIDR_RE.fullmatch("/" + text)
    if match is None or (match["v4"] is None and match["v6"] is None):
        return False
    return (match["v4"] is None or int(match["v4"]) <= 32) and (match["v6"] is None or int(match["v6"]) <= 128)


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
            terms.append(_modifier(name.lower(), mod_value, raw, seen_modifiers, problems))
        else:
            term = _mechanism(raw, problems)
            if term is not None:
                terms.append(term)
    return terms, problems


def _modifier(name: str, value: str, raw: str, seen: set[str], problems: list[str]) -> SpfTerm:
    """A ``name=value`` term; only redirect and exp are checked, others are ignored (6)."""
    if name in ("redirect", "exp"):
        if name in seen:
            problems.append(f"{name}= appears twice")
        seen.add(name)
        if not _valid_domain_spec(value):
            problems.append(f"{raw}: invalid domain")
    return SpfTerm("", name, value)


def _mechanism(raw: str, problems: list[str]) -> SpfTerm | None:
    """One ``[qualifier]mechanism[:arg][/cidr]`` term, None when unknown; problems are appended."""
    qualifier = "+"
    if raw[0] in _QUALIFIERS:
        qualifier, raw = raw[0], raw[1:]
    mech, colon, arg = raw.partition(":")
    slash_mech, slash, cidr = mech.partition("/")
    mech = mech.lower()
    value: str | None = arg if colon else None
    if mech == "all" and not colon:
        return SpfTerm(qualifier, "all", None)
    if mech in ("include", "exists"):
        if not colon or not _valid_domain_spec(arg):
            problems.append(f"{raw}: {mech} needs a valid domain")
        return SpfTerm(qualifier, mech, value)
    if mech == "ptr" or slash_mech.lower() in ("a", "mx"):
        base = slash_mech.lower() if slash else mech
        spec = value
        cidr_text = cidr if slash else None
        if spec is not None and "/" in spec:
            spec, _, cidr_text = spec.partition("/")
        if spec is not None and not _valid_domain_spec(spec):
            problems.append(f"{raw}: invalid domain")
        if cidr_text is not None and (base == "ptr" or not _valid_dual_cidr(cidr_text)):
            problems.append(f"{raw}: invalid CIDR length")
        return SpfTerm(qualifier, base, spec)
    if mech in ("ip4", "ip6") and colon:
        try:
            net = arg if "/" in arg else arg + ("/32" if mech == "ip4" else "/128")
            if ipaddress.ip_network(net, strict=False).version != int(mech[-1]):
                raise ValueError
        except ValueError:
            problems.append(f"{raw}: invalid {mech} network")
        return SpfTerm(qualifier, mech, value)
    problems.append(f"{raw}: unknown mechanism")
    return None


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

    def __init__(self, resolver: Resolver, domain: str) -> None:
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

    async def _count(self, name: str, rdtype: str) -> Answer | None:
        self._queries += 1
        if self._queries > _SPF_MAX_QUERIES:
            return None
        return await self.resolver.lookup(name, rdtype)

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
