"""The status-page providers against a fake Statuspage / Instatus API built from the documented shapes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest

from exporter.bridge.providers import (
    COMPONENT_STATUSES,
    PROVIDERS,
    HttpProvider,
    InstatusProvider,
    ProviderError,
    StatuspageProvider,
    parse_retry_after,
)
from tests.fakes.common import Fault
from tests.fakes.statuspage_api import FakeStatusPageAPI

KINDS = ["statuspage", "instatus"]
REDIS = "redis"  # a component id added to the fixture's three


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(params=KINDS)
async def page(request: pytest.FixtureRequest) -> AsyncIterator[FakeStatusPageAPI]:
    async with FakeStatusPageAPI(request.param, components=[REDIS]) as fake:
        yield fake


def provider(
    page: FakeStatusPageAPI, session: aiohttp.ClientSession, *, key: str | None = None, timeout: float = 5.0, **kw: Any
) -> HttpProvider:
    cls = PROVIDERS[page.kind]
    return cls(session, url=page.url, page_id=page.page_id, api_key=page.api_key if key is None else key,
               timeout=timeout, **kw)  # fmt: skip


async def failure(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await call
    return info.value


def test_registry_names_match() -> None:
    assert set(PROVIDERS) == {"statuspage", "instatus"}
    for name, cls in PROVIDERS.items():
        assert cls.name == name
    assert PROVIDERS["statuspage"] is StatuspageProvider
    assert PROVIDERS["instatus"] is InstatusProvider


@pytest.mark.parametrize("status", COMPONENT_STATUSES)
async def test_each_status_reaches_the_page(
    page: FakeStatusPageAPI, session: aiohttp.ClientSession, status: str
) -> None:
    # start from a different status so the change is visible
    start = "major_outage" if status == "operational" else "operational"
    p = provider(page, session)
    await p.set_component(REDIS, start)  # type: ignore[arg-type]
    assert page.status_of(REDIS) == start
    await p.set_component(REDIS, status)  # type: ignore[arg-type]
    assert page.status_of(REDIS) == status
    method, path, body, headers, _ = page.requests[-1]
    if page.kind == "statuspage":
        assert (method, path) == ("PATCH", f"/v1/pages/{page.page_id}/components/{REDIS}")
        assert body == {"component": {"status": status}}
        assert headers["Authorization"] == f"OAuth {page.api_key}"
    else:
        assert (method, path) == ("PUT", f"/v2/{page.page_id}/components/{REDIS}")
        assert body == {"status": status.replace("_", "").upper()}
        assert headers["Authorization"] == f"Bearer {page.api_key}"
    assert page.responses == [200, 200]


async def test_other_components_are_left_alone(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    before = dict(page.components)
    await provider(page, session).set_component(REDIS, "partial_outage")
    changed = {cid for cid, status in page.components.items() if before[cid] != status}
    assert changed == {REDIS}


async def test_open_and_resolve_incident(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    p = provider(page, session)
    other = next(cid for cid in page.components if cid != REDIS)
    incident_id = await p.open_incident("Cache unavailable", "Some pages load slowly.", [REDIS, other], "major_outage")
    assert incident_id in page.incidents
    assert page.open_incidents() == [incident_id]
    assert page.incidents[incident_id]["name"] == "Cache unavailable"
    assert page.status_of(REDIS) == "major_outage"
    assert page.status_of(other) == "major_outage"
    assert {c["id"] for c in page.incidents[incident_id]["components"]} == {REDIS, other}

    await p.resolve_incident(incident_id, "Everything works again.")
    assert page.incident_resolved(incident_id)
    assert page.open_incidents() == []
    texts = page.requests[-1].json
    assert "Everything works again." in str(texts)
    assert [r.method for r in page.requests] == (["POST", "PATCH"] if page.kind == "statuspage" else ["POST", "POST"])


async def test_wrong_key_is_final_and_never_echoed(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    wrong = "wrong-key-3f9a1c77e0d2"
    p = provider(page, session, key=wrong)
    err = await failure(p.set_component(REDIS, "major_outage"))
    assert err.retryable is False
    assert err.status == 401
    assert err.retry_after is None
    text = str(err)
    assert page.kind in text and "401" in text and f"/components/{REDIS}" in text
    for leak in (wrong, page.api_key, "Traceback"):
        assert leak not in text
        assert leak not in repr(p)
    assert page.status_of(REDIS) == "operational"


async def test_a_provider_that_echoes_the_key_is_redacted(
    page: FakeStatusPageAPI, session: aiohttp.ClientSession
) -> None:
    wrong = "echoed-key-77aa01"
    p = provider(page, session, key=wrong)
    # some APIs quote what they were sent; the text must still not carry the key
    original = page._error

    def echoing(status: int, message: str, code: str = "") -> Any:
        return original(status, f"{message}: {wrong}", code)

    page._error = echoing  # type: ignore[method-assign]
    err = await failure(p.set_component(REDIS, "major_outage"))
    assert wrong not in str(err)
    assert "<redacted>" in str(err)


@pytest.mark.parametrize("header", ["7", "date"])
async def test_429_is_retryable_with_retry_after(
    page: FakeStatusPageAPI, session: aiohttp.ClientSession, header: str
) -> None:
    value: str | int = 7 if header == "7" else formatdate(time.time() + 7, usegmt=True)
    page.fail_next(429, retry_after=value)
    p = provider(page, session)
    err = await failure(p.set_component(REDIS, "major_outage"))
    assert err.retryable is True
    assert err.status == 429
    assert err.retry_after is not None
    assert 5.0 <= err.retry_after <= 7.0
    # the fault was one answer only: the next call goes through
    await p.set_component(REDIS, "major_outage")
    assert page.status_of(REDIS) == "major_outage"
    assert page.responses == [429, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(
    page: FakeStatusPageAPI, session: aiohttp.ClientSession, status: int
) -> None:
    page.fail_next(status)
    err = await failure(provider(page, session).open_incident("t", "m", [REDIS], "major_outage"))
    assert err.retryable is True
    assert err.status == status
    assert err.retry_after is None
    assert page.incidents == {}


async def test_503_passes_retry_after_on(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    page.fail_next(503, retry_after=30)
    err = await failure(provider(page, session).set_component(REDIS, "degraded_performance"))
    assert (err.retryable, err.status, err.retry_after) == (True, 503, 30.0)


async def test_slow_page_times_out_as_retryable(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    page.delay(2.0)
    started = time.monotonic()
    err = await failure(provider(page, session, timeout=0.3).set_component(REDIS, "major_outage"))
    assert time.monotonic() - started < 1.5
    assert err.retryable is True
    assert err.status is None
    assert "0.3s" in str(err)


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    async with FakeStatusPageAPI("statuspage") as fake:
        url, page_id = fake.url, fake.page_id
    # the fake is gone: nothing listens on its port now
    p = StatuspageProvider(session, url=url, page_id=page_id, api_key="k-5521aa", timeout=2.0)
    err = await failure(p.set_component("x", "operational"))
    assert err.retryable is True
    assert "connection failed" in str(err)
    assert "k-5521aa" not in str(err)


async def test_unknown_component_is_final(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    err = await failure(provider(page, session).set_component("no-such-component", "major_outage"))
    assert (err.retryable, err.status) == (False, 404)


async def test_ids_cannot_walk_to_another_endpoint(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    err = await failure(provider(page, session).set_component("../incidents", "major_outage"))
    assert (err.retryable, err.status) == (False, 404)
    assert page.incidents == {}


async def test_oversized_answer_is_refused(page: FakeStatusPageAPI, session: aiohttp.ClientSession) -> None:
    page.faults["/v"] = Fault("huge")
    err = await failure(provider(page, session, max_body_bytes=64 * 1024).set_component(REDIS, "major_outage"))
    assert err.retryable is False
    assert "65536 bytes" in str(err)


@pytest.mark.parametrize("kind", KINDS)
async def test_fake_rejects_what_the_real_api_rejects(kind: str, session: aiohttp.ClientSession) -> None:
    # the fake must fail where the real API fails, or the provider tests above prove nothing
    bad: dict[str, Any]
    async with FakeStatusPageAPI(kind, components=[REDIS]) as fake:  # type: ignore[arg-type]
        if kind == "statuspage":
            url = f"{fake.url}/v1/pages/{fake.page_id}/components/{REDIS}"
            auth, bad, method, invalid = f"OAuth {fake.api_key}", {"component": {"status": "down"}}, "PATCH", 422
        else:
            url = f"{fake.url}/v2/{fake.page_id}/components/{REDIS}"
            auth, bad, method, invalid = f"Bearer {fake.api_key}", {"status": "major_outage"}, "PUT", 400
        async with session.request(method, url, json=bad, headers={"Authorization": auth}) as resp:
            assert resp.status == invalid
        async with session.request(method, url, json=bad, headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401
        wrong_page = url.replace(fake.page_id, "otherpage")
        async with session.request(method, wrong_page, json=bad, headers={"Authorization": auth}) as resp:
            assert resp.status == 404
        assert fake.status_of(REDIS) == "operational"


async def test_fake_rate_limit_answers_429(session: aiohttp.ClientSession) -> None:
    async with FakeStatusPageAPI("statuspage", components=[REDIS]) as fake:
        fake.rate_limit_per_second = 1.0
        p = StatuspageProvider(session, url=fake.url, page_id=fake.page_id, api_key=fake.api_key, timeout=5.0)
        await p.set_component(REDIS, "partial_outage")
        err = await failure(p.set_component(REDIS, "major_outage"))
        assert err.retryable and err.status == 429
        assert err.retry_after == 1.0
        assert fake.status_of(REDIS) == "partial_outage"


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after(" 0.5 ", now) == 0.5
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now) == pytest.approx(90.0, abs=1.0)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now) == 0.0
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("999999", now) == 3600.0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad, now) is None
