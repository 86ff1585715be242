"""Key groups: keys matching a pattern, counted with SCAN in the background.

Counting a pattern means walking the whole keyspace, which on a large database
takes longer than a scrape may: a background pass runs at most once per
``key_pattern_refresh_interval`` under one budget of SCAN calls
(``key_pattern_max_scan_calls``) and time (``key_pattern_max_duration``) for
all patterns together, and scrapes serve the last finished count with how
complete and how old it is.  The budget is shared: each pattern gets an equal
share of what is left when its turn comes, so however many patterns there are,
one pass costs the server at most that many SCAN calls.
Each database gets its own one-connection client, so a pass never holds a
connection the scrape needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.redis.client import describe_error, make_client
from exporter.collectors.redis.config import RedisTarget

SCAN_COUNT = 1000


@dataclass
class KeyGroupResult:
    keys: int
    complete: bool
    calls: int
    duration: float
    finished_at: float


@dataclass
class PassResult:
    """The last finished pass over all groups."""

    calls: int
    budget_exhausted: bool  # some group was left incomplete: out of SCAN calls or time


@dataclass
class _Scan:
    """One group's progress within a pass, kept when a SCAN call fails midway."""

    keys: int = 0
    calls: int = 0
    complete: bool = False
    start: float = field(default_factory=time.perf_counter)


class KeyGroups:
    """The counting passes of one target and their last results."""

    def __init__(self, config: RedisTarget, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self._clients: dict[int, aioredis.Redis] = {}
        self._results: dict[str, KeyGroupResult] = {}
        self._pass: PassResult | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = -1e18  # monotonic time the last pass began; the first scrape starts one

    def refresh(self) -> None:
        """Start a pass unless one is running or the last began less than the refresh interval ago."""
        if self._task is not None and not self._task.done():
            return
        if time.monotonic() - self._started < self.config.key_pattern_refresh_interval:
            return
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._scan_all(), name=f"redis key groups {self.config.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for client in self._clients.values():
            await client.aclose(close_connection_pool=True)

    async def _scan_all(self) -> None:
        """One pass: every pattern in turn, all under one budget of SCAN calls and time.

        Each pattern gets an equal share of what is left when its turn comes
        (calls left / patterns left, time left / patterns left), so a pattern
        that finishes early leaves the rest of its share to the ones after it,
        and a huge one cannot starve the others.  The config ensures at least
        one call per pattern.
        """
        patterns = self.config.key_patterns
        deadline = time.perf_counter() + self.config.key_pattern_max_duration
        calls_left = self.config.key_pattern_max_scan_calls
        exhausted = False
        for i, kp in enumerate(patterns):
            db = self.config.db() if kp.db is None else kp.db
            share = calls_left // (len(patterns) - i)
            now = time.perf_counter()
            share_deadline = now + max(0.0, deadline - now) / (len(patterns) - i)
            scan = _Scan()
            try:
                await self._scan(kp.pattern, db, scan, share, share_deadline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next pass retries; the old count stays with its timestamp
                self.log.warning(
                    "key group scan failed",
                    extra={"kv": {"target": self.config.name, "key_group": kp.name, "err": describe_error(exc)}},
                )
            else:
                exhausted = exhausted or not scan.complete
                if scan.calls:  # a group whose share ran out before one call keeps its last count and timestamp
                    self._results[kp.name] = KeyGroupResult(
                        scan.keys, scan.complete, scan.calls, time.perf_counter() - scan.start, time.time()
                    )
            calls_left -= scan.calls
        self._pass = PassResult(self.config.key_pattern_max_scan_calls - calls_left, exhausted)

    async def _scan(self, pattern: str, db: int, scan: _Scan, max_calls: int, deadline: float) -> None:
        """SCAN ``pattern`` until the cursor wraps, ``max_calls`` calls are made or ``deadline`` passes.

        A call still running at the deadline is abandoned (its connection is
        dropped and reopened by the next call): the pass never outlives its budget.
        """
        client = self._clients.get(db)
        if client is None:
            client = self._clients[db] = make_client(self.config, db, max_connections=1)
        cursor: int = 0
        while scan.calls < max_calls and (left := deadline - time.perf_counter()) > 0:
            try:
                async with asyncio.timeout(left):
                    cursor, batch = await client.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            except TimeoutError:
                return
            scan.calls += 1
            scan.keys += len(batch)
            if cursor == 0:
                scan.complete = True
                return

    def families(self) -> list[Metric]:
        """The last finished count of each group; a group whose first pass has not ended has no series yet."""
        labels = ["key_group", "db"]
        keys = GaugeMetricFamily(
            "redis_key_group_keys",
            "Keys matching the group's pattern, counted with SCAN in the background (a lower bound when incomplete).",
            labels=labels,
        )
        complete = GaugeMetricFamily(
            "redis_key_group_scan_complete",
            "1 if the last counting pass covered the whole keyspace within its budget.",
            labels=labels,
        )
        calls = GaugeMetricFamily(
            "redis_key_group_scan_calls", "SCAN calls the last counting pass made.", labels=labels
        )
        duration = GaugeMetricFamily(
            "redis_key_group_scan_duration_seconds", "Duration of the last counting pass.", labels=labels
        )
        finished = GaugeMetricFamily(
            "redis_key_group_scan_timestamp_seconds", "Unix time the last counting pass ended.", labels=labels
        )
        pass_calls = GaugeMetricFamily(
            "redis_key_group_pass_scan_calls",
            "SCAN calls the last counting pass made over all key groups (at most key_pattern_max_scan_calls).",
        )
        exhausted = GaugeMetricFamily(
            "redis_key_group_pass_budget_exhausted",
            "1 if the last counting pass ran out of its SCAN-call or time budget before every group was complete.",
        )
        if self._pass is not None:
            pass_calls.add_metric([], float(self._pass.calls))
            exhausted.add_metric([], 1.0 if self._pass.budget_exhausted else 0.0)
        for kp in self.config.key_patterns:
            result = self._results.get(kp.name)
            if result is None:
                continue
            lv = [kp.name, f"db{self.config.db() if kp.db is None else kp.db}"]
            keys.add_metric(lv, float(result.keys))
            complete.add_metric(lv, 1.0 if result.complete else 0.0)
            calls.add_metric(lv, float(result.calls))
            duration.add_metric(lv, result.duration)
            finished.add_metric(lv, result.finished_at)
        families: list[Metric] = [keys, complete, calls, duration, finished]
        if self._pass is not None:
            families += [pass_calls, exhausted]
        return families
