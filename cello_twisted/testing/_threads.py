"""The test client's thread hand-off: blocking calls inline, loop calls queued for the test's pump.

Installed as ``app.threads`` by ``TestClient``; production code uses whatever
``app.threads`` is and never checks whether it runs under test.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall

from ..server._threads import exhaust


class InlineThreads:
    """No reactor runs under the in-memory client: the test thread is the loop."""

    def __init__(self) -> None:
        # Calls from WebSocket handler threads, run by whichever test thread is pumping.
        self.calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(fn, *args, **kwargs)

    def call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        self.calls.put((fn, args))

    def call_next_turn(self, fn: Callable[[], Any]) -> IDelayedCall | None:
        return None  # streams run inline: nothing else waits for a reactor turn

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]:
        return maybeDeferred(exhaust, steps)  # the test thread is the loop: run every step now
