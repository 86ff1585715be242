"""The scrape engine: every target collected concurrently under its own deadline.

* One :class:`TargetRunner` per configured target owns that target's collector
  (and so its connection pool) for the life of the config.
* Concurrent scrapes share one in-flight collection per target: fifty
  simultaneous scrapes cause one round of backend commands, not fifty.
* A collector may declare a minimum refresh interval; until it has passed the
  last result is served again, with its age exposed.
* A target past its deadline is reported failed; the scrape still answers in
  time, and one failing target never blanks the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from exporter.collectors import SOURCES
from exporter.collectors.base import COLLECT_DEADLINE, CollectError, Collector, Context
from exporter.config import Config, TargetConfig
from exporter.redact import Redactor
from exporter.selfmetrics import TargetOutcome, collector_families, process_families

log = logging.getLogger("exporter.scrape")

# Prometheus sends its scrape timeout; we stop this much earlier so the
# response (formatting, gzip, network) still arrives before Prometheus gives up.
DEFAULT_TIMEOUT_OFFSET = 0.5


@dataclass(frozen=True)
class Result:
    families: list[Metric]
    success: bool
    duration: float  # seconds the collection took
    finished_at: float  # wall-clock time.time() when it ended
    error: str | None = None
    data_from: float | None = None  # when the served data was collected, if earlier than finished_at


class TargetRunner:
    """One configured target: its collector, its in-flight collection and its cache."""

    def __init__(self, kind: str, config: TargetConfig, collector: Collector[Any], redactor: Redactor) -> None:
        self.kind = kind
        self.config = config
        self.name = config.target_name()
        self.collector = collector
        self._redactor = redactor
        self._inflight: asyncio.Task[Result] | None = None
        self._last: Result | None = None
        self._last_started = -1e18  # monotonic
        self.last_success_at: float | None = None
        self.failures_total = 0

    def timeout(self, global_timeout: float, header_bound: float | None) -> float:
        timeout = self.config.scrape_timeout or global_timeout
        if header_bound is not None:
            timeout = min(timeout, header_bound)
        return max(timeout, 0.05)

    async def scrape(self, timeout: float) -> Result:
        """The target's result within ``timeout`` seconds, sharing in-flight work."""
        interval = self.collector.min_interval
        if (
            self._inflight is None
            and self._last is not None
            and interval > 0
            and time.monotonic() - self._last_started < interval
        ):
            return self._last
        task = self._inflight
        if task is None:
            self._last_started = time.monotonic()
            task = asyncio.create_task(self._run(timeout), name=f"collect {self.kind}/{self.name}")
            self._inflight = task
            task.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            return Result(
                self.collector.down(),
                success=False,
                duration=timeout,
                finished_at=time.time(),
                error=f"no result within the {timeout:.3g}s deadline",
            )

    def _finished(self, task: asyncio.Task[Result]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled() and task.exception() is None:
            self._last = task.result()

    async def _run(self, timeout: float) -> Result:
        start = time.perf_counter()
        error: str | None = None
        data_from: float | None = None
        try:
            COLLECT_DEADLINE.set(asyncio.get_running_loop().time() + timeout)
            async with asyncio.timeout(timeout):
                families = await self.collector.collect()
        except CollectError as exc:
            families = exc.partial or self.collector.down()
            error = str(exc)
            data_from = exc.data_from
        except TimeoutError:
            families = self.collector.down()
            error = f"timed out after {timeout:.3g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a collector bug or an unexpected client error
            families = self.collector.down()
            error = f"{type(exc).__name__}: {exc}"
            log.debug("collector raised", exc_info=True, extra={"kv": self._kv()})
        duration = time.perf_counter() - start
        now = time.time()
        if error is None:
            self.last_success_at = now
        else:
            self.failures_total += 1
            error = self._redactor.redact(error)
            log.warning("collection failed", extra={"kv": {**self._kv(), "err": error}})
        return Result(
            families, success=error is None, duration=duration, finished_at=now, error=error, data_from=data_from
        )

    def _kv(self) -> dict[str, str]:
        return {"collector": self.kind, "target": self.name}

    async def close(self) -> None:
        task = self._inflight
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except (TimeoutError, Exception):  # noqa: BLE001 - closing anyway
                task.cancel()
        try:
            await self.collector.close()
        except Exception as exc:  # noqa: BLE001 - shutdown must go on
            log.warning("closing collector failed", extra={"kv": {**self._kv(), "err": str(exc)}})


class Engine:
    """Holds the runners for the current config and answers scrapes."""

    def __init__(
        self,
        config: Config,
        *,
        timeout_offset: float = DEFAULT_TIMEOUT_OFFSET,
        redactor: Redactor | None = None,
    ) -> None:
        self.timeout_offset = timeout_offset
        # shared with the log formatter, so both mask the same secrets after a reload
        self.redactor = redactor or Redactor()
        self.redactor.update(config.secrets())
        self.context = Context(config.settings, self.redactor.redact)
        self.config = config
        self.runners: dict[tuple[str, str], TargetRunner] = {}
        self.last_reload_successful = True
        self.last_reload_success_at = time.time()
        self._build(config, previous={})

    # ------------------------------------------------------------------ config

    def _build(self, config: Config, previous: dict[tuple[str, str], TargetRunner]) -> list[TargetRunner]:
        """Make runners for ``config``, reusing unchanged ones; return the retired."""
        runners: dict[tuple[str, str], TargetRunner] = {}
        for kind, target in config.targets():
            key = (kind, target.target_name())
            old = previous.get(key)
            if old is not None and old.config == target:
                runners[key] = old
                continue
            collector = SOURCES[kind].collector()(target, self.context.for_source(kind))
            runners[key] = TargetRunner(kind, target, collector, self.redactor)
        retired = [r for k, r in previous.items() if runners.get(k) is not r]
        self.runners = runners
        self.config = config
        return retired

    async def apply(self, config: Config) -> None:
        """Swap in a new, already validated config; unchanged targets keep their pools."""
        self.redactor.update(config.secrets())
        previous = self.runners
        if config.settings != self.config.settings:
            # collectors read shared settings at construction: rebuild them all
            old_context = self.context
            self.context = Context(config.settings, self.redactor.redact)
            previous = {}
            retired = list(self.runners.values())
            self._build(config, previous)
            await asyncio.gather(*(r.close() for r in retired))
            await old_context.close()
        else:
            retired = self._build(config, previous)
            await asyncio.gather(*(r.close() for r in retired))
        self.last_reload_successful = True
        self.last_reload_success_at = time.time()

    def reload_failed(self) -> None:
        self.last_reload_successful = False

    async def close(self) -> None:
        await asyncio.gather(*(r.close() for r in self.runners.values()))
        await self.context.close()

    # ------------------------------------------------------------------ scraping

    def header_bound(self, header: str | None) -> float | None:
        """Deadline allowed by Prometheus's X-Prometheus-Scrape-Timeout-Seconds."""
        if not header:
            return None
        try:
            seconds = float(header)
        except ValueError:
            return None
        if seconds <= 0:
            return None
        # keep at least half the budget when the offset is larger than the timeout
        return max(seconds - self.timeout_offset, seconds / 2)

    def find(self, name: str, kind: str | None = None) -> list[TargetRunner]:
        return [r for (k, n), r in self.runners.items() if n == name and (kind is None or k == kind)]

    async def scrape(
        self, header_bound: float | None, runners: Sequence[TargetRunner] | None = None
    ) -> list[tuple[TargetRunner, Result]]:
        chosen = list(self.runners.values()) if runners is None else list(runners)
        global_timeout = float(self.config.global_.scrape_timeout)
        results = await asyncio.gather(*(r.scrape(r.timeout(global_timeout, header_bound)) for r in chosen))
        return list(zip(chosen, results, strict=True))

    def groups(
        self, results: Sequence[tuple[TargetRunner, Result]], *, self_metrics: bool = True
    ) -> list[tuple[str | None, Sequence[Metric]]]:
        """(target, families) per target, then the self metrics (target None)."""
        out: list[tuple[str | None, Sequence[Metric]]] = [(r.name, res.families) for r, res in results]
        outcomes = [
            TargetOutcome(
                collector=r.kind,
                target=r.name,
                success=res.success,
                duration=res.duration,
                data_from=res.data_from or res.finished_at,
                last_success_at=r.last_success_at,
                failures_total=r.failures_total,
            )
            for r, res in results
        ]
        out.append((None, collector_families(outcomes)))
        if self_metrics:
            counts: dict[str, int] = {}
            for kind, _ in self.runners:
                counts[kind] = counts.get(kind, 0) + 1
            out.append((None, process_families(self.last_reload_successful, self.last_reload_success_at, counts)))
        return out
