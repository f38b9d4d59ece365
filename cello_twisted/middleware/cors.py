"""Cors: answers preflights on any path and labels responses for allowed origins (SPEC §2.7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attrs import Attribute, evolve, field, frozen

from .._defer import then
from .._headers import add_vary
from .._validators import fail, non_negative_int, str_tuple
from ..errors import HTTPError
from ..response import Response, error_response
from ._util import is_preflight

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..request import Request

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


def _upper_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return tuple(m.upper() for m in str_tuple(value))


def _whole_seconds(value: Any) -> Any:
    return int(value) if isinstance(value, float) else value


def _valid_origins(instance: Any, attribute: Attribute[Any], value: tuple[str, ...]) -> None:
    for origin in value:
        if origin != "*" and _origin_key(origin) is None:
            fail(instance, attribute.name, origin, '"*" or an origin scheme://host[:port]')


def _valid_credentials(instance: Any, attribute: Attribute[Any], value: bool) -> None:
    if value and "*" in instance.origins:
        fail(instance, attribute.name, value, 'False when origins has "*" (list the origins instead)')


@frozen(init=False, eq=False)
class CorsConfig:
    """Which cross-origin callers may use the API, and what they may send and read.

    Raises:
        ConfigError: an origin that is not ``scheme://host[:port]``, ``credentials=True``
            with ``"*"``, or a negative ``max_age``.
    """

    origins: tuple[str, ...] = field(converter=str_tuple, validator=_valid_origins)
    methods: tuple[str, ...] = field(converter=_upper_tuple)
    headers: tuple[str, ...] = field(converter=str_tuple)
    credentials: bool = field(converter=bool, validator=_valid_credentials)
    max_age: int = field(converter=_whole_seconds, validator=non_negative_int)
    expose_headers: tuple[str, ...] = field(converter=str_tuple)

    def __init__(
        self,
        origins: Sequence[str] = ("*",),
        methods: Sequence[str] = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
        headers: Sequence[str] = ("Content-Type", "Authorization", "Accept", "Origin", "X-Requested-With"),
        credentials: bool = False,
        max_age: int = 86400,
        expose_headers: Sequence[str] = (),
    ) -> None:
        self.__attrs_init__(origins, methods, headers, credentials, max_age, expose_headers)


class Cors:
    """Native middleware; register it first so every response (even 401/404/429/500) is labelled."""

    native = True

    def __init__(self, config: CorsConfig | None = None, **fields: Any) -> None:
        if config is None:
            config = CorsConfig(**fields)
        elif fields:
            config = evolve(config, **fields)
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
        extra: list[tuple[str, str]] = []
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
            add_vary(resp.headers, "Origin")

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
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

    def _preflight(self, request: Request, origin: str) -> Response:
        wanted = request.raw.requestHeaders.getRawHeaders(b"access-control-request-method") or [b""]
        method = wanted[0].decode("latin-1").strip().upper()
        if not self.is_allowed(origin) or method not in self._methods:
            return error_response(HTTPError(403, "CORS preflight refused"), request.id)
        resp = Response(b"", 200)
        self._label(resp, origin)
        for name, value in self._preflight_headers:
            resp.headers.set(name, value)
        return resp
