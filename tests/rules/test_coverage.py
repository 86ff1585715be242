"""Every alert is unit-tested: a firing case per severity, with its labels and all four
annotations asserted, and a case where it does not fire."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml

from tests.rules.rulepack import alert_rules, load_generated, promtool_test_files

# Alerts that fire by design all the time: there is no "not firing" case to write.
ALWAYS_FIRING = {"Watchdog"}
ANNOTATIONS = {"summary", "description", "runbook_url", "dashboard_url"}


def _cases() -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]], list[str]]:
    firing: dict[tuple[str, str], list[str]] = defaultdict(list)
    silent: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    for path in promtool_test_files():
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        for group in doc.get("tests", []):
            for case in group.get("alert_rule_test", []):
                name = case["alertname"]
                where = f"{path.name} {name}@{case['eval_time']}"
                expected = case.get("exp_alerts") or []
                if not expected:
                    silent[name].append(where)
                for alert in expected:
                    severity = (alert.get("exp_labels") or {}).get("severity", "")
                    missing = ANNOTATIONS - set(alert.get("exp_annotations") or {})
                    if missing:
                        problems.append(f"{where}: annotations not asserted: {sorted(missing)}")
                    firing[(name, severity)].append(where)
    return firing, silent, problems


def test_every_alert_has_firing_and_silent_cases() -> None:
    firing, silent, problems = _cases()
    for rule in alert_rules(load_generated("prometheus_alerts.yaml")["groups"]):
        name, severity = rule["alert"], rule["labels"]["severity"]
        if (name, severity) not in firing:
            problems.append(f"{name} ({severity}): no promtool case where it fires")
        if name not in silent and name not in ALWAYS_FIRING:
            problems.append(f"{name}: no promtool case where it does not fire")
    assert not problems, "\n".join(problems)


def test_tests_name_only_existing_alerts() -> None:
    firing, silent, _ = _cases()
    known = {rule["alert"] for rule in alert_rules(load_generated("prometheus_alerts.yaml")["groups"])}
    unknown = {name for name, _ in firing} | set(silent)
    assert unknown <= known, f"tests for alerts that do not exist: {sorted(unknown - known)}"
