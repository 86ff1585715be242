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
    panels,
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
    # hosts are node_exporter instances, and RUM series are the exporter's own (one endpoint
    # per exporter): there is no target there
    if view not in ("hosts", "rum"):
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
        ("redis", "redis+: { memoryRatio: 0.123 }", "Memory used / limit"),
        ("postgres", "postgres+: { connectionsCritical: 0.123 }", "Connections / limit"),
        ("hosts", "node+: { fsFreeWarning: 0.123 }", "Free space"),
        ("email", "email+: { bounceCritical: 0.123 }", "Bounce ratio"),
        ("exporter", "exporter+: { staleSeconds: 0.123 }", "Cache age"),
        ("email", "email+: { complaintWarning: 0.123 }", "Complaint ratio"),
        ("email", "email+: { sendQuotaRatio: 0.123 }", "Send quota used (24h)"),
        ("email", "email+: { bounceWarning: 0.123 }", "Bounce ratio per email type"),
        ("email", "email+: { complaintCritical: 0.123 }", "Complaint ratio per email type"),
        ("overview", "probe+: { cacheHitRatio: 0.123 }", "Cache hit ratio (1h)"),
        ("overview", "probe+: { cacheMinMaxAgeSeconds: 0.123 }", "Cache lifetime (max-age, s-maxage)"),
        ("postgres", "postgres+: { retentionMaxAgeSeconds: 0.123 }", "Oldest row age"),
        ("rum", "rum+: { lcpPoorSeconds: 0.123 }", "LCP p75"),
        ("rum", "rum+: { inpPoorSeconds: 0.123 }", "INP p75"),
        ("rum", "rum+: { jsErrorMinPerView: 0.123 }", "JavaScript errors per page view"),
    ],
)
def test_thresholds_come_from_the_rule_pack_config(view: str, override: str, title: str) -> None:
    default = committed(view)
    assert 0.123 not in _thresholds(default, title)
    config = f"((import 'rules/config.libsonnet') + {{ _config+:: {{ {override} }} }})._config"
    changed = jsonnet(f"(import 'dashboards/{view}.libsonnet')({config})")
    assert 0.123 in _thresholds(changed, title), f"{view} / {title} does not follow config.libsonnet"


def test_the_mixin_is_the_one_root() -> None:
    # Every view is a function of the config listed once (dashboards/dashboards.libsonnet),
    # reached through rules/mixin.libsonnet: no per-view entry point can render another
    # dashboard than the mixin does.
    assert not sorted((ROOT / "dashboards").glob("*.jsonnet")), "dashboards/ has entry points beside the mixin"
    assert not sorted((ROOT / "rules").glob("*.jsonnet")), "rules/ has entry points beside the mixin"
    fields = jsonnet("std.objectFieldsAll(import 'rules/mixin.libsonnet')")
    assert {"prometheusAlerts", "prometheusRules", "grafanaDashboards"} <= set(fields)


def test_metric_names_are_extracted_from_queries() -> None:
    assert metric_names('sum by (target) (rate(redis_x_total{job="a", target=~"$target"}[5m]))') == {"redis_x_total"}
    assert metric_names("stack_rulepack_info") == {"stack_rulepack_info"}
    assert metric_names('a_b{x="1"} / on (target) group_left (q) c:d:e{y=~"$t"}') == {"a_b", "c:d:e"}


# ---------------------------------------------------------------- job variables

# A label matcher on `job` and its value: every one in a query must be a variable reference.
_JOB_MATCHER_RE = re.compile(r"""\bjob\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)\"""")
_JOB_VARIABLE_RE = re.compile(r"^\$\{?(\w*job)\}?$")
# Which config selector each job variable stands for (the `<key>_job` of a source with a job
# of its own is checked by the override tests below).
JOB_VARIABLES = {"job": "exporterSelector", "node_job": "node.selector", "app_job": "app.selector"}


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, text) of every panel query and every variable query of a dashboard."""
    out = [(f"panel {raw.get('title')}", str(t["expr"])) for raw in dashboard["panels"] for t in raw.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            out.append((f"variable {var['name']}", str(var["definition"])))
            out.append((f"variable {var['name']}", str(var["query"]["query"])))
    return out


def _job_literals(dashboard: dict[str, Any]) -> list[str]:
    return [
        f'{dashboard["uid"]}: {where}: job{op}"{value}"'
        for where, text in _queries(dashboard)
        for op, value in _JOB_MATCHER_RE.findall(text)
        if not _JOB_VARIABLE_RE.match(value)
    ]


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def _job_value(selector: str) -> str:
    match = re.search(r'\bjob\s*=\s*"([^"]*)"', selector)
    assert match, f'{selector!r} has no job="..." matcher'
    return match.group(1)


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    return value


def _render_all(override: str) -> dict[str, dict[str, Any]]:
    """Every dashboard through the mixin, with `_config` overridden once for rules and dashboards."""
    mixin = "(import 'rules/mixin.libsonnet')"
    rendered: dict[str, dict[str, Any]] = jsonnet(f"({mixin} + {{ _config+:: {{ {override} }} }}).grafanaDashboards")
    return rendered


def test_the_job_matcher_check_catches_a_literal() -> None:
    board = {
        "uid": "x",
        "panels": [{"title": "t", "targets": [{"expr": 'up{job="a"} + up{job=~"$job"} + up{ job =~ "b|c"}'}]}],
        "templating": {"list": []},
    }
    assert _job_literals(board) == ['x: panel t: job="a"', 'x: panel t: job=~"b|c"']


@pytest.mark.parametrize("view", VIEWS)
def test_no_query_hard_codes_a_job(view: str) -> None:
    data = committed(view)
    assert not _job_literals(data), "\n".join(_job_literals(data))
    # and every job variable a query refers to exists
    names = set(_variables(data))
    for where, text in _queries(data):
        for _, value in _JOB_MATCHER_RE.findall(text):
            match = _JOB_VARIABLE_RE.match(value)
            assert match and match.group(1) in names, f"{view}: {where} uses ${value} but has no such variable"


def test_job_variables_default_to_the_rule_packs_jobs() -> None:
    config = rule_config()
    expected = {
        "overview": {"job", "app_job"},
        "redis": {"job"},
        "postgres": {"job"},
        "billing": {"job"},
        "email": {"job"},
        "hosts": {"node_job"},
        "exporter": {"job"},
        "rum": {"job"},
    }
    assert set(expected) == set(VIEWS)
    for view in VIEWS:
        variables = _variables(committed(view))
        jobs = {name for name in variables if name.endswith("job")}
        assert jobs == expected[view], f"{view} has job variables {jobs}"
        for name in jobs:
            var = variables[name]
            job = _job_value(str(_lookup(config, JOB_VARIABLES[name])))
            assert var["current"]["value"] == [job], f"{view}: ${name} defaults to {var['current']}, not {job!r}"
            assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"
            assert var["query"]["query"].startswith("label_values(") and var["query"]["query"].endswith(", job)")
    # the per-source selectors default to the exporter's: they share its variable
    for key in ("redis", "postgres", "pgbouncer", "lago", "probe", "directus"):
        assert config[key]["selector"] == config["exporterSelector"]
    assert config["email"]["selector"] == config["email"]["statuspageSelector"] == config["exporterSelector"]


# Selectors that are more than a job matcher, and sources on jobs of their own.
_OVERRIDE = """
  exporterSelector: 'job="x", namespace="y"',
  node+: { selector: 'job="n", cluster="c"' },
  app+: { selector: 'job="a", env="prod"' },
  probe+: { selector: 'job="blackbox", module="http_2xx"' },
  email+: { statuspageSelector: 'job=~"status|pages"' },
"""


def _groups_with(text: str, reference: str) -> list[str]:
    """The {...} matcher groups of `text` that contain `reference`."""
    return [g for g in re.findall(r"\{[^{}]*\}", text) if reference in g]


def test_selectors_keep_their_other_matchers_and_only_the_job_becomes_a_variable() -> None:
    rendered = _render_all(_OVERRIDE)
    kept = {
        '$job"': 'namespace="y"',
        '$node_job"': 'cluster="c"',
        '$probe_job"': 'module="http_2xx"',
        '$statuspage_job"': 'job=~"$statuspage_job"',  # its own selector is only a job matcher
    }
    seen: set[str] = set()
    for name, data in rendered.items():
        assert not _job_literals(data), f"{name}:\n" + "\n".join(_job_literals(data))
        for where, text in _queries(data):
            for reference, matcher in kept.items():
                for group in _groups_with(text, reference):
                    seen.add(reference)
                    assert matcher in group, f"{name}: {where}: {group} lost {matcher}"
    assert seen == set(kept), f"no query used {set(kept) - seen}"

    defaults = {
        "overview.json": {
            "job": ["x"],
            "probe_job": ["blackbox"],
            "app_job": ["a"],
            "statuspage_job": ["status", "pages"],
        },
        "email.json": {"job": ["x"], "statuspage_job": ["status", "pages"]},
        "hosts.json": {"node_job": ["n"]},
        "redis.json": {"job": ["x"]},
    }
    for name, expected in defaults.items():
        variables = _variables(rendered[name])
        actual = {n: v["current"]["value"] for n, v in variables.items() if n.endswith("job")}
        assert actual == expected, f"{name}: {actual}"
    # the probe panels follow the probe job, the exporter's own panels the exporter job
    overview = {p["title"]: p for p in rendered["overview.json"]["panels"]}
    assert '$probe_job"' in overview["Probe status"]["targets"][0]["expr"]
    assert '$job"' in overview["Exporter scraped"]["targets"][0]["expr"]
    # the app's recorded series only keep the aggregation labels: env is not one of them
    app_expr = overview["Error ratio (5xx)"]["targets"][0]["expr"]
    assert 'job=~"$app_job"' in app_expr and "env=" not in app_expr


def test_a_job_regex_that_is_no_list_becomes_the_all_value() -> None:
    rendered = _render_all("""exporterSelector: 'job=~"stack-.*"'""")
    var = _variables(rendered["redis.json"])["job"]
    assert var["current"]["value"] == ["$__all"]
    assert var["allValue"] == "stack-.*"
    assert not _job_literals(rendered["redis.json"])


def test_without_job_among_the_app_aggregation_labels_there_is_no_app_job_variable() -> None:
    rendered = _render_all("app+: { aggregationLabels: ['service'] }")
    overview = rendered["overview.json"]
    assert "app_job" not in _variables(overview)
    titles = {p["title"]: p for p in overview["panels"]}
    assert "$app_job" not in titles["Error ratio (5xx)"]["targets"][0]["expr"]


# ---------------------------------------------------------------- email sources and providers

EMAIL_DOCS = ROOT / "docs" / "metrics" / "email.md"
NOT_REPORTED = "(not reported)"
# The config sections of the providers and the names the documentation's tables give them.
PROVIDERS = {"sendgrid": "SendGrid", "mailgun": "Mailgun", "postmark": "Postmark", "resend": "Resend", "ses": "AWS SES"}


def _email_sources() -> set[str]:
    from exporter.collectors import SOURCES

    email = {key for key, spec in SOURCES.items() if spec.module.startswith("exporter.collectors.email.")}
    assert email == set(PROVIDERS), "the provider list of this test differs from the registration table"
    others = {"email_domains", "statuspages"}
    assert others <= set(SOURCES), "a source of the email view is missing from the registration table"
    return email | others


def test_the_email_target_variable_covers_every_email_source() -> None:
    target = _variables(committed("email"))["target"]
    match = re.search(r'collector=~"([^"]*)"', target["definition"])
    assert match
    assert set(match.group(1).split("|")) == _email_sources()


def _table(text: str, heading: str | None) -> list[list[str]]:
    """The first Markdown table after `heading` (or in the text), as rows of stripped cells."""
    if heading is not None:
        text = text[text.index(heading) :]
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return [r for r in rows if not set("".join(r)) <= set("-: ")]


def _provider_specific() -> dict[str, set[str]]:
    """What only some providers report, read from docs/metrics/email.md: `event:<name>` for
    email_events_total's events and metric names, each with the providers that do report it."""
    text = EMAIL_DOCS.read_text()
    mapping = _table(text, "## Event mapping")
    header = [re.sub(r"\s*\(.*\)$", "", cell) for cell in mapping[0][1:]]
    assert header == list(PROVIDERS.values()), f"the event mapping's columns changed: {header}"
    metrics = {row[0].strip("`"): row[3] for row in _table(text, "| Metric |")[1:]}
    out: dict[str, set[str]] = {}
    for row in mapping[1:]:
        key, cells = row[0], row[1:]
        if NOT_REPORTED not in cells:
            continue
        reporting = {p for p, cell in zip(header, cells, strict=True) if cell != NOT_REPORTED}
        if key.startswith("`"):  # a metric of its own
            out[key.strip("`")] = reporting
        elif re.fullmatch(r"[a-z_]+", key) and key not in metrics and any(key in m for m in metrics):
            for metric in metrics:  # "reputation": the metrics named after it
                if key in metric:
                    out[metric] = reporting
        else:
            out[f"event:{key}"] = reporting
    # one provider's own metrics: named after its section, or described as its API's figure
    for metric, help_text in metrics.items():
        for section, name in PROVIDERS.items():
            if metric.startswith(f"{section}_") or re.search(rf"\b{section.upper()}\b", help_text):
                out[metric] = {name}
    return out


# The `event` matchers of email_events_total selectors only: the webhook series
# (email_webhook_events_total) share the event names, but every provider's webhook reports
# what it reports (the per-type row names them itself), so they are not what the polled
# event mapping says.
_POLLED_SELECTOR_RE = re.compile(r"\bemail_events_total\s*\{([^{}]*)\}")
_EVENT_MATCHER_RE = re.compile(r'\bevent="(\w+)"')


def _polled_events(expr: str) -> set[str]:
    return {e for selector in _POLLED_SELECTOR_RE.findall(expr) for e in _EVENT_MATCHER_RE.findall(selector)}


def test_only_the_polled_events_are_read_as_provider_specific() -> None:
    expr = (
        'increase(email_events_total{job=~"$job", event="delivered"}[1h])'
        ' / increase(email_webhook_events_total{job=~"$job", event="opened"}[1h])'
    )
    assert _polled_events(expr) == {"delivered"}


def _recorded_events() -> dict[str, set[str]]:
    """The email_events_total events each recording rule reads, through other recorded series too."""
    groups = yaml.safe_load((RULES_GENERATED / "prometheus_rules.yaml").read_text())["groups"]
    exprs: dict[str, str] = {}
    for group in groups:
        for rule in group["rules"]:
            if "record" in rule:
                exprs[rule["record"]] = exprs.get(rule["record"], "") + "\n" + rule["expr"]

    def events(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = _polled_events(exprs[name])
        for other in metric_names(exprs[name]) & set(exprs):
            if other not in seen and other != name:
                found |= events(other, seen | {name})
        return found

    return {name: events(name) for name in exprs}


def _reads(expr: str, recorded: dict[str, set[str]]) -> set[str]:
    names = metric_names(expr)
    read = set(names) | {f"event:{e}" for e in _polled_events(expr)}
    for name in names & set(recorded):
        read |= {f"event:{e}" for e in recorded[name]}
    return read


def test_the_provider_specific_series_are_read_from_the_docs() -> None:
    specific = _provider_specific()
    assert specific["event:delivered"] == {"SendGrid", "Mailgun", "Resend"}
    assert specific["event:opened"] == {"SendGrid", "Mailgun", "Postmark", "Resend"}
    assert specific["email_reputation_bounce_ratio"] == {"Postmark", "AWS SES"}
    assert specific["email_domain_verified"] == {"Resend"}
    assert specific["ses_account_sending_enabled"] == specific["email_send_quota_max_24h"] == {"AWS SES"}
    assert "event:requested" not in specific and "email_events_total" not in specific


def test_panels_of_provider_specific_series_name_the_providers() -> None:
    specific = _provider_specific()
    recorded = _recorded_events()
    problems, checked = [], set()
    for panel in all_panels():
        description = str(panel.raw["description"])
        for key in set().union(*(_reads(e, recorded) for e in panel.exprs)) & set(specific):
            checked.add(key)
            providers = specific[key]
            missing = sorted(p for p in providers if p not in description)
            if missing:
                problems.append(f"{panel}: reads {key} but does not name {missing}")
            if len(providers) == 1 and "only" not in description.lower():
                problems.append(f"{panel}: reads {key}, which only {min(providers)} reports, and does not say so")
    assert not problems, "\n".join(problems)
    # the check saw the panels it is for (recorded ratios included)
    expected = {"event:delivered", "event:opened", "event:clicked", "email_reputation_bounce_ratio"}
    expected |= {"email_domain_verified", "ses_account_enforcement_status", "email_send_quota_sent_24h"}
    assert expected <= checked, f"not checked: {expected - checked}"


# Series only some variants of a source have (docs/metrics/redis.md, postgres.md, http_probes.md),
# and what the description of a panel reading them must say.
VARIANT_SPECIFIC = {
    "redis_cluster_": "cluster nodes only",
    "redis_sentinel_": "sentinels only",
    "redis_master_link_up": "replicas only",
    "redis_connected_slave_lag_seconds": "primaries with connected replicas",
    "redis_connected_slaves": "primaries only",
    "redis_key_group_": "key_patterns",
    "redis_commands_latency_seconds": "Redis 7",
    "pg_replication_lag_": "replicas only",
    "pg_stat_wal_receiver_up": "replicas only",
    "pg_stat_replication_": "primaries with connected replicas",
    "pg_replication_slot_": "replication slots",
    "pg_stat_statements_": "pg_stat_statements extension",
    "pg_retention_": "pg_retention",
    "probe_http_cache_": "check_cache: true",
    "probe_ssl_earliest_cert_expiry": "HTTPS probes only",
    # web-vitals reports these only where the browser has the API (docs/metrics/rum.md)
    "rum_lcp_": "Safari",
    "rum_inp_": "Chromium",
    "rum_cls_": "Chromium",
}


def test_panels_of_variant_specific_series_name_the_variant() -> None:
    problems, checked = [], set()
    for panel in all_panels():
        description = str(panel.raw["description"]).lower()
        names = set().union(*(metric_names(e) for e in panel.exprs))
        for prefix, words in VARIANT_SPECIFIC.items():
            if any(n.startswith(prefix) for n in names):
                checked.add(prefix)
                if words.lower() not in description:
                    problems.append(f"{panel}: reads {prefix}* but does not say {words!r}")
    assert not problems, "\n".join(problems)
    assert checked == set(VARIANT_SPECIFIC), f"no panel reads {set(VARIANT_SPECIFIC) - checked}"


def test_recorded_series_the_panels_read_are_recorded_by_the_pack() -> None:
    recorded = set(_recorded_events())
    for panel in all_panels():
        for expr in panel.exprs:
            for name in metric_names(expr):
                if ":" in name:
                    assert name in recorded, f"{panel}: {name} is not a recording rule of rules/generated"


def test_email_ratio_names_follow_the_config() -> None:
    rendered = _render_all("email+: { ratioWindow: '3h', engagementWindow: '2d' }")["email.json"]
    exprs = " ".join(t["expr"] for p in rendered["panels"] for t in p.get("targets", []))
    assert "target_provider:email_bounced_per_requested:ratio3h" in exprs
    assert "target_provider:email_opened_per_requested:ratio2d" in exprs
    assert "provider_email_type:email_webhook_bounced_per_sent:ratio3h" in exprs
    assert "provider_email_type:email_webhook_complained_per_sent:ratio3h" in exprs
    assert "ratio6h" not in exprs and "ratio1d" not in exprs


_QUANTILE_RE = re.compile(r"histogram_quantile\(\s*([0-9.]+)")


def test_quantile_legends_name_their_quantile() -> None:
    """A legend says p50 for the 0.5 quantile (the overview said `p5`)."""
    checked = 0
    for panel in all_panels():
        for target in panel.raw.get("targets", []):
            match = _QUANTILE_RE.search(str(target["expr"]))
            if not match:
                continue
            checked += 1
            name = "p" + f"{float(match.group(1)) * 100:g}"
            legend = str(target.get("legendFormat", ""))
            assert re.search(rf"\b{re.escape(name)}\b", legend), f"{panel}: legend {legend!r} does not say {name}"
    assert checked


# Counters that move only when a cached source is collected (every 60-300 s by default).
_COLLECTION_COUNTERS = ("stack_exporter_http_requests_total", "stack_exporter_collector_failures_total")
_WINDOW_RE = re.compile(r"\[(\d+)([smh])\]")


def test_rates_of_collection_counters_span_a_refresh_interval() -> None:
    """$__rate_interval is a few scrapes: over a counter that moves every 300 s it shows 0,
    or a spike.  The window must cover the longest default refresh interval, twice."""
    seconds = {"s": 1, "m": 60, "h": 3600}
    checked = 0
    for panel in all_panels():
        for expr in panel.exprs:
            if not any(c in metric_names(expr) for c in _COLLECTION_COUNTERS):
                continue
            checked += 1
            assert "$__rate_interval" not in expr, f"{panel}: {expr}"
            windows = [int(n) * seconds[u] for n, u in _WINDOW_RE.findall(expr)]
            assert windows and min(windows) >= 600, f"{panel}: window shorter than two refresh intervals: {expr}"
    assert checked >= 2


def test_money_is_plotted_in_the_currencys_major_unit() -> None:
    """lago_overdue_balance_cents is in cents: drawn as is with unit short it reads 100x."""
    checked = 0
    for panel in all_panels():
        unit = panel.raw.get("fieldConfig", {}).get("defaults", {}).get("unit")
        for expr in panel.exprs:
            if "lago_overdue_balance_cents" not in metric_names(expr) or unit in ("percentunit", "percent"):
                continue
            checked += 1
            assert str(unit).startswith("currency") or "/ 100" in expr, f"{panel}: cents plotted as {unit}"
    assert checked


# ---------------------------------------------------------------- real users

# The Core Web Vitals' good and poor thresholds (web.dev), which the exporter's histogram
# buckets bracket exactly (docs/metrics/rum.md): metric -> (good, poor).
CORE_WEB_VITALS = {
    "rum_lcp_seconds": (2.5, 4.0),
    "rum_inp_seconds": (0.2, 0.5),
    "rum_cls": (0.1, 0.25),
    "rum_fcp_seconds": (1.8, 3.0),
    "rum_ttfb_seconds": (0.8, 1.8),
}
_LE_RE = re.compile(r'\ble(=~?)"([^"]*)"')


def _le_values(expr: str) -> set[float]:
    """The bucket bounds a query's `le` matchers select (`le=~"4|4.0"` selects 4)."""
    return {float(v) for _, alternatives in _LE_RE.findall(expr) for v in alternatives.split("|")}


def test_rum_vitals_are_drawn_and_split_at_the_core_web_vitals_thresholds() -> None:
    data = committed("rum")
    seen: set[str] = set()
    for panel in (p for p in data["panels"] if p["type"] == "timeseries"):
        names = set().union(*(metric_names(str(t["expr"])) for t in panel["targets"]))
        metrics = {m for m in CORE_WEB_VITALS if f"{m}_bucket" in names}
        if len(metrics) != 1:
            continue
        (metric,) = metrics
        good, poor = CORE_WEB_VITALS[metric]
        if "histogram_quantile" in panel["targets"][0]["expr"]:  # a p75: dashed threshold lines
            seen.add(f"p75 {metric}")
            assert _thresholds(data, panel["title"]) == [good, poor], panel["title"]
        else:  # the good / needs improvement / poor split: bucket counts at exactly those bounds
            seen.add(f"split {metric}")
            exprs = [str(t["expr"]) for t in panel["targets"]]
            assert [_le_values(e) for e in exprs] == [{good}, {good, poor}, {poor}], panel["title"]
    assert seen == {f"{kind} {m}" for kind in ("p75", "split") for m in CORE_WEB_VITALS}
    assert _le_values('x{le=~"4|4.0"} / y{le="0.25"}') == {4.0, 0.25}


def test_rum_panels_show_no_beacons_rather_than_zero() -> None:
    """A page without beacons must not read as a page with perfect figures: per-page
    panels say so instead of showing 0, and no query fills gaps with zeros."""
    checked = 0
    for panel in panels(committed("rum")):
        for expr in panel.exprs:
            assert "vector(0)" not in expr and not re.search(r"\bor\b", expr), f"{panel}: fills gaps: {expr}"
        if any("page=~" in e for e in panel.exprs):
            checked += 1
            no_value = panel.raw["fieldConfig"]["defaults"].get("noValue", "")
            assert re.search(r"\bno\b", no_value, re.IGNORECASE), f"{panel}: no data shows {no_value!r}"
    assert checked >= 10


# ---------------------------------------------------------------- email types (webhooks)

WEBHOOK_ROW = "Per email type (webhooks)"
# The series of the exporter's webhook endpoint (email_webhooks:, docs/metrics/email.md) and
# the pack's per-type recording rules (rules/lib/email.libsonnet): none has a target label.
WEBHOOK_METRICS = {
    "email_webhook_events_total",
    "email_webhook_requests_total",
    "email_webhook_refused_total",
    "email_webhook_duplicates_total",
    "email_webhook_events_ignored_total",
    "email_webhook_last_request_timestamp_seconds",
    "email_webhook_seen_ids",
    "email_webhook_limiter_clients",
    "email_webhook_sns_confirmations_total",
}


def _webhook_panels() -> list[Panel]:
    return [p for p in panels(committed("email")) if p.row == WEBHOOK_ROW]


def _is_webhook_series(name: str) -> bool:
    return name in WEBHOOK_METRICS or name.startswith("provider_email_type:")


def test_the_email_view_has_provider_and_email_type_variables() -> None:
    variables = _variables(committed("email"))
    for name, metric in (("provider", "email_webhook_requests_total"), ("email_type", "email_webhook_events_total")):
        var = variables[name]
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".*", name
        assert var["definition"].startswith(f"label_values({metric}{{") and var["definition"].endswith(f", {name})")
    # the types of the chosen providers
    assert 'provider=~"$provider"' in variables["email_type"]["definition"]


def test_the_webhook_row_reads_the_webhook_series_filtered_by_provider_and_type() -> None:
    found = _webhook_panels()
    titles = {p.title for p in found}
    assert {"Bounce ratio per email type", "Complaint ratio per email type", "Events per email type"} <= titles
    recorded = set(_recorded_events())
    problems = []
    for panel in found:
        for expr in panel.exprs:
            names = metric_names(expr)
            assert names, f"{panel}: {expr}"
            for name in names:
                if not _is_webhook_series(name):
                    problems.append(f"{panel}: reads {name}, not a webhook series")
                if ":" in name and name not in recorded:
                    problems.append(f"{panel}: {name} is not recorded by the pack")
            # webhook series have no target: a target matcher would empty the panel
            if "target" in expr:
                problems.append(f"{panel}: filters webhook series by target: {expr}")
            if 'provider=~"$provider"' not in expr:
                problems.append(f"{panel}: not filtered by $provider: {expr}")
            if "email_type" in expr and 'email_type=~"$email_type"' not in expr:
                problems.append(f"{panel}: reads email_type but is not filtered by $email_type: {expr}")
    assert not problems, "\n".join(problems)
    # and no panel of another row reads them with the target variable
    for panel in panels(committed("email")):
        if panel.row != WEBHOOK_ROW:
            assert not any(_is_webhook_series(n) for e in panel.exprs for n in metric_names(e)), str(panel)


def test_email_type_panels_show_no_data_text_rather_than_zero() -> None:
    """A type that had no events must not read as a type with a perfect record: the
    per-type panels say so instead of showing 0, and no query fills gaps with zeros."""
    checked = 0
    for panel in _webhook_panels():
        for expr in panel.exprs:
            assert "vector(0)" not in expr and not re.search(r"\bor\b", expr), f"{panel}: fills gaps: {expr}"
        if any("email_type" in e for e in panel.exprs):
            checked += 1
            no_value = panel.raw["fieldConfig"]["defaults"].get("noValue", "")
            assert re.search(r"\bno\b", no_value, re.IGNORECASE), f"{panel}: no data shows {no_value!r}"
    assert checked >= 4


def test_the_webhook_row_names_the_alerts_it_explains() -> None:
    alerts = yaml.safe_load((RULES_GENERATED / "prometheus_alerts.yaml").read_text())["groups"]
    (group,) = [g for g in alerts if g["name"] == "stack-exporter.email_webhooks"]
    names = {r["alert"] for r in group["rules"] if "alert" in r}
    descriptions = " ".join(str(p.raw["description"]) for p in _webhook_panels())
    assert names, "the webhook alert group is empty"
    missing = sorted(n for n in names if n not in descriptions)
    assert not missing, f"no panel of {WEBHOOK_ROW!r} explains {missing}"


def test_the_webhook_silence_threshold_follows_the_config() -> None:
    title = "Since the last webhook request"
    window = str(rule_config()["email"]["webhookSilentWindow"])
    seconds = int(window[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[window[-1]]
    assert _thresholds(committed("email"), title) == [seconds]
    config = "((import 'rules/config.libsonnet') + { _config+:: { email+: { webhookSilentWindow: '20m' } } })._config"
    assert _thresholds(jsonnet(f"(import 'dashboards/email.libsonnet')({config})"), title) == [1200]
