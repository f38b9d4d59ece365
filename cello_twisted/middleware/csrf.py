"""Csrf: double-submit cookie protection, HMAC-signed tokens when a secret is given (SPEC §2.13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from attrs import field, frozen

from .._secrets import MIN_CSRF_SECRET, check_secret, secret_bytes
from .._validators import cookie_same_site, non_empty_str, str_tuple
from ..errors import HTTPError
from ._chain import then
from ._csrf_binding import SessionBinding, find_sessions
from ._util import any_path_matches, is_preflight

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link, TableView
    from ..request import Request
    from ..response import Response

__all__ = ["CsrfConfig", "Csrf"]

_MAX_TOKEN = 256
FAILED = "CSRF token validation failed"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _optional_secret(secret: Any) -> bytes | None:
    return None if secret is None else secret_bytes(secret, "CsrfConfig.secret")


def _upper_frozenset(methods: Sequence[str]) -> frozenset[str]:
    return frozenset(m.upper() for m in str_tuple(methods))


@frozen(init=False, eq=False)
class CsrfConfig:
    """Where the token lives (cookie) and where unsafe requests must echo it (header or form).

    Raises:
        ConfigError: an empty secret or name, or a SameSite value outside Strict/Lax/None
            (``"None"`` only with ``secure=True``).
    """

    secret: bytes | None = field(converter=_optional_secret, repr=False)
    cookie_name: str = field(validator=non_empty_str)
    header_name: str = field(validator=non_empty_str)
    form_field: str = field(validator=non_empty_str)
    safe_methods: frozenset[str] = field(converter=_upper_frozenset)
    exempt_paths: tuple[str, ...] = field(converter=str_tuple)
    secure: bool = field(converter=bool)
    same_site: str = field()
    path: str = field()
    secret_problem: str | None = field(init=False, default=None, repr=False)

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
        same_site = cookie_same_site(type(self), same_site, bool(secure))
        self.__attrs_init__(
            secret, cookie_name, header_name, form_field, safe_methods, exempt_paths, secure, same_site, path
        )
        if self.secret is not None:
            problem = check_secret("CsrfConfig.secret", self.secret, MIN_CSRF_SECRET, stacklevel=3)
            object.__setattr__(self, "secret_problem", problem)

    def secret_problems(self) -> list[str]:
        return [self.secret_problem] if self.secret_problem else []


class Csrf:
    """Refuses unsafe requests whose submitted token does not equal the cookie token.

    With sessions enabled, tokens are bound to the session (SPEC_OPERATIONS §11 r3):
    a visitor with a session must submit a token issued to that session; one without
    gets a double-submit token, re-bound (new cookie) once a session is created.
    """

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, config: CsrfConfig | None = None) -> None:
        self.config = config if config is not None else CsrfConfig()
        self._header = self.config.header_name.lower().encode("latin-1")
        self._binding: SessionBinding | None = None

    def bind_app(self, app: TableView) -> None:
        """Bind tokens to the app's sessions when it has them (found when routes compile)."""
        sessions = find_sessions(app)
        self._binding = None if sessions is None else SessionBinding(sessions, self.config.secret)

    def secret_problems(self) -> list[str]:
        return self.config.secret_problems()

    # -- tokens ----------------------------------------------------------------------

    def _sign(self, value: str) -> str:
        secret = self.config.secret
        if secret is None:  # callers check first; this only narrows the type without assert
            raise RuntimeError("signing a CSRF token needs CsrfConfig(secret=...)")
        return _b64(hmac.new(secret, value.encode("ascii"), hashlib.sha256).digest())

    def new_token(self) -> str:
        value = _b64(secrets.token_bytes(32))
        return f"{value}.{self._sign(value)}" if self.config.secret is not None else value

    def is_valid(self, token: object) -> TypeGuard[str]:
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

    def _submitted(self, request: Request) -> str | None:
        values = request.raw.requestHeaders.getRawHeaders(self._header)
        if values:
            return str(values[0].decode("latin-1").strip())
        if request.is_form() or request.is_multipart():
            return _form_value(request, self.config.form_field)
        return None

    # -- request path ------------------------------------------------------------------

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if request.method == "OPTIONS" and is_preflight(request):
            return call_next(request)
        binding = self._binding
        if binding is not None:
            return self._bound(request, call_next, binding)
        config = self.config
        raw_cookie = request.cookies.get(config.cookie_name)
        cookie = raw_cookie if self.is_valid(raw_cookie) else None
        if request.method not in config.safe_methods and not (
            config.exempt_paths and any_path_matches(config.exempt_paths, request.path)
        ):
            submitted = self._submitted(request)
            if not (
                cookie is not None
                and self.is_valid(submitted)
                and hmac.compare_digest(submitted.encode("utf-8"), cookie.encode("utf-8"))
            ):
                request.refused_by = "csrf"  # counted by metrics as kind="csrf"
                raise HTTPError(403, FAILED)
        issued: list[str] = []

        def token() -> str:
            if cookie is not None:
                return cookie
            if not issued:
                issued.append(self.new_token())
            return issued[0]

        request.state["csrf_token"] = token
        return then(call_next(request), lambda resp: self._finish(resp, issued))

    def _finish(self, resp: Response, issued: list[str]) -> Response:
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

    # -- with sessions: tokens bound to the session --------------------------------------

    def _bound(self, request: Request, call_next: Link, binding: SessionBinding) -> Response | Deferred[Response]:
        config = self.config
        cookie = request.cookies.get(config.cookie_name)
        if request.method not in config.safe_methods and not (
            config.exempt_paths and any_path_matches(config.exempt_paths, request.path)
        ):
            submitted = self._submitted(request)
            sid = binding.incoming_id(request)
            if sid is not None:
                ok = binding.valid(submitted, sid)
            else:  # no session yet: the double-submit rules
                ok = (
                    self.is_valid(cookie)
                    and self.is_valid(submitted)
                    and hmac.compare_digest(submitted.encode("utf-8"), cookie.encode("utf-8"))
                )
            if not ok:
                raise HTTPError(403, FAILED)
        issued: list[tuple[str, str | None]] = []

        def fits(token: str | None, sid: str | None) -> TypeGuard[str]:
            return binding.valid(token, sid) if sid is not None else self.is_valid(token)

        def token() -> str:
            sid = binding.outgoing_id(request)
            if issued and issued[0][1] == sid:
                return issued[0][0]
            if fits(cookie, sid):
                return cookie
            fresh = binding.token(sid) if sid is not None else self.new_token()
            issued[:] = [(fresh, sid)]
            return fresh

        request.state["csrf_token"] = token

        def finish(resp: Response) -> Response:
            if not issued and cookie is None:
                return resp  # this client never used CSRF: nothing to (re-)bind
            sid = binding.outgoing_id(request)
            if issued and issued[0][1] == sid:
                return self._finish(resp, [issued[0][0]])
            if fits(cookie, sid):
                return resp
            # The session was created, changed or ended: re-bind the cookie token.
            return self._finish(resp, [binding.token(sid) if sid is not None else self.new_token()])

        return then(call_next(request), finish)


def _form_value(request: Request, field: str) -> str | None:
    """The form field from an urlencoded or multipart body (``request.form()``)."""
    try:
        value = request.form().get(field)
    except Exception:  # noqa: BLE001 - a malformed body is simply "no token" here
        return None
    return value if isinstance(value, str) else None
