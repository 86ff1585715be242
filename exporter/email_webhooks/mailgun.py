"""Mailgun's webhooks: one JSON event per request, the HMAC signature inside the body.

What Mailgun sends (documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
for the signature, .../user-manual/events for the events)::

    POST /webhooks/v1/mailgun
    Content-Type: application/json

    {"signature": {"timestamp": "1770920772", "token": "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
                   "signature": "12d99f5a15355c180971bed7494d578b093c958f57766f3fe750761baed12345"},
     "event-data": {"event": "failed", "severity": "permanent", "reason": "suppress-bounce",
                    "tags": ["welcome"], ...}}

The signature is hex HMAC-SHA256 of ``timestamp`` followed by ``token``, keyed with the
domain's HTTP webhook signing key.  For a subaccount's domain Mailgun adds
``parent-signature``, the same HMAC keyed with the primary account's key: either may
match.  The event itself is not signed; Mailgun signs each event with a fresh token and
keeps it when it retries, so the token is the request's replay key.

A ``failed`` event is ``permanent`` or ``temporary`` (``severity``); its ``reason`` names
suppressions (``suppress-bounce``, ``-unsubscribe``, ``-complaint``: never tried, so
dropped) and ``espblock`` (the receiving ESP blocked the sender), the same reasons as the
``failed`` buckets of Mailgun's stats API that the polled collector reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from itertools import islice
from typing import Any, ClassVar

from exporter.email_webhooks.common import EVENTS, Delivery, Event, Refused
from exporter.email_webhooks.config import MailgunWebhook

__all__ = ["MAX_TAGS", "MailgunProvider", "event_of", "tags_of"]

# tags taken from one event: the type mapping needs one, a flood must not cost more
MAX_TAGS = 10
MAX_TAG_CHARS = 255
# Mailgun's token is 50 characters; the token is kept (hashed) for replay protection
MAX_TOKEN_CHARS = 256
# permanent failures Mailgun did not even try: the address is on a suppression list
SUPPRESSIONS = frozenset({"suppress-bounce", "suppress-unsubscribe", "suppress-complaint"})

EVENT_MAP = {
    "accepted": "requested",
    "delivered": "delivered",
    "rejected": "dropped",
    "complained": "complained",
    "opened": "opened",
    "clicked": "clicked",
    "unsubscribed": "unsubscribed",
}


def event_of(data: Mapping[str, Any]) -> str | None:
    """The neutral event of one Mailgun ``event-data``, None for one outside the vocabulary."""
    kind = data.get("event")
    if kind != "failed":
        return EVENT_MAP.get(kind) if isinstance(kind, str) else None
    severity, reason = data.get("severity"), data.get("reason")
    if severity == "permanent":
        return "dropped" if reason in SUPPRESSIONS else "bounced"
    if severity == "temporary":
        return "blocked" if reason == "espblock" else "deferred"
    return None


def tags_of(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The strings of ``tags``, at most MAX_TAGS."""
    tags = data.get("tags")
    if not isinstance(tags, list):
        return ()
    return tuple(t for t in islice(tags, MAX_TAGS) if isinstance(t, str) and 0 < len(t) <= MAX_TAG_CHARS)


class MailgunProvider:
    name: ClassVar[str] = "mailgun"
    # the events its webhooks can report (the series the host shows from the start):
    # all ten (docs/metrics/email.md, Webhooks)
    reports: ClassVar[tuple[str, ...]] = EVENTS

    def __init__(self, config: MailgunWebhook) -> None:
        self._key = config.signing_key.get().encode()
        self._tolerance = float(config.tolerance)

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused("malformed", "the body is not JSON") from None
        signature = payload.get("signature") if isinstance(payload, dict) else None
        if not isinstance(signature, dict):
            raise Refused("bad_signature", "the body carries no Mailgun signature")
        token, stamp = self._verify(signature)
        if abs(now - stamp) > self._tolerance:
            raise Refused("stale", "the Mailgun signature's timestamp is outside the tolerance")
        data = payload.get("event-data")
        if not isinstance(data, dict):
            raise Refused("malformed", "the body has no Mailgun event-data")
        event = event_of(data)
        tags = tags_of(data) if event is not None else ()
        return Delivery(events=(Event(event, tags),), key=token)

    def _verify(self, signature: Mapping[str, Any]) -> tuple[str, int]:
        """The token and timestamp of a signature that matches the signing key."""
        token, stamp = signature.get("token"), signature.get("timestamp")
        # the docs' example sends the timestamp as a string, their table says int: both are read
        if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 <= stamp < 10**12:
            stamp = str(stamp)
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise Refused("bad_signature", "the Mailgun signature has no token")
        if not (isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Refused("bad_signature", "the Mailgun signature's timestamp is not Unix seconds")
        expected = hmac.new(self._key, (stamp + token).encode(), hashlib.sha256).hexdigest().encode()
        given = [signature.get("signature"), signature.get("parent-signature")]
        if not any(isinstance(s, str) and hmac.compare_digest(expected, s.lower().encode()) for s in given):
            raise Refused("bad_signature", "the Mailgun signature does not match the signing key")
        return token, int(stamp)

    async def close(self) -> None:
        return None
