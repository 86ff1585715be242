#!/usr/bin/env python3
"""Render the Grafana dashboards (dashboards/<view>.jsonnet) to dashboards/generated/<view>.json.

Run by `make generate`; tests/dashboards/test_dashboards.py renders again and compares,
so the committed JSON cannot drift from the jsonnet.  The JSON is re-serialised by
Python (sorted keys, two-space indent, shortest float repr) so the jsonnet Python
package and the Debian `jsonnet` CLI produce byte-identical files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import _jsonnet  # type: ignore[import-untyped]  # no stubs published

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
OUT = DASHBOARDS / "generated"
VIEWS = ("overview", "redis", "postgres", "billing", "email", "hosts", "exporter")


def evaluate(view: str) -> Any:
    return json.loads(_jsonnet.evaluate_file(str(DASHBOARDS / f"{view}.jsonnet")))


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    return {OUT / f"{view}.json": to_json(evaluate(view)) for view in VIEWS}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    try:
        files = render()
    except RuntimeError as exc:  # _jsonnet reports syntax and runtime errors this way
        print(f"generate-dashboards: {exc}", file=sys.stderr)
        return 1
    for path, text in files.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"generate-dashboards: wrote {path.relative_to(ROOT)}")
    stale = set(OUT.glob("*.json")) - set(files)
    for path in sorted(stale):
        path.unlink()
        print(f"generate-dashboards: removed {path.relative_to(ROOT)} (no such view)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
