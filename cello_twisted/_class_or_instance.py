"""A descriptor for names that are a factory on the class and a payload on instances.

The seeds use both spellings: ``SseEvent.data("x")`` / ``event.data`` and
``WebSocketMessage.text("x")`` / ``msg.text``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ClassOrInstance:
    """On the class: ``factory`` as a classmethod. On an instance: the attribute ``slot``."""

    def __init__(self, factory: Callable[..., Any], slot: str) -> None:
        self._factory = factory
        self._slot = slot

    def __get__(self, obj: Any, cls: type) -> Any:
        if obj is None:
            return self._factory.__get__(cls, cls)
        return getattr(obj, self._slot)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self._slot, value)
