"""Alertmanager's webhook payload, version 4, read strictly.

The shape is the one Alertmanager documents for ``webhook_config``
(prometheus.io/docs/alerting/latest/configuration/#webhook_config)::

    {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing",
     "receiver": "...", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "...",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "...", "endsAt": "...", "generatorURL": "...",
                 "fingerprint": "..."}]}

Only what the bridge acts on is required: the version, ``alerts``, and per alert
``status``, ``labels`` and ``fingerprint`` (and ``startsAt``, which tells a late
copy of a firing notification from a new firing of the same alert).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SUPPORTED_VERSION = "4"


class PayloadError(ValueError):
    """The body is not a webhook v4 notification; the message says where."""


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    starts_at: str


@dataclass(frozen=True)
class Notification:
    group_key: str
    receiver: str
    alerts: tuple[Alert, ...]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def parse_notification(body: bytes) -> Notification:
    try:
        # decoded first: json.loads would guess UTF-16 or UTF-32 from the first bytes
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {_kind(data)}")
    version = data.get("version")
    if version != SUPPORTED_VERSION:
        raise PayloadError(
            f"version: expected {SUPPORTED_VERSION!r} (Alertmanager's webhook payload), got {repr(version)[:40]}"
        )
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts: missing" if alerts is None else f"alerts: expected a list, got {_kind(alerts)}")
    group_key = data.get("groupKey", "")
    receiver = data.get("receiver", "")
    if not isinstance(group_key, str) or not isinstance(receiver, str):
        raise PayloadError("groupKey and receiver must be strings")
    return Notification(group_key, receiver, tuple(_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts)))


def _alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, dict):
        raise PayloadError(f"{where}: expected an object, got {_kind(raw)}")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status: expected 'firing' or 'resolved', got {repr(status)[:40]}")
    labels = raw.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        problem = "missing" if labels is None else "expected an object of strings"
        raise PayloadError(f"{where}.labels: {problem}")
    fields: dict[str, str] = {}
    for key in ("fingerprint", "startsAt"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            problem = "missing" if value is None else f"expected a non-empty string, got {_kind(value)}"
            raise PayloadError(f"{where}.{key}: {problem}")
        fields[key] = value
    return Alert(fields["fingerprint"], status, dict(labels), fields["startsAt"])
