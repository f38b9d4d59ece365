"""The production start-up warning about revocations kept in memory (SPEC_OPERATIONS §11 r7)."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

_log = Logger(namespace="cello_twisted.server")
_warned = False


def revocation_warnings(app: Any) -> list[str]:
    """``durability_warning()`` messages of the app's middleware (blueprints included), each once."""
    found: list[str] = []
    tables = [app]
    while tables:
        table = tables.pop(0)
        for mw in table.middleware:
            check = getattr(mw, "durability_warning", None)
            message = check() if callable(check) else None
            if message and message not in found:
                found.append(message)
        tables += getattr(table, "blueprints", [])
    return found


def warn_revocations(app: Any) -> None:
    """Log the warnings once per process, in production only."""
    global _warned
    if _warned or app.env != "production":
        return
    _warned = True
    for message in revocation_warnings(app):
        _log.warn("{message}", message=message)
