"""Scale-out on Prometheus's own machinery: the /sd endpoint and hashmod sharding (docs/scale-out.md).

The endpoint's answer is checked through the real app (every configured target once, the
labels, the address it names, auth, reload).  Then the sharding recipe of the docs runs
for real: two exporter replicas with the same config and basic auth, and one Prometheus
with a job per replica, each discovering every target from its replica's /sd and keeping
its own half by ``hashmod`` on the target name.  Every target must be scraped exactly once,
by the replica its hash names, and killing one replica must take down only its targets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from exporter.config import parse_config
from exporter.scrape import Engine
from exporter.sd import AddressError, parse_external_url
from exporter.server import make_app, make_reloader
from exporter.webconfig import WebConfig, WebSettings
from peers.alerting import Prometheus
from peers.process import LOOPBACK, STACK_EXPORTER, Process, free_port, wait_until
from tests.helpers import ROOT, check_config, config_from, config_text, exporter, serving, value, write_config
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(90)

USER = "prometheus"
PASSWORD = "sd-shard-pass-3b7e"
# cost 4: the lowest bcrypt allows; the tests check who gets in, not bcrypt's price
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}

# Prometheus's http_sd accepts only this Content-Type (discovery/http/http.go, matchContentType)
SD_CONTENT_TYPE = r"application/json; charset=utf-8"


def hashmod(value: str, modulus: int) -> int:
    """Prometheus's ``hashmod`` relabel action: the low 8 bytes of the MD5, big-endian, mod N."""
    return int.from_bytes(hashlib.md5(value.encode(), usedforsecurity=False).digest()[8:], "big") % modulus


def groups_by_target(groups: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["labels"]["__param_collector"], g["labels"]["__param_target"]): g for g in groups}


# --- the endpoint ---------------------------------------------------------------------------


async def test_sd_lists_every_configured_target_once_with_its_labels(redis_server: RedisServer) -> None:
    config = {
        "redis": [{"name": "cache", "url": redis_server.url}, {"name": "sessions", "url": redis_server.url}],
        # the same name in another section: told apart by __param_collector and instance
        "http_probes": [{"name": "cache", "url": f"http://{LOOPBACK}:{free_port()}/health"}],
    }
    async with exporter(config) as http:
        resp = await http.get("/sd")
        groups = await resp.json()
        host = f"{http.host}:{http.port}"
        # each group, as Prometheus would turn it into a scrape URL, is one target of /probe
        probes = []
        for group in groups:
            labels = group["labels"]
            query = urllib.parse.urlencode(
                {k.removeprefix("__param_"): v for k, v in labels.items() if k.startswith("__param_")}
            )
            probe = await http.get(f"{labels['__metrics_path__']}?{query}")
            probes.append((labels["__param_collector"], labels["__param_target"], probe.status, await probe.text()))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == SD_CONTENT_TYPE
    assert [(g["labels"]["__param_collector"], g["labels"]["__param_target"]) for g in groups] == [
        ("redis", "cache"),
        ("redis", "sessions"),
        ("http_probes", "cache"),
    ]
    assert groups[0] == {
        "targets": [host],
        "labels": {
            "__metrics_path__": "/probe",
            "__scheme__": "http",
            "__param_target": "cache",
            "__param_collector": "redis",
            "instance": "redis/cache",
            "__meta_stack_exporter_collector": "redis",
            "__meta_stack_exporter_target": "cache",
        },
    }
    assert len({g["labels"]["instance"] for g in groups}) == 3
    for kind, name, status, text in probes:
        assert status == 200, text
        up = "redis_up" if kind == "redis" else "probe_success"
        assert value(text, up, target=name) is not None, text
    # addresses never leave through /sd: only names and source keys
    assert str(redis_server.port) not in json.dumps(groups)


async def test_sd_follows_reload_and_disabled_collectors(redis_server: RedisServer) -> None:
    first = {"redis": [{"name": "a", "url": redis_server.url}]}
    current: dict[str, Any] = dict(first)
    engine = Engine(config_from(first))
    async with serving(engine, lambda: config_from(current)) as http:
        before = await (await http.get("/sd")).json()
        current = {"redis": [{"name": "b", "url": redis_server.url}, {"name": "c", "url": redis_server.url}]}
        assert (await http.post("/-/reload")).status == 200
        after = await (await http.get("/sd")).json()
    assert [g["labels"]["__param_target"] for g in before] == ["a"]
    assert [g["labels"]["__param_target"] for g in after] == ["b", "c"]

    # --no-collector.http_probes: its targets are not served, so not listed
    both = config_text(
        {"redis": [{"name": "r", "url": redis_server.url}], "http_probes": [{"name": "p", "url": "http://x.invalid/"}]}
    )
    async with serving(Engine(parse_config(both, enabled=["redis"]))) as http:
        listed = await (await http.get("/sd")).json()
    assert list(groups_by_target(listed)) == [("redis", "r")]


async def test_sd_address_from_the_host_header_or_the_external_url() -> None:
    config = {"redis": [{"name": "cache", "url": "redis://127.0.0.1:1/0"}]}
    async with exporter(config) as http:
        # the address Prometheus used: a Service name, a pod IP, a proxy
        named = await (await http.get("/sd", headers={"Host": "exporter-1.exporter.monitoring.svc:9847"})).json()
        ipv6 = await (await http.get("/sd", headers={"Host": "[fd00::1]:9847"})).json()
        bad = await http.get("/sd", headers={"Host": "evil host/../x"})
        bad_text = await bad.text()
        bad_port = await http.get("/sd", headers={"Host": "exporter:70000"})
    assert named[0]["targets"] == ["exporter-1.exporter.monitoring.svc:9847"]
    assert ipv6[0]["targets"] == ["[fd00::1]:9847"]
    assert bad.status == 400 and "Host header" in bad_text and "--web.external-url" not in bad_text
    assert bad_port.status == 400

    engine = Engine(config_from(config))
    external = parse_external_url("https://metrics.example.com:8443/stack-exporter/")
    app = make_app(engine, make_reloader(engine, lambda: engine.config), external_url=external)
    async with TestClient(TestServer(app, host=LOOPBACK)) as http:
        groups = await (await http.get("/sd", headers={"Host": "ignored:1"})).json()
        # no Host header at all (HTTP/1.0): the external URL still answers
        hostless = await raw_get(http.port, "/sd")
    labels = groups[0]["labels"]
    assert groups[0]["targets"] == ["metrics.example.com:8443"]
    assert labels["__scheme__"] == "https"
    assert labels["__metrics_path__"] == "/stack-exporter/probe"
    assert hostless.split(b"\r\n", 1)[0].endswith(b" 200 OK"), hostless[:200]

    async with exporter(config) as http:
        hostless = await raw_get(http.port, "/sd")
    assert hostless.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), hostless[:200]
    assert b"no Host header" in hostless and b"--web.external-url" in hostless


async def raw_get(port: int | None, path: str) -> bytes:
    """An HTTP/1.0 GET with no Host header (clients always add one), and the whole answer."""
    assert port is not None
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return data


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("exporter:9847", "expected http://HOST:PORT"),
        ("ftp://exporter:9847", "expected http://HOST:PORT"),
        ("http://user:pw@exporter:9847", "no credentials"),
        ("http://exporter:9847/?x=1", "no credentials, query or fragment"),
        ("http://exporter:99999", "is not HOST or HOST:PORT"),
        ("http:///probe", "is not HOST or HOST:PORT"),
    ],
)
def test_external_url_is_checked(url: str, problem: str) -> None:
    with pytest.raises(AddressError, match=r"invalid --web\.external-url") as err:
        parse_external_url(url)
    assert problem in str(err.value)
    assert "pw" not in str(err.value) or "user:pw" in url


def test_external_url_flag_is_validated_with_the_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"redis": [{"name": "cache", "url": "redis://127.0.0.1:6379/0"}]})
    bad = check_config(path, "--web.external-url", "exporter:9847")
    good = check_config(path, "--web.external-url", "http://exporter-0.exporter:9847")
    assert bad.returncode == 1 and "invalid --web.external-url 'exporter:9847'" in bad.stderr
    assert good.returncode == 0, good.stderr


async def test_sd_is_behind_the_same_basic_auth_as_metrics() -> None:
    settings = WebSettings(WebConfig(basic_auth_users={USER: HASH}), Path.cwd(), "<test>")
    engine = Engine(config_from({"redis": [{"name": "cache", "url": "redis://127.0.0.1:1/0"}]}))
    app = make_app(engine, make_reloader(engine, lambda: engine.config), settings)
    async with TestClient(TestServer(app, host=LOOPBACK)) as http:
        anonymous = await http.get("/sd")
        wrong = await http.get("/sd", headers={"Authorization": "Basic " + base64.b64encode(b"x:y").decode()})
        good = await http.get("/sd", headers=AUTH)
        groups = await good.json()
    assert anonymous.status == 401 and wrong.status == 401
    assert good.status == 200 and len(groups) == 1


async def test_metrics_targets_none_serves_the_exporters_own_series_without_collecting(
    redis_server: RedisServer,
) -> None:
    """What a per-target set-up scrapes beside /probe: no target is asked anything."""

    def info_calls() -> int:
        return int(redis_server.info("commandstats").get("cmdstat_info", {}).get("calls", 0))

    async with exporter({"redis": [{"name": "cache", "url": redis_server.url}]}) as http:
        before = info_calls()
        own = await http.get("/metrics", params={"targets": "none"})
        text = await own.text()
        assert info_calls() == before + 1  # only the INFO that read `before`: the collector did not run
        everything = await (await http.get("/metrics")).text()
        wrong = await http.get("/metrics", params={"targets": "all"})
        problem = await wrong.text()
    assert own.status == 200
    assert value(text, "stack_exporter_build_info") is not None
    assert value(text, "stack_exporter_config_last_reload_successful") == 1
    assert value(text, "redis_up", target="cache") is None
    assert value(everything, "redis_up", target="cache") == 1
    assert wrong.status == 400 and "targets='all'" in problem


# --- sharding with a real Prometheus ---------------------------------------------------------

SHARDS = 2
REDIS_TARGETS = [f"shard-test-{i}" for i in range(8)]
# an http probe with the same name as a Redis target: /sd tells them apart by collector
PROBE_TARGET = REDIS_TARGETS[0]
DEADLINE = 30.0


@dataclass
class Replica:
    """One stack-exporter process with basic auth, as a StatefulSet pod or a systemd unit runs it."""

    index: int
    port: int
    process: Process

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(f"http://{self.address}{path}", headers=AUTH)
        with urllib.request.urlopen(request, timeout=5) as response:
            body: bytes = response.read()
        return body

    def ready(self) -> bool:
        self.process.check_running()
        try:
            return self.get("/-/ready") == b"Ready\n"
        except (OSError, urllib.error.URLError):
            return False


def shard_job(replica: Replica) -> dict[str, Any]:
    """The job of docs/scale-out.md for one replica: discover from it, keep its hash's share."""
    auth = {"username": USER, "password": PASSWORD}
    return {
        "job_name": f"stack-probe-shard-{replica.index}",
        "basic_auth": auth,
        "http_sd_configs": [{"url": f"http://{replica.address}/sd", "refresh_interval": "2s", "basic_auth": auth}],
        "relabel_configs": [
            {
                "source_labels": ["__param_target"],
                "modulus": SHARDS,
                "target_label": "__tmp_shard",
                "action": "hashmod",
            },
            {"source_labels": ["__tmp_shard"], "regex": str(replica.index), "action": "keep"},
            # one job name for every shard: series keep their identity when a target moves
            {"target_label": "job", "replacement": "stack-probe"},
        ],
    }


@pytest.fixture
def replicas(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[list[Replica], int]]:
    prometheus_port = free_port()
    config = {
        "global": {"scrape_timeout": "5s"},
        "redis": [{"name": name, "url": redis_server.url} for name in REDIS_TARGETS],
        "http_probes": [{"name": PROBE_TARGET, "url": f"http://{LOOPBACK}:{prometheus_port}/-/healthy"}],
    }
    config_path = write_config(tmp_path, config)
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  {USER}: '{HASH}'\n")
    started: list[Replica] = []
    try:
        for index in range(SHARDS):
            port = free_port()
            process = Process(
                [
                    STACK_EXPORTER,
                    f"--config.file={config_path}",
                    f"--web.listen-address={LOOPBACK}:{port}",
                    f"--web.config.file={web}",
                    # Prometheus scrapes every second with a 1 s timeout: leave Redis 0.9 s of it
                    "--scrape.timeout-offset=0.1",
                ],
                tmp_path / f"replica-{index}.log",
            )
            process.start()
            started.append(Replica(index, port, process))
        for replica in started:
            wait_until(replica.ready, 20, interval=0.05, message=f"replica {replica.index} ready")
        yield started, prometheus_port
    finally:
        for replica in started:
            replica.process.stop()


def active_targets(prometheus: Prometheus) -> list[dict[str, Any]]:
    url = f"{prometheus.url}/api/v1/targets?state=active"
    with urllib.request.urlopen(url, timeout=5) as response:
        found: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
    return found


def health_by_instance(prometheus: Prometheus) -> dict[str, str]:
    return {t["labels"]["instance"]: t["health"] for t in active_targets(prometheus)}


def test_two_replicas_share_the_targets_by_hashmod(tmp_path: Path, replicas: tuple[list[Replica], int]) -> None:
    started = time.monotonic()
    exporters, prometheus_port = replicas
    expected = {f"redis/{name}": hashmod(name, SHARDS) for name in REDIS_TARGETS}
    expected[f"http_probes/{PROBE_TARGET}"] = hashmod(PROBE_TARGET, SHARDS)
    assert set(expected.values()) == set(range(SHARDS)), "pick names that land on every shard"

    # every replica lists every target: the split is Prometheus's
    for replica in exporters:
        assert len(json.loads(replica.get("/sd"))) == len(expected)

    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [shard_job(replica) for replica in exporters],
    }
    with Prometheus(tmp_path, config, {}, port=prometheus_port) as prometheus:

        def all_up() -> bool:
            prometheus.process.check_running()  # type: ignore[union-attr]
            health = health_by_instance(prometheus)
            # and the first scrape of each target is in: the series below are there
            return health == dict.fromkeys(expected, "up") and len(prometheus.query("redis_up")) == len(REDIS_TARGETS)

        wait_until(all_up, DEADLINE, interval=0.2, message="every target scraped and up")
        discovered = time.monotonic() - started

        # exactly one active target per configured target, at the replica its hash names
        targets = active_targets(prometheus)
        assert len(targets) == len(expected)
        for target in targets:
            instance = target["labels"]["instance"]
            shard = expected[instance]
            assert target["scrapePool"] == f"stack-probe-shard-{shard}"
            assert target["labels"]["job"] == "stack-probe"
            url = urllib.parse.urlsplit(target["scrapeUrl"])
            assert url.netloc == exporters[shard].address, target
            assert url.path == "/probe"
            kind, _, name = instance.partition("/")
            assert urllib.parse.parse_qs(url.query) == {"target": [name], "collector": [kind]}

        # each target's series arrive once (never from both replicas), under its own instance
        for name in REDIS_TARGETS:
            series = prometheus.query(f'redis_up{{target="{name}"}}')
            assert len(series) == 1, series
            assert series[0]["metric"]["instance"] == f"redis/{name}"
            assert series[0]["value"][1] == "1"
        probe = prometheus.query(f'probe_success{{target="{PROBE_TARGET}"}}')
        assert [s["metric"]["instance"] for s in probe] == [f"http_probes/{PROBE_TARGET}"]
        # the exporter's own collector label is not renamed: /sd sets no plain label of that name
        assert prometheus.query('count(stack_exporter_collector_success{exported_collector!=""})') == []
        assert len(prometheus.query('stack_exporter_collector_success{collector="redis"}')) == len(REDIS_TARGETS)

        # a replica dies: Prometheus keeps its last discovered targets, which go down; the rest stay up
        killed = exporters[0]
        killed.process.kill()
        mine = {i for i, shard in expected.items() if shard == killed.index}

        def only_its_targets_down() -> bool:
            health = health_by_instance(prometheus)
            return health == {i: ("down" if i in mine else "up") for i in expected}

        wait_until(only_its_targets_down, DEADLINE, interval=0.2, message="the killed replica's targets down")
        # a few more scrapes: the other shard keeps being scraped, and `up` says the same
        time.sleep(2.5)
        assert only_its_targets_down()
        up = {s["metric"]["instance"]: s["value"][1] for s in prometheus.query('up{job="stack-probe"}')}
        assert up == {i: ("0" if i in mine else "1") for i in expected}
        alive = {s["metric"]["target"] for s in prometheus.query("redis_up == 1")}
        assert alive == {i.partition("/")[2] for i in expected if i not in mine and i.startswith("redis/")}
    print(f"\n[sharding] discovery to every target up: {discovered:.1f} s; {time.monotonic() - started:.1f} s in all")


# --- the page's configs ----------------------------------------------------------------------

SCALE_OUT_DOC = ROOT / "docs" / "scale-out.md"


def doc_configs() -> list[tuple[str, str]]:
    """The page's Prometheus configs: the ```yaml blocks whose first line is ``# prometheus.yml...``."""
    blocks = re.findall(r"```yaml\n(.*?)```", SCALE_OUT_DOC.read_text(), flags=re.S)
    return [(block.splitlines()[0], block) for block in blocks if block.startswith("# prometheus.yml")]


def test_the_scale_out_page_configs_pass_promtool(tmp_path: Path) -> None:
    configs = doc_configs()
    assert len(configs) == 5, [title for title, _ in configs]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deps` installs it (Debian package prometheus)"
    for i, (title, text) in enumerate(configs):
        path = tmp_path / f"prometheus-{i}.yml"
        path.write_text(text)
        # --syntax-only: the password files the examples name do not exist here
        agent = ["--agent"] if "(agent)" in title else []
        proc = subprocess.run(
            [promtool, "check", "config", "--syntax-only", *agent, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{title}: {proc.stdout}{proc.stderr}"


def test_the_sharding_test_runs_the_page_sharding_job() -> None:
    """The jobs test_two_replicas_share_the_targets_by_hashmod runs are the page's, but for auth."""
    (page,) = [yaml.safe_load(text) for title, text in doc_configs() if "two replicas" in title]
    replicas = [Replica(i, 9847, Process([], Path("/dev/null"))) for i in range(SHARDS)]
    for documented, tested in zip(page["scrape_configs"], map(shard_job, replicas), strict=True):
        assert documented["relabel_configs"] == tested["relabel_configs"]
