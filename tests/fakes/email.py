"""Fake SendGrid, Mailgun and Postmark APIs serving tests/fakes/api-fixtures/{sendgrid,mailgun,postmark}.

Each checks auth the way the real API does and answers with the real error
bodies and rate-limit headers.  Stats are kept per day: the fixture's rows are
re-dated so that the newest one is today, which is what a collector asks for.
"""

from __future__ import annotations

import base64
import copy
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes.common import FakeServer, fixture


class FakeSendgrid(FakeServer):
    name = "sendgrid"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        rows = fixture("sendgrid", "v3_stats.json")
        today = datetime.now(UTC).date()
        # newest fixture row becomes today, the others the days before
        self.days: dict[str, Any] = {
            (today - timedelta(days=len(rows) - 1 - i)).isoformat(): copy.deepcopy(row["stats"])
            for i, row in enumerate(rows)
        }

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        # SendGrid sends a Unix time, no Retry-After
        return {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time() + seconds)),
        }

    def rate_limit_body(self) -> Any:
        return fixture("sendgrid", "error_429.json")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v3/stats", self.stats)

    async def stats(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(fixture("sendgrid", "error_401.json"), status=401)
        start = request.query.get("start_date")
        if not start:
            return web.json_response({"errors": [{"field": "start_date", "message": "missing"}]}, status=400)
        end = request.query.get("end_date", datetime.now(UTC).date().isoformat())
        body = [{"date": d, "stats": s} for d, s in sorted(self.days.items()) if start <= d <= end]
        return web.json_response(body)


class FakeMailgun(FakeServer):
    name = "mailgun"

    def __init__(self, api_key: str, domain: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.domain = domain
        self.body: dict[str, Any] = copy.deepcopy(fixture("mailgun", "v3_domain_stats_total.json"))
        self.events_asked: list[list[str]] = []

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(int(seconds)), "X-RateLimit-Remaining": "0"}

    def rate_limit_body(self) -> Any:
        return {"message": "Too many requests"}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v3/{domain}/stats/total", self.stats)

    async def stats(self, request: web.Request) -> web.Response:
        want = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if request.headers.get("Authorization") != want:
            # Mailgun answers a plain-text "Forbidden" with 401
            return web.Response(text="Forbidden", status=401)
        if request.match_info["domain"] != self.domain:
            return web.json_response({"message": "Domain not found"}, status=404)
        events = request.query.getall("event", [])
        if not events:
            return web.json_response({"message": "'event' parameter is required"}, status=400)
        self.events_asked.append(events)
        return web.json_response(self.body)


class FakePostmark(FakeServer):
    name = "postmark"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.today = copy.deepcopy(fixture("postmark", "stats_outbound.json"))
        # a longer window: the fixture day scaled, so its rates differ from today's
        self.window = copy.deepcopy(self.today)
        self.window.update(Sent=self.today["Sent"] * 30, Bounced=self.today["Bounced"] * 3, BounceRate=1.04)
        self.windows_asked: list[tuple[str, str]] = []

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {"Retry-After": str(int(seconds))}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/stats/outbound", self.stats)

    async def stats(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Postmark-Server-Token")
        if token is None:
            return web.json_response(fixture("postmark", "error_401.json"), status=401)
        if token != self.token:
            return web.json_response(
                {"ErrorCode": 10, "Message": "The Server API token you provided is invalid."}, status=401
            )
        if "json" not in request.headers.get("Accept", ""):
            return web.json_response({"ErrorCode": 0, "Message": "Accept: application/json required"}, status=406)
        start, end = request.query.get("fromdate", ""), request.query.get("todate", "")
        self.windows_asked.append((start, end))
        today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
        return web.json_response(self.today if start == end == today else self.window)


def utc_today() -> date:
    return datetime.now(UTC).date()
