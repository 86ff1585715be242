"""What every collector is: a small class per source with one async ``collect``.

A collector is built once per configured target and kept across scrapes so
that it can hold a connection pool; the metric families it returns are built
fresh on every call.  It does not add the ``target`` label: the scrape engine
does, so no collector can forget it.

Failure contract:

* return normally: the collection succeeded;
* raise :class:`CollectError`, optionally with ``partial`` families (``lago_up 1``
  when the API answered but rejected the key): the collection failed, the
  partial families are still exposed;
* raise anything else, or run past the deadline: the collection failed and the
  engine exposes ``<up_metric> 0`` from :meth:`Collector.down`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.config import TargetConfig

C = TypeVar("C", bound=TargetConfig)


# Loop time (asyncio's clock) at which the running collection's deadline fires.
# The engine sets it around collect(); tasks a collector spawns inherit it.
COLLECT_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("collect_deadline", default=None)


def collect_deadline() -> float | None:
    """The current collection's deadline in loop time, or None outside the engine."""
    return COLLECT_DEADLINE.get()


def time_left(default: float = 10.0) -> float:
    """Seconds left before the current collection's deadline (``default`` outside the engine)."""
    deadline = COLLECT_DEADLINE.get()
    if deadline is None:
        return default
    return deadline - asyncio.get_running_loop().time()


class CollectError(Exception):
    """A collection failed with a message fit for logs (no secrets, no traceback)."""

    def __init__(self, message: str, partial: Sequence[Metric] = (), *, data_from: float | None = None) -> None:
        super().__init__(message)
        self.partial = list(partial)
        # wall-clock time the partial data was collected, when older than now (a
        # rate-limited API serving its last good result): the cache age shows it
        self.data_from = data_from


class Context:
    """Process-wide things collectors share: settings sections and the redactor."""

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.settings: Mapping[str, Any] = settings or {}
        self.redact = redact
        self._shared: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []

    def shared(self, key: str, factory: Callable[[], Any], close: Callable[[Any], Any] | None = None) -> Any:
        """One instance per process of a shared resource (an HTTP session, a resolver)."""
        if key not in self._shared:
            value = factory()
            self._shared[key] = value
            if close is not None:
                self._closers.append(lambda: close(value))
        return self._shared[key]

    async def close(self) -> None:
        for closer in reversed(self._closers):
            result = closer()
            if hasattr(result, "__await__"):
                await result
        self._closers.clear()
        self._shared.clear()


class Collector(Generic[C]):
    """Base class: subclasses set ``kind``, ``config_class`` and implement ``collect``."""

    kind: ClassVar[str]
    config_class: ClassVar[type[TargetConfig]]
    up_metric: ClassVar[str | None] = None
    up_help: ClassVar[str] = ""

    def __init__(self, config: C, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx
        self.log = logging.getLogger(f"exporter.collectors.{self.kind}")

    @property
    def min_interval(self) -> float:
        """Seconds a result stays fresh; 0 collects on every scrape."""
        return 0.0

    def describe(self) -> str:
        """Where the target is, without credentials (landing page, logs)."""
        return ""

    async def collect(self) -> list[Metric]:
        raise NotImplementedError

    def down(self) -> list[Metric]:
        if self.up_metric is None:
            return []
        return [GaugeMetricFamily(self.up_metric, self.up_help, value=0)]

    async def close(self) -> None:
        """Release pools and background tasks; called on shutdown and reload."""
