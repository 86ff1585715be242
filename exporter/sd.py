"""HTTP service discovery: every configured target, in Prometheus's ``http_sd_configs`` format.

``GET /sd`` answers one target group per configured target, so that Prometheus scrapes
``/probe?target=NAME&collector=KIND`` once per target, each with its own ``up``, scrape
timeout and interval::

    [{"targets": ["exporter-0:9847"],
      "labels": {"__metrics_path__": "/probe", "__scheme__": "http",
                 "__param_target": "cache", "__param_collector": "redis",
                 "instance": "redis/cache",
                 "__meta_stack_exporter_collector": "redis",
                 "__meta_stack_exporter_target": "cache"}},
     ...]

* The address in ``targets`` is this exporter as Prometheus reaches it: the request's
  ``Host`` header (the address Prometheus fetched this list from), or the host and port of
  ``--web.external-url`` when a proxy or a load balancer stands between them; the URL's
  scheme and path prefix then go into ``__scheme__`` and ``__metrics_path__``.  So N
  replicas with the same config each list every target at their own address, and
  Prometheus's ``hashmod`` relabelling picks one replica per target (docs/scale-out.md).
* ``__param_collector`` is always set: target names are unique per config section only
  (five email sections may each have a target called ``mail``).  For the same reason
  ``instance`` is ``KIND/NAME``, so two targets never share an ``up`` series.
* The source is a ``__meta_`` label, for ``keep``/``drop`` relabelling (one job per
  source, each with its own interval), and is dropped after relabelling.  A plain
  ``collector`` target label would clash with the ``collector`` label of the exporter's
  ``stack_exporter_collector_*`` series, which Prometheus would rename ``exported_collector``.
* Nothing in the list comes from the config's addresses or secrets: names and source keys
  only.  The endpoint sits behind the same basic auth and TLS as ``/metrics``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.scrape import Engine

SD_PATH = "/sd"
PROBE_PATH = "/probe"

COLLECTOR_LABEL = "__meta_stack_exporter_collector"
TARGET_LABEL = "__meta_stack_exporter_target"

# host[:port] as a Host header carries it: a name, an IPv4 address or a bracketed IPv6 one
_HOST_PORT = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}))(?::(?P<port>[0-9]{1,5}))?$"
)


class AddressError(ValueError):
    """No usable address for the targets: a missing or malformed Host header, a bad URL."""


@dataclass(frozen=True)
class ReachedAt:
    """How Prometheus reaches this exporter: ``scheme://address/prefix``."""

    scheme: str
    address: str  # host[:port], as it goes into ``targets``
    prefix: str = ""  # a path prefix without its trailing slash ("/exporter"), or ""

    @property
    def metrics_path(self) -> str:
        return self.prefix + PROBE_PATH


def _check_host(text: str, what: str) -> str:
    match = _HOST_PORT.match(text)
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise AddressError(f"{what} {text!r} is not HOST or HOST:PORT")
    return text


def parse_external_url(text: str) -> ReachedAt:
    """``--web.external-url``: ``http(s)://HOST[:PORT][/PREFIX]``, as Prometheus reaches the exporter."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https"):
        raise AddressError(
            f"invalid --web.external-url {text!r}: expected http://HOST:PORT or https://HOST:PORT[/PREFIX]"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AddressError(f"invalid --web.external-url {text!r}: no credentials, query or fragment")
    try:
        address = _check_host(parts.netloc, "--web.external-url host")
    except AddressError as exc:
        raise AddressError(f"invalid --web.external-url {text!r}: {exc}") from None
    return ReachedAt(parts.scheme, address, parts.path.rstrip("/"))


def reached_at(host_header: str | None, scheme: str, external: ReachedAt | None) -> ReachedAt:
    """The external URL when one is set, else the ``Host`` the request came in on."""
    if external is not None:
        return external
    if not host_header:
        raise AddressError(
            "the request has no Host header, so the exporter cannot tell its own address: set --web.external-url"
        )
    return ReachedAt(scheme, _check_host(host_header.strip(), "Host header"))


def target_groups(engine: Engine, at: ReachedAt) -> list[dict[str, object]]:
    """One ``http_sd_configs`` target group per configured target, in config order."""
    groups: list[dict[str, object]] = []
    for kind, name in engine.runners:
        groups.append(
            {
                "targets": [at.address],
                "labels": {
                    "__metrics_path__": at.metrics_path,
                    "__scheme__": at.scheme,
                    "__param_target": name,
                    "__param_collector": kind,
                    "instance": f"{kind}/{name}",
                    COLLECTOR_LABEL: kind,
                    TARGET_LABEL: name,
                },
            }
        )
    return groups
