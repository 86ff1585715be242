"""The committed rules/generated/ files are exactly what the jsonnet renders now."""

from __future__ import annotations

from tests.rules.rulepack import GENERATED, generator


def test_generated_files_are_fresh() -> None:
    fresh = generator().render()
    stale = [path.name for path, text in fresh.items() if not path.exists() or path.read_text() != text]
    extra = sorted({p.name for p in GENERATED.glob("*.yaml")} - {p.name for p in fresh})
    assert not stale, f"stale generated files {stale}: run `make generate`"
    assert not extra, f"generated files no entry point renders: {extra}"
