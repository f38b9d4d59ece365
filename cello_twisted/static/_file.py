"""File bodies: ranges, conditional requests and a push producer that streams from disk."""

from __future__ import annotations

import os
import stat
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from .. import _json
from ..errors import HTTPError
from ..wire._stream import ResponseHead, Streamer
from ._mime import content_type_for

if TYPE_CHECKING:
    from twisted.web.http_headers import Headers as TwistedHeaders
    from twisted.web.server import Request as TwistedRequest

    from ..request import Request

CHUNK = 64 * 1024
SMALL = 64 * 1024  # written in one go: no producer needed


def etag_for(st: os.stat_result) -> str:
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=a-b`` range -> (start, end inclusive); "unsatisfiable"; None to ignore."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix == 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return int(mtime) <= since


@implementer(IPushProducer)
class FileStreamer(Streamer):
    """Streams ``path`` (or one range of it) after the headers; handles 206/416/304 in ``prepare``."""

    def __init__(self, path: str, st: os.stat_result, *, conditional: bool = False) -> None:
        self.path = path
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.etag = etag_for(st)
        self.conditional = conditional
        self.offset = 0
        self.length = st.st_size
        self.body: bytes | None = None  # a fixed body instead of the file (304, 416)
        self._file: Any = None
        self._twreq: Any = None  # the Twisted request, once started
        self._paused = False
        self._pumping = False
        self._stopped = False
        self._done: Deferred[None] | None = None

    # -- before the headers ---------------------------------------------------

    def prepare(self, request: Request, response: ResponseHead) -> None:
        headers = request.raw.requestHeaders
        if response.status != 200:  # a handler chose another status: send the whole file
            response.headers.set("Content-Length", str(self.length))
            return
        if self.conditional and request.method in ("GET", "HEAD") and self._not_modified(headers):
            response.status = 304
            response.content_type = None
            self.body = b""
            response.headers.delete("Content-Length")
            return
        wanted = headers.getRawHeaders(b"range")
        if wanted and request.method in ("GET", "HEAD") and self._if_range_ok(headers):
            chosen = parse_range(wanted[0].decode("latin-1"), self.size)
            if chosen == "unsatisfiable":
                error: dict[str, object] = {"error": "Range Not Satisfiable", "status": 416}
                if request.id is not None:
                    error["request_id"] = request.id
                body = _json.dumpb(error)
                response.status = 416
                response.content_type = "application/json"
                response.headers.delete("Content-Encoding")
                response.headers.set("Content-Range", f"bytes */{self.size}")
                response.headers.set("Content-Length", str(len(body)))
                self.body = body
                return
            if isinstance(chosen, tuple):
                start, end = chosen
                response.status = 206
                response.headers.set("Content-Range", f"bytes {start}-{end}/{self.size}")
                self.offset, self.length = start, end - start + 1
        response.headers.set("Content-Length", str(self.length))

    def _not_modified(self, headers: TwistedHeaders) -> bool:
        match = headers.getRawHeaders(b"if-none-match")
        if match:
            return _etag_matches(b", ".join(match).decode("latin-1"), self.etag)
        since = headers.getRawHeaders(b"if-modified-since")
        return since is not None and len(since) > 0 and _not_modified_since(since[0].decode("latin-1"), self.mtime)

    def _if_range_ok(self, headers: TwistedHeaders) -> bool:
        condition = headers.getRawHeaders(b"if-range")
        if not condition:
            return True
        value = condition[0].decode("latin-1").strip()
        if value.startswith(('"', "W/")):
            return value == self.etag
        return value == formatdate(self.mtime, usegmt=True)

    # -- the body ---------------------------------------------------------------

    def start(self, twreq: TwistedRequest) -> Deferred[None]:
        self._twreq = twreq
        if self.body is not None:
            if self.body:
                twreq.write(self.body)
            twreq.finish()
            return succeed(None)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed when streaming ends
            self._file.seek(self.offset)
            if self.length <= SMALL:
                data = self._file.read(self.length)
                self._close()
                if len(data) != self.length:
                    raise OSError(f"{self.path} changed size while being sent")
                if data:
                    twreq.write(data)
                twreq.finish()
                return succeed(None)
        except OSError as exc:  # headers are out: the writer aborts the connection
            self._close()
            return fail(exc)
        self._done = Deferred()
        twreq.registerProducer(self, True)
        self._pump()
        return self._done

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self._paused and not self._stopped and self.length > 0:
                data = self._file.read(min(CHUNK, self.length))
                if not data:
                    self._fail(OSError(f"{self.path} shrank while being sent"))
                    return
                self.length -= len(data)
                self._twreq.write(data)
            if self.length == 0 and not self._stopped:
                self._stopped = True
                self._close()
                self._twreq.unregisterProducer()
                self._twreq.finish()
                done, self._done = self._done, None
                if done is not None:
                    done.callback(None)
        finally:
            self._pumping = False

    def _fail(self, exc: Exception) -> None:
        self._stopped = True
        self._close()
        done, self._done = self._done, None
        if done is not None:
            done.errback(exc)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if not self._stopped and self._twreq is not None:
            self._pump()

    def stopProducing(self) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped = True
        self._close()
        self._done = None


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="x"`` (+ RFC 5987 ``filename*`` for non-ASCII names)."""
    clean = "".join(c for c in filename if c not in "\r\n\0")
    fallback = clean.encode("ascii", "replace").decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
    value = f'{kind}; filename="{fallback}"'
    if not clean.isascii():
        value += f"; filename*=UTF-8''{quote(clean, safe='')}"
    return value


class FileBody(NamedTuple):
    """What ``Response.file``/``sendfile`` are built from: headers, type and the streamer."""

    headers: dict[str, str]
    content_type: str
    streamer: FileStreamer


def file_body(
    path: str | os.PathLike[str], filename: str | None, content_type: str | None, attachment: bool
) -> FileBody:
    """A streamed regular file with ranges (SPEC §2.3 r5); 404 if it is missing or not a file."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        raise HTTPError(404, "File not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise HTTPError(404, "File not found")
    headers = {"Accept-Ranges": "bytes", "Last-Modified": formatdate(st.st_mtime, usegmt=True)}
    if attachment:
        headers["Content-Disposition"] = content_disposition("attachment", filename or os.path.basename(path))
    return FileBody(headers, content_type or content_type_for(path), FileStreamer(path, st))
