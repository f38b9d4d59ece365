"""The production start-up warning about revocations kept in memory (SPEC_OPERATIONS §11 r7)."""

from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

from .._types import TableView, hooks_of

_log = Logger(namespace="cello_twisted.server")
_warned = False


class WarnedApp(TableView, Protocol):
    """What the warning reads of an App (declared here: app.py sits above server/)."""

    env: str


def revocation_warnings(app: TableView) -> list[str]:
    """``durability_warning()`` messages of the app's middleware (blueprints included), each once."""
    found: list[str] = []
    tables: list[TableView] = [app]
    while tables:
        table = tables.pop(0)
        for mw in table.middleware:
            check = hooks_of(mw).durability_warning
            message = check() if check is not None else None
            if message and message not in found:
                found.append(message)
        tables += table.blueprints
    return found


def warn_revocations(app: WarnedApp) -> None:
    """Log the warnings once per process, in production only."""
    global _warned
    if _warned or app.env != "production":
        return
    _warned = True
    for message in revocation_warnings(app):
        _log.warn("{message}", message=message)
