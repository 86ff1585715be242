"""SendGrid's Signed Event Webhook: a JSON array of events per request, signed with ECDSA.

What SendGrid sends (twilio.com/docs/sendgrid/for-developers/tracking-events/
getting-started-event-webhook-security-features for the signature, .../tracking-events/event
for the events)::

    POST /webhooks/v1/sendgrid
    X-Twilio-Email-Event-Webhook-Signature: MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr...
    X-Twilio-Email-Event-Webhook-Timestamp: 1588788367

    [{"event": "processed", "sg_event_id": "...", "category": "cat facts", ...},
     {"event": "bounce", "type": "blocked", "bounce_classification": "Reputation", ...}]

The signature is a base64 DER ECDSA (P-256, SHA-256) signature over the timestamp header's
text followed by the raw body; the "Verification Key" SendGrid shows is base64 of the DER
public key (SubjectPublicKeyInfo).  Each event carries its own ``sg_event_id``, the replay
key; an event without one is keyed by its content.  ``category`` is a string or a list of
strings (the docs show both); those are the event's tags.  A ``bounce`` whose ``type`` is
``blocked`` is a block (the receiving server refused the sender), any other a bounce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from itertools import islice
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from exporter.email_webhooks.common import EVENTS, Delivery, Event, Refused
from exporter.email_webhooks.config import SendgridWebhook

__all__ = ["MAX_TAGS", "SendgridProvider", "event_of", "load_key", "tags_of"]

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
# categories taken from one event: the type mapping needs one, a flood must not cost more
MAX_TAGS = 10
MAX_TAG_CHARS = 255
# a DER P-256 signature is at most 72 bytes (96 characters of base64)
MAX_SIGNATURE_CHARS = 256
# sg_event_id is about 22-48 characters; a longer one is keyed by content instead
MAX_ID_CHARS = 256

EVENT_MAP = {
    "processed": "requested",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "complained",
    "open": "opened",
    "click": "clicked",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}


def load_key(text: str) -> ec.EllipticCurvePublicKey:
    """The P-256 key of SendGrid's base64 verification key (PEM armour tolerated).

    ValueError, without the key, when it is not one.
    """
    lines = [line.strip() for line in text.strip().splitlines() if not line.startswith("-----")]
    try:
        key = load_der_public_key(base64.b64decode("".join(lines), validate=True))
    except (binascii.Error, ValueError):
        raise ValueError("the SendGrid verification key is not base64 of a DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the SendGrid verification key is not an ECDSA P-256 public key")
    return key


def event_of(item: Mapping[str, Any]) -> str | None:
    """The neutral event of one SendGrid event, None for one outside the vocabulary."""
    kind = item.get("event")
    if not isinstance(kind, str):
        return None
    event = EVENT_MAP.get(kind)
    if event == "bounced" and item.get("type") == "blocked":
        return "blocked"
    return event


def tags_of(item: Mapping[str, Any]) -> tuple[str, ...]:
    """The event's categories (a string or a list of strings), at most MAX_TAGS."""
    category = item.get("category")
    values = (
        [category] if isinstance(category, str) else islice(category, MAX_TAGS) if isinstance(category, list) else ()
    )
    return tuple(v for v in values if isinstance(v, str) and 0 < len(v) <= MAX_TAG_CHARS)


def key_of(item: Mapping[str, Any]) -> str | None:
    """``sg_event_id``, else a digest of the event itself (a replayed batch repeats it exactly)."""
    event_id = item.get("sg_event_id")
    if isinstance(event_id, str) and 0 < len(event_id) <= MAX_ID_CHARS:
        return event_id
    try:
        canonical = json.dumps(item, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        return None
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class SendgridProvider:
    name: ClassVar[str] = "sendgrid"
    # the events its webhooks can report (the series the host shows from the start):
    # all ten (docs/metrics/email.md, Webhooks)
    reports: ClassVar[tuple[str, ...]] = EVENTS

    def __init__(self, config: SendgridWebhook) -> None:
        self._key = load_key(config.verification_key.get())
        self._tolerance = float(config.tolerance)

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        signature = headers.get(SIGNATURE)
        stamp = headers.get(TIMESTAMP)
        if not signature or not stamp:
            raise Refused("bad_signature", "missing the Event Webhook signature or timestamp header")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Refused("bad_signature", "the Event Webhook timestamp is not Unix seconds")
        self._verify(signature, stamp, body)
        if abs(now - int(stamp)) > self._tolerance:
            raise Refused("stale", "the Event Webhook timestamp is outside the tolerance")
        try:
            batch = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused("malformed", "the body is not JSON") from None
        if not isinstance(batch, list):
            raise Refused("malformed", "the body is not a SendGrid event batch")
        # SendGrid signed it: an entry of another shape is ignored, not a reason to refuse the
        # batch (a refused batch is retried for a day, and never gets better)
        return Delivery(events=tuple(self._event(item) for item in batch))

    @staticmethod
    def _event(item: Any) -> Event:
        if not isinstance(item, dict):
            return Event(None)
        event = event_of(item)
        return Event(event, tags_of(item) if event is not None else (), key_of(item))

    def _verify(self, signature: str, stamp: str, body: bytes) -> None:
        if len(signature) > MAX_SIGNATURE_CHARS:
            raise Refused("bad_signature", "the Event Webhook signature is too long to be ECDSA P-256")
        try:
            der = base64.b64decode(signature, validate=True)
            self._key.verify(der, stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise Refused("bad_signature", "the Event Webhook signature does not match the verification key") from None

    async def close(self) -> None:
        return None
