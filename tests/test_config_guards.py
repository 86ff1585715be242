"""Hostile and broken config files (issue 15, items 5-7): each attack is refused with a
clear message naming the file, line or key, never a hang, a memory blow-up or a traceback,
whether it arrives by --check-config, /-/reload or SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from exporter.config import Config, ConfigError, load_config, parse_config
from exporter.scrape import Engine
from exporter.webconfig import load_web_config
from peers.process import free_port, port_is_open, wait_until
from tests.helpers import ROOT, check_config, scrape, serving, value, write_config
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(120)

# A 342-byte "billion laughs": nine levels of nine aliases, 10^9 strings once expanded.
BILLION_LAUGHS = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)

# name -> (config text, what the message must say)
HOSTILE_YAML = {
    "billion-laughs": (BILLION_LAUGHS, "line 6, column 8: invalid YAML: aliases expand to more than 100000 nodes"),
    "unhashable-key-complex": ("? [a, b]\n: 1\n", "line 1, column 3: invalid YAML: a key must be a plain value"),
    "unhashable-key-flow": ("redis: {[1]: x}\n", "line 1, column 9: invalid YAML: a key must be a plain value"),
    "deep-nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML: nested more than 100 levels deep"),
    "deep-mappings": ("x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 150)), "nested more than 100 levels"),
    "huge-integer": ("x: " + "1" * 5001 + "\n", "line 1, column 4: invalid YAML: cannot read this value: Exceeds"),
    # 10 MiB of "[1,1,...]" held 4 GB in the loader: values are counted, not only bytes
    "too-many-values": ("x: [" + ",".join(["1"] * 200_001) + "]\n", "invalid YAML: more than 200000 values"),
    "recursive-alias": ("x: &a [1, *a]\n", "an alias refers to a value that contains it"),
    "bad-timestamp": ("x: 2001-13-01\n", "line 1, column 4: invalid YAML: cannot read this value: month must be"),
    "aliases-nesting-deep": (
        "".join(f"k{i}: &a{i} {'[' * 60}{f'*a{i - 1}' if i else '1'}{']' * 60}\n" for i in range(4)),
        "aliases nest values more than 100 levels deep",
    ),
}


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_check_config_refuses_hostile_yaml_quickly(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE_YAML[name]
    path = write_config(tmp_path, text)
    start = time.monotonic()
    proc = check_config(path)
    # the billion laughs ran past 30 s (and 1 GB) before; a refusal is a parse away
    assert time.monotonic() - start < 30
    assert_clean_failure(proc, f"{path}: 1 problem", expected)


@pytest.mark.parametrize("name", ["billion-laughs", "unhashable-key-complex", "deep-nesting", "huge-integer"])
def test_web_config_refuses_hostile_yaml(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE_YAML[name]
    web = tmp_path / "web.yml"
    web.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_web_config(str(web))
    assert expected in str(err.value)
    proc = check_config(write_config(tmp_path, "{}"), "--web.config.file", str(web))
    assert_clean_failure(proc, expected)


def test_aliases_within_the_limit_still_work() -> None:
    config = parse_config(
        "redis:\n"
        "  - {name: a, <<: &r {url: 'redis://127.0.0.1:6379/0', key_patterns: &k [{name: s, pattern: 's:*'}]}}\n"
        "  - {name: b, <<: *r}\n"
        "  - {name: c, url: 'redis://127.0.0.1:6379/1', key_patterns: *k}\n"
    )
    assert [t.target_name() for t in config.sources["redis"]] == ["a", "b", "c"]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "oversized"])
def test_a_secret_file_must_be_a_small_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        secret = tmp_path / "password"
        os.mkfifo(secret)  # no writer: reading it would block forever
        expected = f"redis[0].password_file: cannot read '{secret}': it is a named pipe, not a regular file"
    elif kind == "dev-zero":
        secret = Path("/dev/zero")  # never ends
        expected = "redis[0].password_file: cannot read '/dev/zero': it is a character device, not a regular file"
    else:
        secret = tmp_path / "password"
        secret.write_bytes(b"x" * (64 * 1024 + 1))
        expected = f"redis[0].password_file: cannot read '{secret}': larger than 64 KiB (65537 bytes)"
    config = {"redis": [{"name": "a", "url": "redis://127.0.0.1:6379/0", "password_file": str(secret)}]}
    with pytest.raises(ConfigError) as err:
        parse_config(write_config(tmp_path, config).read_text(), base_dir=tmp_path)
    assert err.value.problems == [expected]
    assert_clean_failure(check_config(tmp_path / "config.yml"), expected)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_the_web_config_file_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        web = tmp_path / "web.yml"
        os.mkfifo(web)  # no writer: reading it would block forever
        expected = "cannot read web config file: it is a named pipe, not a regular file"
    else:
        web = Path("/dev/zero")
        expected = "cannot read web config file: it is a character device, not a regular file"
    with pytest.raises(ConfigError) as err:
        load_web_config(str(web))
    assert err.value.problems == [expected]
    assert_clean_failure(check_config(write_config(tmp_path, "{}"), "--web.config.file", str(web)), expected)


@pytest.mark.parametrize("name", ["billion-laughs", "deep-nesting", "unhashable-key-complex"])
def test_a_custom_queries_file_is_read_as_strictly_as_the_config(tmp_path: Path, name: str) -> None:
    text, expected = HOSTILE_YAML[name]
    (tmp_path / "queries.yml").write_text(text)
    config = {
        "postgres": [{"name": "db", "dsn": "postgresql://u@127.0.0.1:5432/d", "custom_queries_file": "queries.yml"}]
    }
    assert_clean_failure(check_config(write_config(tmp_path, config), cwd=tmp_path), expected)


def test_a_secret_file_of_64_kib_is_read(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("p" * (64 * 1024 - 1) + "\n")
    config = parse_config(
        "redis:\n  - {name: a, url: 'redis://127.0.0.1:6379/0', password_file: password}\n", base_dir=tmp_path
    )
    assert "p" * (64 * 1024 - 1) in config.secrets()


def test_other_file_keys_refuse_pipes_and_devices(tmp_path: Path) -> None:
    fifo = tmp_path / "queries.yaml"
    os.mkfifo(fifo)
    text = f"postgres:\n  - {{name: p, dsn: 'postgresql://u@127.0.0.1/db', custom_queries_file: {fifo}}}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert err.value.problems == [
        f"postgres[0].custom_queries_file: cannot read '{fifo}': it is a named pipe, not a regular file"
    ]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "oversized"])
def test_the_config_file_must_be_a_regular_file_of_at_most_10_mib(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "config.yml"
        os.mkfifo(path)
        expected = f"{path}: 1 problem\n  - cannot read config file: it is a named pipe, not a regular file"
    elif kind == "dev-zero":
        path = Path("/dev/zero")
        expected = "/dev/zero: 1 problem\n  - cannot read config file: it is a character device, not a regular file"
    else:
        path = tmp_path / "config.yml"
        path.write_bytes(b"# padding\n" * (1024 * 1024 + 1))
        expected = f"cannot read config file: larger than 10 MiB ({10 * 1024 * 1024 + 10} bytes)"
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert_clean_failure(check_config(path), expected)


# --------------------------------------------------------------------------- durations

# every Duration key (a sample of sections), with where it sits
DURATION_KEYS = {
    "global.scrape_timeout": "global:\n  scrape_timeout: {v}\n",
    "redis[0].scrape_timeout": "redis:\n  - {{name: a, url: 'redis://h/0', scrape_timeout: {v}}}\n",
    "redis[0].key_pattern_max_duration": "redis:\n  - {{name: a, url: 'redis://h/0', key_pattern_max_duration: {v}}}\n",
    "redis[0].key_pattern_refresh_interval": (
        "redis:\n  - {{name: a, url: 'redis://h/0', key_pattern_refresh_interval: {v}}}\n"
    ),
    "postgres[0].statement_timeout": "postgres:\n  - {{name: p, dsn: 'postgresql://u@h/db', statement_timeout: {v}}}\n",
    "postgres[0].lock_timeout": "postgres:\n  - {{name: p, dsn: 'postgresql://u@h/db', lock_timeout: {v}}}\n",
    "lago[0].refresh_interval": (
        "lago:\n  - {{name: l, url: 'https://lago.example', api_key: k, refresh_interval: {v}}}\n"
    ),
    "dns_resolver.timeout": "dns_resolver:\n  timeout: {v}\n",
    "dns_resolver.cache_max_ttl": "dns_resolver:\n  cache_max_ttl: {v}\n",
}
TIMEOUTS = {k for k in DURATION_KEYS if k.endswith(("timeout", "max_duration"))}
HUGE = "9" * 400 + "s"  # float("9" * 400) is inf


@pytest.mark.parametrize("key", sorted(DURATION_KEYS))
@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (".nan", "expected a duration such as 30s or 1m30s, got a number (nan), which is not a finite number"),
        (".inf", "expected a duration such as 30s or 1m30s, got a number (inf), which is not a finite number"),
        ("-.inf", "expected a duration such as 30s or 1m30s, got a number (-inf), which is not a finite number"),
        (HUGE, "expected a duration such as 30s or 1m30s, got '" + "9" * 40 + "'...: too large"),
        ("31d", "must be at most"),
    ],
)
def test_non_finite_and_huge_durations_are_refused(key: str, written: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(DURATION_KEYS[key].format(v=written))
    (found,) = err.value.problems
    assert found.startswith(f"{key}: {problem}"), found


@pytest.mark.parametrize("key", sorted(DURATION_KEYS))
def test_duration_bounds_per_kind_of_key(key: str) -> None:
    def problems(written: str) -> list[str]:
        try:
            parse_config(DURATION_KEYS[key].format(v=written))
        except ConfigError as exc:
            return exc.problems
        return []

    if key in TIMEOUTS:
        assert problems("1d") == []
        assert problems("1d1ms") == [f"{key}: must be at most 1d, got 1d1ms"]
        assert problems("1ms") == []
        if key.endswith("lock_timeout"):  # PostgreSQL's 0 turns the lock timeout off
            assert problems("0") == []
        else:
            assert problems("0") == [f"{key}: must be at least 1ms, got 0s"]
            assert problems("0.5ms") == [f"{key}: must be at least 1ms, got 0.0005s"]
    else:
        assert problems("0") == []
        assert problems("30d") == []
        assert problems("30d1s") == [f"{key}: must be at most 30d, got 30d1s"]


def test_check_config_reports_a_nan_scrape_timeout(tmp_path: Path) -> None:
    pg = "postgres:\n  - {name: p, dsn: 'postgresql://u@h/db', statement_timeout: .inf}\n"
    path = write_config(tmp_path, "global:\n  scrape_timeout: .nan\n" + pg)
    assert_clean_failure(
        check_config(path),
        "global.scrape_timeout: expected a duration such as 30s or 1m30s, got a number (nan)",
        "postgres[0].statement_timeout: expected a duration such as 30s or 1m30s, got a number (inf)",
    )


# --------------------------------------------------------------------------- /-/reload


@asynccontextmanager
async def file_exporter(path: Path, load: Callable[[], Config] | None = None) -> AsyncIterator[TestClient]:
    """The real app on loopback, reloading from ``path`` as --config.file does."""
    async with serving(Engine(load_config(path)), load or (lambda: load_config(path))) as client:
        yield client


def reload_attacks(tmp_path: Path) -> dict[str, tuple[str, str]]:
    fifo = tmp_path / "fifo-password"
    os.mkfifo(fifo)
    attacks = {name: (text, expected) for name, (text, expected) in HOSTILE_YAML.items()}
    attacks["fifo-secret"] = (
        f"redis:\n  - {{name: x, url: 'redis://127.0.0.1:1/0', password_file: {fifo}}}\n",
        "it is a named pipe, not a regular file",
    )
    attacks["dev-zero-secret"] = (
        "redis:\n  - {name: x, url: 'redis://127.0.0.1:1/0', password_file: /dev/zero}\n",
        "it is a character device, not a regular file",
    )
    attacks["nan-timeout"] = ("global:\n  scrape_timeout: .nan\n", "global.scrape_timeout: expected a duration")
    attacks["inf-timeout"] = (f"global:\n  scrape_timeout: {HUGE}\n", "global.scrape_timeout: expected a duration")
    return attacks


async def test_reload_refuses_every_attack_and_keeps_serving(tmp_path: Path, redis_server: RedisServer) -> None:
    good = {"redis": [{"name": "first", "url": redis_server.url}]}
    path = write_config(tmp_path, good)
    async with file_exporter(path) as http:
        for name, (text, expected) in reload_attacks(tmp_path).items():
            path.write_text(text)
            resp = await asyncio.wait_for(http.post("/-/reload"), timeout=30)
            body = await resp.text()
            assert resp.status == 500, (name, body)
            assert expected in body, (name, body)
            assert "Traceback" not in body
            assert (await http.get("/-/healthy")).status == 200
            metrics = await scrape(http)
            assert value(metrics, "stack_exporter_config_last_reload_successful") == 0, name
            assert value(metrics, "redis_up", target="first") == 1, name  # the old config serves on

            write_config(tmp_path, good)
            resp = await http.post("/-/reload")
            assert resp.status == 200, await resp.text()
            assert value(await scrape(http), "stack_exporter_config_last_reload_successful") == 1


async def test_any_exception_while_loading_fails_the_reload_cleanly(tmp_path: Path) -> None:
    path = write_config(tmp_path, "{}")

    def broken() -> Config:
        raise RuntimeError("the loader tripped")

    async with file_exporter(path, broken) as http:
        resp = await http.post("/-/reload")
        body = await resp.text()
        metrics = await scrape(http)
    assert resp.status == 500
    assert "RuntimeError: the loader tripped" in body
    assert value(metrics, "stack_exporter_config_last_reload_successful") == 0


async def test_the_event_loop_answers_while_a_large_config_loads(tmp_path: Path) -> None:
    # legal and large: a postgres target listing 10,000 databases (about 200 KB of YAML)
    names = "".join(f"      - db_{i:05d}\n" for i in range(10_000))
    big = f"postgres:\n  - name: big\n    dsn: postgresql://u@127.0.0.1:1/db\n    databases:\n{names}"
    path = write_config(tmp_path, "{}")
    window: list[float] = []

    def timed_load() -> Config:
        window.append(time.monotonic())
        try:
            return load_config(path)
        finally:
            window.append(time.monotonic())

    async with file_exporter(path, timed_load) as http:
        path.write_text(big)
        reload = asyncio.create_task(http.post("/-/reload"))
        answered_inside = 0
        while not reload.done():
            sent = time.monotonic()
            resp = await http.get("/-/healthy")
            assert resp.status == 200
            if len(window) == 1 and sent > window[0]:
                answered_inside += 1  # sent and answered while the config was loading
            await asyncio.sleep(0.005)
        resp = await reload
        assert resp.status == 200, await resp.text()
    # a load on the event loop lets no request in until it is done
    assert answered_inside >= 3, (answered_inside, window)


# --------------------------------------------------------------------------- SIGHUP


@contextmanager
def exporter_process(tmp_path: Path, config_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log_path = tmp_path / "exporter.log"
    argv = [sys.executable, "-m", "exporter", "--config.file", str(config_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*argv, "--web.listen-address", f"127.0.0.1:{port}"], stdout=log, stderr=log, env=env, cwd=ROOT
        )
    try:
        wait_until(lambda: proc.poll() is None and port_is_open("127.0.0.1", port), timeout=20)
        yield proc, port, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return str(resp.read().decode())


def reload_ok(port: int) -> float | None:
    try:
        return value(get(port, "/metrics"), "stack_exporter_config_last_reload_successful")
    except (OSError, urllib.error.URLError):
        return None


def test_sighup_with_a_bad_config_logs_one_clean_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "global:\n  scrape_timeout: 5s\n")
    bad = ["? [a, b]\n: 1\n", "x: " + "[" * 5000 + "]" * 5000 + "\n", "x: " + "1" * 5001 + "\n", BILLION_LAUGHS]
    with exporter_process(tmp_path, path) as (proc, port, log_path):
        for text in bad:
            path.write_text(text)
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: reload_ok(port) == 0, timeout=30)
            assert get(port, "/-/healthy") == "Healthy\n"
            write_config(tmp_path, "global:\n  scrape_timeout: 5s\n")
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: reload_ok(port) == 1, timeout=30)
    log = log_path.read_text()
    assert proc.returncode == 0, log
    assert log.count("config reload failed") == len(bad), log
    assert "Task exception was never retrieved" not in log
    assert "Traceback" not in log
    assert "a key must be a plain value such as a name, not a list" in log
    assert "nested more than 100 levels deep" in log
