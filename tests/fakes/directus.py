"""A fake Directus 11.x serving bodies captured from a real 11.3.5 (tests/fakes/api-fixtures/directus-real).

Directus 11.4 and later need Node 22; the suite starts a real 12.x (tests/servers/directus.py),
and 11.x is served from what a real 11.3.5 sent: ``/server/ping``, the admin's ``/server/health``
and ``/server/info``, and an item count.  11.3.5 has no ``/metrics`` route.  ``health`` and
``count_body`` are what ``/server/health`` and ``/items/widgets`` answer; tests change them
(the 503 error body from ``directus/``, a count without its field).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.common import FIXTURES, FakeServer

V11 = "11.3.5"


def real(version: str, name: str) -> Any:
    """A body a real Directus `version` sent (directus-real/<version>/<name>)."""
    return json.loads((FIXTURES / "directus-real" / version / name).read_text())


class FakeDirectus(FakeServer):
    """Serves captured bodies: 11.3.5 from directus-real, the 503 error from directus/."""

    name = "directus"

    def __init__(self, health: tuple[int, Any], count: Any, token: str) -> None:
        super().__init__()
        self.health, self.count_body, self.token = health, count, token

    @classmethod
    def v11(cls, token: str) -> FakeDirectus:
        """A healthy 11.3.5 (SQLite) as its admin sees it; counts as PostgreSQL sends them (strings)."""
        return cls(
            (200, real(V11, "server_health_admin.json")), real("12.4.0-postgres", "items_widgets_count.json"), token
        )

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(int(seconds))}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/server/ping", self.ping)
        app.router.add_get("/server/health", self.serve_health)
        app.router.add_get("/server/info", self.info)
        app.router.add_get("/items/widgets", self.items)

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong", content_type="text/html")

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def serve_health(self, request: web.Request) -> web.Response:
        status, body = self.health
        return web.json_response(body, status=status, content_type="application/health+json")

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(real(V11, "server_info_admin.json"))

    async def items(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return web.json_response(
                {"errors": [{"message": "Invalid user credentials.", "extensions": {"code": "INVALID_CREDENTIALS"}}]},
                status=401,
            )
        return web.json_response(self.count_body)
