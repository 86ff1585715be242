"""SendGrid's ECDSA-signed event batches: what is counted, what is refused and why."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.email_webhooks.common import Delivery, Event, Refused
from exporter.email_webhooks.config import SendgridWebhook
from exporter.email_webhooks.sendgrid import MAX_TAGS, SendgridProvider, load_key
from exporter.schema import Converter, Duration, Secret
from tests.fakes.common import fixture
from tests.fakes.email_webhooks.postmark import PostmarkSender
from tests.fakes.email_webhooks.sendgrid import EXAMPLES, SendgridSender, encode, example, payload

NOW = 1_750_000_000.0
# the public key of sendgrid-nodejs's eventwebhook tests (its example signature below)
DOC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHP"
    "TnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def provider_for(sender: SendgridSender, tolerance: float = 3600) -> SendgridProvider:
    return SendgridProvider(
        SendgridWebhook(verification_key=Secret(sender.verification_key), tolerance=Duration(tolerance))
    )


async def receive(provider: SendgridProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Delivery:
    headers, body = signed
    # aiohttp hands the provider a case-insensitive proxy
    return await provider.receive(CIMultiDictProxy(CIMultiDict(headers)), body, now)


async def refused(provider: SendgridProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Refused:
    with pytest.raises(Refused) as caught:
        await receive(provider, signed, now)
    return caught.value


@pytest.fixture(scope="module")
def sender() -> SendgridSender:
    return SendgridSender()


async def test_a_signed_batch_is_counted_event_by_event_with_categories_and_ids(sender: SendgridSender) -> None:
    first = payload("processed", tags="password_reset")
    second = payload("delivered", tags=["welcome", "pro"])
    delivery = await receive(provider_for(sender), sender.sign(encode([first, second]), timestamp=NOW))
    assert delivery == Delivery(
        events=(
            Event("requested", ("password_reset",), first["sg_event_id"]),
            Event("delivered", ("welcome", "pro"), second["sg_event_id"]),
        ),
        key=None,
    )


@pytest.mark.parametrize(
    ("kind", "kw", "expected"),
    [
        ("processed", {}, "requested"),
        ("delivered", {}, "delivered"),
        ("deferred", {}, "deferred"),
        ("bounce", {"bounce_type": "bounce"}, "bounced"),
        ("bounce", {"bounce_type": "blocked"}, "blocked"),
        ("dropped", {}, "dropped"),
        ("spamreport", {}, "complained"),
        ("open", {}, "opened"),
        ("click", {}, "clicked"),
        ("unsubscribe", {}, "unsubscribed"),
        ("group_unsubscribe", {}, "unsubscribed"),
        ("group_resubscribe", {}, None),
    ],
)
async def test_every_documented_event_is_mapped(
    sender: SendgridSender, kind: str, kw: dict[str, Any], expected: str | None
) -> None:
    item = payload(kind, tags=["welcome"], **kw)
    (event,) = (await receive(provider_for(sender), sender.sign(encode([item]), timestamp=NOW))).events
    assert event.event == expected
    # an ignored event's tags are not kept (nothing classifies it)
    assert event.tags == (("welcome",) if expected else ())


async def test_account_and_unknown_events_are_ignored_events(sender: SendgridSender) -> None:
    items = [
        {"event": "account_status_change", "sg_event_id": "a", "type": "compliance_suspend", "timestamp": 1},
        {"event": "machine_learning_thing", "sg_event_id": "b"},
        {"no_event": True},
    ]
    events = (await receive(provider_for(sender), sender.sign(encode(items), timestamp=NOW))).events
    assert [e.event for e in events] == [None, None, None]


@pytest.mark.parametrize("neutral", sorted(EXAMPLES))
async def test_the_senders_examples_are_the_events_they_claim(sender: SendgridSender, neutral: str) -> None:
    (event,) = (await receive(provider_for(sender), sender.sign(encode([example(neutral)]), timestamp=NOW))).events
    assert event.event == neutral


@pytest.mark.parametrize("name", ["webhook_events.json", "webhook_categories_array.json"])
async def test_the_saved_fixtures_are_accepted_as_they_are(sender: SendgridSender, name: str) -> None:
    body = json.dumps(fixture("sendgrid", name)).encode()
    events = (await receive(provider_for(sender), sender.sign(body, timestamp=NOW))).events
    assert len(events) == len(fixture("sendgrid", name))
    assert all(e.key for e in events)


async def test_documented_example_batch_maps_as_the_docs_say(sender: SendgridSender) -> None:
    body = json.dumps(fixture("sendgrid", "webhook_events.json")).encode()
    events = (await receive(provider_for(sender), sender.sign(body, timestamp=NOW))).events
    assert [e.event for e in events] == [
        "requested", "deferred", "delivered", "opened", "clicked", "bounced", "blocked",
        "dropped", "complained", "unsubscribed", "unsubscribed", None,
    ]  # fmt: skip


async def test_an_event_without_sg_event_id_is_keyed_by_its_content(sender: SendgridSender) -> None:
    item = payload("dropped", tags="invoice")
    del item["sg_event_id"]
    other = dict(item, timestamp=item["timestamp"] + 1)
    provider = provider_for(sender)
    (a,) = (await receive(provider, sender.sign(encode([item]), timestamp=NOW))).events
    (b,) = (await receive(provider, sender.sign(encode([item]), timestamp=NOW + 5))).events
    (c,) = (await receive(provider, sender.sign(encode([other]), timestamp=NOW))).events
    assert a.key == b.key != c.key
    assert a.key is not None and a.key.startswith("sha256:")


async def test_categories_are_capped_and_garbage_in_them_ignored(sender: SendgridSender) -> None:
    many = payload("delivered", tags=[f"c{i}" for i in range(10_000)])
    mixed = payload("delivered")
    mixed["category"] = [1, None, {"a": [1]}, ["nested"], "", "x" * 10_000, "ok"]
    (capped, cleaned) = (await receive(provider_for(sender), sender.sign(encode([many, mixed]), timestamp=NOW))).events
    assert capped.tags == tuple(f"c{i}" for i in range(MAX_TAGS))
    assert cleaned.tags == ("ok",)


@pytest.mark.parametrize("garbage", [42, 1.5, True, None, {"a": "b"}, {"deep": [[[[1]]]]}])
async def test_a_category_of_another_shape_is_no_tag(sender: SendgridSender, garbage: Any) -> None:
    item = payload("open")
    item["category"] = garbage
    (event,) = (await receive(provider_for(sender), sender.sign(encode([item]), timestamp=NOW))).events
    assert event == Event("opened", (), item["sg_event_id"])


@pytest.mark.parametrize("entry", [42, "delivered", None, [1, 2], True])
async def test_a_batch_entry_that_is_not_an_object_is_an_ignored_event(sender: SendgridSender, entry: Any) -> None:
    good = payload("delivered")
    events = (await receive(provider_for(sender), sender.sign(encode([entry, good]), timestamp=NOW))).events
    assert events == (Event(None), Event("delivered", (), good["sg_event_id"]))


@pytest.mark.parametrize("garbage", [42, ["processed"], {"x": 1}, None])
async def test_event_fields_of_another_shape_are_ignored(sender: SendgridSender, garbage: Any) -> None:
    item = payload("bounce")
    item["event"] = garbage
    item["sg_event_id"] = garbage
    (event,) = (await receive(provider_for(sender), sender.sign(encode([item]), timestamp=NOW))).events
    assert event.event is None


async def test_an_empty_batch_is_no_event(sender: SendgridSender) -> None:
    assert (await receive(provider_for(sender), sender.sign(b"[]", timestamp=NOW))).events == ()


async def test_another_key_is_refused(sender: SendgridSender) -> None:
    signed = SendgridSender().sign(encode([payload("delivered")]), timestamp=NOW)
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"


async def test_a_tampered_body_is_refused(sender: SendgridSender) -> None:
    headers, body = sender.sign(encode([payload("delivered", tags="a")]), timestamp=NOW)
    tampered = body.replace(b'"delivered"', b'"bounce"')
    assert tampered != body
    assert (await refused(provider_for(sender), (headers, tampered))).reason == "bad_signature"


async def test_a_changed_timestamp_is_refused(sender: SendgridSender) -> None:
    headers, body = sender.sign(encode([payload("delivered")]), timestamp=NOW)
    headers[TIMESTAMP] = str(int(NOW) + 1)
    assert (await refused(provider_for(sender), (headers, body))).reason == "bad_signature"


@pytest.mark.parametrize("offset", [3601, -3601, 10**9])
async def test_a_timestamp_outside_the_tolerance_is_stale(sender: SendgridSender, offset: int) -> None:
    # signed far in the past (offset > 0) or in the future (offset < 0)
    signed = sender.sign(encode([payload("delivered")]), timestamp=NOW - offset)
    assert (await refused(provider_for(sender, tolerance=3600), signed)).reason == "stale"


async def test_a_timestamp_at_the_edge_of_the_tolerance_passes(sender: SendgridSender) -> None:
    provider = provider_for(sender, tolerance=3600)
    for offset in (3600, -3600):
        signed = sender.sign(encode([payload("delivered")]), timestamp=NOW - offset)
        assert (await receive(provider, signed)).events[0].event == "delivered"


@pytest.mark.parametrize(
    "change",
    [
        {SIGNATURE: None},
        {TIMESTAMP: None},
        {SIGNATURE: None, TIMESTAMP: None},
        {SIGNATURE: ""},
        {TIMESTAMP: "yesterday"},
        {TIMESTAMP: "-5"},
        {TIMESTAMP: "1e9"},
        {TIMESTAMP: "9" * 40},
        {TIMESTAMP: "١٢٣"},
        {SIGNATURE: "not base64!"},
        {SIGNATURE: base64.b64encode(b"\x30\x02\x01\x01").decode()},
        {SIGNATURE: "A" * 5000},
        {SIGNATURE: "üñï"},
    ],
)
async def test_missing_or_garbled_headers_are_refused(sender: SendgridSender, change: dict[str, str | None]) -> None:
    headers, body = sender.sign(encode([payload("delivered")]), timestamp=NOW)
    for name, new in change.items():
        if new is None:
            del headers[name]
        else:
            headers[name] = new
    assert (await refused(provider_for(sender), (headers, body))).reason == "bad_signature"


async def test_a_foreign_providers_request_is_refused(sender: SendgridSender) -> None:
    # Postmark's basic auth and body: no SendGrid headers
    signed = PostmarkSender().sign(b'{"RecordType": "Delivery"}')
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"\xff\xfe", b"{}", b"42", b'"processed"', b'{"event": "delivered"}', b"[" * 100_000]
)
async def test_signed_bodies_that_are_not_a_batch_are_malformed(sender: SendgridSender, body: bytes) -> None:
    problem = await refused(provider_for(sender), sender.sign(body, timestamp=NOW))
    assert problem.reason == "malformed"


async def test_refusals_never_carry_the_request(sender: SendgridSender) -> None:
    item = payload("delivered", tags="secret-category")
    headers, body = SendgridSender().sign(encode([item]), timestamp=NOW)
    text = str(await refused(provider_for(sender), (headers, body)))
    for secret in (headers[SIGNATURE], item["email"], item["sg_event_id"], "secret-category", sender.verification_key):
        assert secret not in text


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!",
        base64.b64encode(b"not DER").decode(),
        # an RSA key is not SendGrid's
        "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==",
        # a P-384 key is not either
        base64.b64encode(
            ec.generate_private_key(ec.SECP384R1())
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).decode(),
    ],
)
def test_a_key_that_is_not_a_p256_public_key_is_a_value_error_without_the_key(key: str) -> None:
    with pytest.raises(ValueError, match="SendGrid verification key") as caught:
        load_key(key)
    assert not key or key not in str(caught.value)


def test_sendgrids_documented_key_loads_and_pem_armour_is_tolerated(sender: SendgridSender) -> None:
    # the public key of sendgrid-nodejs's eventwebhook tests
    load_key(DOC_KEY)
    key = sender.verification_key
    pem = f"-----BEGIN PUBLIC KEY-----\n{key[:40]}\n{key[40:]}\n-----END PUBLIC KEY-----\n"
    assert load_key(pem).public_numbers() == load_key(sender.verification_key).public_numbers()


async def test_sendgrids_documented_signature_verifies() -> None:
    # the example of sendgrid-nodejs's eventwebhook tests: key, signature, timestamp and payload
    # (JSON.stringify of one object): checks the signed string against SendGrid's own example
    key = DOC_KEY
    signature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
    stamp = "1588788367"
    body = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
    provider = SendgridProvider(SendgridWebhook(verification_key=Secret(key), tolerance=Duration(3600)))
    headers = CIMultiDictProxy(CIMultiDict({SIGNATURE: signature, TIMESTAMP: stamp}))
    # signed by SendGrid's example key; its body is one object, not a batch: malformed, not bad_signature
    with pytest.raises(Refused) as caught:
        await provider.receive(headers, body, float(stamp))
    assert caught.value.reason == "malformed"
    with pytest.raises(Refused) as caught:
        await provider.receive(headers, body + b" ", float(stamp))
    assert caught.value.reason == "bad_signature"


async def test_the_real_clock_signs_now(sender: SendgridSender) -> None:
    signed = sender.sign(encode([payload("processed")]))
    assert (await receive(provider_for(sender), signed, now=time.time())).events[0].event == "requested"
    await provider_for(sender).close()


def test_the_senders_config_is_a_valid_section(sender: SendgridSender) -> None:
    converter = Converter(Path("."))
    section: Any = converter.convert(SendgridWebhook, sender.config(), "email_webhooks.sendgrid")
    assert converter.problems == []
    assert list(section.check()) == []
    assert section.verification_key.get() == sender.verification_key
