"""One beacon: parsed strictly, bounded, accepted or rejected whole.

A beacon is a small JSON object (see docs/rum.md)::

    {"v": 1, "page": "/product/42", "view": true,
     "metrics": [{"name": "LCP", "value": 2950.4, "navigation_type": "navigate"}],
     "errors": {"error": 1, "unhandledrejection": 0},
     "api": {"4xx": 0, "5xx": 1, "network": 0}}

``parse_beacon`` raises ``Rejected`` with the reason of the first problem it meets:
``malformed`` (not that shape), ``invalid_value`` (a number out of its bounds, NaN or
Infinity) or ``unknown_metric``.  The other three reasons (``origin``, ``rate_limited``,
``too_large``) are the HTTP side's.  Nothing of the body is kept but what ``Beacon`` holds;
a ``Rejected`` names the key, never the value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "API_CLASSES",
    "ERROR_KINDS",
    "MAX_COUNT",
    "MAX_METRICS",
    "MAX_PAGE_LENGTH",
    "METRICS",
    "NAVIGATION_OTHER",
    "NAVIGATION_TYPES",
    "REJECT_REASONS",
    "Beacon",
    "Measurement",
    "MetricSpec",
    "Rejected",
    "navigation_labels",
    "parse_beacon",
]

REJECT_REASONS = ("origin", "rate_limited", "too_large", "malformed", "invalid_value", "unknown_metric")

# PerformanceNavigationTiming.type and web-vitals' navigationType; anything else is "other"
NAVIGATION_TYPES = ("navigate", "reload", "back-forward", "back-forward-cache", "prerender", "restore")
NAVIGATION_OTHER = "other"

ERROR_KINDS = ("error", "unhandledrejection")
API_CLASSES = ("4xx", "5xx", "network")

MAX_PAGE_LENGTH = 2048
MAX_METRICS = 16
MAX_COUNT = 1000  # errors or failed API calls in one beacon


class MetricSpec(NamedTuple):
    family: str  # the histogram's name
    scale: float  # beacon value / scale = the stored value (1000: ms -> s; 1: CLS, unitless)
    max: float  # the largest value accepted, in the beacon's unit (ms, or CLS as is)


# The single table of metrics: beacon name (web-vitals' metric.name, and "load" for
# PerformanceNavigationTiming loadEventEnd - startTime) -> its histogram.  Ten minutes is
# far beyond any real page's timing (a larger one is a clock jump or a forged beacon).
METRICS: Mapping[str, MetricSpec] = {
    "LCP": MetricSpec("rum_lcp_seconds", 1000.0, 600_000.0),
    "INP": MetricSpec("rum_inp_seconds", 1000.0, 60_000.0),
    "CLS": MetricSpec("rum_cls", 1.0, 10.0),
    "FCP": MetricSpec("rum_fcp_seconds", 1000.0, 600_000.0),
    "TTFB": MetricSpec("rum_ttfb_seconds", 1000.0, 600_000.0),
    "load": MetricSpec("rum_page_load_seconds", 1000.0, 600_000.0),
}

_TOP_KEYS = frozenset({"v", "page", "view", "metrics", "errors", "api"})
_ENTRY_KEYS = frozenset({"name", "value", "navigation_type"})


def navigation_labels() -> tuple[str, ...]:
    """Every value of the ``navigation_type`` label."""
    return (*NAVIGATION_TYPES, NAVIGATION_OTHER)


class Rejected(Exception):
    """The beacon is refused; ``reason`` is one of ``REJECT_REASONS``.

    ``detail`` says where (``metrics[2].value: above 600000``) for a debug log or a 400
    body; it never quotes the beacon's content.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Measurement:
    name: str  # a key of METRICS
    value: float  # seconds (CLS as is)
    navigation_type: str  # one of NAVIGATION_TYPES or "other"


@dataclass(frozen=True)
class Beacon:
    path: str  # as sent: the caller maps it through Routes and drops it
    view: bool
    measurements: tuple[Measurement, ...] = ()
    # only the kinds / classes the beacon named, each 0..MAX_COUNT
    errors: Mapping[str, int] = field(default_factory=dict)
    api: Mapping[str, int] = field(default_factory=dict)


def _refuse_constant(name: str) -> Any:
    raise Rejected("invalid_value", f"{name} is not a number")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_beacon(body: bytes) -> Beacon:
    """The beacon in ``body`` (UTF-8 JSON); raises ``Rejected`` on the first problem."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (RecursionError, ValueError, UnicodeDecodeError):
        # not JSON, not UTF-8, nested too deep, or an integer past Python's digit limit
        raise Rejected("malformed", "not a JSON document") from None
    if not isinstance(data, dict):
        raise Rejected("malformed", "not a JSON object")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise Rejected("malformed", "unknown key")
    version = data.get("v")
    if type(version) is not int or version != 1:
        raise Rejected("malformed", "v: must be 1")
    page = data.get("page")
    if not isinstance(page, str) or not page.startswith("/") or len(page) > MAX_PAGE_LENGTH:
        raise Rejected("malformed", f"page: must be a path starting with / of at most {MAX_PAGE_LENGTH} characters")
    view = data.get("view", False)
    if not isinstance(view, bool):
        raise Rejected("malformed", "view: must be true or false")
    measurements = _measurements(data.get("metrics", []))
    errors = _counts(data.get("errors", {}), ERROR_KINDS, "errors")
    api = _counts(data.get("api", {}), API_CLASSES, "api")
    return Beacon(path=page, view=view, measurements=measurements, errors=errors, api=api)


def _measurements(entries: object) -> tuple[Measurement, ...]:
    if not isinstance(entries, list):
        raise Rejected("malformed", "metrics: must be a list")
    if len(entries) > MAX_METRICS:
        raise Rejected("malformed", f"metrics: at most {MAX_METRICS} entries")
    seen: set[str] = set()
    result: list[Measurement] = []
    for i, entry in enumerate(entries):
        where = f"metrics[{i}]"
        if not isinstance(entry, dict):
            raise Rejected("malformed", f"{where}: must be an object")
        if not set(entry) <= _ENTRY_KEYS:
            raise Rejected("malformed", f"{where}: unknown key")
        name = entry.get("name")
        if not isinstance(name, str):
            raise Rejected("malformed", f"{where}.name: must be a string")
        spec = METRICS.get(name)
        if spec is None:
            raise Rejected("unknown_metric", f"{where}.name: not one of {', '.join(METRICS)}")
        if name in seen:
            raise Rejected("malformed", f"{where}.name: {name} twice in one beacon")
        seen.add(name)
        value = entry.get("value")
        if not _is_number(value):
            raise Rejected("malformed", f"{where}.value: must be a number")
        assert isinstance(value, (int, float))  # for mypy: _is_number said so
        if isinstance(value, float) and not math.isfinite(value):
            raise Rejected("invalid_value", f"{where}.value: not a finite number")  # 1e999
        if not 0 <= value <= spec.max:
            raise Rejected("invalid_value", f"{where}.value: must be 0 to {spec.max:g}")
        navigation = entry.get("navigation_type", "navigate")
        if not isinstance(navigation, str):
            raise Rejected("malformed", f"{where}.navigation_type: must be a string")
        if navigation not in NAVIGATION_TYPES:
            navigation = NAVIGATION_OTHER
        result.append(Measurement(name, float(value) / spec.scale, navigation))
    return tuple(result)


def _counts(value: object, keys: tuple[str, ...], where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise Rejected("malformed", f"{where}: must be an object")
    counts: dict[str, int] = {}
    for key, count in value.items():
        if key not in keys:
            raise Rejected("malformed", f"{where}: keys are {', '.join(keys)}")
        if type(count) is not int:
            raise Rejected("malformed", f"{where}.{key}: must be an integer")
        if not 0 <= count <= MAX_COUNT:
            raise Rejected("invalid_value", f"{where}.{key}: must be 0 to {MAX_COUNT}")
        counts[key] = count
    return counts
