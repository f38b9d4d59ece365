"""cello_twisted has no import cycle, counting every import its code names.

Module-level, function-level ("lazy") and ``if TYPE_CHECKING:`` imports all count, and so do the
lazy re-export tables of the package doors (``{"Name": ".module"}`` dicts in ``__init__.py``): a
deferred import still ties two modules together for whoever reads or changes them, and lower
layers must never reach up. An import of the package root (``from cello_twisted import X``)
inside the package counts as well. Reads the source with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests._support.package_source import PACKAGE, Module, modules, resolve_relative

Edges = dict[str, dict[str, list[str]]]  # importer -> imported -> ["path:line: source", ...]


def _owning_module(name: str, known: dict[str, Module]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (``a.b.Cls`` -> ``a.b``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _named_imports(module: Module, known: dict[str, Module]) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in ``module``."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(module, node.level, node.module)
            # ``from pkg import sub`` names the submodule ``pkg.sub`` when it is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            owner = _owning_module(target, known)
            if owner is not None:
                found.append((owner, node.lineno))
    return found


def _lazy_exports(module: Module, known: dict[str, Module]) -> list[tuple[str, int]]:
    """(module, line) for each ``".module"`` string value of a dict in a package door."""
    if not module.is_package:
        return []
    found: list[tuple[str, int]] = []
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Dict):
            continue
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.startswith("."):
                dots = len(value.value) - len(value.value.lstrip("."))
                target = resolve_relative(module, dots, value.value[dots:] or None)
                owner = _owning_module(target, known)
                if owner is not None:
                    found.append((owner, value.lineno))
    return found


def import_graph() -> Edges:
    """Every module of the package and the package modules it imports, with the lines that do."""
    known = modules()
    edges: Edges = {name: {} for name in known}
    for name, module in known.items():
        for target, lineno in _named_imports(module, known) + _lazy_exports(module, known):
            if target != name and target.split(".")[0] == PACKAGE:
                where = f"{module.relpath}:{lineno}: {module.line(lineno)}"
                lines = edges[name].setdefault(target, [])
                if where not in lines:  # one line per statement, not per imported name
                    lines.append(where)
    return edges


def cycles(edges: Edges) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups, key=len, reverse=True)


def describe(groups: list[list[str]], edges: Edges) -> str:
    """Each cycle's modules and the import lines that tie them together."""
    out: list[str] = []
    for number, group in enumerate(groups, 1):
        members = set(group)
        out.append(f"cycle {number}: {len(group)} modules: {', '.join(group)}")
        for importer in group:
            for imported, lines in sorted(edges[importer].items()):
                if imported in members:
                    out.append(f"  {importer} -> {imported}")
                    out.extend(f"      {line}" for line in lines)
    return "\n".join(out)


def _planted(name: str, source: str, is_package: bool = False) -> Module:
    """A module that exists only in the test, for checking what counts as an import."""
    return Module(name, Path(name.replace(".", "/") + ".py"), is_package, ast.parse(source), tuple(source.splitlines()))


class ImportCycleTests(SynchronousTestCase):
    def test_no_import_cycle(self) -> None:
        """Issue 11: no two cello_twisted modules import each other, directly or round a loop,
        counting lazy, TYPE_CHECKING and lazy re-export imports; a failure lists every loop's lines."""
        edges = import_graph()
        groups = cycles(edges)
        if groups:
            self.fail("import cycles inside cello_twisted:\n" + describe(groups, edges))

    def test_every_kind_of_import_is_an_edge(self) -> None:
        """Module-level, function-level, TYPE_CHECKING, relative and lazy re-export imports all
        become edges, so a passing cycle test is not a blind one."""
        door = _planted("p", is_package=True, source=(
            "from .a import A\n"
            "_LAZY = {'B': '.b', 'C': '.sub.c'}\n"
        ))
        a = _planted("p.a", source=(
            "from typing import TYPE_CHECKING\n"
            "import p.b\n"
            "if TYPE_CHECKING:\n"
            "    from .sub import c\n"
            "def later():\n"
            "    from .d import D\n"
        ))
        known = {m.name: m for m in (door, a)} | {n: door for n in ("p.b", "p.d", "p.sub", "p.sub.c")}
        self.assertEqual(
            sorted(_named_imports(a, known)), [("p.b", 2), ("p.d", 6), ("p.sub.c", 4)]
        )
        self.assertEqual(_named_imports(door, known), [("p.a", 1)])
        self.assertEqual(_lazy_exports(door, known), [("p.b", 2), ("p.sub.c", 2)])
        self.assertEqual(_lazy_exports(a, known), [])  # only package doors hold export tables

    def test_finds_a_planted_cycle(self) -> None:
        """The cycle finder reports a loop that closes only through a function-level import,
        naming both modules and the import lines."""
        edges: Edges = {
            "p.a": {"p.b": ["p/a.py:3: from .b import B"]},
            "p.b": {"p.c": ["p/b.py:4: from .c import C"]},
            "p.c": {"p.a": ["p/c.py:9: from .a import A  # inside a function"]},
            "p.d": {"p.a": ["p/d.py:1: from .a import A"]},
        }
        groups = cycles(edges)
        self.assertEqual(groups, [["p.a", "p.b", "p.c"]])
        text = describe(groups, edges)
        self.assertIn("p.c -> p.a", text)
        self.assertIn("p/c.py:9: from .a import A  # inside a function", text)
        self.assertNotIn("p.d", text)
