"""JwtAuth: Bearer-token authentication middleware and token service (SPEC §2.10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from .._validators import fail
from ..errors import InvalidTokenError, UnauthorizedError
from ..response import Response
from ..stores.tokens import MemoryTokenBlacklist
from ..wire._headers import request_header, wire_name
from ._chain import guard_native, is_deferred, recover
from ._jwt_config import ALGORITHMS, JwtConfig
from ._jwt_tokens import TokenService, Verified
from ._util import any_path_matches, is_preflight

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import AppContext, ErrorHandler, Link, RouteView
    from ..request import Request

__all__ = ["JwtAuth", "JwtConfig", "ALGORITHMS"]


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


# Overriding any of these in a subclass turns the inline fast path of ``link`` off.
_HOT_METHODS = ("__call__", "_token_of", "verified", "check", "_after_lookup")


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
        self._canonical_prefix = (prefix + " ") if prefix else ""
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

    def link(
        self, call_next: Link, on_error: ErrorHandler, context: AppContext, route: RouteView | None = None
    ) -> Link:
        """This layer in front of ``call_next``, with its own error guard: the hot path.

        ``compose`` calls this once per chain. The common case (a ``header_prefix``
        token in the header, already verified and cached, in date, an access token,
        absent from the in-memory blacklist) is answered inline, mostly without even
        decoding the header (see ``_entry_of_header``); everything else, including
        preflights, query and cookie tokens, first sightings and other blacklists,
        goes through ``__call__`` unchanged.
        """
        clock = self.clock
        if clock is None:  # the app's clock, resolved when the routes compile
            clock = context.clock
            self.bind_clock(clock)
        seconds = clock.seconds
        slow = self.__call__
        blacklist = self.blacklist
        fast = (
            bool(self._prefix)
            and type(blacklist).contains is MemoryTokenBlacklist.contains
            and all(getattr(type(self), name) is getattr(JwtAuth, name) for name in _HOT_METHODS)
        )
        if not fast:
            return guard_native(self, call_next, on_error)
        revoked_until = cast(MemoryTokenBlacklist, blacklist).revoked_until
        header = wire_name(self.config.header_name)
        cached = self._cache.get
        entry_of_header = self._entry_of_header
        leeway = self.config.leeway
        claims_key, user_key, realm = self.claims_key, self.user_key, self.realm

        def authenticated(request: Request) -> Response | Deferred[Response]:
            try:
                if request.method != "OPTIONS":
                    values = request_header(request.raw, header)  # one dict lookup
                    if values:
                        raw = values[0]
                        entry = cached(raw)  # this exact header value, verified before
                        if entry is None:
                            entry = entry_of_header(raw)
                        if entry is not None and entry.access:
                            now = seconds()  # the checks of TokenService.check, inline
                            if (
                                entry.exp > now - leeway
                                and entry.starts <= now + leeway
                                and revoked_until(entry.key) is None
                            ):
                                claims = entry.claims.copy()  # handlers may mutate their copy, never the cache
                                found = request.context
                                found[claims_key] = claims
                                if not found.get(user_key):
                                    found[user_key] = claims
                                request.jwt_outcome = (claims, entry.token, realm)  # see _after_lookup
                                return call_next(request)  # a guarded link: never raises
                result = slow(request, call_next)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                return on_error(request, exc)
            if type(result) is not Response and is_deferred(result):
                return result.addErrback(recover, request, on_error)
            return result

        return authenticated

    def _entry_of_header(self, raw: bytes) -> Verified | None:
        """The cached entry for a header value not seen verbatim yet (None: not cached).

        Parses as ``_token_of`` does. The canonical form (the configured prefix, one
        space, the token) is then cached under the header bytes too, so the next
        request finds it without decoding; one such form per token, so differently
        spaced or cased copies of one token cannot crowd the cache.
        """
        decoded = raw.decode("latin-1")
        value = decoded.strip()
        prefix = self._prefix
        if value[: len(prefix)].lower() != prefix:
            return None
        token = value[len(prefix) :].strip()
        entry = self._cache.get(token)
        if entry is not None and decoded == self._canonical_prefix + token:
            self._cache.put(raw, entry)
        return entry

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
        # This layer's outcome, read by request.jwt_claims / jwt_token and by the 401
        # responses (realm): (claims or a callable raising the 401, token, realm).
        request.jwt_outcome = (claims, token, self.realm)
        return call_next(request)

    def _without(
        self, request: Request, call_next: Link, exc: UnauthorizedError | None
    ) -> Response | Deferred[Response]:
        """No valid token: 401 in strict mode, else proceed with no claims."""
        earlier = request.jwt_outcome  # an outer JwtAuth's token stays request.jwt_token
        request.jwt_outcome = (_raiser(exc), earlier[1] if earlier else None, self.realm)
        if (
            self.required
            and not (self.skip_paths and any_path_matches(self.skip_paths, request.path))
            and not _on_feature_path(request)
        ):
            request.refused_by = "jwt"  # counted by metrics as kind="jwt"
            raise exc if exc is not None else UnauthorizedError("Authentication required")
        return call_next(request)

    def __repr__(self) -> str:
        mode = "strict" if self.required else "optional"
        return f"JwtAuth({self.config.algorithm}, {mode}, skip_paths={self.skip_paths!r})"
