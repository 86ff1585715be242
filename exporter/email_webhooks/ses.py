"""Amazon SES events through an SNS topic: one SNS message per request, its signature checked.

What SNS posts (docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html,
http-notification-json.html, http-subscription-confirmation-json.html)::

    POST /webhooks/v1/ses
    x-amz-sns-message-type: Notification
    Content-Type: text/plain; charset=UTF-8

    {"Type": "Notification", "MessageId": "...", "TopicArn": "arn:aws:sns:eu-west-1:...:ses-events",
     "Message": "{\\"eventType\\":\\"Delivery\\",\\"mail\\":{...,\\"tags\\":{...}}}",
     "Timestamp": "2024-05-02T00:54:06.655Z", "SignatureVersion": "2", "Signature": "...",
     "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-....pem",
     "UnsubscribeURL": "..."}

The signature (sns-verify-signature-of-message.html) is RSA PKCS#1 v1.5 over "name\\nvalue\\n"
for Message, MessageId, Subject (if present), Timestamp, TopicArn, Type of a Notification,
and Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type of a
Subscription/UnsubscribeConfirmation; SHA-1 for SignatureVersion 1, SHA-256 for 2.  The
key is the certificate at SigningCertURL, fetched only from https://sns.<region>.amazonaws.com
(or the configured sns_url) and trusted through that host's TLS certificate, as AWS's
validators do (aws/aws-js-sns-message-validator).  The topic is checked before anything
is fetched, so only a sender who knows a configured topic ARN can make us fetch at all.

Message is SES's event record (docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html):
``eventType`` with event publishing, ``notificationType`` for an identity's feedback
notifications; ``mail.tags`` maps each tag name to a list of values, the configuration
set under ``ses:configuration-set`` (identity notifications carry no tags).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from yarl import URL

from exporter.email_webhooks.common import EVENTS, Delivery, Event, Refused
from exporter.email_webhooks.config import SesWebhook

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = ["MAX_TAGS", "SesProvider", "event_of", "string_to_sign", "tags_of"]

MAX_TAGS = 10
CERT_TIMEOUT = 5.0
# an SNS signing certificate is about 2 KiB of PEM
MAX_CERT_BYTES = 64 * 1024
# SNS signs with one certificate per region at a time; a few more cover a rotation
MAX_CERTS = 8
# a certificate that could not be fetched is not asked for again this soon (SNS retries anyway)
FAILURE_SECONDS = 30.0

TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
REQUIRED = ("Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion", "Signature", "SigningCertURL")

EVENT_MAP = {
    "Send": "requested",
    "Delivery": "delivered",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Reject": "dropped",
    "Rendering Failure": "dropped",
    "DeliveryDelay": "deferred",
    "Open": "opened",
    "Click": "clicked",
    "Subscription": "unsubscribed",
}


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs for this message (its fields already checked to be strings)."""
    keys = NOTIFICATION_KEYS if message["Type"] == "Notification" else CONFIRMATION_KEYS
    return "".join(f"{key}\n{message[key]}\n" for key in keys if message.get(key) is not None).encode()


def event_of(record: Mapping[str, Any]) -> str | None:
    """The neutral event of one SES record, None for one outside the vocabulary."""
    kind = record.get("eventType", record.get("notificationType"))
    if not isinstance(kind, str):
        raise Refused("malformed", "the SNS message is not an SES event record")
    event = EVENT_MAP.get(kind)
    if event == "bounced":
        bounce = record.get("bounce")
        # Permanent and Undetermined stay bounced; Transient is SES giving up on a soft bounce later
        if isinstance(bounce, dict) and bounce.get("bounceType") == "Transient":
            return "deferred"
    return event


def tags_of(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of the record's own message tags (in key order), then its configuration set."""
    mail = record.get("mail")
    tags = mail.get("tags") if isinstance(mail, dict) else None
    if not isinstance(tags, dict):
        return ()
    own = (values for name, values in tags.items() if isinstance(name, str) and not name.startswith("ses:"))
    found = islice(_strings([*islice(own, MAX_TAGS), tags.get("ses:configuration-set")]), MAX_TAGS)
    return tuple(found)


def _strings(groups: list[Any]) -> Iterator[str]:
    for values in groups:
        if isinstance(values, str):
            yield values
        elif isinstance(values, list):
            yield from (value for value in islice(values, MAX_TAGS) if isinstance(value, str))


class SesProvider:
    name: ClassVar[str] = "ses"
    # the events its webhooks can report (the series the host shows from the start):
    # never `blocked`: SES reports a block as a bounce
    reports: ClassVar[tuple[str, ...]] = tuple(e for e in EVENTS if e != "blocked")

    def __init__(self, config: SesWebhook) -> None:
        self._topics = frozenset(config.topic_arns)
        self._tolerance = float(config.tolerance)
        self._hosts = {f"sns.{config.region}.amazonaws.com"}
        if config.region.startswith("cn-"):
            self._hosts.add(f"sns.{config.region}.amazonaws.com.cn")
        self._sns_url = URL(config.sns_url) if config.sns_url is not None else None
        self._keys: OrderedDict[str, RSAPublicKey] = OrderedDict()
        self._failed: OrderedDict[str, float] = OrderedDict()
        self._fetching: dict[str, asyncio.Task[RSAPublicKey | None]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        kind = headers.get("x-amz-sns-message-type")
        if kind is None:
            raise Refused("bad_signature", "no x-amz-sns-message-type header: not an SNS message")
        message = _envelope(body)
        if message["Type"] != kind:
            raise Refused("bad_signature", "x-amz-sns-message-type differs from the signed Type")
        if message["TopicArn"] not in self._topics:
            raise Refused("bad_signature", "the SNS topic is not one of topic_arns")
        cert_url = self._allowed(message["SigningCertURL"], pem=True)
        if cert_url is None:
            raise Refused("bad_signature", "SigningCertURL is not an SNS host of the configured region")
        if message["SignatureVersion"] not in ("1", "2"):
            raise Refused("bad_signature", "SignatureVersion is neither 1 nor 2")
        published = _timestamp(message["Timestamp"])
        key = await self._public_key(cert_url, now)
        _verify(key, message)
        if abs(now - published) > self._tolerance:
            raise Refused("stale", "the SNS Timestamp is outside the tolerance")
        if message["Type"] == "SubscriptionConfirmation":
            confirm = self._allowed(message["SubscribeURL"], pem=False)
            if confirm is None:
                raise Refused("bad_signature", "SubscribeURL is not an SNS host of the configured region")
            return Delivery(events=(), key=message["MessageId"], confirm_url=str(confirm))
        if message["Type"] == "UnsubscribeConfirmation":
            return Delivery(events=(), key=message["MessageId"], unsubscribed=True)
        try:
            record = json.loads(message["Message"])
        except (ValueError, RecursionError):
            raise Refused("malformed", "the SNS Message is not JSON") from None
        if not isinstance(record, dict):
            raise Refused("malformed", "the SNS message is not an SES event record")
        event = event_of(record)
        tags = tags_of(record) if event is not None else ()
        return Delivery(events=(Event(event, tags),), key=message["MessageId"])

    def _allowed(self, raw: str, *, pem: bool) -> URL | None:
        """The URL if SNS may have sent it: an SNS host of our region (or under sns_url)."""
        try:
            url = URL(raw)
        except (ValueError, TypeError):
            return None
        if not url.is_absolute() or url.user is not None or url.password is not None or url.fragment:
            return None
        if pem and (url.query_string or not url.path.endswith(".pem")):
            return None
        base = self._sns_url
        if base is not None and (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port):
            prefix = base.path.rstrip("/") + "/"
            return url if url.path.startswith(prefix) else None
        if url.scheme == "https" and url.host in self._hosts and url.port == 443:
            return url
        return None

    async def _public_key(self, url: URL, now: float) -> RSAPublicKey:
        name = str(url)
        key = self._keys.get(name)
        if key is not None:
            self._keys.move_to_end(name)
            return key
        if self._failed.get(name, 0.0) > now:
            raise Refused("unavailable", "the SNS signing certificate could not be fetched lately")
        task = self._fetching.get(name)
        if task is None:
            # concurrent messages signed with the same new certificate share one fetch
            task = asyncio.create_task(self._fetch(url))
            self._fetching[name] = task
            task.add_done_callback(lambda _: self._fetching.pop(name, None))
        key = await asyncio.shield(task)
        if key is None:
            _remember(self._failed, name, now + FAILURE_SECONDS)
            raise Refused("unavailable", "the SNS signing certificate could not be fetched")
        _remember(self._keys, name, key)
        return key

    async def _fetch(self, url: URL) -> RSAPublicKey | None:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CERT_TIMEOUT))
        try:
            # a redirect could lead anywhere: the checked URL is the only one fetched
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200 or (response.content_length or 0) > MAX_CERT_BYTES:
                    return None
                pem = bytearray()
                async for chunk in response.content.iter_chunked(16 * 1024):
                    pem += chunk
                    if len(pem) > MAX_CERT_BYTES:
                        return None
            key = x509.load_pem_x509_certificate(bytes(pem)).public_key()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return None
        return key if isinstance(key, RSAPublicKey) else None

    async def close(self) -> None:
        for task in list(self._fetching.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused("malformed", "the body is not JSON") from None
    if not isinstance(message, dict) or not all(isinstance(message.get(key), str) for key in REQUIRED):
        raise Refused("malformed", "the body is not an SNS message")
    if message["Type"] not in TYPES:
        raise Refused("malformed", "the SNS message Type is not one SNS sends over HTTP")
    if message["Type"] == "Notification":
        if not isinstance(message.get("Subject", ""), str | None):
            raise Refused("malformed", "the SNS Subject is not a string")
    elif not (isinstance(message.get("SubscribeURL"), str) and isinstance(message.get("Token"), str)):
        raise Refused("malformed", "the SNS confirmation has no SubscribeURL or Token")
    return message


def _timestamp(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Refused("malformed", "the SNS Timestamp is not an ISO 8601 time") from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def _verify(key: RSAPublicKey, message: Mapping[str, Any]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    # SignatureVersion 1 is SHA1withRSA: SNS's default for a topic, so it must still be accepted
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()  # noqa: S303
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (binascii.Error, InvalidSignature):
        raise Refused("bad_signature", "the SNS signature does not verify with the signing certificate") from None


def _remember(cache: OrderedDict[str, Any], name: str, value: Any) -> None:
    cache[name] = value
    cache.move_to_end(name)
    while len(cache) > MAX_CERTS:
        cache.popitem(last=False)
