"""What every provider's webhook shares: refusals, the verified delivery, the type mapping.

A provider module (``sendgrid``, ``mailgun``, ``postmark``, ``resend``, ``ses``) turns one
HTTP request into a ``Delivery`` or raises ``Refused``.  It never logs and never puts what
the request carried (addresses, subjects, message ids, tag values) into an exception text:
``Refused.detail`` is a fixed phrase from the module's own source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from exporter.collectors.email.common import EVENTS

__all__ = ["EVENTS", "OTHER", "PROVIDERS", "REASONS", "Delivery", "Event", "Refused", "TypeMap", "WebhookProvider"]

# the endpoint of each provider is /webhooks/v1/<name>; these are also the `provider` label
PROVIDERS = ("sendgrid", "mailgun", "postmark", "resend", "ses")
# why a request was refused: the `reason` label of email_webhook_refused_total
REASONS = (
    "bad_signature",  # missing or wrong signature or credentials, or a sender (SNS topic) not configured
    "stale",  # a signed timestamp outside the tolerance
    "too_large",  # over max_body_bytes
    "malformed",  # not the provider's JSON shape
    "unknown_provider",  # /webhooks/v1/<name> for a provider not configured
    "rate_limited",  # the client failed too often lately
    "unavailable",  # could not be checked now (SNS signing certificate unreachable): the provider retries
)
OTHER = "other"


class Refused(Exception):
    """The request is not counted.  ``detail`` is a fixed phrase: never text from the request."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a verified request.

    ``event`` is one of EVENTS, or None for an event outside the vocabulary (counted as
    ignored).  ``key`` is the provider's own id of this event, for replay protection, or
    None when the request's key covers it.  ``tags`` are the strings the provider carries
    for the app's own classification, in the order the type mapping tries them.
    """

    event: str | None
    tags: tuple[str, ...] = ()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified request: its events, and the id that makes a replayed request count once."""

    events: tuple[Event, ...]
    # the id of the whole request (svix-id, Mailgun's token, SNS MessageId, Postmark's body
    # hash); None when every event carries its own key (SendGrid's sg_event_id)
    key: str | None = None
    # SNS: a verified SubscriptionConfirmation's SubscribeURL (host already checked)
    confirm_url: str | None = None
    # SNS: UnsubscribeConfirmation (the topic no longer delivers here)
    unsubscribed: bool = False
    notes: tuple[str, ...] = field(default=())


class WebhookProvider(Protocol):
    """One provider's endpoint: built from its config section, called per request."""

    name: ClassVar[str]
    # the events of EVENTS its webhooks can report: the host shows these from the start
    reports: ClassVar[tuple[str, ...]]

    async def receive(self, headers: Mapping[str, str], body: bytes, now: float) -> Delivery:
        """Verify and parse one request (``now``: Unix time); raise Refused."""
        ...

    async def close(self) -> None:
        """Release what the provider holds (an HTTP session for certificates)."""
        ...


class TypeMap:
    """The configured ``email_types``: a tag string to its type, first match wins, else ``other``."""

    def __init__(self, email_types: Mapping[str, Iterable[str]]) -> None:
        self.types = tuple(email_types)
        self._by_tag: dict[str, str] = {}
        for name, tags in email_types.items():
            for tag in tags:
                self._by_tag.setdefault(tag, name)

    def labels(self) -> tuple[str, ...]:
        return (*self.types, OTHER)

    def classify(self, tags: Iterable[str]) -> str:
        for tag in tags:
            found = self._by_tag.get(tag)
            if found is not None:
                return found
        return OTHER
