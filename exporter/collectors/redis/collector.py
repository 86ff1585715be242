"""The Redis collector: one round trip per scrape, then families from each reply.

A sample of the exposition (target label added by the engine)::

    redis_up{target="cache"} 1.0
    redis_instance_info{target="cache",role="master",redis_version="7.0.15",redis_mode="standalone",...} 1.0
    redis_memory_used_bytes{target="cache"} 1.08936e+06
    redis_db_keys{target="cache",db="db0"} 150000.0
    redis_commands_total{target="cache",cmd="get"} 42.0
    redis_connected_slave_lag_seconds{target="cache",slave_ip="127.0.0.1",slave_port="6380",slave_state="online"} 0.0
    redis_key_group_keys{target="cache",key_group="sessions",db="db0"} 100000.0

Round trips per scrape: one, a pipeline with INFO ALL and the mode's extra
commands, with a PING sent just before it on a second pooled connection (its
round trip is a metric).  The mode (standalone, cluster, sentinel) is learnt
from INFO; when it changes, or on the first scrape, one more round trip fetches
that mode's extras.  Extras that managed services block or rename (SLOWLOG,
LATENCY) fail soft: they are skipped for ten minutes and every other metric
still comes.  Nothing here needs CONFIG, which those services block too.
Key groups cost no round trip in the scrape: they are counted in the
background (keys.py) and served from the last finished pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import ResponseError

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.redis.client import describe_error, make_client, text
from exporter.collectors.redis.cluster import cluster_families
from exporter.collectors.redis.config import RedisTarget
from exporter.collectors.redis.info import info_families, parse_info_sections
from exporter.collectors.redis.keys import KeyGroups
from exporter.collectors.redis.latency import slowlog_families, spike_families
from exporter.collectors.redis.sentinel import sentinel_families
from exporter.redact import url_without_userinfo

SOFT_RETRY_SECONDS = 600.0  # how long a refused extra command (SLOWLOG, LATENCY...) is not retried


class RedisCollector(Collector[RedisTarget]):
    config_class = RedisTarget
    up_metric = "redis_up"
    up_help = "1 if the Redis server answered INFO, 0 if it could not be reached in time."

    def __init__(self, config: RedisTarget, ctx: Context) -> None:
        super().__init__(config, ctx)
        self._client = make_client(config, config.db())
        self._mode: str | None = None  # standalone, cluster or sentinel, learnt from INFO
        self._blocked: dict[str, float] = {}  # command -> monotonic time to retry
        self._key_groups = KeyGroups(config, self.log)

    def describe(self) -> str:
        return url_without_userinfo(self.config.url)

    async def close(self) -> None:
        await self._key_groups.close()
        await self._client.aclose(close_connection_pool=True)

    async def collect(self) -> list[Metric]:
        extras = self._extra_commands(self._mode)
        # PING goes out first on its own pooled connection and the pipeline right
        # behind it, so the round trip is measured without costing a sequential one
        ping_result, replies = await asyncio.gather(
            self._timed_ping(), self._pipeline(["INFO ALL", *extras]), return_exceptions=True
        )
        if isinstance(ping_result, BaseException):
            raise CollectError(f"PING failed: {describe_error(ping_result)}")
        if isinstance(replies, BaseException):
            raise CollectError(f"INFO failed: {describe_error(replies)}")
        ping = ping_result
        raw_info = replies[0]
        if isinstance(raw_info, BaseException):
            raise CollectError(f"INFO failed: {describe_error(raw_info)}")
        info, records = parse_info_sections(text(raw_info))
        mode = info.get("redis_mode", "standalone")
        if mode == "standalone" and info.get("cluster_enabled") == "1":
            mode = "cluster"
        if mode != self._mode:
            self._mode = mode
            extras = self._extra_commands(mode)
            replies = ["", *await self._pipeline(extras)] if extras else [""]
        extra = dict(zip(extras, replies[1:], strict=True))

        families: list[Metric] = [GaugeMetricFamily(self.up_metric or "", self.up_help, value=1)]
        families.append(
            GaugeMetricFamily(
                "redis_ping_duration_seconds",
                "Round trip of a PING sent alongside the scrape's other commands (includes reconnecting after a drop).",
                value=ping,
            )
        )
        families.extend(info_families(info, records, mode))
        if mode == "sentinel":
            families.extend(await sentinel_families(self._client, info))
        else:
            families.extend(_extra_families(extra))
        if self.config.key_patterns and mode != "sentinel":
            self._key_groups.refresh()
            families.extend(self._key_groups.families())
        return families

    async def _timed_ping(self) -> float:
        start = time.perf_counter()
        await self._client.ping()
        return time.perf_counter() - start

    def _extra_commands(self, mode: str | None) -> list[str]:
        if mode is None or mode == "sentinel":
            return []
        now = time.monotonic()
        wanted = ["SLOWLOG LEN", "SLOWLOG GET 1", "LATENCY LATEST"]
        if mode == "cluster":
            wanted.append("CLUSTER INFO")
        return [c for c in wanted if self._blocked.get(c.split()[0], 0) <= now]

    async def _pipeline(self, commands: Sequence[str]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command.split())
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ResponseError) and command != "INFO ALL":
                # managed services (ElastiCache, Memorystore...) block or rename
                # these; skip them for a while rather than add to errorstats
                self._blocked[command.split()[0]] = time.monotonic() + SOFT_RETRY_SECONDS
                self.log.info(
                    "command refused; skipping it for a while",
                    extra={"kv": {"target": self.config.name, "command": command, "err": str(reply)}},
                )
            elif isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                raise reply
        return replies


def _extra_families(extra: dict[str, Any]) -> list[Metric]:
    """Families from the mode's extra commands; a command skipped or refused leaves its families out."""
    fams = slowlog_families(extra.get("SLOWLOG LEN"), extra.get("SLOWLOG GET 1"))
    fams.extend(spike_families(extra.get("LATENCY LATEST")))
    cluster = extra.get("CLUSTER INFO")
    if isinstance(cluster, (str, bytes)):
        fams.extend(cluster_families(text(cluster)))
    return fams
