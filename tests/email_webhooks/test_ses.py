"""SES events through SNS: signature, certificate host, topic, confirmations, and what is counted."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.email_webhooks import ses
from exporter.email_webhooks.common import Delivery, Event, Refused
from exporter.email_webhooks.config import SesWebhook
from exporter.email_webhooks.ses import MAX_CERTS, MAX_TAGS, SesProvider
from exporter.schema import Converter
from peers.process import free_port
from tests.fakes.common import fixture
from tests.fakes.email_webhooks.ses import FIXTURES, SesSender, encode, payload

Signed = tuple[dict[str, str], bytes]


@pytest.fixture
async def sender() -> AsyncIterator[SesSender]:
    sender = SesSender()
    async with sender.cert_server():
        yield sender


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., SesProvider]]:
    """Providers built from a sender's config; each is closed after the test."""
    made: list[SesProvider] = []

    def build(sender: SesSender, **changes: Any) -> SesProvider:
        section = {**sender.config(), **changes}
        converter = Converter(Path("."))
        config = converter.convert(SesWebhook, section, "email_webhooks.ses")
        assert converter.problems == []
        made.append(SesProvider(config))
        return made[-1]

    yield build
    for provider in made:
        await provider.close()


async def receive(provider: SesProvider, signed: Signed, now: float | None = None) -> Delivery:
    headers, body = signed
    when = time.time() if now is None else now
    return await provider.receive(CIMultiDictProxy(CIMultiDict(headers)), body, when)


async def refused(provider: SesProvider, signed: Signed, now: float | None = None) -> Refused:
    with pytest.raises(Refused) as caught:
        await receive(provider, signed, now)
    return caught.value


def notification(sender: SesSender, record: dict[str, Any], **kw: Any) -> Signed:
    return sender.sign(encode(record), **kw)


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_signed_notification_is_counted_with_tags_then_configuration_set(
    sender: SesSender, make: Callable[..., SesProvider], version: str
) -> None:
    record = payload("Delivery", tags={"email_type": "password_reset", "team": "auth"}, configuration_set="tx")
    headers, body = notification(sender, record, version=version)
    delivery = await receive(make(sender), (headers, body))
    assert delivery == Delivery(
        events=(Event("delivered", ("password_reset", "auth", "tx")),), key=json.loads(body)["MessageId"]
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Send", "requested"),
        ("Delivery", "delivered"),
        ("Bounce", "bounced"),
        ("Complaint", "complained"),
        ("Reject", "dropped"),
        ("Rendering Failure", "dropped"),
        ("DeliveryDelay", "deferred"),
        ("Open", "opened"),
        ("Click", "clicked"),
        ("Subscription", "unsubscribed"),
    ],
)
async def test_every_documented_event_type_is_mapped(
    sender: SesSender, make: Callable[..., SesProvider], kind: str, expected: str
) -> None:
    assert kind in FIXTURES
    delivery = await receive(make(sender), notification(sender, payload(kind, tags={"t": "welcome"})))
    assert delivery.events == (Event(expected, ("welcome", "transactional")),)


@pytest.mark.parametrize(
    ("bounce_type", "expected"), [("Permanent", "bounced"), ("Undetermined", "bounced"), ("Transient", "deferred")]
)
async def test_a_bounce_is_a_bounce_unless_transient(
    sender: SesSender, make: Callable[..., SesProvider], bounce_type: str, expected: str
) -> None:
    record = payload("Bounce", bounce_type=bounce_type, configuration_set="cs")
    assert (await receive(make(sender), notification(sender, record))).events == (Event(expected, ("cs",)),)


async def test_the_documented_records_are_read_as_published(
    sender: SesSender, make: Callable[..., SesProvider]
) -> None:
    provider = make(sender)
    delivery = fixture("aws-ses", "webhook_delivery.json")
    (event,) = (await receive(provider, notification(sender, delivery))).events
    # the own tags in key order, SES's own (ses:*) left out, then the configuration set
    assert event == Event("delivered", ("myCustomTagValue1", "myCustomTagValue2", "ConfigSet"))
    # identity feedback notifications say notificationType and carry no tags
    identity = fixture("aws-ses", "webhook_identity_bounce.json")
    assert "eventType" not in identity
    assert (await receive(provider, notification(sender, identity))).events == (Event("deferred", ()),)
    # SES's note that a topic was set up for an identity is not an email event
    started = {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed"}
    assert (await receive(provider, notification(sender, started))).events == (Event(None, ()),)


async def test_tags_are_capped_and_odd_values_skipped(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    provider = make(sender)
    record = payload("Open", tags={f"k{i:02}": f"v{i}" for i in range(40)})
    (event,) = (await receive(provider, notification(sender, record))).events
    assert event.tags == tuple(f"v{i}" for i in range(MAX_TAGS))
    record["mail"]["tags"] = {"a": [1, "one"], "b": "two", "c": {"x": 1}, "ses:configuration-set": [None, "cs"]}
    (event,) = (await receive(provider, notification(sender, record))).events
    assert event.tags == ("one", "two", "cs")
    junks: list[Any] = [None, [], "tags", 3]
    for junk in junks:
        record["mail"]["tags"] = junk
        assert (await receive(provider, notification(sender, record))).events == (Event("opened", ()),)
    record["mail"] = "not a mapping"
    assert (await receive(provider, notification(sender, record))).events == (Event("opened", ()),)


async def test_the_certificate_is_fetched_once(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    provider = make(sender)
    signed = [notification(sender, payload("Send")) for _ in range(5)]
    # concurrent messages signed with a new certificate share one fetch
    await asyncio.gather(*(receive(provider, one) for one in signed[:3]))
    for one in signed[3:]:
        await receive(provider, one)
    assert sender.cert_requests == 1


async def test_at_most_eight_certificates_are_kept(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    provider = make(sender)
    # the fake serves its certificate at one path: other paths under sns_url are other "certificates"
    paths = [f"/SimpleNotificationService-{i}.pem" for i in range(MAX_CERTS + 1)]
    served: list[str] = []

    async def fetch(url: Any) -> Any:
        served.append(url.path)
        return sender.key.public_key()

    provider._fetch = fetch  # type: ignore[method-assign]
    for path in paths:
        await receive(provider, notification(sender, payload("Send"), cert_url=str(sender.sns_url) + path))
    await receive(provider, notification(sender, payload("Send"), cert_url=str(sender.sns_url) + paths[-1]))
    assert served == paths
    # the first was forgotten to keep eight
    await receive(provider, notification(sender, payload("Send"), cert_url=str(sender.sns_url) + paths[0]))
    assert served == [*paths, paths[0]]


async def test_another_key_or_a_tampered_message_is_refused(
    sender: SesSender, make: Callable[..., SesProvider]
) -> None:
    provider = make(sender)
    impostor = SesSender()
    impostor.sns_url = sender.sns_url
    forged = impostor.envelope(json.dumps(payload("Delivery")), cert_url=sender.cert_url)
    assert (await refused(provider, impostor.post(forged))).reason == "bad_signature"
    genuine = sender.envelope(json.dumps(payload("Delivery", tags={"t": "a"})))
    genuine["Message"] = genuine["Message"].replace('"a"', '"b"')
    assert (await refused(provider, sender.post(genuine))).reason == "bad_signature"
    # a v2 signature presented as v1 does not verify either
    relabelled = sender.envelope(json.dumps(payload("Delivery")), version="2")
    relabelled["SignatureVersion"] = "1"
    assert (await refused(provider, sender.post(relabelled))).reason == "bad_signature"
    # a Subject the signer did not sign
    added = sender.envelope(json.dumps(payload("Delivery")))
    added["Subject"] = "hello"
    assert (await refused(provider, sender.post(added))).reason == "bad_signature"


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://evil.example@sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.eu-west-1.amazonaws.com/x.pem?redirect=https://evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "//sns.eu-west-1.amazonaws.com/x.pem",
        "not a url",
    ],
)
async def test_a_certificate_off_the_regions_sns_host_is_never_fetched(
    sender: SesSender, make: Callable[..., SesProvider], cert_url: str
) -> None:
    provider = make(sender)
    signed = notification(sender, payload("Send"), cert_url=cert_url)
    assert (await refused(provider, signed)).reason == "bad_signature"
    assert provider._session is None  # nothing was fetched from anywhere


async def test_sns_url_is_matched_by_host_port_and_path(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    assert sender.sns_url is not None
    provider = make(sender, sns_url=str(sender.sns_url) + "/certs")
    # the same host on another port, or outside the path, is refused
    elsewhere = f"http://127.0.0.1:{free_port()}/certs/x.pem"
    for cert_url in (elsewhere, str(sender.sns_url) + "/other/x.pem", str(sender.sns_url) + "/certsx.pem"):
        assert (
            await refused(provider, notification(sender, payload("Send"), cert_url=cert_url))
        ).reason == "bad_signature"
    assert sender.cert_requests == 0


async def test_a_topic_not_configured_is_refused_before_any_fetch(
    sender: SesSender, make: Callable[..., SesProvider]
) -> None:
    provider = make(sender)
    other = "arn:aws:sns:eu-west-1:123456789012:someone-else"
    assert (await refused(provider, notification(sender, payload("Send"), topic_arn=other))).reason == "bad_signature"
    assert sender.cert_requests == 0


async def test_a_subscription_confirmation_gives_the_url_to_visit(
    sender: SesSender, make: Callable[..., SesProvider]
) -> None:
    provider = make(sender)
    headers, body = sender.subscription()
    delivery = await receive(provider, (headers, body))
    envelope = json.loads(body)
    assert delivery == Delivery(events=(), key=envelope["MessageId"], confirm_url=envelope["SubscribeURL"])
    # a SubscribeURL anywhere else is not visited
    for url in (
        "https://evil.example/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    ):
        assert (await refused(provider, sender.subscription(subscribe_url=url))).reason == "bad_signature"
    # the SubscribeURL is signed
    envelope["SubscribeURL"] = str(sender.sns_url) + "/?Action=ConfirmSubscription&Token=other"
    assert (await refused(provider, sender.post(envelope))).reason == "bad_signature"


async def test_an_unsubscribe_confirmation_is_reported(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    headers, body = sender.subscription(message_type="UnsubscribeConfirmation", version="1")
    delivery = await receive(make(sender), (headers, body))
    assert delivery == Delivery(events=(), key=json.loads(body)["MessageId"], unsubscribed=True)


@pytest.mark.parametrize(("age", "reason"), [(3601, "stale"), (-3601, "stale"), (3599, None)])
async def test_the_timestamp_must_be_within_the_tolerance(
    sender: SesSender, make: Callable[..., SesProvider], age: float, reason: str | None
) -> None:
    now = time.time()
    signed = notification(sender, payload("Send"), timestamp=now - age)
    if reason is None:
        assert (await receive(make(sender), signed, now)).events
    else:
        assert (await refused(make(sender), signed, now)).reason == reason


async def test_an_unreachable_certificate_is_unavailable(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    provider = make(sender, sns_url=closed)
    signed = notification(sender, payload("Send"), cert_url=closed + sender.cert_path)
    assert (await refused(provider, signed)).reason == "unavailable"


@pytest.mark.parametrize("fault", ["404", "huge", "huge_chunked", "garbage", "slow"])
async def test_a_certificate_that_cannot_be_had_is_unavailable_and_not_asked_again_soon(
    sender: SesSender, make: Callable[..., SesProvider], monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    monkeypatch.setattr(ses, "CERT_TIMEOUT", 0.3)
    sender.cert_fault = fault
    provider = make(sender)
    now = time.time()
    assert (await refused(provider, notification(sender, payload("Send")), now)).reason == "unavailable"
    assert (await refused(provider, notification(sender, payload("Send")), now + 29)).reason == "unavailable"
    assert sender.cert_requests == 1
    sender.cert_fault = None
    assert (await receive(provider, notification(sender, payload("Send"), timestamp=now + 31), now + 31)).events
    assert sender.cert_requests == 2


async def test_a_redirect_is_not_followed(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    from aiohttp import web

    app = web.Application()

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(sender.cert_url)

    app.router.add_get("/{name}", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        provider = make(sender, sns_url=base)
        signed = notification(sender, payload("Send"), cert_url=base + "/moved.pem")
        assert (await refused(provider, signed)).reason == "unavailable"
        assert sender.cert_requests == 0
    finally:
        await runner.cleanup()


async def test_without_the_sns_header_it_is_not_an_sns_message(
    sender: SesSender, make: Callable[..., SesProvider]
) -> None:
    provider = make(sender)
    headers, body = notification(sender, payload("Send"))
    del headers["x-amz-sns-message-type"]
    assert (await refused(provider, (headers, body))).reason == "bad_signature"
    headers["x-amz-sns-message-type"] = "SubscriptionConfirmation"
    assert (await refused(provider, (headers, body))).reason == "bad_signature"
    # a foreign provider's request (Resend's Svix headers) never reaches the JSON
    resend = (
        {"svix-id": "msg_1", "svix-timestamp": "1", "svix-signature": "v1,x"},
        b'{"type": "email.sent", "data": {}}',
    )
    assert (await refused(provider, resend)).reason == "bad_signature"


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda envelope: envelope.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda envelope: envelope.__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_drop("Signature"), "malformed"),
        (_drop("TopicArn"), "malformed"),
        (_set("MessageId", 12), "malformed"),
        (_set("Type", "Unknown"), "malformed"),
        (_set("Subject", ["x"]), "malformed"),
        (_set("Timestamp", "yesterday"), "malformed"),
        (_set("SignatureVersion", "3"), "bad_signature"),
        (_set("SignatureVersion", 2), "malformed"),
        (_set("Signature", "not base64!"), "bad_signature"),
        (_set("Message", "Hello world!"), "bad_signature"),
    ],
)
async def test_a_broken_envelope_is_refused(
    sender: SesSender, make: Callable[..., SesProvider], change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    envelope = sender.envelope(json.dumps(payload("Send")))
    change(envelope)
    headers, body = sender.post(envelope)
    headers["x-amz-sns-message-type"] = "Notification"
    assert (await refused(make(sender), (headers, body))).reason == reason


@pytest.mark.parametrize(
    "message",
    ["Hello world!", "[]", '"text"', '{"mail": {}}', '{"eventType": 5}', "[" * 50_000 + "]" * 50_000],
)
async def test_a_signed_message_that_is_not_an_ses_record_is_malformed(
    sender: SesSender, make: Callable[..., SesProvider], message: str
) -> None:
    assert (await refused(make(sender), sender.sign(message.encode()))).reason == "malformed"


@pytest.mark.parametrize("body", [b"not json", b"\xff", b"[]", b'{"Type": "Notification"}', b"[" * 100_000])
async def test_a_body_that_is_not_an_sns_message_is_malformed(
    sender: SesSender, make: Callable[..., SesProvider], body: bytes
) -> None:
    headers = {"x-amz-sns-message-type": "Notification"}
    assert (await refused(make(sender), (headers, body))).reason == "malformed"


def test_the_fakes_envelopes_have_the_documented_fields() -> None:
    sender = SesSender()
    sender.sns_url = "http://127.0.0.1:1"
    assert set(sender.envelope("m", subject="s")) == set(fixture("aws-ses", "sns_notification.json"))
    confirmation = sender.envelope("m", message_type="SubscriptionConfirmation")
    assert set(confirmation) == set(fixture("aws-ses", "sns_subscription_confirmation.json"))
    unsubscribed = sender.envelope("m", message_type="UnsubscribeConfirmation")
    assert set(unsubscribed) == set(fixture("aws-ses", "sns_unsubscribe_confirmation.json"))


async def test_refusals_carry_no_request_text(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    record = payload("Send", tags={"t": "secret-tag"})
    other = "arn:aws:sns:eu-west-1:123456789012:private-topic"
    calls: list[Coroutine[Any, Any, Refused]] = [
        refused(make(sender), notification(sender, record, topic_arn=other)),
        refused(make(sender), notification(sender, record, cert_url="https://evil.example/secret-path.pem")),
    ]
    for problem in await asyncio.gather(*calls):
        for text in ("secret-tag", "private-topic", "secret-path", "recipient@example.com"):
            assert text not in str(problem)


async def test_close_releases_the_session(sender: SesSender, make: Callable[..., SesProvider]) -> None:
    provider = make(sender)
    await receive(provider, notification(sender, payload("Send")))
    session = provider._session
    assert session is not None
    await provider.close()
    assert session.closed
