"""What the dashboard tests share: the rendered dashboards, their panels and queries."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _jsonnet  # type: ignore[import-untyped]  # no stubs published

from scripts import generate_dashboards as generator

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "dashboards" / "generated"
RULES_GENERATED = ROOT / "rules" / "generated"


VIEWS: tuple[str, ...] = generator.views()


def jsonnet(snippet: str) -> Any:
    """Evaluate a jsonnet snippet with the repository root on the import path."""
    return json.loads(_jsonnet.evaluate_snippet(str(ROOT / "snippet.jsonnet"), snippet, jpathdir=[str(ROOT)]))


def rule_config() -> dict[str, Any]:
    config: dict[str, Any] = jsonnet("(import 'rules/config.libsonnet')._config")
    return config


def committed(view: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GENERATED / f"{view}.json").read_text())
    return data


@dataclass(frozen=True)
class Panel:
    dashboard: str  # uid
    row: str
    raw: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.raw["title"])

    @property
    def exprs(self) -> list[str]:
        return [str(t["expr"]) for t in self.raw.get("targets", [])]

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.row} / {self.title}"


def panels(dashboard: dict[str, Any]) -> Iterator[Panel]:
    """Every panel that shows data (rows excluded), with the row it sits in."""
    row = ""
    for raw in dashboard["panels"]:
        if raw["type"] == "row":
            row = raw["title"]
            continue
        yield Panel(dashboard["uid"], row, raw)


def all_panels() -> list[Panel]:
    return [p for view in VIEWS for p in panels(committed(view))]


# Values Grafana would put in: every variable at "All" (its allValue is `.*`), and the
# interval variables at what they come to with a 1 s scrape interval and a short range.
_SUBSTITUTIONS = {
    "$__rate_interval": "10s",
    "$__interval": "2s",
    "$__range": "1m",
}
_VARIABLE_RE = re.compile(r"\$\{?(\w+)\}?")


def substitute(expr: str) -> str:
    for name, value in _SUBSTITUTIONS.items():
        expr = expr.replace(name, value)
    return _VARIABLE_RE.sub(".*", expr)


_SELECTOR_RE = re.compile(r"(?<![\w:.\"])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
_BARE_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects.  Our queries write every selector with
    braces (the template variables need them); a query that is a bare name counts too."""
    if _BARE_RE.fullmatch(expr.strip()):
        return {expr.strip()}
    return set(_SELECTOR_RE.findall(expr))
