"""Form bodies: urlencoded and multipart (parsed by the ``multipart`` package), uploads spooled to disk."""

from __future__ import annotations

import codecs
import os
import shutil
import tempfile
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote_to_bytes

from multipart import (
    MultipartError,
    MultipartSegment,
    ParserLimitReached,
    PushMultipartParser,
    parse_options_header,
)

from .errors import BadRequestError

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure
    from twisted.web.server import Request as TwistedRequest

SPOOL_THRESHOLD = 1024 * 1024  # SPEC §2.17 r2: larger files go to a temporary file
_READ = 64 * 1024
MAX_FORM_FIELDS = 1000  # default of App(max_form_fields=), SPEC_OPERATIONS §11 r4
TOO_MANY = "too many form fields"
#: Urlencoded bodies larger than this are decoded in slices before the handler runs, so
#: a slow body (megabytes of %-escapes) never holds the reactor (SPEC_OPERATIONS §11 r4).
PREFETCH_BYTES = 256 * 1024


class FormApp(Protocol):
    """What form parsing needs of the app (``App`` provides it)."""

    @property
    def max_form_fields(self) -> int: ...

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]: ...


class FormSource(Protocol):
    """What form parsing needs of a request (``Request`` provides it; request.py imports us)."""

    @property
    def raw(self) -> TwistedRequest: ...

    @property
    def app(self) -> FormApp: ...

    @property
    def content_type(self) -> str | None: ...

    def body(self) -> bytes: ...


class PrefetchSource(FormSource, Protocol):
    """A request whose large urlencoded body may be decoded before its handler runs."""

    def is_form(self) -> bool: ...

    def cache_form(self, form: FormData | Exception) -> None: ...


class UploadedFile:
    """One uploaded file: in memory up to 1 MiB, else on disk at ``temp_path``."""

    def __init__(
        self,
        name: str,
        filename: str,
        content_type: str | None,
        headers: dict[str, str],
        data: bytes | None,
        temp_path: str | None,
        size: int,
    ) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type or "application/octet-stream"
        self.headers = headers
        self.temp_path = temp_path
        self._data = data
        self._size = size

    def size(self) -> int:
        return self._size

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        with open(self._spooled(), "rb") as fh:
            return fh.read()

    def _spooled(self) -> str:
        # Exactly one of _data and temp_path is set (see _Part.finish).
        if self.temp_path is None:
            raise RuntimeError("upload has neither data nor a temporary file")
        return self.temp_path

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read().decode(encoding)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the content to ``path`` (copied; the temporary file is removed after the request)."""
        target = os.fspath(path)
        if self._data is not None:
            with open(target, "wb") as fh:
                fh.write(self._data)
        else:
            shutil.copyfile(self._spooled(), target)
        return target

    def extension(self) -> str | None:
        ext = os.path.splitext(self.filename)[1]
        return ext[1:].lower() if len(ext) > 1 else None

    def _discard(self) -> None:
        if self.temp_path is not None:
            try:
                os.unlink(self.temp_path)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<UploadedFile {self.name}={self.filename!r} {self._size} bytes>"


class FileList(list[UploadedFile]):
    """``request.files()``: a list that may also be awaited."""

    def __await__(self) -> Generator[Any, None, FileList]:
        yield from ()  # a generator that finishes at once: ``await`` gives the list itself
        return self


class FormData(dict[str, str]):
    """Field name -> first value; files only through the file methods. May be awaited."""

    def __init__(self, fields: Iterable[tuple[str, str]] = (), files: Iterable[UploadedFile] = ()) -> None:
        super().__init__()
        self._fields: list[tuple[str, str]] = list(fields)
        for name, value in self._fields:
            self.setdefault(name, value)
        self._files = FileList(files)

    def __await__(self) -> Generator[Any, None, FormData]:
        yield from ()  # a generator that finishes at once: ``await`` gives the form itself
        return self

    def get_or(self, name: str, default: Any) -> Any:
        return self.get(name, default)

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self._fields if k == name]

    def has_field(self, name: str) -> bool:
        return name in self

    def field_names(self) -> list[str]:
        return list(self)

    def field_count(self) -> int:
        return len(self)

    def get_file(self, name: str) -> UploadedFile | None:
        for upload in self._files:
            if upload.name == name:
                return upload
        return None

    def get_files(self, name: str) -> list[UploadedFile]:
        return [f for f in self._files if f.name == name]

    def has_file(self, name: str) -> bool:
        return self.get_file(name) is not None

    def file_names(self) -> list[str]:
        return list(dict.fromkeys(f.name for f in self._files))

    def file_count(self) -> int:
        return len(self._files)

    def all_files(self) -> FileList:
        return self._files


def base_name(filename: str) -> str:
    """The client's file name without any directory part (``/`` or ``\\``) or NULs."""
    name = filename.replace("\0", "").replace("\\", "/").rsplit("/", 1)[-1]
    return "" if name in (".", "..") else name


def parse_form(request: FormSource) -> FormData:
    """Parse ``request``'s body by its Content-Type (SPEC §2.17 r1); other types -> empty."""
    content_type = request.content_type or ""
    mime, options = parse_options_header(content_type)
    max_fields = request.app.max_form_fields
    if mime == "application/x-www-form-urlencoded":
        return _urlencoded(request.body(), options.get("charset") or "utf-8", max_fields)
    if mime == "multipart/form-data":
        form = _multipart(request, options.get("boundary") or "", max_fields)
        _cleanup_after(request, form)
        return form
    return FormData()


def prefetch_form(request: PrefetchSource) -> Deferred[None] | None:
    """A Deferred parsing a large urlencoded body in slices between other events, or None.

    Percent-decoding megabytes takes long enough to stall every other connection of
    the worker, so bodies over ``PREFETCH_BYTES`` are decoded a slice at a time before
    the handler runs; the result (or the error ``request.form()`` will raise) is cached
    on the request. Smaller bodies, multipart (already incremental) and charsets that
    are not ASCII-compatible keep the lazy parse.
    """
    content = request.raw.content
    if content is None:
        return None
    # Size first: two seeks on the received body cost less than reading Content-Type,
    # and every small POST (the usual JSON request) stops here.
    size = int(content.seek(0, 2))
    content.seek(0)
    if size <= PREFETCH_BYTES or not request.is_form():
        return None
    charset = parse_options_header(request.content_type or "")[1].get("charset") or "utf-8"
    try:
        if codecs.lookup(charset).name not in _ASCII_COMPATIBLE:
            return None
    except LookupError:
        return None
    out: list[FormData] = []
    steps = _urlencoded_steps(request.body(), charset, request.app.max_form_fields, out)

    def parsed(_: object) -> None:
        request.cache_form(out[0])

    def refused(failure: Failure) -> None:
        error = failure.value
        if not isinstance(error, Exception):  # pragma: no cover - a BaseException escaped
            failure.raiseException()
        request.cache_form(error)

    return request.app.cooperate(steps).addCallbacks(parsed, refused)


_ASCII_COMPATIBLE = frozenset({"utf-8", "ascii", "iso8859-1", "cp1252", "latin-1"})
_SLICE = 32 * 1024  # bytes of escapes decoded per step (a few ms at most)


def _urlencoded_steps(body: bytes, charset: str, max_fields: int, out: list[FormData]) -> Iterator[None]:
    """``parse_qsl(keep_blank_values=True)`` of ``body``, yielding between slices.

    Decodes with ``urllib.parse.unquote_to_bytes``; a slice never ends inside a
    ``%XX`` escape, so the result equals decoding the whole field at once.
    """
    if body.count(b"&") >= max_fields:
        raise BadRequestError(TOO_MANY)
    try:
        body.decode(charset)  # what parse_qsl would refuse, refused here too
    except (UnicodeDecodeError, LookupError):
        raise BadRequestError("Form body is not valid urlencoded text") from None
    yield None
    pairs: list[tuple[str, str]] = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        name, _, value = chunk.partition(b"=")
        decoded: list[str] = []
        for raw in (name, value):
            pieces: list[bytes] = []
            for piece in _unquoted_slices(raw.replace(b"+", b" ")):
                pieces.append(piece)
                yield None
            try:
                decoded.append(b"".join(pieces).decode(charset))
            except UnicodeDecodeError:
                raise BadRequestError("Form body is not valid urlencoded text") from None
        pairs.append((decoded[0], decoded[1]))
    out.append(FormData(pairs))


def _unquoted_slices(raw: bytes) -> Iterator[bytes]:
    start, end_of = 0, len(raw)
    while True:
        end = min(start + _SLICE, end_of)
        if end < end_of:
            cut = raw.rfind(b"%", end - 2, end)  # never split an escape across slices
            if cut > start:
                end = cut
        yield unquote_to_bytes(raw[start:end])
        if end >= end_of:
            return
        start = end


def _urlencoded(body: bytes, charset: str, max_fields: int = MAX_FORM_FIELDS) -> FormData:
    if body.count(b"&") >= max_fields:  # counted before parsing: a hostile body fails fast
        raise BadRequestError(TOO_MANY)
    try:
        text = body.decode(charset)
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError, ValueError):
        raise BadRequestError("Form body is not valid urlencoded text") from None
    return FormData(pairs)


def _chunks(request: FormSource) -> Iterable[bytes]:
    content = request.raw.content
    if content is None:
        return
    content.seek(0)
    while True:
        data = content.read(_READ)
        if not data:
            return
        yield data


def _multipart(request: FormSource, boundary: str, max_fields: int = MAX_FORM_FIELDS) -> FormData:
    if not boundary or len(boundary) > 70:
        raise BadRequestError("multipart/form-data needs a valid boundary")
    fields: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    part: _Part | None = None
    try:
        with PushMultipartParser(boundary, max_segment_count=max_fields) as parser:
            for chunk in [*_chunks(request), b""]:
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        part = _Part(event)
                    elif event and part is not None:  # data always follows its segment
                        part.feed(event)
                    elif part is not None:
                        part.finish(fields, files)
                        part = None
            if not parser.closed:
                raise BadRequestError("multipart body ended early")
    except MultipartError as exc:
        for upload in files:
            upload._discard()
        if part is not None:
            part.abandon()
        if isinstance(exc, ParserLimitReached) and "segment count" in str(exc):
            raise BadRequestError(TOO_MANY) from None
        raise BadRequestError(f"Malformed multipart body: {exc}") from None
    except BaseException:
        for upload in files:
            upload._discard()
        if part is not None:
            part.abandon()
        raise
    return FormData(fields, files)


class _Part:
    """Collects one segment's body: memory first, a temporary file past the threshold."""

    def __init__(self, segment: MultipartSegment) -> None:
        self.segment = segment
        self.buffer = bytearray()
        self.file: Any = None
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is not None:
            self.file.write(data)
            return
        self.buffer += data
        if self.segment.filename is not None and len(self.buffer) > SPOOL_THRESHOLD:
            self.file = tempfile.NamedTemporaryFile(prefix="cello-upload-", delete=False)  # noqa: SIM115
            self.file.write(self.buffer)
            self.buffer = bytearray()

    def abandon(self) -> None:
        if self.file is not None:
            self.file.close()
            try:
                os.unlink(self.file.name)
            except OSError:
                pass

    def finish(self, fields: list[tuple[str, str]], files: list[UploadedFile]) -> None:
        segment = self.segment
        name = segment.name or ""
        if segment.filename is None:
            try:
                fields.append((name, bytes(self.buffer).decode(segment.charset or "utf-8")))
            except (UnicodeDecodeError, LookupError):
                raise BadRequestError(f"form field {name!r} is not valid text") from None
            return
        temp_path = None
        data: bytes | None = bytes(self.buffer)
        if self.file is not None:
            self.file.close()
            temp_path, data = self.file.name, None
        headers = {k.lower(): v for k, v in segment.headerlist}
        files.append(
            UploadedFile(name, base_name(segment.filename), segment.content_type, headers, data, temp_path, self.size)
        )


def _cleanup_after(request: FormSource, form: FormData) -> None:
    """Delete spooled temporary files once the request is over."""
    spooled = [f for f in form.all_files() if f.temp_path is not None]
    if not spooled:
        return

    def discard(result: Any) -> Any:
        for upload in spooled:
            upload._discard()
        return result

    request.raw.notifyFinish().addBoth(discard)
