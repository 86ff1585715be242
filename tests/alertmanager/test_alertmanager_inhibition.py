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

from peers.alerting import ALERTMANAGER_CONFIG, Alertmanager, WebhookSink, http_json, sink_config
from peers.process import wait_until


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


FS = {"alertname": "NodeFilesystemSpaceLow", "job": "node"}
PROBE = {"job": "stack-exporter", "instance": "exp:9847"}

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
    # A critical's escalated copy is critical too: the only rule that mutes criticals is a
    # down-alert's, and a down-alert's own copy carries its name, which that rule spares.
    # Targets of their own: every case shares one Alertmanager, and `case` is in no `equal`.
    "nothing mutes the escalated copy of a critical": [
        ({"alertname": "RedisDown", "severity": "critical", "target": "esc-cache"}, False),
        ({"alertname": "RedisDown", "severity": "critical", "escalated": "true", "target": "esc-cache"}, False),
        ({"alertname": "PgBouncerDown", "severity": "critical", "target": "esc-pool"}, False),
        ({"alertname": "PgBouncerDown", "severity": "critical", "escalated": "true", "target": "esc-pool"}, False),
        (
            {
                "alertname": "ProbeEndpointDown",
                "severity": "critical",
                "escalated": "true",
                **PROBE,
                "target": "esc-shop",
            },
            False,
        ),
        (
            {
                "alertname": "EmailProviderDown",
                "severity": "critical",
                "escalated": "true",
                "target": "mail",
                "provider": "esc-provider",
            },
            False,
        ),
        ({"alertname": "EmailProviderDown", "severity": "warning", "target": "mail", "provider": "esc-provider"}, True),
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
    # Two incidents of one alert at once: a critical mutes only its own warning twin.
    "a critical on one mountpoint does not mute another mountpoint's or host's warning": [
        ({**FS, "severity": "critical", "instance": "db1:9100", "mountpoint": "/var/lib/postgresql"}, False),
        ({**FS, "severity": "warning", "instance": "db1:9100", "mountpoint": "/var/lib/postgresql"}, True),
        ({**FS, "severity": "warning", "instance": "db1:9100", "mountpoint": "/"}, False),
        ({**FS, "severity": "warning", "instance": "web3:9100", "mountpoint": "/var/lib/postgresql"}, False),
    ],
    "a critical on one database or slot does not mute another's warning": [
        ({"alertname": "PostgresTxIDWraparound", "severity": "critical", "target": "main", "datname": "app"}, False),
        ({"alertname": "PostgresTxIDWraparound", "severity": "warning", "target": "main", "datname": "app"}, True),
        ({"alertname": "PostgresTxIDWraparound", "severity": "warning", "target": "main", "datname": "billing"}, False),
        (
            {
                "alertname": "PostgresReplicationSlotRetainingWal",
                "severity": "critical",
                "target": "main",
                "slot_name": "cdc",
            },
            False,
        ),
        (
            {
                "alertname": "PostgresReplicationSlotRetainingWal",
                "severity": "warning",
                "target": "main",
                "slot_name": "cdc",
            },
            True,
        ),
        (
            {
                "alertname": "PostgresReplicationSlotRetainingWal",
                "severity": "warning",
                "target": "main",
                "slot_name": "replica2",
            },
            False,
        ),
    ],
    "a critical of one provider's account does not mute another provider's warning": [
        # The example names every account `mail`: only `provider` tells them apart.  Both
        # figures (the provider's own and the computed one) are one incident.
        (
            {
                "alertname": "EmailBounceRatioHigh",
                "severity": "critical",
                "target": "mail",
                "provider": "sendgrid",
                "figure": "provider",
            },
            False,
        ),
        (
            {
                "alertname": "EmailBounceRatioHigh",
                "severity": "warning",
                "target": "mail",
                "provider": "sendgrid",
                "figure": "computed",
            },
            True,
        ),
        (
            {
                "alertname": "EmailBounceRatioHigh",
                "severity": "warning",
                "target": "mail",
                "provider": "ses",
                "figure": "provider",
            },
            False,
        ),
    ],
    "the fast burn mutes the slow burn of the same app only": [
        ({"alertname": "AppErrorBudgetBurn", "severity": "critical", "job": "app", "long": "1h", "short": "5m"}, False),
        ({"alertname": "AppErrorBudgetBurn", "severity": "warning", "job": "app", "long": "1d", "short": "2h"}, True),
        ({"alertname": "AppErrorBudgetBurn", "severity": "warning", "job": "shop", "long": "1d", "short": "2h"}, False),
    ],
    "a provider that is down mutes its own account's alerts only": [
        ({"alertname": "EmailProviderDown", "severity": "warning", "target": "mail", "provider": "sendgrid"}, False),
        (
            {
                "alertname": "EmailSendQuotaNearlyExhausted",
                "severity": "warning",
                "target": "mail",
                "provider": "sendgrid",
            },
            True,
        ),
        (
            {
                "alertname": "EmailBounceRatioHigh",
                "severity": "critical",
                "target": "mail",
                "provider": "ses",
                "figure": "provider",
            },
            False,
        ),
        (
            {
                "alertname": "EmailDomainUnverified",
                "severity": "warning",
                "target": "mail",
                "provider": "resend",
                "domain": "example.com",
            },
            False,
        ),
        # SES's account alerts carry no provider label: not SendGrid's either.
        ({"alertname": "EmailSESSendingPaused", "severity": "critical", "target": "mail"}, False),
        # The DNS checks of a domain are no provider's.
        ({"alertname": "EmailSPFInvalid", "severity": "warning", "target": "example.com"}, False),
    ],
    "an endpoint that is down mutes its own probe alerts only (our exporter)": [
        ({**PROBE, "alertname": "ProbeEndpointDown", "severity": "critical", "target": "site"}, False),
        ({**PROBE, "alertname": "ProbeCertificateExpiringSoon", "severity": "warning", "target": "site"}, True),
        ({**PROBE, "alertname": "ProbeCertificateExpiringSoon", "severity": "warning", "target": "api"}, False),
    ],
    "an endpoint that is down mutes its own probe alerts only (blackbox_exporter)": [
        # blackbox series carry no target: the probed URL is the instance.
        (
            {
                "alertname": "ProbeEndpointDown",
                "severity": "critical",
                "job": "blackbox",
                "instance": "https://www.example.com",
            },
            False,
        ),
        (
            {
                "alertname": "ProbeCertificateExpiringSoon",
                "severity": "warning",
                "job": "blackbox",
                "instance": "https://www.example.com",
            },
            True,
        ),
        (
            {
                "alertname": "ProbeCertificateExpiringSoon",
                "severity": "critical",
                "job": "blackbox",
                "instance": "https://shop.example.com",
            },
            False,
        ),
        (
            {"alertname": "ProbeSlow", "severity": "warning", "job": "blackbox", "instance": "https://api.example.com"},
            False,
        ),
    ],
    "the info inhibitor of one provider's account leaves another provider's alone": [
        # The InfoInhibitor carries the lone info alert's labels (rules/alerts/exporter.libsonnet).
        ({"alertname": "InfoInhibitor", "severity": "info", "target": "mail", "provider": "sendgrid"}, False),
        ({"alertname": "EmailOpenRateDropped", "severity": "info", "target": "mail", "provider": "sendgrid"}, True),
        ({"alertname": "EmailOpenRateDropped", "severity": "info", "target": "mail", "provider": "ses"}, False),
        # A status page is named after its provider and has no provider label of its own.
        ({"alertname": "InfoInhibitor", "severity": "info", "target": "mailgun"}, False),
        ({"alertname": "EmailProviderIncident", "severity": "info", "target": "mailgun"}, True),
        ({"alertname": "EmailProviderIncident", "severity": "info", "target": "sendgrid"}, False),
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


# Incidents that coexist, each as the alerts that must share one notification group (one
# page, one PagerDuty dedup key, one silence link); every other pair must be apart.
INCIDENTS: list[list[dict[str, str]]] = [
    # Two hosts, and two filesystems of one host.
    [
        {
            **FS,
            "severity": "critical",
            "instance": "db1:9100",
            "mountpoint": "/var/lib/postgresql",
            "device": "/dev/sdb1",
        }
    ],
    [{**FS, "severity": "critical", "instance": "db1:9100", "mountpoint": "/", "device": "/dev/sda1"}],
    [{**FS, "severity": "critical", "instance": "web3:9100", "mountpoint": "/", "device": "/dev/sda1"}],
    # Two databases of one server; two servers of one alert.
    [{"alertname": "PostgresTxIDWraparound", "severity": "critical", "target": "main", "datname": "app"}],
    [{"alertname": "PostgresTxIDWraparound", "severity": "critical", "target": "main", "datname": "billing"}],
    # A critical and its escalated copy are one incident: one PagerDuty incident, not two.
    [
        {"alertname": "RedisDown", "severity": "critical", "target": "cache"},
        {"alertname": "RedisDown", "severity": "critical", "escalated": "true", "target": "cache"},
    ],
    [{"alertname": "RedisDown", "severity": "critical", "target": "sessions"}],
    # Two providers, both accounts named `mail`; one provider's two figures are one incident.
    [
        {
            "alertname": "EmailBounceRatioHigh",
            "severity": "critical",
            "target": "mail",
            "provider": "sendgrid",
            "figure": "provider",
        },
        {
            "alertname": "EmailBounceRatioHigh",
            "severity": "critical",
            "target": "mail",
            "provider": "sendgrid",
            "figure": "computed",
        },
    ],
    [
        {
            "alertname": "EmailBounceRatioHigh",
            "severity": "critical",
            "target": "mail",
            "provider": "ses",
            "figure": "provider",
        }
    ],
    # blackbox_exporter probes: no target, the URL is the instance.
    [
        {
            "alertname": "ProbeEndpointDown",
            "severity": "critical",
            "job": "blackbox",
            "instance": "https://a.example.com",
        }
    ],
    [
        {
            "alertname": "ProbeEndpointDown",
            "severity": "critical",
            "job": "blackbox",
            "instance": "https://b.example.com",
        }
    ],
    # One app's fast and slower burn windows are one incident; another app is another.
    [
        {"alertname": "AppErrorBudgetBurn", "severity": "critical", "job": "app", "long": "1h", "short": "5m"},
        {"alertname": "AppErrorBudgetBurn", "severity": "critical", "job": "app", "long": "6h", "short": "30m"},
    ],
    [{"alertname": "AppErrorBudgetBurn", "severity": "critical", "job": "shop", "long": "1h", "short": "5m"}],
]


def _key(labels: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in labels.items() if k != "case")


def test_coexisting_incidents_page_apart(alertmanager: Alertmanager) -> None:
    """Through /api/v2/alerts/groups: each incident is one group of the pagerduty receiver."""
    alertmanager.post_alerts(alert(**labels, case="grouping") for incident in INCIDENTS for labels in incident)
    expected = {frozenset(_key(labels) for labels in incident) for incident in INCIDENTS}

    def grouped() -> bool:
        groups = http_json(f"{alertmanager.url}/api/v2/alerts/groups?receiver=pagerduty&filter=case%3D%22grouping%22")
        found = {frozenset(_key(a["labels"]) for a in group["alerts"]) for group in groups}
        assert found == expected, f"groups: {[sorted(g['labels'].items()) for g in groups]}"
        for group in groups:
            # The group's labels (the page's title and silence link) name the broken thing.
            common = set.intersection(*(set(_key(a["labels"])) for a in group["alerts"]))
            identifying = {(k, v) for k, v in common if k not in {"severity", "escalated", "figure", "long", "short"}}
            assert identifying <= set(group["labels"].items()), (group["labels"], identifying)
        return True

    wait_until(grouped, 10, interval=0.1, message="each incident in a group of its own")


def test_only_the_escalated_copy_reaches_the_sms_receiver(alertmanager: Alertmanager) -> None:
    """RedisDown and its escalated copy: the SMS receiver has one group, holding the copy only."""
    twin = {"alertname": "RedisDown", "severity": "critical", "target": "sms-queue"}
    copy = {**twin, "escalated": "true"}
    alertmanager.post_alerts([alert(**twin, case="sms"), alert(**copy, case="sms")])

    def grouped() -> bool:
        sms = http_json(f"{alertmanager.url}/api/v2/alerts/groups?receiver=sms-emergency&filter=case%3D%22sms%22")
        pages = http_json(f"{alertmanager.url}/api/v2/alerts/groups?receiver=pagerduty&filter=case%3D%22sms%22")
        assert [[_key(a["labels"]) for a in g["alerts"]] for g in sms] == [[_key(copy)]], sms
        assert [{_key(a["labels"]) for a in g["alerts"]} for g in pages] == [{_key(twin), _key(copy)}], pages
        return True

    wait_until(grouped, 10, interval=0.1, message="the SMS gets the copy, the pager one group of both")
