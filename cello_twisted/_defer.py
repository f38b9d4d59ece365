"""Deferred helpers shared by every stage: cheap checks and sync-or-async chaining.

Handlers, guards and middleware may answer with a plain value, a Deferred or a
coroutine; these helpers let the request path stay synchronous (no Deferred
allocated) until something really is asynchronous.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from .response import Response, to_response

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from .request import Request

T = TypeVar("T")

_PLAIN = (Response, tuple, dict, list, str, bytes, int, float)


def is_deferred(value: object) -> TypeIs[Deferred[Any]]:
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


@overload
def settle(value: Any) -> Response | Deferred[Response]: ...


@overload
def settle(value: Any, convert: Callable[[Any], T]) -> T | Deferred[T]: ...


def settle(value: Any, convert: Callable[[Any], Any] = to_response) -> Any:
    """Apply ``convert`` now, or when ``value`` (a Deferred or coroutine) resolves."""
    if is_deferred(value):
        return value.addCallback(convert)
    if inspect.iscoroutine(value):
        return Deferred.fromCoroutine(value).addCallback(convert)
    return convert(value)


def then(value: Any, fn: Callable[[Any], T | Deferred[T]]) -> T | Deferred[T]:
    """``fn(value)`` for a plain value, or chained onto a Deferred (for native middleware).

    ``fn`` may itself answer later: a Deferred it returns is chained, not nested.
    """
    if is_deferred(value):
        return value.addCallback(fn)
    return fn(value)


def recover(
    failure: Failure, request: Request, on_error: Callable[[Request, BaseException], Any]
) -> Any:
    """Errback turning a failed Deferred into ``on_error``'s response.

    Cancellation passes untouched (a disconnect), unless the handler timeout caused
    it: then it becomes the timeout's 503 here, so outer middleware decorates it.
    """
    if failure.check(CancelledError):
        timed_out = request.timed_out  # set by middleware/_timeout.py on expiry
        if timed_out is None:
            return failure  # a disconnect: let cancellation propagate untouched
        return on_error(request, timed_out)
    return on_error(request, cast(BaseException, failure.value))  # set for every failed Deferred
