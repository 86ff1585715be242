"""Every metric a rule names exists: in the exporter's metrics reference (docs/metrics/*.md),
in the output of the real node_exporter, in the configured app metrics and custom queries,
or as a series the pack records itself."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from peers.process import LOOPBACK, Process, free_port, wait_until
from tests.rules.rulepack import ROOT, load_generated, metric_names, render

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
# Collectors the pack reads that node_exporter 1.5 leaves off by default (docs/runbooks.md
# names the flag at each alert), and the metrics of theirs the rules name.  systemd needs a
# systemd bus: where there is none (a container) the collector runs and fails, so its metric
# names are checked against the binary instead of the output.
NODE_EXPORTER_EXTRA_COLLECTORS = {"systemd": {"node_systemd_unit_state"}}
# Series Prometheus itself makes.
PROMETHEUS_MADE = {"up", "ALERTS"}
_ROW = re.compile(
    r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(gauge|counter|histogram|summary|info|stateset|untyped)\s*\|", re.M
)


# Metric tables outside docs/metrics/: the status-page bridge is not a source.
OTHER_METRIC_DOCS = (ROOT / "docs" / "statuspage-bridge.md",)


def documented_metrics() -> set[str]:
    names: set[str] = set()
    for doc in [*sorted((ROOT / "docs" / "metrics").glob("*.md")), *OTHER_METRIC_DOCS]:
        for name, kind in _ROW.findall(doc.read_text()):
            names.add(name)
            if kind in {"histogram", "summary"}:
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def custom_query_metrics() -> set[str]:
    """`<query>_<column>` of the shipped custom queries (postgres_exporter's queries.yaml format)."""
    names: set[str] = set()
    queries = yaml.safe_load((ROOT / "examples" / "queries.yaml").read_text()) or {}
    for query, spec in queries.items():
        for column in spec.get("metrics", []):
            for col, meta in column.items():
                usage = meta.get("usage")
                if usage == "GAUGE":
                    names.add(f"{query}_{col}")
                elif usage == "COUNTER":
                    names.add(f"{query}_{col}_total")
    return names


def app_metrics() -> set[str]:
    app = render()["config"]["app"]
    names = set(app["requestMetrics"])
    for base in app["latencyHistograms"]:
        names.update({f"{base}_bucket", f"{base}_sum", f"{base}_count"})
    return names


@pytest.fixture(scope="module")
def node_exporter_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    if not NODE_EXPORTER.exists():
        pytest.fail(f"{NODE_EXPORTER} missing: run make test-deps (package prometheus-node-exporter)")
    port = free_port()
    log = tmp_path_factory.mktemp("node_exporter") / "node_exporter.log"
    flags = [f"--collector.{name}" for name in NODE_EXPORTER_EXTRA_COLLECTORS]
    proc = Process([NODE_EXPORTER, f"--web.listen-address={LOOPBACK}:{port}", *flags], log)
    proc.start()
    try:
        url = f"http://{LOOPBACK}:{port}/metrics"

        def scrape() -> str | None:
            proc.check_running()
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return str(resp.read().decode())
            except OSError:
                return None

        text = wait_until(scrape, timeout=15, message="node_exporter /metrics")
        assert text is not None
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        yield names | _unexported_extra_metrics(text, names)
    finally:
        proc.stop()


def _unexported_extra_metrics(text: str, names: set[str]) -> set[str]:
    """The metrics of an extra collector that ran but could not collect here (no systemd
    bus): the collector must exist in this node_exporter and be on (its success series is
    there), and each metric's name after `node_<collector>_` must be in the binary."""
    binary = NODE_EXPORTER.read_bytes()
    found = set()
    for collector, metrics in NODE_EXPORTER_EXTRA_COLLECTORS.items():
        missing = metrics - names
        if not missing:
            continue
        assert f'node_scrape_collector_success{{collector="{collector}"}}' in text, (
            f"node_exporter's {collector} collector is not on: the pack's rules need it"
        )
        for metric in missing:
            suffix = metric.removeprefix(f"node_{collector}_")
            assert suffix.encode() in binary, f"{metric}: not a metric of node_exporter's {collector} collector"
            found.add(metric)
    return found


def _used() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for file in ("prometheus_alerts.yaml", "prometheus_rules.yaml"):
        for group in load_generated(file)["groups"]:
            for rule in group["rules"]:
                for name in metric_names(rule["expr"]):
                    used.setdefault(name, set()).add(rule.get("alert") or rule["record"])
    return used


def _recorded() -> set[str]:
    return {r["record"] for g in load_generated("prometheus_rules.yaml")["groups"] for r in g["rules"]}


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (target) (rate(pg_stat_database_blks_hit_total{job="x", a=~"b|c"}[5m]))\n'
        '/ on (target) group_left (datname) foo:bar:ratio offset 1d > 1e+09 and bool up{l="and"}'
        ' unless label_replace(baz, "dst", "$1", "src", "(.+)")'
    )
    assert metric_names(expr) == {"pg_stat_database_blks_hit_total", "foo:bar:ratio", "up", "baz"}


def test_every_metric_in_a_rule_exists(node_exporter_metrics: set[str]) -> None:
    known = (
        documented_metrics()
        | node_exporter_metrics
        | app_metrics()
        | custom_query_metrics()
        | PROMETHEUS_MADE
        | _recorded()
    )
    missing = {name: sorted(rules) for name, rules in _used().items() if name not in known}
    assert not missing, "metrics named in rules but documented nowhere:\n" + "\n".join(
        f"  {name}: used by {', '.join(rules)}" for name, rules in sorted(missing.items())
    )
