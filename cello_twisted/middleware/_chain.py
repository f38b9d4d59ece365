"""Compose middleware into one callable per route, once, at start-up.

Internal protocol: a *link* is ``link(request) -> Response | Deferred[Response]``.
Framework middleware (classes marked ``native = True``) is called as
``mw(request, call_next)`` with that same fast ``call_next``, so an all-sync chain
allocates no Deferred. User middleware gets a ``call_next`` that always returns a
Deferred (SPEC §2.6) and may return a value, a Deferred or a coroutine.

Every link turns exceptions into responses (via the route's error handler), so
outer middleware always receives a Response, never a Failure. Native middleware on
the hottest paths may provide ``link(call_next, on_error) -> link`` to build that
guarded link itself, saving a frame per request (RateLimit does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.python.failure import Failure

from ..response import Response, to_response

Link = Callable[[Any], Any]
ErrorHandler = Callable[[Any, BaseException], Any]


_PLAIN = (Response, tuple, dict, list, str, bytes, int, float)


def is_deferred(value: Any) -> bool:
    """``isinstance(value, Deferred)``, minus its cost on the hot path.

    Deferred's metaclass is ABCMeta, so a plain ``isinstance`` against a value that
    is *not* a Deferred (the common, synchronous case) takes the ABC slow path
    (~0.25 µs, several times per request). Exact-type checks settle the usual cases.
    """
    cls = type(value)
    if cls is Deferred:
        return True
    if value is None or isinstance(value, _PLAIN):  # concrete classes: no ABC machinery
        return False
    return isinstance(value, Deferred)


def settle(value: Any, convert: Callable[[Any], Any] = to_response) -> Any:
    """Apply ``convert`` now, or when ``value`` (a Deferred or coroutine) resolves."""
    if is_deferred(value):
        return value.addCallback(convert)
    if inspect.iscoroutine(value):
        return Deferred.fromCoroutine(value).addCallback(convert)
    return convert(value)


def then(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(value)`` for a plain value, or chained onto a Deferred (for native middleware)."""
    if is_deferred(value):
        return value.addCallback(fn)
    return fn(value)


def guard_errors(link: Link, on_error: ErrorHandler) -> Link:
    """Wrap ``link`` so raised exceptions and failed Deferreds become error Responses."""

    def guarded(request: Any) -> Any:
        try:
            result = link(request)
        except Exception as exc:  # noqa: BLE001 - every error becomes a response
            return on_error(request, exc)
        if type(result) is not Response and is_deferred(result):
            return result.addErrback(recover, request, on_error)
        return result

    return guarded


def _guard_native(mw: Any, nxt: Link, on_error: ErrorHandler) -> Link:
    """``guard_errors`` around ``mw(request, nxt)``, one frame shorter (every native layer pays it)."""

    def guarded(request: Any) -> Any:
        try:
            result = mw(request, nxt)
        except Exception as exc:  # noqa: BLE001 - every error becomes a response
            return on_error(request, exc)
        if type(result) is not Response and is_deferred(result):
            return result.addErrback(recover, request, on_error)
        return result

    return guarded


def recover(failure: Failure, request: Any, on_error: ErrorHandler) -> Any:
    """Errback turning a failed Deferred into ``on_error``'s response.

    Cancellation passes untouched (a disconnect), unless the handler timeout caused
    it: then it becomes the timeout's 503 here, so outer middleware decorates it.
    """
    if failure.check(CancelledError):
        timed_out = getattr(request, "timed_out", None)  # set by middleware/_timeout.py
        if timed_out is None:
            return failure
        return on_error(request, timed_out)
    return on_error(request, failure.value)


def _user_link(mw: Callable[..., Any], nxt: Link) -> Link:
    def link(request: Any) -> Any:
        called = False

        def call_next(req: Any = None) -> Deferred:
            nonlocal called
            if called:
                raise RuntimeError("call_next() may be called only once per request")
            called = True
            result = nxt(request if req is None else req)
            return result if is_deferred(result) else succeed(result)

        return settle(mw(request, call_next))

    return link


def compose(middleware: Sequence[Any], endpoint: Link, on_error: ErrorHandler) -> Link:
    """Fold ``middleware`` (first registered = outermost) around ``endpoint``."""
    handler = guard_errors(endpoint, on_error)
    for mw in reversed(middleware):
        if getattr(mw, "native", False):
            own_link = getattr(mw, "link", None)  # hot middleware may compile its own guarded link
            handler = own_link(handler, on_error) if own_link is not None else _guard_native(mw, handler, on_error)
        else:
            handler = guard_errors(_user_link(mw, handler), on_error)
    return handler


class BeforeRequest:
    """``@app.before_request``: a non-None return short-circuits (SPEC §2.6 r3)."""

    native = True

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, request: Any, call_next: Link) -> Any:
        result = self.fn(request)

        def decide(value: Any) -> Any:
            if value is None:
                return call_next(request)
            return to_response(value)

        if is_deferred(result) or inspect.iscoroutine(result):
            return settle(result, decide)
        return decide(result)


class AfterRequest:
    """``@app.after_request``: may replace the response; None keeps it."""

    native = True

    def __init__(self, fn: Callable[[Any, Response], Any]) -> None:
        self.fn = fn

    def __call__(self, request: Any, call_next: Link) -> Any:
        def after(response: Response) -> Any:
            return settle(self.fn(request, response), lambda v: response if v is None else to_response(v))

        return then(call_next(request), after)
