"""Instatus (``https://api.instatus.com``).

Requests and answers as in tests/fakes/api-fixtures/instatus (the README there
names the sources).  The key goes in ``Authorization: Bearer <key>``; statuses are
Instatus's upper-case names.  An incident is resolved by posting an incident
update with status ``RESOLVED``: that is what puts the resolution message on the
page's timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from exporter.bridge.providers.base import ComponentStatus, HttpProvider, id_from, segment

STATUS_NAMES: Mapping[ComponentStatus, str] = {
    "operational": "OPERATIONAL",
    "degraded_performance": "DEGRADEDPERFORMANCE",
    "partial_outage": "PARTIALOUTAGE",
    "major_outage": "MAJOROUTAGE",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class InstatusProvider(HttpProvider):
    name: ClassVar[str] = "instatus"
    auth_scheme: ClassVar[str] = "Bearer"

    async def set_component(self, component_id: str, status: ComponentStatus) -> None:
        path = f"/v2/{segment(self.page_id)}/components/{segment(component_id)}"
        # only the field that changes: a PUT with name or order would overwrite edits made on the page
        await self.request("PUT", path, {"status": STATUS_NAMES[status]})

    async def open_incident(
        self, title: str, message: str, component_ids: Sequence[str], status: ComponentStatus
    ) -> str:
        path = f"/v1/{segment(self.page_id)}/incidents"
        body = {
            "name": title,
            "message": message,
            "components": list(component_ids),
            "started": _now(),
            "status": "INVESTIGATING",
            "notify": True,
            "statuses": [{"id": cid, "status": STATUS_NAMES[status]} for cid in component_ids],
        }
        return id_from(await self.request("POST", path, body), self.name, f"POST {path}")

    async def resolve_incident(self, incident_id: str, message: str) -> None:
        path = f"/v1/{segment(self.page_id)}/incidents/{segment(incident_id)}/incident-updates"
        body = {"message": message, "status": "RESOLVED", "notify": True, "started": _now()}
        await self.request("POST", path, body)
