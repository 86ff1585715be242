"""The PostgreSQL collector's guards: a connection cap per server, free slots left to
applications, and a bound on what one response may occupy in memory.

The connection tests run a server of their own with more databases than the cap,
where ordinary roles have 20 slots (``superuser_reserved_connections`` takes the
rest of the 60 the suite's servers start with); the memory tests speak just
enough of the PostgreSQL protocol to announce a message of 2 GiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.collectors.test_postgres import app_conn, monitor_dsn, pg_config
from tests.helpers import (
    check_config,
    exporter,
    peak_rss_growth,
    promtool_check,
    scrape,
    self_signed_cert,
    value,
    values,
    write_config,
)
from tests.servers.postgres import MONITOR_PASSWORD, PostgresServer, _base

pytestmark = pytest.mark.timeout(180)

DATABASES = [f"guard_db{i:02d}" for i in range(25)]
ORDINARY_SLOTS = 20  # max_connections 60 minus superuser_reserved_connections 40
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def pg_many() -> Iterator[PostgresServer]:
    """A server with 25 extra databases (one table each) and 20 slots for ordinary roles."""
    with _base("stack-pgg-") as base, PostgresServer(base) as server:
        server.setup_roles()
        server.execute("ALTER SYSTEM SET superuser_reserved_connections = 40")
        for i, db in enumerate(DATABASES):
            server.execute(f"CREATE DATABASE {db}")
            with server.connect(db) as conn:
                conn.execute(f"CREATE TABLE t{i:02d} AS SELECT generate_series(1, {10 + i}) AS id")
                conn.execute("ANALYZE")
        server.stop()
        server.start()
        assert server.scalar("SHOW superuser_reserved_connections") == "40"
        yield server


def guard_config(server: PostgresServer, **extra: Any) -> dict[str, Any]:
    return pg_config(
        ("many", monitor_dsn(server)),
        auto_discover=True,
        exclude_databases=["template*", "postgres"],
        tables_limit=3,
        **extra,
    )


def exporter_sessions(server: PostgresServer) -> int:
    return int(server.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stack-exporter'"))


def skipped_total(text: str) -> float | None:
    return value(text, "stack_exporter_postgres_databases_skipped_total", target="many", reason="no_free_slots")


@contextlib.contextmanager
def watch_sessions(server: PostgresServer) -> Iterator[list[int]]:
    """Counts the exporter's sessions every few milliseconds on one superuser connection."""
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with server.connect() as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stack-exporter'"
                ).fetchone()
                seen.append(int(row[0]) if row else 0)
                stop.wait(0.003)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)


# --------------------------------------------------------------------------- connection cap


async def test_more_databases_than_the_cap_are_visited_in_turn(pg_many: PostgresServer) -> None:
    config = guard_config(pg_many, max_connections=3, databases_per_scrape=10, connection_idle_timeout="1s")
    texts = []
    with watch_sessions(pg_many) as seen:
        async with exporter(config) as http:
            for _ in range(3):
                texts.append(await scrape(http))
                # the application still gets in while the exporter works
                with app_conn(pg_many) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            held = exporter_sessions(pg_many)
            # idle sessions are closed without another scrape
            for _ in range(50):
                if exporter_sessions(pg_many) == 0:
                    break
                await asyncio.sleep(0.1)
            after_idle = exporter_sessions(pg_many)
    assert seen and max(seen) <= 3, f"the exporter held up to {max(seen)} sessions"
    assert 1 <= held <= 3
    assert after_idle == 0
    for text in texts:
        assert promtool_check(text) == ""
        assert value(text, "pg_up", target="many") == 1
        assert value(text, "stack_exporter_postgres_connections_max", target="many") == 3
        # 25 databases, 10 visited per scrape: 15 wait for their turn
        assert value(text, "stack_exporter_postgres_databases_late", target="many", reason="turn") == 15
        assert value(text, "stack_exporter_postgres_databases_late", target="many", reason="no_free_slots") == 0

    def visited(text: str) -> set[str]:
        return {s.labels["datname"] for s in values(text, "pg_stat_user_tables_n_live_tup", target="many")}

    assert visited(texts[0]) == {"appdb", *DATABASES[:10]}
    assert visited(texts[1]) == {"appdb", *DATABASES[:20]}
    # by the third scrape every database has had its turn, and keeps its series
    assert visited(texts[2]) == {"appdb", *DATABASES}
    rows = values(texts[2], "pg_stat_user_tables_n_live_tup", target="many", datname="guard_db24", relname="t24")
    live = pg_many.scalar("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 't24'", "guard_db24")
    assert [s.value for s in rows] == [live]


async def test_no_connection_is_added_when_the_server_is_nearly_full(pg_many: PostgresServer) -> None:
    config = guard_config(pg_many, max_connections=3, min_free_connections=3, databases_per_scrape=10)
    apps: list[psycopg.Connection[Any]] = []
    try:
        with watch_sessions(pg_many) as seen:  # the watcher takes one ordinary slot
            # 16 application sessions + the watcher: 3 free slots before the exporter connects
            apps.extend(app_conn(pg_many) for _ in range(16))
            async with exporter(config) as http:
                text = await scrape(http)
                peak = max(seen)
                # the exporter took one slot: the application can still take the last two
                apps.extend(app_conn(pg_many) for _ in range(2))
                with pytest.raises(psycopg.OperationalError, match="reserved"):
                    app_conn(pg_many)
                for conn in apps[-12:]:
                    conn.close()
                del apps[-12:]
                text_after = await scrape(http)
                text_later = await scrape(http)
        assert peak == 1, f"the exporter held up to {peak} sessions on a nearly full server"
        assert max(seen) <= 3
        assert value(text, "pg_up", target="many") == 1
        assert value(text, "stack_exporter_postgres_databases_late", target="many", reason="no_free_slots") == 10
        assert skipped_total(text) == 10
        assert not values(text, "pg_stat_user_tables_n_live_tup", target="many", datname="guard_db00")
        # with slots free again (seen by the next core query), the skipped databases come first
        assert value(text_after, "pg_up", target="many") == 1
        assert value(text_after, "stack_exporter_postgres_databases_late", target="many", reason="no_free_slots") == 0
        assert values(text_after, "pg_stat_user_tables_n_live_tup", target="many", datname="guard_db00")
        assert values(text_later, "pg_stat_user_tables_n_live_tup", target="many", datname="guard_db19")
        assert not values(text_later, "pg_stat_user_tables_n_live_tup", target="many", datname="guard_db20")
        assert skipped_total(text_later) == 10
    finally:
        for conn in apps:
            conn.close()


def test_check_config_reports_bad_connection_settings(tmp_path: Path) -> None:
    dsn = f"postgresql://monitor:{MONITOR_PASSWORD}@127.0.0.1:5432/app"
    config = {
        "postgres": [
            {"name": "a", "dsn": dsn, "max_connections": 0, "min_free_connections": -1},
            {"name": "b", "dsn": dsn, "pool_max_size": 5, "max_connections": 4},
            {"name": "c", "dsn": dsn, "databases_per_scrape": 0, "connection_idle_timeout": "0s"},
            {"name": "d", "dsn": dsn, "pool_max_size": 50},
        ]
    }
    proc = check_config(write_config(tmp_path, config))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "postgres[0].max_connections: must be between 1 and 20" in out
    assert "postgres[0].min_free_connections: must be between 0 and 1000" in out
    assert "postgres[1].pool_max_size: is the old name of max_connections; set max_connections only" in out
    assert "postgres[2].databases_per_scrape: must be between 1 and 1000" in out
    assert "postgres[2].connection_idle_timeout: must be" in out
    assert "postgres[3].pool_max_size: must be between 1 and 20" in out
    assert "Traceback" not in out
    ok = check_config(write_config(tmp_path, {"postgres": [{"name": "e", "dsn": dsn, "pool_max_size": 2}]}))
    assert ok.returncode == 0, ok.stdout + ok.stderr


# --------------------------------------------------------------------------- response size


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _startup_reply() -> bytes:
    params = [
        ("server_version", "15.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("DateStyle", "ISO, MDY"),
        ("standard_conforming_strings", "on"),
    ]
    out = _msg(b"R", struct.pack("!I", 0))
    for k, v in params:
        out += _msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
    return out + _msg(b"K", struct.pack("!II", 4242, 77)) + _msg(b"Z", b"I")


class HostilePostgres:
    """Completes the startup, then answers the first query with ``mode``:

    * ``announce``: a DataRow header announcing 2 GiB, then streams zeros (at most
      ``stream_limit`` bytes, so a broken guard cannot take the test machine down);
    * ``startup``: announces 2 GiB in place of AuthenticationOk;
    * ``notices``: an endless run of 1 MiB NoticeResponses, each complete.
    """

    def __init__(self, mode: str, stream_limit: int = 600 * MiB) -> None:
        self.mode = mode
        self.stream_limit = stream_limit
        self.sent = 0  # the most bytes sent on one connection
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> HostilePostgres:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            try:
                await self._talk(reader, writer)
            finally:
                writer.close()

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!I", await reader.readexactly(4))
        body = await reader.readexactly(length - 4)
        if body[:4] == struct.pack("!I", 80877103):  # SSLRequest: no
            writer.write(b"N")
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            await reader.readexactly(length - 4)  # StartupMessage
        if self.mode == "startup":
            writer.write(b"R" + struct.pack("!I", 2**31 - 1))
            await self._stream(writer, 0)
            return
        writer.write(_startup_reply())
        await writer.drain()
        await reader.readexactly(1)  # the first message of the first query
        if self.mode == "announce":
            writer.write(b"D" + struct.pack("!I", 2**31 - 1))
            await self._stream(writer, 0)
        else:
            notice = _msg(b"N", b"SNOTICE\0C00000\0M" + b"x" * MiB + b"\0\0")
            sent = 0
            while sent < self.stream_limit:
                writer.write(notice)
                sent += len(notice)
                self.sent = max(self.sent, sent)
                await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, sent: int) -> None:
        chunk = bytes(MiB)
        while sent < self.stream_limit:
            writer.write(chunk)
            sent += len(chunk)
            self.sent = max(self.sent, sent)
            await writer.drain()

    def dsn(self, sslmode: str) -> str:
        return f"postgresql://monitor:{MONITOR_PASSWORD}@127.0.0.1:{self.port}/appdb?sslmode={sslmode}"


@contextlib.asynccontextmanager
async def hostile(mode: str) -> AsyncIterator[HostilePostgres]:
    async with HostilePostgres(mode) as server:
        yield server


@pytest.mark.parametrize(
    ("mode", "sslmode", "error"),
    [
        ("announce", "prefer", "message of 2147483648 bytes exceeds the 67108864-byte limit"),
        ("announce", "disable", "message of 2147483648 bytes exceeds the 67108864-byte limit"),
        ("startup", "prefer", "message of 2147483648 bytes exceeds the 67108864-byte limit"),
        ("notices", "disable", "exceeds the 67108864-byte limit"),
    ],
)
async def test_a_huge_response_fails_the_target_and_memory_stays_bounded(
    pg_many: PostgresServer, caplog: pytest.LogCaptureFixture, mode: str, sslmode: str, error: str
) -> None:
    caplog.set_level(logging.INFO)
    async with hostile(mode) as bad:
        config = pg_config(("hostile", bad.dsn(sslmode)), ("good", monitor_dsn(pg_many)), timeout="20s")
        async with exporter(config) as http:
            with peak_rss_growth() as growth:
                text = await scrape(http)
            grown = growth[0]
            again = await scrape(http)
            landing = await (await http.get("/")).text()
    assert value(text, "pg_up", target="hostile") == 0
    assert value(text, "pg_up", target="good") == 1
    assert value(again, "pg_up", target="good") == 1
    assert grown < 200 * MiB, f"RSS grew by {grown // MiB} MiB"
    # the guard cut the connection early: far less than the limit was even sent
    assert bad.sent < (200 * MiB if mode == "notices" else 64 * MiB)
    messages = "\n".join(r.getMessage() + str(getattr(r, "kv", "")) for r in caplog.records)
    assert error in messages, messages
    assert "Traceback" not in messages
    assert MONITOR_PASSWORD not in messages + text + landing


async def test_a_custom_query_returning_too_much_is_cut_and_counted(
    pg_many: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queries = tmp_path / "queries.yaml"
    queries.write_text(
        "pg_big:\n"
        "  query: SELECT repeat('x', 70 * 1024 * 1024) AS big, 1 AS v\n"
        "  metrics:\n"
        "    - big: {usage: LABEL, description: Big.}\n"
        "    - v: {usage: GAUGE, description: One.}\n"
        "pg_small:\n"
        "  query: SELECT 1 AS v\n"
        "  metrics:\n"
        "    - v: {usage: GAUGE, description: One.}\n"
    )
    caplog.set_level(logging.INFO)
    config = pg_config(("many", monitor_dsn(pg_many)), custom_queries_file=str(queries), timeout="20s")
    async with exporter(config) as http:
        with peak_rss_growth() as growth:
            text = await scrape(http)
        again = await scrape(http)
    assert growth[0] < 200 * MiB
    for t in (text, again):
        assert value(t, "pg_up", target="many") == 1
        assert not values(t, "pg_big_v")
    assert value(again, "stack_exporter_query_errors_total", target="many", query="pg_big") == 2
    messages = "\n".join(r.getMessage() + str(getattr(r, "kv", "")) for r in caplog.records)
    assert "exceeds the 67108864-byte limit" in messages


# --------------------------------------------------------------------------- TLS through the guard


async def test_a_tls_session_passes_through_the_response_guard(pg_fresh: PostgresServer, tmp_path: Path) -> None:
    """asyncpg upgrades to TLS after connecting (start_tls, then set_protocol): the guard
    sits in front of its protocol on both sides of the upgrade, and sessions still work."""
    cert, key = self_signed_cert(pg_fresh.data, days=1, name="server")
    key.chmod(0o600)
    shutil.chown(key, *_owner(pg_fresh.data))
    shutil.chown(cert, *_owner(pg_fresh.data))
    pg_fresh.execute("ALTER SYSTEM SET ssl = on")
    pg_fresh.execute("SELECT pg_reload_conf()")
    await asyncio.sleep(0.5)
    assert pg_fresh.scalar("SHOW ssl") == "on"
    pg_fresh.execute("GRANT SELECT ON events TO monitor", "appdb")
    dsn = monitor_dsn(pg_fresh) + "?sslmode=require"
    async with exporter(pg_config(("tls", dsn))) as client:
        text = await scrape(client)
        assert value(text, "pg_up", target="tls") == 1, text[-2000:]
        assert value(text, "stack_exporter_collector_success", target="tls") == 1
        on_tls = pg_fresh.scalar(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE a.application_name = 'stack-exporter'"
        )
        assert on_tls is True


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid
