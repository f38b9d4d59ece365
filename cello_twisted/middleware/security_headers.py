"""SecurityHeaders: HSTS, CSP, frame/referrer policy and friends on every response (SPEC §2.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import Attribute, field, frozen
from attrs.validators import optional

from .._validators import fail, non_negative_int, one_of
from ..errors import ConfigError
from ._chain import then

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..request import Request
    from ..response import Response

__all__ = ["SecurityHeadersConfig", "CSP", "SecurityHeaders"]

_DIRECTIVES = (
    "default_src",
    "script_src",
    "style_src",
    "img_src",
    "connect_src",
    "font_src",
    "media_src",
    "object_src",
    "frame_src",
    "frame_ancestors",
    "form_action",
    "base_uri",
)
_REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
_ONE_YEAR = 31536000
_UNSET: Any = object()


def _no_newline(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(what, value, "a value without line breaks")
    return value


class CSP:
    """A Content-Security-Policy builder: ``CSP(default_src=["'self'"]).script_src("'self'", cdn)``.

    Directives render in the order first set, joined by ``"; "``; setting one
    again adds sources to it.
    """

    def __init__(self, **directives: Any) -> None:
        self._directives: dict[str, list[str]] = {}
        for name, sources in directives.items():
            if name not in _DIRECTIVES:
                raise ConfigError(f"CSP.{name}", sources, "a known directive: " + ", ".join(_DIRECTIVES))
            self._add(name, [sources] if isinstance(sources, str) else list(sources))

    def _add(self, name: str, sources: list[str]) -> CSP:
        current = self._directives.setdefault(name, [])
        for source in sources:
            _no_newline(str(source), f"CSP.{name}")
            if ";" in str(source):
                raise ConfigError(f"CSP.{name}", source, "a source without ';'")
            if source not in current:
                current.append(str(source))
        return self

    def __str__(self) -> str:
        parts = []
        for name, sources in self._directives.items():
            directive = name.replace("_", "-")
            parts.append(" ".join([directive, *sources]) if sources else directive)
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"CSP({str(self)!r})"


def _directive_method(name: str) -> Any:
    def method(self: CSP, *sources: str) -> CSP:
        return self._add(name, list(sources))

    method.__name__ = name
    method.__doc__ = f"Add sources to ``{name.replace('_', '-')}``; returns the CSP for chaining."
    return method


for _name in _DIRECTIVES:
    setattr(CSP, _name, _directive_method(_name))


def _valid_hsts_max_age(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    non_negative_int(instance, attribute, value)
    if instance.hsts and instance.hsts_preload and value < _ONE_YEAR:
        fail(instance, attribute.name, value, f"an int >= {_ONE_YEAR} with hsts_preload=True")


def _valid_preload(instance: Any, attribute: Attribute[Any], value: bool) -> None:
    if instance.hsts and value and not instance.hsts_include_subdomains:
        fail(instance, attribute.name, value, "False unless hsts_include_subdomains=True")


def _frame_options(value: Any) -> str | None:
    return str(value).upper() if value else None


def _nosniff(value: Any) -> Any:
    if isinstance(value, str):
        return True if value.lower() == "nosniff" else value  # any other str is refused
    return bool(value)


def _valid_nosniff(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if isinstance(value, str):
        fail(instance, "x_content_type_options", value, "a bool or 'nosniff'")


def _referrer(value: Any) -> Any:
    return value.lower() if isinstance(value, str) and value else (value or None)


def _or_none(value: Any) -> Any:
    return value or None


def _valid_header_text(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if value is not None and any(c in str(value) for c in "\r\n\0"):
        fail(instance, attribute.name, str(value), "a header value without line breaks")


@frozen(init=False, eq=False)
class SecurityHeadersConfig:
    """Which security headers to add; ``None``/``False`` omits a header.

    ``x_frame_options``, ``x_content_type_options`` and ``x_xss_protection`` are
    aliases of ``frame_options``, ``content_type_nosniff`` and ``xss_protection``.

    Raises:
        ConfigError: a negative ``hsts_max_age``, ``hsts_preload`` without its
            prerequisites, an unknown frame option or referrer policy, or a line break
            in a header value.
    """

    # Validators run once every field is set, so the cross-field checks see them all.
    hsts: bool = field(converter=bool)
    hsts_max_age: int = field(validator=_valid_hsts_max_age)
    hsts_include_subdomains: bool = field(converter=bool)
    hsts_preload: bool = field(converter=bool, validator=_valid_preload)
    content_type_nosniff: bool = field(converter=_nosniff, validator=_valid_nosniff)
    frame_options: str | None = field(
        converter=_frame_options, validator=optional(one_of(("DENY", "SAMEORIGIN")))
    )
    xss_protection: bool = field(converter=bool)
    referrer_policy: str | None = field(
        converter=_referrer, validator=optional(one_of(sorted(_REFERRER_POLICIES)))
    )
    csp: Any = field(converter=_or_none, validator=_valid_header_text)
    permissions_policy: str | None = field(converter=_or_none, validator=_valid_header_text)

    def __init__(
        self,
        hsts: bool = True,
        hsts_max_age: int = _ONE_YEAR,
        hsts_include_subdomains: bool = True,
        hsts_preload: bool = False,
        content_type_nosniff: Any = True,
        frame_options: str | None = "DENY",
        xss_protection: bool = False,
        referrer_policy: str | None = "strict-origin-when-cross-origin",
        csp: Any = "default-src 'self'",
        permissions_policy: str | None = None,
        *,
        x_frame_options: Any = _UNSET,
        x_content_type_options: Any = _UNSET,
        x_xss_protection: Any = _UNSET,
    ) -> None:
        if x_frame_options is not _UNSET:
            frame_options = x_frame_options
        if x_content_type_options is not _UNSET:
            content_type_nosniff = x_content_type_options
        if x_xss_protection is not _UNSET:
            xss_protection = x_xss_protection
        self.__attrs_init__(
            hsts=hsts,
            hsts_include_subdomains=hsts_include_subdomains,
            hsts_preload=hsts_preload,
            hsts_max_age=hsts_max_age,
            content_type_nosniff=content_type_nosniff,
            frame_options=frame_options,
            xss_protection=xss_protection,
            referrer_policy=referrer_policy,
            csp=csp,
            permissions_policy=permissions_policy,
        )

    def headers(self) -> list[tuple[str, str]]:
        """The (name, value) pairs this config adds, computed once."""
        out: list[tuple[str, str]] = []
        if self.hsts:
            value = f"max-age={self.hsts_max_age}"
            if self.hsts_include_subdomains:
                value += "; includeSubDomains"
            if self.hsts_preload:
                value += "; preload"
            out.append(("Strict-Transport-Security", value))
        if self.content_type_nosniff:
            out.append(("X-Content-Type-Options", "nosniff"))
        if self.frame_options:
            out.append(("X-Frame-Options", self.frame_options))
        if self.xss_protection:
            out.append(("X-XSS-Protection", "1; mode=block"))
        if self.referrer_policy:
            out.append(("Referrer-Policy", self.referrer_policy))
        if self.csp:
            out.append(("Content-Security-Policy", _no_newline(str(self.csp), "csp")))
        if self.permissions_policy:
            out.append(
                (
                    "Permissions-Policy",
                    _no_newline(str(self.permissions_policy), "permissions_policy"),
                )
            )
        return out


class SecurityHeaders:
    """Adds the configured headers unless the response already has them.

    ``app.enable_security_headers`` registers ``finalize`` where responses are
    written, so every response gets them whatever the registration position;
    ``app.use(SecurityHeaders(...))`` applies them at that point of the chain.
    With ``drop_server_header`` (default) Twisted's ``Server: TwistedWeb/<version>``
    is removed from responses the finalizer sees (no version disclosure).
    """

    native = True

    def __init__(
        self, config: SecurityHeadersConfig | None = None, *, drop_server_header: bool = True
    ) -> None:
        self.config = config if config is not None else SecurityHeadersConfig()
        self.drop_server_header = drop_server_header
        self._pairs = tuple(self.config.headers())

    def apply(self, response: Response) -> Response:
        headers = response.headers
        for name, value in self._pairs:
            if name not in headers:
                headers.set(name, value)
        return response

    def finalize(self, request: Request, response: Response) -> None:
        """Finalizer hook (``Finalizer``): runs on every response the app writes."""
        self.apply(response)
        if self.drop_server_header:
            request.raw.responseHeaders.removeHeader(b"server")

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        return then(call_next(request), self.apply)
