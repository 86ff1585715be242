"""Postmark's webhooks: one JSON event per request, authenticated by HTTP basic auth.

What Postmark sends (postmarkapp.com/developer/webhooks/webhooks-overview and the page of
each webhook: delivery-, bounce-, spam-complaint-, open-tracking-, click- and
subscription-change-webhook)::

    POST /webhooks/v1/postmark
    Authorization: Basic dXNlcjpwYXNzd29yZA==
    Content-Type: application/json

    {"RecordType": "Bounce", "Type": "HardBounce", "Tag": "welcome",
     "MessageStream": "outbound", "MessageID": "...", "Email": "...", ...}

Postmark does not sign its webhooks: the webhook URL carries a user name and password
(``https://user:password@host/webhooks/v1/postmark``), which Postmark sends as basic auth.
There is no timestamp to check; a retry resends the same body, so the body's SHA-256 is
the request's replay key.

``Type`` of a bounce is one of the names of Postmark's bounce types (developer/api/
bounce-api "Bounce types"; the ``BounceType`` enum of the postmark npm package).  The
event's tags are ``Tag`` (one string, may be empty) then ``MessageStream``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from exporter.email_webhooks.common import EVENTS, Delivery, Event, Refused
from exporter.email_webhooks.config import PostmarkWebhook

__all__ = ["PostmarkProvider", "event_of", "tags_of"]

# "Basic " and base64 of user:password; a longer header is not ours
MAX_AUTHORIZATION_CHARS = 1024
# longer than this is no tag the type mapping could name: not kept
MAX_TAG_CHARS = 1000

RECORD_MAP = {
    "Delivery": "delivered",
    "SpamComplaint": "complained",
    "Open": "opened",
    "Click": "clicked",
}
BOUNCE_MAP = {
    "HardBounce": "bounced",
    "BadEmailAddress": "bounced",
    "ManuallyDeactivated": "bounced",
    "DMARCPolicy": "bounced",
    "SoftBounce": "deferred",
    "Transient": "deferred",
    "DnsError": "deferred",
    "Blocked": "blocked",
    "SpamNotification": "blocked",
    "SMTPApiError": "dropped",
    "TemplateRenderingFailed": "dropped",
}


def event_of(payload: Mapping[str, Any]) -> str | None:
    """The neutral event of one Postmark payload, None for one outside the vocabulary."""
    record = payload.get("RecordType")
    if not isinstance(record, str):
        raise Refused("malformed", "the Postmark event has no RecordType")
    if record == "Bounce":
        kind = payload.get("Type")
        return BOUNCE_MAP.get(kind) if isinstance(kind, str) else None
    if record == "SubscriptionChange":
        # an unsubscribe is suppressed as ManualSuppression; a hard bounce or complaint also
        # suppresses (counted by its own webhook), SuppressSending false is a reactivation
        manual = payload.get("SuppressionReason") == "ManualSuppression"
        return "unsubscribed" if payload.get("SuppressSending") is True and manual else None
    return RECORD_MAP.get(record)


def tags_of(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """``Tag`` then ``MessageStream``, where they are non-empty strings."""
    found = (payload.get("Tag"), payload.get("MessageStream"))
    return tuple(tag for tag in found if isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_CHARS)


class PostmarkProvider:
    name: ClassVar[str] = "postmark"
    # the events its webhooks can report (the series the host shows from the start):
    # no webhook for a sent email, so never `requested`
    reports: ClassVar[tuple[str, ...]] = tuple(e for e in EVENTS if e != "requested")

    def __init__(self, config: PostmarkWebhook) -> None:
        self._credentials = f"{config.username}:{config.password.get()}".encode()

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        self._authenticate(headers.get("Authorization"))
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise Refused("malformed", "the body is not JSON") from None
        if not isinstance(payload, dict):
            raise Refused("malformed", "the body is not a Postmark event")
        event = event_of(payload)
        tags = tags_of(payload) if event is not None else ()
        return Delivery(events=(Event(event, tags),), key=hashlib.sha256(body).hexdigest())

    def _authenticate(self, authorization: str | None) -> None:
        if not authorization or len(authorization) > MAX_AUTHORIZATION_CHARS:
            raise Refused("bad_signature", "missing basic credentials")
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise Refused("bad_signature", "missing basic credentials")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Refused("bad_signature", "the basic credentials are not base64") from None
        if not hmac.compare_digest(given, self._credentials):
            raise Refused("bad_signature", "wrong basic credentials")

    async def close(self) -> None:
        return None
