"""promtool on the generated rules: syntax (check rules) and behaviour (test rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.rules import unit_tests
from tests.rules.rulepack import GENERATED, PROMTOOL, load_generated, promtool_test_files


def _promtool(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False)


def test_check_rules() -> None:
    result = _promtool("check", "rules", GENERATED / "prometheus_alerts.yaml", GENERATED / "prometheus_rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_object_holds_valid_rules(tmp_path: Path) -> None:
    obj = load_generated("prometheus_rule_object.yaml")
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    assert obj["kind"] == "PrometheusRule"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(obj["spec"]))
    result = _promtool("check", "rules", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    # the same rules as the plain files, nothing lost or added
    plain = load_generated("prometheus_rules.yaml")["groups"] + load_generated("prometheus_alerts.yaml")["groups"]
    assert obj["spec"]["groups"] == plain


@pytest.mark.parametrize("test_file", promtool_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path) -> None:
    # started when the session's tests were collected (tests/conftest.py), in the background
    result = unit_tests.result(test_file)
    assert result.returncode == 0, f"{test_file.name}:\n{result.stdout}{result.stderr}"
