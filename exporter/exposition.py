"""Text exposition (format 0.0.4) written straight from per-target families.

prometheus-client's ``generate_latest`` needs one family per name, so every
target's samples would first be copied into merged families with a ``target``
label added: two passes and a new Sample per series.  Writing the text here
adds the label while formatting, which removes most of the CPU a scrape spends
outside the backend (measured in bench/).  Both formats equal what
prometheus-client writes for the same merged families, byte for byte
(tests/test_exposition.py), exemplars and native histograms aside: no
collector makes them.  In the text format, OpenMetrics-only
``_created``/``_gsum``/``_gcount`` samples are left out.

Nothing a source returns may make the whole exposition invalid (Prometheus
rejects every series of a scrape over one bad line), so a family part is
dropped, counted in :data:`DROPPED_FAMILIES` and logged once, when it has an
invalid metric or label name, a ``target`` label where the engine adds one, a
name whose exposed samples collide with another family's (counter ``x`` and
gauge ``x_total``, one name with two types) or a series already written.  The
checks are cached per family name and label-key set, so a healthy scrape pays
one set lookup per series (the duplicate check).

A scrape mostly writes the label sets the last one wrote, so the ``{...}`` text
of each (target, label set) is kept between scrapes (:class:`_LabelTexts`, two
bounded generations: label values such as statement texts are unbounded) and a
label set is checked and escaped only when it is new.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, KeysView, Mapping, Sequence

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

log = logging.getLogger("exporter.exposition")

_HELP_ESCAPE = str.maketrans({"\\": r"\\", "\n": r"\n"})
_VALUE_ESCAPE = str.maketrans({"\\": r"\\", "\n": r"\n", '"': r"\""})
_PROM_TYPE = {"counter": "counter", "gauge": "gauge", "summary": "summary", "histogram": "histogram",
              "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}  # fmt: skip
_SKIP_SUFFIXES = ("_created", "_gsum", "_gcount")

Group = tuple[str | None, Sequence[Metric]]  # (target label value or None, families)

# Prometheus's metric and label names (the classic, pre-UTF-8 rules Prometheus 2 parses);
# the custom-query checks at load time use the same patterns
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# why a family part was left out; a fixed set, so the counter's series are bounded
REASONS = ("invalid_metric_name", "invalid_label_name", "reserved_label", "name_collision", "duplicate_series")
# reason -> family parts dropped since the process started (stack_exporter_exposition_dropped_families_total)
DROPPED_FAMILIES: dict[str, int] = dict.fromkeys(REASONS, 0)
_WARNED: set[tuple[str, str]] = set()
_WARNED_MAX = 1000  # a source inventing names on every scrape must not grow this without end
_CACHE_MAX = 20000


def exposed_names(name: str, kind: str) -> tuple[str, ...]:
    """Every name a family of type ``kind`` puts in the text or OpenMetrics exposition."""
    if kind == "counter":
        return (name, f"{name}_total", f"{name}_created")
    if kind == "info":
        return (name, f"{name}_info")
    if kind in ("histogram", "summary", "gaugehistogram"):
        return (name, *(f"{name}_{s}" for s in ("bucket", "count", "sum", "created", "gcount", "gsum")))
    return (name,)


_FAMILY_NAMES: dict[tuple[str, str], tuple[str, ...] | None] = {}


def _family_names(name: str, kind: str) -> tuple[str, ...] | None:
    """The family's exposed names, or None when its name is not a valid metric name (cached)."""
    key = (name, kind)
    try:
        return _FAMILY_NAMES[key]
    except KeyError:
        pass
    names = exposed_names(name, kind) if METRIC_NAME_RE.match(name) else None
    if len(_FAMILY_NAMES) > _CACHE_MAX:
        _FAMILY_NAMES.clear()
    _FAMILY_NAMES[key] = names
    return names


_LABEL_SETS: dict[tuple[frozenset[str], bool], str | None] = {}


def _labels_problem(keys: KeysView[str], with_target: bool) -> str | None:
    """The drop reason for a sample with these label names, or None (cached per key set)."""
    key = (frozenset(keys), with_target)
    try:
        return _LABEL_SETS[key]
    except KeyError:
        pass
    problem: str | None = None
    for label in key[0]:
        if not isinstance(label, str) or not LABEL_NAME_RE.match(label) or label.startswith("__"):
            problem = "invalid_label_name"
            break
        if with_target and label == "target":
            problem = "reserved_label"
            break
    if len(_LABEL_SETS) > _CACHE_MAX:
        _LABEL_SETS.clear()
    _LABEL_SETS[key] = problem
    return problem


def _drop(name: str, target: str | None, reason: str, detail: str) -> None:
    DROPPED_FAMILIES[reason] += 1
    if (name, reason) in _WARNED or len(_WARNED) >= _WARNED_MAX:
        return
    _WARNED.add((name, reason))
    kv = {"metric": name, "reason": reason, "detail": detail}
    if target is not None:
        kv["target"] = target
    log.warning("metric family dropped: it would make the exposition invalid", extra={"kv": kv})


# Bounds of the label-text cache, per generation (two are kept): see docs/limits.md.  A
# text over _TEXT_LONGEST bytes is written every time and never cached, so one huge
# label value cannot hold the cache's memory above its byte bound.
_TEXT_ENTRIES = 10000
_TEXT_BYTES = 2 * 1024 * 1024
_TEXT_LONGEST = 64 * 1024


class _LabelTexts:
    """The ``{...}`` text of each (target, label set), as written after a sample's name.

    A scrape mostly writes the label sets the last one wrote, and sorting and escaping
    them again was most of the writer's work.  Label values are unbounded (statement
    texts, custom-query columns), so the cache keeps two generations: new texts go into
    ``recent``; when it reaches its entry or byte bound it becomes ``older``, and what
    was older goes.  A text still in use is found in ``older`` and moved back, so every
    text used at least once per generation stays, with no bookkeeping on a hit (an LRU
    would reorder on every sample).  Label sets beyond one generation's bound per scrape
    are partly written afresh each time; the bytes are the same either way.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.recent: dict[tuple[object, ...], str] = {}
        self.older: dict[tuple[object, ...], str] = {}
        self.bytes = 0  # memory of the texts in recent (not of their keys)

    def add(self, key: tuple[object, ...], labels: Mapping[str, str], tlabel: str) -> str:
        """The text for a key ``recent`` does not hold: moved from ``older``, or written."""
        try:
            hash(key)
        except TypeError:  # an unhashable label value: written, never cached
            return _label_text(labels, tlabel)
        text = self.older.pop(key, None)
        if text is None:
            text = _label_text(labels, tlabel)
        size = sys.getsizeof(text)  # 1, 2 or 4 bytes a character, as CPython stores it
        if size > _TEXT_LONGEST:
            return text
        self.recent[key] = text
        self.bytes += size
        if len(self.recent) >= self.max_entries or self.bytes >= self.max_bytes:
            self.older = self.recent
            self.recent = {}
            self.bytes = 0
        return text

    def clear(self) -> None:
        self.recent = {}
        self.older = {}
        self.bytes = 0


_LABEL_TEXTS = _LabelTexts(_TEXT_ENTRIES, _TEXT_BYTES)


def _label_text(labels: Mapping[str, str], tlabel: str) -> str:
    """``{a="1",target="t",z="2"}``: names sorted, as prometheus-client writes them, ``target`` slotted in."""
    items = sorted(labels.items())
    pairs = [f'{k}="{_escape(v)}"' for k, v in items]
    if tlabel:
        at = next((i for i, (k, _) in enumerate(items) if k > "target"), len(items))
        pairs.insert(at, tlabel)
    return f"{{{','.join(pairs)}}}"


def _target_label(targets: dict[str | None, tuple[str, str]], target: str | None) -> tuple[str, str]:
    """``target="t"`` and ``{target="t"}`` (a series without labels of its own), kept for the scrape."""
    tlabel = f'target="{_escape(str(target))}"'
    targets[target] = pair = (tlabel, f"{{{tlabel}}}")
    return pair


def render_text(groups: Iterable[Group], *, openmetrics: bool = False) -> bytes:
    """The text format, or OpenMetrics 1.0 (which Prometheus asks for first) when ``openmetrics``."""
    # family name -> (help, type, allowed sample names, [(target, samples)]), in first-seen order
    merged: dict[str, tuple[str, str, tuple[str, ...], list[tuple[str | None, Sequence[object]]]]] = {}
    units: dict[str, str] = {}
    claimed: dict[str, str] = {}  # exposed name -> the family that writes it
    for target, families in groups:
        for family in families:
            name = family.name
            entry = merged.get(name)
            if entry is None:
                names = _family_names(name, family.type)
                if names is None:
                    _drop(name, target, "invalid_metric_name", "not a valid metric name")
                    continue
                if not claimed.keys().isdisjoint(names):
                    clash = next(claimed[n] for n in names if n in claimed)
                    _drop(name, target, "name_collision", f"its samples collide with family {clash}")
                    continue
                for n in names:
                    claimed[n] = name
                entry = (family.documentation, family.type, names, [])
                merged[name] = entry
                if family.unit:
                    units[name] = family.unit
            elif entry[1] != family.type:
                _drop(name, target, "name_collision", f"{family.type} here, {entry[1]} for an earlier target")
                continue
            entry[3].append((target, family.samples))

    out: list[str] = []
    append = out.append
    cache = _LABEL_TEXTS
    targets: dict[str | None, tuple[str, str]] = {None: ("", "")}  # target -> its label, braced alone
    for name, (doc, typ, names, parts) in merged.items():
        append(_header(name, doc, typ, units.get(name, ""), openmetrics))
        seen: set[tuple[str, str]] = set()
        for target, samples in parts:
            tlabel, bare = targets.get(target) or _target_label(targets, target)
            mark = len(out)
            reason = ""
            recent = cache.recent
            text: str | None
            for sample in samples:
                sname, labels, value = sample[0], sample[1], sample[2]  # type: ignore[index]
                if sname != name:  # a gauge's samples skip both checks
                    if sname not in names:
                        reason = "invalid_metric_name"
                        break
                    if not openmetrics and sname.endswith(_SKIP_SUFFIXES):
                        continue
                if not labels:
                    text = bare
                else:
                    # names then values: unambiguous, and cheaper than a tuple of pairs
                    key = (target, *labels, *labels.values())
                    try:
                        text = recent.get(key)
                    except TypeError:  # an unhashable label value (add writes it uncached)
                        text = None
                    if text is None:
                        # only a label set never cached for this target is checked: the
                        # cache holds label sets that passed
                        problem = _labels_problem(labels.keys(), target is not None)
                        if problem is not None:
                            reason = problem
                            break
                        text = cache.add(key, labels, tlabel)
                        recent = cache.recent  # add may have started a new generation
                series = (sname, text)  # as unique as their concatenation: a name has no "{"
                if series in seen:
                    reason = "duplicate_series"
                    break
                seen.add(series)
                # three parts, not one concatenated line: the cached text is reused as is
                append(sname)
                append(text)
                append(f" {_format(value)}\n")
            if reason:
                # leave out this target's whole part of the family, not only the bad line
                seen.difference_update(zip(out[mark::3], out[mark + 1 :: 3], strict=True))
                del out[mark:]
                _drop(name, target, reason, f"sample {sname!r}")
    if openmetrics:
        append("# EOF\n")
    # errors="replace": a lone surrogate in a label value must not fail the whole scrape
    return "".join(out).encode("utf-8", "replace")


def truncate_series(families: Sequence[Metric], limit: int) -> tuple[list[Metric], int, int]:
    """The first ``limit`` samples, in family then sample order; (families, series, dropped).

    ``limit`` 0 keeps everything.  A family cut in the middle is copied, so a
    collector's cached families are never changed; families past the limit go.
    """
    total = sum(len(f.samples) for f in families)
    if limit <= 0 or total <= limit:
        return list(families), total, 0
    kept: list[Metric] = []
    room = limit
    for family in families:
        n = len(family.samples)
        if n <= room:
            kept.append(family)
            room -= n
            continue
        if room > 0:
            part = Metric(family.name, family.documentation, family.type, family.unit)
            part.samples = family.samples[:room]
            kept.append(part)
        break
    return kept, limit, total - limit


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        # three replaces, backslash first, equal str.translate with _VALUE_ESCAPE and run
        # in C: translate with a mapping costs ~0.2 us per character (a statement text)
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


_HEADERS: dict[tuple[str, str, str, str, bool], str] = {}


def _header(name: str, doc: str, typ: str, unit: str, openmetrics: bool) -> str:
    """HELP/TYPE(/UNIT) lines; the same few hundred on every scrape, so cached."""
    key = (name, doc, typ, unit, openmetrics)
    text = _HEADERS.get(key)
    if text is None:
        if openmetrics:
            text = f"# HELP {name} {doc.translate(_VALUE_ESCAPE)}\n# TYPE {name} {typ}\n"
            if unit:
                text += f"# UNIT {name} {unit}\n"
        else:
            mname = name + "_total" if typ == "counter" else name + "_info" if typ == "info" else name
            text = f"# HELP {mname} {doc.translate(_HELP_ESCAPE)}\n# TYPE {mname} {_PROM_TYPE.get(typ, 'untyped')}\n"
        if len(_HEADERS) > 20000:  # label-free names are bounded; this only guards a runaway source
            _HEADERS.clear()
        _HEADERS[key] = text
    return text


def _format(value: float) -> str:
    """prometheus-client's floatToGoString, inlined for the common finite values."""
    if value.__class__ is not float:
        value = float(value)
    text = repr(value)
    # repr is already right except where prometheus-client follows Go: positive numbers
    # with more than 6 digits before the dot (1e6 and up) take exponent form, and inf
    # and nan take Go's spelling; those few go through the library's own function
    if text[-1] in "0123456789" and not (value > 0 and text.find(".") > 6):
        return text
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]
