"""The exporter's modules form floors: nothing imports a module that imports it back.

The graph is read from the source with ``ast`` (every ``import``, wherever it is
written: inside a function or under TYPE_CHECKING too), so a cycle hidden in a
function body still fails here.  An import names exactly one module: importing
``exporter.collectors.redis.info`` is an edge to that module, not to the
package above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exporter"

# Modules every collector stands on: they must import nothing of the exporter's own.
BOTTOM = ("exporter.schema", "exporter.der")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The exporter modules module ``name`` imports, each resolved to the exact module named."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                # "from exporter.collectors import base" names the module base
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in mods.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    edges = graph()
    assert len(edges) > 20, "the walk found too few modules to mean anything"
    found = cycles(edges)
    assert not found, "import cycles (each line: modules that reach each other):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_the_bottom_floor_imports_nothing_of_ours() -> None:
    edges = graph()
    for name in BOTTOM:
        assert name in edges, f"{name} is gone: update BOTTOM"
        assert not edges[name], f"{name} imports {sorted(edges[name])}; it must stand on nothing of the exporter's"


def test_the_cycle_finder_finds_cycles() -> None:
    """The check above can fail: a cycle through three modules and one of two are reported."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(edges) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_resolve_to_the_exact_module() -> None:
    """Function-level, relative and ``from package import module`` imports are all edges."""
    known = {"exporter.collectors", "exporter.collectors.base", "exporter.collectors.redis", "exporter.schema"}
    source = (
        "from exporter.schema import Secret\n"
        "def f():\n"
        "    from exporter.collectors import SOURCES\n"  # the kind of cycle the loader once hid
        "    from exporter.collectors import base\n"
        "    from . import redis\n"
        "    import json\n"
    )
    found = imports_of(source, "exporter.collectors.api", False, known)
    assert found == {"exporter.schema", "exporter.collectors", "exporter.collectors.base", "exporter.collectors.redis"}
