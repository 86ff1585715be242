"""The committed rules/generated/ files are exactly what the jsonnet renders now."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from scripts import generate_rules as gen
from tests.rules.rulepack import GENERATED


@cache
def _fresh() -> dict[Path, str]:
    """One render of the mixin for the three tests (each takes about 10 s); none changes it."""
    return dict(gen.render())


def test_generated_files_are_fresh() -> None:
    fresh = _fresh()
    stale = [path.name for path, text in fresh.items() if not path.exists() or path.read_text() != text]
    extra = sorted({p.name for p in GENERATED.glob("*.yaml")} - {p.name for p in fresh})
    assert not stale, f"stale generated files {stale}: run `make generate`"
    assert not extra, f"generated files the mixin no longer renders: {extra}"


def test_the_fingerprint_records_these_rules_under_this_version() -> None:
    fresh = _fresh()
    recorded = (GENERATED / "FINGERPRINT").read_text().split()
    assert recorded == [gen.version(), gen.fingerprint(fresh)], "run `make generate` and commit the FINGERPRINT"
    assert gen.version_problem(fresh) is None


def test_a_rule_change_without_a_version_bump_is_refused() -> None:
    fresh = _fresh()
    alerts = GENERATED / "prometheus_alerts.yaml"
    changed = {**fresh, alerts: fresh[alerts].replace("for: 1m", "for: 2m", 1)}
    assert changed[alerts] != fresh[alerts]
    problem = gen.version_problem(changed)
    assert problem is not None
    assert "bump it" in problem
