"""Resend's webhooks as Resend posts them: Svix headers over a real-shaped event.

The signer follows Svix's documented scheme (docs.svix.com/receiving/verifying-payloads/how-manual),
written here from the docs, not from the exporter: base64 HMAC-SHA256 of
``{svix-id}.{svix-timestamp}.{body}`` keyed with the base64 secret after ``whsec_``.
Payloads start from tests/fakes/api-fixtures/resend/webhook_*.json.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

from tests.fakes.common import fixture

# the fixture each Resend event type starts from (the others share webhook_email_sent.json's shape)
FIXTURES = {
    "email.bounced": "webhook_email_bounced.json",
    "email.clicked": "webhook_email_clicked.json",
    "email.failed": "webhook_email_failed.json",
    "email.suppressed": "webhook_email_suppressed.json",
}
EMAIL_TYPES = (
    "email.sent",
    "email.scheduled",
    "email.delivered",
    "email.delivery_delayed",
    "email.bounced",
    "email.complained",
    "email.opened",
    "email.clicked",
    "email.failed",
    "email.suppressed",
)


class ResendSender:
    """Holds one endpoint's signing secret and signs bodies as Resend's Svix does."""

    def __init__(self) -> None:
        self.key = os.urandom(24)
        self.secret = "whsec_" + base64.b64encode(self.key).decode()

    def signature(self, msg_id: str, timestamp: str, body: bytes) -> str:
        signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
        return "v1," + base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()

    def sign(
        self,
        body: bytes,
        *,
        timestamp: float | None = None,
        msg_id: str | None = None,
        also: ResendSender | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body as Resend posts them; ``also`` adds a second signature (a rotation)."""
        stamp = str(int(time.time() if timestamp is None else timestamp))
        msg_id = msg_id or "msg_" + secrets.token_urlsafe(20)
        signature = self.signature(msg_id, stamp, body)
        if also is not None:
            signature = f"{also.signature(msg_id, stamp, body)} {signature}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Svix-Webhooks/1.0",
            "svix-id": msg_id,
            "svix-timestamp": stamp,
            "svix-signature": signature,
        }
        return headers, body

    def config(self) -> dict[str, Any]:
        return {"signing_secret": self.secret}


def payload(
    event: str,
    *,
    tags: Mapping[str, str] | None = None,
    tags_as: str = "object",
    bounce_type: str = "Permanent",
) -> dict[str, Any]:
    """A real-shaped Resend event of type ``event`` (``email.delivered`` ...) carrying ``tags``."""
    body: dict[str, Any] = copy.deepcopy(fixture("resend", FIXTURES.get(event, "webhook_email_sent.json")))
    body["type"] = event
    body["data"]["email_id"] = secrets.token_hex(16)
    if tags is None:
        body["data"].pop("tags", None)
    elif tags_as == "array":
        body["data"]["tags"] = [{"name": name, "value": value} for name, value in tags.items()]
    else:
        body["data"]["tags"] = dict(tags)
    if event == "email.bounced":
        body["data"]["bounce"]["type"] = bounce_type
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()
