"""Exceptions to responses: registered handlers by MRO, HTTPError bodies, safe 500s."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.logger import Logger

from .. import _json
from .._defer import is_deferred, settle
from ..errors import HTTPError, internal_error_body
from ..response import JSON_TYPE, Response, error_response

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    from ..request import AppView, Request

_log = Logger(namespace="cello_twisted.errors")


def internal_error(request: Request, exc: BaseException, debug: bool) -> Response:
    """The 500 response (SPEC §2.24 r3); always logs the traceback."""
    request_id = request.id
    if request_id is None:
        _log.failure(
            "Unhandled {exc_type} in {method} {path}",
            exc_type=type(exc).__name__,
            method=request.method,
            path=request.path,
            failure=_failure_for(exc),
        )
    else:  # SPEC_OPERATIONS §5 r3: the log text names the request
        _log.failure(
            "Unhandled {exc_type} in {method} {path} request_id={request_id}",
            exc_type=type(exc).__name__,
            method=request.method,
            path=request.path,
            request_id=request_id,
            failure=_failure_for(exc),
        )
    return Response(_json.dumpb(internal_error_body(exc, debug, request_id)), 500, None, JSON_TYPE)


def _failure_for(exc: BaseException) -> Failure:
    from twisted.python.failure import Failure

    return Failure(exc, type(exc), exc.__traceback__)


def http_error_response(request: Request, exc: HTTPError) -> Response:
    """Standard body plus WWW-Authenticate on 401s (SPEC §2.10 r17)."""
    resp = error_response(exc, request.id)
    if exc.status == 401 and "www-authenticate" not in resp.headers:
        jwt = request.jwt_outcome  # JwtAuth's outcome: (claims, token, realm)
        realm = jwt[2] if jwt is not None else "api"
        value = f'Bearer realm="{realm}"'
        reason = getattr(exc, "reason", None)
        if reason:
            value += f', error="invalid_token", error_description="{reason}"'
        resp.headers.set("WWW-Authenticate", value)
    return resp


class ErrorHandling:
    """Per-route error conversion: blueprint handlers (innermost first), then the app's."""

    __slots__ = ("maps", "app")

    def __init__(self, maps: Sequence[dict[type, Callable[..., Any]]], app: AppView) -> None:
        self.maps = [m for m in maps if m]
        self.app = app

    def find(self, exc: BaseException) -> Callable[..., Any] | None:
        for cls in type(exc).__mro__:
            for handlers in self.maps:
                fn = handlers.get(cls)
                if fn is not None:
                    return fn
        return None

    def default(self, request: Request, exc: BaseException) -> Response:
        if isinstance(exc, HTTPError):
            return http_error_response(request, exc)
        return internal_error(request, exc, self.app.debug)

    def __call__(self, request: Request, exc: BaseException) -> Response | Deferred[Response]:
        handler = self.find(exc) if self.maps else None
        if handler is None:
            return self.default(request, exc)
        try:
            result: Response | Deferred[Response] = settle(handler(request, exc))
        except Exception as inner:  # noqa: BLE001 - a failing handler falls back to 500
            return internal_error(request, inner, self.app.debug)
        if is_deferred(result):
            return result.addErrback(self._handler_failed, request)
        return result

    def _handler_failed(self, failure: Failure, request: Request) -> Response:
        return internal_error(request, cast(BaseException, failure.value), self.app.debug)
