"""The RUM counts: bounded histograms and counters, rendered fresh as families on each scrape.

Exposition (page labels are route patterns, ``other`` for the rest)::

    # HELP rum_lcp_seconds Largest Contentful Paint reported by real users' browsers ...
    # TYPE rum_lcp_seconds histogram
    rum_lcp_seconds_bucket{page="/product/:id",device="mobile",navigation_type="navigate",le="2.5"} 3.0
    ...
    rum_lcp_seconds_bucket{page="/product/:id",device="mobile",navigation_type="navigate",le="+Inf"} 4.0
    rum_lcp_seconds_sum{page="/product/:id",device="mobile",navigation_type="navigate"} 9.1
    rum_lcp_seconds_count{page="/product/:id",device="mobile",navigation_type="navigate"} 4.0
    rum_page_views_total{page="/product/:id",device="mobile"} 4.0
    rum_js_errors_total{page="/product/:id",kind="error"} 1.0
    rum_api_failures_total{page="/product/:id",status_class="5xx"} 1.0
    rum_beacons_accepted_total 4.0
    rum_beacons_rejected_total{reason="origin"} 0.0
    rum_clients_limited 2.0

A series appears on its first observation (a page never visited has none).  Every key is
built from bounded sets: the page from ``Routes.match`` (the patterns and ``other``), the
device from ``DEVICES``, the navigation type from ``NAVIGATION_TYPES`` and ``other``; the
store refuses any other device or navigation type, so hostile beacons cannot add series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporter.rum.beacon import API_CLASSES, ERROR_KINDS, METRICS, REJECT_REASONS, Beacon, navigation_labels
from exporter.rum.device import DEVICES

__all__ = ["BUCKETS", "HELP", "RumStore"]

# Upper bounds (le) per beacon metric, in seconds (CLS unitless).  The "good" and "poor"
# thresholds of web.dev's Core Web Vitals are bounds themselves (LCP 2.5/4, INP 0.2/0.5,
# CLS 0.1/0.25, FCP 1.8/3, TTFB 0.8/1.8), so the share of good views is exact.
BUCKETS: Mapping[str, tuple[float, ...]] = {
    "LCP": (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20),
    "INP": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2, 5),
    "CLS": (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1),
    "FCP": (0.5, 1, 1.4, 1.8, 2.4, 3, 4, 6, 10),
    "TTFB": (0.1, 0.2, 0.4, 0.6, 0.8, 1.2, 1.8, 3, 6),
    "load": (0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60),
}

HELP: Mapping[str, str] = {
    "LCP": "Largest Contentful Paint reported by real users' browsers (web-vitals), by route pattern.",
    "INP": "Interaction to Next Paint reported by real users' browsers (web-vitals), by route pattern.",
    "CLS": "Cumulative Layout Shift (unitless) reported by real users' browsers (web-vitals), by route pattern.",
    "FCP": "First Contentful Paint reported by real users' browsers (web-vitals), by route pattern.",
    "TTFB": "Time to First Byte reported by real users' browsers (web-vitals), by route pattern.",
    "load": "Page load time (navigation start to the end of the load event) in real users' browsers.",
}

_HISTOGRAM_LABELS = ["page", "device", "navigation_type"]
_NAVIGATION = frozenset(navigation_labels())

Key = tuple[str, str, str]  # page, device, navigation_type


class _Histogram:
    """Non-cumulative counts per bucket (the last is +Inf), the sum and the count."""

    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * (size + 1)
        self.sum = 0.0

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = "less or equal")
        self.counts[bisect.bisect_left(bounds, value)] += 1
        self.sum += value


class RumStore:
    """Everything the RUM listener counted since start; kept across config reloads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # beacons arrive on the loop, a scrape may render elsewhere
        self._histograms: dict[str, dict[Key, _Histogram]] = {name: {} for name in METRICS}
        self._views: dict[tuple[str, str], int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._api: dict[tuple[str, str], int] = {}
        self._accepted = 0
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)

    def record(self, beacon: Beacon, page: str, device: str) -> None:
        """Count an accepted beacon; ``page`` is its route pattern (or ``other``)."""
        if device not in DEVICES:
            raise ValueError(f"unknown device class {device!r}")
        for m in beacon.measurements:
            if m.navigation_type not in _NAVIGATION or m.name not in METRICS:
                raise ValueError("measurement outside the bounded label sets")
        with self._lock:
            for m in beacon.measurements:
                series = self._histograms[m.name]
                key = (page, device, m.navigation_type)
                histogram = series.get(key)
                if histogram is None:
                    histogram = series[key] = _Histogram(len(BUCKETS[m.name]))
                histogram.observe(BUCKETS[m.name], m.value)
            if beacon.view:
                self._views[(page, device)] = self._views.get((page, device), 0) + 1
            _add(self._errors, page, beacon.errors, ERROR_KINDS)
            _add(self._api, page, beacon.api, API_CLASSES)
            self._accepted += 1

    def reject(self, reason: str) -> None:
        if reason not in self._rejected:
            raise ValueError(f"unknown rejection reason {reason!r}")
        with self._lock:
            self._rejected[reason] += 1

    def keep_pages(self, pages: Iterable[str]) -> None:
        """Drop the series of pages not in ``pages``: after a reload removed a route."""
        keep = set(pages)
        with self._lock:
            for series in self._histograms.values():
                for key in [k for k in series if k[0] not in keep]:
                    del series[key]
            for table in (self._views, self._errors, self._api):
                for pair in [k for k in table if k[0] not in keep]:
                    del table[pair]

    def series_count(self) -> int:
        """Label sets held (a histogram's label set counts once)."""
        with self._lock:
            held = sum(len(series) for series in self._histograms.values())
            return held + len(self._views) + len(self._errors) + len(self._api)

    def families(self, limiter_clients: int = 0) -> list[Metric]:
        """The ``rum_*`` families, built fresh; ``limiter_clients`` is the limiter's table size."""
        families: list[Metric] = []
        with self._lock:
            for name, spec in METRICS.items():
                bounds = BUCKETS[name]
                family = HistogramMetricFamily(spec.family, HELP[name], labels=_HISTOGRAM_LABELS)
                for key, histogram in sorted(self._histograms[name].items()):
                    cumulative, buckets = 0, []
                    for bound, count in zip((*bounds, float("inf")), histogram.counts, strict=True):
                        cumulative += count
                        buckets.append((_le(bound), float(cumulative)))
                    family.add_metric(list(key), buckets, histogram.sum)
                families.append(family)
            views = CounterMetricFamily(
                "rum_page_views",
                "Page views reported by real users' browsers (beacons marked as a view's first), by route pattern.",
                labels=["page", "device"],
            )
            for (page, device), count in sorted(self._views.items()):
                views.add_metric([page, device], float(count))
            errors = CounterMetricFamily(
                "rum_js_errors",
                "Uncaught JavaScript errors (error) and unhandled promise rejections (unhandledrejection)"
                " in real users' browsers, by route pattern.",
                labels=["page", "kind"],
            )
            for (page, kind), count in sorted(self._errors.items()):
                errors.add_metric([page, kind], float(count))
            api = CounterMetricFamily(
                "rum_api_failures",
                "fetch() calls from real users' pages that failed: HTTP 4xx, 5xx, or network (no response).",
                labels=["page", "status_class"],
            )
            for (page, status_class), count in sorted(self._api.items()):
                api.add_metric([page, status_class], float(count))
            accepted = CounterMetricFamily(
                "rum_beacons_accepted", "RUM beacons accepted and counted.", value=float(self._accepted)
            )
            rejected = CounterMetricFamily(
                "rum_beacons_rejected",
                "RUM beacons refused whole, by the first problem found (origin, rate_limited, too_large,"
                " malformed, invalid_value, unknown_metric).",
                labels=["reason"],
            )
            for reason in REJECT_REASONS:
                rejected.add_metric([reason], float(self._rejected[reason]))
        limited = GaugeMetricFamily(
            "rum_clients_limited",
            "Clients (addresses, IPv6 by /64) the RUM rate limiter currently remembers.",
            value=float(limiter_clients),
        )
        families.extend([views, errors, api, accepted, rejected, limited])
        return families


def _le(bound: float) -> str:
    """The ``le`` label as prometheus-client writes it: ``2.5``, ``1.0``, ``+Inf``."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _add(table: dict[tuple[str, str], int], page: str, counts: Mapping[str, int], allowed: tuple[str, ...]) -> None:
    for key, count in counts.items():
        if key in allowed:
            table[(page, key)] = table.get((page, key), 0) + count
