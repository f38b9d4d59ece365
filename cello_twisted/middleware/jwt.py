"""JwtAuth: Bearer-token authentication middleware and token service (SPEC §2.10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._validators import fail
from ..errors import InvalidTokenError, UnauthorizedError
from ..stores.tokens import MemoryTokenBlacklist
from ._chain import is_deferred
from ._jwt_config import ALGORITHMS, JwtConfig
from ._jwt_tokens import TokenService, Verified
from ._util import any_path_matches, is_preflight

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..request import Request
    from ..response import Response

__all__ = ["JwtAuth", "JwtConfig", "ALGORITHMS"]


def _claims_getter(claims: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: claims


def _raiser(exc: UnauthorizedError | None) -> Callable[[], Any]:
    def getter() -> Any:
        if exc is None:
            raise UnauthorizedError("Authentication required")
        raise InvalidTokenError(exc.reason, str(exc)) if isinstance(exc, InvalidTokenError) else exc

    return getter


def _on_feature_path(request: Request) -> bool:
    """Paths added by features (OpenAPI, docs, health, metrics) are skipped paths."""
    route = request.route
    return route is not None and route.feature_path


class JwtAuth(TokenService):
    """Verifies ``Authorization: Bearer <token>`` and exposes the claims.

    Strict (``required=True``): a missing or invalid token on a non-skipped path is
    a 401 and the handler is not called. Optional (``required=False``, the default
    of ``app.enable_jwt``) and skipped paths: a valid token populates the context,
    a missing/invalid one leaves none and ``request.jwt_claims`` raises a 401.
    """

    native = True

    def __init__(
        self,
        config: JwtConfig,
        *,
        required: bool = True,
        skip_paths: Sequence[str] = (),
        query_param: str | None = None,
        cookie: str | None = None,
        claims_key: str = "jwt_claims",
        user_key: str = "user",
        realm: str = "api",
    ) -> None:
        if not isinstance(config, JwtConfig):
            raise TypeError("JwtAuth needs a JwtConfig")
        if '"' in realm or "\\" in realm:
            fail(self, "realm", realm, "a realm without quotes or backslashes")
        self.config = config
        self.required = required
        self.skip_paths: list[str] = []
        for path in skip_paths:
            self.skip_path(path)
        self.query_param = query_param
        self.cookie = cookie
        self.claims_key = claims_key
        self.user_key = user_key
        self.realm = realm
        self._header = config.header_name.lower().encode("latin-1")
        prefix = config.header_prefix
        self._prefix = (prefix.lower() + " ") if prefix else ""
        self._init_tokens(config)

    def skip_path(self, path: str) -> JwtAuth:
        """Exclude ``path`` (prefix rule, SPEC §1 r6) from the token requirement."""
        if not isinstance(path, str) or not path.startswith("/"):
            fail(self, "skip_paths", path, "paths starting with '/'")
        self.skip_paths.append(path)
        return self

    # -- hooks used by App and the server -------------------------------------

    def secret_problems(self) -> list[str]:
        return self.config.secret_problems()

    def cluster_warning(self) -> str | None:
        if isinstance(self.blacklist, MemoryTokenBlacklist):
            return (
                "JwtAuth keeps revoked tokens in process memory: with several workers a token "
                "revoked in one worker stays valid in the others (use RedisTokenBlacklist)"
            )
        return None

    def durability_warning(self) -> str | None:
        """Production start-up warning when revocations live in process memory (§11 r7)."""
        if isinstance(self.blacklist, MemoryTokenBlacklist):
            return (
                "JwtAuth keeps revoked tokens in process memory (MemoryTokenBlacklist): revocations "
                "are lost on restart and kept per worker, so a revoked token is accepted again until "
                "it expires; use JwtConfig(blacklist=RedisTokenBlacklist(...))"
            )
        return None

    # -- request path ------------------------------------------------------------

    def _token_of(self, request: Request) -> str | None:
        values = request.raw.requestHeaders.getRawHeaders(self._header)
        if values:
            value: str = values[0].decode("latin-1").strip()
            prefix = self._prefix
            if not prefix:
                return value or None
            if value[: len(prefix)].lower() == prefix:
                token = value[len(prefix) :].strip()
                if token:
                    return token
        if self.query_param:
            query_token: str | None = request.query.get(self.query_param)
            if query_token:
                return query_token
        if self.cookie:
            cookie_token = request.cookies.get(self.cookie)
            if cookie_token:
                return cookie_token
        return None

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if request.method == "OPTIONS" and is_preflight(request):
            return call_next(request)
        clock = self.clock
        if clock is None:
            clock = request.app.clock
            self.bind_clock(clock)
        state = request.state
        state["jwt_realm"] = self.realm
        token = self._token_of(request)
        if token is None:
            return self._without(request, call_next, None)
        try:
            entry = self.verified(token)
            self.check(entry, False, clock.seconds())
        except InvalidTokenError as exc:
            return self._without(request, call_next, exc)
        revoked = self.blacklist.contains(entry.key)
        if is_deferred(revoked):
            return revoked.addCallback(self._after_lookup, request, call_next, token, entry)
        return self._after_lookup(revoked, request, call_next, token, entry)

    def _after_lookup(
        self, revoked: object, request: Request, call_next: Link, token: str, entry: Verified
    ) -> Response | Deferred[Response]:
        if revoked:
            return self._without(
                request, call_next, InvalidTokenError("revoked", "Token has been revoked")
            )
        claims = dict(entry.claims)  # handlers may mutate their copy, never the cache
        context = request.context
        context[self.claims_key] = claims
        if not context.get(self.user_key):
            context[self.user_key] = claims
        state = request.state
        state["jwt_claims"] = _claims_getter(claims)
        state["jwt_token"] = token
        return call_next(request)

    def _without(
        self, request: Request, call_next: Link, exc: UnauthorizedError | None
    ) -> Response | Deferred[Response]:
        """No valid token: 401 in strict mode, else proceed with no claims."""
        if (
            self.required
            and not (self.skip_paths and any_path_matches(self.skip_paths, request.path))
            and not _on_feature_path(request)
        ):
            request.refused_by = "jwt"  # counted by metrics as kind="jwt"
            raise exc if exc is not None else UnauthorizedError("Authentication required")
        request.state["jwt_claims"] = _raiser(exc)
        return call_next(request)

    def __repr__(self) -> str:
        mode = "strict" if self.required else "optional"
        return f"JwtAuth({self.config.algorithm}, {mode}, skip_paths={self.skip_paths!r})"
