"""Shared helpers for the rule-pack tests: rendering, loading and reading PromQL."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from scripts import generate_rules

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
GENERATED = RULES / "generated"
PROMTOOL_TESTS = RULES / "tests"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def render(override: str = "") -> dict[str, Any]:
    """The mixin (alerts, rules, config), optionally with a jsonnet override mixed in."""
    snippet = f"""
        local m = (import 'mixin.libsonnet') + {override or "{}"};
        {{ alerts: m.prometheusAlerts, rules: m.prometheusRules, config: m._config }}
    """
    result: dict[str, Any] = generate_rules.evaluate(snippet)
    return result


def alert_rules(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def load_generated(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((GENERATED / name).read_text())
    return data


def promtool_test_files() -> list[Path]:
    return sorted(PROMTOOL_TESTS.glob("*-test.yaml"))


# ---------------------------------------------------------------- PromQL names

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSETS = re.compile(r"\boffset\s+-?\w+")
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan", "by", "without", "on", "ignoring"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords left out).

    A small lexer rather than a parser: strings, label matchers, ranges, offsets and
    label lists are cut out first, then every identifier not followed by `(` is a name.
    """
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _OFFSETS.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.groups()
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
