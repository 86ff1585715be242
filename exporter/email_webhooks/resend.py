"""Resend's webhooks, signed by Svix: one event per request.

What Resend sends (resend.com/docs/dashboard/webhooks/event-types and the per-type pages
under resend.com/docs/webhooks/emails/; the signing scheme is Svix's,
docs.svix.com/receiving/verifying-payloads/how-manual)::

    POST /webhooks/v1/resend
    svix-id: msg_2Lh9KRb0pzN4LePd3XiA4eF8sqW
    svix-timestamp: 1708645272
    svix-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=

    {"type": "email.delivered", "created_at": "...",
     "data": {"email_id": "...", "to": [...], "subject": "...", "tags": {"category": "welcome"}}}

The signature is base64 HMAC-SHA256 over ``{svix-id}.{svix-timestamp}.{raw body}``, keyed
with the base64-decoded part of the signing secret after ``whsec_``.  The header lists
space-separated ``v1,<signature>`` entries (two while a secret is being rotated): one
match is enough.  The signed timestamp may be off by ``tolerance`` either way (Svix's
libraries allow five minutes).  ``svix-id`` stays the same when Resend retries, so it is
the request's replay key.

``data.tags`` is an object of tag name to value in Resend's examples and in resend-node's
types, and an array of ``{"name", "value"}`` in the docs' parameter table and in
resend/resend-webhooks-ingester: both are read, the values are the tags.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any, ClassVar

from exporter.email_webhooks.common import EVENTS, Delivery, Event, Refused
from exporter.email_webhooks.config import ResendWebhook

__all__ = ["MAX_TAGS", "ResendProvider", "event_of", "tags_of"]

# the tag values taken from one event: the type mapping needs one, a flood must not cost more
MAX_TAGS = 10
# signatures tried per request: one, or two while Resend rotates the secret
MAX_SIGNATURES = 8
# Svix message ids are about 30 characters; the id is kept (hashed) for replay protection
MAX_ID_CHARS = 256

EVENT_MAP = {
    "email.sent": "requested",
    "email.delivered": "delivered",
    "email.delivery_delayed": "deferred",
    "email.bounced": "bounced",
    "email.complained": "complained",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.failed": "dropped",
    "email.suppressed": "dropped",
}


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError (without the secret) when it is not base64."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("the Resend signing secret is not whsec_ followed by base64") from None


def event_of(payload: Mapping[str, Any]) -> str | None:
    """The neutral event of one Resend payload, None for a type outside the vocabulary."""
    kind = payload.get("type")
    if not isinstance(kind, str):
        raise Refused("malformed", "the Resend event has no type")
    event = EVENT_MAP.get(kind)
    if event == "bounced":
        bounce = payload["data"].get("bounce")
        # Resend relays Amazon SES's bounce types: Permanent, Transient, Undetermined
        if isinstance(bounce, dict) and bounce.get("type") == "Transient":
            return "deferred"
    return event


def tags_of(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The tag values of ``data.tags`` (object or array of name/value), at most MAX_TAGS."""
    tags = data.get("tags")
    values: Iterable[Any]
    if isinstance(tags, dict):
        values = islice(tags.values(), MAX_TAGS)
    elif isinstance(tags, list):
        values = (tag.get("value") for tag in islice(tags, MAX_TAGS) if isinstance(tag, dict))
    else:
        return ()
    return tuple(value for value in values if isinstance(value, str))


class ResendProvider:
    name: ClassVar[str] = "resend"
    # the events its webhooks can report (the series the host shows from the start):
    # no blocked or unsubscribe event
    reports: ClassVar[tuple[str, ...]] = tuple(e for e in EVENTS if e not in ("blocked", "unsubscribed"))

    def __init__(self, config: ResendWebhook) -> None:
        self._key = signing_key(config.signing_secret.get())
        self._tolerance = float(config.tolerance)

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        msg_id = headers.get("svix-id")
        stamp = headers.get("svix-timestamp")
        signatures = headers.get("svix-signature")
        if not msg_id or not stamp or not signatures:
            raise Refused("bad_signature", "missing svix-id, svix-timestamp or svix-signature")
        if len(msg_id) > MAX_ID_CHARS:
            raise Refused("bad_signature", "svix-id is too long to be Svix's")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Refused("bad_signature", "svix-timestamp is not Unix seconds")
        self._verify(msg_id, stamp, signatures, body)
        if abs(now - int(stamp)) > self._tolerance:
            raise Refused("stale", "svix-timestamp is outside the tolerance")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused("malformed", "the body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            raise Refused("malformed", "the body is not a Resend event")
        event = event_of(payload)
        tags = tags_of(payload["data"]) if event is not None else ()
        return Delivery(events=(Event(event, tags),), key=msg_id)

    def _verify(self, msg_id: str, stamp: str, signatures: str, body: bytes) -> None:
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        for entry in signatures.split()[:MAX_SIGNATURES]:
            version, _, signature = entry.partition(",")
            # other versions (v1a: Svix's asymmetric signatures) are not Resend's
            if version == "v1" and hmac.compare_digest(expected, signature.encode()):
                return
        raise Refused("bad_signature", "no svix-signature entry matches the signing secret")

    async def close(self) -> None:
        return None
