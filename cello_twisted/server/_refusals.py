"""Connection-level answers (400, 408, 413, 414, 431, 503): the standard JSON error body, pre-routing."""

from __future__ import annotations

from collections.abc import Sequence

from .. import _json
from ..errors import HTTPError, reason_phrase

Header = tuple[bytes, bytes]


def error_body(status: int, detail: str) -> bytes:
    """The framework's standard error body (SPEC §1 r5) for ``status``."""
    return _json.dumpb(HTTPError(status, detail).body())


def raw_response(status: int, detail: str, headers: Sequence[Header] = ()) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for answers given below the router."""
    body = error_body(status, detail)
    extra = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n%s" % (
        status,
        reason_phrase(status).encode("ascii"),
        len(body),
        extra,
        body,
    )


class RequestGate:
    """Load shedding for one worker: counts requests in progress, refuses above ``limit``.

    A request holds its slot from the end of its headers until it finishes or its
    connection goes (SSE streams and WebSockets therefore count while open).
    """

    __slots__ = ("limit", "in_flight")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_enter(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1
