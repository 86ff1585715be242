"""The HTTP side of the email webhooks: ``POST /webhooks/v1/{provider}`` on the public ingest listener.

The listener is the RUM one (``exporter.rum.ingest.make_rum_app``); its guards (connection
cap, header timeout, TLS, the anonymous server log) are shared.  Every request is hostile
until its provider's signature or credentials say otherwise, in this order::

    unknown provider (404) -> failure limiter (429) -> body cap (413) -> provider.receive
    (400 malformed or stale, 401 bad_signature, 503 unavailable) -> replay cache -> count -> 200

A verified request gives its limiter token back, so a provider's own volume is never
limited; only failures spend the budget.  Answers are short fixed texts naming the reason;
nothing a request carries (its body, headers, address or the provider name it asked for)
is logged or echoed.

Exposition (``email_type`` is a configured type or ``other``; ``provider`` a configured
provider, or ``unknown`` for refusals of a path that names none)::

    email_webhook_events_total{provider="postmark",event="delivered",email_type="password_reset"} 3.0
    email_webhook_requests_total{provider="postmark"} 4.0
    email_webhook_refused_total{provider="postmark",reason="bad_signature"} 1.0
    email_webhook_refused_total{provider="unknown",reason="unknown_provider"} 0.0
    email_webhook_duplicates_total{provider="postmark"} 1.0
    email_webhook_events_ignored_total{provider="postmark"} 0.0
    email_webhook_last_request_timestamp_seconds{provider="postmark"} 1.7649e+09
    email_webhook_seen_ids 4.0
    email_webhook_limiter_clients 1.0
    email_webhook_sns_confirmations_total{result="confirmed"} 1.0

Every series of a configured provider is there from the start at 0 (the events one for
every event the provider can report and every type), so ``increase()`` sees the first
event, and an event a provider never reports has no series; none depends on what a request
carried, so no request can add a series.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.email_webhooks.common import EVENTS, PROVIDERS, REASONS, Delivery, Refused, TypeMap, WebhookProvider
from exporter.email_webhooks.config import EmailWebhooksConfig
from exporter.webguard import FailureLimiter, Network, client_address, client_key, read_limited, retry_after

__all__ = ["PATH", "BuildError", "WebhookHost", "build"]

log = logging.getLogger("exporter.email_webhooks")

PATH = "/webhooks/v1/{provider}"
UNKNOWN = "unknown"
# a provider posts its whole body at once: one still dribbling in after this is not one
BODY_TIMEOUT = 10.0
_CHUNK = 64 * 1024
# the SNS subscription confirmation: one GET of SubscribeURL, small answer
CONFIRM_TIMEOUT = 5.0
CONFIRM_BODY_BYTES = 64 * 1024
CONFIRM_RESULTS = ("confirmed", "failed")

_CLASSES = {
    "sendgrid": "SendgridProvider",
    "mailgun": "MailgunProvider",
    "postmark": "PostmarkProvider",
    "resend": "ResendProvider",
    "ses": "SesProvider",
}

# the fixed answers: the reason, never anything the request carried
_OK = "webhook accepted\n"
_TEXT = {
    "bad_signature": "webhook refused: bad signature or credentials\n",
    "stale": "webhook refused: timestamp outside the tolerance\n",
    "too_large": "webhook refused: body too large\n",
    "malformed": "webhook refused: malformed\n",
    "unknown_provider": "webhook refused: no such provider configured\n",
    "rate_limited": "webhook refused: rate limited\n",
    "unavailable": "webhook not checked: try again later\n",
}
_STATUS = {
    "bad_signature": 401,
    "stale": 400,
    "too_large": 413,
    "malformed": 400,
    "unknown_provider": 404,
    "rate_limited": 429,
    "unavailable": 503,
}
_CONFIRM_FAILED = "webhook not checked: subscription confirmation failed, try again later\n"
_OFF = "email webhooks are not configured (email_webhooks: section)\n"


class BuildError(Exception):
    """A configured provider could not be built (its module failed to import, or it refused its section).

    The text names the provider and the error's type and message, which come from our own
    modules and the import system: never from a request.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def build(name: str, section: Any) -> WebhookProvider:
    """The provider ``name`` for its config section, its module imported only now.

    ``cryptography`` (SendGrid's and SES's signatures) loads with its provider, never with
    the config; a module that cannot be imported is a BuildError naming the provider.
    """
    if name not in _CLASSES:
        raise BuildError([f"email_webhooks.{name}: not a webhook provider (known: {', '.join(PROVIDERS)})"])
    try:
        module = importlib.import_module(f"exporter.email_webhooks.{name}")
        cls = getattr(module, _CLASSES[name])
    except Exception as exc:  # noqa: BLE001 - ImportError, a missing class, a module that raises on import
        raise BuildError([f"email_webhooks.{name}: cannot load the provider: {type(exc).__name__}: {exc}"]) from None
    try:
        provider: WebhookProvider = cls(section)
    except Exception as exc:  # noqa: BLE001 - e.g. a key the provider's library cannot read
        # the provider's own text (never the key): the constructors report what is wrong in words
        raise BuildError([f"email_webhooks.{name}: {type(exc).__name__}: {exc}"]) from None
    return provider


class SeenIds:
    """The replay cache: at most ``limit`` keys, oldest forgotten first.

    A key is kept as the 16-byte blake2b digest of ``provider NUL key``: about 150 bytes
    an entry with the table's overhead, whatever length the provider's id had.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    @staticmethod
    def digest(provider: str, key: str) -> bytes:
        return hashlib.blake2b(f"{provider}\0{key}".encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._keys

    def add(self, digest: bytes) -> None:
        self._keys[digest] = None
        self._keys.move_to_end(digest)
        self.trim()

    def trim(self) -> None:
        while len(self._keys) > self.limit:
            self._keys.popitem(last=False)


class _Counts:
    """What the host counted since start; kept across reloads (a reload only drops what it unconfigures)."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str, str], int] = {}
        self.requests: dict[str, int] = {}
        self.refused: dict[tuple[str, str], int] = {}
        self.duplicates: dict[str, int] = {}
        self.ignored: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.confirmations = dict.fromkeys(CONFIRM_RESULTS, 0)

    def keep(self, providers: dict[str, tuple[str, ...]], types: tuple[str, ...]) -> None:
        """Zero series for what is configured (each provider's events: those it can report);
        drop those of providers and types no longer configured."""
        names = set(providers)
        labels = set(types)
        self.events = {k: v for k, v in self.events.items() if k[0] in names and k[2] in labels}
        for table in (self.requests, self.duplicates, self.ignored, self.last):
            for name in [n for n in table if n not in names]:
                del table[name]
        self.refused = {k: v for k, v in self.refused.items() if k[0] in names or k[0] == UNKNOWN}
        for name, reports in providers.items():
            for event in reports:
                for label in types:
                    self.events.setdefault((name, event, label), 0)
            for reason in REASONS:
                if reason != "unknown_provider":
                    self.refused.setdefault((name, reason), 0)
            self.requests.setdefault(name, 0)
            self.duplicates.setdefault(name, 0)
            self.ignored.setdefault(name, 0)
        self.refused.setdefault((UNKNOWN, "unknown_provider"), 0)


class WebhookHost:
    """The webhooks as the server holds them: config of the moment, built providers, limiter, counts.

    ``config`` None means the section is off: every webhook path answers 404 and no series
    are exposed.  Counts, the replay cache and the limiter's table outlive every reload.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        builder: Callable[[str, Any], WebhookProvider] = build,
    ) -> None:
        self.config: EmailWebhooksConfig | None = None
        self.providers: dict[str, WebhookProvider] = {}
        self._sections: dict[str, Any] = {}
        self.types = TypeMap({})
        self.limiter = FailureLimiter(1.0, 1, 1, clock)
        self.seen = SeenIds(1)
        self.trusted: tuple[Network, ...] = ()
        self.counts = _Counts()
        self._wall = wall
        self._build = builder
        self._session: aiohttp.ClientSession | None = None
        # the ingest listener's address when the process serves one, fixed at start;
        # from_flag: set by --rum.listen-address
        self.own_address: str | None = None
        self.from_flag = False

    async def apply(self, config: EmailWebhooksConfig | None) -> None:
        """Take a (re)loaded section; raise BuildError (the old one keeps serving) if a provider cannot be built.

        A provider whose section did not change is kept as it is (its certificate cache, its
        session); the others are built anew and the replaced ones closed.
        """
        built: dict[str, WebhookProvider] = {}
        sections = config.providers() if config is not None else {}
        problems: list[str] = []
        for name, section in sections.items():
            if name in self.providers and self._sections.get(name) == section:
                built[name] = self.providers[name]
                continue
            try:
                built[name] = self._build(name, section)
            except BuildError as exc:
                problems.extend(exc.problems)
        if problems:
            for name, provider in built.items():
                if self.providers.get(name) is not provider:
                    await _close(provider)
            raise BuildError(problems)
        if config is not None and self.own_address is None:
            log.warning("no ingest listener is serving the email webhooks: it starts with the next start")
        elif (
            config is not None
            and not self.from_flag
            and config.listen_address is not None
            and config.listen_address != self.own_address
        ):
            log.warning(
                "the email_webhooks listen_address takes effect at the next start",
                extra={"kv": {"configured": config.listen_address, "serving": self.own_address}},
            )
        old = self.providers
        self.providers, self._sections, self.config = built, dict(sections), config
        for name, provider in old.items():
            if built.get(name) is not provider:
                await _close(provider)
        if config is None:
            return
        self.types = TypeMap(config.email_types)
        self.counts.keep({name: p.reports for name, p in built.items()}, self.types.labels())
        self.trusted = config.proxy_networks()
        # the same limiter and cache, their tables kept: a reload is no way around either
        self.limiter.rate = config.failure_rate
        self.limiter.burst = config.failure_burst
        self.limiter.max_clients = max(1, config.max_clients)
        self.seen.limit = max(1, config.max_seen_ids)
        self.seen.trim()

    async def close(self) -> None:
        providers, self.providers, self._sections = self.providers, {}, {}
        for provider in providers.values():
            await _close(provider)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ requests

    def _refuse(self, provider: str, reason: str, **headers: str) -> web.Response:
        key = (provider, reason)
        self.counts.refused[key] = self.counts.refused.get(key, 0) + 1
        response = web.Response(status=_STATUS[reason], text=_TEXT[reason], headers=headers)
        if reason == "too_large":
            # the rest of the body is never read: close rather than drain it for keep-alive
            response.force_close()
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        if config is None:
            return web.Response(status=404, text=_OFF)
        name = request.match_info.get("provider", "")
        provider = self.providers.get(name)
        if provider is None:
            return self._refuse(UNKNOWN, "unknown_provider")
        client = client_key(client_address(request, self.trusted))
        wait = self.limiter.take(client)
        if wait > 0:
            return self._refuse(name, "rate_limited", **{"Retry-After": str(retry_after(wait))})
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await read_limited(request, config.max_body_bytes, _CHUNK)
        except (TimeoutError, ConnectionError, HttpProcessingError):
            # a body that stops half way (or never ends): the connection goes with it
            response = self._refuse(name, "malformed")
            response.force_close()
            return response
        if body is None:
            return self._refuse(name, "too_large")
        try:
            delivery = await provider.receive(request.headers, body, self._wall())
        except Refused as exc:
            headers = {"WWW-Authenticate": 'Basic realm="webhooks"'} if name == "postmark" else {}
            return self._refuse(name, exc.reason, **(headers if exc.reason == "bad_signature" else {}))
        if delivery.confirm_url is not None and not await self._confirm(delivery.confirm_url):
            # SNS delivers the confirmation again: nothing counted, the token given back
            self.limiter.refund(client)
            return web.Response(status=503, text=_CONFIRM_FAILED)
        if delivery.unsubscribed:
            log.warning("an SNS topic unsubscribed the ses webhook: its events stop until it subscribes again")
        self.record(name, delivery)
        self.limiter.refund(client)
        return web.Response(text=_OK)

    def record(self, name: str, delivery: Delivery) -> None:
        """Count one verified request: its events once, a replayed request or event as duplicates."""
        counts = self.counts
        counts.requests[name] = counts.requests.get(name, 0) + 1
        counts.last[name] = self._wall()
        if delivery.key is not None and delivery.confirm_url is None:
            # a confirmation is never remembered: one that failed must be able to come again
            digest = self.seen.digest(name, delivery.key)
            if digest in self.seen:
                counts.duplicates[name] = counts.duplicates.get(name, 0) + len(delivery.events)
                return
            self.seen.add(digest)
        for event in delivery.events:
            if event.key is not None:
                digest = self.seen.digest(name, event.key)
                if digest in self.seen:
                    counts.duplicates[name] = counts.duplicates.get(name, 0) + 1
                    continue
                self.seen.add(digest)
            if event.event is None or event.event not in EVENTS:
                counts.ignored[name] = counts.ignored.get(name, 0) + 1
                continue
            key = (name, event.event, self.types.classify(event.tags))
            counts.events[key] = counts.events.get(key, 0) + 1

    async def _confirm(self, url: str) -> bool:
        """GET an SNS SubscribeURL (its host checked by the provider); counted, never logged."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONFIRM_TIMEOUT))
        ok = False
        try:
            async with self._session.get(url, allow_redirects=False) as resp:
                await resp.content.read(CONFIRM_BODY_BYTES)
                ok = resp.status == 200
        except (TimeoutError, aiohttp.ClientError) as exc:
            # the URL carries the subscription's token: only the error's type is logged
            log.warning("SNS subscription confirmation failed", extra={"kv": {"err": type(exc).__name__}})
        else:
            if not ok:
                log.warning("SNS subscription confirmation refused", extra={"kv": {"status": resp.status}})
        result = "confirmed" if ok else "failed"
        self.counts.confirmations[result] += 1
        return ok

    # ------------------------------------------------------------------ metrics

    def families(self) -> list[Metric]:
        if self.config is None:
            return []
        counts = self.counts
        events = CounterMetricFamily(
            "email_webhook_events",
            "Email events the providers' verified webhooks reported, by normalised event and configured email type.",
            labels=["provider", "event", "email_type"],
        )
        for (name, event, label), n in sorted(counts.events.items()):
            events.add_metric([name, event, label], float(n))
        requests = CounterMetricFamily(
            "email_webhook_requests",
            "Webhook requests whose signature or credentials were verified (replays included).",
            labels=["provider"],
        )
        for name, n in sorted(counts.requests.items()):
            requests.add_metric([name], float(n))
        refused = CounterMetricFamily(
            "email_webhook_refused",
            "Webhook requests refused, by reason (bad_signature, stale, too_large, malformed, unknown_provider,"
            " rate_limited, unavailable).",
            labels=["provider", "reason"],
        )
        for (name, reason), n in sorted(counts.refused.items()):
            refused.add_metric([name, reason], float(n))
        duplicates = CounterMetricFamily(
            "email_webhook_duplicates",
            "Events of verified webhook requests already counted (a replayed request or event id), not counted again.",
            labels=["provider"],
        )
        for name, n in sorted(counts.duplicates.items()):
            duplicates.add_metric([name], float(n))
        ignored = CounterMetricFamily(
            "email_webhook_events_ignored",
            "Events of verified webhook requests outside the normalised vocabulary, not counted as events.",
            labels=["provider"],
        )
        for name, n in sorted(counts.ignored.items()):
            ignored.add_metric([name], float(n))
        last = GaugeMetricFamily(
            "email_webhook_last_request_timestamp_seconds",
            "Unix time of the last verified webhook request from the provider.",
            labels=["provider"],
        )
        for name, at in sorted(counts.last.items()):
            last.add_metric([name], at)
        seen = GaugeMetricFamily(
            "email_webhook_seen_ids",
            "Request and event ids the webhook replay cache remembers (bounded by max_seen_ids).",
            value=float(len(self.seen)),
        )
        clients = GaugeMetricFamily(
            "email_webhook_limiter_clients",
            "Clients (addresses, IPv6 by /64) the webhook failure limiter currently remembers.",
            value=float(len(self.limiter)),
        )
        families: list[Metric] = [events, requests, refused, duplicates, ignored, last, seen, clients]
        if "ses" in self.providers:
            confirmations = CounterMetricFamily(
                "email_webhook_sns_confirmations",
                "SNS subscription confirmations the ses webhook answered, by result (confirmed, failed).",
                labels=["result"],
            )
            for result in CONFIRM_RESULTS:
                confirmations.add_metric([result], float(counts.confirmations[result]))
            families.append(confirmations)
        return families

    def series_count(self) -> int:
        """Label sets exposed: what a flood of requests must not grow."""
        return sum(len(f.samples) for f in self.families())


async def _close(provider: WebhookProvider) -> None:
    try:
        await provider.close()
    except Exception as exc:  # noqa: BLE001 - a provider that fails to close must not stop a reload
        log.warning("closing a webhook provider failed", extra={"kv": {"err": type(exc).__name__}})
