"""Engine behaviour that every source relies on, exercised with a real Redis behind it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.redis import RedisTarget
from exporter.config import parse_config
from exporter.redact import Redactor
from exporter.scrape import Engine, Result, TargetRunner
from tests.servers.redis import RedisServer


class PingCollector(Collector[RedisTarget]):
    """A minimal collector with a refresh interval, talking to a real server."""

    kind = "redis"
    config_class = RedisTarget
    up_metric = "ping_up"
    up_help = "Test."

    def __init__(self, config: RedisTarget, ctx: Context, interval: float, fail: bool = False) -> None:
        super().__init__(config, ctx)
        self.client = aioredis.Redis.from_url(config.url)
        self.interval = interval
        self.fail = fail
        self.calls = 0

    @property
    def min_interval(self) -> float:
        return self.interval

    async def collect(self) -> list[Metric]:
        self.calls += 1
        await self.client.ping()
        if self.fail:
            raise CollectError("answered, but refused us", partial=[GaugeMetricFamily("ping_up", "Test.", value=1)])
        return [GaugeMetricFamily("ping_calls", "Test.", value=self.calls)]

    async def close(self) -> None:
        await self.client.aclose()


def runner(server: RedisServer, interval: float, fail: bool = False) -> tuple[TargetRunner, PingCollector]:
    cfg = RedisTarget(name="t", url=server.url)
    collector = PingCollector(cfg, Context(), interval, fail)
    return TargetRunner("redis", cfg, collector, Redactor()), collector


def cache_age(run: TargetRunner, result: Result) -> float:
    """The stack_exporter_collector_cache_age_seconds the engine would expose for this result now."""
    engine = Engine(parse_config("{}"))
    families = [f for _, group in engine.groups([(run, result)], self_metrics=False) for f in group]
    (age,) = [s for f in families for s in f.samples if s.name == "stack_exporter_collector_cache_age_seconds"]
    assert age.labels == {"collector": "redis", "target": "t"}
    return float(age.value)


async def test_min_interval_serves_the_cached_result_with_its_age(redis_server: RedisServer) -> None:
    run, collector = runner(redis_server, interval=60)
    try:
        first = await run.scrape(5)
        fresh = cache_age(run, first)
        await asyncio.sleep(0.3)
        second = await run.scrape(5)
        aged = cache_age(run, second)
    finally:
        await run.close()
    assert collector.calls == 1
    assert second is first
    assert first.success
    assert 0 <= fresh < 0.2
    assert 0.3 <= aged < 5


async def test_zero_interval_collects_every_time(redis_server: RedisServer) -> None:
    run, collector = runner(redis_server, interval=0)
    try:
        await run.scrape(5)
        await run.scrape(5)
    finally:
        await run.close()
    assert collector.calls == 2


async def test_families_are_kept_between_scrapes_only_for_the_cache(redis_server: RedisServer) -> None:
    """Without a min_interval the last families are not held (a hundred targets' cost ~4 MiB);
    the outcome stays for the landing page, and a cache turned on later never serves nothing."""
    run, collector = runner(redis_server, interval=0)
    try:
        result = await run.scrape(5)
        assert [f.name for f in result.families] == ["ping_calls"]
        kept = run.last_result
        assert kept is not None and kept.success and kept.families == []
        assert kept.duration == result.duration and kept.finished_at == result.finished_at
        collector.interval = 60  # e.g. an API's rate limit stretched it
        again = await run.scrape(5)
        assert collector.calls == 2 and [f.name for f in again.families] == ["ping_calls"]
        assert await run.scrape(5) is again  # now the cache serves it, families and all
    finally:
        await run.close()


async def test_concurrent_scrapes_share_one_collection(redis_server: RedisServer) -> None:
    run, collector = runner(redis_server, interval=0)
    try:
        results = await asyncio.gather(*(run.scrape(5) for _ in range(20)))
    finally:
        await run.close()
    assert collector.calls == 1
    assert all(r is results[0] for r in results)


async def test_collect_error_keeps_partial_families_and_counts_a_failure(redis_server: RedisServer) -> None:
    run, _ = runner(redis_server, interval=0, fail=True)
    try:
        result = await run.scrape(5)
    finally:
        await run.close()
    assert not result.success
    assert result.error == "answered, but refused us"
    assert [f.name for f in result.families] == ["ping_up"]
    assert result.families[0].samples[0].value == 1
    assert run.failures_total == 1
    assert run.last_success_at is None


async def test_a_slow_collection_is_cut_at_the_deadline(redis_fresh: RedisServer) -> None:
    run, _ = runner(redis_fresh, interval=0)
    blocker = redis_fresh.client(socket_timeout=10)
    sleeper = asyncio.create_task(asyncio.to_thread(blocker.execute_command, "DEBUG", "SLEEP", "1.5"))
    await asyncio.sleep(0.2)
    try:
        start = time.monotonic()
        result = await run.scrape(0.5)
        elapsed = time.monotonic() - start
    finally:
        await sleeper
        await run.close()
    assert not result.success
    assert elapsed < 1.0
    assert [f.name for f in result.families] == ["ping_up"]
    assert result.families[0].samples[0].value == 0


class EchoingCollector(PingCollector):
    """Fails with a message that echoes its URL, as some drivers' errors do."""

    def __init__(self, config: RedisTarget, ctx: Context, extra: str) -> None:
        super().__init__(config, ctx, interval=0)
        self.extra = extra

    async def collect(self) -> list[Metric]:
        pong = await self.client.ping()
        raise CollectError(f"redis at {self.config.url} answered {pong!r}; exporter gave up. {self.extra}")


@pytest.mark.parametrize("password", ["x", "red"])
async def test_collection_errors_mask_a_short_password_only_where_it_is_one(tmp_path: Path, password: str) -> None:
    long_key = "a-long-api-key-0123456789"  # any secret of 8 or more is masked anywhere
    with RedisServer(tmp_path / "r", password=password) as server:
        url = server.url.replace("redis://", f"redis://:{password}@")
        # target u is never scraped: it only puts a long secret into the config
        second = f"  - name: u\n    url: {server.url}\n    password: {long_key}\n"
        config = parse_config(f"redis:\n  - name: t\n    url: {url}\n{second}")
        target = config.sources["redis"][0]
        assert isinstance(target, RedisTarget)
        extra = f"password={password} token: {long_key}; key was {long_key}."
        collector = EchoingCollector(target, Context(), extra)
        run = TargetRunner("redis", target, collector, Redactor(config.secrets()))
        try:
            result = await run.scrape(5)
        finally:
            await run.close()
    assert not result.success and result.error is not None
    expected = (
        f"redis at redis://:<redacted>@127.0.0.1:{server.port}/0 answered True; exporter gave up."
        " password=<redacted> token: <redacted>; key was <redacted>."
    )
    assert result.error == expected
