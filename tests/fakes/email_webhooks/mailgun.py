"""Mailgun's webhooks as Mailgun posts them: the signature inside the JSON body.

Written from Mailgun's docs (documentation.mailgun.com/docs/mailgun/user-manual/webhooks/
securing-webhooks), not from the exporter: a 50-character random token, the Unix time, and
hex HMAC-SHA256 of timestamp + token keyed with the webhook signing key.  Event data starts
from tests/fakes/api-fixtures/mailgun/webhook_*.json (Mailgun's "send test webhook" samples).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from tests.fakes.common import fixture

FIXTURES = {
    "accepted": "webhook_delivered.json",
    "rejected": "webhook_delivered.json",
    "delivered": "webhook_delivered.json",
    "failed": "webhook_failed_permanent.json",
    "complained": "webhook_complained.json",
    "opened": "webhook_opened.json",
    "clicked": "webhook_clicked.json",
    "unsubscribed": "webhook_unsubscribed.json",
}
EVENT_TYPES = tuple(FIXTURES)
# a Mailgun event-data for each neutral event: (event, payload() keywords)
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "requested": ("accepted", {}),
    "delivered": ("delivered", {}),
    "bounced": ("failed", {"severity": "permanent", "reason": "bounce"}),
    "dropped": ("failed", {"severity": "permanent", "reason": "suppress-bounce"}),
    "deferred": ("failed", {"severity": "temporary", "reason": "generic"}),
    "blocked": ("failed", {"severity": "temporary", "reason": "espblock"}),
    "complained": ("complained", {}),
    "opened": ("opened", {}),
    "clicked": ("clicked", {}),
    "unsubscribed": ("unsubscribed", {}),
}


class MailgunSender:
    """Holds one domain's webhook signing key and signs events as Mailgun does."""

    def __init__(self) -> None:
        self.signing_key = "key-" + secrets.token_hex(16)

    def signature(self, timestamp: str, token: str, *, key: str | None = None) -> str:
        text = (timestamp + token).encode()
        return hmac.new((key or self.signing_key).encode(), text, hashlib.sha256).hexdigest()

    def sign(
        self,
        event_data: dict[str, Any],
        *,
        timestamp: float | None = None,
        token: str | None = None,
        parent_key: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body as Mailgun posts ``event_data``; ``parent_key`` signs as a subaccount's
        parent too (``parent-signature``)."""
        stamp = str(int(time.time() if timestamp is None else timestamp))
        token = token or secrets.token_hex(25)
        signature = {"token": token, "timestamp": stamp, "signature": self.signature(stamp, token)}
        if parent_key is not None:
            signature["parent-signature"] = self.signature(stamp, token, key=parent_key)
        body = json.dumps({"signature": signature, "event-data": event_data}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "mailgun/treq-16.12.0"}
        return headers, body

    def config(self) -> dict[str, Any]:
        return {"signing_key": self.signing_key}


def payload(
    event: str,
    *,
    tags: Sequence[str] | None = None,
    severity: str | None = None,
    reason: str | None = None,
    timestamp: float | None = None,
) -> dict[str, Any]:
    """A real-shaped Mailgun ``event-data`` of ``event`` (``failed``: with severity and reason)."""
    data: dict[str, Any] = copy.deepcopy(fixture("mailgun", FIXTURES[event])["event-data"])
    data["event"] = event
    data["id"] = secrets.token_urlsafe(16)
    data["timestamp"] = time.time() if timestamp is None else timestamp
    if tags is None:
        data.pop("tags", None)
    else:
        data["tags"] = list(tags)
    if event == "failed":
        data["severity"] = severity or "permanent"
        data["reason"] = reason or "bounce"
        data["log-level"] = "error" if data["severity"] == "permanent" else "warn"
    return data


def example(neutral: str, *, tags: Sequence[str] | None = None) -> dict[str, Any]:
    """A Mailgun ``event-data`` that the exporter counts as the neutral event ``neutral``."""
    event, kw = EXAMPLES[neutral]
    return payload(event, tags=tags, **kw)
