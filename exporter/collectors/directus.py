"""Directus (CMS): ping, health checks, version and item counts, for Directus 11.x and 12.x.

Round trips per collection (at most once per ``refresh_interval``, 60 s by
default): ``/server/ping``, then ``/server/health``, ``/server/info`` and one
``/items/<collection>?aggregate[count]=*`` per configured collection, at most
four at a time.  A sample (target label added by the engine)::

    directus_up{target="cms"} 1.0
    directus_info{target="cms",version="12.4.0"} 1.0
    directus_health_status{target="cms",status="ok"} 1.0
    directus_health_database_response_time_seconds{target="cms",client="sqlite3"} 0.007
    directus_health_database_connections_used{target="cms",client="pg"} 0.0
    directus_health_storage_response_time_seconds{target="cms",location="local"} 0.0065
    directus_health_check_ok{target="cms",check="email:connection"} 1.0
    directus_items{target="cms",collection="widgets"} 3.0

Differences between versions handled here: 12.x answers an anonymous
``/server/health`` with 403 (11.x: ``{"status":"ok"}``); a non-admin token gets
only the status, an admin the checks, keyed by database client
(``sqlite3:responseTime``, ``pg:connectionsUsed``); ``status: error`` comes with
HTTP 503; on PostgreSQL counts come back as strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.api import ApiCollector, HttpError, RateLimited, ShapeError, field, gather_all, number
from exporter.collectors.base import CollectError
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, Secret, TargetConfig, check_url

HEALTH_STATES = ("ok", "warn", "error")
PROVIDER = "Directus"


@dataclass(frozen=True, kw_only=True)
class DirectusTarget(TargetConfig):
    name: str
    url: str
    # a static user token; an admin's gives the health checks and version, any user's the status
    token: Secret | None = None
    collections: tuple[str, ...] = ()
    refresh_interval: Duration = Duration(60.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://cms.example.com", credential_key="token")
        for i, name in enumerate(self.collections):
            if not name or "/" in name:
                yield f"collections[{i}]", "must be a collection name"
        if len(set(self.collections)) != len(self.collections):
            yield "collections", "lists a collection twice"


class DirectusCollector(ApiCollector[DirectusTarget]):
    config_class = DirectusTarget
    provider = PROVIDER
    up_metric = "directus_up"
    up_help = "1 if Directus answered /server/ping with pong, 0 if not (unreachable, or too slow)."

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.config.token is not None:
            h["Authorization"] = f"Bearer {self.config.token.get()}"
        return h

    async def fetch(self) -> list[Metric]:
        base = self.config.url.rstrip("/")
        try:
            ping = await self.http.request("GET", f"{base}/server/ping", check_auth=False)
        except RateLimited:
            raise
        except HttpError as exc:
            raise CollectError(str(exc), partial=self.down()) from None
        if ping.body.strip() != b"pong":
            raise CollectError(
                f"Directus: /server/ping answered {ping.body[:40]!r}, expected pong", partial=self.down()
            )
        up = GaugeMetricFamily("directus_up", self.up_help, value=1)
        try:
            health, info, *counts = await gather_all(
                self._health(base), self._info(base), *(self._count(base, c) for c in self.config.collections)
            )
        except RateLimited:
            raise
        except CollectError as exc:
            raise CollectError(str(exc), partial=[up]) from None
        families: list[Metric] = [up, *health, *info]
        if self.config.collections:
            items = GaugeMetricFamily(
                "directus_items", "Items in the collection (aggregate[count]=*).", labels=["collection"]
            )
            for name, n in zip(self.config.collections, counts, strict=True):
                items.add_metric([name], n)
            families.append(items)
        return families

    async def _health(self, base: str) -> list[Metric]:
        resp = await self.http.request("GET", f"{base}/server/health", headers=self._headers(), ok=(200, 503, 403))
        if resp.status == 403:
            if self.config.token is not None:
                raise CollectError("Directus: /server/health refused the configured token (HTTP 403)")
            # 12.x hides health from anonymous users: report what we can
            self.log.debug("health needs a token on Directus 12", extra={"kv": {"target": self.config.name}})
            return []
        body: Any = self.http.parse_json(resp, "GET /server/health")
        status = field(body, "status", PROVIDER, "/server/health")
        if not isinstance(status, str):
            raise ShapeError("Directus: field 'status' of /server/health is not a string")
        state = GaugeMetricFamily(
            "directus_health_status",
            "Directus's own health verdict as a state set: 1 for the current status (ok, warn, error).",
            labels=["status"],
        )
        for s in (*HEALTH_STATES, *(() if status in HEALTH_STATES else (status,))):
            state.add_metric([s], 1.0 if s == status else 0.0)
        return [state, *_check_families(body.get("checks") or {})]

    async def _info(self, base: str) -> list[Metric]:
        if self.config.token is None:
            return []  # anonymous /server/info has no version
        resp = await self.http.request("GET", f"{base}/server/info", headers=self._headers(), ok=(200, 403))
        if resp.status != 200:
            return []
        body: Any = self.http.parse_json(resp, "GET /server/info")
        version = body.get("data", {}).get("version") if isinstance(body.get("data"), dict) else None
        if not isinstance(version, str):
            return []  # a token that may not see the version
        info = GaugeMetricFamily(
            "directus_info", "Always 1; the version label is what /server/info reports.", labels=["version"]
        )
        info.add_metric([version], 1.0)
        return [info]

    async def _count(self, base: str, collection: str) -> float:
        url = f"{base}/items/{quote(collection, safe='')}"
        resp = await self.http.request(
            "GET", url, params={"aggregate[count]": "*"}, headers=self._headers(), ok=(200, 403), check_auth=False
        )
        if resp.status == 403:
            # Directus answers 403 for missing collections too, never 404
            raise CollectError(
                f"Directus: collection {collection!r} does not exist or the token may not read it (HTTP 403)"
            )
        body: Any = self.http.parse_json(resp, f"GET /items/{collection}")
        data = field(body, "data", PROVIDER, f"/items/{collection}")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise ShapeError(f"Directus: field 'data' of /items/{collection} is not a list with one row")
        return number(
            field(data[0], "count", PROVIDER, f"/items/{collection} data[0]"), PROVIDER, f"{collection}.count"
        )


def _check_families(checks: Any) -> list[Metric]:
    if not isinstance(checks, dict):
        raise ShapeError("Directus: field 'checks' of /server/health is not an object")
    rt = GaugeMetricFamily(
        "directus_health_database_response_time_seconds",
        "Database round trip Directus measured for its health check.",
        labels=["client"],
    )
    used = GaugeMetricFamily(
        "directus_health_database_connections_used", "Database connections in use (Directus's pool).", labels=["client"]
    )
    avail = GaugeMetricFamily(
        "directus_health_database_connections_available",
        "Database connections free in Directus's pool.",
        labels=["client"],
    )
    storage = GaugeMetricFamily(
        "directus_health_storage_response_time_seconds",
        "Storage write/read round trip Directus measured per storage location.",
        labels=["location"],
    )
    ok = GaugeMetricFamily(
        "directus_health_check_ok",
        "1 if the health check's status is ok, 0 if warn or error (checks named as Directus names them).",
        labels=["check"],
    )
    for key, entries in checks.items():
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
            raise ShapeError(f"Directus: health check {key!r} is not a list of results")
        entry = entries[0]
        ok.add_metric([key], 1.0 if entry.get("status") == "ok" else 0.0)
        parts = key.split(":")
        observed = entry.get("observedValue")
        if observed is None:
            continue
        value = number(observed, PROVIDER, f"checks.{key}.observedValue")
        if entry.get("observedUnit") == "ms":
            value /= 1000
        if parts[0] == "storage" and len(parts) == 3 and parts[2] == "responseTime":
            storage.add_metric([parts[1]], value)
        elif len(parts) == 2 and entry.get("componentType") == "datastore":
            target = {"responseTime": rt, "connectionsUsed": used, "connectionsAvailable": avail}.get(parts[1])
            if target is not None:
                target.add_metric([parts[0]], value)
    found: list[Metric] = [f for f in (rt, used, avail, storage) if f.samples]
    return [*found, ok]


COLLECTOR = DirectusCollector
