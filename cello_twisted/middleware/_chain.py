"""Compose middleware into one callable per route, once, at start-up.

Internal protocol: a *link* is ``link(request) -> Response | Deferred[Response]``.
Framework middleware (classes marked ``native = True``) is called as
``mw(request, call_next)`` with that same fast ``call_next``, so an all-sync chain
allocates no Deferred. User middleware gets a ``call_next`` that always returns a
Deferred (SPEC §2.6) and may return a value, a Deferred or a coroutine.

Every link turns exceptions into responses (via the route's error handler), so
outer middleware always receives a Response, never a Failure. Native middleware on
the hottest paths may provide ``link(call_next, on_error, context, route) -> link`` to build that
guarded link itself, saving a frame per request (RateLimit does). One that also guards
what its ``call_next`` raises or fails with (``guards_call_next``) is handed the endpoint
unguarded when it is innermost, saving another (metrics does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

from .._defer import is_deferred, recover, settle, then
from .._types import ErrorHandler, Link, hooks_of
from ..response import Response, to_response

if TYPE_CHECKING:
    from .._types import AppContext, RouteView
    from ..request import Request

__all__ = [
    "AfterRequest",
    "BeforeRequest",
    "ErrorHandler",
    "Link",
    "compose",
    "guard_errors",
    "guard_native",
    "is_deferred",
    "recover",
    "settle",
    "then",
]


def guard_errors(link: Link, on_error: ErrorHandler) -> Link:
    """Wrap ``link`` so raised exceptions and failed Deferreds become error Responses."""

    def guarded(request: Request) -> Any:
        try:
            result = link(request)
        except Exception as exc:  # noqa: BLE001 - every error becomes a response
            return on_error(request, exc)
        if type(result) is not Response and is_deferred(result):
            return result.addErrback(recover, request, on_error)
        return result

    return guarded


def guard_native(mw: Callable[[Request, Link], Any], nxt: Link, on_error: ErrorHandler) -> Link:
    """``guard_errors`` around ``mw(request, nxt)``, one frame shorter (every native layer pays it)."""

    def guarded(request: Request) -> Any:
        try:
            result = mw(request, nxt)
        except Exception as exc:  # noqa: BLE001 - every error becomes a response
            return on_error(request, exc)
        if type(result) is not Response and is_deferred(result):
            return result.addErrback(recover, request, on_error)
        return result

    return guarded


def _user_link(mw: Callable[..., Any], nxt: Link) -> Link:
    def link(request: Request) -> Any:
        called = False

        def call_next(req: Request | None = None) -> Deferred[Response]:
            nonlocal called
            if called:
                raise RuntimeError("call_next() may be called only once per request")
            called = True
            result = nxt(request if req is None else req)
            return result if is_deferred(result) else succeed(result)

        return settle(mw(request, call_next))

    return link


def compose(
    middleware: Sequence[Any],
    endpoint: Link,
    on_error: ErrorHandler,
    context: AppContext,
    route: RouteView | None = None,
) -> Link:
    """Fold ``middleware`` (first registered = outermost) around ``endpoint`` (``route``'s, if any)."""
    handler = guard_errors(endpoint, on_error)
    innermost = True
    for mw in reversed(middleware):
        hooks = hooks_of(mw)
        if hooks.native:
            own_link = hooks.link  # hot middleware may compile its own guarded link
            if own_link is None:
                handler = guard_native(mw, handler, on_error)
            else:
                inner = endpoint if innermost and hooks.guards_call_next else handler
                handler = own_link(inner, on_error, context, route)
        else:
            handler = guard_errors(_user_link(mw, handler), on_error)
        innermost = False
    return handler


class BeforeRequest:
    """``@app.before_request``: a non-None return short-circuits (SPEC §2.6 r3)."""

    native = True

    def __init__(self, fn: Callable[[Request], Any]) -> None:
        self.fn = fn

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        result = self.fn(request)

        def decide(value: Any) -> Response | Deferred[Response]:
            if value is None:
                return call_next(request)
            return to_response(value)

        if is_deferred(result) or inspect.iscoroutine(result):
            return settle(result, decide)  # type: ignore[arg-type]  # typing note: Deferreds returned by callbacks are chained (flattened); mypy cannot express it
        return decide(result)


class AfterRequest:
    """``@app.after_request``: may replace the response; None keeps it."""

    native = True

    def __init__(self, fn: Callable[[Request, Response], Any]) -> None:
        self.fn = fn

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        def after(response: Response) -> Any:
            return settle(self.fn(request, response), lambda v: response if v is None else to_response(v))

        return then(call_next(request), after)
