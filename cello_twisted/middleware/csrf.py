"""Csrf: double-submit cookie protection, HMAC-signed tokens when a secret is given (SPEC §2.13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from .._secrets import MIN_CSRF_SECRET, check_secret, secret_bytes
from ..errors import HTTPError
from ._chain import then
from ._util import any_path_matches, is_preflight

__all__ = ["CsrfConfig", "Csrf"]

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
_MAX_TOKEN = 256
FAILED = "CSRF token validation failed"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CsrfConfig:
    """Where the token lives (cookie) and where unsafe requests must echo it (header or form)."""

    def __init__(
        self,
        secret: Any = None,
        cookie_name: str = "_csrf",
        header_name: str = "X-CSRF-Token",
        form_field: str = "_csrf",
        safe_methods: Sequence[str] = ("GET", "HEAD", "OPTIONS", "TRACE"),
        exempt_paths: Sequence[str] = (),
        secure: bool = True,
        same_site: str = "Lax",
        path: str = "/",
    ) -> None:
        self.secret = None if secret is None else secret_bytes(secret, "CsrfConfig.secret")
        self.secret_problem = (
            None
            if self.secret is None
            else check_secret("CsrfConfig.secret", self.secret, MIN_CSRF_SECRET, stacklevel=3)
        )
        if not cookie_name or not header_name or not form_field:
            raise ValueError(
                "CsrfConfig: cookie_name, header_name and form_field must be non-empty"
            )
        self.cookie_name = cookie_name
        self.header_name = header_name
        self.form_field = form_field
        self.safe_methods = frozenset(m.upper() for m in safe_methods)
        self.exempt_paths = tuple(exempt_paths)
        self.secure = bool(secure)
        canonical = _SAME_SITE.get(str(same_site).lower())
        if canonical is None:
            raise ValueError(f"same_site must be Strict, Lax or None, not {same_site!r}")
        if canonical == "None" and not self.secure:
            raise ValueError('same_site="None" requires secure=True')
        self.same_site = canonical
        self.path = path

    def secret_problems(self) -> list[str]:
        return [self.secret_problem] if self.secret_problem else []


class Csrf:
    """Refuses unsafe requests whose submitted token does not equal the cookie token."""

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, config: CsrfConfig | None = None) -> None:
        self.config = config if config is not None else CsrfConfig()
        self._header = self.config.header_name.lower().encode("latin-1")

    def secret_problems(self) -> list[str]:
        return self.config.secret_problems()

    # -- tokens ----------------------------------------------------------------------

    def _sign(self, value: str) -> str:
        return _b64(hmac.new(self.config.secret, value.encode("ascii"), hashlib.sha256).digest())  # type: ignore[arg-type]

    def new_token(self) -> str:
        value = _b64(secrets.token_bytes(32))
        return f"{value}.{self._sign(value)}" if self.config.secret is not None else value

    def is_valid(self, token: Any) -> bool:
        """Well-formed and, with a secret, correctly signed (constant-time compare)."""
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            return False
        if self.config.secret is None:
            return token.isascii() and "." not in token
        value, dot, signature = token.partition(".")
        if not dot or not value or not value.isascii():
            return False
        return hmac.compare_digest(
            signature.encode("ascii", "replace"), self._sign(value).encode("ascii")
        )

    def _submitted(self, request: Any) -> str | None:
        values = request.raw.requestHeaders.getRawHeaders(self._header)
        if values:
            return values[0].decode("latin-1").strip()
        if request.is_form() or request.is_multipart():
            return _form_value(request, self.config.form_field)
        return None

    # -- request path ------------------------------------------------------------------

    def __call__(self, request: Any, call_next: Any) -> Any:
        if request.method == "OPTIONS" and is_preflight(request):
            return call_next(request)
        config = self.config
        cookie = request.cookies.get(config.cookie_name)
        cookie_ok = self.is_valid(cookie)
        if request.method not in config.safe_methods and not (
            config.exempt_paths and any_path_matches(config.exempt_paths, request.path)
        ):
            submitted = self._submitted(request)
            if not (
                cookie_ok
                and self.is_valid(submitted)
                and hmac.compare_digest(submitted.encode("utf-8"), cookie.encode("utf-8"))  # type: ignore[union-attr]
            ):
                raise HTTPError(403, FAILED)
        issued: list[str] = []

        def token() -> str:
            if cookie_ok:
                return cookie  # type: ignore[return-value]
            if not issued:
                issued.append(self.new_token())
            return issued[0]

        request.state["csrf_token"] = token
        return then(call_next(request), lambda resp: self._finish(resp, issued))

    def _finish(self, resp: Any, issued: list[str]) -> Any:
        if issued:
            config = self.config
            resp.set_cookie(
                config.cookie_name,
                issued[0],
                path=config.path,
                secure=config.secure,
                httponly=False,
                samesite=config.same_site,
            )
        return resp


def _form_value(request: Any, field: str) -> str | None:
    """The form field from an urlencoded or multipart body (``request.form()``)."""
    try:
        value = request.form().get(field)
    except Exception:  # noqa: BLE001 - a malformed body is simply "no token" here
        return None
    return value if isinstance(value, str) else None
