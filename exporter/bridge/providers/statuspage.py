"""Atlassian Statuspage, through its manage API v1 (``https://api.statuspage.io``).

Requests and answers as in tests/fakes/api-fixtures/statuspage-manage (the README
there names the sources).  The key goes in ``Authorization: OAuth <key>``; the
documented limit is one request per second per key, answered with 429 and
``Retry-After``.  The generic statuses are Statuspage's own names, so nothing is
translated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from exporter.bridge.providers.base import ComponentStatus, HttpProvider, id_from, segment


class StatuspageProvider(HttpProvider):
    name: ClassVar[str] = "statuspage"
    auth_scheme: ClassVar[str] = "OAuth"

    def _page(self) -> str:
        return f"/v1/pages/{segment(self.page_id)}"

    async def set_component(self, component_id: str, status: ComponentStatus) -> None:
        path = f"{self._page()}/components/{segment(component_id)}"
        await self.request("PATCH", path, {"component": {"status": status}})

    async def open_incident(
        self, title: str, message: str, component_ids: Sequence[str], status: ComponentStatus
    ) -> str:
        path = f"{self._page()}/incidents"
        body = {
            "incident": {
                "name": title,
                "status": "investigating",
                "body": message,
                "component_ids": list(component_ids),
                # sets the components with the incident, so the page never shows an incident on green components
                "components": dict.fromkeys(component_ids, status),
                "deliver_notifications": True,
            }
        }
        return id_from(await self.request("POST", path, body), self.name, f"POST {path}")

    async def resolve_incident(self, incident_id: str, message: str) -> None:
        path = f"{self._page()}/incidents/{segment(incident_id)}"
        await self.request("PATCH", path, {"incident": {"status": "resolved", "body": message}})
