"""Small predicates shared by framework middleware."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..request import Request


def path_matches(pattern: str, path: str) -> bool:
    """SPEC §1 r6 prefix rule: ``/public`` matches ``/public`` and ``/public/x``, not ``/publication``."""
    if path == pattern:
        return True
    return path.startswith(pattern.rstrip("/") + "/")


def any_path_matches(patterns: Iterable[str], path: str) -> bool:
    return any(path_matches(p, path) for p in patterns)


def is_preflight(request: Request) -> bool:
    """A CORS preflight: OPTIONS with ``Origin`` and ``Access-Control-Request-Method``."""
    if request.method != "OPTIONS":
        return False
    headers = request.raw.requestHeaders
    return bool(headers.hasHeader(b"origin") and headers.hasHeader(b"access-control-request-method"))
