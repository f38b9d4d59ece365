"""Request IDs: keep a valid incoming ID or make one, and send it back (SPEC_OPERATIONS §5).

Installed as the outermost link of every chain, so every response that passes the
chain carries the header (401/403/404/405/429/500 and middleware errors included),
and ``request.id`` is set before anything else runs: error bodies, the 500 log line
and the access log read it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._defer import is_deferred, then
from ..errors import ConfigError

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import AppContext, ErrorHandler, Link
    from ..request import Request
    from ..response import Response

__all__ = ["RequestId", "VALID_ID", "new_id"]

VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
"""What an incoming ID must be to be kept: 1-128 characters of a safe set."""

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def new_id() -> str:
    """The default generator: 32 lower-case hex characters from ``uuid4``."""
    return uuid.uuid4().hex


class RequestId:
    """``app.enable_request_id(...)``: ``request.id`` and the response header on every response."""

    native = True
    singleton = True

    def __init__(
        self,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        generator: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise ConfigError("RequestId.header", header, "an HTTP header name")
        if generator is not None and not callable(generator):
            raise ConfigError("RequestId.generator", generator, "a callable returning a str, or None")
        self.header = header
        self.trust_incoming = bool(trust_incoming)
        self.generator = generator or new_id
        self._raw_header = header.lower().encode("ascii")

    def assign(self, request: Request) -> str:
        """The request's ID: the incoming one when trusted and valid, else a new one."""
        if self.trust_incoming:
            values = request.raw.requestHeaders.getRawHeaders(self._raw_header)
            if values:
                value = values[0].decode("latin-1")
                if len(value) <= 128 and VALID_ID.fullmatch(value):
                    request.id = value
                    return value
        made = self.generator()
        if not isinstance(made, str) or not VALID_ID.fullmatch(made):
            raise ValueError(f"request ID generator returned {made!r}; expected 1-128 characters of [A-Za-z0-9._:+/=-]")
        request.id = made
        return made

    def link(self, call_next: Link, on_error: ErrorHandler, context: AppContext) -> Link:
        """The outermost link: assign the ID, run the chain, put the header on what comes back."""
        header = self.header
        assign = self.assign

        def with_id(request: Request) -> Response | Deferred[Response]:
            try:
                assign(request)
                result = call_next(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                result = on_error(request, exc)
            rid = request.id
            if rid is None:
                return result
            if is_deferred(result):
                return result.addCallback(_stamp, header, rid)
            return _stamp(result, header, rid)

        return with_id

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        rid = self.assign(request)
        return then(call_next(request), lambda resp: _stamp(resp, self.header, rid))  # used when composed by hand

    def __repr__(self) -> str:
        return f"RequestId(header={self.header!r}, trust_incoming={self.trust_incoming})"


def _stamp(response: Response, header: str, rid: str) -> Response:
    response.headers.set(header, rid)
    return response
