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
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.schema import TargetConfig

C = TypeVar("C", bound=TargetConfig)


# Loop time (asyncio's clock) at which the running collection's deadline fires.
# The engine sets it around collect() from the scrape timeout; tasks a collector
# spawns inherit it.  It is the only clock: collectors and the HTTP layer read it
# through time_left(), nothing below keeps a second one.
COLLECT_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("collect_deadline", default=None)

# Stop this long before the deadline, so a collector's own clear error wins over the engine's timeout.
DEADLINE_MARGIN = 0.05

# Budget of a collection run outside the engine (a collector called directly, in a test).
DEFAULT_BUDGET = 10.0


def time_left() -> float:
    """Seconds left before the current collection's deadline (may be negative once passed).

    Outside the engine and outside :func:`deadline_scope` there is no deadline:
    the answer is :data:`DEFAULT_BUDGET`.
    """
    deadline = COLLECT_DEADLINE.get()
    if deadline is None:
        return DEFAULT_BUDGET
    return deadline - asyncio.get_running_loop().time()


@contextlib.contextmanager
def deadline_scope(budget: float = DEFAULT_BUDGET) -> Iterator[None]:
    """Make sure a deadline is in force: the engine's when there is one, else ``budget`` from now.

    A collector that makes several requests, some from child tasks, wraps its
    collection in this so a direct call (no engine) still has one fixed deadline
    rather than a fresh budget per request.
    """
    if COLLECT_DEADLINE.get() is not None:
        yield
        return
    token = COLLECT_DEADLINE.set(asyncio.get_running_loop().time() + budget)
    try:
        yield
    finally:
        COLLECT_DEADLINE.reset(token)


class CollectError(Exception):
    """A collection failed with a message fit for logs (no secrets, no traceback)."""

    def __init__(self, message: str, partial: Sequence[Metric] = (), *, data_from: float | None = None) -> None:
        super().__init__(message)
        self.partial = list(partial)
        # wall-clock time the partial data was collected, when older than now (a
        # rate-limited API serving its last good result): the cache age shows it
        self.data_from = data_from


class Context:
    """Process-wide things collectors share: settings sections, the redactor, shared resources.

    The engine hands each collector the view :meth:`for_source` returns, which
    also says which source (registry key) the collector is serving; the views
    share every resource with the process-wide context.
    """

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        redact: Callable[[str], str] = lambda s: s,
        *,
        source: str = "",
    ) -> None:
        self.settings: Mapping[str, Any] = settings or {}
        self.redact = redact
        self.source = source
        self._shared: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []

    def for_source(self, source: str) -> Context:
        """The same context, as seen by a collector of ``source``."""
        view = Context(self.settings, self.redact, source=source)
        view._shared = self._shared
        view._closers = self._closers
        return view

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
    """Base class: subclasses set ``config_class`` and implement ``collect``.

    Which source a collector serves is the registry's to say, not the class's:
    it arrives as ``ctx.source`` and is kept as :attr:`source`.
    """

    config_class: ClassVar[type[TargetConfig]]
    up_metric: ClassVar[str | None] = None
    up_help: ClassVar[str] = ""

    def __init__(self, config: C, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx
        self.source = ctx.source
        self.log = logging.getLogger(f"exporter.collectors.{ctx.source}" if ctx.source else "exporter.collectors")

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
