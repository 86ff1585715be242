"""The variant matrix: every alert of the pack against the series each real variant emits.

A rule written against the union of every provider's or server mode's series pages for a
healthy system (a provider that never reports `delivered`) or stays silent in an incident
(a figure only two providers report).  So the rules are tested per *variant*: an email
provider, a Redis mode, a PostgreSQL role, a Lago with or without analytics...

For each variant (`tests/rules/variants/<source>.py`, one module per source, named by the
source's config key):

1. the series are **captured**: the real exporter scrapes the real server the suite starts
   (or, for internet APIs, the fake serving the real API bodies) in that mode, so the set of
   series is exactly what that variant emits, never a hand-written union;
2. a **healthy twin** replays those series over hours with healthy dynamics (counters that
   grow as a healthy system's do, a daily counter reset) and no warning or critical alert
   may fire at any time (promtool, `ALERTS` over the whole run);
3. each **incident** the source claims to catch is replayed on the same series: it changes
   only series the variant really emits, and its alert must fire.  An incident that needs a
   series the variant does not emit cannot fire there: the source's docs page must say so in
   its "Alerts by variant" table (`| Condition | Alert | Works on |`), which the test checks
   in both directions.

A variant added to a module without its docs row, an alert without an incident, or a new
email provider without a variant fails a test (test_variant_matrix.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

# The labels Prometheus adds to every series it scrapes from the exporter.
SCRAPE_LABELS = {"job": "stack-exporter", "instance": "exporter:9847"}
# Every scrape job the pack watches, up in each twin: the pack alerts when one is down or
# absent (StackExporterAbsent, NodeAbsent, AppAbsent), and a healthy Prometheus scrapes them all.
WATCHED_JOBS = (SCRAPE_LABELS, {"job": "node", "instance": "node:9100"}, {"job": "app", "instance": "app:8000"})


@dataclass(frozen=True)
class Sample:
    """One captured series: its name, labels (target included) and value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    kind: str  # counter, gauge, untyped ... (the family's TYPE)

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def matches(self, name: str, matchers: Mapping[str, str]) -> bool:
        """`name` and every `label: regex` (anchored, as PromQL's =~)."""
        if self.name != name:
            return False
        own = dict(self.labels)
        return all(re.fullmatch(regex, own.get(key, "")) for key, regex in matchers.items())


# A series' values, one per minute, as a function of the captured sample and the minute.
Values = Callable[[Sample, int], float]


def constant(v: float | None = None) -> Values:
    """The captured value (or `v`) at every minute."""
    return lambda s, _t: s.value if v is None else v


def grows(per_minute: float) -> Values:
    """A counter growing from its captured value by `per_minute` each minute."""
    return lambda s, t: s.value + per_minute * t


@dataclass(frozen=True)
class Rule:
    """How one metric (optionally narrowed by label regexes) behaves in a healthy system."""

    name: str
    values: Values
    matchers: Mapping[str, str] = field(default_factory=dict)
    # Minutes at which the counter restarts from 0 (the providers' stats day turning).
    resets: tuple[int, ...] = ()


@dataclass(frozen=True)
class Change:
    """From the incident's start: the series `name{matchers}` follow `values` instead.

    `values(sample, minutes_since_start, value_at_start)`: a counter continues from where
    it was, a gauge usually jumps to a constant."""

    name: str
    values: Callable[[Sample, int, float], float]
    matchers: Mapping[str, str] = field(default_factory=dict)


def becomes(v: float) -> Callable[[Sample, int, float], float]:
    return lambda _s, _t, _start: v


def keeps_growing(per_minute: float) -> Callable[[Sample, int, float], float]:
    return lambda _s, t, start: start + per_minute * t


def stops() -> Callable[[Sample, int, float], float]:
    return lambda _s, _t, start: start


def vanishes() -> Callable[[Sample, int, float], float]:
    """The series is no longer exposed (a header the response stopped sending)."""
    return lambda _s, _t, _start: GONE


# A value meaning "no sample": written as promtool's `_`.
GONE = -math.inf


@dataclass(frozen=True)
class Incident:
    """A condition the source claims to catch, and the alert that must say so.

    `condition` is the row name in the source's docs table.  Changes that match no captured
    series are skipped; an incident whose `required` metrics (default: every changed metric)
    are not all emitted by the variant cannot fire there, and the docs must say so."""

    condition: str
    alert: str
    severity: str
    changes: tuple[Change, ...]
    # Minutes after the incident starts at which the alert must be firing.
    fires_within: int
    # (metric, label regexes) the variant must emit for the incident to exist there;
    # default: what every change reads.
    required: tuple[tuple[str, Mapping[str, str]], ...] | None = None
    # Labels the firing alert must carry on this variant (beyond alertname and severity).
    expect_labels: Callable[[Variant, Sequence[Sample]], dict[str, str]] | None = None
    # Healthy minutes before the incident starts (long windows need a steady state first).
    start: int = 180
    # Beyond the series: whether the variant's captured values allow the incident at all
    # (an ed25519 DKIM key cannot be a short RSA key).
    applies: Callable[[Sequence[Sample]], bool] | None = None
    # For an alert that escalates (rules/lib/escalate.libsonnet): minutes after the start by
    # which the escalated copy (critical, escalated="true", the same labels) must fire too,
    # when the incident lasts that long.  It must not fire yet when the alert is first checked
    # (`fires_within`): the page comes first, the escalation later.  The copy exists wherever
    # the alert can fire, so the docs row of the condition covers both.
    escalates_within: int | None = None

    def needs(self) -> tuple[tuple[str, Mapping[str, str]], ...]:
        return self.required if self.required is not None else tuple((c.name, c.matchers) for c in self.changes)

    def possible(self, samples: Sequence[Sample]) -> bool:
        if self.applies is not None and not self.applies(samples):
            return False
        return all(any(s.matches(name, m) for s in samples) for name, m in self.needs())


Capture = Callable[[pytest.FixtureRequest], Awaitable[str]]


@dataclass(frozen=True)
class Variant:
    source: str  # the source module's name (a config key, or "email" for the providers)
    name: str  # the variant's name in the docs table
    capture: Capture
    # Extra healthy rules for this variant only (tried before the source's own rules).
    healthy: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Source:
    """One module of tests/rules/variants: its variants, healthy behaviour and incidents."""

    name: str
    docs: str  # docs/metrics/<page>.md holding the "Alerts by variant" table
    variants: tuple[Variant, ...]
    healthy: tuple[Rule, ...]
    incidents: tuple[Incident, ...]
    minutes: int = 360  # length of the healthy twin
    # How often promtool evaluates the rules: 5m asks "which alert fires on which series"
    # (rules/tests/ check timings to the minute); week-long twins can afford coarser steps.
    evaluation_interval: str = "5m"
    # More checks of a variant's captured series against the docs: problems, or none.
    check: Callable[[Variant, Sequence[Sample]], list[str]] | None = None
    # The labels Prometheus adds to the captured series (its scrape job and instance).
    scrape_labels: Mapping[str, str] = field(default_factory=lambda: SCRAPE_LABELS)


# ------------------------------------------------------------------ exposition -> samples

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[Sample]:
    """The samples of a text exposition, with each family's type (`_total` etc. kept)."""
    kinds: dict[str, str] = {}
    samples = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            kinds[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"unparsable exposition line: {line!r}"
        name, labels, raw = match.groups()
        pairs = tuple(
            (k, v.encode().decode("unicode_escape") if "\\" in v else v) for k, v in _LABEL.findall(labels or "")
        )
        family = next(
            (f for f in (name, re.sub(r"(_total|_created|_bucket|_sum|_count)$", "", name)) if f in kinds), name
        )
        samples.append(Sample(name, pairs, float(raw), kinds.get(family, "untyped")))
    return samples


# ------------------------------------------------------------------ samples -> promtool input


def series_name(sample: Sample, scrape_labels: Mapping[str, str] = SCRAPE_LABELS) -> str:
    labels = {**dict(sample.labels), **scrape_labels}
    body = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{sample.name}{{{body}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(x: float) -> str:
    if x == GONE:
        return "_"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    text = repr(round(x, 9))
    return text[:-2] if text.endswith(".0") else text


def compress(values: Sequence[float]) -> str:
    """Minute values in promtool's expanding notation (`a+bxn` runs), exact to 1e-9."""
    parts, i, n = [], 0, len(values)
    while i < n:
        j = i
        if values[i] == GONE:
            j = i
            while j + 1 < n and values[j + 1] == GONE:
                j += 1
            parts.append("_" if j == i else f"_x{j - i + 1}")
            i = j + 1
            continue
        if i + 1 < n and values[i + 1] != GONE:
            step = values[i + 1] - values[i]
            j = i + 1
            while j + 1 < n and math.isclose(values[j + 1] - values[j], step, rel_tol=0, abs_tol=1e-9):
                j += 1
            step = round(step, 9)
        else:
            step = 0.0
        runs = j - i
        if runs == 0:
            parts.append(_num(values[i]))
        else:
            sign = "+" if step >= 0 else "-"
            parts.append(f"{_num(values[i])}{sign}{_num(abs(step))}x{runs}")
        i = j + 1
    return " ".join(parts)


def healthy_values(sample: Sample, rules: Sequence[Rule], minutes: int) -> list[float]:
    for rule in rules:
        if sample.matches(rule.name, rule.matchers):
            values = [rule.values(sample, t) for t in range(minutes + 1)]
            for reset in (r for r in rule.resets if 0 < r <= minutes):
                # the counter starts again from 0 and keeps its pace
                offset = values[reset - 1]
                values[reset:] = [v - offset for v in values[reset:]]
            return values
    return [sample.value] * (minutes + 1)


def apply(values: list[float], sample: Sample, change: Change, start: int) -> list[float]:
    at_start = values[start]
    return values[:start] + [change.values(sample, t, at_start) for t in range(len(values) - start)]


def up_series(minutes: int) -> list[dict[str, str]]:
    return [
        {"series": f'up{{job="{j["job"]}", instance="{j["instance"]}"}}', "values": f"1x{minutes}"}
        for j in WATCHED_JOBS
    ]


def promtool_groups(
    source: Source, variant: Variant, samples: Sequence[Sample]
) -> tuple[list[dict[str, Any]], list[Incident]]:
    """promtool test groups for the variant: the healthy twin, then one per incident it can
    show; also the incidents it can show."""
    rules = (*variant.healthy, *source.healthy)
    groups: list[dict[str, Any]] = []
    minutes = source.minutes
    base = {i: healthy_values(s, rules, minutes) for i, s in enumerate(samples)}
    groups.append(
        {
            "name": f"{source.name}/{variant.name}: healthy for {minutes // 60}h",
            "interval": "1m",
            "input_series": [*_series(samples, base, source.scrape_labels), *up_series(minutes)],
            "promql_expr_test": [
                {
                    # any warning or critical alert firing at any minute of the run
                    "expr": f'max_over_time(ALERTS{{alertstate="firing", severity=~"warning|critical"}}[{minutes}m])',
                    "eval_time": f"{minutes}m",
                    "exp_samples": [],
                }
            ],
        }
    )
    supported = []
    for incident in source.incidents:
        if not incident.possible(samples):
            continue
        supported.append(incident)
        # within `fires_within`; a coarser evaluation than 5m may take two more steps (one to
        # see the condition, one for the `for` to elapse)
        # see the condition, one for the `for` to elapse), and the check must fall on an
        # evaluation or the ALERTS sample it reads is already stale
        step = int(source.evaluation_interval.removesuffix("m"))
        slack = 2 * step if step > 5 else 0
        length = incident.start + incident.fires_within + slack
        length = -(-length // step) * step
        # an escalating incident lasts until its escalated copy is due
        end = length
        if incident.escalates_within is not None:
            end = -(-(incident.start + incident.escalates_within + slack) // step) * step
        values = {i: healthy_values(s, rules, end) for i, s in enumerate(samples)}
        for change in incident.changes:
            for i, s in enumerate(samples):
                if s.matches(change.name, change.matchers):
                    values[i] = apply(values[i], s, change, incident.start)
        # the alert itself, not its escalated copy (which may share its severity)
        labels = {"alertname": incident.alert, "alertstate": "firing", "severity": incident.severity, "escalated": ""}
        extra = incident.expect_labels(variant, samples) if incident.expect_labels else {}
        matchers = ", ".join(f'{k}="{v}"' for k, v in {**labels, **extra}.items())
        by = ", ".join(extra)
        escalation: list[dict[str, Any]] = []
        if incident.escalates_within is not None:
            escalated = {**labels, "severity": "critical", "escalated": "true", **extra}
            esc_matchers = ", ".join(f'{k}="{v}"' for k, v in escalated.items())
            # not yet when the alert itself is checked: the page first ... (a coarse
            # evaluation's slack can reach the escalation: there rules/tests/ time it)
            if not slack:
                escalation.append({"expr": f"ALERTS{{{esc_matchers}}}", "eval_time": f"{length}m", "exp_samples": []})
            escalation.append(
                {
                    # ... the escalation when the incident lasts
                    "expr": f"max by ({by}) (ALERTS{{{esc_matchers}}})",
                    "eval_time": f"{end}m",
                    "exp_samples": [
                        {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in extra.items()) + "}", "value": 1}
                    ],
                }
            )
        groups.append(
            {
                "name": f"{source.name}/{variant.name}: {incident.condition}",
                "interval": "1m",
                "input_series": [*_series(samples, values, source.scrape_labels), *up_series(end)],
                "promql_expr_test": [
                    {
                        # not before the incident starts ...
                        "expr": f"max_over_time(ALERTS{{{matchers}}}[{incident.start - 1}m])",
                        "eval_time": f"{incident.start - 1}m",
                        "exp_samples": [],
                    },
                    {
                        # ... and by the time it should
                        "expr": f"max by ({by}) (ALERTS{{{matchers}}})",
                        "eval_time": f"{length}m",
                        "exp_samples": [
                            {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in extra.items()) + "}", "value": 1}
                        ],
                    },
                    *escalation,
                ],
            }
        )
    return groups, supported


def _series(
    samples: Sequence[Sample], values: Mapping[int, list[float]], scrape_labels: Mapping[str, str]
) -> list[dict[str, str]]:
    return [{"series": series_name(s, scrape_labels), "values": compress(values[i])} for i, s in enumerate(samples)]


# ------------------------------------------------------------------ what every source shares


def _collector(_variant: Variant, samples: Sequence[Sample]) -> dict[str, str]:
    collectors = {s.label("collector") for s in samples if s.name == "stack_exporter_collector_success"}
    assert len(collectors) == 1, f"a variant's capture should hold one collector, got {collectors}"
    return {"collector": str(collectors.pop())}


# The exporter's own series exist for every target of every source.
EXPORTER_HEALTHY = (
    Rule("stack_exporter_collector_success", constant(1)),
    Rule("stack_exporter_collector_cache_age_seconds", constant(0)),
)


def source_down(condition: str, alert: str, severity: str, up_metric: str, fires_within: int, **more: Any) -> Incident:
    """The backend stops answering: its up metric and the collector's success go to 0, as
    the engine reports it; the incident exists wherever the up metric does."""
    return Incident(
        condition,
        alert,
        severity,
        (Change(up_metric, becomes(0)), Change("stack_exporter_collector_success", becomes(0))),
        fires_within=fires_within,
        required=((up_metric, {}),),
        **more,
    )


def exporter_incidents(up_metric: str) -> tuple[Incident, ...]:
    """The exporter's alerts about one source's collector, with that source's up metric."""
    return (
        Incident(
            "the collector fails while the backend answers",
            "StackExporterCollectorFailing",
            "warning",
            (Change("stack_exporter_collector_success", becomes(0)),),
            fires_within=15,
            required=(("stack_exporter_collector_success", {}), (up_metric, {})),
            expect_labels=_collector,
        ),
        Incident(
            "served data goes stale",
            "StackExporterStaleData",
            "warning",
            (Change("stack_exporter_collector_cache_age_seconds", lambda _s, t, start: start + 60 * t),),
            fires_within=25,
            expect_labels=_collector,
        ),
    )
