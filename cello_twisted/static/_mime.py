"""Content types by extension: cello's own table, never the host's /etc/mime.types (SPEC §2.16 r2)."""

from __future__ import annotations

import mimetypes
import os

OCTET = "application/octet-stream"

# Python's built-in defaults only (MimeTypes() does not read host files into its copy).
_TABLE: dict[str, str] = dict(mimetypes.MimeTypes().types_map[True])
_TABLE.update(
    {
        ".html": "text/html",
        ".htm": "text/html",
        ".css": "text/css",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".cjs": "text/javascript",
        ".txt": "text/plain",
        ".md": "text/markdown",
        ".csv": "text/csv",
        ".json": "application/json",
        ".map": "application/json",
        ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".ico": "image/vnd.microsoft.icon",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".pdf": "application/pdf",
        ".xml": "application/xml",
        ".zip": "application/zip",
        ".gz": "application/gzip",
        ".br": OCTET,
        ".mp4": "video/mp4",
        ".webm": "video/webm",
        ".mp3": "audio/mpeg",
        ".ogg": "audio/ogg",
    }
)


def content_type_for(path: str) -> str:
    """The type for ``path``'s last extension; text types carry ``charset=utf-8``."""
    ext = os.path.splitext(path)[1].lower()
    mime = _TABLE.get(ext, OCTET)
    if mime.startswith("text/"):
        return mime + "; charset=utf-8"
    return mime
