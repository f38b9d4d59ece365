"""Compression: gzip for whole buffered bodies of compressible types (SPEC §2.8)."""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING

from .._defer import then
from .._headers import accepts, add_vary
from .._validators import fail

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..request import Request
    from ..response import Response

_COMPRESSIBLE = frozenset(
    {"application/json", "application/javascript", "application/xml", "image/svg+xml"}
)


def compressible(content_type: str | None) -> bool:
    """``text/*``, JSON, JavaScript, XML, SVG and any ``+json``/``+xml`` type."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _COMPRESSIBLE or mime.endswith(("+json", "+xml"))


class Compression:
    """Native middleware: never touches streamers (files, SSE, WebSocket upgrades) or HEAD."""

    native = True

    def __init__(self, min_size: int = 1024, level: int = 6) -> None:
        if not isinstance(min_size, int) or isinstance(min_size, bool) or min_size < 0:
            fail(self, "min_size", min_size, "an int >= 0")
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 9:
            fail(self, "level", level, "an int from 1 to 9")
        self.min_size = min_size
        self.level = level

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if request.method == "HEAD":
            return call_next(request)
        return then(call_next(request), lambda resp: self._compress(request, resp))

    def _compress(self, request: Request, resp: Response) -> Response:
        status = resp.status
        if (
            resp.streamer is not None
            or status < 200
            or status in (204, 206, 304)
            or len(resp.body) < self.min_size
            or not compressible(resp.content_type)
            or "content-encoding" in resp.headers
            or "content-range" in resp.headers
        ):
            return resp
        add_vary(resp.headers, "Accept-Encoding")  # the body depends on it from here on
        offered = request.raw.requestHeaders.getRawHeaders(b"accept-encoding")
        if not offered or not accepts(b", ".join(offered).decode("latin-1"), "gzip"):
            return resp
        resp.body = gzip.compress(resp.body, compresslevel=self.level, mtime=0)
        resp.headers.set("Content-Encoding", "gzip")
        resp.headers.delete("Content-Length")  # the writer frames the new body
        etag = resp.headers.get("ETag")
        if etag and not etag.startswith("W/"):
            resp.headers.set("ETag", "W/" + etag)  # no longer byte-identical to the original
        return resp
