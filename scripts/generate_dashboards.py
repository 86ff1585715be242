"""Render the Grafana dashboards (the mixin's grafanaDashboards) to dashboards/generated/<view>.json.

Run by `make generate` (`python -m scripts.generate_dashboards`);
tests/dashboards/test_dashboards.py renders again and compares, so the committed JSON
cannot drift from the jsonnet.  The JSON is re-serialised by Python (sorted keys,
two-space indent, shortest float repr) so the jsonnet Python package and the Debian
`jsonnet` CLI produce byte-identical files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import _jsonnet  # type: ignore[import-untyped]  # no stubs published

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dashboards" / "generated"
MIXIN = "(import 'rules/mixin.libsonnet')"


def evaluate(snippet: str) -> Any:
    """The JSON value of a jsonnet snippet, with the repository root on the import path."""
    return json.loads(_jsonnet.evaluate_snippet(str(ROOT / "snippet.jsonnet"), snippet, jpathdir=[str(ROOT)]))


def views() -> tuple[str, ...]:
    """The views dashboards/dashboards.libsonnet lists (only the names: jsonnet is lazy)."""
    names: list[str] = evaluate(f"std.objectFields({MIXIN}.grafanaDashboards)")
    return tuple(name.removesuffix(".json") for name in names)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    dashboards: dict[str, Any] = evaluate(f"{MIXIN}.grafanaDashboards")
    return {OUT / name: to_json(data) for name, data in dashboards.items()}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    try:
        files = render()
    except RuntimeError as exc:  # _jsonnet reports syntax and runtime errors this way
        print(f"generate_dashboards: {exc}", file=sys.stderr)
        return 1
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"generate_dashboards: wrote {path.relative_to(ROOT)}")
    stale = set(OUT.glob("*.json")) - set(files)
    for path in sorted(stale):
        path.unlink()
        print(f"generate_dashboards: removed {path.relative_to(ROOT)} (no such view)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
