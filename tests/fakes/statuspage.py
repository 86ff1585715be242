"""A fake Statuspage (Atlassian) v2 page serving tests/fakes/api-fixtures/statuspage.

Public, no auth, like the hosted pages (status.sendgrid.com, status.mailgun.com).
``summary`` is the body served at /api/v2/summary.json; tests edit it to move
the page between states.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from tests.fakes.common import FakeServer, fixture


class FakeStatuspage(FakeServer):
    name = "statuspage"

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, Any] = copy.deepcopy(fixture("statuspage", "summary.json"))

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        # hosted pages sit behind a CDN that answers 429 with Retry-After
        return {"Retry-After": str(int(seconds))}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/summary.json", self.serve_summary)
        app.router.add_get("/api/v2/status.json", self.serve_status)
        app.router.add_get("/api/v2/components.json", self.serve_components)
        app.router.add_get("/api/v2/incidents/unresolved.json", self.serve_unresolved)

    async def serve_summary(self, request: web.Request) -> web.Response:
        return web.json_response(self.summary)

    async def serve_status(self, request: web.Request) -> web.Response:
        return web.json_response({"page": self.summary["page"], "status": self.summary["status"]})

    async def serve_components(self, request: web.Request) -> web.Response:
        return web.json_response({"page": self.summary["page"], "components": self.summary["components"]})

    async def serve_unresolved(self, request: web.Request) -> web.Response:
        return web.json_response({"page": self.summary["page"], "incidents": self.summary["incidents"]})
