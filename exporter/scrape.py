"""The scrape engine: every target collected concurrently under its own deadline.

* One :class:`TargetRunner` per configured target owns that target's collector
  (and so its connection pool) for the life of the config.
* Concurrent scrapes share one in-flight collection per target: fifty
  simultaneous scrapes cause one round of backend commands, not fifty.
* A collector may declare a minimum refresh interval; until it has passed the
  last result is served again, with its age exposed.
* A target past its deadline is reported failed; the scrape still answers in
  time, and one failing target never blanks the others.
* A collection keeps the deadline it was started with, whoever joins it. Still
  running then, it is counted failed, cancelled and detached, so the next scrape
  starts afresh; what it returns later is logged with how late, never served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.core import Metric

from exporter.collectors import SOURCES
from exporter.collectors.base import COLLECT_DEADLINE, CollectError, Collector, Context
from exporter.config import DEFAULT_SERIES_LIMIT, Config, TargetConfig
from exporter.exposition import truncate_series
from exporter.redact import Redactor
from exporter.selfmetrics import TargetOutcome, collector_families, process_families

log = logging.getLogger("exporter.scrape")

# Prometheus sends its scrape timeout; we stop this much earlier so the
# response (formatting, gzip, network) still arrives before Prometheus gives up.
DEFAULT_TIMEOUT_OFFSET = 0.5

# A collection still running this long after its deadline is cancelled and detached:
# asyncio's timeout has already cancelled it, but a client may delay the cancellation
# (asyncpg waits, shielded, for its cancel request to a stopped server, up to its
# command_timeout). The grace lets a collection that honours the cancellation end
# with its own error first.
EXPIRY_GRACE = 0.05

# Collections of one target still running after their deadline and cancellation.
# At the cap no new collection starts (each would pile onto the same stuck client):
# the scrape reports the target failed until one of them ends.
MAX_OVERDUE = 2


@dataclass(frozen=True)
class Result:
    families: list[Metric]
    success: bool
    duration: float  # seconds the collection took
    finished_at: float  # wall-clock time.time() when it ended
    error: str | None = None
    data_from: float | None = None  # when the served data was collected, if earlier than finished_at
    series: int = 0  # series kept, after the target's series limit
    series_dropped: int = 0  # series the limit cut


@dataclass(eq=False)
class _Collection:
    """One run of a target's collector, with the deadline it was started with."""

    task: asyncio.Task[Result]
    timeout: float
    deadline: float  # loop time
    # resolved when the task ends or when its deadline passes, whichever is first
    outcome: asyncio.Future[Result]
    watchdog: asyncio.TimerHandle | None = None
    expired: bool = False


class TargetRunner:
    """One configured target: its collector, its in-flight collection and its cache."""

    # series kept from one collection (0: all); set by Engine._build on every (re)load
    series_limit = DEFAULT_SERIES_LIMIT

    def __init__(self, kind: str, config: TargetConfig, collector: Collector[Any], redactor: Redactor) -> None:
        self.kind = kind
        self.config = config
        self.name = config.target_name()
        self.collector = collector
        self._redactor = redactor
        self._inflight: _Collection | None = None
        # collections past their deadline that have not ended yet (see MAX_OVERDUE)
        self._overdue: set[_Collection] = set()
        self._last: Result | None = None
        self._last_served = False  # _last keeps its families: the min_interval cache may serve them
        self._last_started = -1e18  # monotonic
        self.last_success_at: float | None = None
        self.failures_total = 0

    def timeout(self, global_timeout: float, header_bound: float | None) -> float:
        timeout = self.config.scrape_timeout or global_timeout
        if header_bound is not None:
            timeout = min(timeout, header_bound)
        return max(timeout, 0.05)

    @property
    def last_result(self) -> Result | None:
        """The outcome of the target's last collection (None before the first ended)."""
        return self._last

    async def scrape(self, timeout: float, *, fresh: bool = False) -> Result:
        """The target's result within ``timeout`` seconds, sharing in-flight work.

        ``fresh`` starts a collection of its own (for a debug probe) instead of
        joining the in-flight one or serving the min_interval cache.
        """
        interval = self.collector.min_interval
        if (
            not fresh
            and self._inflight is None
            and self._last is not None
            and self._last_served
            and interval > 0
            and time.monotonic() - self._last_started < interval
        ):
            return self._last
        coll = None if fresh else self._inflight
        if coll is None:
            if len(self._overdue) >= MAX_OVERDUE:
                return self._refuse()
            coll = self._start(timeout, shared=self._inflight is None)
        loop = asyncio.get_running_loop()
        # the collection's own deadline (plus the grace) ends the wait with its counted
        # outcome; a scrape with a shorter deadline than the one it joined stops sooner
        now = loop.time()
        end = coll.deadline + EXPIRY_GRACE if now + timeout >= coll.deadline else now + timeout
        try:
            return await asyncio.wait_for(asyncio.shield(coll.outcome), max(end - now, 0.0))
        except TimeoutError:
            return Result(
                self.collector.down(),
                success=False,
                duration=timeout,
                finished_at=time.time(),
                error=f"no result within the {timeout:.3g}s deadline",
            )

    def _start(self, timeout: float, *, shared: bool) -> _Collection:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(self._run(timeout), name=f"collect {self.kind}/{self.name}")
        coll = _Collection(task, timeout, loop.time() + timeout, loop.create_future())
        coll.watchdog = loop.call_at(coll.deadline + EXPIRY_GRACE, self._expire, coll)
        task.add_done_callback(lambda _: self._finished(coll))
        if shared:
            self._inflight = coll
            self._last_started = time.monotonic()
        log.debug("collection started", extra={"kv": {**self._kv(), "deadline_seconds": f"{timeout:.3g}"}})
        return coll

    def _expire(self, coll: _Collection) -> None:
        """The deadline passed with the task still running: fail it now, cancel it, detach it."""
        if coll.task.done():
            return
        coll.expired = True
        if self._inflight is coll:
            self._inflight = None  # the next scrape starts afresh instead of joining it
        self._overdue.add(coll)
        coll.task.cancel()
        result = Result(
            self.collector.down(),
            success=False,
            duration=coll.timeout,
            finished_at=time.time(),
            error=f"no result within the {coll.timeout:.3g}s deadline; the collection was cancelled",
        )
        self._account(result)
        if not coll.outcome.done():
            coll.outcome.set_result(result)

    def _finished(self, coll: _Collection) -> None:
        if coll.watchdog is not None:
            coll.watchdog.cancel()
        if self._inflight is coll:
            self._inflight = None
        task = coll.task
        late = asyncio.get_running_loop().time() - coll.deadline
        if coll.expired:
            # already counted and served as failed at its deadline: only say how late it was
            self._overdue.discard(coll)
            ended = "cancelled" if task.cancelled() else "failed" if task.exception() else "returned"
            log.warning(
                "collection ended after its deadline; its result was discarded",
                extra={
                    "kv": {
                        **self._kv(),
                        "deadline_seconds": f"{coll.timeout:.3g}",
                        "late_seconds": f"{late:.3f}",
                        "ended": ended,
                    }
                },
            )
            return
        if task.cancelled() or task.exception() is not None:
            # cancelled by close(), or a BaseException: nothing to serve or count
            result = Result(
                self.collector.down(),
                success=False,
                duration=0.0,
                finished_at=time.time(),
                error="collection cancelled",
            )
        else:
            result = task.result()
            if result.success and late > 0:
                # a collector that ignored the cancellation but still answered: too late to serve
                result = Result(
                    self.collector.down(),
                    success=False,
                    duration=result.duration,
                    finished_at=result.finished_at,
                    error=f"result arrived {late:.3f}s after the {coll.timeout:.3g}s deadline",
                )
            self._account(result)
        if not coll.outcome.done():
            coll.outcome.set_result(result)

    def _refuse(self) -> Result:
        result = Result(
            self.collector.down(),
            success=False,
            duration=0.0,
            finished_at=time.time(),
            error=(
                f"{len(self._overdue)} earlier collections are still running after their deadline"
                " and cancellation; no new one was started"
            ),
        )
        self._account(result)
        return result

    def _account(self, result: Result) -> None:
        """Count one collection's outcome: the target's state, its failures and the log."""
        # The families are kept only where the min_interval cache can serve them again;
        # otherwise the landing page needs only the outcome, and a hundred targets' last
        # families held between scrapes cost about 4 MiB.
        self._last_served = self.collector.min_interval > 0
        self._last = result if self._last_served else replace(result, families=[])
        if result.success:
            self.last_success_at = result.finished_at
        else:
            self.failures_total += 1
            log.warning("collection failed", extra={"kv": {**self._kv(), "err": result.error}})
        log.debug(
            "collection finished",
            extra={"kv": {**self._kv(), "duration_seconds": f"{result.duration:.3f}", "success": result.success}},
        )

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
        # a runaway source (an API body, a custom query) must not blow up the scrape
        families, series, dropped = truncate_series(families, self.series_limit)
        duration = time.perf_counter() - start
        now = time.time()
        if error is not None:
            # counted and logged by _account when the task ends (unless past its deadline)
            error = self._redactor.redact(error)
        return Result(
            families,
            success=error is None,
            duration=duration,
            finished_at=now,
            error=error,
            data_from=data_from,
            series=series,
            series_dropped=dropped,
        )

    def _kv(self) -> dict[str, str]:
        return {"collector": self.kind, "target": self.name}

    async def close(self) -> None:
        coll = self._inflight
        if coll is not None:
            # let a collection in progress finish (its deadline bounds it), then stop the rest
            await asyncio.wait([coll.task], timeout=min(coll.timeout + EXPIRY_GRACE, 5))
        tasks = [c.task for c in (coll, *self._overdue) if c is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1)
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
        for runner in runners.values():
            limit = runner.config.series_limit
            runner.series_limit = config.global_.series_limit_per_target if limit is None else limit
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
                series=res.series,
                series_dropped=res.series_dropped,
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
