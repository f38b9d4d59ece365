"""Shared test helpers: small apps and assertions used across the suite."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from cello_twisted import App


def make_app(**kwargs: Any) -> App:
    """An App on a task.Clock, so time-based behaviour is deterministic."""
    kwargs.setdefault("clock", Clock())
    return App(**kwargs)


def error_body(status: int, reason: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": reason, "status": status}
    body.update(extra)
    return body
