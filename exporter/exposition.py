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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

log = logging.getLogger("exporter.exposition")

_HELP_ESCAPE = str.maketrans({"\\": r"\\", "\n": r"\n"})
_VALUE_ESCAPE = str.maketrans({"\\": r"\\", "\n": r"\n", '"': r"\""})
_PROM_TYPE = {"counter": "counter", "gauge": "gauge", "summary": "summary", "histogram": "histogram",
              "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}  # fmt: skip
_SKIP_SUFFIXES = ("_created", "_gsum", "_gcount")

Group = tuple[str | None, Sequence[Metric]]  # (target label value or None, families)


def render_text(groups: Iterable[Group], *, openmetrics: bool = False) -> bytes:
    """The text format, or OpenMetrics 1.0 (which Prometheus asks for first) when ``openmetrics``."""
    # family name -> (help, type, [(target, samples)]), in first-seen order
    merged: dict[str, tuple[str, str, list[tuple[str | None, Sequence[object]]]]] = {}
    units: dict[str, str] = {}
    for target, families in groups:
        for family in families:
            entry = merged.get(family.name)
            if entry is None:
                entry = (family.documentation, family.type, [])
                merged[family.name] = entry
                if family.unit:
                    units[family.name] = family.unit
            elif entry[1] != family.type:
                log.error("metric type clash across targets; dropping", extra={"kv": {"metric": family.name}})
                continue
            entry[2].append((target, family.samples))

    out: list[str] = []
    append = out.append
    for name, (doc, typ, parts) in merged.items():
        append(_header(name, doc, typ, units.get(name, ""), openmetrics))
        for target, samples in parts:
            tlabel = f'target="{_escape(target)}"' if target is not None else ""
            for sample in samples:
                sname, labels, value = sample[0], sample[1], sample[2]  # type: ignore[index]
                if not openmetrics and sname.endswith(_SKIP_SUFFIXES) and sname != name:
                    continue
                if not labels:
                    # the common case: a single series per family, only the target label
                    if tlabel:
                        append(f"{sname}{{{tlabel}}} {_format(value)}\n")
                    else:
                        append(f"{sname} {_format(value)}\n")
                    continue
                pairs = [f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())]
                if tlabel:
                    # labels are written sorted, as prometheus-client does: slot target in
                    for i, key in enumerate(sorted(labels)):
                        if key > "target":
                            pairs.insert(i, tlabel)
                            break
                    else:
                        pairs.append(tlabel)
                append(f"{sname}{{{','.join(pairs)}}} {_format(value)}\n")
    if openmetrics:
        append("# EOF\n")
    return "".join(out).encode("utf-8")


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.translate(_VALUE_ESCAPE)
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
