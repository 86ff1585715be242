"""Every recorded API body says where its shape came from: a row of tests/fakes/api-fixtures/README.md.

A row names the file in backticks, alone or with others, or by a pattern such as
`analytics_*.json`, or is an `all` row for its folder; `requests.yaml` is described once at
the top. A folder with its own README.md is held to that one the same way, and a folder
whose bodies were captured from a real server says so in its own `_meta.json`.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from tests.fakes.common import FIXTURES


def _names(text: str) -> set[str]:
    """The file names and patterns a README's rows name (an `all` row names every file)."""
    names = set(re.findall(r"`([^`\s]+)`", text)) | {"requests.yaml"}
    if re.search(r"^\| all \|", text, flags=re.M):
        names.add("*")
    return names


def _named_by_folder() -> dict[str, set[str]]:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    named: dict[str, set[str]] = {}
    for section in re.split(r"^## ", readme, flags=re.M)[1:]:
        folder, _, body = section.partition("\n")
        named[folder.strip().rstrip("/")] = _names(body)
    return named


def _captured(path: Path) -> bool:
    return any((parent / "_meta.json").exists() for parent in path.parents if FIXTURES in parent.parents)


def test_every_fixture_file_has_a_row_saying_where_it_came_from() -> None:
    named = _named_by_folder()
    missing = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.name == "README.md" or _captured(path):
            continue
        top = FIXTURES / path.relative_to(FIXTURES).parts[0]
        own = top / "README.md"
        names = _names(own.read_text(encoding="utf-8")) if own.exists() else named.get(top.name, set())
        if not any(fnmatch.fnmatch(path.name, name) for name in names):
            missing.append(str(path.relative_to(FIXTURES)))
    assert not missing, "fixtures without a README row saying where they came from:\n" + "\n".join(missing)
