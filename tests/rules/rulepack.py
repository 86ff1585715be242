"""Shared helpers for the rule-pack tests: rendering, loading and reading PromQL."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Sequence
from functools import cache
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
    """The mixin (alerts, rules, config), optionally with a jsonnet override mixed in.

    A render takes seconds and many tests ask for the same one: each override is rendered
    once a session, and every caller gets its own copy to change as it likes.
    """
    return copy.deepcopy(_render(override))


@cache
def _render(override: str) -> dict[str, Any]:
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


# What can make a rule fire without any input series of its own.
_WITHOUT_INPUT = re.compile(r"\b(absent|absent_over_time|vector|time|ALERTS|ALERTS_FOR_STATE)\b")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@cache
def _rule_groups(files: tuple[Path, ...]) -> tuple[dict[str, Any], ...]:
    groups: list[dict[str, Any]] = []
    for path in files:
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return tuple(groups)


def relevant_rules(tests: list[dict[str, Any]], path: Path, rule_files: Sequence[Path]) -> Path:
    """Write to ``path`` the groups of ``rule_files`` that can produce a sample for these
    promtool tests' input series, in their order; returns ``path``.

    A group is kept when one of its expressions names a metric of the input (or one a kept
    group records, to a fixpoint), or can fire on no input at all (absent(), vector(),
    time(), ALERTS). The others cannot evaluate to anything on this input, so leaving them
    out changes no result (no alert, no recorded sample, no absence); it saves promtool
    evaluating every source's rules at every step of every test, the bulk of its time.
    """
    present = {str(s["series"]).split("{", 1)[0] for test in tests for s in test.get("input_series", [])}
    groups = list(_rule_groups(tuple(rule_files)))
    kept: list[dict[str, Any]] = []
    changed = True
    while changed:
        changed = False
        for group in groups:
            if any(group is k for k in kept):
                continue
            exprs = [str(r["expr"]) for r in group["rules"]]
            if any(_WITHOUT_INPUT.search(e) or present & set(_NAME.findall(e)) for e in exprs):
                kept.append(group)
                present |= {str(r["record"]) for r in group["rules"] if "record" in r}
                changed = True
    # in the pack's own order: a group's place decides what it sees of another's records
    in_order = [g for g in groups if any(g is k for k in kept)]
    path.write_text(yaml.safe_dump({"groups": in_order}, sort_keys=False, width=10_000))
    return path


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
