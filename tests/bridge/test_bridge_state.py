"""The bridge's pure parts: matchers, templates, the webhook payload and the component state."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from exporter.bridge.config import BridgeConfig, ComponentConfig, ProviderConfig
from exporter.bridge.matchers import Matcher
from exporter.bridge.payload import Alert, PayloadError, parse_notification
from exporter.bridge.state import BridgeState
from exporter.bridge.templates import render, template_problems
from exporter.schema import Duration, Secret


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('alertname="RedisDown"', {"alertname": "RedisDown"}, True),
        ('alertname="RedisDown"', {"alertname": "RedisDownSoon"}, False),
        ("alertname=RedisDown", {"alertname": "RedisDown"}, True),
        ('team!="db"', {}, True),  # a missing label is "", as in Prometheus
        ('team!="db"', {"team": "db"}, False),
        ('target=~"cache.*"', {"target": "cache-1"}, True),
        ('target=~"cache.*"', {"target": "my-cache-1"}, False),  # anchored
        ('target!~"cache.*"', {"target": "my-cache-1"}, True),
        ('job=~"a|b"', {"job": "b"}, True),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matchers_follow_prometheus(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("RedisDown", "expected label, an operator"),
        ('target=~"cache(["', "invalid regex"),
        ('alertname="open', "one double-quoted string"),
        ('a="x",b="y"', "one double-quoted string"),
        ("a=x,b=y", "quote the value"),
    ],
)
def test_bad_matchers_are_explained(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Matcher.parse(text)


def test_templates_allow_only_the_fixed_placeholders() -> None:
    assert list(template_problems("{component} is {status} since {since} {{ok}}")) == []
    (problem,) = template_problems("{component} on {instance}")
    assert "unknown placeholder {instance}" in problem
    assert list(template_problems("{labels.instance}"))
    assert list(template_problems("a } b"))
    text = render("{component}: {status} since {since} {{x}}", component="API", status="major_outage", since=0.0)
    assert text == "API: Major outage since 1970-01-01 00:00 UTC {x}"


def notification(*alerts: dict[str, Any], version: str = "4") -> bytes:
    return json.dumps(
        {
            "version": version,
            "groupKey": '{}:{alertname="RedisDown"}',
            "status": "firing",
            "receiver": "statuspage",
            "alerts": list(alerts),
        }
    ).encode()


FIRING = {"status": "firing", "labels": {"alertname": "X"}, "fingerprint": "f1", "startsAt": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected a JSON object"),
        (notification(FIRING, version="3"), "version: expected '4'"),
        (json.dumps({"version": "4"}).encode(), "alerts: missing"),
        (notification({**FIRING, "status": "pending"}), "alerts[0].status"),
        (
            notification(FIRING, {k: v for k, v in FIRING.items() if k != "fingerprint"}),
            "alerts[1].fingerprint: missing",
        ),
        (notification({**FIRING, "labels": {"a": 1}}), "alerts[0].labels"),
        (notification({**FIRING, "startsAt": ""}), "alerts[0].startsAt"),
    ],
)
def test_payload_problems_name_the_field(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_notification(body)


def test_a_real_alertmanager_payload_parses() -> None:
    # the example of Alertmanager's docs (webhook_config), with every optional field
    body = notification(
        {
            **FIRING,
            "annotations": {"summary": "s"},
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
        }
    )
    parsed = parse_notification(body)
    assert parsed.receiver == "statuspage"
    assert parsed.alerts == (Alert("f1", "firing", {"alertname": "X"}, "2026-01-01T00:00:00Z"),)


def bridge_config(**overrides: Any) -> BridgeConfig:
    fields: dict[str, Any] = {
        "provider": ProviderConfig(kind="statuspage", page_id="p", api_key=Secret("k" * 12)),
        "token": Secret("t" * 12),
        "components": (
            ComponentConfig(name="Cache", id="c1", match=('alertname=~"Redis.*"',)),
            ComponentConfig(
                name="API", id="c2", match=('service="api"',), status_by_severity={"warning": "partial_outage"}
            ),
        ),
    }
    fields.update(overrides)
    return BridgeConfig(**fields)


def alert(fp: str, status: str = "firing", starts: str = "t0", **labels: str) -> Alert:
    return Alert(fp, status, labels, starts)  # type: ignore[arg-type]


def test_component_status_is_the_worst_of_its_firing_alerts() -> None:
    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    seen = state.observe([alert("a", alertname="RedisSlow", severity="warning")], now=10)
    assert seen.changed == ["Cache"] and cache.desired() == "degraded_performance"
    assert cache.down_since == 10
    state.observe([alert("b", alertname="RedisDown", severity="critical")], now=20)
    assert cache.desired() == "major_outage"
    assert cache.down_since == 10  # still the same outage
    state.observe([alert("b", "resolved", alertname="RedisDown", severity="critical")], now=30)
    assert cache.desired() == "degraded_performance"
    state.observe([alert("a", "resolved", alertname="RedisSlow", severity="warning")], now=40)
    assert cache.desired() == "operational" and cache.down_since is None
    # the per-component override: a warning on the API is a partial outage
    state.observe([alert("c", service="api", severity="warning")], now=50)
    assert state.components["API"].desired() == "partial_outage"


def test_info_alerts_unknown_severities_and_unmatched_alerts_leave_the_page_alone() -> None:
    state = BridgeState(bridge_config())
    seen = state.observe(
        [
            alert("a", alertname="RedisNote", severity="info"),
            alert("b", alertname="RedisOdd", severity="page"),
            alert("c", alertname="DiskFull", severity="critical"),
        ],
        now=1,
    )
    assert seen.changed == []
    assert seen.unmatched == 1 and seen.unmatched_names == {"DiskFull"}
    assert state.components["Cache"].desired() == "operational"
    assert state.components["Cache"].known  # heard of: the bridge now owns its status
    assert not state.components["API"].known  # never heard of: never touched


def test_the_same_notification_twice_changes_nothing() -> None:
    state = BridgeState(bridge_config())
    alerts = [alert("a", alertname="RedisDown", severity="critical")]
    assert state.observe(alerts, now=1).changed == ["Cache"]
    assert state.observe(alerts, now=2).changed == []


def test_a_late_copy_of_a_resolved_alert_does_not_bring_it_back() -> None:
    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    firing = alert("a", starts="t0", alertname="RedisDown", severity="critical")
    state.observe([firing], now=1)
    state.observe([alert("a", "resolved", starts="t0", alertname="RedisDown", severity="critical")], now=2)
    # the other Alertmanager's copy of the firing notification arrives late
    assert state.observe([firing], now=3).changed == []
    assert cache.desired() == "operational"
    # a new firing of the same alert has a new startsAt
    state.observe([alert("a", starts="t9", alertname="RedisDown", severity="critical")], now=4)
    assert cache.desired() == "major_outage"


def test_a_late_resolve_of_an_earlier_instance_does_not_end_the_new_one() -> None:
    """Seen in the e2e pipeline: a replica sent the previous incident's resolve after RedisDown
    fired again; the page showed operational for two seconds in the middle of an outage."""
    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    labels = {"alertname": "RedisDown", "severity": "critical"}
    earlier, now = "2026-12-02T15:27:18.923Z", "2026-12-02T15:27:33.923456789Z"
    state.observe([alert("a", starts=earlier, **labels)], now=1)
    state.observe([alert("a", "resolved", starts=earlier, **labels)], now=2)
    state.observe([alert("a", starts=now, **labels)], now=3)
    assert state.observe([alert("a", "resolved", starts=earlier, **labels)], now=4).changed == []
    assert cache.desired() == "major_outage"
    # the resolve of the instance that fires now ends it, whatever the other replica sends after
    assert state.observe([alert("a", "resolved", starts=now, **labels)], now=5).changed == ["Cache"]
    assert cache.desired() == "operational"
    assert state.observe([alert("a", starts=now, **labels)], now=6).changed == []
    # a timestamp the bridge cannot read does not keep an alert firing
    state.observe([alert("a", starts="2026-12-02T16:00:00Z", **labels)], now=7)
    state.observe([alert("a", "resolved", starts="not a time", **labels)], now=8)
    assert cache.desired() == "operational"


def test_flap_damping_allows_one_recovery_per_interval() -> None:
    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    down = alert("a", starts="t1", alertname="RedisDown", severity="critical")
    up = alert("a", "resolved", starts="t1", alertname="RedisDown", severity="critical")
    interval = 300.0

    state.observe([down], now=0)
    assert cache.target(0, interval) == ("major_outage", None)  # worse: at once
    cache.applied_ok("major_outage", 0)
    state.observe([up], now=10)
    assert cache.target(10, interval) == ("operational", None)  # the first recovery: at once
    cache.applied_ok("operational", 10)
    state.observe([alert("a", starts="t2", alertname="RedisDown", severity="critical")], now=20)
    assert cache.target(20, interval) == ("major_outage", None)  # down again: at once
    cache.applied_ok("major_outage", 20)
    state.observe([alert("a", "resolved", starts="t2", alertname="RedisDown", severity="critical")], now=30)
    # back up again within the interval: held until it has passed since the last recovery
    assert cache.target(30, interval) == ("major_outage", 10 + interval)
    assert cache.pending(incidents=False)
    assert cache.target(10 + interval, interval) == ("operational", None)


def test_a_reload_keeps_what_the_bridge_knows() -> None:
    config = bridge_config()
    state = BridgeState(config)
    state.observe([alert("a", alertname="RedisDown", severity="critical")], now=1)
    state.components["Cache"].applied_ok("major_outage", 1)
    changed = bridge_config(min_flap_interval=Duration(60))
    kept = BridgeState(changed, previous=state)
    assert kept.components["Cache"].applied == "major_outage"
    assert kept.components["Cache"].desired() == "major_outage"
    # a component moved to another page id starts afresh
    moved = bridge_config(components=(ComponentConfig(name="Cache", id="c9", match=('alertname="X"',)),))
    assert BridgeState(moved, previous=state).components["Cache"].applied is None


def test_forget_drops_alerts_alertmanager_stopped_repeating() -> None:
    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    state.observe([alert("a", alertname="RedisDown", severity="critical")], now=0)
    state.observe([alert("b", alertname="RedisSlow", severity="warning")], now=50)
    assert cache.forget(now=60, after=100) == 100  # the first goes at 0 + 100
    assert cache.desired() == "major_outage"
    state.observe([alert("b", alertname="RedisSlow", severity="warning")], now=90)  # repeated: kept longer
    assert cache.forget(now=100, after=100) == 190
    assert cache.desired() == "degraded_performance"
    assert cache.forget(now=190, after=100) is None
    assert cache.desired() == "operational" and cache.down_since is None


def test_a_flood_of_distinct_firing_alerts_is_bounded_and_counted() -> None:
    from exporter.bridge.bridge import Bridge
    from exporter.bridge.state import MAX_FIRING

    state = BridgeState(bridge_config())
    cache = state.components["Cache"]
    state.observe([alert("worst", alertname="RedisDown", severity="critical")], now=1)
    # a label with a request id in it: every alert a new fingerprint (20k alerts fit in a 1 MiB body)
    total = 20_000
    flood = [alert(f"fp{i}", alertname="RedisSlow", severity="warning", req=str(i)) for i in range(total)]
    started = time.perf_counter()
    state.observe(flood, now=2)
    # the webhook handler runs this on the event loop: a scan of every kept alert per
    # alert took 25-50 s here; a generous bound, not a benchmark
    assert time.perf_counter() - started < 10
    assert len(cache.firing) <= MAX_FIRING
    assert cache.dropped == total + 1 - len(cache.firing)
    # evictions take the least severe first: the outage the page shows is still there
    assert "worst" in cache.firing and cache.desired() == "major_outage"
    # the newest warnings are kept, the oldest went
    assert f"fp{total - 1}" in cache.firing and "fp0" not in cache.firing
    # a reload keeps the count; the metric shows it
    bridge = Bridge(bridge_config())
    bridge.state = BridgeState(bridge_config(), previous=state)
    dropped = {
        s.labels["component"]: s.value
        for family in bridge.families()
        if family.name == "stack_exporter_bridge_firing_alerts_dropped"
        for s in family.samples
    }
    assert dropped == {"Cache": float(cache.dropped), "API": 0.0}
