"""Parse route paths like ``/users/{id:int}/files/{*rest}`` into segments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from ._constraints import CONVERTERS, BothConstraints, Constraint

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WILDCARD_CONVERTERS = {"*", "path"}


class Segment(NamedTuple):
    kind: str  # "lit" | "param" | "wild"
    value: str  # the literal text, or the parameter name
    constraint: Constraint | None = None

    def shape(self) -> str:
        if self.kind == "lit":
            return self.value
        if self.kind == "wild":
            return "{*}"
        return "{:" + (self.constraint.key() if self.constraint else "") + "}"


def split_path(path: str) -> list[str]:
    """Non-empty segments of ``path`` (a trailing or doubled slash adds none)."""
    return [s for s in path.split("/") if s]


def parse_pattern(path: str, constraints: Mapping[str, Constraint] | None = None) -> list[Segment]:
    """Parse a route path; raise ``ValueError`` for every malformed spelling (SPEC §2.1)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")
    constraints = dict(constraints or {})
    segments: list[Segment] = []
    seen: set[str] = set()
    parts = split_path(path)
    for index, part in enumerate(parts):
        if "{" not in part and "}" not in part:
            segments.append(Segment("lit", part))
            continue
        if not (part.startswith("{") and part.endswith("}")) or part.count("{") != 1 or part.count("}") != 1:
            raise ValueError(f"bad braces in route path {path!r}: {part!r}")
        inner = part[1:-1]
        if inner.startswith("*"):
            name, converter = inner[1:], "*"
        else:
            name, _, converter = inner.partition(":")
        if not _NAME.match(name):
            raise ValueError(f"bad parameter name {name!r} in route path {path!r}")
        if name in seen:
            raise ValueError(f"parameter {name!r} repeated in route path {path!r}")
        seen.add(name)
        if converter in _WILDCARD_CONVERTERS:
            if index != len(parts) - 1:
                raise ValueError(f"wildcard {{*{name}}} must be the last segment of {path!r}")
            if name in constraints:
                raise ValueError(f"constraints cannot apply to wildcard {name!r}")
            segments.append(Segment("wild", name))
            continue
        constraint: Constraint | None = None
        if converter:
            factory = CONVERTERS.get(converter)
            if factory is None:
                raise ValueError(f"unknown converter {converter!r} in route path {path!r}")
            constraint = factory()
        extra = constraints.pop(name, None)
        if extra is not None:
            if not isinstance(extra, Constraint):
                raise ValueError(f"constraint for {name!r} must be a Constraint instance")
            constraint = extra if constraint is None else BothConstraints(constraint, extra)
        segments.append(Segment("param", name, constraint))
    if constraints:
        raise ValueError(f"constraints for absent parameters {sorted(constraints)} in {path!r}")
    return segments


def join_paths(*parts: str) -> str:
    """Join prefixes and a route path: ``("/api", "/users/")`` → ``/api/users/``."""
    out = "".join(p.rstrip("/") for p in parts[:-1] if p not in ("", "/"))
    last = parts[-1] if parts else "/"
    return (out + last) if out else last
