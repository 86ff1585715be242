"""Resend's Svix-signed webhooks: what is counted, what is refused and why."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.email_webhooks.common import Delivery, Event, Refused
from exporter.email_webhooks.config import ResendWebhook
from exporter.email_webhooks.resend import MAX_TAGS, ResendProvider, signing_key
from exporter.schema import Converter, Duration, Secret
from tests.fakes.common import fixture
from tests.fakes.email_webhooks.resend import EMAIL_TYPES, ResendSender, encode, payload

NOW = 1_750_000_000.0


def provider_for(sender: ResendSender, tolerance: float = 300) -> ResendProvider:
    return ResendProvider(ResendWebhook(signing_secret=Secret(sender.secret), tolerance=Duration(tolerance)))


async def receive(provider: ResendProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Delivery:
    headers, body = signed
    # aiohttp hands the provider a case-insensitive proxy
    return await provider.receive(CIMultiDictProxy(CIMultiDict(headers)), body, now)


async def refused(provider: ResendProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Refused:
    with pytest.raises(Refused) as caught:
        await receive(provider, signed, now)
    return caught.value


@pytest.fixture
def sender() -> ResendSender:
    return ResendSender()


async def test_a_signed_event_is_counted_with_its_tags_and_svix_id(sender: ResendSender) -> None:
    body = encode(payload("email.delivered", tags={"category": "password_reset", "plan": "pro"}))
    delivery = await receive(provider_for(sender), sender.sign(body, timestamp=NOW, msg_id="msg_abc"))
    assert delivery == Delivery(events=(Event("delivered", ("password_reset", "pro")),), key="msg_abc")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("email.sent", "requested"),
        ("email.scheduled", None),
        ("email.delivered", "delivered"),
        ("email.delivery_delayed", "deferred"),
        ("email.bounced", "bounced"),
        ("email.complained", "complained"),
        ("email.opened", "opened"),
        ("email.clicked", "clicked"),
        ("email.failed", "dropped"),
        ("email.suppressed", "dropped"),
        ("email.received", None),
        ("contact.created", None),
        ("domain.updated", None),
    ],
)
async def test_every_documented_type_is_mapped(sender: ResendSender, kind: str, expected: str | None) -> None:
    body = payload(kind if kind in EMAIL_TYPES else "email.sent", tags={"category": "welcome"})
    body["type"] = kind
    delivery = await receive(provider_for(sender), sender.sign(encode(body), timestamp=NOW))
    (event,) = delivery.events
    assert event.event == expected
    # an ignored event's tags are not kept (nothing classifies it)
    assert event.tags == (("welcome",) if expected else ())


@pytest.mark.parametrize(
    ("bounce_type", "expected"), [("Permanent", "bounced"), ("Undetermined", "bounced"), ("Transient", "deferred")]
)
async def test_a_bounce_is_a_bounce_unless_transient(sender: ResendSender, bounce_type: str, expected: str) -> None:
    body = encode(payload("email.bounced", tags={"category": "invoice"}, bounce_type=bounce_type))
    delivery = await receive(provider_for(sender), sender.sign(body, timestamp=NOW))
    assert delivery.events == (Event(expected, ("invoice",)),)


async def test_the_documented_fixtures_verify_as_they_are(sender: ResendSender) -> None:
    """The saved examples (both tag shapes the docs show) go through unchanged."""
    provider = provider_for(sender)
    sent = fixture("resend", "webhook_email_sent.json")
    array = fixture("resend", "webhook_email_delivered_tags_array.json")
    assert isinstance(sent["data"]["tags"], dict)
    assert isinstance(array["data"]["tags"], list)
    for body, expected in ((sent, "requested"), (array, "delivered")):
        delivery = await receive(provider, sender.sign(encode(body), timestamp=NOW))
        assert delivery.events == (Event(expected, ("confirm_email",)),)


async def test_tags_are_read_in_both_shapes_and_capped(sender: ResendSender) -> None:
    provider = provider_for(sender)
    many = {f"name{i}": f"value{i}" for i in range(50)}
    for shape in ("object", "array"):
        body = encode(payload("email.opened", tags=many, tags_as=shape))
        (event,) = (await receive(provider, sender.sign(body, timestamp=NOW))).events
        assert event.tags == tuple(f"value{i}" for i in range(MAX_TAGS))
    odd = payload("email.opened")
    odd["data"]["tags"] = [{"name": "a", "value": 7}, "loose", {"name": "b", "value": "kept"}, None]
    (event,) = (await receive(provider, sender.sign(encode(odd), timestamp=NOW))).events
    assert event.tags == ("kept",)
    for junk in ("a string", 12, None, {"a": {"nested": 1}}):
        odd["data"]["tags"] = junk
        (event,) = (await receive(provider, sender.sign(encode(odd), timestamp=NOW))).events
        assert event == Event("opened", ())


async def test_another_secret_is_refused(sender: ResendSender) -> None:
    body = encode(payload("email.delivered"))
    problem = await refused(provider_for(sender), ResendSender().sign(body, timestamp=NOW))
    assert problem.reason == "bad_signature"


async def test_a_tampered_body_or_header_is_refused(sender: ResendSender) -> None:
    provider = provider_for(sender)
    headers, body = sender.sign(encode(payload("email.delivered", tags={"category": "a"})), timestamp=NOW)
    tampered = body.replace(b'"a"', b'"b"')
    assert tampered != body
    assert (await refused(provider, (headers, tampered))).reason == "bad_signature"
    assert (await refused(provider, ({**headers, "svix-id": "msg_other"}, body))).reason == "bad_signature"
    later = {**headers, "svix-timestamp": str(int(NOW) + 1)}
    assert (await refused(provider, (later, body))).reason == "bad_signature"


async def test_a_rotated_secret_passes_with_either_signature(sender: ResendSender) -> None:
    old = ResendSender()
    body = encode(payload("email.delivered"))
    headers, _ = sender.sign(body, timestamp=NOW, also=old)
    assert len(headers["svix-signature"].split()) == 2
    assert (await receive(provider_for(sender), (headers, body))).events[0].event == "delivered"
    assert (await receive(provider_for(old), (headers, body))).events[0].event == "delivered"
    # only v1 entries count: the same signature labelled otherwise does not pass
    relabelled = {**headers, "svix-signature": headers["svix-signature"].replace("v1,", "v1a,")}
    assert (await refused(provider_for(sender), (relabelled, body))).reason == "bad_signature"


@pytest.mark.parametrize(("offset", "reason"), [(-301, "stale"), (301, "stale"), (-299, None), (299, None)])
async def test_the_timestamp_must_be_within_the_tolerance(
    sender: ResendSender, offset: int, reason: str | None
) -> None:
    signed = sender.sign(encode(payload("email.delivered")), timestamp=NOW + offset)
    if reason is None:
        assert (await receive(provider_for(sender), signed)).events
    else:
        assert (await refused(provider_for(sender), signed)).reason == reason


async def test_a_stale_request_with_a_wrong_signature_is_a_bad_signature(sender: ResendSender) -> None:
    signed = ResendSender().sign(encode(payload("email.delivered")), timestamp=NOW - 3600)
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
async def test_missing_svix_headers_are_refused(sender: ResendSender, missing: str) -> None:
    headers, body = sender.sign(encode(payload("email.delivered")), timestamp=NOW)
    del headers[missing]
    assert (await refused(provider_for(sender), (headers, body))).reason == "bad_signature"


@pytest.mark.parametrize("stamp", ["", "17e8", "-1", "1750000000.5", "９９", "1" * 13])
async def test_a_timestamp_that_is_not_unix_seconds_is_refused(sender: ResendSender, stamp: str) -> None:
    headers, body = sender.sign(encode(payload("email.delivered")), timestamp=NOW)
    headers["svix-timestamp"] = stamp
    assert (await refused(provider_for(sender), (headers, body))).reason == "bad_signature"


async def test_a_foreign_providers_request_is_refused(sender: ResendSender) -> None:
    postmark = json.dumps({"RecordType": "Delivery", "Tag": "welcome"}).encode()
    problem = await refused(provider_for(sender), ({"Authorization": "Basic dXNlcjpwYXNz"}, postmark))
    assert problem.reason == "bad_signature"
    sns = {"x-amz-sns-message-type": "Notification"}, json.dumps({"Type": "Notification"}).encode()
    assert (await refused(provider_for(sender), sns)).reason == "bad_signature"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"type": "email.sent"}',
        b'{"type": "email.sent", "data": []}',
        b'{"type": 7, "data": {}}',
        b'{"data": {}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
async def test_a_signed_body_that_is_not_a_resend_event_is_malformed(sender: ResendSender, body: bytes) -> None:
    assert (await refused(provider_for(sender), sender.sign(body, timestamp=NOW))).reason == "malformed"


async def test_refusals_carry_no_request_text(sender: ResendSender) -> None:
    body = encode(payload("email.delivered", tags={"category": "secret-tag"}))
    headers, _ = ResendSender().sign(body, timestamp=NOW, msg_id="msg_secret_id")
    problem = await refused(provider_for(sender), (headers, body))
    for text in ("secret-tag", "msg_secret_id", sender.secret, "delivered@resend.dev"):
        assert text not in str(problem)


def test_a_secret_that_is_not_base64_is_a_config_error_without_the_secret() -> None:
    with pytest.raises(ValueError, match="not whsec_ followed by base64") as caught:
        signing_key("whsec_not*base64!")
    assert "not*base64" not in str(caught.value)
    assert signing_key("whsec_AAEC") == b"\x00\x01\x02"


def test_the_senders_config_is_a_valid_section(sender: ResendSender) -> None:
    converter = Converter(Path("."))
    section: Any = converter.convert(ResendWebhook, sender.config(), "email_webhooks.resend")
    assert converter.problems == []
    assert list(section.check()) == []
    assert section.signing_secret.get() == sender.secret


async def test_the_real_clock_signs_now() -> None:
    sender = ResendSender()
    signed = sender.sign(encode(payload("email.sent")))
    assert (await receive(provider_for(sender), signed, now=time.time())).events[0].event == "requested"
    await provider_for(sender).close()
