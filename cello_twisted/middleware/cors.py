"""Cors: answers preflights on any path and labels responses for allowed origins (SPEC §2.7)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import HTTPError
from ..response import Response, error_response
from ._chain import then
from ._util import is_preflight

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) with default ports filled in; None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


class CorsConfig:
    """Which cross-origin callers may use the API, and what they may send and read."""

    __slots__ = ("origins", "methods", "headers", "credentials", "max_age", "expose_headers")

    def __init__(
        self,
        origins: Sequence[str] = ("*",),
        methods: Sequence[str] = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
        headers: Sequence[str] = ("Content-Type", "Authorization", "Accept", "Origin", "X-Requested-With"),
        credentials: bool = False,
        max_age: int = 86400,
        expose_headers: Sequence[str] = (),
    ) -> None:
        origins = (origins,) if isinstance(origins, str) else tuple(origins)
        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        headers = (headers,) if isinstance(headers, str) else tuple(headers)
        expose_headers = (expose_headers,) if isinstance(expose_headers, str) else tuple(expose_headers)
        if credentials and "*" in origins:
            raise ValueError('credentials=True cannot be combined with origins "*"; list the origins')
        if max_age is None or max_age < 0:
            raise ValueError("max_age must be >= 0")
        for origin in origins:
            if origin != "*" and _origin_key(origin) is None:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        self.origins = origins
        self.methods = tuple(m.upper() for m in methods)
        self.headers = headers
        self.credentials = bool(credentials)
        self.max_age = int(max_age)
        self.expose_headers = expose_headers


class Cors:
    """Native middleware; register it first so every response (even 401/404/429/500) is labelled."""

    native = True

    def __init__(self, config: CorsConfig | None = None, **fields: Any) -> None:
        if config is None:
            config = CorsConfig(**fields)
        elif fields:
            merged = {name: getattr(config, name) for name in CorsConfig.__slots__}
            merged.update(fields)
            config = CorsConfig(**merged)
        self.config = config
        self._any = "*" in config.origins
        self._allowed = frozenset(_origin_key(o) for o in config.origins if o != "*")
        self._methods = frozenset(config.methods)
        self._cache: dict[str, bool] = {}
        preflight = [
            ("Access-Control-Allow-Methods", ", ".join(config.methods)),
            ("Access-Control-Allow-Headers", ", ".join(config.headers)),
            ("Access-Control-Max-Age", str(config.max_age)),
        ]
        extra = []
        if config.credentials:
            extra.append(("Access-Control-Allow-Credentials", "true"))
        if config.expose_headers:
            extra.append(("Access-Control-Expose-Headers", ", ".join(config.expose_headers)))
        self._preflight_headers = preflight + [h for h in extra if h[0].endswith("Credentials")]
        self._response_headers = extra

    def is_allowed(self, origin: str) -> bool:
        """Exact (scheme, host, port) match against the configured origins."""
        if self._any:
            return True
        known = self._cache.get(origin)
        if known is None:
            known = _origin_key(origin) in self._allowed
            if len(self._cache) > 1024:  # Origin is client-controlled: keep the cache bounded
                self._cache.clear()
            self._cache[origin] = known
        return known

    def _label(self, resp: Response, origin: str) -> None:
        headers = resp.headers
        if self._any:
            headers.set("Access-Control-Allow-Origin", "*")
        else:
            headers.set("Access-Control-Allow-Origin", origin)
            _add_vary(resp, "Origin")

    def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        raw_origin = request.raw.requestHeaders.getRawHeaders(b"origin")
        if not raw_origin:
            return call_next(request)
        origin = raw_origin[0].decode("latin-1")
        if request.method == "OPTIONS" and is_preflight(request):
            return self._preflight(request, origin)
        if not self.is_allowed(origin):
            return call_next(request)

        def label(resp: Response) -> Response:
            self._label(resp, origin)
            for name, value in self._response_headers:
                resp.headers.set(name, value)
            return resp

        return then(call_next(request), label)

    def _preflight(self, request: Any, origin: str) -> Response:
        wanted = request.raw.requestHeaders.getRawHeaders(b"access-control-request-method")[0]
        method = wanted.decode("latin-1").strip().upper()
        if not self.is_allowed(origin) or method not in self._methods:
            return error_response(HTTPError(403, "CORS preflight refused"))
        resp = Response(b"", 200)
        self._label(resp, origin)
        for name, value in self._preflight_headers:
            resp.headers.set(name, value)
        return resp


def _add_vary(resp: Response, token: str) -> None:
    current = resp.headers.get("Vary")
    if not current:
        resp.headers.set("Vary", token)
    elif token.lower() not in {t.strip().lower() for t in current.split(",")}:
        resp.headers.set("Vary", f"{current}, {token}")


add_vary = _add_vary
