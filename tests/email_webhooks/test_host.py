"""The webhook host on the ingest app, with a tiny in-test provider: the order of the checks,
the replay cache and its bound, the type mapping, the failure limiter's refund, the answers,
reloads and what build() does when a provider's module cannot be imported."""

from __future__ import annotations

import json
import random
import string
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter.email_webhooks.common import EVENTS, REASONS, Delivery, Event, Refused
from exporter.email_webhooks.config import EmailWebhooksConfig, PostmarkWebhook, ResendWebhook, SesWebhook
from exporter.email_webhooks.host import BuildError, SeenIds, WebhookHost, build
from exporter.rum.ingest import RumHost, make_rum_app
from exporter.schema import Secret
from tests.helpers import value

GOOD = "let-me-in"
TYPES = {"welcome": ("welcome", "onboarding"), "password_reset": ("pw-reset",)}


class FakeProvider:
    """Accepts a JSON body ``{"key": ..., "events": [[event, [tags], key], ...]}`` with header X-Test-Auth: GOOD.

    ``{"refuse": reason}`` raises that refusal after the check; ``{"confirm": url}`` is an SNS confirmation.
    """

    name: ClassVar[str] = "postmark"
    reports: ClassVar[tuple[str, ...]] = EVENTS
    built: ClassVar[list[FakeProvider]] = []

    def __init__(self, section: Any) -> None:
        self.section = section
        self.closed = False
        self.received = 0
        FakeProvider.built.append(self)

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        self.received += 1
        if headers.get("x-test-auth") != GOOD:  # the mapping is case-insensitive, as aiohttp's
            raise Refused("bad_signature", "missing or wrong test credentials")
        try:
            data = json.loads(body)
        except ValueError:
            raise Refused("malformed", "not JSON") from None
        if "refuse" in data:
            raise Refused(data["refuse"], "asked to")
        if "confirm" in data:
            return Delivery(events=(), key=data.get("key"), confirm_url=data["confirm"])
        events = tuple(Event(e, tuple(tags), key) for e, tags, key in data.get("events", []))
        return Delivery(events=events, key=data.get("key"))

    async def close(self) -> None:
        self.closed = True


def fake_builder(name: str, section: Any) -> FakeProvider:
    provider = FakeProvider(section)
    provider.name = name  # type: ignore[misc]
    return provider


def section(**overrides: Any) -> EmailWebhooksConfig:
    base: dict[str, Any] = {
        "email_types": TYPES,
        "max_body_bytes": 4096,
        "max_seen_ids": 1000,
        "failure_rate": 0.0001,  # never refills within a test
        "failure_burst": 3,
        "max_clients": 100,
        "postmark": PostmarkWebhook(username="pm", password=Secret("a-password-of-length")),
    }
    base.update(overrides)
    return EmailWebhooksConfig(**base)


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, WebhookHost]]:
    FakeProvider.built.clear()
    host = WebhookHost(builder=fake_builder, wall=lambda: 1_750_000_000.0)
    host.own_address = ":9848"
    await host.apply(section())
    app = make_rum_app(RumHost(), None, host)
    test = TestClient(TestServer(app, host="127.0.0.1"))
    await test.start_server()
    try:
        yield test, host
    finally:
        await test.close()
        await host.close()


def body(*events: tuple[str | None, list[str], str | None], key: str | None = None) -> bytes:
    return json.dumps({"key": key, "events": [list(e) for e in events]}).encode()


async def post(
    test: TestClient, data: bytes | Any, provider: str = "postmark", auth: str = GOOD, **headers: str
) -> tuple[int, str, Mapping[str, str]]:
    async with test.post(f"/webhooks/v1/{provider}", data=data, headers={"X-Test-Auth": auth, **headers}) as resp:
        return resp.status, await resp.text(), resp.headers


def metrics(host: WebhookHost) -> str:
    from prometheus_client.exposition import generate_latest

    class Registry:
        def collect(self) -> list[Any]:
            return host.families()

    return generate_latest(Registry()).decode()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the replay cache


def test_the_seen_id_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    seen = SeenIds(3)
    digests = [SeenIds.digest("postmark", f"id-{i}") for i in range(5)]
    for digest in digests:
        seen.add(digest)
    assert len(seen) == 3
    assert [d in seen for d in digests] == [False, False, True, True, True]
    # the provider is part of the key: the same id from another provider is another event
    assert SeenIds.digest("mailgun", "id-4") not in seen
    assert len(digests[0]) == 16
    seen.limit = 1
    seen.trim()
    assert len(seen) == 1 and digests[4] in seen


async def test_a_replayed_request_is_answered_200_and_counted_as_duplicates(client: Any) -> None:
    test, host = client
    first = body(("delivered", ["welcome"], None), ("opened", ["welcome"], None), key="req-1")
    assert (await post(test, first))[0] == 200
    status, text, _ = await post(test, first)
    assert status == 200 and text == "webhook accepted\n"
    # per-event keys: the second batch repeats one event of the first
    assert (await post(test, body(("delivered", ["pw-reset"], "ev-1"), ("bounced", ["pw-reset"], "ev-2"))))[0] == 200
    assert (await post(test, body(("delivered", ["pw-reset"], "ev-1"), ("clicked", ["x"], "ev-3"))))[0] == 200
    text = metrics(host)
    assert value(text, "email_webhook_events_total", provider="postmark", event="delivered", email_type="welcome") == 1
    assert value(text, "email_webhook_events_total", provider="postmark", event="opened", email_type="welcome") == 1
    delivered = {"provider": "postmark", "event": "delivered", "email_type": "password_reset"}
    assert value(text, "email_webhook_events_total", **delivered) == 1
    assert value(text, "email_webhook_events_total", provider="postmark", event="clicked", email_type="other") == 1
    assert value(text, "email_webhook_duplicates_total", provider="postmark") == 3  # 2 of the replay, 1 event
    assert value(text, "email_webhook_requests_total", provider="postmark") == 4  # replays are verified requests
    assert value(text, "email_webhook_seen_ids") == 4  # req-1, ev-1, ev-2, ev-3
    assert value(text, "email_webhook_last_request_timestamp_seconds", provider="postmark") == 1_750_000_000.0


async def test_a_full_cache_forgets_and_counts_an_old_replay_again(client: Any) -> None:
    test, host = client
    await host.apply(section(max_seen_ids=2))
    for key in ("a", "b", "c"):
        assert (await post(test, body(("delivered", [], None), key=key)))[0] == 200
    assert (await post(test, body(("delivered", [], None), key="a")))[0] == 200  # "a" was forgotten
    assert (await post(test, body(("delivered", [], None), key="c")))[0] == 200  # "c" was not
    text = metrics(host)
    assert value(text, "email_webhook_events_total", provider="postmark", event="delivered", email_type="other") == 4
    assert value(text, "email_webhook_duplicates_total", provider="postmark") == 1
    assert value(text, "email_webhook_seen_ids") == 2


# --------------------------------------------------------------------------- type mapping, ignored events


async def test_tags_map_to_configured_types_first_match_wins_and_unknown_events_are_ignored(client: Any) -> None:
    test, host = client
    events: tuple[tuple[str | None, list[str], str | None], ...] = (
        ("delivered", ["unrelated", "onboarding", "pw-reset"], None),  # onboarding comes first: welcome
        ("bounced", ["pw-reset"], None),
        ("complained", [], None),
        (None, ["welcome"], None),  # outside the vocabulary
        ("processed-by-martians", ["welcome"], None),  # a provider bug: never a label
    )
    assert (await post(test, body(*events)))[0] == 200
    text = metrics(host)
    count = {"provider": "postmark"}
    assert value(text, "email_webhook_events_total", **count, event="delivered", email_type="welcome") == 1
    assert value(text, "email_webhook_events_total", **count, event="bounced", email_type="password_reset") == 1
    assert value(text, "email_webhook_events_total", **count, event="complained", email_type="other") == 1
    assert value(text, "email_webhook_events_ignored_total", **count) == 2
    assert "martians" not in text


async def test_every_series_is_there_from_the_start_and_random_tags_add_none(client: Any) -> None:
    test, host = client
    text = metrics(host)
    for event in EVENTS:
        for label in ("welcome", "password_reset", "other"):
            assert value(text, "email_webhook_events_total", provider="postmark", event=event, email_type=label) == 0
    for reason in REASONS:
        expected = 0 if reason != "unknown_provider" else None
        assert value(text, "email_webhook_refused_total", provider="postmark", reason=reason) == expected, reason
    assert value(text, "email_webhook_refused_total", provider="unknown", reason="unknown_provider") == 0
    assert value(text, "email_webhook_requests_total", provider="postmark") == 0
    assert "email_webhook_last_request_timestamp_seconds{" not in text
    assert "email_webhook_sns_confirmations" not in text  # only with ses
    before = host.series_count()

    rng = random.Random(19)
    tags = ["".join(rng.choices(string.ascii_letters, k=12)) for _ in range(1000)]
    events = [(rng.choice([*EVENTS, "weird"]), [tag], None) for tag in tags]
    for start in range(0, 1000, 50):
        assert (await post(test, body(*events[start : start + 50])))[0] == 200
    after = metrics(host)
    assert host.series_count() == before + 1  # the last-request gauge, after the first request
    assert not any(tag in after for tag in tags)


# --------------------------------------------------------------------------- refusals and the limiter


async def test_refusals_answer_fixed_texts_and_are_counted_by_reason(client: Any) -> None:
    test, host = client
    # unknown provider: before the limiter, whatever the credentials
    for name in ("mailgun", "nope", "..%2f"):
        status, text, _ = await post(test, b"{}", provider=name, auth="wrong")
        assert (status, text) == (404, "webhook refused: no such provider configured\n")
    status, text, headers = await post(test, body(), auth="secret-attempt")
    assert (status, text) == (401, "webhook refused: bad signature or credentials\n")
    assert headers["WWW-Authenticate"] == 'Basic realm="webhooks"'
    status, text, _ = await post(test, b"{not json")
    assert (status, text) == (400, "webhook refused: malformed\n")
    text = metrics(host)
    assert value(text, "email_webhook_refused_total", provider="unknown", reason="unknown_provider") == 3
    assert value(text, "email_webhook_refused_total", provider="postmark", reason="bad_signature") == 1
    assert value(text, "email_webhook_refused_total", provider="postmark", reason="malformed") == 1
    assert value(text, "email_webhook_limiter_clients") == 1
    # what a request sent never comes back
    assert "secret-attempt" not in text and "nope" not in text


@pytest.mark.parametrize(("reason", "status"), [("stale", 400), ("unavailable", 503), ("malformed", 400)])
async def test_each_provider_refusal_has_its_status(client: Any, reason: str, status: int) -> None:
    test, host = client
    got, text, headers = await post(test, json.dumps({"refuse": reason}).encode())
    assert got == status
    assert text.startswith("webhook ") and "asked to" not in text
    assert "WWW-Authenticate" not in headers
    assert value(metrics(host), "email_webhook_refused_total", provider="postmark", reason=reason) == 1


async def test_too_large_bodies_are_refused_with_and_without_a_length(client: Any) -> None:
    test, host = client
    status, _, headers = await post(test, b"x" * 5000)
    assert status == 413 and headers.get("Connection", "").lower() == "close"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"[" * 1024

    status, text, _ = await post(test, chunks())
    assert (status, text) == (413, "webhook refused: body too large\n")
    # a body at the limit is read and handed to the provider
    at_limit = body(("delivered", [], None)).ljust(4096, b" ")
    assert (await post(test, at_limit))[0] == 200
    assert value(metrics(host), "email_webhook_refused_total", provider="postmark", reason="too_large") == 2


async def test_verified_requests_refund_their_token_so_volume_is_never_limited(client: Any) -> None:
    test, host = client
    # burst 3: a hundred verified requests from one client all pass
    for i in range(100):
        assert (await post(test, body(("delivered", [], f"e{i}"))))[0] == 200
    # failures spend the budget: 3 refused by reason, then 429 before anything is read
    for _ in range(3):
        assert (await post(test, body(), auth="wrong"))[0] == 401
    status, text, headers = await post(test, body(("delivered", [], "late")))
    assert (status, text) == (429, "webhook refused: rate limited\n")
    assert int(headers["Retry-After"]) >= 1
    provider = FakeProvider.built[-1]
    received = provider.received
    assert (await post(test, body(), auth="wrong"))[0] == 429
    assert provider.received == received  # limited before the provider saw it
    # another client (a trusted proxy's X-Forwarded-For is not believed: none is configured)
    text = metrics(host)
    assert value(text, "email_webhook_refused_total", provider="postmark", reason="rate_limited") == 2
    assert value(text, "email_webhook_refused_total", provider="postmark", reason="bad_signature") == 3


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(client: Any) -> None:
    test, host = client
    await host.apply(section(trusted_proxies=("127.0.0.1/32",)))
    for who in ("198.51.100.1", "198.51.100.2"):
        for _ in range(3):
            assert (await post(test, body(), auth="wrong", **{"X-Forwarded-For": who}))[0] == 401
        assert (await post(test, body(), **{"X-Forwarded-For": who}))[0] == 429
    assert (await post(test, body(), **{"X-Forwarded-For": "198.51.100.3"}))[0] == 200
    assert value(metrics(host), "email_webhook_limiter_clients") == 3


# --------------------------------------------------------------------------- SNS confirmation


async def test_a_verified_subscription_confirmation_is_fetched_once_and_counted(client: Any) -> None:
    test, host = client
    await host.apply(
        section(
            ses=SesWebhook(region="eu-west-1", topic_arns=("arn:aws:sns:eu-west-1:123456789012:ses-events",)),
        )
    )
    hits: list[str] = []

    async def confirm(request: web.Request) -> web.Response:
        hits.append(request.query_string)
        return web.Response(text="<ConfirmSubscriptionResponse/>")

    sns = web.Application()
    sns.router.add_get("/confirm", confirm)
    server = TestServer(sns, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/confirm?Token=tok-secret"))
        status, text, _ = await post(test, json.dumps({"confirm": url, "key": "m1"}).encode(), provider="ses")
        assert (status, text) == (200, "webhook accepted\n")
        assert hits == ["Token=tok-secret"]
    finally:
        await server.close()
    # SNS unreachable now: 503, so SNS delivers it again (and a confirmation is never a replay)
    status, text, _ = await post(test, json.dumps({"confirm": url, "key": "m1"}).encode(), provider="ses")
    assert status == 503 and "tok-secret" not in text
    out = metrics(host)
    assert value(out, "email_webhook_sns_confirmations_total", result="confirmed") == 1
    assert value(out, "email_webhook_sns_confirmations_total", result="failed") == 1
    assert value(out, "email_webhook_requests_total", provider="ses") == 1
    assert value(out, "email_webhook_duplicates_total", provider="ses") == 0


# --------------------------------------------------------------------------- reloads and build()


async def test_reload_keeps_unchanged_providers_and_counts_and_closes_replaced_ones(client: Any) -> None:
    test, host = client
    first = host.providers["postmark"]
    assert (await post(test, body(("delivered", ["welcome"], None))))[0] == 200
    await host.apply(section(max_seen_ids=10))  # the postmark section did not change
    assert host.providers["postmark"] is first
    changed = PostmarkWebhook(username="pm2", password=Secret("another-password-here"))
    await host.apply(section(postmark=changed, email_types={"welcome": ("welcome",)}))
    assert host.providers["postmark"] is not first and first.closed  # type: ignore[attr-defined]
    text = metrics(host)
    count = {"provider": "postmark", "event": "delivered"}
    assert value(text, "email_webhook_events_total", **count, email_type="welcome") == 1  # kept
    assert value(text, "email_webhook_events_total", **count, email_type="password_reset") is None  # type dropped
    # the section removed: 404 and no series
    await host.apply(None)
    assert (await post(test, body()))[0] == 404
    assert host.families() == []


async def test_a_provider_that_cannot_be_built_leaves_the_previous_ones_serving(client: Any) -> None:
    test, host = client
    first = host.providers["postmark"]

    def broken(name: str, section: Any) -> Any:
        raise BuildError([f"email_webhooks.{name}: cannot load the provider: ImportError: no"])

    host._build = broken
    with pytest.raises(BuildError, match=r"email_webhooks\.postmark: cannot load the provider"):
        await host.apply(section(postmark=PostmarkWebhook(username="x", password=Secret("another-password-here"))))
    assert host.providers["postmark"] is first and not first.closed  # type: ignore[attr-defined]
    assert (await post(test, body(("delivered", [], None))))[0] == 200


def test_build_imports_the_provider_lazily_and_names_a_failed_import(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "whsec_" + "QUJD" * 8
    monkeypatch.delitem(sys.modules, "exporter.email_webhooks.resend", raising=False)
    provider = build("resend", ResendWebhook(signing_secret=Secret(secret)))
    assert type(provider).__name__ == "ResendProvider"
    assert "exporter.email_webhooks.resend" in sys.modules
    # a module whose import fails (None in sys.modules makes the import raise ImportError)
    monkeypatch.setitem(sys.modules, "exporter.email_webhooks.resend", None)
    with pytest.raises(BuildError) as caught:
        build("resend", ResendWebhook(signing_secret=Secret(secret)))
    message = str(caught.value)
    assert message.startswith("email_webhooks.resend: cannot load the provider: ModuleNotFoundError")
    assert secret not in message
    with pytest.raises(BuildError, match="not a webhook provider"):
        build("smtp", None)


async def test_without_the_section_every_webhook_path_answers_404() -> None:
    host = WebhookHost()
    app = make_rum_app(RumHost(), None, host)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test:
        status, text, _ = await post(test, b"{}")
        assert status == 404 and "not configured" in text
    assert host.families() == []


async def test_a_reload_whose_provider_cannot_be_built_fails_and_keeps_the_old_one() -> None:
    from exporter.config import parse_config
    from exporter.scrape import Engine
    from exporter.server import make_app, make_reloader
    from exporter.webconfig import default_web_settings
    from tests.helpers import config_text

    def config(password: str) -> Any:
        section = {"postmark": {"username": "pm", "password": password}}
        return parse_config(config_text({"email_webhooks": section}), "<test>")

    loads = iter([config("first-password-long"), config("second-password-long")])
    engine = Engine(config("first-password-long"))
    FakeProvider.built.clear()

    def builder(name: str, section: Any) -> FakeProvider:
        if section.password.get().startswith("second"):
            raise BuildError([f"email_webhooks.{name}: cannot load the provider: ImportError: broken"])
        return fake_builder(name, section)

    host = WebhookHost(builder=builder)
    host.own_address = ":9848"
    app = make_app(engine, make_reloader(engine, lambda: next(loads)), default_web_settings(), webhook_host=host)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test:
        first = host.providers["postmark"]
        async with test.post("/-/reload") as resp:
            assert resp.status == 200
        assert host.providers["postmark"] is first  # the same section: kept
        async with test.post("/-/reload") as resp:
            text = await resp.text()
            assert resp.status == 500
        assert "email_webhooks.postmark: cannot load the provider: ImportError: broken" in text
        assert "second-password-long" not in text
        assert host.providers["postmark"] is first and not first.closed  # type: ignore[attr-defined]
        async with test.get("/metrics?targets=none") as resp:
            scraped = await resp.text()
        assert value(scraped, "stack_exporter_config_last_reload_successful") == 0
        assert value(scraped, "email_webhook_requests_total", provider="postmark") == 0
    assert first.closed  # type: ignore[attr-defined]
