"""Lago (billing): health, invoice, subscription, customer and payment-request counts.

Counts are read cheaply: each is one list request with ``per_page=1`` whose
``meta.total_count`` is the answer, with one scalar filter value per request
(``status=finalized&payment_status=failed``) rather than ``statuses[]`` arrays,
so every count is exact for that one combination.  Subscriptions are the
exception: lago-api reads only ``status[]`` there and defaults to active, so
each status is passed explicitly, one per request.  A sample (target label
added by the engine)::

    lago_up{target="billing"} 1.0
    lago_info{target="billing",version="v1.30.0"} 1.0
    lago_api_authorized{target="billing"} 1.0
    lago_invoices{target="billing",status="finalized",payment_status="failed"} 3.0
    lago_invoices_payment_overdue{target="billing"} 2.0
    lago_overdue_balance_cents{target="billing",currency="EUR"} 12000.0
    lago_subscriptions{target="billing",status="terminated"} 1.0
    lago_customers{target="billing"} 70.0
    lago_payment_requests{target="billing",payment_status="failed"} 4.0

Service down and wrong key differ in ``lago_up``: ``lago_up 0`` means ``/health``
did not answer 200 (unreachable, or its database is down); ``lago_up 1`` with
``lago_api_authorized 0`` means Lago is running but rejects the API key.

Round trips per collection: ``/health``, then 26 list/analytics requests, at
most four at a time, at most once per ``refresh_interval`` (60 s by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.api import (
    ApiCollector,
    AuthError,
    HttpError,
    RateLimited,
    ShapeError,
    field,
    gather_all,
    list_field,
    number,
    number_field,
)
from exporter.collectors.base import CollectError
from exporter.redact import url_without_userinfo
from exporter.schema import Duration, Secret, TargetConfig, check_url

INVOICE_STATUSES = ("draft", "finalized", "failed", "pending", "voided")
PAYMENT_STATUSES = ("pending", "failed", "succeeded")
SUBSCRIPTION_STATUSES = ("active", "pending", "terminated", "canceled")


@dataclass(frozen=True, kw_only=True)
class LagoTarget(TargetConfig):
    name: str
    # lago-api's base URL: https://api.getlago.com, https://api.eu.getlago.com or http://lago-api:3000
    url: str
    api_key: Secret
    refresh_interval: Duration = Duration(60.0)

    def check(self) -> Iterable[tuple[str, str]]:
        yield from check_url(self.url, example="https://api.getlago.com", credential_key="api_key")
        if not self.api_key.get():
            yield "api_key", "must not be empty"

    def base(self) -> str:
        """Scheme and host, with a pasted ``/api/v1`` suffix removed."""
        url = self.url.rstrip("/")
        return url.removesuffix("/api/v1")


class LagoCollector(ApiCollector[LagoTarget]):
    config_class = LagoTarget
    provider = "Lago"
    up_metric = "lago_up"
    up_help = "1 if Lago's /health answered 200, 0 if it is unreachable or reports itself unhealthy."

    def describe(self) -> str:
        return url_without_userinfo(self.config.base())

    async def fetch(self) -> list[Metric]:
        base = self.config.base()
        up, info = await self._health(base)
        headers = {"Authorization": f"Bearer {self.config.api_key.get()}", "Accept": "application/json"}
        api = f"{base}/api/v1"

        async def count(resource: str, params: list[tuple[str, str]]) -> float:
            body = await self.http.get_json(
                f"{api}/{resource}", params=[*params, ("page", "1"), ("per_page", "1")], headers=headers
            )
            list_field(body, resource, self.provider, f"GET /{resource}")
            return number_field(body, "meta.total_count", self.provider, f"GET /{resource}")

        invoice_combos = [(s, p) for s in INVOICE_STATUSES for p in PAYMENT_STATUSES]
        try:
            results = await gather_all(
                *(count("invoices", [("status", s), ("payment_status", p)]) for s, p in invoice_combos),
                count("invoices", [("payment_overdue", "true")]),
                *(count("subscriptions", [("status[]", s)]) for s in SUBSCRIPTION_STATUSES),
                count("customers", []),
                *(count("payment_requests", [("payment_status", p)]) for p in PAYMENT_STATUSES),
                self._overdue_balance(api, headers),
            )
        except RateLimited:
            raise  # the base class serves the last good result
        except AuthError as exc:
            authorized = GaugeMetricFamily(
                "lago_api_authorized", "1 if Lago accepted the API key, 0 if it answered 401/403.", value=0
            )
            raise CollectError(str(exc), partial=[up, info, authorized]) from None
        except CollectError as exc:
            raise CollectError(str(exc), partial=[up, info]) from None

        return [up, info, *_count_families(invoice_combos, iter(results))]

    async def _health(self, base: str) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "lago_info", "Always 1; the version label is what /health reports.", labels=["version"]
        )
        try:
            resp = await self.http.request("GET", f"{base}/health", ok=(200, 500), check_auth=False)
        except HttpError as exc:
            raise CollectError(str(exc), partial=[self._up(0)]) from None
        body = self.http.parse_json(resp, "GET /health") if resp.status in (200, 500) else {}
        if isinstance(body, dict) and isinstance(body.get("version"), str):
            info.add_metric([body["version"]], 1.0)
        if resp.status != 200:
            message = body.get("message", "") if isinstance(body, dict) else ""
            details = body.get("details", "") if isinstance(body, dict) else ""
            text = ": ".join(str(x) for x in (message, details) if x)
            raise CollectError(
                f"Lago: /health answered HTTP {resp.status}" + (f" ({text[:200]})" if text else ""),
                partial=[self._up(0), info],
            )
        return self._up(1), info

    def _up(self, value: float) -> GaugeMetricFamily:
        assert self.up_metric is not None
        return GaugeMetricFamily(self.up_metric, self.up_help, value=value)

    async def _overdue_balance(self, api: str, headers: dict[str, str]) -> dict[str, float] | None:
        """Per-currency sum; None when the plan has no analytics (lago-api answers 403)."""
        resp = await self.http.request("GET", f"{api}/analytics/overdue_balance", headers=headers, ok=(200, 403))
        if resp.status == 403:
            return None
        body: Any = self.http.parse_json(resp, "GET /analytics/overdue_balance")
        rows = list_field(body, "overdue_balances", self.provider, "GET /analytics/overdue_balance")
        out: dict[str, float] = {}
        for i, row in enumerate(rows):
            currency = field(row, "currency", self.provider, f"overdue_balances[{i}]")
            if not isinstance(currency, str):
                raise ShapeError(f"Lago: field 'overdue_balances[{i}].currency' is not a string")
            cents = number(
                field(row, "amount_cents", self.provider, f"overdue_balances[{i}]"),
                self.provider,
                f"overdue_balances[{i}].amount_cents",
            )
            out[currency] = out.get(currency, 0.0) + cents
        return out


def _count_families(invoice_combos: list[tuple[str, str]], it: Iterator[Any]) -> list[Metric]:
    """The families of one successful round of counts, read from ``it`` in request order."""
    invoices = GaugeMetricFamily(
        "lago_invoices",
        "Invoices by invoice status and payment status (meta.total_count of a filtered list).",
        labels=["status", "payment_status"],
    )
    for s, p in invoice_combos:
        invoices.add_metric([s, p], next(it))
    overdue = GaugeMetricFamily(
        "lago_invoices_payment_overdue",
        "Invoices whose payment is overdue (payment_overdue=true).",
        value=next(it),
    )
    subs = GaugeMetricFamily("lago_subscriptions", "Subscriptions by status.", labels=["status"])
    for s in SUBSCRIPTION_STATUSES:
        subs.add_metric([s], next(it))
    customers = GaugeMetricFamily("lago_customers", "Customers.", value=next(it))
    requests = GaugeMetricFamily(
        "lago_payment_requests",
        "Payment requests (dunning: retried collections of overdue invoices) by payment status.",
        labels=["payment_status"],
    )
    for p in PAYMENT_STATUSES:
        requests.add_metric([p], next(it))
    balance: dict[str, float] | None = next(it)
    authorized = GaugeMetricFamily(
        "lago_api_authorized", "1 if Lago accepted the API key, 0 if it answered 401/403.", value=1
    )
    families: list[Metric] = [authorized, invoices, overdue, subs, customers, requests]
    if balance is not None:
        fam = GaugeMetricFamily(
            "lago_overdue_balance_cents",
            "Overdue invoice balance per currency, in the currency's minor unit as Lago reports it"
            " (amount_cents summed over /analytics/overdue_balance's months).",
            labels=["currency"],
        )
        for currency, cents in sorted(balance.items()):
            fam.add_metric([currency], cents)
        families.append(fam)
    return families


COLLECTOR = LagoCollector
