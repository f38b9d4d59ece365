"""Static files: safe path resolution, types, caching headers, precompressed variants (SPEC §2.16)."""

from __future__ import annotations

import fnmatch
import html
import os
import re
import stat
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrs import Attribute, evolve, field, frozen

from .._headers import accepts, add_vary
from .._validators import fail, non_negative_int, str_tuple
from ..errors import ConfigError, HTTPError
from ..response import HTML_TYPE, Response
from ._file import FileStreamer, content_disposition
from ._mime import content_type_for

if TYPE_CHECKING:
    from ..request import Request

__all__ = ["StaticFilesConfig", "StaticMount", "file_response", "content_disposition", "content_type_for"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_ALLOW = {"Allow": "GET, HEAD"}


def parse_duration(value: str) -> int:
    """``"30d"`` -> seconds (units s/m/h/d/w/y).

    Raises:
        ConfigError: ``value`` is not a whole number followed by one unit.
    """
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(
            "StaticFilesConfig.cache_max_age", value, "a duration such as '30s', '10m', '12h', '30d', '1w' or '1y'"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def _url_path(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        fail(instance, attribute.name, value, "a URL path starting with '/'")


def _read_only_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(headers or {}))


def _whole_seconds(value: Any) -> Any:
    return int(value) if isinstance(value, float) else value


@frozen(init=False, eq=False)
class StaticFilesConfig:
    """A directory served under ``url_path``.

    Frozen: the chainable methods (``.cache_str("30d").etag(False)``) each return a
    new config with one setting changed, so use the value they return.

    Raises:
        ConfigError: a ``url_path`` not starting with ``/``, a negative
            ``cache_max_age`` or a malformed ``cache_str`` duration.
    """

    url_path: str = field(validator=_url_path)
    root_dir: str = field(converter=os.fspath)
    index_file: str | None = field(alias="index")
    cache_max_age: int = field(converter=_whole_seconds, validator=non_negative_int)
    etag_enabled: bool = field(converter=bool, alias="etag")
    dir_listing_enabled: bool = field(converter=bool, alias="dir_listing")
    precompressed_enabled: bool = field(converter=bool, alias="precompressed")
    hide_patterns: tuple[str, ...] = field(converter=str_tuple)
    extra_headers: Mapping[str, str] = field(converter=_read_only_headers, alias="headers")

    def __init__(
        self,
        url_path: str | None = None,
        root_dir: Any = None,
        *,
        index: str | None = "index.html",
        cache_max_age: int = 86400,
        etag: bool = True,
        dir_listing: bool = False,
        precompressed: bool = True,
        hide_patterns: Sequence[str] = (".*",),
        headers: Mapping[str, str] | None = None,
        prefix: str | None = None,
        directory: Any = None,
        index_file: str | None = None,
    ) -> None:
        self.__attrs_init__(
            url_path=prefix if url_path is None and prefix is not None else (url_path or "/static"),
            root_dir=directory if root_dir is None and directory is not None else root_dir or "",
            index=index_file if index_file is not None else index,
            cache_max_age=cache_max_age,
            etag=etag,
            dir_listing=dir_listing,
            precompressed=precompressed,
            hide_patterns=hide_patterns,
            headers=headers,
        )

    # -- chainable: each returns a new config ----------------------------------------

    def cache_str(self, value: str) -> StaticFilesConfig:
        return evolve(self, cache_max_age=parse_duration(value))

    def etag(self, enabled: bool = True) -> StaticFilesConfig:
        return evolve(self, etag=enabled)

    def dir_listing(self, enabled: bool = True) -> StaticFilesConfig:
        return evolve(self, dir_listing=enabled)

    def index(self, name: str) -> StaticFilesConfig:
        return evolve(self, index=name)

    def no_index(self) -> StaticFilesConfig:
        return evolve(self, index=None)

    def precompressed(self, enabled: bool = True) -> StaticFilesConfig:
        return evolve(self, precompressed=enabled)

    def header(self, name: str, value: str) -> StaticFilesConfig:
        return evolve(self, headers={**self.extra_headers, name: value})

    def hide_pattern(self, glob: str) -> StaticFilesConfig:
        return evolve(self, hide_patterns=(*self.hide_patterns, glob))

    def __repr__(self) -> str:
        return f"StaticFilesConfig({self.url_path!r}, {self.root_dir!r})"


class StaticMount:
    """One mount, tried by the app when no route matches (longest ``url_path`` first)."""

    def __init__(self, config: StaticFilesConfig) -> None:
        if not isinstance(config, StaticFilesConfig):
            raise TypeError("enable_static_files needs a StaticFilesConfig")
        url_path = config.url_path
        if not isinstance(url_path, str) or not url_path.startswith("/"):
            raise ValueError(f"static url_path must start with '/', not {url_path!r}")
        if not config.root_dir or not os.path.isdir(config.root_dir):
            raise ValueError(f"static root_dir {config.root_dir!r} is missing or not a directory")
        self.config = config
        self.url_path = url_path.rstrip("/") or "/"
        self._prefix = [s for s in self.url_path.split("/") if s]
        self.root = os.path.realpath(config.root_dir)
        self._hidden = tuple(config.hide_patterns)
        if config.cache_max_age == 0:
            self._cache_control = "no-cache"
        else:
            self._cache_control = f"public, max-age={config.cache_max_age}"

    def __repr__(self) -> str:
        return f"<StaticMount {self.url_path} -> {self.root}>"

    # -- resolution -------------------------------------------------------------

    def _is_hidden(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self._hidden)

    def _relative(self, request: Request) -> tuple[list[str], bool] | None:
        """The path below the mount as safe names, and whether it ended in ``/``; None to refuse."""
        raw = list(request.raw.postpath or ())
        trailing = bool(raw) and raw[-1] == b""
        segments = [s for s in raw if s]
        prefix = self._prefix
        if len(segments) < len(prefix):
            return None
        names: list[str] = []
        for index, segment in enumerate(segments):
            try:
                name = segment.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if index < len(prefix):
                if name != prefix[index]:
                    return None
                continue
            if name in (".", "..") or "/" in name or "\\" in name or "\0" in name or self._is_hidden(name):
                return None
            names.append(name)
        return names, trailing

    def _inside(self, real: str) -> bool:
        root = self.root
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            return False
        relative = os.path.relpath(real, root)
        return relative == "." or not any(self._is_hidden(part) for part in relative.split(os.sep))

    def _resolve(self, names: list[str]) -> tuple[str, os.stat_result] | None:
        real = os.path.realpath(os.path.join(self.root, *names))
        if not self._inside(real):
            return None
        try:
            return real, os.stat(real)
        except (OSError, ValueError):
            return None

    # -- serving ------------------------------------------------------------------

    def serve(self, request: Request) -> Response | None:
        """A response for ``request`` if this mount has the file, else None."""
        relative = self._relative(request)
        if relative is None:
            return None
        names, trailing = relative
        found = self._resolve(names)
        if found is None:
            return None
        real, st = found
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, headers=_ALLOW)
        if stat.S_ISDIR(st.st_mode):
            return self._directory(request, real, names, trailing)
        if not stat.S_ISREG(st.st_mode) or trailing:
            return None
        return self._file(request, real, st)

    def _directory(self, request: Request, real: str, names: list[str], trailing: bool) -> Response | None:
        if not trailing:
            uri = request.raw.uri.decode("latin-1")
            path, sep, query = uri.partition("?")
            return Response.redirect(path + "/" + sep + query, 301)
        index = self.config.index_file
        if index:
            found = self._resolve([*names, index])
            if found is not None and stat.S_ISREG(found[1].st_mode):
                return self._file(request, *found)
        if self.config.dir_listing_enabled:
            return self._listing(request, real)
        return None

    def _listing(self, request: Request, real: str) -> Response:
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except OSError:
            raise HTTPError(404, extra={"path": request.path}) from None
        title = html.escape(request.path)
        rows = []
        for entry in entries:
            if self._is_hidden(entry.name):
                continue
            name = entry.name + ("/" if entry.is_dir() else "")
            rows.append(f'<li><a href="{quote(name)}">{html.escape(name)}</a></li>')
        body = f"<!DOCTYPE html><html><head><title>Index of {title}</title></head><body><h1>Index of {title}</h1><ul>{''.join(rows)}</ul></body></html>"
        resp = Response(body.encode("utf-8"), 200, None, HTML_TYPE)
        resp.headers.set("Cache-Control", "no-cache")
        return resp

    def _variant(self, request: Request, real: str) -> tuple[str, os.stat_result, str | None, bool]:
        """A precompressed ``.br``/``.gz`` sibling the client accepts (br first), if any."""
        offered = request.raw.requestHeaders.getRawHeaders(b"accept-encoding")
        accept = b", ".join(offered).decode("latin-1") if offered else ""
        exists = False
        for suffix, coding in ((".br", "br"), (".gz", "gzip")):
            candidate = real + suffix
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not self._inside(os.path.realpath(candidate)):
                continue
            exists = True
            if accept and accepts(accept, coding):
                return candidate, st, coding, True
        return real, os.stat(real), None, exists

    def _file(self, request: Request, real: str, st: os.stat_result) -> Response:
        config = self.config
        resp = Response(b"", 200, None, content_type_for(real))
        path, encoding = real, None
        if config.precompressed_enabled:
            path, st, encoding, has_variant = self._variant(request, real)
            if has_variant:
                add_vary(resp.headers, "Accept-Encoding")
            if encoding is not None:
                resp.headers.set("Content-Encoding", encoding)
        headers = resp.headers
        headers.set("Accept-Ranges", "bytes")
        headers.set("Cache-Control", self._cache_control)
        if config.etag_enabled:
            from ._file import etag_for

            headers.set("ETag", etag_for(st))
            headers.set("Last-Modified", formatdate(st.st_mtime, usegmt=True))
        for name, value in config.extra_headers.items():
            headers.set(name, value)
        resp.streamer = FileStreamer(path, st, conditional=config.etag_enabled)
        return resp


def file_response(
    path: str | os.PathLike[str], filename: str | None = None, content_type: str | None = None, attachment: bool = True
) -> Response:
    """``Response.file`` (``attachment=True``) or ``Response.sendfile``, as a function."""
    if attachment:
        return Response.file(path, filename, content_type)
    return Response.sendfile(path, content_type)
