"""Blueprint: a prefixed group of routes with its own middleware, guards and error handlers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .routing._table import RouteTable


class Blueprint(RouteTable):
    """Routes under ``prefix``; nests, and inherits the app's middleware (SPEC §2.4)."""

    def __init__(self, prefix: str, name: str | None = None, guards: Sequence[Any] | None = None) -> None:
        if not isinstance(prefix, str) or (prefix and not prefix.startswith("/")):
            raise ValueError(f"blueprint prefix must start with '/': {prefix!r}")
        super().__init__()
        self.prefix = "" if prefix in ("", "/") else prefix.rstrip("/")
        self.name = name or (self.prefix.strip("/").replace("/", ".") or "root")
        self.guards = list(guards or ())

    def __repr__(self) -> str:
        return f"<Blueprint {self.name!r} prefix={self.prefix!r}>"
