"""The ``rum:`` section: one mapping the strict converter fills (``exporter.schema``).

It stands on ``exporter.schema``, the standard library and its sibling ``routes`` only, so
the loader (``exporter.config``) imports it cheaply; the HTTP side lives in ``ingest``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from exporter.rum.routes import MAX_ROUTES, normalized, pattern_problem

__all__ = ["DEFAULT_LISTEN_ADDRESS", "RumConfig", "origin_problem"]

DEFAULT_LISTEN_ADDRESS = ":9848"
_LISTEN_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Upper bounds that keep one listener's memory bounded whatever the config says: a beacon is
# a few hundred bytes (the adapter's largest well under 4 KiB), and each remembered client
# costs the limiter about 200 bytes.
MAX_BODY_BYTES = 1024 * 1024
MAX_CLIENTS = 1_000_000
MAX_BURST = 100_000


def origin_problem(origin: str) -> str | None:
    """Why ``origin`` is not what a browser sends in ``Origin:`` (scheme://host[:port]), or None."""
    example = "https://shop.example.com"
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError as exc:
        return f"invalid origin: {exc}"
    if "://" not in origin or parts.scheme not in _DEFAULT_PORTS:
        return f"must be an origin such as {example} (http:// or https://, host, optional port)"
    if not parts.hostname:
        return f"missing host, e.g. {example}"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.path or parts.query or parts.fragment or origin.endswith(("?", "#")):
        bare = f"{parts.scheme}://{parts.netloc}"
        return f"an origin has no path, query or fragment: write {bare!r}"
    if origin != origin.lower():
        return f"browsers send the origin in lower case: write {origin.lower()!r}"
    if port is not None and port == _DEFAULT_PORTS[parts.scheme]:
        bare = f"{parts.scheme}://{parts.netloc.rsplit(':', 1)[0]}"
        return f"browsers leave out the default port: write {bare!r}"
    if port is not None and not 0 < port < 65536:
        return f"invalid port {port}"
    return None


@dataclass(frozen=True, kw_only=True)
class RumConfig:
    # the RUM listener: browsers post beacons here (--rum.listen-address overrides it)
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    # the pages' origins (scheme://host[:port], exactly as browsers send Origin:); any other
    # origin is refused, so other sites cannot post into these numbers.  Required: the
    # default only lets check() report it together with every other problem.
    allowed_origins: tuple[str, ...] = ()
    # route patterns, first match wins: the page label is the pattern, else "other"
    routes: tuple[str, ...] = ()
    # the largest beacon body; the adapter's are far smaller
    max_body_bytes: int = 16384
    # beacons a second each client (address, IPv6 by /64) earns back, and how many it may
    # send at once: a page sends one or two per view
    rate_limit: float = 1.0
    rate_burst: int = 20
    # clients the limiter remembers (least recently seen forgotten first)
    max_clients: int = 65536
    # proxies (CIDRs or addresses) whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = ()

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed (call after ``check()`` found no problem)."""
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies)

    def check(self) -> Iterator[tuple[str, str]]:
        match = _LISTEN_RE.match(self.listen_address)
        if match is None or not 0 < int(match.group(2)) < 65536:
            yield "listen_address", f"expected HOST:PORT such as {DEFAULT_LISTEN_ADDRESS}, got {self.listen_address!r}"
        yield from self._check_origins()
        yield from self._check_routes()
        if not 0 < self.max_body_bytes <= MAX_BODY_BYTES:
            yield "max_body_bytes", f"must be between 1 and {MAX_BODY_BYTES}, got {self.max_body_bytes}"
        if not (math.isfinite(self.rate_limit) and self.rate_limit > 0):
            yield "rate_limit", f"must be a number of beacons a second greater than 0, got {self.rate_limit:g}"
        if not 0 < self.rate_burst <= MAX_BURST:
            yield "rate_burst", f"must be between 1 and {MAX_BURST}, got {self.rate_burst}"
        if not 0 < self.max_clients <= MAX_CLIENTS:
            yield "max_clients", f"must be between 1 and {MAX_CLIENTS}, got {self.max_clients}"
        for i, cidr in enumerate(self.trusted_proxies):
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                yield f"trusted_proxies[{i}]", f"expected an address or CIDR such as 10.0.0.0/8, got {cidr!r}"
                continue
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                yield f"trusted_proxies[{i}]", f"has host bits set: did you mean {str(network)!r}?"

    def _check_origins(self) -> Iterator[tuple[str, str]]:
        if not self.allowed_origins:
            yield "allowed_origins", "needs at least one origin, such as https://shop.example.com"
        seen: dict[str, int] = {}
        for i, origin in enumerate(self.allowed_origins):
            problem = origin_problem(origin)
            if problem is not None:
                yield f"allowed_origins[{i}]", problem
            elif origin in seen:
                yield f"allowed_origins[{i}]", f"duplicate of allowed_origins[{seen[origin]}]"
            seen.setdefault(origin, i)

    def _check_routes(self) -> Iterator[tuple[str, str]]:
        if len(self.routes) > MAX_ROUTES:
            yield (
                "routes",
                f"at most {MAX_ROUTES} patterns (each is a label value on every RUM series), got {len(self.routes)}",
            )
        seen: dict[str, int] = {}
        for i, pattern in enumerate(self.routes):
            problem = pattern_problem(pattern)
            if problem is not None:
                yield f"routes[{i}]", problem
                continue
            same = normalized(pattern)
            if same in seen:
                yield (
                    f"routes[{i}]",
                    f"matches the same paths as routes[{seen[same]}]; the first wins, so this one never does",
                )
            seen.setdefault(same, i)
