"""Fake Resend API serving tests/fakes/api-fixtures/resend.

Auth as Resend answers it: no key 401 ``missing_api_key``, an unknown key 403
``invalid_api_key``, a sending-only key 401 ``restricted_api_key``.  Lists are
cursor-paginated (``limit`` 1..100, ``after`` = an id, ``has_more``), emails
newest first.  Rate-limit headers are lowercase, as Resend sends them; with
``limit_per_second`` set the fake enforces the limit over a sliding second and
answers 429 with ``retry-after`` like the real API.
"""

from __future__ import annotations

import copy
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.common import FakeServer, fixture


def resend_time(when: datetime) -> str:
    """Resend's timestamp form: ``2023-04-03 22:13:42.674981+00``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


class FakeResend(FakeServer):
    name = "resend"

    def __init__(self, api_key: str, *, sending_only_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.sending_only_key = sending_only_key
        self.limit_per_second: int | None = None
        self._recent: list[float] = []
        self.domains: list[dict[str, Any]] = copy.deepcopy(fixture("resend", "domains_list.json")["data"])
        # the fixture's emails, re-dated so the newest was created a minute ago and the spacing is kept
        listed = fixture("resend", "emails_list.json")["data"]
        newest = max(datetime.fromisoformat(e["created_at"]) for e in listed)
        now = datetime.now(UTC) - timedelta(minutes=1)
        self.emails: list[dict[str, Any]] = []
        for e in listed:
            e = copy.deepcopy(e)
            e["created_at"] = resend_time(now - (newest - datetime.fromisoformat(e["created_at"])))
            self.emails.append(e)
        self.pages_asked: list[dict[str, str]] = []

    def add_emails(self, last_events: list[str], created: datetime | None = None) -> list[dict[str, Any]]:
        """More emails shaped like the fixture's first one, created before the ones already there."""
        template = fixture("resend", "emails_list.json")["data"][0]
        oldest = min(datetime.fromisoformat(e["created_at"]) for e in self.emails) if self.emails else None
        start = created or (oldest - timedelta(seconds=1) if oldest else datetime.now(UTC))
        added = []
        for i, event in enumerate(last_events):
            e = copy.deepcopy(template)
            e["id"] = str(uuid.uuid4())
            e["last_event"] = event
            e["created_at"] = resend_time(start - timedelta(seconds=i))
            added.append(e)
        self.emails.extend(added)
        self.emails.sort(key=lambda e: datetime.fromisoformat(e["created_at"]), reverse=True)
        return added

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {
            "ratelimit-limit": "2",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(seconds)),
            "retry-after": str(int(seconds)),
        }

    def rate_limit_body(self) -> Any:
        return fixture("resend", "error_429_rate_limit.json")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/domains", self.list_domains)
        app.router.add_get("/emails", self.list_emails)

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:]:
            return web.json_response(fixture("resend", "error_401_missing_api_key.json"), status=401)
        key = header[7:]
        if key == self.sending_only_key:
            return web.json_response(
                {
                    "statusCode": 401,
                    "message": "This API key is restricted to only send emails",
                    "name": "restricted_api_key",
                },
                status=401,
            )
        if key != self.api_key:
            return web.json_response(
                {"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"}, status=403
            )
        return None

    def _limit(self) -> dict[str, str] | web.Response:
        if self.limit_per_second is None:
            return {}
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < 1.0]
        if len(self._recent) >= self.limit_per_second:
            return web.json_response(self.rate_limit_body(), status=429, headers=self.rate_limit_headers(1))
        self._recent.append(now)
        return {
            "ratelimit-limit": str(self.limit_per_second),
            "ratelimit-remaining": str(self.limit_per_second - len(self._recent)),
            "ratelimit-reset": "1",
        }

    def _page(self, request: web.Request, records: list[dict[str, Any]]) -> web.Response:
        denied = self._auth(request)
        if denied is not None:
            return denied
        headers = self._limit()
        if isinstance(headers, web.Response):
            return headers
        self.pages_asked.append(dict(request.query))
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return web.json_response(
                {
                    "statusCode": 422,
                    "message": "The `limit` parameter must be between 1 and 100",
                    "name": "validation_error",
                },
                status=422,
            )
        start = 0
        after = request.query.get("after")
        if after is not None:
            ids = [r["id"] for r in records]
            if after not in ids:
                return web.json_response(
                    {"statusCode": 422, "message": "Invalid `after` cursor", "name": "validation_error"}, status=422
                )
            start = ids.index(after) + 1
        chunk = records[start : start + limit]
        body = {"object": "list", "has_more": start + limit < len(records), "data": chunk}
        return web.json_response(body, headers=headers)

    async def list_domains(self, request: web.Request) -> web.Response:
        return self._page(request, self.domains)

    async def list_emails(self, request: web.Request) -> web.Response:
        return self._page(request, self.emails)
