"""Mailgun's HMAC-signed webhooks: what is counted, what is refused and why."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.email_webhooks.common import Delivery, Event, Refused
from exporter.email_webhooks.config import MailgunWebhook
from exporter.email_webhooks.mailgun import MAX_TAGS, MailgunProvider
from exporter.schema import Converter, Duration, Secret
from tests.fakes.common import fixture
from tests.fakes.email_webhooks.mailgun import EXAMPLES, MailgunSender, example, payload
from tests.fakes.email_webhooks.sendgrid import SendgridSender
from tests.fakes.email_webhooks.sendgrid import payload as sendgrid_payload

NOW = 1_750_000_000.0
FIXTURES = (
    "webhook_delivered.json",
    "webhook_failed_permanent.json",
    "webhook_failed_temporary.json",
    "webhook_complained.json",
    "webhook_opened.json",
    "webhook_clicked.json",
    "webhook_unsubscribed.json",
)


def provider_for(sender: MailgunSender, tolerance: float = 3600) -> MailgunProvider:
    return MailgunProvider(MailgunWebhook(signing_key=Secret(sender.signing_key), tolerance=Duration(tolerance)))


async def receive(provider: MailgunProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Delivery:
    headers, body = signed
    # aiohttp hands the provider a case-insensitive proxy
    return await provider.receive(CIMultiDictProxy(CIMultiDict(headers)), body, now)


async def refused(provider: MailgunProvider, signed: tuple[dict[str, str], bytes], now: float = NOW) -> Refused:
    with pytest.raises(Refused) as caught:
        await receive(provider, signed, now)
    return caught.value


def resign(sender: MailgunSender, body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """``body`` as posted, its own signature block kept as it is."""
    return {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def sender() -> MailgunSender:
    return MailgunSender()


async def test_a_signed_event_is_counted_with_its_tags_and_token(sender: MailgunSender) -> None:
    signed = sender.sign(payload("delivered", tags=["password_reset", "pro"]), timestamp=NOW, token="t" * 50)
    delivery = await receive(provider_for(sender), signed)
    assert delivery == Delivery(events=(Event("delivered", ("password_reset", "pro")),), key="t" * 50)


@pytest.mark.parametrize(
    ("kind", "kw", "expected"),
    [
        ("accepted", {}, "requested"),
        ("delivered", {}, "delivered"),
        ("rejected", {}, "dropped"),
        ("complained", {}, "complained"),
        ("opened", {}, "opened"),
        ("clicked", {}, "clicked"),
        ("unsubscribed", {}, "unsubscribed"),
        ("failed", {"severity": "permanent", "reason": "bounce"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "generic"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "old"}, "bounced"),
        ("failed", {"severity": "permanent", "reason": "suppress-bounce"}, "dropped"),
        ("failed", {"severity": "permanent", "reason": "suppress-unsubscribe"}, "dropped"),
        ("failed", {"severity": "permanent", "reason": "suppress-complaint"}, "dropped"),
        ("failed", {"severity": "temporary", "reason": "generic"}, "deferred"),
        ("failed", {"severity": "temporary", "reason": "greylisted"}, "deferred"),
        ("failed", {"severity": "temporary", "reason": "espblock"}, "blocked"),
        ("failed", {"severity": "someday", "reason": "bounce"}, None),
    ],
)
async def test_every_documented_event_is_mapped(
    sender: MailgunSender, kind: str, kw: dict[str, Any], expected: str | None
) -> None:
    signed = sender.sign(payload(kind, tags=["welcome"], **kw), timestamp=NOW)
    (event,) = (await receive(provider_for(sender), signed)).events
    assert event.event == expected
    # an ignored event's tags are not kept (nothing classifies it)
    assert event.tags == (("welcome",) if expected else ())


@pytest.mark.parametrize("kind", ["stored", "list_member_uploaded", "list_uploaded", "", "FAILED"])
async def test_other_events_are_ignored_events(sender: MailgunSender, kind: str) -> None:
    data = payload("delivered", tags=["welcome"])
    data["event"] = kind
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event == Event(None)


async def test_a_failure_without_severity_is_ignored(sender: MailgunSender) -> None:
    data = payload("failed")
    del data["severity"]
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event.event is None


@pytest.mark.parametrize("neutral", sorted(EXAMPLES))
async def test_the_senders_examples_are_the_events_they_claim(sender: MailgunSender, neutral: str) -> None:
    (event,) = (await receive(provider_for(sender), sender.sign(example(neutral), timestamp=NOW))).events
    assert event.event == neutral


@pytest.mark.parametrize("name", FIXTURES)
async def test_the_saved_fixtures_are_accepted_once_signed(sender: MailgunSender, name: str) -> None:
    data = fixture("mailgun", name)["event-data"]
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event.event is not None
    assert event.tags == ("my_tag_1", "my_tag_2")


@pytest.mark.parametrize("name", FIXTURES)
async def test_the_saved_fixtures_signatures_are_not_our_keys(sender: MailgunSender, name: str) -> None:
    assert (await refused(provider_for(sender), resign(sender, fixture("mailgun", name)))).reason == "bad_signature"


async def test_tags_are_capped_and_garbage_in_them_ignored(sender: MailgunSender) -> None:
    many = await receive(
        provider_for(sender), sender.sign(payload("opened", tags=[f"t{i}" for i in range(10_000)]), timestamp=NOW)
    )
    assert many.events[0].tags == tuple(f"t{i}" for i in range(MAX_TAGS))
    data = payload("opened")
    data["tags"] = [1, None, {"a": [1]}, ["nested"], "", "x" * 10_000, "ok"]
    assert (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events[0].tags == ("ok",)


@pytest.mark.parametrize("garbage", [42, "welcome", None, {"a": "b"}, True, 1.5])
async def test_tags_of_another_shape_are_no_tags(sender: MailgunSender, garbage: Any) -> None:
    data = payload("delivered")
    data["tags"] = garbage
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event == Event("delivered", ())


@pytest.mark.parametrize("garbage", [42, ["failed"], {"x": 1}, None])
async def test_event_fields_of_another_shape_are_ignored(sender: MailgunSender, garbage: Any) -> None:
    data = payload("failed")
    data["event"] = garbage
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event.event is None
    data = payload("failed")
    data["severity"], data["reason"] = garbage, garbage
    (event,) = (await receive(provider_for(sender), sender.sign(data, timestamp=NOW))).events
    assert event.event is None


async def test_a_retry_keeps_its_token_and_a_new_event_gets_another(sender: MailgunSender) -> None:
    provider = provider_for(sender)
    data = payload("delivered")
    first = await receive(provider, sender.sign(data, timestamp=NOW, token="a" * 50))
    again = await receive(provider, sender.sign(data, timestamp=NOW, token="a" * 50))
    other = await receive(provider, sender.sign(payload("delivered"), timestamp=NOW))
    assert first.key == again.key == "a" * 50 != other.key


async def test_a_subaccounts_parent_signature_is_enough(sender: MailgunSender) -> None:
    parent = MailgunSender()
    signed = MailgunSender().sign(payload("delivered"), timestamp=NOW, parent_key=parent.signing_key)
    assert (await receive(provider_for(parent), signed)).events[0].event == "delivered"
    # and the subaccount's own key still verifies its own signature
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"


async def test_another_key_is_refused(sender: MailgunSender) -> None:
    signed = MailgunSender().sign(payload("delivered"), timestamp=NOW)
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"


@pytest.mark.parametrize("field", ["token", "timestamp", "signature"])
async def test_a_tampered_signature_block_is_refused(sender: MailgunSender, field: str) -> None:
    headers, body = sender.sign(payload("delivered"), timestamp=NOW)
    posted = json.loads(body)
    value = posted["signature"][field]
    posted["signature"][field] = value[:-1] + ("1" if value[-1] != "1" else "2")
    assert (await refused(provider_for(sender), (headers, json.dumps(posted).encode()))).reason == "bad_signature"


async def test_an_upper_case_hex_signature_and_an_int_timestamp_pass(sender: MailgunSender) -> None:
    headers, body = sender.sign(payload("opened"), timestamp=NOW)
    posted = json.loads(body)
    posted["signature"]["signature"] = posted["signature"]["signature"].upper()
    posted["signature"]["timestamp"] = int(posted["signature"]["timestamp"])
    assert (await receive(provider_for(sender), (headers, json.dumps(posted).encode()))).events[0].event == "opened"


@pytest.mark.parametrize("offset", [3601, -3601, 10**9])
async def test_a_timestamp_outside_the_tolerance_is_stale(sender: MailgunSender, offset: int) -> None:
    signed = sender.sign(payload("delivered"), timestamp=NOW - offset)
    assert (await refused(provider_for(sender, tolerance=3600), signed)).reason == "stale"


async def test_a_timestamp_at_the_edge_of_the_tolerance_passes(sender: MailgunSender) -> None:
    provider = provider_for(sender, tolerance=3600)
    for offset in (3600, -3600):
        signed = sender.sign(payload("delivered"), timestamp=NOW - offset)
        assert (await receive(provider, signed)).events[0].event == "delivered"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "a string",
        [],
        {},
        {"token": "t", "timestamp": "1750000000"},
        {"token": "t", "signature": "00"},
        {"timestamp": "1750000000", "signature": "00"},
        {"token": "", "timestamp": "1750000000", "signature": "00"},
        {"token": 5, "timestamp": "1750000000", "signature": "00"},
        {"token": "t" * 5000, "timestamp": "1750000000", "signature": "00"},
        {"token": "t", "timestamp": "yesterday", "signature": "00"},
        {"token": "t", "timestamp": "-5", "signature": "00"},
        {"token": "t", "timestamp": 1.75e9, "signature": "00"},
        {"token": "t", "timestamp": True, "signature": "00"},
        {"token": "t", "timestamp": 10**40, "signature": "00"},
        {"token": "t", "timestamp": "١٢٣", "signature": "00"},
        {"token": "t", "timestamp": "1750000000", "signature": 42},
        {"token": "t", "timestamp": "1750000000", "signature": ["00"]},
        {"token": "t", "timestamp": "1750000000", "signature": "üñï"},
    ],
)
async def test_a_missing_or_garbled_signature_is_refused(sender: MailgunSender, signature: Any) -> None:
    body = json.dumps({"signature": signature, "event-data": payload("delivered")}).encode()
    assert (await refused(provider_for(sender), ({}, body))).reason == "bad_signature"


async def test_a_foreign_providers_request_is_refused(sender: MailgunSender) -> None:
    # SendGrid's signed batch: a JSON array, no Mailgun signature in it
    signed = SendgridSender().sign(json.dumps([sendgrid_payload("delivered")]).encode(), timestamp=NOW)
    assert (await refused(provider_for(sender), signed)).reason == "bad_signature"
    # Postmark's event: an object without a signature
    assert (await refused(provider_for(sender), ({}, b'{"RecordType": "Delivery"}'))).reason == "bad_signature"


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[" * 100_000, b"signature=abc&token=def"])
async def test_bodies_that_are_not_json_are_malformed(sender: MailgunSender, body: bytes) -> None:
    assert (await refused(provider_for(sender), ({}, body))).reason == "malformed"


@pytest.mark.parametrize("event_data", [None, [], "delivered", 42, [{"event": "delivered"}]])
async def test_a_signed_body_without_event_data_is_malformed(sender: MailgunSender, event_data: Any) -> None:
    headers, body = sender.sign({}, timestamp=NOW)
    posted = json.loads(body)
    posted["event-data"] = event_data
    problem = await refused(provider_for(sender), (headers, json.dumps(posted).encode()))
    assert problem.reason == "malformed"


async def test_refusals_never_carry_the_request(sender: MailgunSender) -> None:
    data = payload("delivered", tags=["secret-tag"])
    headers, body = MailgunSender().sign(data, timestamp=NOW, token="secret-token-" + "x" * 30)
    text = str(await refused(provider_for(sender), (headers, body)))
    signature = json.loads(body)["signature"]["signature"]
    for secret in (signature, "secret-token", "secret-tag", data["recipient"], sender.signing_key):
        assert secret not in text


def test_the_signed_string_is_mailguns_documented_one() -> None:
    # written out here from the docs (timestamp then token, no separator), not from the sender
    sender = MailgunSender()
    expected = hmac.new(sender.signing_key.encode(), b"1529006854" + b"a" * 50, hashlib.sha256).hexdigest()
    assert sender.signature("1529006854", "a" * 50) == expected


async def test_the_real_clock_signs_now(sender: MailgunSender) -> None:
    signed = sender.sign(payload("accepted"))
    assert (await receive(provider_for(sender), signed, now=time.time())).events[0].event == "requested"
    await provider_for(sender).close()


def test_the_senders_config_is_a_valid_section(sender: MailgunSender) -> None:
    converter = Converter(Path("."))
    section: Any = converter.convert(MailgunWebhook, sender.config(), "email_webhooks.mailgun")
    assert converter.problems == []
    assert list(section.check()) == []
    assert section.signing_key.get() == sender.signing_key
