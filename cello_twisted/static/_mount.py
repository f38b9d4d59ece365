"""Static files: safe path resolution, types, caching headers, precompressed variants (SPEC §2.16)."""

from __future__ import annotations

import fnmatch
import html
import os
import re
import stat
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from ._file import FileStreamer, content_disposition, file_response
from ._mime import content_type_for
from ..errors import HTTPError
from ..middleware.compression import accepts
from ..middleware.cors import add_vary
from ..response import HTML_TYPE, Response

__all__ = ["StaticFilesConfig", "StaticMount", "file_response", "content_disposition", "content_type_for"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_ALLOW = {"Allow": "GET, HEAD"}


def parse_duration(value: str) -> int:
    """``"30d"`` -> seconds (units s/m/h/d/w/y)."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"malformed duration {value!r}; use e.g. '30s', '10m', '12h', '30d', '1w', '1y'")
    return int(match.group(1)) * _UNITS[match.group(2)]


class StaticFilesConfig:
    """A directory served under ``url_path``; the chainable methods return the config."""

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
        self.url_path = prefix if url_path is None and prefix is not None else (url_path or "/static")
        self.root_dir = os.fspath(directory if root_dir is None and directory is not None else root_dir or "")
        self.index_file = index_file if index_file is not None else index
        if cache_max_age is None or int(cache_max_age) < 0:
            raise ValueError("cache_max_age must be >= 0")
        self.cache_max_age = int(cache_max_age)
        self.etag_enabled = bool(etag)
        self.dir_listing_enabled = bool(dir_listing)
        self.precompressed_enabled = bool(precompressed)
        self.hide_patterns = list((hide_patterns,) if isinstance(hide_patterns, str) else hide_patterns)
        self.extra_headers = dict(headers or {})

    # -- chainable ----------------------------------------------------------------

    def cache_str(self, value: str) -> StaticFilesConfig:
        self.cache_max_age = parse_duration(value)
        return self

    def etag(self, enabled: bool = True) -> StaticFilesConfig:
        self.etag_enabled = bool(enabled)
        return self

    def dir_listing(self, enabled: bool = True) -> StaticFilesConfig:
        self.dir_listing_enabled = bool(enabled)
        return self

    def index(self, name: str) -> StaticFilesConfig:
        self.index_file = name
        return self

    def no_index(self) -> StaticFilesConfig:
        self.index_file = None
        return self

    def precompressed(self, enabled: bool = True) -> StaticFilesConfig:
        self.precompressed_enabled = bool(enabled)
        return self

    def header(self, name: str, value: str) -> StaticFilesConfig:
        self.extra_headers[name] = value
        return self

    def hide_pattern(self, glob: str) -> StaticFilesConfig:
        self.hide_patterns.append(glob)
        return self

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

    def _relative(self, request: Any) -> tuple[list[str], bool] | None:
        """The path below the mount as safe names, and whether it ended in ``/``; None to refuse."""
        raw = [s for s in request.raw.postpath]
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

    def serve(self, request: Any) -> Response | None:
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

    def _directory(self, request: Any, real: str, names: list[str], trailing: bool) -> Response | None:
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

    def _listing(self, request: Any, real: str) -> Response:
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

    def _variant(self, request: Any, real: str) -> tuple[str, os.stat_result, str | None, bool]:
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

    def _file(self, request: Any, real: str, st: os.stat_result) -> Response:
        config = self.config
        resp = Response(b"", 200, None, content_type_for(real))
        path, encoding = real, None
        if config.precompressed_enabled:
            path, st, encoding, has_variant = self._variant(request, real)
            if has_variant:
                add_vary(resp, "Accept-Encoding")
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
