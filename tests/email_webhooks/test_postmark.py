"""Postmark's basic-auth webhooks: what is counted, what is refused and why."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.email_webhooks.common import Delivery, Event, Refused
from exporter.email_webhooks.config import PostmarkWebhook
from exporter.email_webhooks.postmark import PostmarkProvider
from exporter.schema import Converter, Secret
from tests.fakes.common import fixture
from tests.fakes.email_webhooks.postmark import EXAMPLES, FIXTURES, PostmarkSender, encode, example, payload

NOW = 1_750_000_000.0


def provider_for(sender: PostmarkSender) -> PostmarkProvider:
    return PostmarkProvider(PostmarkWebhook(username=sender.username, password=Secret(sender.password)))


async def receive(provider: PostmarkProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Delivery:
    headers, body = signed
    # aiohttp hands the provider a case-insensitive proxy
    return await provider.receive(CIMultiDictProxy(CIMultiDict(headers)), body, now)


async def refused(provider: PostmarkProvider, signed: tuple[dict[str, str], bytes]) -> Refused:
    with pytest.raises(Refused) as caught:
        await receive(provider, signed)
    return caught.value


@pytest.fixture
def sender() -> PostmarkSender:
    return PostmarkSender()


async def test_an_event_with_the_credentials_is_counted_with_tag_stream_and_body_hash(sender: PostmarkSender) -> None:
    body = encode(payload("Delivery", tags=["password_reset"], stream="transactional"))
    delivery = await receive(provider_for(sender), sender.sign(body))
    assert delivery == Delivery(
        events=(Event("delivered", ("password_reset", "transactional")),), key=hashlib.sha256(body).hexdigest()
    )


@pytest.mark.parametrize(
    ("record", "kw", "expected"),
    [
        ("Delivery", {}, "delivered"),
        ("SpamComplaint", {}, "complained"),
        ("Open", {}, "opened"),
        ("Click", {}, "clicked"),
        ("SubscriptionChange", {}, "unsubscribed"),
        ("SubscriptionChange", {"suppression_reason": "HardBounce"}, None),
        ("SubscriptionChange", {"suppression_reason": "SpamComplaint"}, None),
        ("SubscriptionChange", {"suppress": False}, None),
        *(
            ("Bounce", {"bounce_type": kind}, "bounced")
            for kind in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated", "DMARCPolicy")
        ),
        *(("Bounce", {"bounce_type": kind}, "deferred") for kind in ("SoftBounce", "Transient", "DnsError")),
        *(("Bounce", {"bounce_type": kind}, "blocked") for kind in ("Blocked", "SpamNotification")),
        *(("Bounce", {"bounce_type": kind}, "dropped") for kind in ("SMTPApiError", "TemplateRenderingFailed")),
        *(
            ("Bounce", {"bounce_type": kind}, None)
            for kind in (
                "AutoResponder",
                "Unsubscribe",
                "Subscribe",
                "AddressChange",
                "ChallengeVerification",
                "OpenRelayTest",
                "Unknown",
                "VirusNotification",
                "Unconfirmed",
                "InboundError",
                "SpamComplaint",
            )
        ),
    ],
)
async def test_every_documented_record_is_mapped(
    sender: PostmarkSender, record: str, kw: dict[str, Any], expected: str | None
) -> None:
    body = encode(payload(record, tags=["welcome"], **kw))
    (event,) = (await receive(provider_for(sender), sender.sign(body))).events
    assert event.event == expected
    # an ignored event's tags are not kept (nothing classifies it)
    assert event.tags == (("welcome", "outbound") if expected else ())


async def test_an_unknown_record_type_is_an_ignored_event(sender: PostmarkSender) -> None:
    body = payload("Delivery")
    body["RecordType"] = "Inbound"
    (event,) = (await receive(provider_for(sender), sender.sign(encode(body)))).events
    assert event == Event(None)


@pytest.mark.parametrize("neutral", sorted(EXAMPLES))
async def test_the_senders_examples_are_the_events_they_claim(sender: PostmarkSender, neutral: str) -> None:
    (event,) = (await receive(provider_for(sender), sender.sign(encode(example(neutral))))).events
    assert event.event == neutral


@pytest.mark.parametrize("name", sorted(FIXTURES.values()))
async def test_the_saved_fixtures_are_accepted_as_they_are(sender: PostmarkSender, name: str) -> None:
    body = json.dumps(fixture("postmark", name)).encode()
    (event,) = (await receive(provider_for(sender), sender.sign(body))).events
    assert event.event is not None


async def test_an_empty_tag_leaves_only_the_stream(sender: PostmarkSender) -> None:
    (event,) = (await receive(provider_for(sender), sender.sign(encode(payload("Open", stream="broadcast"))))).events
    assert event.tags == ("broadcast",)


@pytest.mark.parametrize(
    "garbage",
    [123, None, ["a", "b"], {"nested": {"deep": [1, 2]}}, "x" * 1001, True],
)
async def test_tags_of_another_shape_are_ignored(sender: PostmarkSender, garbage: Any) -> None:
    body = payload("Delivery")
    body["Tag"] = garbage
    body["MessageStream"] = garbage
    (event,) = (await receive(provider_for(sender), sender.sign(encode(body)))).events
    assert event == Event("delivered", ())


async def test_a_replay_has_the_same_key_and_another_body_another(sender: PostmarkSender) -> None:
    provider = provider_for(sender)
    body = encode(payload("Delivery"))
    first = await receive(provider, sender.sign(body))
    again = await receive(provider, sender.sign(body))
    other = await receive(provider, sender.sign(encode(payload("Delivery"))))
    assert first.key == again.key != other.key


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic not base64!"},
        {"Authorization": "Basic " + "A" * 2000},
        {"Authorization": "Basic ünïcode"},
    ],
)
async def test_missing_or_garbled_credentials_are_refused(sender: PostmarkSender, headers: dict[str, str]) -> None:
    problem = await refused(provider_for(sender), (headers, encode(payload("Delivery"))))
    assert problem.reason == "bad_signature"


async def test_wrong_credentials_are_refused_without_echoing_them(sender: PostmarkSender) -> None:
    provider = provider_for(sender)
    body = encode(payload("Delivery"))
    for signed in (
        sender.sign(body, password="wrong-password-0123456789"),
        sender.sign(body, username="someone"),
        sender.sign(body, password=sender.password + "x"),
        PostmarkSender().sign(body),
    ):
        problem = await refused(provider, signed)
        assert problem.reason == "bad_signature"
        assert sender.password not in str(problem) and "wrong-password" not in str(problem)


async def test_the_scheme_name_is_case_insensitive(sender: PostmarkSender) -> None:
    headers, body = sender.sign(encode(payload("Open")))
    headers["Authorization"] = headers["Authorization"].replace("Basic", "basic")
    assert (await receive(provider_for(sender), (headers, body))).events[0].event == "opened"


async def test_a_foreign_providers_format_without_credentials_is_refused(sender: PostmarkSender) -> None:
    # SendGrid's signed batch: our provider sees no basic credentials
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"sig").decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(NOW)),
    }
    body = json.dumps([{"event": "delivered", "sg_event_id": "x"}]).encode()
    assert (await refused(provider_for(sender), (headers, body))).reason == "bad_signature"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"[{}]",
        b"42",
        b'"Delivery"',
        b"{}",
        b'{"RecordType": 1}',
        b'{"RecordType": ["Delivery"]}',
        b"[" * 100_000,
    ],
)
async def test_malformed_bodies_with_the_credentials_are_refused_as_malformed(
    sender: PostmarkSender, body: bytes
) -> None:
    assert (await refused(provider_for(sender), sender.sign(body))).reason == "malformed"


async def test_a_bounce_type_of_another_shape_is_ignored(sender: PostmarkSender) -> None:
    body = payload("Bounce")
    body["Type"] = {"HardBounce": True}
    (event,) = (await receive(provider_for(sender), sender.sign(encode(body)))).events
    assert event.event is None


async def test_there_is_no_stale_check(sender: PostmarkSender) -> None:
    signed = sender.sign(encode(payload("Delivery")))
    assert (await receive(provider_for(sender), signed, now=0.0)).events[0].event == "delivered"
    await provider_for(sender).close()


def test_a_one_tag_message_is_all_the_fake_builds() -> None:
    with pytest.raises(ValueError, match="one Tag"):
        payload("Delivery", tags=["a", "b"])


def test_the_senders_config_is_a_valid_section(sender: PostmarkSender) -> None:
    converter = Converter(Path("."))
    section: Any = converter.convert(PostmarkWebhook, sender.config(), "email_webhooks.postmark")
    assert converter.problems == []
    assert list(section.check()) == []
    assert section.password.get() == sender.password
