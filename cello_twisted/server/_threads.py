"""How work crosses threads: blocking calls to the reactor's pool, calls back to the loop.

``App.threads`` holds one of these. Production code never asks "am I under test?":
the in-memory test client swaps in its own implementation (``testing/_threads.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall


class Threads(Protocol):
    """The thread hand-off every feature uses (``threaded=True`` routes, SSE, WebSocket)."""

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Run blocking ``fn`` off the reactor thread; the Deferred fires on the reactor thread."""
        ...

    def call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """From a worker thread: run ``fn(*args)`` on the reactor thread."""
        ...

    def call_next_turn(self, fn: Callable[[], Any]) -> IDelayedCall | None:
        """Run ``fn`` on the next reactor turn; None means "no turns here: go on inline"."""
        ...

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]:
        """Run ``steps`` a few at a time between reactor events; fires when they are done."""
        ...


class ReactorThreads:
    """Production: the reactor's thread pool and ``callFromThread`` (inline when no reactor runs)."""

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        from twisted.internet import reactor

        if getattr(reactor, "running", False):
            from twisted.internet.threads import deferToThread

            return deferToThread(fn, *args, **kwargs)
        return maybeDeferred(fn, *args, **kwargs)

    def call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(fn, *args)  # type: ignore[attr-defined]  # typing note: the reactor module object is untyped

    def call_next_turn(self, fn: Callable[[], Any]) -> IDelayedCall | None:
        from twisted.internet import reactor

        delayed: IDelayedCall = reactor.callLater(0, fn)
        return delayed

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]:
        from twisted.internet import reactor

        if getattr(reactor, "running", False):
            from twisted.internet.task import cooperate

            return cooperate(steps).whenDone().addCallback(lambda _: None)
        return maybeDeferred(exhaust, steps)


def exhaust(steps: Iterator[object]) -> None:
    """Run every step now (no reactor turns to share)."""
    for _ in steps:
        pass
