"""The HTTP surface: endpoints, content negotiation, reload, web config, secrets, the CLI process."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import redis

from exporter.config import parse_config
from exporter.log import JSONFormatter, LogfmtFormatter
from exporter.redact import Redactor
from peers.process import free_port, port_is_open, wait_until
from tests.helpers import (
    ConfigSource,
    ExporterProcess,
    check_config,
    exporter,
    promtool_check,
    scrape,
    self_signed_cert,
    value,
    values,
    write_config,
)
from tests.servers.redis import REDIS_PASSWORD, RedisServer

pytestmark = pytest.mark.timeout(60)

# where the built-in defaults look for Redis
LOCAL_REDIS_PORT = 6379


def redis_targets(**urls: str) -> dict[str, Any]:
    """A config with one redis target per name=url."""
    return {"redis": [{"name": name, "url": url} for name, url in urls.items()]}


async def test_health_ready_and_landing_page(redis_with_password: RedisServer) -> None:
    url = redis_with_password.url.replace("redis://", f"redis://:{REDIS_PASSWORD}@")
    async with exporter(redis_targets(secured=url)) as http:
        assert (await http.get("/-/healthy")).status == 200
        assert (await http.get("/-/ready")).status == 200
        resp = await http.get("/")
        page = await resp.text()
        metrics = await scrape(http)
    assert resp.status == 200
    assert "secured" in page
    assert f"127.0.0.1:{redis_with_password.port}" in page
    assert "/metrics" in page
    assert 'href="/probe?target=secured&amp;collector=redis"' in page
    assert REDIS_PASSWORD not in page
    assert REDIS_PASSWORD not in metrics
    assert value(metrics, "redis_up", target="secured") == 1


async def test_probe_returns_one_configured_target(redis_server: RedisServer, redis_fresh: RedisServer) -> None:
    async with exporter(redis_targets(alpha=redis_server.url, beta=redis_fresh.url)) as http:
        text = await scrape(http, "/probe?target=beta")
        unknown = await http.get("/probe?target=gamma")
        missing = await http.get("/probe")
        unknown_text = await unknown.text()
        # an address in the URL is never used: it is just an unknown name
        address = await http.get(f"/probe?target=127.0.0.1:{redis_server.port}")
        wrong_kind = await http.get("/probe?target=beta&collector=postgresql")
    assert {s.labels["target"] for s in values(text, "redis_up")} == {"beta"}
    assert value(text, "stack_exporter_collector_success", target="beta") == 1
    assert value(text, "stack_exporter_build_info") is None
    assert unknown.status == 400
    assert "unknown target 'gamma'" in unknown_text
    assert "alpha" in unknown_text
    assert missing.status == 400
    assert address.status == 400
    assert wrong_kind.status == 400


async def test_openmetrics_and_gzip_on_request(redis_server: RedisServer) -> None:
    async with exporter(redis_targets(r=redis_server.url)) as http:
        om = await http.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0"})
        om_text = await om.text()
        gz = await http.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        raw = await gz.read()
        plain = await http.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om_text.endswith("# EOF\n")
    assert gz.headers["Content-Encoding"] == "gzip"
    assert b"redis_up" in gzip.decompress(raw)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Content-Encoding" not in plain.headers


async def test_failing_target_never_blanks_the_scrape(redis_server: RedisServer) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    config = redis_targets(dead=dead, alive=redis_server.url)
    async with exporter(config) as http:
        resp = await http.get("/metrics")
        text = await resp.text()
    assert resp.status == 200
    assert value(text, "redis_up", target="dead") == 0
    assert value(text, "stack_exporter_collector_success", target="dead") == 0
    assert value(text, "redis_up", target="alive") == 1
    assert promtool_check(text) == ""


# --------------------------------------------------------------------------- the real process


@contextmanager
def running(tmp_path: Path, config: ConfigSource, *args: str, **start: object) -> Iterator[ExporterProcess]:
    proc = ExporterProcess(tmp_path, config, *args)
    try:
        proc.start(**start)  # type: ignore[arg-type]
        yield proc
    finally:
        proc.stop()


def test_reload_keeps_the_old_config_when_the_new_one_is_bad(
    tmp_path: Path, redis_server: RedisServer, redis_fresh: RedisServer
) -> None:
    good = redis_targets(first=redis_server.url)
    with running(tmp_path, good) as exp:
        assert value(exp.get("/metrics"), "stack_exporter_config_last_reload_successful") == 1

        exp.config_path.write_text("redis:\n  - name: first\n    url: http://nope\n    bogus: 1\n")
        status, body = exp.post("/-/reload")
        assert status == 500
        assert "redis[0].url" in body and "redis[0].bogus: unknown key" in body
        text = exp.get("/metrics")
        assert value(text, "stack_exporter_config_last_reload_successful") == 0
        assert value(text, "redis_up", target="first") == 1  # still serving the old config

        write_config(tmp_path, redis_targets(first=redis_server.url, second=redis_fresh.url))
        assert exp.post("/-/reload")[0] == 200
        text = exp.get("/metrics")
        assert value(text, "stack_exporter_config_last_reload_successful") == 1
        assert value(text, "redis_up", target="second") == 1

        # SIGHUP does the same as POST /-/reload
        exp.config_path.write_text("redis: nope\n")
        assert exp.proc is not None
        exp.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: value(exp.get("/metrics"), "stack_exporter_config_last_reload_successful") == 0, timeout=10)
        assert value(exp.get("/metrics"), "redis_up", target="second") == 1
        write_config(tmp_path, good)
        exp.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: value(exp.get("/metrics"), "stack_exporter_config_last_reload_successful") == 1, timeout=10)
        assert value(exp.get("/metrics"), "redis_up", target="second") is None
    assert "config reload failed" in exp.log()
    assert "Traceback" not in exp.log()


def test_secrets_never_reach_metrics_pages_or_logs(tmp_path: Path, redis_with_password: RedisServer) -> None:
    wrong = "WRONG-pw-in-url-5be1"
    secret_file = tmp_path / "redis-password"
    secret_file.write_text(REDIS_PASSWORD + "\n")
    # raw text: the ${...} reference is expanded by the exporter, not by the test
    config = f"""
    redis:
      - name: via-file
        url: {redis_with_password.url}
        password_file: {secret_file}
      - name: via-url
        url: redis://user:{wrong}@127.0.0.1:{redis_with_password.port}/0
      - name: via-env
        url: {redis_with_password.url}
        password: ${{TEST_REDIS_PASSWORD}}
    """
    os.environ["TEST_REDIS_PASSWORD"] = REDIS_PASSWORD
    try:
        with running(tmp_path, config, "--log.level", "debug") as exp:
            metrics = exp.get("/metrics")
            landing = exp.get("/")
            probe = exp.get("/probe?target=via-url")
    finally:
        del os.environ["TEST_REDIS_PASSWORD"]
    assert value(metrics, "redis_up", target="via-file") == 1
    assert value(metrics, "redis_up", target="via-env") == 1
    assert value(metrics, "redis_up", target="via-url") == 0
    log = exp.log()
    assert "via-url" in log  # the failure was logged ...
    for blob in (metrics, landing, probe, log):
        assert REDIS_PASSWORD not in blob  # ... without either secret
        assert wrong not in blob


@pytest.mark.parametrize("password", ["x", "red"])
def test_a_short_password_leaves_the_words_around_it_whole(tmp_path: Path, password: str) -> None:
    # "x" is in "exporter", "red" in "redis": substring masking of a short secret
    # garbled every line and page; now only its own appearances are masked.
    with RedisServer(tmp_path / "r", password=password) as server:
        dead = free_port()
        config = {
            "redis": [
                {"name": "in-url", "url": f"redis://:{password}@127.0.0.1:{server.port}/0"},
                {"name": "in-field", "url": server.url, "password": password},
                {"name": "down", "url": f"redis://:{password}@127.0.0.1:{dead}/0"},
            ]
        }
        with running(tmp_path, config, "--log.level", "debug") as exp:
            metrics = exp.get("/metrics")
            landing = exp.get("/")
    assert value(metrics, "redis_up", target="in-url") == 1
    assert value(metrics, "redis_up", target="in-field") == 1
    assert value(metrics, "redis_up", target="down") == 0
    log = exp.log()
    assert "collection failed" in log and "target=down" in log
    assert "logger=exporter.scrape" in log and "collector=redis" in log
    assert "<td>redis</td>" in landing
    for blob in (metrics, landing, log):
        assert not re.search(r"\w<redacted>|<redacted>\w", blob), blob
        assert f":{password}@" not in blob


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
@pytest.mark.parametrize("password", ["x", "red"])
def test_log_lines_mask_passwords_by_field_and_url(password: str, fmt: str) -> None:
    long_key = "api-key-long-enough-0123"
    config = parse_config(
        f"redis:\n  - {{name: r, url: 'redis://:{password}@127.0.0.1:6379/0'}}\n"
        f"lago:\n  - {{name: l, url: 'https://lago.example', api_key: {long_key}}}\n"
    )
    redactor = Redactor(config.secrets())
    formatter = JSONFormatter(redactor) if fmt == "json" else LogfmtFormatter(redactor)
    record = logging.LogRecord("exporter.collectors.redis", logging.WARNING, __file__, 1, "redis said no", (), None)
    record.kv = {
        "target": "r",
        "err": f"connecting to redis://default:{password}@127.0.0.1:6379/0 with password={password} failed",
        "password": password,
        "api_key": long_key,
        "detail": f"exporter sent {long_key} to lago",
    }
    line = formatter.format(record)
    fields = json.loads(line) if fmt == "json" else dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
    unquoted = {k: v.strip('"') if fmt == "logfmt" else v for k, v in fields.items()}
    assert unquoted["logger"] == "exporter.collectors.redis"
    assert unquoted["msg"] == "redis said no"
    assert unquoted["err"] == (
        "connecting to redis://default:<redacted>@127.0.0.1:6379/0 with password=<redacted> failed"
    )
    assert unquoted["password"] == "<redacted>"
    assert unquoted["api_key"] == "<redacted>"
    assert unquoted["detail"] == "exporter sent <redacted> to lago"


def test_json_logs(tmp_path: Path) -> None:
    import json

    dead = f"redis://127.0.0.1:{free_port()}/0"
    with running(tmp_path, redis_targets(dead=dead), "--log.format", "json") as exp:
        exp.get("/metrics")
    lines = [json.loads(line) for line in exp.log().splitlines() if line.strip()]
    failed = [entry for entry in lines if entry["msg"] == "collection failed"]
    assert failed, lines
    assert failed[0]["target"] == "dead" and failed[0]["level"] == "warn"


def test_basic_auth_with_bcrypt(tmp_path: Path, redis_server: RedisServer) -> None:
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    config = redis_targets(r=redis_server.url)
    with running(tmp_path, config, "--web.config.file", str(web)) as exp:
        with pytest.raises(urllib.error.HTTPError) as err:
            exp.get("/metrics")
        err.value.close()
        assert err.value.code == 401
        import base64

        bad = base64.b64encode(b"prometheus:nope").decode()
        with pytest.raises(urllib.error.HTTPError) as err:
            exp.get("/metrics", headers={"Authorization": f"Basic {bad}"})
        err.value.close()
        assert err.value.code == 401
        good = base64.b64encode(b"prometheus:scrape-pass").decode()
        text = exp.get("/metrics", headers={"Authorization": f"Basic {good}"})
    assert value(text, "redis_up", target="r") == 1


def test_tls_with_a_generated_certificate(tmp_path: Path, redis_server: RedisServer) -> None:
    cert, key = self_signed_cert(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n  min_version: TLS12\n")
    ctx = ssl.create_default_context(cafile=str(cert))
    config = redis_targets(r=redis_server.url)
    exp = ExporterProcess(tmp_path, config, "--web.config.file", str(web))
    exp.scheme = "https"
    try:
        exp.start(context=ctx)
        text = exp.get("/metrics", context=ctx)
    finally:
        exp.stop()
    assert value(text, "redis_up", target="r") == 1


def test_bad_web_config_is_reported_by_check_config(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n  min_version: TLS99\n"
        "basic_auth_users:\n  admin: plaintext\nextra: 1\n"
    )
    proc = check_config(write_config(tmp_path, {"redis": []}, "c.yml"), "--web.config.file", str(web))
    assert proc.returncode == 1
    assert "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13" in proc.stderr
    assert "basic_auth_users.admin: must be a bcrypt hash" in proc.stderr
    assert "extra: unknown key" in proc.stderr


def local_redis(tmp_path: Path) -> AbstractContextManager[object]:
    """A Redis on the port the built-in defaults name: the machine's own, or one started here."""
    if not port_is_open("127.0.0.1", LOCAL_REDIS_PORT):
        return RedisServer(tmp_path / "local-redis", port=LOCAL_REDIS_PORT)
    try:
        redis.Redis(port=LOCAL_REDIS_PORT, socket_timeout=2).ping()
    except redis.RedisError as err:
        pytest.skip(f"127.0.0.1:{LOCAL_REDIS_PORT} is taken by something the defaults cannot scrape: {err}")
    return nullcontext()


def test_built_in_defaults_scrape_the_local_redis(tmp_path: Path) -> None:
    """`make run` path: no --config.file means the machine's own Redis (and PostgreSQL)."""
    with local_redis(tmp_path):
        text = scrape_built_in_defaults(tmp_path)
    targets = {(s.labels["collector"], s.labels["target"]) for s in values(text, "stack_exporter_collector_success")}
    assert ("redis", "local") in targets
    assert value(text, "redis_up", target="local") == 1


def scrape_built_in_defaults(tmp_path: Path) -> str:
    port = free_port()
    with (tmp_path / "log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}"], stdout=log, stderr=log
        )
    try:

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=15) as resp:
                return str(resp.read().decode())

        def up() -> bool:
            try:
                metrics()
            except OSError:
                return False
            return True

        wait_until(up, timeout=15)
        start = time.monotonic()
        text = metrics()
        assert time.monotonic() - start < 11  # answered within the default 10 s deadline
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return text
