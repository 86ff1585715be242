"""alertmanager/alertmanager.yml: amtool accepts it, and every alert routes where it must.

The route table runs `amtool config routes test --verify.receivers`, which resolves a
label set through the real routing tree (Alertmanager's own code) and fails when the
receivers differ, in order.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from peers.alerting import ALERTMANAGER_CONFIG, AMTOOL, RULES_GENERATED, iter_alert_rules

ALERTS_FILE = RULES_GENERATED / "prometheus_alerts.yaml"

CRITICAL = "statuspage,slack-incidents,pagerduty"
ESCALATED = "sms-emergency," + CRITICAL
WARNING = "slack-warnings"
INFO = "email-info-digest"
DEFAULT = "email-default"


def amtool(*args: str, config: Path = ALERTMANAGER_CONFIG) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AMTOOL, *args, f"--config.file={config}"] if args[:1] == ("config",) else [AMTOOL, *args, str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def routes_test(labels: dict[str, str], expected: str, config: Path = ALERTMANAGER_CONFIG) -> str:
    """Receivers amtool resolves for ``labels``; fails the test when they are not ``expected``."""
    pairs = [f"{k}={v}" for k, v in labels.items()]
    proc = amtool("config", "routes", "test", f"--verify.receivers={expected}", *pairs, config=config)
    assert proc.returncode == 0, f"{labels} -> {proc.stdout.strip()}, expected {expected}\n{proc.stderr}"
    return proc.stdout.strip()


def load() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    return config


def test_amtool_check_config() -> None:
    proc = amtool("check-config")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_check_config_rejects_a_broken_config(tmp_path: Path) -> None:
    # The check above must be able to fail: a route to a receiver that does not exist.
    broken = load()
    broken["route"]["routes"][0]["receiver"] = "no-such-receiver"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(broken))
    (tmp_path / "templates").symlink_to(ALERTMANAGER_CONFIG.parent / "templates")
    proc = amtool("check-config", config=path)
    assert proc.returncode != 0
    assert "no-such-receiver" in proc.stdout + proc.stderr


def test_every_inhibit_rule_has_equal_labels() -> None:
    rules = load()["inhibit_rules"]
    assert rules
    for rule in rules:
        assert rule.get("equal"), f"inhibit rule without `equal` mutes everywhere: {rule}"
        assert rule.get("source_matchers") and rule.get("target_matchers"), rule


# Keys that would hold a secret inline; each has a *_file twin that must be used instead.
SECRET_KEYS = {
    "smtp_auth_password", "auth_password", "routing_key", "service_key", "api_url", "slack_api_url",
    "credentials", "password", "secret_key", "access_key", "bearer_token", "api_key", "token",
}  # fmt: skip


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in [(f"{path}.{k}", v), *_walk(v, f"{path}.{k}")]]
    if isinstance(node, list):
        return [item for i, v in enumerate(node) for item in _walk(v, f"{path}[{i}]")]
    return []


def test_secrets_only_through_files() -> None:
    inline = [path for path, _ in _walk(load()) if path.rsplit(".", 1)[-1] in SECRET_KEYS]
    assert not inline, f"secrets must come from *_file fields: {inline}"
    files = [value for path, value in _walk(load()) if path.endswith("_file")]
    assert len(files) >= 6, files


ROUTES = [
    # (labels, receivers in order): every severity, the special alerts and the escalation path.
    ({"alertname": "RedisDown", "severity": "critical", "target": "cache"}, CRITICAL),
    ({"alertname": "PostgresTooManyConnections", "severity": "critical", "target": "main"}, CRITICAL),
    ({"alertname": "PostgresTooManyConnections", "severity": "warning", "target": "main"}, WARNING),
    ({"alertname": "AppHighErrorRatio", "severity": "warning", "job": "app"}, WARNING),
    ({"alertname": "AppHighErrorRatio", "severity": "critical", "escalated": "true", "job": "app"}, ESCALATED),
    # A critical's escalated copy: SMS as well, then where its twin goes (one incident there).
    ({"alertname": "RedisDown", "severity": "critical", "escalated": "true", "target": "cache"}, ESCALATED),
    ({"alertname": "PostgresDown", "severity": "critical", "escalated": "true", "target": "main"}, ESCALATED),
    (
        {
            "alertname": "ProbeEndpointDown",
            "severity": "critical",
            "escalated": "true",
            "job": "blackbox",
            "instance": "https://www.example.com",
        },
        ESCALATED,
    ),
    # A warning's escalated copy (EmailProviderDown) is critical: its first page, with the SMS.
    (
        {
            "alertname": "EmailProviderDown",
            "severity": "critical",
            "escalated": "true",
            "target": "mail",
            "provider": "ses",
        },
        ESCALATED,
    ),
    # Only criticals escalate; a stray escalated label on a warning changes nothing.
    ({"alertname": "RedisMemoryHigh", "severity": "warning", "escalated": "true", "target": "cache"}, WARNING),
    ({"alertname": "RedisDown", "severity": "critical", "escalated": "false", "target": "cache"}, CRITICAL),
    ({"alertname": "EmailDMARCPolicyNone", "severity": "info", "target": "example.com"}, INFO),
    ({"alertname": "Watchdog", "severity": "info"}, "deadmans-switch"),
    ({"alertname": "Watchdog"}, "deadmans-switch"),
    ({"alertname": "InfoInhibitor", "severity": "info", "target": "example.com"}, "null"),
    # Two of everything at once route alike: two hosts, two databases, two providers, blackbox probes.
    (
        {
            "alertname": "NodeFilesystemSpaceLow",
            "severity": "critical",
            "job": "node",
            "instance": "db1:9100",
            "mountpoint": "/var/lib/postgresql",
        },
        CRITICAL,
    ),
    (
        {
            "alertname": "NodeFilesystemSpaceLow",
            "severity": "warning",
            "job": "node",
            "instance": "web3:9100",
            "mountpoint": "/",
        },
        WARNING,
    ),
    ({"alertname": "PostgresTxIDWraparound", "severity": "critical", "target": "main", "datname": "app"}, CRITICAL),
    ({"alertname": "PostgresTxIDWraparound", "severity": "warning", "target": "main", "datname": "billing"}, WARNING),
    (
        {
            "alertname": "EmailBounceRatioHigh",
            "severity": "critical",
            "target": "mail",
            "provider": "ses",
            "figure": "provider",
        },
        CRITICAL,
    ),
    (
        {
            "alertname": "EmailBounceRatioHigh",
            "severity": "warning",
            "target": "mail",
            "provider": "sendgrid",
            "figure": "computed",
        },
        WARNING,
    ),
    ({"alertname": "EmailOpenRateDropped", "severity": "info", "target": "mail", "provider": "resend"}, INFO),
    (
        {
            "alertname": "ProbeEndpointDown",
            "severity": "critical",
            "job": "blackbox",
            "instance": "https://www.example.com",
        },
        CRITICAL,
    ),
    # No severity, or one the pack does not use: the default email, never dropped.
    ({"alertname": "SomethingElse"}, DEFAULT),
    ({"alertname": "SomethingElse", "severity": "page"}, DEFAULT),
]


@pytest.mark.parametrize(("labels", "expected"), ROUTES, ids=[",".join(f"{v}" for v in r[0].values()) for r in ROUTES])
def test_route(labels: dict[str, str], expected: str) -> None:
    routes_test(labels, expected)


def test_route_test_can_fail() -> None:
    proc = amtool("config", "routes", "test", f"--verify.receivers={WARNING}", "severity=critical", "alertname=X")
    assert proc.returncode != 0


def expected_receivers(labels: dict[str, str]) -> str:
    """The routing policy alertmanager.yml implements, stated once, for every alert of the rule pack."""
    if labels["alertname"] == "Watchdog":
        return "deadmans-switch"
    if labels["alertname"] == "InfoInhibitor":
        return "null"
    severity = labels.get("severity")
    if severity == "critical":
        return ESCALATED if labels.get("escalated") == "true" else CRITICAL
    return {"warning": WARNING, "info": INFO}.get(severity or "", DEFAULT)


def rule_pack_alerts() -> list[dict[str, str]]:
    assert ALERTS_FILE.exists(), f"{ALERTS_FILE} is missing: run make generate"
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for rule in iter_alert_rules(ALERTS_FILE):
        # Labels as Alertmanager sees them; target stands for the per-series labels.
        labels = {"alertname": rule["alert"], **{k: str(v) for k, v in rule.get("labels", {}).items()}}
        labels.setdefault("target", "example")
        seen[tuple(sorted(labels.items()))] = labels
    return list(seen.values())


def test_every_rule_pack_alert_routes_by_its_severity() -> None:
    """Every source's alerts (Redis..., Postgres..., App...) through the real tree, from the generated rules."""
    alerts = rule_pack_alerts()
    sources = {a["alertname"] for a in alerts}
    assert {"RedisDown", "PostgresDown", "Watchdog", "InfoInhibitor"} <= sources
    assert any(a.get("escalated") == "true" for a in alerts), "the rule pack has no escalated alert to route"
    for labels in alerts:
        assert labels.get("severity") in {"critical", "warning", "info"}, f"{labels}: severity outside the pack's set"
        routes_test(labels, expected_receivers(labels))


def test_time_intervals_are_defined_and_used() -> None:
    config = load()
    names = {interval["name"] for interval in config.get("time_intervals", [])}
    assert "business-hours" in names

    def used(route: dict[str, Any]) -> set[str]:
        own = set(route.get("active_time_intervals", [])) | set(route.get("mute_time_intervals", []))
        return own.union(*(used(child) for child in route.get("routes", [])))

    assert used(config["route"]) == names


# Labels that vary within one incident and so must neither split a group nor keep a
# critical from muting its warning twin (rule pack: burn windows, reputation figure, Redis limit).
WITHIN_ONE_INCIDENT = {"severity", "escalated", "long", "short", "figure", "limit"}


def test_groups_and_critical_inhibition_separate_the_same_incidents() -> None:
    """The page's group and the critical-mutes-warning rule must agree on what one incident is."""
    config = load()
    group_by = config["route"]["group_by"]
    (critical,) = [r for r in config["inhibit_rules"] if r["source_matchers"] == ['severity="critical"']]
    assert critical["equal"] == group_by
    assert {"alertname", "instance", "target", "provider", "mountpoint", "datname", "slot_name"} <= set(group_by)
    assert not WITHIN_ONE_INCIDENT & set(group_by)
    # Only the Watchdog and the info digest group otherwise; every other route inherits.
    overriding = {tuple(r.get("matchers", [])): r["group_by"] for r in config["route"]["routes"] if "group_by" in r}
    assert overriding == {('alertname="Watchdog"',): ["alertname"], ('severity="info"',): ["severity"]}


def test_down_and_info_inhibitions_compare_the_labels_that_separate_incidents() -> None:
    rules = {r["source_matchers"][0]: r["equal"] for r in load()["inhibit_rules"]}
    assert set(rules['alertname="EmailProviderDown"']) == {"target", "provider"}
    # blackbox_exporter's probes have no target: instance (the URL) separates them.
    assert {"job", "instance", "target"} <= set(rules['alertname="ProbeEndpointDown"'])
    assert set(rules['alertname="InfoInhibitor"']) == {"target", "provider"}


# `without (labels) (func(metric` or `without (labels) (metric`: the labels and what precedes the metric
_WITHOUT = re.compile(r"\bwithout\s*\(([^)]*)\)\s*\(([^{(]*\(?\s*[a-zA-Z_:][a-zA-Z0-9_:]*)")


def _documented_labels() -> dict[str, set[str]]:
    """Every metric of docs/metrics/*.md with its documented labels."""
    labels: dict[str, set[str]] = {}
    for page in sorted((Path(__file__).resolve().parents[2] / "docs" / "metrics").glob("*.md")):
        for line in page.read_text(encoding="utf-8").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("| `") and len(cells) == 4:
                labels.setdefault(cells[0].strip("`"), set()).update(
                    label.strip().strip("`") for label in cells[2].split(",") if label.strip()
                )
    return labels


def test_every_label_the_rule_pack_aggregates_by_is_grouped_on() -> None:
    """A `by (...)` or `on (...)` label of an alert expression names the broken thing: the route must group on it.

    So does every documented label of a metric the expression aggregates `without (...)`
    some labels: the ones it keeps (an email type, a page) tell two incidents apart.
    """
    group_by = set(load()["route"]["group_by"])
    documented = _documented_labels()
    seen: set[str] = set()
    for rule in iter_alert_rules(ALERTS_FILE):
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
            seen |= {label.strip() for label in clause.split(",") if label.strip()}
        for clause, inner in re.findall(_WITHOUT, rule["expr"]):
            dropped = {label.strip() for label in clause.split(",")}
            metric = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", inner)[-1]
            seen |= documented.get(metric, set()) - dropped
    # `event`, `quantile` and the InfoInhibitor's internal join label never reach Alertmanager as identity.
    missing = seen - group_by - WITHIN_ONE_INCIDENT - {"event", "le", "quantile", "infoinhibitor_subject"}
    assert not missing, f"the route does not group by {sorted(missing)}"
