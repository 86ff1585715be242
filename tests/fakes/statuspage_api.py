"""A fake status-page write API: Atlassian Statuspage (manage API v1) or Instatus.

Built from tests/fakes/api-fixtures/statuspage-manage and tests/fakes/api-fixtures/instatus
(the README in each says where every shape came from).  Like the real services it
checks the key (401 with the provider's error body), the page id and component ids
(404), and the request body (422 for Statuspage, 400 for Instatus, on an unknown
status or a missing field); it keeps the components' statuses and the incidents it
was given, and records every request so tests can count the calls the bridge made.

Faults: ``fail_next(status, retry_after=..., count=...)`` answers the next requests
with that status (and ``Retry-After``); ``delay(seconds)`` makes every answer slow;
``rate_limit_per_second`` answers 429 with ``Retry-After`` like the real limit does.

    async with FakeStatusPageAPI("instatus", components=["redis"]) as page:
        ...  # page.url, page.page_id, page.api_key
        assert page.status_of("redis") == "major_outage"
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import time
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from aiohttp import web

from tests.fakes.common import FakeServer, fixture

Kind = Literal["statuspage", "instatus"]

# provider status -> the bridge's generic status; maintenance has no generic equivalent
STATUSPAGE_STATUSES = {
    "operational": "operational",
    "degraded_performance": "degraded_performance",
    "partial_outage": "partial_outage",
    "major_outage": "major_outage",
    "under_maintenance": "under_maintenance",
}
INSTATUS_STATUSES = {
    "OPERATIONAL": "operational",
    "DEGRADEDPERFORMANCE": "degraded_performance",
    "PARTIALOUTAGE": "partial_outage",
    "MAJOROUTAGE": "major_outage",
    "UNDERMAINTENANCE": "under_maintenance",
}
STATUSPAGE_INCIDENT_STATUSES = frozenset({"investigating", "identified", "monitoring", "resolved"})
INSTATUS_INCIDENT_STATUSES = frozenset({"INVESTIGATING", "IDENTIFIED", "MONITORING", "RESOLVED"})


# the parsed body, read once by the recording middleware; handlers take it from here
# because concurrent requests interleave in ``requests``
JSON_BODY: web.RequestKey[Any] = web.RequestKey("json_body", object)


class Recorded(NamedTuple):
    method: str
    path: str
    json: Any  # the parsed body, None when there was none or it was not JSON
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when it arrived, for timelines in failure messages


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeStatusPageAPI(FakeServer):
    """``components`` adds component ids (operational) next to the fixture's three."""

    def __init__(
        self,
        kind: Kind = "statuspage",
        *,
        components: list[str] | tuple[str, ...] = (),
        api_key: str = "fake-key-9c1f7e2a5b",
        page_id: str | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("statuspage", "instatus"):
            raise ValueError(f"unknown kind {kind!r}")
        self.kind: Kind = kind
        self.name = kind
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.responses: list[int] = []  # the status answered to each recorded request, same order
        self.incidents: dict[str, dict[str, Any]] = {}
        self.rate_limit_per_second: float | None = None
        self._fail: list[tuple[int, float | str | None]] = []
        self._delay = 0.0
        self._last_request = -math.inf
        self._ids = itertools.count(1)
        if kind == "statuspage":
            listed = fixture("statuspage-manage", "components_list.json")
            self.page_id = page_id or listed[0]["page_id"]
            self.component_records = {c["id"]: copy.deepcopy(c) for c in listed}
            template = self.component_records[listed[0]["id"]]
            operational = "operational"
        else:
            listed = fixture("instatus", "components_list.json")
            self.page_id = page_id or "ckf01fonve9i40a32oas5b0uw"
            self.component_records = {c["id"]: copy.deepcopy(c) for c in listed}
            template = self.component_records[listed[0]["id"]]
            operational = "OPERATIONAL"
        for cid in components:
            record = copy.deepcopy(template)
            record.update(id=cid, name=cid, status=operational)
            self.component_records[cid] = record

    # what tests read ----------------------------------------------------------
    @property
    def components(self) -> dict[str, str]:
        """Component id -> its current status as the provider spells it."""
        return {cid: rec["status"] for cid, rec in self.component_records.items()}

    def status_of(self, component_id: str) -> str:
        """The component's status in the bridge's spelling (``major_outage``)."""
        table = STATUSPAGE_STATUSES if self.kind == "statuspage" else INSTATUS_STATUSES
        return table[self.component_records[component_id]["status"]]

    def incident_resolved(self, incident_id: str) -> bool:
        return str(self.incidents[incident_id]["status"]).lower() == "resolved"

    def open_incidents(self) -> list[str]:
        return [iid for iid in self.incidents if not self.incident_resolved(iid)]

    def writes(self) -> list[Recorded]:
        """The recorded requests that changed something (not GETs)."""
        return [r for r in self.requests if r.method != "GET"]

    # faults -------------------------------------------------------------------
    def fail_next(self, status: int, retry_after: float | str | None = None, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``: seconds or an HTTP-date)."""
        self._fail.extend([(status, retry_after)] * count)

    def delay(self, seconds: float) -> None:
        """Sleep this long before every answer from now on (0 turns it off)."""
        self._delay = seconds

    # async context manager ------------------------------------------------------
    async def __aenter__(self) -> FakeStatusPageAPI:
        self._running = self.running()
        await self._running.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._running.__aexit__(None, None, None)

    # machinery ------------------------------------------------------------------
    def _error(self, status: int, message: str, code: str = "") -> web.Response:
        if self.kind == "statuspage":
            body: Any = {"message": message}
        else:
            body = {"error": {"code": code or "bad_request", "message": message}}
        return web.json_response(body, status=status)

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(math.ceil(seconds))}

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._gate)
        if self.kind == "statuspage":
            base = "/v1/pages/{page_id}"
            app.router.add_get(base + "/components", self.sp_list_components)
            app.router.add_patch(base + "/components/{component_id}", self.sp_update_component)
            app.router.add_put(base + "/components/{component_id}", self.sp_update_component)
            app.router.add_post(base + "/incidents", self.sp_create_incident)
            app.router.add_patch(base + "/incidents/{incident_id}", self.sp_update_incident)
            app.router.add_put(base + "/incidents/{incident_id}", self.sp_update_incident)
        else:
            app.router.add_get("/v1/{page_id}/components", self.in_list_components)
            app.router.add_put("/v1/{page_id}/components/{component_id}", self.in_update_component)
            app.router.add_put("/v2/{page_id}/components/{component_id}", self.in_update_component)
            app.router.add_post("/v1/{page_id}/incidents", self.in_create_incident)
            app.router.add_put("/v1/{page_id}/incidents/{incident_id}", self.in_update_incident)
            app.router.add_post("/v1/{page_id}/incidents/{incident_id}/incident-updates", self.in_add_update)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
        request[JSON_BODY] = body
        self.requests.append(Recorded(request.method, request.path, body, dict(request.headers), time.monotonic()))
        response = await self._answer(request, handler)
        self.responses.append(response.status)
        return response

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._fail:
            status, retry_after = self._fail.pop(0)
            resp = self._error(status, "injected fault", code="fault")
            if retry_after is not None:
                resp.headers["Retry-After"] = str(retry_after)
            return resp
        if self.rate_limit_per_second:
            now = time.monotonic()
            gap = 1.0 / self.rate_limit_per_second
            if now - self._last_request < gap:
                resp = self._error(429, "Rate limit exceeded", code="rate_limited")
                resp.headers.update(self.rate_limit_headers(gap - (now - self._last_request)))
                return resp
            self._last_request = now
        prefix = "OAuth " if self.kind == "statuspage" else "Bearer "
        if request.headers.get("Authorization") != prefix + self.api_key:
            if self.kind == "statuspage":
                return self._error(401, "Could not authenticate")
            return self._error(401, "Not authorized", code="forbidden")
        if request.match_info.get("page_id") != self.page_id:
            return self._error(404, "Not found", code="not_found")
        if request.method != "GET" and not request.content_type.startswith("application/json"):
            return self._error(400, "Content-Type must be application/json")
        return await handler(request)

    def _known(self, component_ids: Any) -> bool:
        return isinstance(component_ids, list) and all(
            isinstance(c, str) and c in self.component_records for c in component_ids
        )

    def _new_id(self) -> str:
        return f"{self.kind[:2]}inc{next(self._ids):07d}"

    # Statuspage ---------------------------------------------------------------
    async def sp_list_components(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.component_records.values()))

    async def sp_update_component(self, request: web.Request) -> web.Response:
        cid = request.match_info["component_id"]
        if cid not in self.component_records:
            return self._error(404, "Not found")
        body = request[JSON_BODY]
        fields = body.get("component") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._error(400, "component is missing")
        status = fields.get("status")
        if status is not None and status not in STATUSPAGE_STATUSES:
            return self._error(422, "Status is not included in the list")
        record = self.component_records[cid]
        if status is not None:
            record["status"] = status
        record["updated_at"] = _now()
        return web.json_response(record)

    async def sp_create_incident(self, request: web.Request) -> web.Response:
        body = request[JSON_BODY]
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._error(400, "incident is missing")
        name = fields.get("name")
        if not isinstance(name, str) or not name or len(name) > 255:
            return self._error(422, "Name can't be blank or longer than 255 characters")
        status = fields.get("status", "investigating")
        if status not in STATUSPAGE_INCIDENT_STATUSES:
            return self._error(422, "Status is not included in the list")
        message = fields.get("body")
        if message is not None and (not isinstance(message, str) or len(message) > 25000):
            return self._error(422, "Body is too long")
        component_ids = fields.get("component_ids", [])
        statuses = fields.get("components", {})
        if not self._known(component_ids) or not isinstance(statuses, dict) or not self._known(list(statuses)):
            return self._error(422, "Components are invalid")
        if any(s not in STATUSPAGE_STATUSES for s in statuses.values()):
            return self._error(422, "Component status is not included in the list")
        affected = []
        for cid, new in statuses.items():
            old = self.component_records[cid]["status"]
            self.component_records[cid]["status"] = new
            affected.append(
                {"code": cid, "name": self.component_records[cid]["name"], "old_status": old, "new_status": new}
            )
        incident = copy.deepcopy(fixture("statuspage-manage", "incident.json"))
        now = _now()
        iid = self._new_id()
        update = incident["incident_updates"][0]
        update.update(
            id=iid + "u1", incident_id=iid, body=message or "", status=status, affected_components=affected,
            created_at=now, updated_at=now, display_at=now,
            deliver_notifications=bool(fields.get("deliver_notifications", True)),
        )  # fmt: skip
        incident.update(
            id=iid, name=name, status=status, page_id=self.page_id, created_at=now, updated_at=now, started_at=now,
            shortlink=f"http://stspg.io/{iid}", impact_override=fields.get("impact_override"),
            components=[copy.deepcopy(self.component_records[c]) for c in dict.fromkeys([*component_ids, *statuses])],
            incident_updates=[update], resolved_at=now if status == "resolved" else None,
        )  # fmt: skip
        self.incidents[iid] = incident
        return web.json_response(incident, status=201)

    async def sp_update_incident(self, request: web.Request) -> web.Response:
        iid = request.match_info["incident_id"]
        if iid not in self.incidents:
            return self._error(404, "Not found")
        body = request[JSON_BODY]
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._error(400, "incident is missing")
        status = fields.get("status")
        if status is not None and status not in STATUSPAGE_INCIDENT_STATUSES:
            return self._error(422, "Status is not included in the list")
        statuses = fields.get("components", {})
        if not isinstance(statuses, dict) or not self._known(list(statuses)):
            return self._error(422, "Components are invalid")
        if any(s not in STATUSPAGE_STATUSES for s in statuses.values()):
            return self._error(422, "Component status is not included in the list")
        for cid, new in statuses.items():
            self.component_records[cid]["status"] = new
        incident = self.incidents[iid]
        now = _now()
        if status is not None:
            incident["status"] = status
            if status == "resolved":
                incident["resolved_at"] = now
        if "body" in fields or status is not None:
            update = copy.deepcopy(incident["incident_updates"][0])
            update.update(id=f"{iid}u{len(incident['incident_updates']) + 1}", body=fields.get("body") or "",
                          status=incident["status"], created_at=now, updated_at=now, display_at=now,
                          affected_components=[])  # fmt: skip
            incident["incident_updates"].insert(0, update)
        incident["updated_at"] = now
        return web.json_response(incident)

    # Instatus -----------------------------------------------------------------
    async def in_list_components(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.component_records.values()))

    async def in_update_component(self, request: web.Request) -> web.Response:
        cid = request.match_info["component_id"]
        if cid not in self.component_records:
            return self._error(404, "Component not found", code="not_found")
        body = request[JSON_BODY]
        if not isinstance(body, dict):
            return self._error(400, "Invalid body")
        status = body.get("status")
        if status is not None and status not in INSTATUS_STATUSES:
            return self._error(400, "Invalid status")
        record = self.component_records[cid]
        if status is not None:
            record["status"] = status
        return web.json_response(record)

    def _in_statuses(self, body: dict[str, Any]) -> dict[str, str] | None:
        raw = body.get("statuses", [])
        if not isinstance(raw, list):
            return None
        out: dict[str, str] = {}
        for item in raw:
            if not isinstance(item, dict) or item.get("id") not in self.component_records:
                return None
            if item.get("status") not in INSTATUS_STATUSES:
                return None
            out[item["id"]] = item["status"]
        return out

    def _in_update(self, body: dict[str, Any], status: str) -> dict[str, Any]:
        now = _now()
        message = body.get("message") or ""
        return {
            "id": self._new_id() + "u",
            "message": message,
            "messageHtml": f"<p>{message}</p>",
            "status": status,
            "notify": bool(body.get("notify", False)),
            "started": body.get("started") or now,
            "ended": None,
            "duration": None,
            "createdAt": now,
        }

    def _in_validate(self, body: Any, *, need_name: bool) -> tuple[dict[str, str] | None, web.Response | None]:
        if not isinstance(body, dict):
            return None, self._error(400, "Invalid body")
        if need_name and (not isinstance(body.get("name"), str) or not body["name"]):
            return None, self._error(400, "name is required")
        if "status" in body and body["status"] not in INSTATUS_INCIDENT_STATUSES:
            return None, self._error(400, "Invalid incident status")
        if "message" in body and not isinstance(body["message"], str):
            return None, self._error(400, "message must be a string")
        if "components" in body and not self._known(body["components"]):
            return None, self._error(400, "Unknown component")
        statuses = self._in_statuses(body)
        if statuses is None:
            return None, self._error(400, "Invalid statuses")
        return statuses, None

    async def in_create_incident(self, request: web.Request) -> web.Response:
        body = request[JSON_BODY]
        statuses, error = self._in_validate(body, need_name=True)
        if error is not None or statuses is None:
            return error or self._error(400, "Invalid body")
        if not body.get("message"):
            return self._error(400, "message is required")
        for cid, new in statuses.items():
            self.component_records[cid]["status"] = new
        incident = copy.deepcopy(fixture("instatus", "incident.json"))
        site = incident["components"][0]["site"]
        status = body.get("status", "INVESTIGATING")
        ids = list(dict.fromkeys([*body.get("components", []), *statuses]))
        incident.update(
            id=self._new_id(), name=body["name"], status=status, started=body.get("started") or _now(),
            resolved=None, updates=[self._in_update(body, status)],
            components=[
                {k: self.component_records[c][k] for k in ("id", "name", "status", "showUptime")} | {"site": site}
                for c in ids
            ],
        )  # fmt: skip
        self.incidents[incident["id"]] = incident
        return web.json_response(incident)

    def _in_apply(self, incident: dict[str, Any], body: dict[str, Any], statuses: dict[str, str]) -> None:
        for cid, new in statuses.items():
            self.component_records[cid]["status"] = new
        if "status" in body:
            incident["status"] = body["status"]
            if body["status"] == "RESOLVED":
                incident["resolved"] = _now()
        for comp in incident["components"]:
            comp["status"] = self.component_records[comp["id"]]["status"]

    async def in_update_incident(self, request: web.Request) -> web.Response:
        iid = request.match_info["incident_id"]
        if iid not in self.incidents:
            return self._error(404, "Incident not found", code="not_found")
        body = request[JSON_BODY]
        statuses, error = self._in_validate(body, need_name=False)
        if error is not None or statuses is None:
            return error or self._error(400, "Invalid body")
        incident = self.incidents[iid]
        if "name" in body:
            incident["name"] = body["name"]
        self._in_apply(incident, body, statuses)
        if "message" in body:
            incident["updates"].append(self._in_update(body, incident["status"]))
        return web.json_response(incident)

    async def in_add_update(self, request: web.Request) -> web.Response:
        iid = request.match_info["incident_id"]
        if iid not in self.incidents:
            return self._error(404, "Incident not found", code="not_found")
        body = request[JSON_BODY]
        statuses, error = self._in_validate(body, need_name=False)
        if error is not None or statuses is None:
            return error or self._error(400, "Invalid body")
        if not body.get("message") or "status" not in body:
            return self._error(400, "message and status are required")
        incident = self.incidents[iid]
        self._in_apply(incident, body, statuses)
        update = self._in_update(body, body["status"])
        incident["updates"].append(update)
        answer = copy.deepcopy(update)
        answer["incident"] = {k: incident[k] for k in ("id", "name", "started", "status", "components")}
        return web.json_response(answer)
