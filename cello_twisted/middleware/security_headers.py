"""SecurityHeaders: HSTS, CSP, frame/referrer policy and friends on every response (SPEC §2.15)."""

from __future__ import annotations

from typing import Any

from ._chain import then

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
        raise ValueError(f"{what} must not contain line breaks")
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
                raise ValueError(f"unknown CSP directive {name!r}")
            self._add(name, [sources] if isinstance(sources, str) else list(sources))

    def _add(self, name: str, sources: list[str]) -> CSP:
        current = self._directives.setdefault(name, [])
        for source in sources:
            _no_newline(str(source), "CSP source")
            if ";" in str(source):
                raise ValueError("CSP sources must not contain ';'")
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


class SecurityHeadersConfig:
    """Which security headers to add; ``None``/``False`` omits a header."""

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
        if isinstance(hsts_max_age, bool) or not isinstance(hsts_max_age, int) or hsts_max_age < 0:
            raise ValueError("hsts_max_age must be an int >= 0")
        if hsts and hsts_preload and (not hsts_include_subdomains or hsts_max_age < _ONE_YEAR):
            raise ValueError(
                "hsts_preload needs hsts_include_subdomains=True and hsts_max_age >= 31536000"
            )
        if frame_options:
            frame_options = str(frame_options).upper()
            if frame_options not in ("DENY", "SAMEORIGIN"):
                raise ValueError(f"frame_options must be DENY or SAMEORIGIN, not {frame_options!r}")
        if referrer_policy and referrer_policy.lower() not in _REFERRER_POLICIES:
            raise ValueError(f"unknown referrer_policy {referrer_policy!r}")
        if isinstance(content_type_nosniff, str):
            if content_type_nosniff.lower() != "nosniff":
                raise ValueError("x_content_type_options must be a bool or 'nosniff'")
            content_type_nosniff = True
        self.hsts = bool(hsts)
        self.hsts_max_age = hsts_max_age
        self.hsts_include_subdomains = bool(hsts_include_subdomains)
        self.hsts_preload = bool(hsts_preload)
        self.content_type_nosniff = bool(content_type_nosniff)
        self.frame_options = frame_options or None
        self.xss_protection = bool(xss_protection)
        self.referrer_policy = referrer_policy.lower() if referrer_policy else None
        self.csp = csp or None
        self.permissions_policy = permissions_policy or None

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

    def apply(self, response: Any) -> Any:
        headers = response.headers
        for name, value in self._pairs:
            if name not in headers:
                headers.set(name, value)
        return response

    def finalize(self, request: Any, response: Any) -> None:
        """``app._finalizers`` hook: runs on every response the app writes."""
        self.apply(response)
        if self.drop_server_header:
            request.raw.responseHeaders.removeHeader(b"server")

    def __call__(self, request: Any, call_next: Any) -> Any:
        return then(call_next(request), self.apply)
