"""Hostile HTTP clients against the real listener: auth floods, slowloris, connection floods,
content negotiation edge cases, and web configs that must fail ``--check-config``."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from exporter.scrape import Engine
from exporter.server import make_app, make_reloader, serve
from exporter.webconfig import WebConfig, WebSettings, default_web_settings
from exporter.webguard import FailureLimiter, ServerLimits, client_key
from peers.process import free_port
from tests.helpers import check_config, config_from, exporter, value, write_config

pytestmark = pytest.mark.timeout(90)

USER = "prometheus"
PASSWORD = "scrape-pass"
# the cost htpasswd -B uses by default: the price a real deployment pays per check
COST = 10
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=COST)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def auth_settings(**limits: float) -> WebSettings:
    config = WebConfig(basic_auth_users={USER: HASH})
    return WebSettings(config, Path.cwd(), "<test>", ServerLimits(**limits))  # type: ignore[arg-type]


@asynccontextmanager
async def listening(settings: WebSettings) -> AsyncIterator[str]:
    """The real app behind serve(), as cli runs it: the base URL."""
    engine = Engine(config_from({"redis": []}))
    app = make_app(engine, make_reloader(engine, lambda: config_from({"redis": []})), settings)
    port = free_port()
    runner = await serve(app, f"127.0.0.1:{port}", settings)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def timed_get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, float]:
    start = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - start


# --- item 4: a wrong-password flood ---------------------------------------------------------


# 100 clients hammering a wrong password, in their own process as a real attacker would be
ATTACKER = """
import asyncio, base64, collections, json, sys
import aiohttp

url = sys.argv[1]
header = {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()}
statuses = collections.Counter()

async def attacker(session, stop):
    while not stop.is_set():
        try:
            async with session.get(url, headers=header) as resp:
                await resp.read()
                statuses[resp.status] += 1
        except aiohttp.ClientError:
            statuses[0] += 1

async def main():
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(attacker(session, stop)) for _ in range(100)]
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until told to stop
        stop.set()
        await asyncio.gather(*tasks)
    print(json.dumps(statuses))

asyncio.run(main())
"""


async def test_wrong_password_flood_does_not_starve_cached_scrapes() -> None:
    # no per-client limit here: this is about the bcrypt pool alone
    settings = auth_settings(auth_failure_burst=0)
    async with listening(settings) as base, aiohttp.ClientSession() as good:
        assert (await timed_get(good, base + "/metrics", basic(USER, PASSWORD)))[0] == 200
        baseline = statistics.median([(await timed_get(good, base + "/metrics", basic(USER, PASSWORD)))[1]
                                      for _ in range(10)])  # fmt: skip
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ATTACKER, base + "/metrics", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(1.5)  # the attackers start and fill the bcrypt pool
        during: list[float] = []
        # every sample is taken while the flood runs: 20 of them, or as many as fit in 15 s
        until = time.monotonic() + 15
        while len(during) < 20 and time.monotonic() < until:
            status, seconds = await timed_get(good, base + "/metrics", basic(USER, PASSWORD))
            assert status == 200
            during.append(seconds)
            await asyncio.sleep(0.05)
        out, _ = await flood.communicate(b"")
    statuses = {int(k): v for k, v in json.loads(out).items()}
    median = statistics.median(during)
    assert median < max(0.5, baseline * 5), (baseline, during, statuses)
    # the attack was real: bcrypt ran at full cost and the bounded queue turned the rest away
    assert settings.bcrypt.calls[COST] >= 10
    assert statuses.get(401, 0) >= 10
    assert statuses.get(503, 0) > 0
    assert settings.stats.auth_failures["overloaded"] > 0


async def test_failed_attempts_are_rate_limited_per_client() -> None:
    settings = auth_settings(auth_failure_burst=5, auth_failure_rate=0.01)
    async with listening(settings) as base, aiohttp.ClientSession() as session:
        assert (await timed_get(session, base + "/metrics", basic(USER, PASSWORD)))[0] == 200
        results = await asyncio.gather(*(session.get(base + "/metrics", headers=basic(USER, f"guess{i}"))
                                         for i in range(40)))  # fmt: skip
        statuses = [r.status for r in results]
        limited = [r for r in results if r.status == 429]
        retry = limited[0].headers.get("Retry-After") if limited else None
        for r in results:
            r.release()
        calls = sum(settings.bcrypt.calls.values())
        # a client whose credentials were verified before is not locked out by the flood
        status, _ = await timed_get(session, base + "/metrics", basic(USER, PASSWORD))
        metrics = await (await session.get(base + "/metrics", headers=basic(USER, PASSWORD))).text()
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 35
    assert retry is not None and int(retry) >= 1
    # limited attempts never reached bcrypt: the first good login and the 5 allowed guesses
    assert calls == 6
    assert status == 200
    assert value(metrics, "stack_exporter_web_auth_failures_total", reason="rate_limited") == 35
    assert value(metrics, "stack_exporter_web_auth_failures_total", reason="invalid") == 5


def test_failure_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = FailureLimiter(rate=1.0, burst=2, max_clients=100, clock=lambda: now[0])
    for i in range(10_000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.take("a") == 0 and limiter.take("a") == 0
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("a") == 0
    # one host holds a whole IPv6 /64: it is one client
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") != client_key("2001:db8:0:1::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"


async def test_unknown_user_costs_the_same_as_a_wrong_password() -> None:
    settings = auth_settings()
    async with listening(settings) as base, aiohttp.ClientSession() as session:
        url = base + "/-/healthy"
        await timed_get(session, url, basic("nobody", "x"))  # the placeholder hash is ready now
        settings.bcrypt.calls.clear()
        wrong, unknown = [], []
        for _ in range(4):
            wrong.append((await timed_get(session, url, basic(USER, "wrong")))[1])
            unknown.append((await timed_get(session, url, basic("nobody", "wrong")))[1])
    # both paid one bcrypt at the configured cost; before, an unknown user paid cost 4
    assert settings.bcrypt.calls == {COST: 8}
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.4 < ratio < 2.5, (wrong, unknown)


async def test_overlong_password_fails_without_error() -> None:
    # bcrypt 5 raises on more than 72 bytes: that must be a 401, not a 500
    settings = auth_settings()
    async with listening(settings) as base, aiohttp.ClientSession() as session:
        status, _ = await timed_get(session, base + "/-/healthy", basic(USER, PASSWORD + "x" * 100))
    assert status == 401


async def test_malformed_hash_that_slipped_through_is_a_401_not_a_500() -> None:
    # the config check refuses it; should one reach the server anyway, it fails closed
    settings = WebSettings(WebConfig(basic_auth_users={"admin": "$2y$10$short"}), Path.cwd(), "<test>")
    async with listening(settings) as base, aiohttp.ClientSession() as session:
        status, _ = await timed_get(session, base + "/-/healthy", basic("admin", "x"))
    assert status == 401


def test_malformed_bcrypt_hash_fails_check_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"redis": []})
    good = bcrypt.hashpw(b"p", bcrypt.gensalt(rounds=4)).decode()
    bad_salt = good[:28] + "Z" + good[29:]  # the salt's last character holds only 2 bits
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  admin: '$2y$10$short'\n  ops: '{bad_salt}'\n  ok: '{good}'\n")
    proc = check_config(config, "--web.config.file", str(web))
    assert proc.returncode == 1, proc.stdout
    assert "basic_auth_users.admin: is not a valid bcrypt hash" in proc.stderr
    assert "basic_auth_users.ops: is not a valid bcrypt hash" in proc.stderr
    assert "basic_auth_users.ok" not in proc.stderr
    assert "Traceback" not in proc.stderr
    web.write_text(f"basic_auth_users:\n  ok: '{good}'\n")
    assert check_config(config, "--web.config.file", str(web)).returncode == 0


def test_listener_flags_reject_nonsense(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"redis": []})
    proc = check_config(config, "--web.idle-timeout", "nan")
    assert proc.returncode == 2
    assert "--web.idle-timeout" in proc.stderr and "finite" in proc.stderr
    assert check_config(config, "--web.max-connections", "0").returncode == 2
    assert check_config(config, "--web.auth.failure-burst", "0").returncode == 0


# --- item 11: timeouts and the connection cap ------------------------------------------------


async def read_until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    return await asyncio.wait_for(reader.read(), limit)


async def test_silent_and_slowloris_connections_are_closed() -> None:
    settings = default_web_settings(ServerLimits(read_header_timeout=1.0, idle_timeout=30.0))
    async with listening(settings) as base:
        port = int(base.rsplit(":", 1)[1])
        silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        slow_w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")

        async def trickle() -> None:
            for _ in range(40):
                slow_w.write(b"X")
                await asyncio.sleep(0.25)

        trickling = asyncio.create_task(trickle())
        assert await read_until_closed(silent_r, 5) == b""
        assert await read_until_closed(slow_r, 5) == b""
        elapsed = time.monotonic() - start
        trickling.cancel()
        silent_w.close()
        slow_w.close()
        # a request that completes its head in time is served, even when it then takes longer
        async with aiohttp.ClientSession() as session, session.get(base + "/-/healthy") as resp:
            assert resp.status == 200
    assert elapsed < 1.0 + 2
    assert settings.stats.dropped["header_timeout"] == 2


async def test_idle_keepalive_connection_is_closed() -> None:
    settings = default_web_settings(ServerLimits(idle_timeout=1.0))
    async with listening(settings) as base:
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        data = await read_until_closed(reader, 6)
        writer.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - start < 1.0 + 2


async def test_connections_over_the_cap_are_refused() -> None:
    settings = default_web_settings(ServerLimits(max_connections=5))
    async with listening(settings) as base:
        port = int(base.rsplit(":", 1)[1])
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        refused = await read_until_closed(reader, 5)
        writer.close()
        for _, w in held:
            w.close()
            await w.wait_closed()
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as resp:
            metrics = await resp.text()
    assert refused.startswith(b"HTTP/1.1 503")
    assert resp.status == 200
    assert value(metrics, "stack_exporter_web_connections_dropped_total", reason="max_connections") == 1
    assert value(metrics, "stack_exporter_web_open_connections") == 1


async def test_header_count_is_bounded() -> None:
    async with listening(default_web_settings()) as base, aiohttp.ClientSession() as session:
        headers = {f"X-Flood-{i}": "y" for i in range(300)}
        async with session.get(base + "/-/healthy", headers=headers) as resp:
            assert resp.status in (400, 431)


# --- item 11: content negotiation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("identity, gzip;q=0.5", True),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("br, deflate", False),
        ("x-gzip", True),
        ("gzip;q=nan", False),
    ],
)
async def test_accept_encoding_follows_rfc_9110(accept_encoding: str, gzipped: bool) -> None:
    async with exporter({"redis": []}) as http:
        resp = await http.get("/metrics", headers={"Accept-Encoding": accept_encoding}, auto_decompress=False)
        body = await resp.read()
    assert resp.status == 200
    assert (resp.headers.get("Content-Encoding") == "gzip") is gzipped
    text = gzip.decompress(body) if gzipped else body
    assert b"stack_exporter_build_info" in text


@pytest.mark.parametrize("version", ["99", "1.0.0", "0.0.1-beta"])
async def test_openmetrics_answers_version_1_0_0(version: str) -> None:
    async with exporter({"redis": []}) as http:
        resp = await http.get("/metrics", headers={"Accept": f"application/openmetrics-text;version={version}"})
        text = await resp.text()
    content_type = resp.headers["Content-Type"]
    if content_type.startswith("application/openmetrics-text"):
        assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        assert text.endswith("# EOF\n")
    assert version == "1.0.0" or f"version={version}" not in content_type
