"""The Response value object and the conversion of handler return values into one."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as _xml_escape

from . import _json
from ._headers import Headers, same_site_value
from .errors import HTTPError
from .wire._stream import Streamer

if TYPE_CHECKING:
    from .sse._events import SseStream

__all__ = ["Response", "Streamer", "to_response", "error_response", "format_cookie", "sse_response"]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
OCTET_TYPE = "application/octet-stream"

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class Response:
    """An HTTP response: status, headers and a bytes body (or a streamer)."""

    # ``header_map`` and ``encoded_headers`` are public for the writer's hot path (read
    # without a property frame); handlers use ``headers``.
    __slots__ = ("status", "header_map", "body", "content_type", "streamer", "encoded_headers")

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
            if content_type is None:
                content_type = TEXT_TYPE
        elif body and content_type is None:
            content_type = OCTET_TYPE
        self.body: bytes = body
        self.status: int = int(status)
        self.header_map: Headers | None = Headers(headers) if headers else None
        self.content_type: str | None = content_type
        self.streamer: Streamer | None = None
        # Headers framework middleware adds on the hot path (rate-limit counters), already
        # encoded: ``{wire_name(name): [bytes]}``, written after ``headers``. Reading
        # ``headers`` folds them in first, so user code still sees them.
        self.encoded_headers: dict[bytes, list[bytes]] | None = None

    # -- factories -------------------------------------------------------------

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(_json.dumpb(data), status, headers, JSON_TYPE)

    @classmethod
    def text(cls, body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(body.encode("utf-8"), status, headers, TEXT_TYPE)

    @classmethod
    def html(cls, body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(body.encode("utf-8"), status, headers, HTML_TYPE)

    @classmethod
    def xml(cls, body_or_dict: Any, status: int = 200, root_name: str = "root") -> Response:
        if isinstance(body_or_dict, (str, bytes)):
            body = body_or_dict
        else:
            body = f"<{root_name}>{_to_xml(body_or_dict)}</{root_name}>"
        if isinstance(body, str):
            body = body.encode("utf-8")
        return cls(body, status, None, XML_TYPE)

    @classmethod
    def binary(cls, data: bytes, content_type: str = OCTET_TYPE, status: int = 200) -> Response:
        return cls(bytes(data), status, None, content_type)

    @classmethod
    def redirect(cls, url: str, status: int = 302, permanent: bool = False) -> Response:
        if permanent:
            status = 301
        if status not in _REDIRECT_CODES:
            raise ValueError(f"redirect status must be one of {sorted(_REDIRECT_CODES)}, not {status}")
        resp = cls(b"", status)
        resp.headers.set("Location", url)
        return resp

    @classmethod
    def no_content(cls) -> Response:
        return cls(b"", 204)

    @classmethod
    def created(cls, data: Any = None, location: str | None = None) -> Response:
        body = b"" if data is None else _json.dumpb(data)
        resp = cls(body, 201, None, JSON_TYPE)
        if location is not None:
            resp.headers.set("Location", location)
        return resp

    @classmethod
    def file(cls, path: str | os.PathLike[str], filename: str | None = None, content_type: str | None = None) -> Response:
        """A file download (``Content-Disposition: attachment``), streamed with ranges."""
        return cls._from_file(path, filename, content_type, attachment=True)

    @classmethod
    def sendfile(cls, path: str | os.PathLike[str], content_type: str | None = None) -> Response:
        """A file shown inline, streamed with ranges."""
        return cls._from_file(path, None, content_type, attachment=False)

    @classmethod
    def _from_file(
        cls, path: str | os.PathLike[str], filename: str | None, content_type: str | None, attachment: bool
    ) -> Response:
        from .static._file import file_body

        body = file_body(path, filename, content_type, attachment)
        resp = cls(b"", 200, body.headers, body.content_type)
        resp.streamer = body.streamer
        return resp

    @classmethod
    def sse(cls, stream: SseStream | Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A streamed ``text/event-stream`` response for an SseStream (or any event source)."""
        from .sse._streamer import EVENT_STREAM, STREAM_HEADERS, SseStreamer

        resp = cls(b"", status, headers, EVENT_STREAM)
        for name, value in STREAM_HEADERS:
            resp.headers.set(name, value)
        resp.streamer = SseStreamer.of(stream)
        return resp

    # -- accessors -------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        """Response headers (created on first use: most handler results never need them)."""
        headers = self.header_map
        if headers is None:
            headers = self.header_map = Headers()
        encoded = self.encoded_headers
        if encoded is not None:
            self.encoded_headers = None
            for name, values in encoded.items():
                headers.delete(name.decode("latin-1"))
                for value in values:
                    headers.add(name.decode("latin-1"), value.decode("latin-1"))
        return headers

    @headers.setter
    def headers(self, value: Headers | dict[str, str]) -> None:
        self.header_map = value if isinstance(value, Headers) else Headers(value)
        self.encoded_headers = None

    def add_encoded_headers(self, encoded: dict[bytes, list[bytes]]) -> None:
        """Framework hot-path use: set ``{wire_name(name): [header-safe bytes]}`` (takes ownership)."""
        if self.encoded_headers is None:
            self.encoded_headers = encoded
        else:
            self.encoded_headers.update(encoded)

    @property
    def status_code(self) -> int:
        return self.status

    @status_code.setter
    def status_code(self, value: int) -> None:
        self.status = int(value)

    def set_header(self, name: str, value: str) -> Response:
        if name.lower() == "content-type":
            self.content_type = value
        else:
            self.headers.set(name, value)
        return self

    def add_header(self, name: str, value: str) -> Response:
        self.headers.add(name, value)
        return self

    def delete_header(self, name: str) -> Response:
        if name.lower() == "content-type":
            self.content_type = None
        self.headers.delete(name)
        return self

    def get_header(self, name: str, default: str | None = None) -> str | None:
        if name.lower() == "content-type":
            return self.content_type if self.content_type is not None else default
        return self.headers.get(name, default)

    def set_cookie(
        self,
        name: str,
        value: str,
        max_age: int | None = None,
        expires: Any = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
        *,
        http_only: bool | None = None,
        same_site: str | None = None,
    ) -> Response:
        """Append one ``Set-Cookie`` header (``http_only``/``same_site`` are aliases)."""
        self.headers.add(
            "Set-Cookie",
            format_cookie(
                name,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly if http_only is None else http_only,
                samesite=samesite if same_site is None else same_site,
            ),
        )
        return self

    def delete_cookie(self, name: str, path: str | None = "/", domain: str | None = None) -> Response:
        """Expire cookie ``name`` in the browser: empty value, Max-Age=0, 1970 Expires."""
        return self.set_cookie(name, "", max_age=0, expires=0, path=path, domain=domain)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type!r} {len(self.body)} bytes>"


def format_cookie(
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    expires: Any = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = None,
) -> str:
    """Render a ``Set-Cookie`` value; refuses characters that would split the header."""
    for part in (name, value, path or "", domain or ""):
        if any(c in part for c in ";\r\n\0") or (part is name and ("=" in name or " " in name)):
            raise ValueError(f"invalid character in cookie field {part!r}")
    out = [f"{name}={value}"]
    if path:
        out.append(f"Path={path}")
    if domain:
        out.append(f"Domain={domain}")
    if max_age is not None:
        out.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        if isinstance(expires, (int, float)):
            expires = formatdate(expires, usegmt=True)
        elif hasattr(expires, "timestamp"):
            expires = formatdate(expires.timestamp(), usegmt=True)
        out.append(f"Expires={expires}")
    elif max_age is not None:
        out.append(f"Expires={formatdate(time.time() + int(max_age), usegmt=True)}")
    if secure:
        out.append("Secure")
    if httponly:
        out.append("HttpOnly")
    if samesite:
        canonical = same_site_value(samesite)
        if canonical is None:
            raise ValueError(f"same_site must be Strict, Lax or None, not {samesite!r}")
        out.append(f"SameSite={canonical}")
    return "; ".join(out)


def _to_xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_to_xml(v)}</{k}>" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "".join(f"<item>{_to_xml(v)}</item>" for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _xml_escape(str(value))


def to_response(value: Any) -> Response:
    """Convert a handler's (already awaited) return value into a Response (SPEC §2.3 r7)."""
    cls = type(value)
    if cls is dict or cls is list:
        return Response(_json.dumpb(value), 200, None, JSON_TYPE)
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(b"", 204)
    if cls is str:
        return Response(value.encode("utf-8"), 200, None, TEXT_TYPE)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Response(bytes(value), 200, None, OCTET_TYPE)
    if isinstance(value, tuple) and 2 <= len(value) <= 3 and isinstance(value[1], int):
        resp = to_response(value[0])
        resp.status = value[1]
        if len(value) == 3 and value[2]:
            for name, header_value in dict(value[2]).items():
                resp.set_header(name, header_value)
        return resp
    if isinstance(value, (dict, list)):
        return Response(_json.dumpb(value), 200, None, JSON_TYPE)
    if isinstance(value, Mapping):
        return Response(_json.dumpb(dict(value)), 200, None, JSON_TYPE)
    from .sse._events import SseStream  # rare: only reached by unusual return types

    if isinstance(value, SseStream):
        return Response.sse(value)
    from twisted.web.resource import IResource

    if IResource.providedBy(value):  # SPEC_OPERATIONS §13 r4: the resource renders the rest of the path
        from .routing._handoff import ResourceStreamer

        resp = Response(b"", 200)
        resp.streamer = ResourceStreamer(value)
        return resp
    raise TypeError(f"handler returned an unsupported type: {cls.__name__}")


def error_response(exc: HTTPError, request_id: str | None = None) -> Response:
    """The standard JSON error response for an HTTPError (plus ``request_id`` when IDs are on)."""
    body = exc.body()
    if request_id is not None:
        body["request_id"] = request_id
    resp = Response(_json.dumpb(body), exc.status, None, JSON_TYPE)
    for name, value in exc.headers.items():
        resp.headers.set(name, value)
    return resp


def sse_response(stream: SseStream | Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``Response.sse``, as a function (``cello_twisted.sse.sse_response``)."""
    return Response.sse(stream, status, headers)
