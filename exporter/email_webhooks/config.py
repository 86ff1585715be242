"""The ``email_webhooks:`` section: one mapping the strict converter fills (``exporter.schema``).

It stands on ``exporter.schema`` and the standard library only, so the loader imports it
cheaply; signature checking (``cryptography`` for SendGrid and SNS) loads with the listener.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from exporter.schema import Duration, Secret

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SEEN_IDS",
    "MAX_TYPES",
    "EmailWebhooksConfig",
    "MailgunWebhook",
    "PostmarkWebhook",
    "ResendWebhook",
    "SendgridWebhook",
    "SesWebhook",
]

# SendGrid posts batches of up to 768 KB; 2 MiB leaves room, 16 MiB is the ceiling
DEFAULT_BODY_BYTES = 2 * 1024 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
# each remembered event id costs about 150 bytes (docs/limits.md)
DEFAULT_SEEN_IDS = 100_000
MAX_SEEN_IDS = 2_000_000
# each type multiplies the series of email_webhook_events_total (providers x events x types)
MAX_TYPES = 20
MAX_TAGS = 200
TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_LISTEN_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_TOPIC_RE = re.compile(r"^arn:aws(-[a-z]+)*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
MAX_TOLERANCE = 24 * 3600.0


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _tolerance(value: float) -> str | None:
    if not 0 < value <= MAX_TOLERANCE:
        return f"must be between 1s and 1d, got {Duration.show(value)}"
    return None


@dataclass(frozen=True, kw_only=True)
class SendgridWebhook:
    # the "Verification Key" of Settings > Mail Settings > Event Webhook (Signed Event Webhook):
    # base64 of a DER public key (ECDSA P-256).  Public, but kept out of logs all the same
    verification_key: Secret
    # X-Twilio-Email-Event-Webhook-Timestamp further than this from now is refused (stale).
    # SendGrid retries a failed post for up to 24 hours and does not document whether a retry
    # is signed anew: a shorter tolerance could refuse the retries after an outage of ours
    tolerance: Duration = Duration(24 * 3600)

    def check(self) -> Iterator[tuple[str, str]]:
        key = _base64(self.verification_key.get().strip())
        if not key:
            yield "verification_key", "must be the base64 verification key SendGrid shows for the signed webhook"
        if (problem := _tolerance(self.tolerance)) is not None:
            yield "tolerance", problem


@dataclass(frozen=True, kw_only=True)
class MailgunWebhook:
    # the "HTTP webhook signing key" of Sending > Webhooks (not the API key)
    signing_key: Secret
    # Mailgun signs once and retries the same signature for 8 hours (+5m ... +7.5h): a
    # shorter tolerance refuses every retry after an outage of ours
    tolerance: Duration = Duration(9 * 3600)

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.signing_key.get():
            yield "signing_key", "must be the HTTP webhook signing key from Mailgun's Webhooks page"
        if (problem := _tolerance(self.tolerance)) is not None:
            yield "tolerance", problem


@dataclass(frozen=True, kw_only=True)
class ResendWebhook:
    # the webhook's signing secret, whsec_ followed by base64 (Resend > Webhooks > the endpoint)
    signing_secret: Secret
    # Svix signs every attempt anew, with that attempt's time
    tolerance: Duration = Duration(300)

    def check(self) -> Iterator[tuple[str, str]]:
        secret = self.signing_secret.get()
        if not secret.startswith("whsec_") or not _base64(secret.removeprefix("whsec_")):
            yield "signing_secret", "must be the endpoint's signing secret: whsec_ followed by base64"
        if (problem := _tolerance(self.tolerance)) is not None:
            yield "tolerance", problem


@dataclass(frozen=True, kw_only=True)
class PostmarkWebhook:
    # Postmark sends the credentials written into the webhook URL as HTTP basic auth
    username: str
    password: Secret

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.username or ":" in self.username:
            yield "username", "must be a non-empty user name without ':'"
        if len(self.password.get()) < 16:
            yield "password", "must be at least 16 characters: it is the only thing that authenticates Postmark"


@dataclass(frozen=True, kw_only=True)
class SesWebhook:
    # the region of the SNS topics: the signing certificate must come from sns.<region>.amazonaws.com
    region: str
    # the SNS topics SES publishes to; a message or subscription from any other topic is refused
    topic_arns: tuple[str, ...]
    # SNS signs the time it published; its retries keep that time, so this is longer
    tolerance: Duration = Duration(3600)
    # where SNS is reached instead of https://sns.<region>.amazonaws.com (LocalStack, tests):
    # the signing certificate and the SubscribeURL must then start with this URL
    sns_url: str | None = None

    def check(self) -> Iterator[tuple[str, str]]:
        if not _REGION_RE.match(self.region):
            yield "region", f"must be an AWS region such as eu-west-1, got {self.region!r}"
        if not self.topic_arns:
            yield "topic_arns", "needs the ARN of at least one SNS topic SES publishes to"
        for i, arn in enumerate(self.topic_arns):
            match = _TOPIC_RE.match(arn)
            if match is None:
                example = "arn:aws:sns:eu-west-1:123456789012:ses-events"
                yield f"topic_arns[{i}]", f"must be an SNS topic ARN such as {example}"
            elif match.group(2) != self.region:
                yield f"topic_arns[{i}]", f"is in region {match.group(2)}, not {self.region}"
        if (problem := _tolerance(self.tolerance)) is not None:
            yield "tolerance", problem
        if self.sns_url is not None:
            parts = urlsplit(self.sns_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                yield "sns_url", "must be an http(s) URL such as http://localhost:4566"
            elif parts.username is not None or parts.password is not None:
                yield "sns_url", "must not contain credentials"


@dataclass(frozen=True, kw_only=True)
class EmailWebhooksConfig:
    # the public ingest listener, shared with rum: (one listener serves both); unset means
    # the rum section's, else :9848.  --rum.listen-address overrides both
    listen_address: str | None = None
    # the app's email types: type -> the tag strings (SendGrid category, Mailgun tag, Postmark
    # tag or message stream, Resend tag value, SES message tag value or configuration set)
    # that mean it; any other email is `other`
    email_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_BODY_BYTES
    # event and request ids remembered for replay protection (oldest forgotten first)
    max_seen_ids: int = DEFAULT_SEEN_IDS
    # failed requests a second each client earns back, and how many it may fail at once;
    # verified requests give their token back, so a provider's volume is never limited
    failure_rate: float = 1.0
    failure_burst: int = 30
    max_clients: int = 65536
    trusted_proxies: tuple[str, ...] = ()
    sendgrid: SendgridWebhook | None = None
    mailgun: MailgunWebhook | None = None
    postmark: PostmarkWebhook | None = None
    resend: ResendWebhook | None = None
    ses: SesWebhook | None = None

    def providers(self) -> dict[str, SendgridWebhook | MailgunWebhook | PostmarkWebhook | ResendWebhook | SesWebhook]:
        """The configured providers by name (the endpoint and the `provider` label)."""
        found = {
            "sendgrid": self.sendgrid,
            "mailgun": self.mailgun,
            "postmark": self.postmark,
            "resend": self.resend,
            "ses": self.ses,
        }
        return {name: section for name, section in found.items() if section is not None}

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies)

    def check(self) -> Iterator[tuple[str, str]]:
        if self.listen_address is not None:
            match = _LISTEN_RE.match(self.listen_address)
            if match is None or not 0 < int(match.group(2)) < 65536:
                yield "listen_address", f"expected HOST:PORT such as :9848, got {self.listen_address!r}"
        if not self.providers():
            yield "", "configure at least one provider: sendgrid, mailgun, postmark, resend or ses"
        yield from self._check_types()
        if not 0 < self.max_body_bytes <= MAX_BODY_BYTES:
            yield "max_body_bytes", f"must be between 1 and {MAX_BODY_BYTES}, got {self.max_body_bytes}"
        if not 0 < self.max_seen_ids <= MAX_SEEN_IDS:
            yield "max_seen_ids", f"must be between 1 and {MAX_SEEN_IDS}, got {self.max_seen_ids}"
        if not (math.isfinite(self.failure_rate) and self.failure_rate > 0):
            yield "failure_rate", f"must be a number of requests a second greater than 0, got {self.failure_rate:g}"
        if not 0 < self.failure_burst <= 100_000:
            yield "failure_burst", f"must be between 1 and 100000, got {self.failure_burst}"
        if not 0 < self.max_clients <= 1_000_000:
            yield "max_clients", f"must be between 1 and 1000000, got {self.max_clients}"
        for i, cidr in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                yield f"trusted_proxies[{i}]", f"expected an address or CIDR such as 10.0.0.0/8, got {cidr!r}"

    def _check_types(self) -> Iterator[tuple[str, str]]:
        if len(self.email_types) > MAX_TYPES:
            yield "email_types", f"at most {MAX_TYPES} types (each is a label value), got {len(self.email_types)}"
        owner: dict[str, str] = {}
        for name, tags in self.email_types.items():
            key = f"email_types.{name}"
            if not TYPE_RE.match(name) or name == "other":
                yield key, "a type is a label value: lower case letters, digits and _, not 'other' (that is the rest)"
            if not tags:
                yield key, "list the tag strings that mean this type"
            if len(tags) > MAX_TAGS:
                yield key, f"at most {MAX_TAGS} tag strings, got {len(tags)}"
            for j, tag in enumerate(tags):
                if not tag:
                    yield f"{key}[{j}]", "must not be empty"
                elif tag in owner and owner[tag] != name:
                    yield f"{key}[{j}]", f"{tag!r} already means {owner[tag]}: a tag can mean one type"
                owner.setdefault(tag, name)
