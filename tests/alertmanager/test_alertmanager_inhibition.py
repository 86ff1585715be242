"""Inhibition on a real Alertmanager: alertmanager.yml's rules, alerts posted to its v2 API.

The Alertmanager runs the shipped config with receivers swapped for a local webhook
sink (routing and inhibit rules untouched) and gossip off.  The API reports each alert
as `active` or `suppressed` with `inhibitedBy`; the test asserts both sides of every
rule: what must be muted, and the near misses that must not be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.servers.alerting import ALERTMANAGER_CONFIG, Alertmanager, WebhookSink, sink_config
from tests.servers.common import wait_until


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    base = tmp_path_factory.mktemp("am-inhibition")
    with WebhookSink() as sink:
        config = base / "alertmanager.yml"
        config.write_text(yaml.safe_dump(sink_config(ALERTMANAGER_CONFIG, sink)))
        with Alertmanager(base, config) as am:
            yield am


def alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "test"}}


# (labels, inhibited?) per rule; the alerts of one case are posted together.
CASES: dict[str, list[tuple[dict[str, str], bool]]] = {
    "critical mutes the warning of the same alert and target": [
        ({"alertname": "PostgresTooManyConnections", "severity": "critical", "target": "main"}, False),
        ({"alertname": "PostgresTooManyConnections", "severity": "warning", "target": "main"}, True),
        ({"alertname": "PostgresTooManyConnections", "severity": "warning", "target": "other"}, False),
        ({"alertname": "PostgresReplicationLag", "severity": "warning", "target": "main"}, False),
    ],
    "the escalated critical mutes its warning twin": [
        ({"alertname": "AppHighErrorRatio", "severity": "critical", "escalated": "true", "job": "app"}, False),
        ({"alertname": "AppHighErrorRatio", "severity": "warning", "job": "app"}, True),
        ({"alertname": "AppHighErrorRatio", "severity": "warning", "job": "billing-app"}, False),
    ],
    "a component that is down mutes its other alerts": [
        ({"alertname": "RedisDown", "severity": "critical", "target": "cache"}, False),
        ({"alertname": "RedisReplicaLinkDown", "severity": "warning", "target": "cache"}, True),
        ({"alertname": "RedisClusterStateNotOk", "severity": "critical", "target": "cache"}, True),
        ({"alertname": "RedisReplicaLinkDown", "severity": "warning", "target": "sessions"}, False),
        # Another source whose target happens to have the same name.
        ({"alertname": "PostgresLongRunningTransaction", "severity": "warning", "target": "cache"}, False),
        ({"alertname": "PgBouncerDown", "severity": "critical", "target": "pool"}, False),
        ({"alertname": "PgBouncerClientsWaiting", "severity": "warning", "target": "pool"}, True),
    ],
    "the info inhibitor mutes lone info alerts": [
        ({"alertname": "InfoInhibitor", "severity": "info", "target": "example.com"}, False),
        ({"alertname": "EmailDMARCPolicyNone", "severity": "info", "target": "example.com"}, True),
        ({"alertname": "EmailDMARCPolicyNone", "severity": "info", "target": "example.org"}, False),
        # The dead man's switch must keep receiving it, whatever else fires.
        ({"alertname": "Watchdog", "severity": "info"}, False),
        ({"alertname": "InfoInhibitor", "severity": "info"}, False),
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_inhibition(alertmanager: Alertmanager, case: str) -> None:
    expected = CASES[case]
    alertmanager.post_alerts(alert(**labels, case=case) for labels, _ in expected)

    def states() -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
        found = {}
        for a in alertmanager.alerts():
            labels = dict(a["labels"])
            if labels.pop("case", None) == case:
                found[tuple(sorted(labels.items()))] = a["status"]
        assert len(found) == len(expected), f"{len(found)} of {len(expected)} alerts arrived"
        for labels, inhibited in expected:
            status = found[tuple(sorted(labels.items()))]
            assert bool(status["inhibitedBy"]) == inhibited, f"{labels}: {status}"
            assert status["state"] == ("suppressed" if inhibited else "active"), f"{labels}: {status}"
        return found

    wait_until(states, 10, interval=0.1, message=case)


def test_inhibition_is_not_vacuous(alertmanager: Alertmanager) -> None:
    # Without a source alert, the same target alert is active: muting comes from the rule.
    labels = {"alertname": "RedisReplicaLinkDown", "severity": "warning", "target": "lonely", "case": "alone"}
    alertmanager.post_alerts([alert(**labels)])

    def active() -> bool:
        mine = [a for a in alertmanager.alerts() if a["labels"].get("case") == "alone"]
        return len(mine) == 1 and mine[0]["status"]["state"] == "active"

    wait_until(active, 10, interval=0.1, message="lone RedisReplicaLinkDown stays active")
