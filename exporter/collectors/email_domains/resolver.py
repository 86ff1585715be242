"""The DNS side: resolver settings, a process-wide TTL cache, and what counts as a failure.

Answers are cached per (name, type) for their TTL, bounded by
``dns_resolver.cache_min_ttl`` / ``cache_max_ttl`` (default at most 5 minutes),
negative answers for the SOA's negative TTL (RFC 2308).  Failures are never
cached.  NXDOMAIN and NODATA mean "record missing"; a timeout, SERVFAIL or
REFUSED raises :class:`DnsFailure`, since reporting "no DMARC record" because a
resolver hiccupped would page someone for the wrong reason.  dnspython retries
a truncated UDP answer over TCP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.schema import Duration

# dnspython loads with the first resolver (the collector's), inside the functions
# below: validating a config that has the dns_resolver or email_domains sections needs none of it
if TYPE_CHECKING:
    import dns.resolver


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
        import dns.asyncresolver
        import dns.exception

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
        import dns.exception
        import dns.resolver

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
    import dns.message
    import dns.rdatatype

    ttls: list[float] = []
    for response in responses:
        if not isinstance(response, dns.message.QueryMessage):
            continue
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA:
                ttls.extend(min(rrset.ttl, rd.minimum) for rd in rrset)
    return min(ttls) if ttls else 0.0


def _rcode_summary(exc: dns.resolver.NoNameservers) -> str:
    import dns.rcode

    errors = exc.kwargs.get("errors") or []
    parts = []
    for err in errors:
        # dnspython records (nameserver, tcp, port, exception, response)
        server, port, error = err[0], err[2], err[3]
        response = err[4] if len(err) > 4 else None
        text = dns.rcode.to_text(response.rcode()) if response is not None else str(error)
        parts.append(f"{text} from {server}:{port}")
    return "; ".join(parts) or "no nameserver answered"
