"""Process-wide notifications for observability: live streams and shared-store errors.

Stores, WebSockets and SSE streams are not tied to one App, so they report here and
whoever watches (metrics, when enabled) subscribes. Without a subscriber a report
is one truth test of an empty list. This module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Callable

StreamListener = Callable[[str, int], None]
"""``listener(kind, delta)``: ``kind`` is "websocket" or "sse", ``delta`` +1 on open, -1 on close."""

StoreErrorListener = Callable[[str], None]
"""``listener(store)``: a shared store (named by its class) failed a call."""

stream_listeners: list[StreamListener] = []
store_error_listeners: list[StoreErrorListener] = []


def stream_changed(kind: str, delta: int) -> None:
    """A WebSocket or SSE stream opened (+1) or closed (-1)."""
    if stream_listeners:
        for listener in stream_listeners:
            listener(kind, delta)


def store_failed(store: str) -> None:
    """A shared store (``store`` = its class name) could not answer a call."""
    if store_error_listeners:
        for listener in store_error_listeners:
            listener(store)
