"""config.libsonnet really drives the rules: an override changes the rendered expressions."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rules.rulepack import PROMTOOL, alert_rules, render


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
    changed = render("{ _config+:: { app+: { errorRatioWarning: 0.02 }, escalation+: { appHighErrorRatio: '1h' } } }")
    rules = [r for r in alert_rules(changed["alerts"]["groups"]) if r["alert"] == "AppHighErrorRatio"]
    assert [(r["labels"]["severity"], r["for"], r["labels"].get("escalated")) for r in rules] == [
        ("warning", "5m", None),
        ("critical", "1h", "true"),
    ]
    # The threshold, wherever the expression puts it (a traffic floor may follow it).
    assert all("ratio_rate5m > 0.02\n" in r["expr"] + "\n" for r in rules)


def _escalated(rendered: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(alertname, long window or '') -> `for` of every escalated copy."""
    return {
        (r["alert"], r["labels"].get("long", "")): r["for"]
        for r in alert_rules(rendered["alerts"]["groups"])
        if r["labels"].get("escalated") == "true"
    }


def test_every_escalation_time_comes_from_the_escalation_block() -> None:
    default = _escalated(render())
    config = render()["config"]["escalation"]
    assert len(default) == sum(len(v) if isinstance(v, dict) else 1 for v in config.values())
    # one minute more on every key moves exactly that alert's copy
    override = ", ".join(
        f"{key}: {{ '1h': '61m' }}" if isinstance(value, dict) else f"{key}: '7h'" for key, value in config.items()
    )
    changed = _escalated(render(f"{{ _config+:: {{ escalation+: {{ {override} }} }} }}"))
    assert set(changed) == set(default)
    assert set(changed.values()) == {"7h", "61m"}
    assert changed[("AppErrorBudgetBurn", "1h")] == "61m"


def test_an_escalation_can_be_turned_off() -> None:
    changed = _escalated(render("{ _config+:: { escalation+: { redisDown: null } } }"))
    assert ("RedisDown", "") not in changed
    assert ("PostgresDown", "") in changed


def test_an_escalation_before_the_alerts_own_for_fails_to_render() -> None:
    # RedisDown's own `for` is 1m: an escalation at 1m would send the SMS with the first page.
    with pytest.raises(RuntimeError, match="RedisDown: the escalation"):
        render("{ _config+:: { escalation+: { redisDown: '1m' } } }")


def test_selector_override_reaches_every_exporter_rule() -> None:
    changed = render("{ _config+:: { exporterSelector: 'job=\"my-exporter\"' } }")
    groups = {g["name"]: g for g in changed["alerts"]["groups"]}
    for name in (
        "stack-exporter.redis",
        "stack-exporter.postgres",
        "stack-exporter.pgbouncer",
        "stack-exporter.exporter",
        "stack-exporter.email",
        "stack-exporter.statuspages",
        "stack-exporter.email_domains",
    ):
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
    # the alert and its escalated copy: one runbook, one dashboard
    rules = [r for r in alert_rules(changed["alerts"]["groups"]) if r["alert"] == "RedisDown"]
    assert len(rules) == 2
    for rule in rules:
        assert rule["annotations"]["dashboard_url"] == "https://g.internal/d/stack-redis"
        assert rule["annotations"]["runbook_url"] == "https://wiki/runbooks#redisdown"


# blackbox_exporter's probes: no `target` label, the probed URL is the instance (relabelled
# from __param_target).  Two sites, so a description or a join that ignored the instance
# would show up as a wrong or missing name.
BLACKBOX = (
    "{ _config+:: { runbookUrlBase: 'https://rb', grafanaUrl: 'https://g',"
    " probe+: { selector: 'job=\"blackbox\"', targetLabel: 'instance' } } }"
)
BLACKBOX_TEST = """
rule_files: [alerts.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'probe_success{job="blackbox", instance="https://www.test"}'
        values: '1 0x5'
      - series: 'probe_success{job="blackbox", instance="https://shop.test"}'
        values: '1x5'
      - series: 'probe_duration_seconds{job="blackbox", instance="https://shop.test"}'
        values: '2.5x15'
      - series: 'probe_ssl_earliest_cert_expiry{job="blackbox", instance="https://shop.test"}'
        values: '864000x15'
      # our exporter's probes are not selected by this setup
      - series: 'probe_success{job="stack-exporter", instance="exp:9847", target="site"}'
        values: '0x5'
    alert_rule_test:
      - eval_time: 3m
        alertname: ProbeEndpointDown
        exp_alerts:
          - exp_labels: {severity: critical, job: blackbox, instance: 'https://www.test'}
            exp_annotations:
              summary: 'An HTTP endpoint is down.'
              description: 'The probe of https://www.test has failed for 2m.'
              runbook_url: 'https://rb#probeendpointdown'
              dashboard_url: 'https://g/d/stack-overview'
      - eval_time: 10m
        alertname: ProbeSlow
        exp_alerts:
          - exp_labels: {severity: warning, job: blackbox, instance: 'https://shop.test'}
            exp_annotations:
              summary: 'An HTTP endpoint answers slowly.'
              description: 'The probe of https://shop.test took 2.5s (threshold 2s).'
              runbook_url: 'https://rb#probeslow'
              dashboard_url: 'https://g/d/stack-overview'
      - eval_time: 0m
        alertname: ProbeCertificateExpiringSoon
        exp_alerts:
          - exp_labels: {severity: warning, job: blackbox, instance: 'https://shop.test'}
            exp_annotations:
              summary: 'A TLS certificate expires soon.'
              description: 'The certificate served by https://shop.test expires in 10d 0h 0m 0s (threshold 14 days).'
              runbook_url: 'https://rb#probecertificateexpiringsoon'
              dashboard_url: 'https://g/d/stack-overview'
"""


def test_probe_alerts_name_the_endpoint_with_the_configured_label(tmp_path: Path) -> None:
    """The blackbox setup of config.libsonnet: descriptions name the URL, checked by promtool."""
    rendered = render(BLACKBOX)
    probe = [r for r in alert_rules(rendered["alerts"]["groups"]) if r["alert"].startswith("Probe")]
    assert probe and all('job="blackbox"' in r["expr"] for r in probe)
    assert not any("$labels.target" in r["annotations"]["description"] for r in probe)
    assert not any(re.search(r"\btarget\b", r["expr"]) for r in probe)
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rendered["alerts"], sort_keys=False))
    (tmp_path / "blackbox-test.yaml").write_text(BLACKBOX_TEST)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "blackbox-test.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_probe_label_defaults_to_our_exporters_target() -> None:
    probe = [r for r in alert_rules(render()["alerts"]["groups"]) if r["alert"].startswith("Probe")]
    assert all("{{ $labels.target }}" in r["annotations"]["description"] for r in probe)
