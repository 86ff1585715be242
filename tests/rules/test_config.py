"""config.libsonnet really drives the rules: an override changes the rendered expressions."""

from __future__ import annotations

from typing import Any

from tests.rules.rulepack import alert_rules, render


def _exprs(rendered: dict[str, Any], name: str) -> list[str]:
    return [rule["expr"] for rule in alert_rules(rendered["alerts"]["groups"]) if rule["alert"] == name]


def test_threshold_override_changes_the_expression() -> None:
    default = render()
    changed = render("{ _config+:: { redis+: { memoryRatio: 0.75 } } }")
    (before,) = _exprs(default, "RedisMemoryHigh")
    (after,) = _exprs(changed, "RedisMemoryHigh")
    assert "> 0.9" in before
    assert "> 0.75" in after and "> 0.9\n" not in after
    # nothing else moved
    others = [r for r in alert_rules(default["alerts"]["groups"]) if r["alert"] != "RedisMemoryHigh"]
    others_after = [r for r in alert_rules(changed["alerts"]["groups"]) if r["alert"] != "RedisMemoryHigh"]
    assert others == others_after


def test_escalation_and_for_durations_come_from_config() -> None:
    changed = render("{ _config+:: { app+: { errorRatioWarning: 0.02, errorRatioEscalateFor: '1h' } } }")
    rules = [r for r in alert_rules(changed["alerts"]["groups"]) if r["alert"] == "AppHighErrorRatio"]
    assert [(r["labels"]["severity"], r["for"], r["labels"].get("escalated")) for r in rules] == [
        ("warning", "5m", None),
        ("critical", "1h", "true"),
    ]
    assert all(r["expr"].endswith("> 0.02") for r in rules)


def test_selector_override_reaches_every_exporter_rule() -> None:
    changed = render("{ _config+:: { exporterSelector: 'job=\"my-exporter\"' } }")
    groups = {g["name"]: g for g in changed["alerts"]["groups"]}
    for name in ("stack-exporter.redis", "stack-exporter.postgres", "stack-exporter.exporter", "stack-exporter.email"):
        for rule in groups[name]["rules"]:
            assert 'job="stack-exporter"' not in rule["expr"], rule["alert"]
    assert any('job="my-exporter"' in r["expr"] for r in groups["stack-exporter.redis"]["rules"])


def test_app_metric_and_labels_are_configurable() -> None:
    changed = render(
        "{ _config+:: { app+: { selector: 'service=\"shop\"', requestMetrics: ['shop_requests_total'],"
        " statusLabels: ['http_status'] } } }"
    )
    exprs = "\n".join(rule["expr"] for group in changed["rules"]["groups"] for rule in group["rules"])
    assert 'shop_requests_total{service="shop"}' in exprs
    assert '"code", "$1", "http_status"' in exprs
    assert "http_requests_total" not in exprs


def test_slo_alerts_can_be_turned_off() -> None:
    assert _exprs(render(), "AppErrorBudgetBurn")
    assert not _exprs(render("{ _config+:: { app+: { slo+: { enabled: false } } } }"), "AppErrorBudgetBurn")


def test_links_follow_the_link_settings() -> None:
    changed = render("{ _config+:: { grafanaUrl: 'https://g.internal', runbookUrlBase: 'https://wiki/runbooks' } }")
    (rule,) = [r for r in alert_rules(changed["alerts"]["groups"]) if r["alert"] == "RedisDown"]
    assert rule["annotations"]["dashboard_url"] == "https://g.internal/d/stack-redis"
    assert rule["annotations"]["runbook_url"] == "https://wiki/runbooks#redisdown"
