"""Handler timeout: cancel a route's pending work and answer 503 (SPEC_OPERATIONS §4 r5, r8).

The link built here wraps a route's *whole* compiled chain, once, at compile time;
routes without a timeout are not wrapped and pay nothing. Time runs from the moment
the request enters the chain until a Response exists (headers), so a stream, an SSE
feed or a WebSocket session is timed only until its headers go out.

On expiry the link marks the request (``request.timed_out``) and cancels the chain's
Deferred. Cancellation travels down to whatever is pending (the handler, a guard, or
a middleware still before ``call_next``); there the nearest error link sees a
``CancelledError`` on a timed-out request and turns it into the 503 (see
``_chain.recover``). From that point the 503 is an ordinary Response travelling
outwards, so every middleware that already ran (CORS, logging, user middleware)
decorates it on the way out, as it would any error response. If that did not settle
the request (a coroutine swallowed the cancellation, or a middleware's own work after
``call_next`` hangs), the link cancels again one period later.
"""

from __future__ import annotations

import math
from typing import Any

from twisted.logger import Logger

from .._defer import is_deferred
from .._types import Link
from ..errors import HTTPError

_log = Logger(namespace="cello_twisted.timeout")


class HandlerTimeoutError(HTTPError):
    """The route did not produce a response in time: 503 with ``Retry-After: 1``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(503, f"Request timed out after {seconds:g} s", {"Retry-After": "1"})
        self.seconds = seconds


class _LateThreadLog:
    """Logs once per route that a threaded handler outlived its timeout."""

    __slots__ = ("label", "done")

    def __init__(self, label: str) -> None:
        self.label = label
        self.done = False

    def note(self, seconds: float) -> None:
        if self.done:
            return
        self.done = True
        _log.warn(
            "{route}: threaded handler still running after its {seconds:g} s timeout; the client got 503 "
            "and its result will be discarded (a thread cannot be interrupted; logged once per route)",
            route=self.label,
            seconds=seconds,
        )


def with_timeout(chain: Link, seconds: float | None, clock: Any, label: str = "", threaded: bool = False) -> Link:
    """``chain`` limited to ``seconds`` of pending work; ``chain`` itself when there is no limit."""
    if seconds is None or math.isinf(seconds):
        return chain
    late_thread = _LateThreadLog(label) if threaded else None
    call_later = clock.callLater

    def timed(request: Any) -> Any:
        result = chain(request)
        if not is_deferred(result):  # answered synchronously: nothing left to time
            return result
        if result.called and not result.paused:
            return result
        timer = _Timer()
        timer.call = call_later(seconds, _expire, request, result, seconds, late_thread, timer, call_later)
        result.addBoth(_disarm, timer)
        return result

    return timed


class _Timer:
    """The pending expiry of one request (re-armed if cancelling did not settle it)."""

    __slots__ = ("call",)

    call: Any


def _expire(
    request: Any, pending: Any, seconds: float, late_thread: _LateThreadLog | None, timer: _Timer, call_later: Any
) -> None:
    if request.timed_out is None:
        request.timed_out = HandlerTimeoutError(seconds)
        if late_thread is not None:
            late_thread.note(seconds)
    pending.cancel()
    if not pending.called or pending.paused:
        # Something swallowed the cancellation or is still pending further out (a
        # middleware's own work after call_next): cancel again after another period.
        timer.call = call_later(seconds, _expire, request, pending, seconds, late_thread, timer, call_later)


def _disarm(result: Any, timer: _Timer) -> Any:
    if timer.call.active():
        timer.call.cancel()
    return result
