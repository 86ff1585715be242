"""A fake lago-api built from tests/fakes/api-fixtures/lago.

Holds the fixture records (the invoices, subscriptions, customers and payment
requests in the list bodies) and answers list requests the way lago-api does:
Bearer auth (401 body ``error_401.json``), the filters its controllers accept
(``status``/``statuses[]``, ``payment_status``/``payment_statuses[]``,
``payment_overdue``; subscriptions read only ``status[]`` and default to
active), page/per_page pagination with ``meta.total_count``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.common import FakeServer, fixture, paginate


def records() -> dict[str, list[dict[str, Any]]]:
    return {
        "invoices": fixture("lago", "invoices_list.json")["invoices"]
        + fixture("lago", "invoices_list_failed_and_pending.json")["invoices"],
        "subscriptions": fixture("lago", "subscriptions_list.json")["subscriptions"]
        + fixture("lago", "subscriptions_list_active_and_terminated.json")["subscriptions"],
        "customers": fixture("lago", "customers_list.json")["customers"],
        "payment_requests": fixture("lago", "payment_requests_list.json")["payment_requests"],
    }


class FakeLago(FakeServer):
    name = "lago"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.data = records()
        self.healthy = True
        self.analytics_forbidden = False
        self.count_as_string = False
        self.drop_total_count = False

    def rate_limit_headers(self, seconds: float) -> dict[str, str]:
        return {
            "Retry-After": str(int(seconds)),
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(seconds)),
        }

    def rate_limit_body(self) -> Any:
        return {"status": 429, "error": "Too Many Requests"}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/v1/analytics/overdue_balance", self.overdue_balance)
        for resource in ("invoices", "subscriptions", "customers", "payment_requests"):
            app.router.add_get(f"/api/v1/{resource}", self.lister(resource))

    async def health(self, request: web.Request) -> web.Response:
        if self.healthy:
            return web.json_response(fixture("lago", "health_ok.json"))
        return web.json_response(fixture("lago", "health_unhealthy_500.json"), status=500)

    def authorized(self, request: web.Request) -> bool:
        # lago-api takes the second word of the header, whatever the first is
        words = request.headers.get("Authorization", "").split(" ")
        return len(words) > 1 and words[1] == self.api_key

    def unauthorized(self) -> web.Response:
        return web.json_response(fixture("lago", "error_401.json"), status=401)

    async def overdue_balance(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.unauthorized()
        if self.analytics_forbidden:
            return web.json_response({"status": 403, "error": "Forbidden", "code": "feature_unavailable"}, status=403)
        return web.json_response(fixture("lago", "analytics_overdue_balance.json"))

    def lister(self, resource: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            if not self.authorized(request):
                return self.unauthorized()
            rows = [r for r in self.data[resource] if matches(resource, r, request)]
            chunk, meta = paginate(rows, request)
            if self.count_as_string:
                meta["total_count"] = str(meta["total_count"])
            if self.drop_total_count:
                del meta["total_count"]
            return web.json_response({resource: chunk, "meta": meta})

        return handler


def _wanted(request: web.Request, scalar: str, array: str) -> list[str] | None:
    values = request.query.getall(array, []) or request.query.getall(scalar, [])
    return list(values) or None


def matches(resource: str, row: dict[str, Any], request: web.Request) -> bool:
    q = request.query
    if resource == "invoices":
        statuses = _wanted(request, "status", "statuses[]")
        payment = _wanted(request, "payment_status", "payment_statuses[]")
        if statuses and row["status"] not in statuses:
            return False
        if payment and row["payment_status"] not in payment:
            return False
        if "payment_overdue" in q and row["payment_overdue"] != (q["payment_overdue"] == "true"):
            return False
        return "currency" not in q or row["currency"] == q["currency"]
    if resource == "subscriptions":
        # subscription_index.rb: only status[], active when absent
        return row["status"] in (q.getall("status[]", []) or ["active"])
    if resource == "payment_requests":
        return "payment_status" not in q or row["payment_status"] == q["payment_status"]
    return True
