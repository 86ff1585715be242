"""Key groups: keys matching a pattern, counted with SCAN in the background.

Counting a pattern means walking the whole keyspace, which on a large database
takes longer than a scrape may: a background pass runs at most once per
``key_pattern_refresh_interval`` under a budget of SCAN calls and time, and
scrapes serve the last finished count with how complete and how old it is.
Each database gets its own one-connection client, so a pass never holds a
connection the scrape needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

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


class KeyGroups:
    """The counting passes of one target and their last results."""

    def __init__(self, config: RedisTarget, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self._clients: dict[int, aioredis.Redis] = {}
        self._results: dict[str, KeyGroupResult] = {}
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
        for kp in self.config.key_patterns:
            db = self.config.db() if kp.db is None else kp.db
            try:
                self._results[kp.name] = await self._scan(kp.pattern, db)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next pass retries; the old count stays with its timestamp
                self.log.warning(
                    "key group scan failed",
                    extra={"kv": {"target": self.config.name, "key_group": kp.name, "err": describe_error(exc)}},
                )

    async def _scan(self, pattern: str, db: int) -> KeyGroupResult:
        client = self._clients.get(db)
        if client is None:
            client = self._clients[db] = make_client(self.config, db, max_connections=1)
        start = time.perf_counter()
        deadline = start + self.config.key_pattern_max_duration
        cursor: int = 0
        keys = calls = 0
        complete = False
        while calls < self.config.key_pattern_max_scan_calls and time.perf_counter() < deadline:
            cursor, batch = await client.scan(cursor=cursor, match=pattern, count=SCAN_COUNT)
            calls += 1
            keys += len(batch)
            if cursor == 0:
                complete = True
                break
        return KeyGroupResult(keys, complete, calls, time.perf_counter() - start, time.time())

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
        return [keys, complete, calls, duration, finished]
