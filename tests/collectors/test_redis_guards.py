"""Redis guards against hostile servers and costly configs: the reply-size bound and the SCAN budget.

A fake server on loopback (:class:`HostileRedis`) answers the connection
handshake like Redis and then answers INFO with a reply that never ends: a
line without CRLF, a ``$2000000000`` bulk string that streams forever, or an
endless array.  The target must fail with a clear error within its deadline
while the process's memory stays bounded and a real redis-server beside it
scrapes fine.  The SCAN budget tests run on a real redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from exporter.collectors.redis.client import ReplyTooLarge, make_client
from exporter.collectors.redis.config import RedisTarget
from exporter.schema import ConfigError
from peers.process import LOOPBACK
from tests.helpers import config_from, exporter, peak_rss_growth, scrape, value
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(120)

CHUNK = b"a" * 65536
# RSS growth allowed while a hostile server streams for a whole deadline;
# unbounded, the client buffers hundreds of MB a second on loopback
RSS_BOUND = 200 * 2**20


class HostileRedis:
    """Answers the handshake like Redis (+OK, +PONG), then INFO with ``mode``'s endless reply.

    In mode ``scan-hang`` INFO gets a short valid reply and SCAN no reply at all.
    """

    def __init__(self, mode: str, reply: bytes = b"") -> None:
        self.mode = mode
        self.reply = reply  # mode "reply": what INFO gets, once
        self.sent = 0
        self.scans = 0
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://{LOOPBACK}:{port}/0"

    async def __aenter__(self) -> HostileRedis:
        self.server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self._converse(reader, writer)
        finally:
            writer.close()
            self.handlers.discard(task)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while True:
                command = await _read_command(reader)
                name = command[0].upper() if command else b""
                if name == b"PING":
                    writer.write(b"+PONG\r\n")
                elif name == b"INFO" and self.mode == "scan-hang":
                    info = b"# Server\r\nredis_version:7.2.0\r\nredis_mode:standalone\r\n"
                    writer.write(b"$%d\r\n%s\r\n" % (len(info), info))
                elif name == b"INFO" and self.mode == "reply":
                    writer.write(self.reply)
                elif name == b"INFO":
                    await self._endless(writer)
                elif name == b"SCAN":
                    self.scans += 1
                    await asyncio.Event().wait()  # never answers
                elif name in (b"CLIENT", b"SELECT", b"AUTH"):
                    writer.write(b"+OK\r\n")
                else:  # SLOWLOG, LATENCY: refused, as managed services do
                    writer.write(b"-ERR unknown command\r\n")
                await writer.drain()

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        header = {"line": b"+", "bulk": b"$2000000000\r\n", "array": b"*2000000000\r\n"}[self.mode]
        chunk = b":1000\r\n" * 8192 if self.mode == "array" else CHUNK
        writer.write(header)
        while True:
            writer.write(chunk)
            self.sent += len(chunk)
            await writer.drain()


async def _read_command(reader: asyncio.StreamReader) -> list[bytes]:
    header = await reader.readline()
    if not header.startswith(b"*"):
        raise ConnectionError(f"not a command: {header!r}")
    args = []
    for _ in range(int(header[1:])):
        length = int((await reader.readline())[1:])
        args.append((await reader.readexactly(length + 2))[:-2])
    return args


@pytest.mark.parametrize(
    ("mode", "deadline", "message"),
    [
        ("line", 3, "reply line longer than the 64 KiB limit"),
        ("bulk", 3, "reply larger than the 64 MiB limit (max_reply_bytes)"),
        ("array", 3, "reply has more than 100000 elements"),
    ],
)
async def test_endless_reply_fails_the_target_with_bounded_memory(
    mode: str, deadline: int, message: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with HostileRedis(mode) as hostile:
        config = {
            "global": {"scrape_timeout": f"{deadline}s"},
            "redis": [{"name": "hostile", "url": hostile.url}, {"name": "real", "url": redis_server.url}],
        }
        async with exporter(config) as http:
            with peak_rss_growth() as growth:
                start = time.monotonic()
                text = await scrape(http)
                elapsed = time.monotonic() - start
            print(f"{mode}: {elapsed:.2f}s, RSS +{growth[0] / 2**20:.0f} MiB, {hostile.sent} bytes sent")
            assert elapsed < deadline + 2, f"the scrape took {elapsed:.1f}s with a {deadline}s deadline"
            assert growth[0] < RSS_BOUND, f"RSS grew by {growth[0] / 2**20:.0f} MiB ({hostile.sent} bytes sent)"
            assert value(text, "redis_up", target="hostile") == 0
            assert value(text, "stack_exporter_collector_success", target="hostile") == 0
            assert value(text, "redis_up", target="real") == 1
            assert value(text, "stack_exporter_collector_success", target="real") == 1
            errors = [
                str(getattr(r, "kv", {}).get("err")) for r in caplog.records if r.getMessage() == "collection failed"
            ]
            assert any(message in e and "INFO failed" in e for e in errors), errors
            # the exporter still answers, and the next scrape fails the same way
            assert (await http.get("/-/healthy")).status == 200
            text = await scrape(http)
            assert value(text, "redis_up", target="hostile") == 0
            assert value(text, "redis_up", target="real") == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"$abc\r\n", "InvalidResponse: Protocol Error: b'$abc'"),
        (b"$-5\r\n", "InvalidResponse: Protocol Error: b'$-5'"),
        (b"?what\r\n", "InvalidResponse: Protocol Error: b'?what'"),
        (b"*1\r\n" * 40 + b":1\r\n", "arrays nested deeper than 16"),
        (b"*3\r\n$1\r\na\r\n$zz\r\n", "InvalidResponse: Protocol Error: b'$zz'"),
    ],
)
async def test_malformed_replies_fail_the_target_clearly(
    reply: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with HostileRedis("reply", reply) as bad, exporter({"redis": [{"name": "bad", "url": bad.url}]}) as http:
        text = await scrape(http)
    assert value(text, "redis_up", target="bad") == 0
    errors = [str(getattr(r, "kv", {}).get("err")) for r in caplog.records if "failed" in r.getMessage()]
    assert any(message in e for e in errors), errors
    assert not any(r.exc_info for r in caplog.records)


async def test_reply_bound_counts_bytes_and_elements_and_the_connection_recovers(redis_fresh: RedisServer) -> None:
    setup = redis_fresh.client()
    setup.set("big", "x" * (3 * 2**20))
    setup.rpush("many", *(["x"] * 20000))  # ~140 KB on the wire, 20,000 objects in memory
    small = RedisTarget(name="small", url=redis_fresh.url, max_reply_bytes=2**20)
    client = make_client(small, 0)
    default = make_client(RedisTarget(name="default", url=redis_fresh.url), 0)
    try:
        with pytest.raises(ReplyTooLarge, match=r"reply larger than the 1 MiB limit \(max_reply_bytes\)"):
            await client.get("big")
        assert await client.ping()  # the dropped connection is replaced
        with pytest.raises(ReplyTooLarge, match="1 MiB"):
            await client.execute_command("LRANGE", "many", 0, -1)
        assert len(await client.execute_command("LRANGE", "many", 0, 999)) == 1000
        # under the default 64 MiB both come through, as a big INFO would
        assert len(await default.get("big")) == 3 * 2**20
        assert len(await default.execute_command("LRANGE", "many", 0, -1)) == 20000
        assert b"redis_version" in await default.execute_command("INFO", "ALL")
    finally:
        await client.aclose(close_connection_pool=True)
        await default.aclose(close_connection_pool=True)


def config_problem(**target: Any) -> str:
    with pytest.raises(ConfigError) as info:
        config_from({"redis": [{"name": "r", "url": "redis://127.0.0.1:6379/0", **target}]})
    return str(info.value)


def test_config_bounds_the_reply_limit_and_the_scan_budget() -> None:
    assert "max_reply_bytes" in config_problem(max_reply_bytes=1000)
    assert "max_reply_bytes" in config_problem(max_reply_bytes=2**31)
    patterns = [{"name": n, "pattern": f"{n}:*"} for n in ("a", "b", "c")]
    problem = config_problem(key_patterns=patterns, key_pattern_max_scan_calls=2)
    assert "key_pattern_max_scan_calls" in problem and "number of key_patterns (3)" in problem
    config_from(
        {"redis": [{"name": "r", "url": "redis://h/0", "key_patterns": patterns, "key_pattern_max_scan_calls": 3}]}
    )


def calls_to_walk(server: RedisServer, pattern: str) -> int:
    """SCAN calls (COUNT 1000) one pattern needs to walk the whole keyspace."""
    client = server.client()
    cursor, calls = 0, 0
    while True:
        cursor, _ = client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        calls += 1
        if cursor == 0:
            return calls


async def key_group_pass(server: RedisServer, budget: int, patterns: list[str]) -> str:
    key_patterns = [{"name": p, "pattern": f"{p}:*"} for p in patterns]
    config = {
        "redis": [{"name": "r", "url": server.url, "key_patterns": key_patterns, "key_pattern_max_scan_calls": budget}]
    }
    async with exporter(config) as http:
        await scrape(http)  # starts the background pass
        deadline = time.monotonic() + 15
        while True:
            text = await scrape(http)
            if value(text, "redis_key_group_pass_scan_calls", target="r") is not None:
                return text
            assert time.monotonic() < deadline, "the counting pass did not finish"
            await asyncio.sleep(0.05)


async def test_scan_budget_bounds_the_whole_pass_not_each_pattern(redis_fresh: RedisServer) -> None:
    patterns = ["a", "b", "c", "d"]
    setup = redis_fresh.client()
    for p in patterns:
        setup.mset({f"{p}:{i}": "x" for i in range(2000)})
    need = [calls_to_walk(redis_fresh, f"{p}:*") for p in patterns]
    assert min(need) >= 3, need  # the keyspace takes several calls to walk
    budget = max(need) + 1  # each pattern alone fits; together they need about four times as many
    assert sum(need) > budget

    text = await key_group_pass(redis_fresh, budget, patterns)
    calls = [value(text, "redis_key_group_scan_calls", target="r", key_group=p) for p in patterns]
    complete = [value(text, "redis_key_group_scan_complete", target="r", key_group=p) for p in patterns]
    assert all(c is not None and c >= 1 for c in calls), calls  # every group got a share
    assert sum(c or 0 for c in calls) <= budget, (calls, budget)
    assert value(text, "redis_key_group_pass_scan_calls", target="r") == sum(c or 0 for c in calls) <= budget
    assert value(text, "redis_key_group_pass_budget_exhausted", target="r") == 1
    assert 0 in complete, complete
    for p in patterns:  # incomplete counts are lower bounds, never more than there are
        found = value(text, "redis_key_group_keys", target="r", key_group=p)
        assert found is not None and 0 <= found <= 2000

    # with room for every pattern, all complete and the budget is not reported hit
    text = await key_group_pass(redis_fresh, sum(need) + len(patterns) * 2, patterns)
    for p in patterns:
        assert value(text, "redis_key_group_keys", target="r", key_group=p) == 2000
        assert value(text, "redis_key_group_scan_complete", target="r", key_group=p) == 1
    assert value(text, "redis_key_group_pass_budget_exhausted", target="r") == 0


async def test_scan_time_budget_bounds_a_pass_on_a_server_that_stops_answering() -> None:
    """SCAN calls that never return cannot hold a pass past key_pattern_max_duration."""
    async with HostileRedis("scan-hang") as hostile:
        config = {
            "redis": [
                {
                    "name": "r",
                    "url": hostile.url,
                    "key_patterns": [{"name": "a", "pattern": "a:*"}, {"name": "b", "pattern": "b:*"}],
                    "key_pattern_max_duration": "1s",
                }
            ]
        }
        async with exporter(config) as http:
            text = await scrape(http)  # starts the pass
            assert value(text, "redis_up", target="r") == 1
            start = time.monotonic()
            while value(text, "redis_key_group_pass_budget_exhausted", target="r") is None:
                assert time.monotonic() - start < 1 + 3, "the pass outlived its 1s budget"
                await asyncio.sleep(0.1)
                text = await scrape(http)
        assert value(text, "redis_key_group_pass_budget_exhausted", target="r") == 1
        assert value(text, "redis_key_group_pass_scan_calls", target="r") == 0
        assert hostile.scans >= 2  # each group got its share of the time
