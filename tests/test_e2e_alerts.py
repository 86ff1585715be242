"""End to end: from a real outage to the receivers, through every real process on loopback.

    redis-server, PostgreSQL -> stack-exporter -\
                     node_exporter -----------> Prometheus (rules/generated/) -> Alertmanager x2 (HA) -> webhook sink
                                                                                                  \\-> stack-exporter's
                                          status-page bridge -> fake Statuspage (tests/fakes/statuspage_api.py)

* Prometheus loads the generated rule pack as committed, with one change: every `for`
  is divided by 60 (1m -> 1 s, 5m -> 5 s) so the scenarios take seconds, not minutes.
  Expressions, names, labels and annotations are the pack's own.
* The two Alertmanagers run alertmanager.yml with its routing tree and inhibit rules
  untouched; only the receivers' integrations become webhooks to the sink, one path per
  receiver and integration (/pagerduty/pagerduty, /slack-incidents/slack, ...), and the
  group timers shrink to seconds (peers/alerting.py: sink_config).  Generated
  from the shipped file rather than written for the test, so a routing change is tested
  here too.  They gossip as an HA pair with a 2 s peer timeout.
* The `statuspage` receiver also posts to the exporter's real status-page bridge, which
  updates a fake Atlassian Statuspage built from the manage API's shapes.
* Each scenario prints how long it took; only generous deadlines are asserted.

The scenarios share one warm pipeline.  Each sets up the state it needs and leaves the
pipeline quiet (Redis running, RedisDown resolved at every receiver), so any one of them
can run alone or in any order.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from peers.alerting import (
    ALERTMANAGER_CONFIG,
    RULES_GENERATED,
    Alertmanager,
    NodeExporter,
    Notification,
    Prometheus,
    StackExporter,
    WebhookSink,
    bridge_webhook,
    check_running,
    cluster_position,
    duration_seconds,
    fast_rules,
    sink_config,
)
from peers.process import LOOPBACK, AsyncInThread, free_port, wait_until
from tests.fakes.statuspage_api import FakeStatusPageAPI
from tests.servers.postgres import PostgresServer, private_dir
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(150)

ALERTS_FILE = RULES_GENERATED / "prometheus_alerts.yaml"
RECORDING_FILE = RULES_GENERATED / "prometheus_rules.yaml"

# Where RedisDown (critical) must arrive, one notification per integration.
CRITICAL_PATHS = ("/pagerduty/pagerduty", "/slack-incidents/slack", "/statuspage/webhook")
WARNING_PATH = "/slack-warnings/slack"

SMS_PATH = "/sms-emergency/sns"
# The status-page component the bridge keeps in step with RedisDown.
COMPONENT = "redis-cache"

PEER_TIMEOUT = 2.0
GROUP_INTERVAL = 2.0
# After the first copy of a notification, long enough for a wrongly deduplicated second
# copy to show up: the second replica waits one peer timeout, then a group interval.
DUPLICATE_WINDOW = PEER_TIMEOUT + GROUP_INTERVAL + 3.0
# Generous: the pipeline needs a few seconds on a loaded 2-core machine.
DEADLINE = 45.0


@dataclass
class Pipeline:
    redis: RedisServer
    postgres: PostgresServer
    exporter: StackExporter
    prometheus: Prometheus
    alertmanagers: list[Alertmanager]
    sink: WebhookSink
    page: FakeStatusPageAPI
    # Seconds from a scenario's start to its last expected notification (set by wait_once).
    arrived_after: float = 0.0

    def check(self) -> None:
        check_running(
            self.exporter.process,
            self.prometheus.process,
            *(am.process for am in self.alertmanagers if am.process is not None and am.process.returncode is None),
        )

    def notifications(self, path: str, alertname: str, status: str, since: float) -> list[Notification]:
        return [
            n for n in self.sink.received(alertname=alertname, status=status) if n.path == path and n.received >= since
        ]

    def wait_once(self, paths: tuple[str, ...], alertname: str, status: str, since: float) -> list[Notification]:
        """Wait until every path got the notification, then make sure none got it twice."""

        def all_arrived() -> bool:
            self.check()
            return all(self.notifications(p, alertname, status, since) for p in paths)

        wait_until(all_arrived, DEADLINE, interval=0.1, message=f"{alertname} {status} reaches {paths}")
        self.arrived_after = time.monotonic() - since
        time.sleep(DUPLICATE_WINDOW)
        found = []
        for path in paths:
            copies = self.notifications(path, alertname, status, since)
            assert len(copies) == 1, (
                f"{path} got {alertname} {status} {len(copies)} times: {[c.sender for c in copies]}"
            )
            found.append(copies[0])
        return found


def redis_down(pipeline: Pipeline) -> float:
    """Kill Redis and wait for RedisDown to reach every critical receiver; return when it was killed."""
    since = time.monotonic()
    pipeline.redis.process.kill()  # type: ignore[union-attr]
    wait_until(
        lambda: all(pipeline.notifications(p, "RedisDown", "firing", since) for p in CRITICAL_PATHS),
        DEADLINE,
        interval=0.1,
        message="RedisDown reaches the critical receivers",
    )
    return since


def redis_back(pipeline: Pipeline, down_since: float) -> None:
    """Start Redis again if it is down; if it was reported down, wait for the resolve to arrive."""
    if not pipeline.redis.running:
        pipeline.redis.start()
    notified = [p for p in CRITICAL_PATHS if pipeline.notifications(p, "RedisDown", "firing", down_since)]
    wait_until(
        lambda: (
            not pipeline.prometheus.firing("RedisDown")
            and all(pipeline.notifications(p, "RedisDown", "resolved", down_since) for p in notified)
        ),
        DEADLINE,
        interval=0.1,
        message="RedisDown resolved",
    )


def report(scenario: str, started: float, pipeline: Pipeline | None = None, **extra: Any) -> None:
    arrived = f"notified after {pipeline.arrived_after:.1f} s, " if pipeline is not None else ""
    details = "".join(f", {k}={v}" for k, v in extra.items())
    print(f"\n[e2e] {scenario}: {arrived}{time.monotonic() - started:.1f} s in all{details}")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    assert ALERTS_FILE.exists(), f"{ALERTS_FILE} is missing: run make generate"
    started = time.monotonic()
    base = tmp_path_factory.mktemp("e2e")
    pg_base = private_dir("stack-e2e-pg-")
    try:
        with (
            WebhookSink() as sink,
            AsyncInThread(FakeStatusPageAPI("statuspage", components=[COMPONENT])) as page,
            RedisServer(base / "redis") as redis_server,
            PostgresServer(pg_base) as postgres,
        ):
            exporter_port = free_port()
            token = base / "bridge-token"
            token.write_text("e2e-bridge-token-5d1c\n")
            exporter_config = {
                "global": {"scrape_timeout": "5s"},
                "redis": [{"name": "cache", "url": f"redis://{LOOPBACK}:{redis_server.port}/0"}],
                "postgres": [{"name": "main", "dsn": f"postgresql://postgres@{LOOPBACK}:{postgres.port}/postgres"}],
                "statuspage_bridge": {
                    "token_file": str(token),
                    "provider": {
                        "kind": "statuspage",
                        "url": page.url,
                        "page_id": page.page_id,
                        "api_key": page.api_key,
                    },
                    "components": [
                        {"name": "Cache", "id": COMPONENT, "match": ['alertname="RedisDown"', 'target="cache"']}
                    ],
                    # the scenarios take Redis down and up again within seconds
                    "min_flap_interval": "0s",
                    "retry": {"initial_backoff": "200ms", "max_backoff": "2s"},
                    "incidents": {"enabled": True},
                },
            }
            webhook = bridge_webhook(f"{LOOPBACK}:{exporter_port}", token)
            am_config = base / "alertmanager.yml"
            am_config.write_text(
                yaml.safe_dump(
                    sink_config(ALERTMANAGER_CONFIG, sink, group_interval="2s", also={"statuspage": [webhook]})
                )
            )
            cluster = [free_port(), free_port()]
            alertmanagers = [
                Alertmanager(
                    base,
                    am_config,
                    name=f"am{i}",
                    cluster_port=cluster[i],
                    peers=[cluster[1 - i]],
                    peer_timeout=f"{PEER_TIMEOUT:g}s",
                )
                for i in range(2)
            ]
            with (
                StackExporter(base, yaml.safe_dump(exporter_config), port=exporter_port) as exporter,
                NodeExporter(base) as node,
                alertmanagers[0],
                alertmanagers[1],
            ):
                prometheus_config = {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"{LOOPBACK}:{am.port}" for am in alertmanagers]}]}
                        ]
                    },
                    "scrape_configs": [
                        {"job_name": "stack-exporter", "static_configs": [{"targets": [exporter.address]}]},
                        {"job_name": "node", "static_configs": [{"targets": [node.address]}]},
                    ],
                }
                rules = {
                    "alerts.yaml": fast_rules(ALERTS_FILE),
                    "recording.yaml": yaml.safe_load(RECORDING_FILE.read_text()),
                }
                with Prometheus(base, prometheus_config, rules) as prometheus:
                    p = Pipeline(redis_server, postgres, exporter, prometheus, alertmanagers, sink, page)
                    # Warm: both replicas see each other, both jobs are up, and the
                    # Watchdog has made the whole trip once (Alertmanager discovered,
                    # cluster settled).
                    wait_until(
                        lambda: all(len(am.cluster_peers()) == 2 for am in alertmanagers),
                        DEADLINE,
                        interval=0.2,
                        message="the two Alertmanagers form a cluster",
                    )
                    wait_until(
                        lambda: p.prometheus.targets_up() == {"stack-exporter": "up", "node": "up"},
                        DEADLINE,
                        interval=0.2,
                        message="Prometheus scrapes the exporter and node_exporter",
                    )
                    wait_until(
                        lambda: p.sink.received(receiver="deadmans-switch", alertname="Watchdog"),
                        DEADLINE,
                        interval=0.2,
                        message="the Watchdog reaches the dead man's switch",
                    )
                    report("pipeline warm (start to first Watchdog)", started)
                    yield p
    finally:
        shutil.rmtree(pg_base, ignore_errors=True)


def test_redis_down_reaches_critical_receivers_exactly_once(pipeline: Pipeline) -> None:
    started = time.monotonic()
    pipeline.redis.process.kill()  # type: ignore[union-attr]
    try:
        found = pipeline.wait_once(CRITICAL_PATHS, "RedisDown", "firing", started)
        for notification in found:
            assert notification.labels("target") == {"cache"}
            assert notification.labels("severity") == {"critical"}
        report("Redis killed -> RedisDown at pagerduty, slack-incidents, statuspage once each", started, pipeline,
               sent_by=sorted({n.sender for n in found}))  # fmt: skip
        # SMS is for the escalated copy only, which is not due yet.
        assert not pipeline.notifications(SMS_PATH, "RedisDown", "firing", started)
        assert time.monotonic() - started < _escalation_seconds("RedisDown"), "too slow to tell page from SMS"
    finally:
        redis_back(pipeline, started)


def test_redis_restart_sends_the_resolve(pipeline: Pipeline) -> None:
    down_since = redis_down(pipeline)
    started = time.monotonic()
    pipeline.redis.start()
    try:
        pipeline.wait_once(CRITICAL_PATHS, "RedisDown", "resolved", started)
        report("Redis restarted -> RedisDown resolved at the same three, once each", started, pipeline)
    finally:
        redis_back(pipeline, down_since)


def _threshold(alertname: str, severity: str) -> float:
    for group in yaml.safe_load(ALERTS_FILE.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alertname and rule["labels"]["severity"] == severity:
                match = re.search(r">\s*([0-9.]+)\s*$", rule["expr"].strip())
                assert match, f"cannot read the threshold of {alertname} {severity}: {rule['expr']}"
                return float(match.group(1))
    raise AssertionError(f"{alertname} {severity} is not in {ALERTS_FILE}")


def test_postgres_connections_over_warning_reach_the_warning_receiver(pipeline: Pipeline) -> None:
    started = time.monotonic()
    pg = pipeline.postgres
    warning = _threshold("PostgresTooManyConnections", "warning")
    critical = _threshold("PostgresTooManyConnections", "critical")
    available = int(pg.scalar("SHOW max_connections")) - int(pg.scalar("SHOW superuser_reserved_connections"))
    # Midway between the thresholds: over the warning, clear of the critical, whatever
    # the exporter's own pool adds.
    wanted = math.ceil(available * (warning + critical) / 2)
    in_use = int(pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
    connections = [pg.connect(connect_timeout=5) for _ in range(wanted - in_use)]
    try:
        found = pipeline.wait_once((WARNING_PATH,), "PostgresTooManyConnections", "firing", started)
        assert found[0].labels("severity") == {"warning"}
        assert found[0].labels("target") == {"main"}
        report("PostgreSQL connections over the warning -> slack-warnings once", started, pipeline,
               connections=f"{wanted}/{available}")  # fmt: skip
        assert not [
            n
            for path in CRITICAL_PATHS
            for n in pipeline.notifications(path, "PostgresTooManyConnections", "firing", started)
        ], "a warning paged"
    finally:
        for conn in connections:
            conn.close()


def test_killing_one_alertmanager_mid_incident_still_notifies_once(pipeline: Pipeline) -> None:
    """Redis goes down, then the replica that would notify first dies before the alert fires.

    It is killed before it can send: Alertmanager's HA is at-least-once by design, and a
    replica killed in the ~200 ms between sending and gossiping its notification log
    makes the survivor send a second copy; that window is not what this checks.
    """
    started = time.monotonic()
    first = min(pipeline.alertmanagers, key=cluster_position)
    survivor = next(am for am in pipeline.alertmanagers if am is not first)
    pipeline.redis.process.kill()  # type: ignore[union-attr]
    first.kill()
    try:
        assert not pipeline.prometheus.firing("RedisDown"), "RedisDown fired before the Alertmanager was killed"
        found = pipeline.wait_once(CRITICAL_PATHS, "RedisDown", "firing", started)
        assert {n.sender for n in found} == {survivor.url}
        report("one Alertmanager killed mid-incident -> RedisDown still once each", started, pipeline,
               killed=first.url, sent_by=sorted({n.sender for n in found}))  # fmt: skip
    finally:
        redis_back(pipeline, started)
        first.start()
        wait_until(
            lambda: all(len(am.cluster_peers()) == 2 for am in pipeline.alertmanagers),
            DEADLINE,
            interval=0.2,
            message="the restarted Alertmanager rejoins the cluster",
        )


def _escalation_seconds(alertname: str) -> float:
    """When the escalated copy of ``alertname`` fires in this pipeline (its ``for``, divided as fast_rules does)."""
    for rule in fast_rules(ALERTS_FILE)["groups"]:
        for r in rule["rules"]:
            if r.get("alert") == alertname and r.get("labels", {}).get("escalated") == "true":
                return duration_seconds(r["for"])
    raise AssertionError(f"{alertname} has no escalated copy in {ALERTS_FILE}")


def _timeline(pipeline: Pipeline, since: float, since_request: int) -> str:
    """What reached the status page and the bridge since ``since``, in order: for a failure message."""
    events: list[tuple[float, str]] = []
    for r in pipeline.page.requests[since_request:]:
        status = (r.json or {}).get("component", {}).get("status", "") if isinstance(r.json, dict) else ""
        events.append((r.at, f"page    {r.method} {r.path.rsplit('/', 2)[-2:]} {status}"))
    for n in pipeline.sink.received(alertname="RedisDown"):
        if n.path == "/statuspage/webhook" and n.received >= since:
            alerts = [
                (a.get("status"), a["labels"].get("escalated", ""), a.get("startsAt", "")[11:23])
                for a in n.body.get("alerts", [])
            ]
            events.append((n.received, f"webhook {n.status} from {n.sender} alerts={alerts}"))
    lines = [f"{at - since:7.2f}s {what}" for at, what in sorted(events)]
    bridge_log = [
        line
        for line in pipeline.exporter.process.log_tail(400).splitlines()  # type: ignore[union-attr]
        if "component" in line or "incident" in line
    ]
    return "\n".join(["timeline:", *lines, "bridge log (last lines):", *bridge_log[-20:]])


def _component_writes(page: FakeStatusPageAPI, since_request: int, status: str) -> list[Any]:
    return [
        r
        for r in page.requests[since_request:]
        if r.method == "PATCH"
        and r.path.endswith(f"/components/{COMPONENT}")
        and r.json["component"]["status"] == status
    ]


def test_downtime_chain_pages_escalates_and_keeps_the_status_page_in_step(pipeline: Pipeline) -> None:
    """Redis killed: paged at once, the public component down once, SMS only after the
    escalation time; Redis back: the component operational and the incident resolved."""
    page = pipeline.page
    mark = len(page.requests)
    escalate_after = _escalation_seconds("RedisDown")
    started = time.monotonic()
    pipeline.redis.process.kill()  # type: ignore[union-attr]
    try:
        pipeline.wait_once(CRITICAL_PATHS, "RedisDown", "firing", started)
        paged_after = pipeline.arrived_after
        wait_until(lambda: page.status_of(COMPONENT) == "major_outage", DEADLINE, interval=0.1,
                   message="the bridge sets the component to major_outage")  # fmt: skip
        # two Alertmanagers each sent the notification (and repeat it): one API call
        assert len(_component_writes(page, mark, "major_outage")) == 1, _timeline(pipeline, started, mark)
        opened = [r for r in page.requests[mark:] if r.method == "POST" and r.path.endswith("/incidents")]
        assert len(opened) == 1, opened

        sms = pipeline.wait_once((SMS_PATH,), "RedisDown", "firing", started)
        escalated_after = sms[0].received - started
        assert sms[0].labels("escalated") == {"true"}
        assert escalated_after >= escalate_after, f"SMS after {escalated_after:.1f} s, before the escalation time"
        assert page.status_of(COMPONENT) == "major_outage"
        report("Redis killed -> paged, component down once, escalated to SMS", started, pipeline,
               paged_after=f"{paged_after:.1f}s", sms_after=f"{escalated_after:.1f}s",
               escalation=f"{escalate_after:g}s")  # fmt: skip

        back = time.monotonic()
        pipeline.redis.start()
        wait_until(lambda: page.status_of(COMPONENT) == "operational", DEADLINE, interval=0.1,
                   message="the bridge sets the component back to operational")  # fmt: skip
        wait_until(lambda: not page.open_incidents(), DEADLINE, interval=0.1, message="the incident is resolved")
        time.sleep(DUPLICATE_WINDOW)
        assert len(_component_writes(page, mark, "operational")) == 1, _timeline(pipeline, started, mark)
        report("Redis back -> component operational, incident resolved", back)
        # what reached the public page says nothing about our hosts
        for r in page.requests[mark:]:
            body = json.dumps(r.json)
            assert LOOPBACK not in body and str(pipeline.redis.port) not in body, body
    finally:
        redis_back(pipeline, started)
