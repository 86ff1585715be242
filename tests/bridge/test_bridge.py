"""The status-page bridge through the real app, against a fake status page built from the real API shapes.

Alertmanager's side is the documented webhook v4 payload (the shape in
exporter/bridge/payload.py); the provider's side is tests/fakes/statuspage_api.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.fakes.statuspage_api import FakeStatusPageAPI
from tests.helpers import ROOT, emitted_metrics, exporter, promtool_check, scrape, value

pytestmark = pytest.mark.timeout(60)

TOKEN = "am-bridge-token-5f2c9a71e4"
CACHE, API = "cmp-cache", "cmp-api"  # component ids on the fake page
PATH = "/bridge/alertmanager"
# what must never reach a public page: the alert's internal addresses
INTERNAL = ("10.1.2.3", "cache-1.internal.example.com")


def alert(
    name: str, status: str = "firing", severity: str = "critical", starts: str = "2026-12-01T10:00:00Z", **labels: str
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, **labels}
    # Alertmanager's fingerprint is a hash of the label set; any stable hash serves here
    fingerprint = hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {labels.get('instance', 'x')}", "description": "see the runbook"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T10:05:00Z",
        "generatorURL": "http://prometheus.internal.example.com:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> bytes:
    firing = any(a["status"] == "firing" for a in alerts)
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}/{severity="critical"}:{alertname="RedisDown"}',
            "truncatedAlerts": 0,
            "status": "firing" if firing else "resolved",
            "receiver": "statuspage",
            "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.internal.example.com:9093",
            "alerts": list(alerts),
        }
    ).encode()


@dataclass
class Setup:
    client: TestClient
    page: FakeStatusPageAPI
    tmp_path: Path

    async def notify(self, *alerts: dict[str, Any], token: str | None = TOKEN) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = await self.client.post(PATH, data=payload(*alerts), headers=headers)
        await resp.read()
        return resp

    async def metrics(self) -> str:
        return await scrape(self.client)

    def writes(self, component: str) -> list[Any]:
        return [r for r in self.page.writes() if r.path.endswith(f"/components/{component}")]


def bridge_section(page: FakeStatusPageAPI, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    (tmp_path / "bridge-token").write_text(TOKEN + "\n")
    (tmp_path / "page-key").write_text(page.api_key + "\n")
    section: dict[str, Any] = {
        "token_file": "bridge-token",
        "provider": {"kind": page.kind, "url": page.url, "page_id": page.page_id, "api_key_file": "page-key"},
        "components": [
            {"name": "Cache", "id": CACHE, "match": ['alertname=~"Redis.*"']},
            {"name": "Public API", "id": API, "match": ['service="api"']},
        ],
        "min_flap_interval": "0s",
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"},
    }
    section.update(overrides)
    return section


@asynccontextmanager
async def running(tmp_path: Path, kind: str = "statuspage", **overrides: Any) -> AsyncIterator[Setup]:
    async with FakeStatusPageAPI(kind, components=[CACHE, API]) as page:  # type: ignore[arg-type]
        config = {"statuspage_bridge": bridge_section(page, tmp_path, **overrides)}
        async with exporter(config, base_dir=tmp_path) as client:
            yield Setup(client, page, tmp_path)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_the_webhook_requires_the_bearer_token(tmp_path: Path) -> None:
    async with running(tmp_path) as s:
        down = alert("RedisDown")
        assert (await s.notify(down, token=None)).status == 401
        assert (await s.notify(down, token="wrong")).status == 401
        basic = await s.client.post(PATH, data=payload(down), headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status == 401
        assert basic.headers["WWW-Authenticate"].startswith("Bearer")
        await asyncio.sleep(0.2)
        assert s.page.requests == []
        text = await s.metrics()
        assert value(text, "stack_exporter_bridge_notifications_total", outcome="unauthorized") == 3
        assert value(text, "stack_exporter_bridge_notifications_total", outcome="ok") == 0


async def test_oversized_and_malformed_notifications_get_a_clear_4xx_and_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with running(tmp_path, max_body_bytes=4096) as s:
        caplog.set_level(logging.INFO, logger="exporter.bridge")
        big = payload(*(alert("RedisDown", instance=f"10.0.0.{i}:6379") for i in range(40)))
        assert len(big) > 4096
        resp = await s.client.post(PATH, data=big, headers=headers)
        assert resp.status == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000

        assert (await s.client.post(PATH, data=chunks(), headers=headers)).status == 413

        cases = {
            b"{not json": "not valid JSON",
            json.dumps({"version": "3", "alerts": []}).encode(): "version",
            payload({k: v for k, v in alert("RedisDown").items() if k != "fingerprint"}): "alerts[0].fingerprint",
        }
        for body, problem in cases.items():
            resp = await s.client.post(PATH, data=body, headers=headers)
            text = await resp.text()
            assert resp.status == 400, text
            assert problem in text
        metrics = await s.metrics()
        assert value(metrics, "stack_exporter_bridge_notifications_total", outcome="too_large") == 2
        assert value(metrics, "stack_exporter_bridge_notifications_total", outcome="bad_request") == 3
        assert s.page.requests == []
    rejected = [r for r in caplog.records if r.getMessage() == "webhook notification rejected"]
    assert len(rejected) == 5
    assert not any(r.exc_info for r in caplog.records)


async def test_the_same_notification_twice_makes_one_api_call(tmp_path: Path) -> None:
    async with running(tmp_path) as s:
        down = alert("RedisDown", instance="10.1.2.3:6379")
        # two clustered Alertmanagers sending the same notification at once, then a resend
        answers = await asyncio.gather(s.notify(down), s.notify(down))
        assert [r.status for r in answers] == [200, 200]
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        assert (await s.notify(down)).status == 200
        await asyncio.sleep(0.3)
        assert len(s.writes(CACHE)) == 1
        text = await s.metrics()
        calls = {"provider": "statuspage", "operation": "set_component"}
        assert value(text, "stack_exporter_bridge_api_calls_total", **calls, outcome="success") == 1
        assert value(text, "stack_exporter_bridge_notifications_total", outcome="ok") == 3


@pytest.mark.parametrize("kind", ["statuspage", "instatus"])
async def test_critical_means_major_outage_until_resolved(tmp_path: Path, kind: str) -> None:
    async with running(tmp_path, kind) as s:
        before = time.time()
        down = alert("RedisDown", instance="10.1.2.3:6379")
        assert (await s.notify(down)).status == 200
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        text = await s.metrics()
        assert value(text, "stack_exporter_bridge_component_status", component="Cache", status="major_outage") == 1
        assert value(text, "stack_exporter_bridge_component_status", component="Cache", status="operational") == 0
        synced = value(text, "stack_exporter_bridge_last_sync_success_timestamp_seconds", component="Cache")
        assert synced is not None and before <= synced <= time.time()
        assert value(text, "stack_exporter_bridge_sync_pending", component="Cache") == 0
        # a component never mentioned is left alone and has no believed status
        assert (
            value(text, "stack_exporter_bridge_component_status", component="Public API", status="operational") is None
        )
        assert s.page.status_of(API) == "operational" and s.writes(API) == []

        assert (await s.notify({**down, "status": "resolved"})).status == 200
        await eventually(lambda: s.page.status_of(CACHE) == "operational")
        text = await s.metrics()
        assert value(text, "stack_exporter_bridge_component_status", component="Cache", status="operational") == 1
        assert len(s.writes(CACHE)) == 2


async def test_the_component_shows_the_worst_of_its_firing_alerts(tmp_path: Path) -> None:
    async with running(tmp_path) as s:
        slow = alert("RedisSlow", severity="warning")
        down = alert("RedisDown", severity="critical")
        await s.notify(slow)
        await eventually(lambda: s.page.status_of(CACHE) == "degraded_performance")
        await s.notify(slow, down)
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        await s.notify(slow, {**down, "status": "resolved"})
        await eventually(lambda: s.page.status_of(CACHE) == "degraded_performance")
        await s.notify({**slow, "status": "resolved"})
        await eventually(lambda: s.page.status_of(CACHE) == "operational")
        # an alert matching no component is accepted and counted, not refused
        resp = await s.notify(alert("DiskFull"))
        assert resp.status == 200 and "1 matched no component" in await resp.text()
        assert value(await s.metrics(), "stack_exporter_bridge_alerts_unmatched_total") == 1


async def test_flapping_is_damped(tmp_path: Path) -> None:
    interval = 1.5
    async with running(tmp_path, min_flap_interval=f"{interval}s") as s:
        first = alert("RedisDown", starts="2026-12-01T10:00:00Z")
        second = alert("RedisDown", starts="2026-12-01T10:01:00Z")
        await s.notify(first)
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        await s.notify({**first, "status": "resolved"})
        await eventually(lambda: s.page.status_of(CACHE) == "operational")  # the first recovery at once
        recovered = time.monotonic()
        await s.notify(second)
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")  # down again at once
        await s.notify({**second, "status": "resolved"})
        await asyncio.sleep(0.3)
        # the second recovery within the interval is held: still down, and the bridge says so
        assert s.page.status_of(CACHE) == "major_outage"
        assert value(await s.metrics(), "stack_exporter_bridge_sync_pending", component="Cache") == 1
        await eventually(lambda: s.page.status_of(CACHE) == "operational", timeout=interval + 3)
        assert time.monotonic() - recovered >= interval - 0.1
        assert len(s.writes(CACHE)) == 4


async def test_503_and_429_are_retried_in_the_background(tmp_path: Path) -> None:
    async with running(tmp_path) as s:
        s.page.fail_next(503, count=2)
        s.page.fail_next(429, retry_after=1)
        s.page.delay(0.3)  # a slow page: the webhook must not wait for it
        started = time.monotonic()
        resp = await s.notify(alert("RedisDown"))
        assert resp.status == 200
        assert time.monotonic() - started < 0.25
        await eventually(lambda: len(s.page.responses) == 3)
        rate_limited = time.monotonic()
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage", timeout=10)
        # Retry-After: 1 was honoured (the backoff alone is at most 200ms)
        assert time.monotonic() - rate_limited >= 0.9
        assert s.page.responses == [503, 503, 429, 200]
        text = await s.metrics()
        calls = {"provider": "statuspage", "operation": "set_component"}
        assert value(text, "stack_exporter_bridge_api_calls_total", **calls, outcome="retryable_error") == 3
        assert value(text, "stack_exporter_bridge_api_calls_total", **calls, outcome="success") == 1


async def test_a_refused_update_is_not_retried_and_stays_pending(tmp_path: Path) -> None:
    async with running(tmp_path) as s:
        s.page.fail_next(404)
        await s.notify(alert("RedisDown"))
        await eventually(lambda: len(s.page.responses) == 1)
        await asyncio.sleep(0.5)
        assert len(s.page.requests) == 1
        text = await s.metrics()
        assert value(text, "stack_exporter_bridge_sync_pending", component="Cache") == 1
        calls = {"provider": "statuspage", "operation": "set_component"}
        assert value(text, "stack_exporter_bridge_api_calls_total", **calls, outcome="error") == 1
        # a new target is tried again
        await s.notify(alert("RedisSlow", severity="warning"), alert("RedisDown", status="resolved"))
        await eventually(lambda: s.page.status_of(CACHE) == "degraded_performance")


INCIDENTS = {
    "enabled": True,
    "title": "{component}: {status}",
    "messages": {"investigating": "{component} has had problems since {since}.", "resolved": "{component} is back."},
}


@pytest.mark.parametrize("kind", ["statuspage", "instatus"])
async def test_an_incident_opens_and_resolves_with_customer_safe_text(tmp_path: Path, kind: str) -> None:
    async with running(tmp_path, kind, incidents=INCIDENTS) as s:
        labels = {"instance": "10.1.2.3:6379", "target": "cache-1.internal.example.com"}
        down = alert("RedisDown", **labels)
        await s.notify(down)
        await eventually(lambda: len(s.page.incidents) == 1)
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        (incident_id,) = s.page.incidents
        assert s.page.open_incidents() == [incident_id]
        assert s.page.incidents[incident_id]["name"] == "Cache: Major outage"
        # the same outage with another alert does not open a second incident
        await s.notify(down, alert("RedisSlow", severity="warning", **labels))
        await asyncio.sleep(0.2)
        assert len(s.page.incidents) == 1

        await s.notify({**down, "status": "resolved"}, alert("RedisSlow", "resolved", severity="warning", **labels))
        await eventually(lambda: s.page.incident_resolved(incident_id))
        assert s.page.status_of(CACHE) == "operational"
        assert s.page.open_incidents() == []
        bodies = [json.dumps(r.json) for r in s.page.requests]
        assert any("Cache is back." in b for b in bodies)
        for body in bodies:
            for secret in INTERNAL:
                assert secret not in body, f"{secret} reached the status page: {body}"
        text = await s.metrics()
        calls = {"provider": kind, "outcome": "success"}
        assert value(text, "stack_exporter_bridge_api_calls_total", operation="open_incident", **calls) == 1
        assert value(text, "stack_exporter_bridge_api_calls_total", operation="resolve_incident", **calls) == 1


async def test_the_metrics_are_documented_and_valid(tmp_path: Path) -> None:
    async with running(tmp_path, incidents=INCIDENTS) as s:
        s.page.fail_next(503)
        await s.notify(alert("RedisDown"), alert("DiskFull"))
        await s.notify(alert("RedisDown"), token="nope")
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage" and len(s.page.incidents) == 1)
        text = await s.metrics()
    assert promtool_check(text) == ""
    emitted = emitted_metrics(text, prefixes=("stack_exporter_bridge_",))
    documented = documented_bridge_metrics()
    assert set(emitted) == set(documented)
    for name, (typ, labels, help_text) in emitted.items():
        assert documented[name] == (typ, labels, help_text), name


def documented_bridge_metrics() -> dict[str, tuple[str, frozenset[str], str]]:
    """The metrics table of docs/statuspage-bridge.md."""
    rows: dict[str, tuple[str, frozenset[str], str]] = {}
    for line in (ROOT / "docs" / "statuspage-bridge.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `stack_exporter_bridge_"):
            name, typ, labels, help_text = (c.strip() for c in line.strip().strip("|").split("|"))
            rows[name.strip("`")] = (typ, frozenset(x.strip() for x in labels.split(",") if x.strip()), help_text)
    return rows


async def test_without_the_section_there_is_no_bridge(tmp_path: Path) -> None:
    async with exporter({}) as client:
        resp = await client.post(PATH, data=payload(alert("RedisDown")), headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 404
        assert "stack_exporter_bridge_" not in await scrape(client)


async def test_forget_after_clears_an_alert_alertmanager_stopped_sending(tmp_path: Path) -> None:
    async with running(tmp_path, forget_after="1s") as s:
        await s.notify(alert("RedisDown"))
        await eventually(lambda: s.page.status_of(CACHE) == "major_outage")
        sent = time.monotonic()
        # no resolved notification ever comes (the alert was silenced, or the bridge was down)
        await eventually(lambda: s.page.status_of(CACHE) == "operational", timeout=5)
        assert time.monotonic() - sent >= 0.8


async def test_basic_auth_guards_metrics_but_the_webhook_keeps_its_bearer_token(tmp_path: Path) -> None:
    import bcrypt
    from aiohttp.test_utils import TestServer

    from exporter.scrape import Engine
    from exporter.server import make_app, make_reloader
    from exporter.webconfig import load_web_config
    from tests.helpers import config_from

    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    async with FakeStatusPageAPI("statuspage", components=[CACHE, API]) as page:
        config = config_from({"statuspage_bridge": bridge_section(page, tmp_path)}, tmp_path)
        engine = Engine(config)
        app = make_app(engine, make_reloader(engine, lambda: config), load_web_config(str(web)))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            assert (await client.get("/metrics")).status == 401
            resp = await client.post(
                PATH, data=payload(alert("RedisDown")), headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert resp.status == 200
            assert (await client.post(PATH, data=payload(alert("RedisDown")))).status == 401
            await eventually(lambda: page.status_of(CACHE) == "major_outage")


async def test_a_reload_keeps_the_state_and_can_turn_the_bridge_off(tmp_path: Path) -> None:
    from exporter.bridge.bridge import BridgeHost
    from tests.helpers import config_from

    async with FakeStatusPageAPI("statuspage", components=[CACHE, API]) as page:
        first = config_from({"statuspage_bridge": bridge_section(page, tmp_path)}, tmp_path).bridge
        host = BridgeHost()
        await host.apply(first)
        try:
            bridge = host.bridge
            assert bridge is not None
            bridge.state.observe(parse_alerts(alert("RedisDown")), time.time())
            await bridge.sync_once()
            assert page.status_of(CACHE) == "major_outage"
            changed = {"statuspage_bridge": bridge_section(page, tmp_path, min_flap_interval="1m")}
            await host.apply(config_from(changed, tmp_path).bridge)
            assert host.bridge is bridge  # the same bridge, with what it knew
            assert bridge.state.components["Cache"].applied == "major_outage"
            assert float(bridge.config.min_flap_interval) == 60
            await bridge.sync_once()
            assert len(page.writes()) == 1  # nothing to redo after the reload
        finally:
            await host.apply(None)
        assert host.bridge is None and host.families() == []


def parse_alerts(*alerts: dict[str, Any]) -> tuple[Any, ...]:
    from exporter.bridge.payload import parse_notification

    return parse_notification(payload(*alerts)).alerts
