"""Every source in the registry has all its parts, found by its config key.

A newcomer follows a source's name to its collector module, its docs page
(docs/metrics/<page>.md), its alerts file (rules/alerts/<page>.libsonnet) and its
tests (tests/collectors/test_<key or page>.py).  A source added without one of
them fails here, naming what is missing.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from exporter.collectors import SETTINGS, SOURCES, SourceSpec
from exporter.collectors.base import Collector
from exporter.schema import TargetConfig

ROOT = Path(__file__).resolve().parent.parent


def missing_parts(spec: SourceSpec, root: Path = ROOT) -> list[str]:
    """What of ``spec``'s parts is not where its name says it is."""
    problems = []
    if importlib.util.find_spec(spec.module) is None:
        problems.append(f"collector module {spec.module} does not exist")
    elif not spec.module.endswith((f".{spec.key}", f".{spec.key}.collector")):
        problems.append(f"collector module {spec.module} is not named after the source {spec.key!r}")
    page = root / "docs" / "metrics" / f"{spec.docs_page}.md"
    if not page.is_file():
        problems.append(f"docs page {page.relative_to(root)} is missing")
    elif spec.key not in page.read_text(encoding="utf-8").lower():
        problems.append(f"docs page {page.relative_to(root)} never mentions {spec.key}")
    alerts = root / "rules" / "alerts" / f"{spec.docs_page}.libsonnet"
    if not alerts.is_file():
        problems.append(f"alerts file {alerts.relative_to(root)} is missing")
    tests = [root / "tests" / "collectors" / f"test_{name}.py" for name in dict.fromkeys((spec.key, spec.docs_page))]
    if not any(t.is_file() for t in tests):
        problems.append(f"test file {' or '.join(str(t.relative_to(root)) for t in tests)} is missing")
    return problems


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_every_source_has_its_parts(key: str) -> None:
    spec = SOURCES[key]
    assert spec.key == key
    assert not missing_parts(spec), f"source {key}: " + "; ".join(missing_parts(spec))


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_the_collector_class_is_the_registrys(key: str) -> None:
    """The registry alone says which source a class serves: no class repeats its key."""
    cls = SOURCES[key].collector()
    assert issubclass(cls, Collector)
    assert issubclass(cls.config_class, TargetConfig)
    assert "kind" not in vars(cls), f"{cls.__name__} sets kind; the registry key is the only name"
    assert inspect.getmodule(cls).__name__.startswith(SOURCES[key].module)  # type: ignore[union-attr]


def test_settings_sections_come_from_their_source() -> None:
    for section, spec in SETTINGS.items():
        assert spec.settings == section
        assert section not in SOURCES
        assert inspect.isclass(spec.settings_class())


def test_a_source_without_its_parts_is_named(tmp_path: Path) -> None:
    """The completeness check can fail: an empty tree lacks everything for a made-up source."""
    spec = SourceSpec("mysql", "exporter.collectors.mysql", "MySQL")
    problems = missing_parts(spec, tmp_path)
    assert [p.split(" ")[0] for p in problems] == ["collector", "docs", "alerts", "test"]
    assert "docs/metrics/mysql.md" in problems[1]
