"""The source of cello_twisted as syntax trees, for tests that check its structure.

Reads files, never imports them: a structural test must also work on a tree whose imports
would fail at runtime.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import cello_twisted

PACKAGE = "cello_twisted"
PACKAGE_DIR = Path(cello_twisted.__file__).resolve().parent


@dataclass(frozen=True)
class Module:
    """One module of the package: its dotted name, file and parsed source."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: tuple[str, ...]

    @property
    def relpath(self) -> str:
        return str(self.path.relative_to(PACKAGE_DIR.parent))

    def line(self, lineno: int) -> str:
        return self.lines[lineno - 1].strip()


def modules() -> dict[str, Module]:
    """Every ``.py`` file under the package, by dotted module name."""
    found: dict[str, Module] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        source = path.read_text(encoding="utf-8")
        found[".".join(parts)] = Module(
            ".".join(parts), path, is_package, ast.parse(source, str(path)), tuple(source.splitlines())
        )
    return found


def resolve_relative(module: Module, level: int, target: str | None) -> str:
    """The absolute name ``from <level dots><target> import ...`` means inside ``module``."""
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))
