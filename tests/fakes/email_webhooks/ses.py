"""SES events as SNS posts them, signed with a test certificate served on loopback.

The signer follows AWS's documented scheme, written here from the docs
(docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html), not from the
exporter: RSA PKCS#1 v1.5, SHA-1 (SignatureVersion 1) or SHA-256 (2), over "name\\nvalue\\n"
of the type's fields in byte order.  The certificate is a self-signed RSA one made per
sender; ``cert_server()`` serves it where SigningCertURL points (the config's ``sns_url``)
and records SubscribeURL visits.  Event records start from
tests/fakes/api-fixtures/aws-ses/webhook_*.json (AWS's documented examples).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.fakes.common import fixture

FIXTURES = {
    "Send": "webhook_send.json",
    "Delivery": "webhook_delivery.json",
    "Bounce": "webhook_bounce.json",
    "Complaint": "webhook_complaint.json",
    "Reject": "webhook_reject.json",
    "Rendering Failure": "webhook_rendering_failure.json",
    "DeliveryDelay": "webhook_delivery_delay.json",
    "Open": "webhook_open.json",
    "Click": "webhook_click.json",
    "Subscription": "webhook_subscription.json",
}
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def sns_time(when: float) -> str:
    """SNS's Timestamp form: ``2012-05-02T00:54:06.655Z``."""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


class SesSender:
    """An SNS topic that SES publishes to: signs envelopes, serves its signing certificate."""

    def __init__(self, *, region: str = "eu-west-1", account: str = "123456789012", topic: str = "ses-events") -> None:
        self.region = region
        self.topic_arn = f"arn:aws:sns:{region}:{account}:{topic}"
        self.key, self.cert_pem = make_certificate()
        self.cert_path = f"/SimpleNotificationService-{uuid.uuid4().hex}.pem"
        self.sns_url: str | None = None
        # what the cert server saw and how it misbehaves
        self.cert_requests = 0
        self.confirmations: list[str] = []
        self.cert_fault: str | None = None  # "404", "slow", "huge", "huge_chunked", "garbage"
        self._stopping = asyncio.Event()

    @property
    def cert_url(self) -> str:
        assert self.sns_url is not None, "start cert_server() first"
        return self.sns_url + self.cert_path

    @asynccontextmanager
    async def cert_server(self) -> AsyncIterator[str]:
        """Serve the certificate (and SubscribeURL) on a free loopback port; yields the sns_url."""
        app = web.Application()
        app.router.add_get("/", self._subscribe)
        app.router.add_get("/{name}", self._certificate)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.sns_url = f"http://127.0.0.1:{port}"
        self._stopping = asyncio.Event()
        try:
            yield self.sns_url
        finally:
            self._stopping.set()  # a "slow" answer ends now instead of holding up the cleanup
            await runner.cleanup()

    async def _certificate(self, request: web.Request) -> web.StreamResponse:
        if request.path != self.cert_path:
            return web.Response(status=404)
        self.cert_requests += 1
        if self.cert_fault == "404":
            return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>")
        if self.cert_fault == "slow":
            await self._stopping.wait()
        if self.cert_fault == "huge":
            return web.Response(body=self.cert_pem + b"\n" * (65 * 1024))
        if self.cert_fault == "huge_chunked":
            # no Content-Length: only counting the bytes read can stop it
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(self.cert_pem)
            for _ in range(65):
                await response.write(b"\n" * 1024)
            await response.write_eof()
            return response
        if self.cert_fault == "garbage":
            return web.Response(text="not a certificate")
        return web.Response(body=self.cert_pem, content_type="application/x-x509-ca-cert")

    async def _subscribe(self, request: web.Request) -> web.Response:
        self.confirmations.append(request.query.get("Action", ""))
        return web.Response(text="<ConfirmSubscriptionResponse/>", content_type="text/xml")

    def envelope(
        self,
        message: str,
        *,
        timestamp: float | None = None,
        message_type: str = "Notification",
        version: str = "2",
        topic_arn: str | None = None,
        cert_url: str | None = None,
        subject: str | None = None,
        subscribe_url: str | None = None,
    ) -> dict[str, Any]:
        """The signed SNS message (a dict, to tamper with before encoding)."""
        when = time.time() if timestamp is None else timestamp
        topic = topic_arn or self.topic_arn
        fields: dict[str, Any] = {"Type": message_type, "MessageId": str(uuid.uuid4()), "TopicArn": topic}
        if message_type == "Notification":
            if subject is not None:
                fields["Subject"] = subject
            fields["Message"] = message
        else:
            token = uuid.uuid4().hex * 4
            fields["Token"] = token
            fields["Message"] = message
            base = self.sns_url or f"https://sns.{self.region}.amazonaws.com"
            fields["SubscribeURL"] = (
                subscribe_url or f"{base}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"
            )
        fields["Timestamp"] = sns_time(when)
        fields["SignatureVersion"] = version
        fields["Signature"] = self.signature(fields)
        fields["SigningCertURL"] = cert_url or self.cert_url
        if message_type == "Notification":
            fields["UnsubscribeURL"] = f"{self.sns_url}/?Action=Unsubscribe&SubscriptionArn={topic}:{uuid.uuid4()}"
        return fields

    def signature(self, fields: Mapping[str, Any]) -> str:
        keys = NOTIFICATION_KEYS if fields["Type"] == "Notification" else CONFIRMATION_KEYS
        signed = "".join(f"{key}\n{fields[key]}\n" for key in keys if key in fields).encode()
        algorithm = hashes.SHA1() if fields["SignatureVersion"] == "1" else hashes.SHA256()  # noqa: S303
        return base64.b64encode(self.key.sign(signed, padding.PKCS1v15(), algorithm)).decode()

    def sign(self, body: bytes, *, timestamp: float | None = None, **kw: Any) -> tuple[dict[str, str], bytes]:
        """Headers and body as SNS posts them, ``body`` being the published Message."""
        return self.post(self.envelope(body.decode(), timestamp=timestamp, **kw))

    def post(self, envelope: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": "Amazon Simple Notification Service Agent",
            "x-amz-sns-message-type": str(envelope.get("Type")),
            "x-amz-sns-message-id": str(envelope.get("MessageId")),
            "x-amz-sns-topic-arn": str(envelope.get("TopicArn")),
        }
        return headers, json.dumps(envelope).encode()

    def subscription(
        self, *, message_type: str = "SubscriptionConfirmation", **kw: Any
    ) -> tuple[dict[str, str], bytes]:
        """The SubscriptionConfirmation (or UnsubscribeConfirmation) SNS posts to a new endpoint."""
        text = (
            f"You have chosen to subscribe to the topic {self.topic_arn}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message."
        )
        return self.post(self.envelope(text, message_type=message_type, **kw))

    def config(self) -> dict[str, Any]:
        section: dict[str, Any] = {"region": self.region, "topic_arns": [self.topic_arn]}
        if self.sns_url is not None:
            section["sns_url"] = self.sns_url
        return section


def payload(
    event: str,
    *,
    tags: Mapping[str, str] | None = None,
    configuration_set: str | None = "transactional",
    bounce_type: str = "Permanent",
) -> dict[str, Any]:
    """A real-shaped SES event record of ``eventType`` ``event`` with message tags and a configuration set."""
    record: dict[str, Any] = copy.deepcopy(fixture("aws-ses", FIXTURES[event]))
    record["mail"]["messageId"] = f"0100{uuid.uuid4().hex}-000000"
    mail_tags: dict[str, list[str]] = {"ses:source-ip": ["192.0.2.0"], "ses:from-domain": ["example.com"]}
    if configuration_set is not None:
        mail_tags["ses:configuration-set"] = [configuration_set]
    mail_tags.update({name: [value] for name, value in (tags or {}).items()})
    record["mail"]["tags"] = mail_tags
    if event == "Bounce":
        record["bounce"]["bounceType"] = bounce_type
    return record


def encode(record: Any) -> bytes:
    return json.dumps(record).encode()
