"""The checks mixtool's linter makes, plus ours: names, severity, annotations, links,
recording-rule names and the pack's version."""

from __future__ import annotations

import re

from tests.rules.rulepack import ROOT, RULES, alert_rules, load_generated, render

# Alert name prefix of each group (the source it watches).
PREFIXES = {
    "stack-exporter.app": ("App",),
    "stack-exporter.http_probes": ("Probe",),
    "stack-exporter.node": ("Node",),
    "stack-exporter.postgres": ("Postgres",),
    "stack-exporter.pgbouncer": ("PgBouncer",),
    "stack-exporter.redis": ("Redis",),
    "stack-exporter.lago": ("Lago",),
    "stack-exporter.directus": ("Directus",),
    "stack-exporter.email": ("Email",),
    "stack-exporter.statuspages": ("Email",),
    "stack-exporter.email_domains": ("Email",),
    "stack-exporter.email_webhooks": ("Email",),
    "stack-exporter.exporter": ("StackExporter",),
    "stack-exporter.rum": ("Rum",),
    # the two meta alerts keep the names Alertmanager configs and tools expect
    "stack-exporter.meta": ("Watchdog", "InfoInhibitor"),
}
CAMEL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$|^[A-Z][A-Za-z0-9]*$")
RECORD = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")


def _anchors() -> set[str]:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    return {m.group(1).lower() for m in re.finditer(r"^## (\w+)\s*$", text, re.M)}


def test_alerts_follow_the_conventions() -> None:
    config = render()["config"]
    anchors = _anchors()
    uids = set(config["dashboardUids"].values())
    problems: list[str] = []
    for group in load_generated("prometheus_alerts.yaml")["groups"]:
        prefixes = PREFIXES.get(group["name"])
        if prefixes is None:
            problems.append(f"group {group['name']}: no prefix declared in test_lint.PREFIXES")
            continue
        for rule in group["rules"]:
            name = rule["alert"]
            ann, labels = rule.get("annotations", {}), rule.get("labels", {})
            if not CAMEL.match(name) or not name.startswith(prefixes):
                problems.append(f"{name}: not CamelCase with prefix {prefixes}")
            if labels.get("severity") not in {"critical", "warning", "info"}:
                problems.append(f"{name}: severity {labels.get('severity')!r}")
            summary = ann.get("summary", "")
            if not summary or "{{" in summary or not summary.endswith("."):
                problems.append(f"{name}: summary must be one static sentence: {summary!r}")
            if "{{" not in ann.get("description", "") and name != "Watchdog":  # the Watchdog has no labels
                problems.append(f"{name}: description must carry labels or the value")
            if ann.get("runbook_url") != f"{config['runbookUrlBase']}#{name.lower()}":
                problems.append(f"{name}: runbook_url {ann.get('runbook_url')!r}")
            if name.lower() not in anchors:
                problems.append(f"{name}: no '## {name}' section in docs/runbooks.md")
            dash = ann.get("dashboard_url", "")
            if not dash.startswith(config["grafanaUrl"] + "/d/") or dash.rsplit("/", 1)[-1] not in uids:
                problems.append(f"{name}: dashboard_url {dash!r} is not one of the stable uids")
            if "escalated" in labels and labels["escalated"] != "true":
                problems.append(f"{name}: escalated label must be 'true'")
    assert not problems, "\n".join(problems)


def test_runbooks_have_no_orphans() -> None:
    names = {rule["alert"].lower() for rule in alert_rules(load_generated("prometheus_alerts.yaml")["groups"])}
    assert _anchors() <= names, f"runbook sections for alerts that do not exist: {sorted(_anchors() - names)}"


def test_recording_rules_are_level_metric_operations() -> None:
    bad = [
        rule["record"]
        for group in load_generated("prometheus_rules.yaml")["groups"]
        for rule in group["rules"]
        if rule["record"] != "stack_rulepack_info" and not RECORD.match(rule["record"])
    ]
    assert not bad, f"not level:metric:operations: {bad}"


def test_rulepack_version_is_exported_and_in_the_changelog() -> None:
    version = (RULES / "VERSION").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    info = [
        rule
        for group in load_generated("prometheus_rules.yaml")["groups"]
        for rule in group["rules"]
        if rule["record"] == "stack_rulepack_info"
    ]
    assert [rule["labels"]["version"] for rule in info] == [version]
    obj = load_generated("prometheus_rule_object.yaml")
    assert obj["metadata"]["annotations"]["stack-exporter/rulepack-version"] == version
    assert f"## [{version}]" in (RULES / "CHANGELOG.md").read_text(), "no CHANGELOG entry for the current version"
