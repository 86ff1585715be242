"""The bridge at work: the webhook handler, the sync worker and the bridge's metrics.

The handler only validates and records (:class:`~exporter.bridge.state.BridgeState`)
and answers at once; one background task, the sync worker, makes the provider
calls. So a slow or rate-limited status page never makes Alertmanager wait (its
webhook timeout would turn a slow page into failed notifications and resends),
and one worker means one call per change however many notifications arrive.

Retries: a retryable :class:`ProviderError` (5xx, 429, timeouts) is retried with
exponential backoff and jitter, never sooner than the provider's ``Retry-After``;
a 429's wait holds every component, since the limit is the API key's. Any other
error (a wrong key or component id) is not retried until the target changes: it
would fail the same way, and the pending metric keeps saying the page is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import aiohttp
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.bridge.config import BridgeConfig
from exporter.bridge.payload import PayloadError, parse_notification
from exporter.bridge.providers import PROVIDERS, Provider, ProviderError
from exporter.bridge.state import OPERATIONAL, STATUSES, BridgeState, ComponentState, Status
from exporter.bridge.templates import render
from exporter.webguard import read_limited

log = logging.getLogger("exporter.bridge")

WEBHOOK_PATH = "/bridge/alertmanager"
OUTCOMES = ("ok", "unauthorized", "bad_request", "too_large")
_CHUNK = 64 * 1024
# alert names listed in the log line about alerts that matched no component
_UNMATCHED_NAMES_SHOWN = 5

T = TypeVar("T")


class Bridge:
    """One configured bridge: its state, its provider client and its worker task."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        redact: Callable[[str], str] = lambda text: text,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.state = BridgeState(config)
        self._redact = redact
        self._clock = clock
        self.notifications: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        self.unmatched_alerts = 0
        self.api_calls: Counter[tuple[str, str]] = Counter()  # (operation, outcome)
        self._not_before = 0.0  # a rate limit's Retry-After holds every component
        self._wake = asyncio.Event()
        # one sync at a time: two would both see a component unapplied and both call
        self._sync_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._provider: Provider | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._provider = self._make_provider(self.config)
        self._task = asyncio.create_task(self._worker(), name="status-page bridge sync")

    def _make_provider(self, config: BridgeConfig) -> Provider:
        assert self._session is not None
        provider = config.provider
        api_key = provider.api_key.get() if provider.api_key is not None else ""
        client = PROVIDERS[provider.kind](
            self._session,
            url=provider.base_url(),
            page_id=provider.page_id,
            api_key=api_key,
            timeout=float(provider.timeout),
        )
        return cast(Provider, client)

    async def apply(self, config: BridgeConfig) -> None:
        """A reloaded config: components keep what the bridge knows of them."""
        if config == self.config:
            return
        if config.provider != self.config.provider and self._session is not None:
            self._provider = self._make_provider(config)
            self._not_before = 0.0
        self.state = BridgeState(config, previous=self.state)
        self.config = config
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ the webhook

    def authorized(self, header: str | None) -> bool:
        token = self.config.token.get() if self.config.token is not None else ""
        if not header or not token:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        # compare_digest: the time taken says nothing about how much of a guess was right
        same = hmac.compare_digest(credentials.strip().encode(), token.encode())
        return scheme.lower() == "bearer" and same

    def _reject(self, outcome: str, request: web.Request, reason: str) -> None:
        self.notifications[outcome] += 1
        log.warning(
            "webhook notification rejected",
            extra={"kv": {"outcome": outcome, "remote": request.remote or "", "reason": self._redact(reason)}},
        )

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authorized(request.headers.get("Authorization")):
            self._reject("unauthorized", request, "missing or wrong bearer token")
            raise web.HTTPUnauthorized(
                text="a valid bearer token is required (Alertmanager: http_config.authorization)\n",
                headers={"WWW-Authenticate": 'Bearer realm="stack-exporter status-page bridge"'},
            )
        limit = self.config.max_body_bytes
        body = await read_limited(request, limit, _CHUNK)
        if body is None:
            self._reject("too_large", request, f"body over max_body_bytes ({limit})")
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length or limit + 1)
        try:
            notification = parse_notification(body)
        except PayloadError as exc:
            self._reject("bad_request", request, str(exc))
            raise web.HTTPBadRequest(text=f"not an Alertmanager webhook notification: {exc}\n") from None
        self.notifications["ok"] += 1
        seen = self.state.observe(notification.alerts, self._clock())
        self.unmatched_alerts += seen.unmatched
        if seen.unmatched:
            names = sorted(seen.unmatched_names)
            log.info(
                "alerts matched no component",
                extra={"kv": {"count": seen.unmatched, "alertnames": ",".join(names[:_UNMATCHED_NAMES_SHOWN])}},
            )
        for name in seen.changed:
            component = self.state.components[name]
            log.info("component status changed", extra={"kv": {"component": name, "desired": component.desired()}})
        if seen.changed:
            self._wake.set()
        return web.Response(
            text=f"accepted {seen.alerts} alert(s); {seen.unmatched} matched no component\n",
        )

    # ------------------------------------------------------------------ the sync worker

    async def _worker(self) -> None:
        while True:
            self._wake.clear()
            wake_at = await self.sync_once()
            timeout = None if wake_at is None else max(0.0, wake_at - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def sync_once(self) -> float | None:
        """Bring every component in step once; the time to look again, None when nothing waits."""
        async with self._sync_lock:
            return await self._sync_all()

    async def _sync_all(self) -> float | None:
        wake_at: float | None = None

        def later(when: float) -> None:
            nonlocal wake_at
            wake_at = when if wake_at is None else min(wake_at, when)

        forget_after = float(self.config.forget_after)
        for component in list(self.state.components.values()):
            now = self._clock()
            if forget_after > 0:
                next_forget = component.forget(now, forget_after)
                if next_forget is not None:
                    later(next_forget)
            target, held_until = component.target(now, float(self.config.min_flap_interval))
            if held_until is not None:
                later(held_until)
            if target is None:
                continue
            incidents = self.config.incidents.enabled
            want_incident = incidents and component.wants_incident(target)
            needs_status = component.applied != target
            needs_incident = incidents and want_incident != (component.incident_id is not None)
            if not needs_status and not needs_incident:
                component.attempts, component.stuck = 0, None
                continue
            if component.stuck == (target, want_incident):
                continue  # refused for good; waits for the alerts (or a reload) to change the target
            start_at = max(component.next_attempt_at, self._not_before)
            if now < start_at:
                later(start_at)
                continue
            retry_at = await self._sync(component, target, needs_status, needs_incident, want_incident)
            if retry_at is not None:
                later(retry_at)
        return wake_at

    async def _sync(
        self, component: ComponentState, target: Status, needs_status: bool, needs_incident: bool, want: bool
    ) -> float | None:
        """One attempt for one component; when to try again after a retryable failure."""
        assert self._provider is not None
        provider = self._provider
        config = component.config
        try:
            if needs_status:
                await self._call("set_component", provider.set_component(config.id, target))
                component.applied_ok(target, self._clock())
                log.info("component updated", extra={"kv": {"component": component.name, "status": target}})
            if needs_incident and want:
                since = component.down_since or self._clock()
                texts = self.config.incidents
                incident_id = await self._call(
                    "open_incident",
                    provider.open_incident(
                        render(texts.title, component=config.name, status=target, since=since),
                        render(texts.messages.investigating, component=config.name, status=target, since=since),
                        [config.id],
                        target,
                    ),
                )
                component.incident_id, component.incident_since = incident_id, since
                log.info("incident opened", extra={"kv": {"component": component.name, "incident": incident_id}})
            elif needs_incident and component.incident_id is not None:
                since = component.incident_since or self._clock()
                message = render(
                    self.config.incidents.messages.resolved, component=config.name, status=OPERATIONAL, since=since
                )
                await self._call("resolve_incident", provider.resolve_incident(component.incident_id, message))
                log.info(
                    "incident resolved", extra={"kv": {"component": component.name, "incident": component.incident_id}}
                )
                component.incident_id = component.incident_since = None
        except ProviderError as exc:
            return self._failed(component, target, want, str(exc), exc.retryable, exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - a provider bug must not end the worker; retried like a 5xx
            return self._failed(component, target, want, f"{type(exc).__name__}: {exc}", True, None)
        component.attempts = 0
        component.next_attempt_at = 0.0
        component.stuck = None
        component.last_sync_at = self._clock()
        return None

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except ProviderError as exc:
            self.api_calls[(operation, "retryable_error" if exc.retryable else "error")] += 1
            raise
        except Exception:
            self.api_calls[(operation, "retryable_error")] += 1
            raise
        self.api_calls[(operation, "success")] += 1
        return result

    def _failed(
        self, component: ComponentState, target: Status, want: bool, error: str, retryable: bool, after: float | None
    ) -> float | None:
        kv: dict[str, object] = {"component": component.name, "target": target, "err": self._redact(error)}
        if not retryable:
            component.stuck = (target, want)
            log.error("status page refused the update; not retrying until the status changes", extra={"kv": kv})
            return None
        component.attempts += 1
        retry = self.config.retry
        backoff = min(float(retry.max_backoff), float(retry.initial_backoff) * 2 ** (component.attempts - 1))
        # equal jitter: half fixed, half random, so two bridges (or components) failing
        # together do not retry in lockstep
        delay = backoff / 2 + random.uniform(0, backoff / 2)
        now = self._clock()
        if after is not None:
            delay = max(delay, after)
            self._not_before = max(self._not_before, now + after)
        component.next_attempt_at = now + delay
        log.warning(
            "status page update failed; will retry",
            extra={"kv": {**kv, "attempt": component.attempts, "retry_in": f"{delay:.3g}s"}},
        )
        return component.next_attempt_at

    # ------------------------------------------------------------------ metrics

    def families(self) -> list[Metric]:
        """stack_exporter_bridge_*, built fresh from the bridge's state."""
        notifications = CounterMetricFamily(
            "stack_exporter_bridge_notifications",
            "Alertmanager webhook notifications received by the status-page bridge, by outcome.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            notifications.add_metric([outcome], float(self.notifications[outcome]))
        unmatched = CounterMetricFamily(
            "stack_exporter_bridge_alerts_unmatched",
            "Alerts in accepted notifications that matched no configured component (accepted and ignored).",
            value=float(self.unmatched_alerts),
        )
        provider = self.config.provider.kind
        calls = CounterMetricFamily(
            "stack_exporter_bridge_api_calls",
            "Status-page API calls by operation and outcome (success, retryable_error, error).",
            labels=["provider", "operation", "outcome"],
        )
        for (operation, outcome), count in sorted(self.api_calls.items()):
            calls.add_metric([provider, operation, outcome], float(count))
        status = GaugeMetricFamily(
            "stack_exporter_bridge_component_status",
            "The status the page shows for the component, as the bridge last set it: 1 for that status,"
            " 0 for the others; no series before the bridge first set it.",
            labels=["component", "status"],
        )
        last_sync = GaugeMetricFamily(
            "stack_exporter_bridge_last_sync_success_timestamp_seconds",
            "Unix time the status page last accepted an update for the component.",
            labels=["component"],
        )
        pending = GaugeMetricFamily(
            "stack_exporter_bridge_sync_pending",
            "1 while the page does not show what the alerts say for the component (an update failing,"
            " being retried or held by flap damping), else 0.",
            labels=["component"],
        )
        dropped = CounterMetricFamily(
            "stack_exporter_bridge_firing_alerts_dropped",
            "Firing alerts the bridge stopped tracking for the component because it already tracked the"
            " maximum (2000); the least severe, least recently notified go first, so the shown status stays.",
            labels=["component"],
        )
        incidents = self.config.incidents.enabled
        for name, component in self.state.components.items():
            dropped.add_metric([name], float(component.dropped))
            if component.applied is not None:
                for value in STATUSES:
                    status.add_metric([name, value], 1.0 if value == component.applied else 0.0)
            if component.last_sync_at is not None:
                last_sync.add_metric([name], component.last_sync_at)
            pending.add_metric([name], 1.0 if component.pending(incidents) else 0.0)
        return [notifications, unmatched, calls, status, last_sync, pending, dropped]


class BridgeHost:
    """The bridge as the server holds it: off, on, or swapped by a reload.

    The webhook route always exists, so a reload can turn the bridge on or off
    without a restart; while it is off the route answers 404.
    """

    def __init__(self, *, redact: Callable[[str], str] = lambda text: text) -> None:
        self.bridge: Bridge | None = None
        # the address of the bridge's own listener when the process serves one; fixed
        # at start (a listener cannot move without a restart)
        self.own_address: str | None = None
        self._redact = redact

    async def apply(self, config: BridgeConfig | None) -> None:
        old = self.bridge
        if config is None:
            self.bridge = None
            if old is not None:
                await old.close()
                log.info("status-page bridge stopped")
            return
        if config.listen_address != self.own_address:
            log.warning(
                "the bridge's listen_address takes effect at the next start",
                extra={"kv": {"configured": config.listen_address or "-", "serving": self.own_address or "-"}},
            )
        if old is None:
            bridge = Bridge(config, redact=self._redact)
            await bridge.start()
            self.bridge = bridge
            log.info(
                "status-page bridge started",
                extra={"kv": {"provider": config.provider.kind, "components": len(config.components)}},
            )
            return
        await old.apply(config)

    async def handle(self, request: web.Request, *, own_listener: bool = False) -> web.Response:
        bridge = self.bridge
        if bridge is None:
            raise web.HTTPNotFound(text="the status-page bridge is not configured (statuspage_bridge: section)\n")
        if (self.own_address is not None) != own_listener:
            where = self.own_address or "the exporter's --web.listen-address"
            raise web.HTTPNotFound(text=f"the status-page bridge listens on {where}\n")
        return await bridge.handle(request)

    def families(self) -> list[Metric]:
        return self.bridge.families() if self.bridge is not None else []

    async def close(self) -> None:
        await self.apply(None)
