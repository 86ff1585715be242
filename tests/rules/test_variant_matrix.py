"""The variant matrix (tests/rules/variants/): per real variant, a healthy twin fires no
warning or critical alert, each incident its source claims fires its alert, and the docs
say exactly where an alert cannot work.  See tests/rules/variants/__init__.py."""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.rules.variants as matrix
from exporter.collectors import SOURCES
from tests.rules.rulepack import GENERATED, PROMTOOL, ROOT, alert_rules, load_generated, relevant_rules
from tests.rules.variants import Source, Variant, parse, promtool_groups

pytestmark = pytest.mark.timeout(600)

# the rule files a twin's promtool run reads (only the groups its input can reach)
PACK_FILES = (GENERATED / "prometheus_alerts.yaml", GENERATED / "prometheus_rules.yaml")

DOCS = ROOT / "docs" / "metrics"
TABLE_HEADER = "| Condition | Alert | Works on |"
# Alert groups whose every alert must be claimed by an incident of some source here.
COVERED_GROUPS = {
    "stack-exporter.email",
    "stack-exporter.statuspages",
    "stack-exporter.email_domains",
    "stack-exporter.email_webhooks",
    "stack-exporter.redis",
    "stack-exporter.postgres",
    "stack-exporter.pgbouncer",
    "stack-exporter.lago",
    "stack-exporter.directus",
    "stack-exporter.http_probes",
    "stack-exporter.exporter",
    "stack-exporter.node",
    "stack-exporter.app",
    "stack-exporter.rum",
}
# Alerts of those groups that no variant can show from one exporter's series, and why.
# The first version's EmailDeliveriesStopped, written against the union of the providers.
FIRST_DELIVERIES_STOPPED = (
    "sum by (target, provider) (increase(email_events_total{event='requested'}[1h])) > 10"
    " unless on (target, provider)"
    " sum by (target, provider) (increase(email_events_total{event='delivered'}[1h])) > 0"
)
NOT_PER_VARIANT = {
    "StackExporterDown": "Prometheus's `up` of the exporter's own scrape: not a source's series",
    "StackExporterAbsent": "the absence of the exporter's scrape job: not a source's series",
    "StackExporterConfigReloadFailed": "the exporter process's reload state: not a source's series",
    "StackExporterStatusPageBridgeFailing": "the exporter's status-page bridge state: not a source's series",
    "NodeDown": "Prometheus's `up` of the node scrape: not a series node_exporter emits",
    "NodeAbsent": "the absence of the node scrape job: not a series node_exporter emits",
    "AppDown": "Prometheus's `up` of the app's scrape: not a series the app emits",
    "AppAbsent": "the absence of the app's scrape job: not a series the app emits",
}


@cache
def sources() -> tuple[Source, ...]:
    found = []
    for info in pkgutil.iter_modules(matrix.__path__):
        module = importlib.import_module(f"{matrix.__name__}.{info.name}")
        found.append(module.SOURCE)
    return tuple(found)


def all_variants() -> list[tuple[Source, Variant]]:
    return [(s, v) for s in sources() for v in s.variants]


# ------------------------------------------------------------------ the docs tables


def docs_table(source: Source) -> dict[str, tuple[str, set[str]]]:
    """condition -> (alert, variants it works on) from the source's "Alerts by variant" table."""
    path = DOCS / f"{source.docs}.md"
    lines = path.read_text().splitlines()
    assert TABLE_HEADER in lines, f"{path.relative_to(ROOT)}: no '{TABLE_HEADER}' table"
    rows: dict[str, tuple[str, set[str]]] = {}
    every = {v.name for v in source.variants}
    for line in lines[lines.index(TABLE_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        condition, alert, works = (cell.strip() for cell in line.strip("|").split("|"))
        names = {w.strip() for w in works.split(",") if w.strip()} if works not in {"all", "none"} else set()
        if works == "all":
            names = every
        assert names <= every, f"{path.name}: {condition!r} names unknown variants {sorted(names - every)}"
        rows[condition] = (alert.strip("`"), names)
    return rows


def test_docs_tables_list_every_incident() -> None:
    problems = []
    for source in sources():
        rows = docs_table(source)
        conditions = {i.condition: i for i in source.incidents}
        for missing in sorted(set(conditions) - set(rows)):
            problems.append(f"docs/metrics/{source.docs}.md: no row for {missing!r}")
        for extra in sorted(set(rows) - set(conditions)):
            problems.append(f"docs/metrics/{source.docs}.md: row {extra!r} matches no incident of the matrix")
        for condition, (alert, _) in rows.items():
            if condition in conditions and conditions[condition].alert != alert:
                problems.append(f"docs/metrics/{source.docs}.md: {condition!r} names {alert}, the matrix another alert")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ completeness


def test_every_email_provider_is_a_variant() -> None:
    providers = {k for k, spec in SOURCES.items() if spec.module.startswith("exporter.collectors.email.")}
    email = next(s for s in sources() if s.name == "email")
    assert providers == {v.name for v in email.variants}


def test_every_source_of_the_exporter_is_in_the_matrix() -> None:
    """A source added to the registration table without a variants module fails here."""
    email = {k for k, spec in SOURCES.items() if spec.module.startswith("exporter.collectors.email.")}
    matrix_sources = {s.name for s in sources()}
    missing = set(SOURCES) - email - matrix_sources
    assert not missing, f"sources without a module in tests/rules/variants/: {sorted(missing)}"
    assert "email" in matrix_sources


def test_every_alert_is_claimed_by_an_incident() -> None:
    # An escalated copy is claimed by the incident that lets it fire (escalates_within).
    claimed = {(i.alert, i.severity, "") for s in sources() for i in s.incidents}
    claimed |= {(i.alert, "critical", "true") for s in sources() for i in s.incidents if i.escalates_within}
    missing = []
    for group in load_generated("prometheus_alerts.yaml")["groups"]:
        if group["name"] not in COVERED_GROUPS:
            continue
        for rule in alert_rules([group]):
            key = (rule["alert"], rule["labels"]["severity"], rule["labels"].get("escalated", ""))
            if key not in claimed and rule["alert"] not in NOT_PER_VARIANT:
                escalated = ", escalated" if key[2] else ""
                missing.append(f"{key[0]} ({key[1]}{escalated}) in {group['name']}")
    assert not missing, "alerts no incident of the variant matrix shows:\n" + "\n".join(sorted(set(missing)))


# ------------------------------------------------------------------ the matrix itself


def _promtool(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=500, check=False
    )


# The twins' promtool runs, one a core, beside the next variants' captures (which mostly
# wait on servers): test_variant starts them, test_variant_alerts (after every
# test_variant in this module's order) waits for each and asserts.
_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="promtool")
_Run = tuple[list[Future[subprocess.CompletedProcess[str]]], list[list[dict[str, Any]]]]
_STARTED: dict[str, _Run] = {}


async def _start(source: Source, variant: Variant, request: pytest.FixtureRequest, tmp_path: Path) -> _Run:
    """Capture the variant, check its series against the docs, and start promtool on its twins."""
    samples = parse(await variant.capture(request))
    assert samples, f"{variant.name}: nothing captured"
    groups, supported = promtool_groups(source, variant, samples)
    if source.check is not None:
        problems = source.check(variant, samples)
        assert not problems, f"{variant.name}'s real series disagree with docs/metrics/{source.docs}.md:\n" + "\n".join(
            problems
        )

    # the docs say where each condition works: exactly where the variant's series allow it
    rows = docs_table(source)
    wrong = []
    for incident in source.incidents:
        documented = variant.name in rows.get(incident.condition, ("", set()))[1]
        if documented != (incident in supported):
            wrong.append(
                f"{incident.condition!r}: the docs say it {'works' if documented else 'does not work'} on"
                f" {variant.name}, the captured series say it {'does' if incident in supported else 'does not'}"
            )
    assert not wrong, f"docs/metrics/{source.docs}.md disagrees with {variant.name}'s real series:\n" + "\n".join(wrong)

    # promtool runs a file's groups one after the other: split them over the cores
    chunks = [groups[i :: os.cpu_count() or 1] for i in range(min(len(groups), os.cpu_count() or 1))]
    rules = relevant_rules(groups, tmp_path / "rules.yaml", PACK_FILES)
    futures = []
    for n, chunk in enumerate(chunks):
        test_file = tmp_path / f"{source.name}-{variant.name}-{n}-test.yaml"
        test_file.write_text(
            yaml.safe_dump(
                {
                    "rule_files": [str(rules)],
                    "evaluation_interval": source.evaluation_interval,
                    "tests": chunk,
                },
                sort_keys=False,
                width=10_000,
            )
        )
        futures.append(_POOL.submit(_promtool, test_file))
    return futures, chunks


def _key(source: Source, variant: Variant) -> str:
    return f"{source.name}/{variant.name}"


@pytest.mark.parametrize(("source", "variant"), all_variants(), ids=lambda x: x.name)
async def test_variant(source: Source, variant: Variant, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The variant's real series: captured, held to its docs, and its twins handed to promtool."""
    _STARTED[_key(source, variant)] = await _start(source, variant, request, tmp_path)


@pytest.mark.parametrize(("source", "variant"), all_variants(), ids=lambda x: x.name)
async def test_variant_alerts(source: Source, variant: Variant, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The healthy twin fires nothing and each incident fires its alert (promtool on the twins)."""
    started = _STARTED.pop(_key(source, variant), None)
    if started is None:  # test_variant was not selected, or failed before starting promtool
        started = await _start(source, variant, request, tmp_path)
    futures, chunks = started
    results = [await asyncio.wrap_future(f) for f in futures]
    failed = [(r, chunk) for r, chunk in zip(results, chunks, strict=True) if r.returncode != 0]
    assert not failed, "\n".join(_explain(r.stdout + r.stderr, chunk) for r, chunk in failed)


def _explain(output: str, groups: list[dict[str, object]]) -> str:
    """promtool names failing groups by index only: put the group names in."""
    names = "\n".join(f"  group {i}: {g['name']}" for i, g in enumerate(groups))
    return f"{output}\ngroups:\n{names}"


def test_incident_conditions_are_unique() -> None:
    for source in sources():
        names = [i.condition for i in source.incidents]
        assert len(names) == len(set(names)), f"{source.name}: duplicate conditions"


async def test_matrix_catches_a_rule_written_for_the_union(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The matrix can fail: the first version's EmailDeliveriesStopped, which read "no
    delivered series" as "nothing delivered", fires on Postmark's healthy twin."""
    email = next(s for s in sources() if s.name == "email")
    postmark = next(v for v in email.variants if v.name == "postmark")
    healthy = promtool_groups(email, postmark, parse(await postmark.capture(request)))[0][:1]
    old = tmp_path / "old-rule.yaml"
    old.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "first-version",
                        "rules": [
                            {
                                "alert": "EmailDeliveriesStopped",
                                "expr": FIRST_DELIVERIES_STOPPED,
                                "for": "15m",
                                "labels": {"severity": "critical"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    test_file = tmp_path / "old-test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [str(old)], "evaluation_interval": email.evaluation_interval, "tests": healthy}, width=10_000
        )
    )
    result = await asyncio.to_thread(_promtool, test_file)
    assert result.returncode != 0
    assert "EmailDeliveriesStopped" in result.stdout + result.stderr
