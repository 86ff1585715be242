"""The writer's label-text cache (issue 16, item 2): same bytes cold, warm and after change, bounded.

``render_text`` keeps the ``{...}`` text of each (target, label set) between scrapes.  The
oracle is prometheus-client's own encoders over merged families (tests/test_exposition.py)
and the writer with its cache emptied before every render; the cache is also forced to
rotate on every few entries, so texts found in the older generation are exercised too.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporter import exposition
from exporter.exposition import DROPPED_FAMILIES, render_text
from tests.helpers import FamiliesRegistry, merge_target_families

Groups = list[tuple[str | None, list[Metric]]]

# around "target" in sort order, so the engine's label is slotted in everywhere
LABEL_NAMES = ["a", "query", "tar", "targets", "u", "zeta"]
PIECES = ["x", "y", '"', "\\", "\n", "\\n", '\\"', "é", "日本", "🙂", " ", "", "{", "}", ",", "=", "target="]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Each test starts, and leaves, with an empty cache of the default size."""
    exposition._LABEL_TEXTS.clear()
    yield
    exposition._LABEL_TEXTS.clear()


def random_value(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 8)))


def random_families(rng: random.Random, prefix: str = "r") -> list[Metric]:
    """Gauges, counters and a summary with random label sets; no duplicate series."""
    out: list[Metric] = []
    for i in range(6):
        names = rng.sample(LABEL_NAMES, rng.randrange(1, 4))
        cls = (GaugeMetricFamily, CounterMetricFamily)[i % 2]
        family = cls(f"{prefix}_{i}", f'Help "{i}" \\ with\nnewline.', labels=names)
        seen: set[tuple[str, ...]] = set()
        for _ in range(rng.randrange(1, 40)):
            values = tuple(random_value(rng) for _ in names)
            if values not in seen:
                seen.add(values)
                family.add_metric(list(values), rng.choice([0.0, 1.0, 2.5, 1e-9, 123456789.0, float("inf")]))
        out.append(family)
    summary = SummaryMetricFamily(f"{prefix}_latency_seconds", "Latency.", labels=["query"])
    summary.add_metric([random_value(rng)], count_value=3, sum_value=0.5)
    out.append(summary)
    out.append(GaugeMetricFamily(f"{prefix}_plain", "No labels.", value=1))
    return out


def fresh(groups: Groups) -> Groups:
    """Equal families with new label-value string objects, as a new scrape brings."""
    out: Groups = []
    for target, families in groups:
        copies = []
        for family in families:
            copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = [s._replace(labels={k: (v + ".")[:-1] for k, v in s.labels.items()}) for s in family.samples]
            copies.append(copy)
        out.append((target, copies))
    return out


def client_bytes(groups: Groups, openmetrics: bool) -> bytes:
    registry = FamiliesRegistry(merge_target_families(groups))
    return (openmetrics_latest if openmetrics else generate_latest)(registry)  # type: ignore[arg-type]


def uncached(groups: Groups, openmetrics: bool) -> bytes:
    exposition._LABEL_TEXTS.clear()
    return render_text(groups, openmetrics=openmetrics)


def random_groups(seed: int) -> Groups:
    rng = random.Random(seed)
    return [
        ("alpha", random_families(rng)),
        ('be"ta\\\n', random_families(rng)),
        ("", random_families(rng)),
        (None, random_families(rng, prefix="self")),
    ]


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
@pytest.mark.parametrize(
    "bounds", [None, (3, 10**9), (10**6, 200)], ids=["default", "rotate_by_entries", "rotate_by_bytes"]
)
def test_cold_warm_and_changed_renders_equal_the_oracles(
    openmetrics: bool, bounds: tuple[int, int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bounds is not None:
        monkeypatch.setattr(exposition, "_LABEL_TEXTS", exposition._LabelTexts(*bounds))
    for seed in range(3):  # seed 1 and 2: label values change, some label sets stay
        groups = random_groups(seed)
        if seed:
            groups[0] = random_groups(seed - 1)[0]  # one target keeps its label sets
        expected = client_bytes(groups, openmetrics)
        assert uncached(fresh(groups), openmetrics) == expected
        for _ in range(3):  # the second and third renders are (mostly) cache hits
            assert render_text(fresh(groups), openmetrics=openmetrics) == expected
    cache = exposition._LABEL_TEXTS
    assert cache.recent or cache.older


def test_same_labels_under_two_targets_and_none() -> None:
    def family() -> GaugeMetricFamily:
        g = GaugeMetricFamily("x_g", "G.", labels=["k", "z"])
        g.add_metric(["v", 'q"'], 1)
        return g

    groups: Groups = [("a", [family()]), ("b", [family()]), (None, [family()])]
    for _ in range(3):
        text = render_text(fresh(groups)).decode()
        assert text.splitlines()[2:] == [
            'x_g{k="v",target="a",z="q\\""} 1.0',
            'x_g{k="v",target="b",z="q\\""} 1.0',
            'x_g{k="v",z="q\\""} 1.0',
        ]
        assert text.encode() == client_bytes(groups, openmetrics=False)
    # the engine's target label and a family's own "target" label are not the same text
    own = GaugeMetricFamily("x_own", "Own target label.", labels=["k", "target"])
    own.add_metric(["v", "a"], 1)
    before = DROPPED_FAMILIES["reserved_label"]
    for _ in range(2):
        assert 'x_own{k="v",target="a"} 1.0' in render_text([(None, [own])]).decode()
        assert "x_own{" not in render_text([("a", [own])]).decode()  # cached for None, still refused here
    assert DROPPED_FAMILIES["reserved_label"] - before == 2


def test_duplicates_found_on_cache_hits() -> None:
    dupes = GaugeMetricFamily("x_d", "Duplicates.", labels=["k"])
    dupes.add_metric(["a"], 1)
    dupes.add_metric(["a"], 2)
    ok = GaugeMetricFamily("x_d", "Same name, next target.", labels=["k"])
    ok.add_metric(["a"], 3)
    before = DROPPED_FAMILIES["duplicate_series"]
    for _ in range(3):
        text = render_text([("t1", [dupes]), ("t2", [ok])]).decode()
        assert text.splitlines()[2:] == ['x_d{k="a",target="t2"} 3.0']
    assert DROPPED_FAMILIES["duplicate_series"] - before == 3


def test_unhashable_label_value_is_written_uncached() -> None:
    odd = GaugeMetricFamily("x_odd", "A list where a string belongs.", labels=["k"])
    odd.add_metric(["a"], 1)
    odd.samples[0].labels["k"] = ["a"]  # type: ignore[assignment]
    first = render_text([("t", [odd])])
    assert render_text([("t", [odd])]) == first
    assert not exposition._LABEL_TEXTS.recent


@pytest.mark.parametrize(
    ("length", "piece"), [(20, "x"), (600, "x"), (600, "🙂")], ids=["short_texts", "long_texts", "wide_texts"]
)
def test_cache_is_bounded_when_every_scrape_brings_new_values(length: int, piece: str) -> None:
    """50 scrapes x 5,000 new statement texts: entries and bytes of text stay under the bound."""
    cache = exposition._LABEL_TEXTS
    max_entries = 2 * cache.max_entries
    max_bytes = 2 * (cache.max_bytes + exposition._TEXT_LONGEST)
    filler = f"SELECT '{piece}' FROM \"t\" WHERE a = $1 " * (length // 30 + 1)  # noqa: S608 - a label value
    for scrape in range(50):
        info = GaugeMetricFamily("pg_stat_statements_query_info", "Text.", labels=["queryid", "query"])
        for i in range(5000):
            info.add_metric([str(i), f"{scrape}:{i}:{filler}"[:length]], 1)
        text = render_text([("pg", [info])])
        assert text.count(b"\n") == 5002
        entries = len(cache.recent) + len(cache.older)
        texts = [*cache.recent.values(), *cache.older.values()]
        assert entries <= max_entries
        assert sum(map(sys.getsizeof, texts)) <= max_bytes
    assert cache.older  # it did rotate: 250,000 texts went through a bound of 40,000


def test_a_steady_scrape_is_all_hits_after_the_first() -> None:
    groups = random_groups(7)
    render_text(fresh(groups))
    cache = exposition._LABEL_TEXTS
    recent = dict(cache.recent)
    render_text(fresh(groups))
    render_text(fresh(groups), openmetrics=True)
    assert cache.recent == recent  # nothing new written, nothing rotated


def test_escape_equals_the_translate_table() -> None:
    """_escape chains three replaces (fast in C); the mapping says what they must equal."""
    rng = random.Random(16)
    values = [
        "".join(rng.choice([*PIECES, "\r", "\t", "\\\\"]) for _ in range(rng.randrange(0, 12))) for _ in range(20000)
    ]
    assert [v for v in values if exposition._escape(v) != v.translate(exposition._VALUE_ESCAPE)] == []
