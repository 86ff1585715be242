"""Custom queries in postgres_exporter's ``queries.yaml`` format: loading, checking, rows to families.

The file is read and checked when the config loads, so ``--check-config`` reports
a YAML syntax error, a bad ``usage`` or a name that would break the exposition (an
invalid or reserved label, a metric that collides with a built-in or with another
query's, counting ``_total``/``_created``) with its path inside the file; what cannot
be known statically (SQL errors, NULLs, wrong column types, duplicate series) is
counted at scrape time by the collector.  Format::

    pg_events_retention:                  # query name = metric prefix
      query: "SELECT extract(epoch FROM now() - min(created_at)) AS oldest_row_age_seconds FROM events"
      cache_seconds: 300                  # optional: rerun at most this often
      master: true                        # accepted for compatibility (always the DSN's database)
      runonserver: ">=12.0.0"             # optional: PostgreSQL version range
      metrics:
        - oldest_row_age_seconds:
            usage: GAUGE                  # GAUGE, COUNTER, LABEL or DISCARD
            description: "Age of the oldest row."
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.postgres.families import (
    _UNIT_SCALE,
    BGWRITER_METRICS,
    DATABASE_METRICS,
    core_families,
    table_families,
)
from exporter.collectors.postgres.sql import SETTINGS
from exporter.exposition import LABEL_NAME_RE, METRIC_NAME_RE, exposed_names
from exporter.schema import MAX_CONFIG_BYTES, ConfigError, FileProblem, load_yaml, read_file

if TYPE_CHECKING:
    # only for annotations: the config loader imports this module without the driver
    import asyncpg

Usage = Literal["LABEL", "GAUGE", "COUNTER", "DISCARD"]

# labels the exporter itself puts on series: a query's own would make them ambiguous
# (``target`` is added to every series of a target, ``collector`` to the self metrics)
RESERVED_LABELS = ("target", "collector")
# Families emitted by code that needs the driver (collector.py, statements.py), which
# this module cannot import; tests/test_guards_exposition.py checks the whole reserved
# set against docs/metrics/postgres.md, so a new built-in cannot slip past.
_DRIVER_FAMILIES = (("pg_up", "gauge"),)
_RESERVED_PREFIXES = ("pg_stat_statements_", "stack_exporter_")
_QUERY_KEYS = {"query", "metrics", "master", "cache_seconds", "runonserver"}
_COLUMN_KEYS = {"usage", "description"}
_UNSUPPORTED = {"MAPPEDMETRIC", "DURATION", "HISTOGRAM"}
_RANGE_RE = re.compile(r"^(>=|<=|>|<|=|==)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


@dataclass(frozen=True)
class Column:
    name: str
    usage: Usage
    description: str


@dataclass(frozen=True)
class CustomQuery:
    name: str
    sql: str
    columns: tuple[Column, ...]
    cache_seconds: float = 0.0
    runonserver: str = ""

    @property
    def labels(self) -> list[str]:
        return [c.name for c in self.columns if c.usage == "LABEL"]

    @property
    def values(self) -> list[Column]:
        return [c for c in self.columns if c.usage in ("GAUGE", "COUNTER")]

    def runs_on(self, version_num: int) -> bool:
        """Whether ``runonserver`` (e.g. ``>=12.0.0 <16.0.0``) admits this server version."""
        if not self.runonserver:
            return True
        major, minor = version_num // 10000, version_num % 10000
        for part in self.runonserver.split():
            m = _RANGE_RE.match(part)
            if m is None:  # checked at load; keep running rather than silently skipping
                continue
            op = m.group(1) or "="
            want = (int(m.group(2)), int(m.group(3) or 0))
            have = (major, minor)
            ok = {
                ">=": have >= want,
                "<=": have <= want,
                ">": have > want,
                "<": have < want,
                "=": have[0] == want[0] if m.group(3) is None else have == want,
                "==": have == want,
            }[op]
            if not ok:
                return False
        return True


def load_queries(path: Path) -> tuple[tuple[CustomQuery, ...], list[str]]:
    """Parse and check a queries file; returns (queries, problems).  Never raises."""
    # the same strict, bounded reading as the config file itself: a regular file of at most
    # MAX_CONFIG_BYTES, no duplicate keys, bounded aliases and nesting
    try:
        text = read_file(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileProblem as exc:
        return (), [str(exc)]
    except UnicodeDecodeError:
        return (), [f"{str(path)!r} is not UTF-8 text"]
    try:
        raw = load_yaml(text, str(path))
    except ConfigError as exc:
        return (), list(exc.problems)
    return parse_queries(raw)


def parse_queries(raw: Any) -> tuple[tuple[CustomQuery, ...], list[str]]:
    problems: list[str] = []
    if raw is None:
        return (), []
    if not isinstance(raw, dict):
        return (), ["the top level must be a mapping of query names"]
    queries: list[CustomQuery] = []
    # exposed sample or family name -> (the key path that claims it, its family, the family's type)
    metric_names: dict[str, tuple[str, str, str]] = {}
    for name, spec in raw.items():
        where = str(name)
        if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
            problems.append(f"{where}: query name must be a valid metric name prefix")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping with query and metrics")
            continue
        before = len(problems)
        for key in spec:
            if key not in _QUERY_KEYS:
                problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(_QUERY_KEYS))})")
        sql = spec.get("query")
        if not isinstance(sql, str) or not sql.strip():
            problems.append(f"{where}.query: missing or not a string")
        cache = spec.get("cache_seconds", 0)
        if isinstance(cache, bool) or not isinstance(cache, (int, float)) or cache < 0:
            problems.append(f"{where}.cache_seconds: expected a non-negative number")
            cache = 0
        if "master" in spec and not isinstance(spec["master"], bool):
            problems.append(f"{where}.master: expected true or false")
        runon = spec.get("runonserver", "")
        if not isinstance(runon, str) or any(_RANGE_RE.match(p) is None for p in str(runon).split()):
            problems.append(f"{where}.runonserver: expected a version range such as '>=12.0.0 <16.0.0'")
            runon = ""
        columns = _parse_columns(where, spec.get("metrics"), problems, metric_names)
        if columns and not any(c.usage in ("GAUGE", "COUNTER") for c in columns):
            problems.append(f"{where}.metrics: no GAUGE or COUNTER column, the query would export nothing")
        if len(problems) == before and isinstance(sql, str):
            queries.append(CustomQuery(str(name), sql, tuple(columns), float(cache), str(runon)))
    return tuple(queries), problems


def _parse_columns(
    where: str, metrics: Any, problems: list[str], metric_names: dict[str, tuple[str, str, str]]
) -> list[Column]:
    if not isinstance(metrics, list) or not metrics:
        problems.append(f"{where}.metrics: expected a non-empty list of column mappings")
        return []
    columns: list[Column] = []
    seen: set[str] = set()
    for i, item in enumerate(metrics):
        at = f"{where}.metrics[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            problems.append(f"{at}: expected one mapping 'column: {{usage: ..., description: ...}}'")
            continue
        ((col, spec),) = item.items()
        if not isinstance(col, str) or not METRIC_NAME_RE.match(col):
            problems.append(f"{at}: column name {col!r} is not a valid metric name part")
            continue
        if col in seen:
            problems.append(f"{at}: duplicate column {col!r}")
            continue
        seen.add(col)
        if not isinstance(spec, dict):
            problems.append(f"{at}.{col}: expected a mapping with usage and description")
            continue
        for key in spec:
            if key not in _COLUMN_KEYS:
                problems.append(f"{at}.{col}.{key}: unknown key (allowed: description, usage)")
        usage = str(spec.get("usage", "")).upper()
        if usage in _UNSUPPORTED:
            problems.append(f"{at}.{col}.usage: {usage} is not supported (use GAUGE, COUNTER, LABEL or DISCARD)")
            continue
        if usage not in ("LABEL", "GAUGE", "COUNTER", "DISCARD"):
            problems.append(f"{at}.{col}.usage: must be GAUGE, COUNTER, LABEL or DISCARD, got {spec.get('usage')!r}")
            continue
        desc = spec.get("description", "")
        if not isinstance(desc, str):
            problems.append(f"{at}.{col}.description: expected a string")
            continue
        if usage == "LABEL":
            problem = label_name_problem(col)
            if problem is not None:
                problems.append(f"{at}.{col}: {problem}")
                continue
        elif usage != "DISCARD":
            found = metric_name_problems(f"{where}_{col}", usage.lower(), f"{at}.{col}", metric_names)
            if found:
                problems.extend(f"{at}.{col}: {problem}" for problem in found)
                continue
        columns.append(Column(col, usage, desc or f"{col} from custom query {where}."))  # type: ignore[arg-type]
    return columns


def label_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a label a custom query adds, or None."""
    if not LABEL_NAME_RE.match(name):
        return f"label name {name!r} is invalid (letters, digits and _, not starting with a digit)"
    if name.startswith("__"):
        return f"label name {name!r} is reserved: names starting with __ are Prometheus's own"
    if name in RESERVED_LABELS:
        return f"label name {name!r} is reserved: the exporter adds it itself"
    return None


def family_key(name: str, kind: str) -> str:
    """The family name prometheus-client gives a metric named ``name`` (a counter drops ``_total``)."""
    return name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name


def metric_name_problems(full: str, kind: str, at: str, claimed: dict[str, tuple[str, str, str]]) -> list[str]:
    """Problems with a custom metric ``full`` of type ``kind``; records its names in ``claimed``."""
    if not METRIC_NAME_RE.match(full):
        return [f"metric name {full!r} is invalid"]
    family = family_key(full, kind)
    names = exposed_names(family, kind)
    builtin = builtin_names()
    for prefix in _RESERVED_PREFIXES:
        if full.startswith(prefix):
            return [f"metric {full} is in the exporter's own namespace {prefix}*"]
    for n in names:
        if n in builtin:
            return [f"metric {full} collides with the built-in PostgreSQL metric {builtin[n]}"]
    for n in names:
        if n in claimed:
            other_at, other, other_kind = claimed[n]
            exposed = f" (exposed as {n})" if n != other else ""
            return [f"{kind} {full} collides with {other_kind} {other}{exposed} defined by {other_at}"]
    for n in names:
        claimed[n] = (at, family, kind)
    return []


@functools.cache
def builtin_names() -> dict[str, str]:
    """Exposed name -> built-in family, from the collectors' own builders.

    The builders run over a document that takes every branch, so the set follows
    the code; ``pg_settings_*`` is reserved per setting with every unit suffix,
    since the suffix depends on the server's unit for it.
    """
    database = {"datname": "d", "datallowconn": True, **{col: 1 for col, *_ in DATABASE_METRICS}}
    document = {
        "version": "x",
        "version_num": 1,
        "start": 0,
        "now": 0,
        "settings": [],
        "databases": [database],
        "bgwriter": {col: 1 for col, *_ in BGWRITER_METRICS},
        "replica": {"receive": 1, "replay": 1, "replay_ts": 0, "paused": False},
        "replicas": [],
        "slots": [],
    }
    families = [*core_families(document, {"d": 1.0}), *table_families([])]
    kinds: list[tuple[str, str]] = [(f.name, f.type) for f in families]
    kinds.extend(_DRIVER_FAMILIES)
    suffixes = {"", *(suffix for _, suffix in _UNIT_SCALE.values())}
    kinds.extend((f"pg_settings_{name}{suffix}", "gauge") for name, _ in SETTINGS for suffix in suffixes)
    return {n: family for family, kind in kinds for n in exposed_names(family, kind)}


class RowError(Exception):
    """A custom query's rows cannot become metrics (NULL, wrong type, duplicate)."""


def custom_families(q: CustomQuery, records: Sequence[asyncpg.Record]) -> list[Metric]:
    """One family per GAUGE or COUNTER column of ``q``; raises :class:`RowError` on rows that do not fit."""
    label_cols = q.labels
    fams: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    for spec in q.values:
        name = f"{q.name}_{spec.name}"
        if spec.usage == "COUNTER":
            fams[spec.name] = CounterMetricFamily(name, spec.description, labels=label_cols)
        else:
            fams[spec.name] = GaugeMetricFamily(name, spec.description, labels=label_cols)
    seen: set[tuple[str, ...]] = set()
    for record in records:
        keys = set(record.keys())
        missing = [c for c in (*label_cols, *fams) if c not in keys]
        if missing:
            raise RowError(f"the query returns no column {', '.join(missing)}")
        lv = tuple("" if record[c] is None else str(record[c]) for c in label_cols)
        if lv in seen:
            raise RowError(f"duplicate series for labels {dict(zip(label_cols, lv, strict=True))}")
        seen.add(lv)
        for col, fam in fams.items():
            raw = record[col]
            if raw is None:
                raise RowError(f"column {col} is NULL")
            if isinstance(raw, bool):
                value = 1.0 if raw else 0.0
            elif isinstance(raw, (int, float, Decimal)):
                value = float(raw)
            else:
                raise RowError(f"column {col} is {type(raw).__name__}, not a number")
            fam.add_metric(list(lv), value)
    return list(fams.values())
