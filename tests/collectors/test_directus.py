"""Directus collector: against a real Directus 12.4.0, and 11.x / error bodies from the fixtures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.checks import assert_clean_error, assert_no_secret, capture, logged
from tests.fakes.common import FIXTURES, Fault
from tests.fakes.directus import FakeDirectus, real
from tests.helpers import exporter, promtool_check, scrape, value, values
from tests.servers.directus import ADMIN_TOKEN, VIEWER_TOKEN, WIDGETS, DirectusServer

FAKE_TOKEN = "fake-directus-token-11x-5c2e"


def target(
    name: str, url: str, token: str | None, collections: tuple[str, ...] = (), timeout: str = "10s"
) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "url": url, "refresh_interval": "0s", "scrape_timeout": timeout}
    if token:
        item["token"] = token
    if collections:
        item["collections"] = list(collections)
    return item


def config(*targets: dict[str, Any]) -> dict[str, Any]:
    return {"directus": list(targets)}


# --------------------------------------------------------------------------- the real server


async def test_admin_sees_checks_version_and_counts(directus: DirectusServer) -> None:
    async with exporter(config(target("cms", directus.url, ADMIN_TOKEN, ("widgets",)))) as client:
        text = await scrape(client)
    assert value(text, "directus_up", target="cms") == 1
    assert value(text, "directus_info", version="12.4.0") == 1
    assert value(text, "directus_health_status", status="ok") == 1
    assert value(text, "directus_health_status", status="error") == 0
    assert value(text, "directus_items", collection="widgets") == WIDGETS == directus.count("widgets")
    rt = value(text, "directus_health_database_response_time_seconds", client="sqlite3")
    assert rt is not None and 0 <= rt < 5  # seconds, not milliseconds
    assert value(text, "directus_health_database_connections_available", client="sqlite3") is not None
    assert value(text, "directus_health_storage_response_time_seconds", location="local") is not None
    assert value(text, "directus_health_check_ok", check="email:connection") is not None
    assert value(text, "stack_exporter_collector_success", target="cms") == 1
    assert promtool_check(text) == ""


async def test_non_admin_and_anonymous(directus: DirectusServer) -> None:
    cfg = config(target("viewer", directus.url, VIEWER_TOKEN), target("anon", directus.url, None))
    async with exporter(cfg) as client:
        text = await scrape(client)
    assert value(text, "directus_up", target="viewer") == 1
    assert value(text, "directus_health_status", target="viewer", status="ok") == 1
    assert values(text, "directus_health_database_response_time_seconds", target="viewer") == []
    # 12.x: anonymous health is 403; the target is still up and succeeds with what it can see
    assert value(text, "directus_up", target="anon") == 1
    assert values(text, "directus_health_status", target="anon") == []
    assert value(text, "stack_exporter_collector_success", target="anon") == 1


async def test_missing_collection_and_bad_token(directus: DirectusServer, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    bad = "directus-bad-token-zz91"
    cfg = config(target("missing", directus.url, ADMIN_TOKEN, ("nope",)), target("bad", directus.url, bad))
    async with exporter(cfg) as client:
        text = await scrape(client)
    assert value(text, "directus_up", target="missing") == 1
    assert value(text, "stack_exporter_collector_success", target="missing") == 0
    assert value(text, "directus_up", target="bad") == 1
    assert value(text, "stack_exporter_collector_success", target="bad") == 0
    errors = logged(caplog)
    assert "'nope' does not exist or the token may not read it" in errors
    assert "Directus: unauthorized (HTTP 401)" in errors
    assert_no_secret(bad, text, errors)
    assert_no_secret(ADMIN_TOKEN, text, errors)


async def test_stop_and_recover(directus: DirectusServer) -> None:
    async with exporter(config(target("cms", directus.url, ADMIN_TOKEN, timeout="3s"))) as client:
        assert value(await scrape(client), "directus_up", target="cms") == 1
        directus.stop()
        try:
            assert value(await scrape(client), "directus_up", target="cms") == 0
        finally:
            directus.start()
        text = await scrape(client)
    assert value(text, "directus_up", target="cms") == 1
    assert value(text, "directus_health_status", status="ok") == 1


# --------------------------------------------------------------------------- 11.x and error bodies (fixtures)


@pytest.fixture
async def fake11() -> AsyncIterator[FakeDirectus]:
    fake = FakeDirectus.v11(FAKE_TOKEN)
    async with fake.running() as f:
        yield f  # type: ignore[misc]


async def test_v11_bodies_and_count_as_string(fake11: FakeDirectus) -> None:
    health = fake11.health[1]
    async with exporter(config(target("cms", fake11.url, FAKE_TOKEN, ("widgets",)))) as client:
        text = await scrape(client)
    assert value(text, "directus_info", version=real("11.3.5", "server_info_admin.json")["data"]["version"]) == 1
    ms = health["checks"]["sqlite3:responseTime"][0]["observedValue"]
    assert value(text, "directus_health_database_response_time_seconds", client="sqlite3") == pytest.approx(ms / 1000)
    # PostgreSQL sends the count as a string
    assert value(text, "directus_items", collection="widgets") == float(fake11.count_body["data"][0]["count"])
    assert promtool_check(text) == ""


async def test_error_503_is_health_error(fake11: FakeDirectus) -> None:
    fake11.health = (503, json.loads((FIXTURES / "directus/server_health_admin_error_503.json").read_text()))
    async with exporter(config(target("cms", fake11.url, FAKE_TOKEN))) as client:
        text = await scrape(client)
    assert value(text, "directus_up") == 1
    assert value(text, "directus_health_status", status="error") == 1
    assert value(text, "directus_health_check_ok", check="pg:responseTime") == 0
    assert value(text, "directus_health_database_connections_available", client="pg") == 0


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        (Fault("html"), "HTML instead of JSON"),
        (Fault("truncated"), "invalid JSON"),
        (Fault("huge"), "cap"),
        (Fault("slow", seconds=5), "deadline"),
        (Fault("ratelimit", seconds=60), "rate limited"),
    ],
    ids=["html", "truncated", "huge", "slow", "ratelimit"],
)
async def test_bad_answers(fake11: FakeDirectus, caplog: pytest.LogCaptureFixture, fault: Fault, needle: str) -> None:
    capture(caplog)
    fake11.faults["/items"] = fault
    async with exporter(config(target("cms", fake11.url, FAKE_TOKEN, ("widgets",), timeout="1s"))) as client:
        text = await scrape(client)
        await scrape(client)
    assert value(text, "directus_up") == 1
    assert value(text, "stack_exporter_collector_success") == 0
    assert_clean_error(caplog, "Directus", needle)
    if fault.kind == "ratelimit":
        assert fake11.calls_to("/items") == 1  # the second scrape sent nothing


async def test_missing_field(fake11: FakeDirectus, caplog: pytest.LogCaptureFixture) -> None:
    capture(caplog)
    fake11.count_body = {"data": [{}]}
    async with exporter(config(target("cms", fake11.url, FAKE_TOKEN, ("widgets",)))) as client:
        await scrape(client)
    assert_clean_error(caplog, "Directus", "'count'", "missing")
