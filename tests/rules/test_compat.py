"""The opt-in community-name rules (rules/recording/compat.libsonnet).

Off by default and then nothing else changes; rendered on their own into
generated/prometheus_rules_compat.yaml; and every name they record, with its label names, is
what the real community exporters emit: Debian's postgres_exporter and redis_exporter run here
against servers this suite starts.  The expected label names come from the promtool cases
(rules/tests/compat-test.yaml), which prove the expressions produce them.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from peers.process import LOOPBACK, Process, free_port, wait_until
from tests.rules.rulepack import GENERATED, PROMTOOL, PROMTOOL_TESTS, RULES, load_generated, metric_names, render
from tests.rules.test_metrics_exist import documented_metrics
from tests.servers.postgres import PgReplication, env_without_pg, wait_replica_caught_up
from tests.servers.redis import RedisServer

GROUP = "stack-exporter.compat.rules"
ENABLED = "{ _config+:: { compat+: { enabled: true } } }"
PROMTOOL_CASES = PROMTOOL_TESTS / "compat-test.yaml"
POSTGRES_EXPORTER = Path("/usr/bin/prometheus-postgres-exporter")
REDIS_EXPORTER = Path("/usr/bin/prometheus-redis-exporter")
# Debian ships postgres_exporter's example custom queries; pg_replication_lag and
# pg_stat_user_tables_* come from them in 0.11 (built in from 0.13).
PG_EXAMPLE_QUERIES = Path("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")

# Labels Prometheus or our exporter put on every series, not part of a community label set.
OURS = {"job", "instance", "target"}
# postgres_exporter's `server` (host:port of its DSN) is on every series; `target` says the same.
COMMUNITY_ONLY = {"server"}
# Names Debian's versions (postgres_exporter 0.11.1, redis_exporter 1.45) do not emit yet.
NEWER = {"pg_replication_slot_slot_is_active": "postgres_exporter 0.13"}
# Community labels no rule can rebuild from our series (rules/README.md says why).
DROPPED = {
    "pg_stat_activity_max_tx_duration": {"state"},
    "pg_static": {"version"},
    "pg_stat_replication_pg_wal_lsn_diff": {"slot_name"},
}

_LABEL = re.compile(r'([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"')
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")


def dropped(name: str) -> set[str]:
    if name.startswith("pg_stat_database_"):
        return {"datid"}  # the database's OID: ours are keyed by name only
    return DROPPED.get(name, set())


def compat_rules() -> list[dict[str, Any]]:
    (group,) = load_generated("prometheus_rules_compat.yaml")["groups"]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def expected_labels() -> dict[str, set[str]]:
    """Label names of each recorded name, from the promtool cases' expected samples."""
    doc = yaml.safe_load(PROMTOOL_CASES.read_text())
    labels: dict[str, set[str]] = {}
    for group in doc["tests"]:
        for case in group.get("promql_expr_test", []):
            for sample in case["exp_samples"]:
                name = sample["labels"].split("{", 1)[0]
                labels.setdefault(name, set()).update(_LABEL.findall(sample["labels"]))
    return {name: names - OURS for name, names in labels.items()}


def exposition_labels(text: str) -> dict[str, set[str]]:
    """Metric name -> label names, from Prometheus text exposition."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            out.setdefault(match.group(1), set()).update(_LABEL.findall(match.group(2) or ""))
    return out


def _group(rendered: dict[str, Any]) -> dict[str, Any]:
    (group,) = [g for g in rendered["rules"]["groups"] if g["name"] == GROUP]
    return group


def readme_section() -> str:
    text = (RULES / "README.md").read_text()
    start = text.index("## Keeping community dashboards and alerts")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


# ---------------------------------------------------------------- the rules themselves


def test_off_by_default_and_nothing_else_changes_when_on() -> None:
    default, enabled = render(), render(ENABLED)
    assert default["config"]["compat"]["enabled"] is False
    assert GROUP not in {g["name"] for g in default["rules"]["groups"]}
    assert GROUP not in {g["name"] for g in load_generated("prometheus_rules.yaml")["groups"]}
    groups = enabled["rules"]["groups"]
    assert [g["name"] for g in groups].count(GROUP) == 1
    assert [g for g in groups if g["name"] != GROUP] == default["rules"]["groups"]
    assert enabled["alerts"] == default["alerts"]


def test_the_compat_file_is_the_group_alone_and_valid() -> None:
    compat = _group(render(ENABLED))
    assert load_generated("prometheus_rules_compat.yaml")["groups"] == [compat]
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(GENERATED / "prometheus_rules_compat.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_recorded_name_has_a_promtool_case() -> None:
    records = [rule["record"] for rule in compat_rules()]
    assert len(records) == len(set(records)), "a community name recorded twice"
    assert set(records) == set(expected_labels())


def test_rules_read_only_documented_metrics() -> None:
    known = documented_metrics()
    unknown = {name for rule in compat_rules() for name in metric_names(rule["expr"])} - known
    assert not unknown, f"not in docs/metrics/*.md: {sorted(unknown)}"


def test_selectors_come_from_the_config() -> None:
    override = """{ _config+:: { compat+: { enabled: true },
        postgres+: { selector: 'job="pg"' }, redis+: { selector: 'job="cache"' } } }"""
    compat = _group(render(override))
    for rule in compat["rules"]:
        expected = 'job="pg"' if rule["record"].startswith("pg_") else 'job="cache"'
        assert expected in rule["expr"], rule["record"]
        assert "stack-exporter" not in rule["expr"], rule["record"]


def test_the_gaps_are_documented() -> None:
    section = readme_section()
    for name, version in NEWER.items():
        assert f"`{name}" in section and version in section, name
    for name in {r["record"] for r in compat_rules()}:
        for label in dropped(name):
            assert f"`{label}`" in section, f"{name}: dropped label {label} not explained"


# ---------------------------------------------------------------- against the real community exporters


def _scrape(args: Sequence[str | Path], log: Path, env: Mapping[str, str] | None = None) -> str:
    port = free_port()
    proc = Process([*args, f"--web.listen-address={LOOPBACK}:{port}"], log, env=env)
    proc.start()
    try:
        url = f"http://{LOOPBACK}:{port}/metrics"

        def scrape() -> str | None:
            proc.check_running()
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    return str(resp.read().decode())
            except OSError:
                return None

        text = wait_until(scrape, timeout=20, message=f"{args[0]} /metrics")
        assert text is not None
        return text
    finally:
        proc.stop()


def _assert_community(prefix: str, real: dict[str, set[str]]) -> None:
    problems = []
    for name, labels in sorted(expected_labels().items()):
        if not name.startswith(prefix) or name in NEWER:
            continue
        if name not in real:
            problems.append(f"{name}: not in the community exporter's output")
            continue
        community = real[name] - COMMUNITY_ONLY - dropped(name)
        if labels != community:
            problems.append(f"{name}: we record labels {sorted(labels)}, the exporter has {sorted(community)}")
    assert not problems, "\n".join(problems)


def test_postgres_names_are_postgres_exporters(pg_replication: PgReplication, tmp_path: Path) -> None:
    if not POSTGRES_EXPORTER.exists():
        pytest.fail(f"{POSTGRES_EXPORTER} missing: run make test-deps (package prometheus-postgres-exporter)")
    primary = pg_replication.primary
    wait_replica_caught_up(pg_replication)
    env = env_without_pg()
    env["DATA_SOURCE_NAME"] = primary.dsn(dbname="appdb") + "?sslmode=disable"
    # A temporary slot lives as long as this session, so the shared primary keeps none.
    with primary.connect() as conn:
        conn.execute("SELECT pg_create_physical_replication_slot('compat_check', true, true)")
        text = _scrape(
            [POSTGRES_EXPORTER, f"--extend.query-path={PG_EXAMPLE_QUERIES}"], tmp_path / "postgres_exporter.log", env
        )
    real = exposition_labels(text)
    assert "pg_stat_replication_pg_wal_lsn_diff" in real, "the replica was not connected"
    _assert_community("pg_", real)


def test_redis_names_are_redis_exporters(redis_fresh: RedisServer, tmp_path: Path) -> None:
    if not REDIS_EXPORTER.exists():
        pytest.fail(f"{REDIS_EXPORTER} missing: run make test-deps (package prometheus-redis-exporter)")
    with redis_fresh.client() as client:
        client.config_set("latency-monitor-threshold", 1)
        client.execute_command("DEBUG", "SLEEP", "0.01")  # one latency event for redis_latency_spike_*
        client.set("sessions:1", "x")
    text = _scrape(
        [REDIS_EXPORTER, f"--redis.addr={redis_fresh.url}", "--ping-on-connect", "--check-key-groups=^(sessions):"],
        tmp_path / "redis_exporter.log",
    )
    _assert_community("redis_", exposition_labels(text))
