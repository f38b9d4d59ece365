"""The JWT token service: create, verify (with a verified-token cache), refresh, revoke."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import jwt as pyjwt
from twisted.internet.defer import Deferred

from ..errors import InvalidTokenError
from ..stores.tokens import MemoryTokenBlacklist
from ._chain import then
from ._jwt_cache import VerifiedCache
from ._jwt_config import JwtConfig

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

_NOT_CUSTOM = frozenset({"exp", "iat", "nbf", "jti", "token_type"})
MAX_TOKEN_LENGTH = 16384


class Verified:
    """A token whose signature, algorithm and static claims were checked once.

    Time (``exp``/``nbf``), type and revocation are still checked on every use.
    """

    __slots__ = ("token", "claims", "exp", "nbf", "starts", "key", "refresh", "access")

    def __init__(self, token: str, claims: dict[str, Any]) -> None:
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        iat = claims.get("iat")
        if not _is_number(exp) or not _optional_number(nbf) or not _optional_number(iat):
            raise InvalidTokenError("invalid_claims", "Invalid token: exp/nbf/iat must be finite numbers")
        self.token = token
        self.claims = claims
        self.exp = float(cast(float, exp))
        self.nbf = None if nbf is None else float(cast(float, nbf))
        self.starts = -math.inf if self.nbf is None else self.nbf  # nbf without the None test
        self.key = revocation_key(token, claims)
        self.refresh = claims.get("token_type") == "refresh"
        self.access = not self.refresh


def _optional_number(value: Any) -> bool:
    return value is None or _is_number(value)


def _is_number(value: Any) -> bool:
    """A finite int or float within float range (NaN would never expire, SPEC_OPERATIONS §11 r6)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def revocation_key(token: str, claims: Mapping[str, Any]) -> str:
    """``jti`` when the token has one, else the SHA-256 hex of the token (SPEC §2.10 r10)."""
    jti = claims.get("jti")
    if isinstance(jti, str) and jti:
        return "jti:" + jti
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _reason_of(exc: pyjwt.PyJWTError) -> str:
    if isinstance(
        exc, (pyjwt.InvalidSignatureError, pyjwt.InvalidAlgorithmError, pyjwt.InvalidKeyError)
    ):
        return "invalid_signature"
    if isinstance(exc, pyjwt.ExpiredSignatureError):
        return "expired"
    if isinstance(exc, pyjwt.DecodeError):
        return "malformed"
    return "invalid_claims"


class TokenService:
    """Token operations of ``JwtAuth`` (``app.jwt``); time comes from the bound app clock."""

    config: JwtConfig
    clock: IReactorTime | None = None

    def _init_tokens(self, config: JwtConfig) -> None:
        self.blacklist = (
            config.blacklist if config.blacklist is not None else MemoryTokenBlacklist()
        )
        self._cache: VerifiedCache[Verified] = VerifiedCache(config.cache_max_bytes)
        options: dict[str, Any] = {
            "verify_signature": True,
            "verify_exp": False,  # checked on every use, cached or not
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": config.audience is not None,
            "verify_iss": config.issuer is not None,
            "verify_sub": False,  # the seeds put int ids in "sub"
            "verify_jti": False,
            "require": ["exp"],
        }
        self._decode_kwargs = {
            "key": config.verifying_key,
            "algorithms": [config.algorithm],
            "options": options,
            "audience": config.audience,
            "issuer": config.issuer,
        }

    def bind_clock(self, clock: IReactorTime) -> None:
        """Use ``clock`` (the app's) for token times and the memory blacklist's expiry."""
        self.clock = clock
        if isinstance(self.blacklist, MemoryTokenBlacklist) and self.blacklist.clock is None:
            self.blacklist.clock = clock

    def now(self) -> float:
        if self.clock is None:  # not installed in an app yet: wall-clock time
            from twisted.internet import reactor

            # typing note: the reactor module is typed as a module, not as IReactorTime.
            return cast("IReactorTime", reactor).seconds()
        return self.clock.seconds()

    # -- creation ------------------------------------------------------------

    def create_token(self, claims: Mapping[str, Any], expires_in: int | None = None) -> str:
        """A signed access token: ``iat``, ``exp``, a random ``jti`` and iss/aud if configured."""
        ttl = self.config.expiration if expires_in is None else int(expires_in)
        return self._sign(claims, ttl, refresh=False)

    def create_refresh_token(self, claims: Mapping[str, Any]) -> str:
        return self._sign(claims, self.config.refresh_expiry, refresh=True)

    def create_token_pair(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "access_token": self.create_token(claims),
            "refresh_token": self.create_refresh_token(claims),
            "token_type": "Bearer",
            "expires_in": self.config.expiration,
        }

    def _sign(self, claims: Mapping[str, Any], ttl: int, refresh: bool) -> str:
        config = self.config
        if config.signing_key is None:
            raise RuntimeError(f"cannot create {config.algorithm} tokens without a private key")
        if not isinstance(claims, Mapping):
            raise TypeError("claims must be a mapping")
        now = int(self.now())
        payload = {k: v for k, v in claims.items() if k != "token_type"}
        payload.update(iat=now, exp=now + ttl, jti=secrets.token_urlsafe(16))
        if refresh:
            payload["token_type"] = "refresh"
        if config.issuer is not None:
            payload["iss"] = config.issuer
        if config.audience is not None:
            payload["aud"] = config.audience
        return pyjwt.encode(payload, config.signing_key, algorithm=config.algorithm)

    # -- verification ----------------------------------------------------------

    def verified(self, token: str) -> Verified:
        """Signature-checked token, from the cache when seen before (a dict lookup)."""
        entry = self._cache.get(token)
        if entry is not None:
            return entry
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("malformed", "Invalid token: too long")
        try:
            claims = pyjwt.decode(token, **self._decode_kwargs)
        except pyjwt.PyJWTError as exc:
            raise InvalidTokenError(_reason_of(exc)) from None
        except (ValueError, TypeError, RecursionError):  # odd inputs must never become 500s
            raise InvalidTokenError("malformed") from None
        entry = Verified(token, claims)
        self._cache.put(token, entry)  # bounded by entries and bytes; long tokens never kept
        return entry

    def check(self, entry: Verified, refresh: bool, now: float) -> None:
        """Per-use checks: type, expiry and not-before (SPEC §2.10 r7)."""
        leeway = self.config.leeway
        if entry.exp <= now - leeway:
            raise InvalidTokenError("expired", "Token has expired")
        if entry.nbf is not None and entry.nbf > now + leeway:
            raise InvalidTokenError("invalid_claims", "Token is not valid yet")
        if entry.refresh is not refresh:
            raise InvalidTokenError(
                "wrong_type", "Refresh token required" if refresh else "Access token required"
            )

    def _contains(self, key: str) -> bool | Deferred[bool]:
        found = self.blacklist.contains(key)
        return found if isinstance(found, Deferred) else bool(found)

    def decode(self, token: str, token_type: str = "access") -> dict[str, Any] | Deferred[dict[str, Any]]:
        """Claims of a valid token, or InvalidTokenError (a Deferred with a Redis blacklist)."""
        if not isinstance(token, str):
            raise InvalidTokenError("malformed")
        entry = self.verified(token)
        self.check(entry, token_type == "refresh", self.now())

        def decide(revoked: bool) -> dict[str, Any]:
            if revoked:
                raise InvalidTokenError("revoked", "Token has been revoked")
            return dict(entry.claims)

        return then(self._contains(entry.key), decide)

    def refresh(self, refresh_token: str, rotate: bool = True) -> Any:
        """A new token pair from a valid refresh token; with ``rotate`` the old one is revoked.

        Returns the pair, or a Deferred firing with it when a store answers asynchronously.
        """

        def issue(claims: dict[str, Any]) -> Any:
            custom = {k: v for k, v in claims.items() if k not in _NOT_CUSTOM}
            pair = self.create_token_pair(custom)
            if not rotate:
                return pair
            added = self.blacklist.add(revocation_key(refresh_token, claims), claims["exp"])
            return then(added, lambda _: pair)

        return then(self.decode(refresh_token, "refresh"), issue)

    def revoke(self, token: str) -> Any:
        """Revoke until its ``exp``; the signature must be valid (expired tokens accepted)."""
        if not isinstance(token, str):
            raise InvalidTokenError("malformed")
        entry = self.verified(token)
        return self.blacklist.add(entry.key, entry.exp)

    def is_revoked(self, token: str) -> bool | Deferred[bool]:
        entry = self.verified(token)
        return self._contains(entry.key)
