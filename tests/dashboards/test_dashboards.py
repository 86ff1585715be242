"""The committed dashboards: valid, complete, fresh, and linked from the alerts.

The live checks (every query runs against a real Prometheus) are in test_live.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.dashboards.common import (
    GENERATED,
    ROOT,
    RULES_GENERATED,
    VIEWS,
    Panel,
    all_panels,
    committed,
    generator,
    jsonnet,
    metric_names,
    rule_config,
)

DATASOURCE = "${datasource}"
PANEL_TYPES = {"timeseries", "stat", "table", "gauge"}


def test_every_view_is_committed_as_valid_json() -> None:
    files = sorted(p.stem for p in GENERATED.glob("*.json"))
    assert files == sorted(VIEWS), "dashboards/generated/ does not hold exactly one JSON file per view"
    for view in VIEWS:
        data = json.loads((GENERATED / f"{view}.json").read_text())
        assert isinstance(data, dict) and data["panels"], f"{view}.json has no panels"


def test_committed_json_equals_a_fresh_render() -> None:
    for path, text in generator.render().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `make generate`"


def test_uids_are_the_ones_the_rule_pack_links_to() -> None:
    uids = rule_config()["dashboardUids"]
    assert set(uids) == set(VIEWS), "config.libsonnet's dashboardUids and the views differ"
    for view in VIEWS:
        assert committed(view)["uid"] == uids[view], f"{view}.json has another uid than config.libsonnet says"


def test_every_dashboard_url_of_an_alert_resolves() -> None:
    alerts = RULES_GENERATED / "prometheus_alerts.yaml"
    assert alerts.exists(), "rules/generated/prometheus_alerts.yaml is missing: run make generate"
    groups = yaml.safe_load(alerts.read_text())["groups"]
    linked = {
        rule["annotations"]["dashboard_url"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule and "dashboard_url" in rule.get("annotations", {})
    }
    assert linked, "no alert carries a dashboard_url"
    uids = {committed(view)["uid"] for view in VIEWS}
    for url in sorted(linked):
        match = re.search(r"/d/([^/?#]+)", url)
        assert match, f"dashboard_url {url!r} has no /d/<uid>"
        assert match.group(1) in uids, f"dashboard_url {url!r} links to a uid no dashboard has"


@pytest.mark.parametrize("view", VIEWS)
def test_variables(view: str) -> None:
    data = committed(view)
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "instance" in variables, f"{view} has no instance variable"
    if view != "hosts":  # hosts are node_exporter instances; there is no target there
        assert "target" in variables, f"{view} has no target variable"
    for name, var in variables.items():
        if var["type"] == "query":
            assert var["datasource"]["uid"] == DATASOURCE, f"{view}: variable {name} has a fixed datasource"
            assert var["includeAll"] and var["allValue"] == ".*", f"{view}: variable {name} cannot select all"


def _check_panel(panel: Panel) -> list[str]:
    raw = panel.raw
    problems = []
    if raw["type"] not in PANEL_TYPES:
        problems.append(f"unexpected type {raw['type']}")
    if not str(raw.get("description", "")).strip():
        problems.append("no description")
    if not str(raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "")).strip():
        problems.append("no unit")
    if raw.get("datasource", {}).get("uid") != DATASOURCE:
        problems.append("panel datasource is not the variable")
    if not raw.get("targets"):
        problems.append("no query")
    for target in raw.get("targets", []):
        if target.get("datasource", {}).get("uid") != DATASOURCE:
            problems.append(f"query {target.get('refId')} has a fixed datasource")
        if not str(target.get("expr", "")).strip():
            problems.append(f"query {target.get('refId')} is empty")
    return problems


def test_every_panel_has_unit_description_and_datasource_variable() -> None:
    found = all_panels()
    assert len(found) > 50
    problems = [f"{p}: {problem}" for p in found for problem in _check_panel(p)]
    assert not problems, "\n".join(problems)


def test_the_panel_checks_catch_a_bad_panel() -> None:
    bad = Panel("x", "r", {"type": "stat", "title": "t", "datasource": {"uid": "prom"}, "targets": [{"expr": "up"}]})
    assert set(_check_panel(bad)) == {
        "no description",
        "no unit",
        "panel datasource is not the variable",
        "query None has a fixed datasource",
    }


@pytest.mark.parametrize("missing", ["description", "unit"])
def test_the_helpers_refuse_a_panel_without(missing: str) -> None:
    args = {"title": "'t'", "description": "'d'", "unit": "'s'", "targets": "[g.query('up')]"}
    args[missing] = "''"
    call = ", ".join(f"{k}={v}" for k, v in args.items())
    with pytest.raises(RuntimeError, match=missing):
        jsonnet(f"local g = import 'dashboards/lib/grafana.libsonnet'; g.timeseries({call})")


@pytest.mark.parametrize("view", VIEWS)
def test_layout_fits_the_grid_without_overlaps(view: str) -> None:
    taken: set[tuple[int, int]] = set()
    ids = []
    for raw in committed(view)["panels"]:
        pos = raw["gridPos"]
        ids.append(raw["id"])
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{view}: {raw['title']} leaves the grid"
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{view}: {raw['title']} overlaps another panel"
        taken |= cells
    assert len(ids) == len(set(ids)), f"{view}: panel ids repeat"


def _thresholds(data: dict[str, Any], title: str) -> list[float]:
    (panel,) = [p for p in data["panels"] if p["title"] == title]
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None]


@pytest.mark.parametrize(
    ("view", "override", "title"),
    [
        ("redis", "redis+: { memoryRatio: 0.123 }", "Memory used / maxmemory"),
        ("postgres", "postgres+: { connectionsCritical: 0.123 }", "Connections / limit"),
        ("hosts", "node+: { fsFreeWarning: 0.123 }", "Free space"),
        ("email", "email+: { bounceCritical: 0.123 }", "Bounce ratio"),
        ("exporter", "exporter+: { staleSeconds: 0.123 }", "Cache age"),
    ],
)
def test_thresholds_come_from_the_rule_pack_config(view: str, override: str, title: str) -> None:
    default = committed(view)
    assert 0.123 not in _thresholds(default, title)
    config = f"((import 'rules/config.libsonnet') + {{ _config+:: {{ {override} }} }})._config"
    changed = jsonnet(f"(import 'dashboards/{view}.libsonnet')({config})")
    assert 0.123 in _thresholds(changed, title), f"{view} / {title} does not follow config.libsonnet"


def test_entry_points_are_one_line() -> None:
    # Everything lives in <view>.libsonnet, a function of the config, so the mixin
    # (dashboards.libsonnet) and the entry points render the same dashboard.
    for view in VIEWS:
        entry = (ROOT / "dashboards" / f"{view}.jsonnet").read_text().strip().splitlines()
        assert len(entry) == 1 and f"'{view}.libsonnet'" in entry[0], (
            f"dashboards/{view}.jsonnet is not a one-line entry point"
        )


def test_metric_names_are_extracted_from_queries() -> None:
    assert metric_names('sum by (target) (rate(redis_x_total{job="a", target=~"$target"}[5m]))') == {"redis_x_total"}
    assert metric_names("stack_rulepack_info") == {"stack_rulepack_info"}
    assert metric_names('a_b{x="1"} / on (target) group_left (q) c:d:e{y=~"$t"}') == {"a_b", "c:d:e"}
