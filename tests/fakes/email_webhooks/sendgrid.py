"""SendGrid's Signed Event Webhook as SendGrid posts it: an ECDSA-signed JSON array of events.

Written from SendGrid's docs (twilio.com/docs/sendgrid/for-developers/tracking-events/
getting-started-event-webhook-security-features), not from the exporter: a P-256 key pair, the
public half shown as base64 DER (the "Verification Key"), the signature base64 DER ECDSA
SHA-256 over the timestamp header's text followed by the body.  Events start from
tests/fakes/api-fixtures/sendgrid/webhook_events.json (the Event Webhook reference's examples).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.common import fixture

EVENT_TYPES = (
    "processed",
    "deferred",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
)
# a SendGrid event for each neutral event: (event, payload() keywords)
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "requested": ("processed", {}),
    "delivered": ("delivered", {}),
    "deferred": ("deferred", {}),
    "bounced": ("bounce", {"bounce_type": "bounce"}),
    "blocked": ("bounce", {"bounce_type": "blocked"}),
    "dropped": ("dropped", {}),
    "complained": ("spamreport", {}),
    "opened": ("open", {}),
    "clicked": ("click", {}),
    "unsubscribed": ("unsubscribe", {}),
}


class SendgridSender:
    """Holds one Event Webhook's key pair and signs batches as SendGrid does."""

    def __init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.verification_key = base64.b64encode(der).decode()

    def signature(self, stamp: str, body: bytes) -> str:
        der = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, *, timestamp: float | None = None) -> tuple[dict[str, str], bytes]:
        """Headers and body as SendGrid posts them, signed at ``timestamp`` (default now)."""
        stamp = str(int(time.time() if timestamp is None else timestamp))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": self.signature(stamp, body),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        return headers, body

    def config(self) -> dict[str, Any]:
        return {"verification_key": self.verification_key}


def payload(
    event: str,
    *,
    tags: Sequence[str] | str | None = None,
    bounce_type: str = "bounce",
    timestamp: float | None = None,
) -> dict[str, Any]:
    """One real-shaped SendGrid event; ``tags`` is its ``category`` (string or list, None: absent)."""
    templates: dict[str, dict[str, Any]] = {}
    for template in fixture("sendgrid", "webhook_events.json"):
        templates.setdefault(template["event"], template)  # the first bounce is a bounce, the second a block
    item = copy.deepcopy(templates[event])
    item["sg_event_id"] = secrets.token_urlsafe(16)
    item["sg_message_id"] = secrets.token_hex(11) + ".filter0001.16648.5515E0B88.0"
    item["timestamp"] = int(time.time() if timestamp is None else timestamp)
    if tags is None:
        item.pop("category", None)
    else:
        item["category"] = tags if isinstance(tags, str) else list(tags)
    if event == "bounce":
        item["type"] = bounce_type
        item["bounce_classification"] = "Reputation" if bounce_type == "blocked" else "Invalid Address"
    return item


def example(neutral: str, *, tags: Sequence[str] | str | None = None) -> dict[str, Any]:
    """A SendGrid event that the exporter counts as the neutral event ``neutral``."""
    event, kw = EXAMPLES[neutral]
    return payload(event, tags=tags, **kw)


def encode(batch: Sequence[Any]) -> bytes:
    """A batch as SendGrid posts it: one JSON array."""
    return json.dumps(list(batch)).encode()
