"""promtool on the generated rules: syntax (check rules) and behaviour (test rules)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.rules.rulepack import GENERATED, PROMTOOL, load_generated, promtool_test_files, relevant_rules


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


def _unit_test(test_file: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    """promtool on a copy of ``test_file`` whose rule files hold only the groups its input can
    reach (rulepack.relevant_rules: leaving the others out changes no result)."""
    spec = yaml.safe_load(test_file.read_text())
    rule_files = [(test_file.parent / name).resolve() for name in spec["rule_files"]]
    spec["rule_files"] = [str(relevant_rules(spec["tests"], scratch / f"{test_file.stem}-rules.yaml", rule_files))]
    copy = scratch / test_file.name
    copy.write_text(yaml.safe_dump(spec, sort_keys=False, width=10_000))
    return _promtool("test", "rules", copy, timeout=300)


@pytest.fixture(scope="module")
def unit_runs(request: pytest.FixtureRequest) -> Iterator[dict[Path, Future[subprocess.CompletedProcess[str]]]]:
    """Every selected rules/tests file started at once, one promtool a core: each test waits for its own."""
    selected = [
        item.callspec.params["test_file"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_promtool_unit_tests" and hasattr(item, "callspec")
    ]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        runs = {path: pool.submit(_unit_test, path, Path(scratch)) for path in selected}
        yield runs
        for run in runs.values():
            run.cancel()


@pytest.mark.parametrize("test_file", promtool_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path, unit_runs: dict[Path, Future[subprocess.CompletedProcess[str]]]) -> None:
    result = unit_runs[test_file].result()
    assert result.returncode == 0, f"{test_file.name}:\n{result.stdout}{result.stderr}"
