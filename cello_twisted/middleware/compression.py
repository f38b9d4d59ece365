"""Compression: gzip for whole buffered bodies of compressible types (SPEC §2.8)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

from ._chain import then
from .cors import add_vary

_COMPRESSIBLE = frozenset(
    {"application/json", "application/javascript", "application/xml", "image/svg+xml"}
)


def compressible(content_type: str | None) -> bool:
    """``text/*``, JSON, JavaScript, XML, SVG and any ``+json``/``+xml`` type."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _COMPRESSIBLE or mime.endswith(("+json", "+xml"))


def accepts(accept_encoding: str, coding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows ``coding`` (q > 0; ``*`` counts if not named)."""
    star = False
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if name != coding and name != "*":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if name == coding:
            return q > 0
        star = q > 0
    return star


class Compression:
    """Native middleware: never touches streamers (files, SSE, WebSocket upgrades) or HEAD."""

    native = True

    def __init__(self, min_size: int = 1024, level: int = 6) -> None:
        if min_size is None or min_size < 0:
            raise ValueError("min_size must be >= 0")
        if not 1 <= level <= 9:
            raise ValueError("level must be between 1 and 9")
        self.min_size = min_size
        self.level = level

    def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        if request.method == "HEAD":
            return call_next(request)
        return then(call_next(request), lambda resp: self._compress(request, resp))

    def _compress(self, request: Any, resp: Any) -> Any:
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
        add_vary(resp, "Accept-Encoding")  # the body depends on it from here on
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
