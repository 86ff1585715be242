"""Shared pieces of the scale sub-commands (``targets``, ``concurrency``, ``soak``).

Those sub-commands are ``main(argv)`` modules, not one-point ``SCENARIO``s: each starts its
own backends and exporters in a ``harness.BenchEnv`` and measures in its own way. What they
share is here: starting a small redis-server, a private PostgreSQL, a static HTTP server and
an exporter (waiting until each answers), per-process CPU and RSS readings, the common
command-line options, the ours/theirs table, and writing the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
import redis

from bench.harness import (
    SCRAPE_HEADERS,
    BenchEnv,
    BenchError,
    RunOptions,
    cpu_seconds,
    http_ok,
    memory_kib,
)
from peers.process import STACK_EXPORTER, Process

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
BLACKBOX_EXPORTER = "/usr/bin/prometheus-blackbox-exporter"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
OURS_HINT = "install the project into the venv first: .venv/bin/pip install -e ."


# --------------------------------------------------------------------------- options


def arg_parser(name: str, description: str) -> argparse.ArgumentParser:
    """A parser for ``python -m bench <name>`` with the options every sub-command takes."""
    p = argparse.ArgumentParser(prog=f"python -m bench {name}", description=description)
    p.add_argument("--results-dir", type=Path, default=RunOptions().results_dir, help="where the JSON goes")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temp dir and every process's log")
    return p


def int_list(text: str) -> list[int]:
    """``1,10,50`` -> [1, 10, 50] for argparse."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


# --------------------------------------------------------------------------- processes


def pid(proc: Process) -> int:
    assert proc.pid is not None, "not started"
    return proc.pid


def start_redis(env: BenchEnv, name: str, port: int, keys: int = 0) -> Process:
    """A redis-server without persistence on 127.0.0.1:port, with ``keys`` small keys loaded.

    A third of the keys are hashes, the rest strings, some with a TTL, so INFO keyspace has
    content. Waits until it answers PING.
    """
    env.require(REDIS_SERVER, "apt-get install redis-server")
    data = env.subdir(name)
    proc = env.spawn(
        name,
        [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ],
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    try:
        env.wait_until(
            f"{name} to answer PING",
            lambda: bool(client.ping()),
            timeout=15,
            alive=[proc],
            errors=(redis.RedisError,),
        )
        if keys:
            pipe = client.pipeline(transaction=False)
            for i in range(keys):
                if i % 3 == 0:
                    pipe.hset(f"user:{i}", mapping={"name": f"user {i}", "plan": "pro", "logins": str(i)})
                elif i % 3 == 1:
                    pipe.set(f"session:{i}", f"payload-{i}", ex=3600 + i)
                else:
                    pipe.set(f"cache:{i}", "x" * (64 + i % 256))
            pipe.execute()
    finally:
        client.close()
    return proc


def redis_command_calls(port: int) -> int:
    """Commands the server has run so far: ``calls`` summed over ``INFO commandstats``.

    The INFO that reads it counts as one call once the next reading is taken.
    """
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    try:
        stats = cast(dict[str, Any], client.info("commandstats"))
    finally:
        client.close()
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_"))


def start_postgres(env: BenchEnv, port: int, settings: Sequence[str] = ()) -> Process:
    """A private PostgreSQL 15 (initdb as postgres, fsync off, pg_stat_statements loaded).

    ``pg_stat_statements`` is created in the ``postgres`` database. ``settings`` are extra
    ``name=value`` server settings. Waits until it accepts connections.
    """
    for tool in ("initdb", "postgres"):
        env.require(str(PG_BIN / tool), "apt-get install postgresql-15")
    data = env.subdir("pgdata", owner="postgres")
    sock = env.subdir("pgsock", owner="postgres")
    init = env.spawn(
        "initdb",
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
        user="postgres",
    )
    if init.wait(60) != 0:
        raise BenchError(f"initdb failed:\n{init.log_tail()}")
    argv = [
        str(PG_BIN / "postgres"), "-D", str(data),
        "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1",
        "-c", f"unix_socket_directories={sock}", "-c", "fsync=off",
        "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "shared_preload_libraries=pg_stat_statements",
    ]  # fmt: skip
    for setting in settings:
        argv += ["-c", setting]
    proc = env.spawn("postgres", argv, user="postgres")

    def ready() -> bool:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
            conn.execute("SELECT 1")
        return True

    env.wait_until("postgres accepts connections", ready, timeout=30, alive=[proc], errors=(psycopg.Error,))
    with pg_connect(port) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return proc


def pg_connect(port: int, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, autocommit=True)


def make_bench_db(port: int, tables: int = 20, rows: int = 2000) -> None:
    """Database ``bench`` with pg_stat_statements and ``tables`` indexed tables of ``rows`` rows."""
    with pg_connect(port) as conn:
        conn.execute("CREATE DATABASE bench")
    select = "SELECT g AS id, md5(g::text) AS v FROM generate_series(1, %d) g" % int(rows)  # noqa: S608, UP031 - an int
    with pg_connect(port, "bench") as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for i in range(tables):
            conn.execute(f"CREATE TABLE t_{i} AS {select}")
            conn.execute(f"CREATE INDEX ON t_{i} (v)")
        conn.execute("ANALYZE")


def start_http_server(env: BenchEnv, port: int) -> Process:
    """A tiny static HTTP server (``python -m http.server``) serving ``/health`` (200, 3 bytes)."""
    root = env.subdir("www")
    (root / "health").write_text("ok\n")
    proc = env.spawn(
        "http-server",
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
    )
    env.wait_until("the HTTP server", functools.partial(http_ok, port, "/health"), timeout=15, alive=[proc])
    return proc


def start_exporter(
    env: BenchEnv,
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    ready_path: str,
    hint: str,
    extra_env: Mapping[str, str] | None = None,
) -> Process:
    """Spawn an exporter and wait until ``ready_path`` answers 200."""
    env.require(str(argv[0]), hint)
    proc = env.spawn(name, argv, env=extra_env)
    env.wait_until(f"{name} on {ready_path}", functools.partial(http_ok, port, ready_path), timeout=60, alive=[proc])
    return proc


def start_ours(env: BenchEnv, name: str, config: str, port: int) -> Process:
    """Our exporter with ``config`` (YAML text), quiet logs, ready on ``/-/ready``."""
    path = env.workdir / f"{name}.yml"
    path.write_text(config)
    argv = [
        str(STACK_EXPORTER), "--config.file", str(path),
        "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn",
    ]  # fmt: skip
    return start_exporter(env, name, argv, port, ready_path="/-/ready", hint=OURS_HINT)


def start_redis_exporter(env: BenchEnv, name: str, port: int, redis_addr: str = "") -> Process:
    """redis_exporter 1.45; ``redis_addr=""`` starts it without a default target (``/scrape`` only)."""
    argv = [REDIS_EXPORTER, f"--redis.addr={redis_addr}", "--web.listen-address", f"127.0.0.1:{port}"]
    return start_exporter(env, name, argv, port, ready_path="/health", hint="apt-get install prometheus-redis-exporter")


def start_postgres_exporter(env: BenchEnv, name: str, port: int, dsn: str) -> Process:
    """postgres_exporter 0.11 with its default collectors on ``dsn``."""
    argv = [POSTGRES_EXPORTER, "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"]
    return start_exporter(
        env,
        name,
        argv,
        port,
        ready_path="/",  # 0.11 has no readiness endpoint
        hint="apt-get install prometheus-postgres-exporter",
        extra_env={"DATA_SOURCE_NAME": dsn},
    )


def start_blackbox_exporter(env: BenchEnv, name: str, port: int) -> Process:
    """blackbox_exporter with one ``http_2xx`` module (GET, any 2xx)."""
    config = env.workdir / f"{name}.yml"
    config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http: {}\n")
    argv = [
        BLACKBOX_EXPORTER, f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
    ]  # fmt: skip
    return start_exporter(
        env, name, argv, port, ready_path="/-/healthy", hint="apt-get install prometheus-blackbox-exporter"
    )


# --------------------------------------------------------------------------- HTTP


def http_request(port: int, path: str) -> bytes:
    """The bytes of a Prometheus-like GET (its headers, gzip accepted) that closes the connection."""
    head = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in SCRAPE_HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def fetch(port: int, request: bytes, timeout: float = 10.0) -> int:
    """One scrape on a fresh connection, read to the end; returns the HTTP status.

    Cheaper for the client than ``harness.scrape`` (no http.client, no gunzip), so that
    many scrapers, or many thousands of scrapes, measure the exporter and not the harness.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        first = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if len(first) < 12:
                first += chunk[:12]
    if not first.startswith(b"HTTP/1.") or len(first) < 12:
        raise OSError(f"no HTTP status line: {first!r}")
    return int(first[9:12])


# --------------------------------------------------------------------------- readings


def cpu_s(*procs: Process) -> float:
    """CPU seconds of the processes and their descendants (ns per-process clocks)."""
    return cpu_seconds(*(pid(p) for p in procs))


def rss_mib(*procs: Process) -> float:
    """VmRSS in MiB, summed over the processes and their descendants."""
    return sum(memory_kib(pid(p))[0] for p in procs) / 1024


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Growth per unit of x from the first to the last point: (y[-1] - y[0]) / (x[-1] - x[0])."""
    if len(xs) < 2 or xs[-1] == xs[0] or any(y is None for y in (ys[0], ys[-1])):
        return None
    return (ys[-1] - ys[0]) / (xs[-1] - xs[0])


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return None
    return a / b


def median(values: Sequence[float]) -> float | None:
    xs = sorted(values)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    """One line of the ours/theirs table; the ratio column is computed."""

    label: str
    ours: float | None
    theirs: float | None
    spec: str = ".2f"


def fmt(value: float | None, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def table(rows: Sequence[Row | str], ours: str = "stack-exporter", theirs: str = "reference") -> str:
    """The same layout as the scenarios' report: label, ours, theirs, ours/theirs.

    A plain string in ``rows`` is printed as a section heading.
    """
    lines = [f"{'':<34}{ours[:15]:>16}{theirs[:17]:>18}{'ours/theirs':>13}"]
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
            continue
        r = ratio(row.ours, row.theirs)
        lines.append(f"{row.label:<34}{fmt(row.ours, row.spec):>16}{fmt(row.theirs, row.spec):>18}{fmt(r):>13}")
    return "\n".join(lines)


def host_facts() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_result(name: str, doc: dict[str, Any], results_dir: Path) -> Path:
    """``<results_dir>/<name>-<UTC stamp>.json``; the document gets ``scenario`` and ``host``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"{name}-{stamp}.json"
    full = {"scenario": name, "host": {**host_facts(), "loadavg_end": os.getloadavg()}, **doc}
    path.write_text(json.dumps(full, indent=2, allow_nan=False) + "\n")
    return path


def report(name: str, title: str, body: str, doc: dict[str, Any], results_dir: Path) -> None:
    """Print the title, the table and the JSON path (stdout), as the scenarios do."""
    path = write_result(name, doc, results_dir)
    print(f"{title}\n{body}\n\nraw numbers: {path}\n", flush=True)
