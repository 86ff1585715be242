"""Postmark's webhooks as Postmark posts them: basic auth from the webhook URL, one JSON event.

Postmark does not sign its webhooks; the credentials written into the webhook URL
(``https://user:password@host/...``, postmarkapp.com/developer/webhooks/webhooks-overview)
arrive as ``Authorization: Basic``.  Payloads start from
tests/fakes/api-fixtures/postmark/webhook_*.json (Postmark's documented examples).
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from tests.fakes.common import fixture

# RecordType -> the fixture it starts from
FIXTURES = {
    "Delivery": "webhook_delivery.json",
    "Bounce": "webhook_bounce.json",
    "SpamComplaint": "webhook_spam_complaint.json",
    "Open": "webhook_open.json",
    "Click": "webhook_click.json",
    "SubscriptionChange": "webhook_subscription_change.json",
}
RECORD_TYPES = tuple(FIXTURES)
# a Postmark payload for each neutral event: (RecordType, payload() keywords)
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "delivered": ("Delivery", {}),
    "bounced": ("Bounce", {"bounce_type": "HardBounce"}),
    "deferred": ("Bounce", {"bounce_type": "SoftBounce"}),
    "blocked": ("Bounce", {"bounce_type": "Blocked"}),
    "dropped": ("Bounce", {"bounce_type": "SMTPApiError"}),
    "complained": ("SpamComplaint", {}),
    "opened": ("Open", {}),
    "clicked": ("Click", {}),
    "unsubscribed": ("SubscriptionChange", {}),
}


class PostmarkSender:
    """Holds the user name and password of one webhook URL and posts as Postmark does."""

    def __init__(self) -> None:
        self.username = "postmark"
        self.password = secrets.token_urlsafe(24)

    def sign(
        self,
        body: bytes,
        *,
        timestamp: float | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body as Postmark posts them (``timestamp`` is unused: Postmark sends none)."""
        credentials = f"{username or self.username}:{password or self.password}".encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Postmark",
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        }
        return headers, body

    def config(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password}


def payload(
    event: str,
    *,
    tags: Sequence[str] = (),
    stream: str = "outbound",
    bounce_type: str = "HardBounce",
    suppress: bool = True,
    suppression_reason: str = "ManualSuppression",
) -> dict[str, Any]:
    """A real-shaped Postmark event of RecordType ``event``; ``tags`` holds at most one Tag."""
    if len(tags) > 1:
        raise ValueError("a Postmark message carries one Tag")
    body: dict[str, Any] = copy.deepcopy(fixture("postmark", FIXTURES[event]))
    body["MessageID"] = str(uuid.uuid4())
    body["Tag"] = tags[0] if tags else ""
    body["MessageStream"] = stream
    if event == "Bounce":
        body["Type"] = bounce_type
    if event == "SubscriptionChange":
        body["SuppressSending"] = suppress
        body["SuppressionReason"] = suppression_reason if suppress else None
    return body


def example(neutral: str, *, tags: Sequence[str] = (), stream: str = "outbound") -> dict[str, Any]:
    """A Postmark payload that the exporter counts as the neutral event ``neutral``."""
    record, kw = EXAMPLES[neutral]
    return payload(record, tags=tags, stream=stream, **kw)


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()
