"""What the operator sees when a target fails, and what the engine does with late results.

* Issue 15 item 11 (late results): a collection still running at its deadline is
  cancelled, detached and counted as a failure; whatever it returns afterwards is
  logged with how late it was and never served.
* Issue 15 item 12: the landing page shows each target's state, last error, last
  success and duration; ``/probe?debug=true`` answers a fresh collection's timings,
  result and log lines.

Against real servers on loopback: a stopped (SIGSTOP) PostgreSQL, redis-server, and a
garbage-speaking TCP server that echoes what it receives in its errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.base import Collector, Context
from exporter.collectors.redis import RedisTarget
from exporter.config import parse_config
from exporter.redact import Redactor
from exporter.scrape import MAX_OVERDUE, Engine, TargetRunner
from peers.process import free_port
from tests.helpers import exporter, scrape, value
from tests.servers.postgres import MONITOR_PASSWORD, PostgresServer
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(120)

SECRET = "hunter2-Op3rator-view-pw-5a1c"  # distinctive, so a leak is easy to grep


class StubbornCollector(Collector[RedisTarget]):
    """Runs DEBUG SLEEP on a real Redis and, like asyncpg releasing a connection to a
    stopped server, does not let a cancellation end it before the command returns."""

    config_class = RedisTarget
    up_metric = "stubborn_up"
    up_help = "Test."

    def __init__(self, config: RedisTarget, ctx: Context, sleep: float) -> None:
        super().__init__(config, ctx)
        self.client = aioredis.Redis.from_url(config.url)
        self.sleep = sleep
        self.calls = 0

    async def collect(self) -> list[Metric]:
        self.calls += 1
        if self.sleep:
            inner = asyncio.ensure_future(self.client.execute_command("DEBUG", "SLEEP", str(self.sleep)))
            while not inner.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(inner)
        else:
            await self.client.ping()
        return [GaugeMetricFamily("stubborn_up", "Test.", value=1)]

    async def close(self) -> None:
        await self.client.aclose()


def stubborn(server: RedisServer, sleep: float) -> tuple[TargetRunner, StubbornCollector]:
    cfg = RedisTarget(name="slow", url=server.url)
    collector = StubbornCollector(cfg, Context(source="redis"), sleep)
    return TargetRunner("redis", cfg, collector, Redactor()), collector


def late_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        r.kv  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "collection ended after its deadline; its result was discarded"
    ]


async def eventually(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll without blocking the loop (the engine's tasks must run meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def failed_records(caplog: pytest.LogCaptureFixture, target: str) -> list[dict[str, Any]]:
    return [
        r.kv  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "collection failed" and getattr(r, "kv", {}).get("target") == target
    ]


# --------------------------------------------------------------------------- late results (item 11)


async def test_stopped_postgres_collection_is_cancelled_and_counted_at_its_deadline(
    pg_fresh: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncpg's pool waited, shielded, for its cancel request to a stopped server (up to
    command_timeout): the collection used to run on ~10 s past its deadline, uncounted,
    and the next scrape joined it.  The late-result path itself is checked below with a
    collector that ignores cancellation."""
    caplog.set_level(logging.WARNING, logger="exporter.scrape")
    pg_fresh.execute("GRANT SELECT ON events TO monitor", "appdb")
    dsn = pg_fresh.dsn("monitor", "appdb", MONITOR_PASSWORD)
    engine = Engine(parse_config(f"global:\n  scrape_timeout: 1500ms\npostgres:\n  - name: frozen\n    dsn: {dsn}\n"))
    (runner,) = engine.runners.values()
    try:
        ((_, first),) = await engine.scrape(None)
        assert first.success, first.error
        pg_fresh.freeze()
        try:
            for attempt in (1, 2):
                start = time.monotonic()
                ((_, result),) = await engine.scrape(None)
                assert time.monotonic() - start < 1.5 + 2
                assert not result.success
                # counted when the deadline passed, not ~10 s later when asyncpg lets go;
                # the second scrape started its own collection instead of joining the first
                assert runner.failures_total == attempt
            assert len(failed_records(caplog, "frozen")) == 2
        finally:
            pg_fresh.thaw()
        # nothing of the frozen collections keeps running: each ended by its deadline (the
        # postgres collector's own connection handling lets go when cancelled) or, cancelled
        # there, ended later and was logged with how late
        await eventually(lambda: not runner._overdue and runner._inflight is None, 15)
        for late in late_records(caplog):
            assert late["target"] == "frozen" and float(late["late_seconds"]) >= 0
        # recovers without a restart, with nothing late served as its result
        ups = []
        for _ in range(3):
            ((_, result),) = await engine.scrape(None)
            ups.append(result.success)
        assert ups[-1]
        assert MONITOR_PASSWORD not in caplog.text
    finally:
        pg_fresh.thaw()
        await engine.close()


async def test_a_result_after_the_deadline_is_a_failure_and_never_served(
    redis_fresh: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter.scrape")
    run, collector = stubborn(redis_fresh, sleep=1.2)
    try:
        start = time.monotonic()
        result = await run.scrape(0.3)
        assert time.monotonic() - start < 0.3 + 2
        assert not result.success and result.error is not None and "deadline" in result.error
        assert run.failures_total == 1
        # the stubborn collection returns success about 0.9 s late: logged, not counted twice, not served
        await eventually(lambda: bool(late_records(caplog)), 10)
        (late,) = late_records(caplog)
        assert late["target"] == "slow" and late["ended"] == "returned"
        assert float(late["late_seconds"]) > 0.4
        assert run.failures_total == 1
        assert run.last_success_at is None
        assert run.last_result is not None and not run.last_result.success
        # a new scrape starts afresh
        collector.sleep = 0
        fresh = await run.scrape(5)
        assert fresh.success and collector.calls == 2
    finally:
        await run.close()


async def test_a_joined_collection_keeps_the_deadline_it_was_started_with(redis_fresh: RedisServer) -> None:
    run, collector = stubborn(redis_fresh, sleep=1.5)
    try:
        # started with 0.3 s; a scrape allowing 10 s joins it and is answered at 0.3 s, failed
        start = time.monotonic()
        short, long = await asyncio.gather(run.scrape(0.3), run.scrape(10))
        assert time.monotonic() - start < 1.2
        assert not short.success and not long.success
        assert collector.calls == 1 and run.failures_total == 1
        await asyncio.sleep(1.5)  # let the stubborn one end
        # started with 5 s; a scrape allowing 0.2 s gives up alone: the collection goes on and succeeds
        collector.sleep = 0.6
        first = asyncio.create_task(run.scrape(5))
        await asyncio.sleep(0.05)
        impatient = await run.scrape(0.2)
        assert not impatient.success
        assert (await first).success
        assert collector.calls == 2 and run.failures_total == 1
    finally:
        await run.close()


async def test_collections_stuck_after_cancellation_do_not_pile_up(redis_fresh: RedisServer) -> None:
    run, collector = stubborn(redis_fresh, sleep=3)
    try:
        results = [await run.scrape(0.2) for _ in range(MAX_OVERDUE + 2)]
        assert not any(r.success for r in results)
        assert collector.calls == MAX_OVERDUE
        assert results[-1].error is not None and "still running after their deadline" in results[-1].error
        assert run.failures_total == len(results)
    finally:
        await run.close()


# --------------------------------------------------------------------------- the landing page (item 12)


@contextlib.asynccontextmanager
async def echoing_server() -> AsyncIterator[int]:
    """A TCP server answering every Redis command with an error that echoes the request
    (AUTH and its password included) next to HTML, as a hostile backend might."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                echoed = data.replace(b"\r\n", b" ")
                writer.write(b"-ERR <img src=x onerror=alert(1)> you sent " + echoed + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def row(page: str, target: str) -> str:
    match = re.search(rf"<tr[^>]*><td>redis</td><td>{re.escape(target)}</td>.*?</tr>", page)
    assert match, f"no row for {target}:\n{page}"
    return match.group(0)


async def test_landing_page_shows_state_last_error_and_last_success(redis_server: RedisServer) -> None:
    closed = free_port()
    config = {
        "global": {"scrape_timeout": "3s"},
        "redis": [{"name": "good", "url": redis_server.url}, {"name": "gone", "url": f"redis://127.0.0.1:{closed}"}],
    }
    async with exporter(config) as http:
        before = await scrape(http, "/")
        assert "never scraped" in row(before, "good") and "never scraped" in row(before, "gone")
        await scrape(http)
        page = await scrape(http, "/")
    gone, good = row(page, "gone"), row(page, "good")
    assert "<td>down</td>" in gone
    assert f"connecting to 127.0.0.1:{closed}" in gone
    assert "<td>never</td>" in gone  # last success
    assert "<td>up</td>" in good
    assert re.search(r"<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+\.\ds ago\)</td>", good), good
    assert re.search(r"<td>\d+\.\d{3}s</td>", good), good
    assert "debug=true" in good


async def test_landing_page_escapes_hostile_errors_and_hides_the_password() -> None:
    async with echoing_server() as port:
        config = {"redis": [{"name": "evil", "url": f"redis://127.0.0.1:{port}", "password": SECRET}]}
        async with exporter(config) as http:
            metrics = await scrape(http)
            page = await scrape(http, "/")
            debug = await scrape(http, "/probe?target=evil&debug=true")
    evil = row(page, "evil")
    assert "<td>down</td>" in evil
    # the server's error is shown, escaped: no markup from a backend reaches the page
    assert "&lt;img src=x onerror=alert(1)&gt;" in evil
    assert "<img" not in page
    # it echoed AUTH's argument: masked everywhere
    assert "AUTH" in evil and "&lt;redacted&gt;" in evil
    for text in (page, debug, metrics):
        assert SECRET not in text, "the password leaked"
    assert "Result: failed" in debug and "onerror" in debug


# --------------------------------------------------------------------------- the debug probe (item 12)


async def test_debug_probe_returns_timings_result_and_log_lines(redis_server: RedisServer) -> None:
    closed = free_port()
    config = {
        "global": {"scrape_timeout": "3s"},
        "redis": [{"name": "good", "url": redis_server.url}, {"name": "gone", "url": f"redis://127.0.0.1:{closed}"}],
    }
    async with exporter(config) as http:
        # a plain scrape of every target runs alongside: its log lines must stay out
        plain = asyncio.create_task(scrape(http))
        good, gone = await asyncio.gather(
            scrape(http, "/probe?target=good&debug=true"), scrape(http, "/probe?target=gone&debug=true")
        )
        await plain
        resp = await http.get("/probe?target=good&debug=true")
        assert resp.headers["Content-Type"].startswith("text/plain")
    assert "Debug probe of target 'good' (collector redis)" in good
    assert "Collection: fresh" in good
    assert "Deadline: 3s" in good and re.search(r"Duration: \d+\.\d{3}s", good)
    assert "Result: success" in good
    logs_good = good.split("Logs of the collection:")[1].split("Metrics that would have been returned:")[0]
    assert 'msg="collection started" collector=redis target=good' in logs_good
    assert "success=True" in logs_good
    assert "target=gone" not in logs_good  # another request's lines
    metrics_good = good.split("Metrics that would have been returned:\n")[1]
    assert value(metrics_good, "redis_up", target="good") == 1
    assert value(metrics_good, "stack_exporter_collector_success", target="good") == 1

    assert "Result: failed: " in gone and f"127.0.0.1:{closed}" in gone
    logs_gone = gone.split("Logs of the collection:")[1].split("Metrics that would have been returned:")[0]
    assert 'level=warn logger=exporter.scrape msg="collection failed" collector=redis target=gone' in logs_gone
    assert "target=good" not in logs_gone
    metrics_gone = gone.split("Metrics that would have been returned:\n")[1]
    assert value(metrics_gone, "redis_up", target="gone") == 0


async def test_debug_probe_runs_a_fresh_collection_beside_one_in_flight(redis_fresh: RedisServer) -> None:
    run, collector = stubborn(redis_fresh, sleep=0.5)
    try:
        plain = asyncio.create_task(run.scrape(5))
        await asyncio.sleep(0.05)
        debug = await run.scrape(5, fresh=True)
        assert (await plain).success and debug.success
        assert collector.calls == 2
    finally:
        await run.close()
