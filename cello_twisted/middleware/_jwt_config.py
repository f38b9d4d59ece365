"""JwtConfig: algorithm allow-list, key loading and lifetimes, validated when built (SPEC §2.10)."""

from __future__ import annotations

from typing import Any

from attrs import field, frozen
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from .._secrets import HMAC_MINIMUMS, check_secret, secret_bytes
from .._validators import non_empty_str, non_negative_int, non_negative_number, one_of, positive_int
from ..errors import ConfigError
from ._jwt_cache import MAX_BYTES as CACHE_MAX_BYTES

ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384")
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
_UNSET: Any = object()


def _redacted(value: Any) -> str:
    """What a ConfigError shows instead of key material: its kind and size only."""
    size = len(value) if isinstance(value, (str, bytes, bytearray)) else None
    return f"<{type(value).__name__}, {size} characters>" if size is not None else f"<{type(value).__name__}>"


def _bad(what: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"JwtConfig.{what}", _redacted(value), allowed)


def _looks_like_key(secret: bytes) -> bool:
    head = secret.lstrip()[:16]
    return head.startswith((b"-----BEGIN", b"ssh-", b"ecdsa-sha2-")) or b"PRIVATE KEY" in secret


def _pem(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray)) or not value:
        raise _bad(what, value, "a PEM key (str or bytes)")
    return bytes(value)


def _load_key(data: bytes, what: str) -> tuple[Any, bool]:
    """(key object, is_private) from PEM bytes; ConfigError when it is not a PEM key."""
    try:
        return load_pem_private_key(data, password=None), True
    except (ValueError, TypeError):
        pass
    try:
        return load_pem_public_key(data), False
    except (ValueError, TypeError):
        raise _bad(what, data, "a PEM public or private key") from None


def _check_family(algorithm: str, key: Any, what: str) -> None:
    if algorithm.startswith("RS"):
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            raise ConfigError(f"JwtConfig.{what}", type(key).__name__, f"an RSA key for {algorithm}")
        if key.key_size < 2048:
            raise ConfigError(
                f"JwtConfig.{what}", f"RSA-{key.key_size}", f"an RSA key of at least 2048 bits for {algorithm}"
            )
        return
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        raise ConfigError(f"JwtConfig.{what}", type(key).__name__, f"an EC key for {algorithm}")
    if not isinstance(key.curve, _CURVES[algorithm]):
        raise ConfigError(
            f"JwtConfig.{what}", key.curve.name, f"a {_CURVES[algorithm].name} key for {algorithm}"
        )


def _or_empty(value: str | None) -> str:
    return value or ""


def _algorithm(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


@frozen(init=False, eq=False)
class JwtConfig:
    """How tokens are signed, verified and how long they live.

    Args:
        secret: HMAC secret for HS*, or a PEM public/private key for RS*/ES*.
        algorithm: one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384.
        expiration: access-token lifetime in seconds (``expiry`` is an alias).
        issuer, audience: added to created tokens and required on verification.
        refresh_expiry: refresh-token lifetime in seconds.
        leeway: clock skew allowed on ``exp``/``nbf``, seconds.
        public_key, private_key: PEM keys for RS*/ES* (alternative to ``secret``).
        blacklist: revocation store (``add(key, expires_at)``, ``contains(key)``).
        cache_max_bytes: token text (and header values holding tokens) the verified-token
            cache may hold (tokens over 8 KiB are never cached); 0 turns the cache off.

    Raises:
        ConfigError: an unknown algorithm, a bad lifetime, or a secret/key that does not
            fit the algorithm (the error shows the key's size, never its content).
    """

    secret: Any = field(repr=False)
    algorithm: str = field(converter=_algorithm, validator=one_of(ALGORITHMS))
    expiration: int = field(validator=positive_int)
    issuer: str | None = field()
    audience: str | None = field()
    refresh_expiry: int = field(validator=positive_int)
    leeway: float = field(validator=non_negative_number)
    header_name: str = field(validator=non_empty_str)
    header_prefix: str = field(converter=_or_empty)
    public_key: Any = field(repr=False)
    private_key: Any = field(repr=False)
    blacklist: Any = field(repr=False)
    cache_max_bytes: int = field(default=CACHE_MAX_BYTES, validator=non_negative_int)
    # Derived from the key material in __init__ (set once, read-only afterwards).
    secret_problem: str | None = field(init=False, default=None, repr=False)
    signing_key: Any = field(init=False, default=None, repr=False)
    verifying_key: Any = field(init=False, default=None, repr=False)

    def __init__(
        self,
        secret: Any = None,
        algorithm: str = "HS256",
        expiration: int = _UNSET,
        *,
        expiry: int | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        refresh_expiry: int = 86400,
        leeway: int = 0,
        header_name: str = "Authorization",
        header_prefix: str = "Bearer",
        public_key: Any = None,
        private_key: Any = None,
        blacklist: Any = None,
        cache_max_bytes: int = CACHE_MAX_BYTES,
    ) -> None:
        if expiration is _UNSET:
            expiration = 3600 if expiry is None else expiry
        elif expiry is not None and expiry != expiration:
            raise ConfigError(
                "JwtConfig.expiry", expiry, f"the same value as expiration= ({expiration!r}) or only one of them"
            )
        self.__attrs_init__(
            secret=secret,
            algorithm=algorithm,
            expiration=expiration,
            issuer=issuer,
            audience=audience,
            refresh_expiry=refresh_expiry,
            leeway=leeway,
            header_name=header_name,
            header_prefix=header_prefix,
            public_key=public_key,
            private_key=private_key,
            blacklist=blacklist,
            cache_max_bytes=cache_max_bytes,
        )
        if self.algorithm.startswith("HS"):
            self._init_hmac()
        else:
            self._init_asymmetric()

    @property
    def expiry(self) -> int:
        return self.expiration

    def _derived(self, signing: Any, verifying: Any, problem: str | None = None) -> None:
        # Frozen: the derived values are set once, here, as attrs' own __init__ would.
        object.__setattr__(self, "signing_key", signing)
        object.__setattr__(self, "verifying_key", verifying)
        object.__setattr__(self, "secret_problem", problem)

    def _init_hmac(self) -> None:
        for what in ("public_key", "private_key"):
            if getattr(self, what) is not None:
                raise _bad(what, getattr(self, what), f"None: {self.algorithm} is an HMAC algorithm (give secret=)")
        if self.secret is None:
            raise ConfigError("JwtConfig.secret", None, f"a non-empty str or bytes for {self.algorithm}")
        key = secret_bytes(self.secret, "JwtConfig.secret")
        if _looks_like_key(key):
            raise _bad("secret", key, f"an HMAC secret for {self.algorithm}, not a PEM/SSH key (use RS*/ES* for keys)")
        problem = check_secret(
            f"JwtConfig.secret ({self.algorithm})", key, HMAC_MINIMUMS[self.algorithm], stacklevel=4
        )
        self._derived(key, key, problem)

    def _init_asymmetric(self) -> None:
        private = public = None
        if self.secret is not None:
            key, is_private = _load_key(_pem(self.secret, "secret"), "secret")
            _check_family(self.algorithm, key, "secret")
            if is_private:
                private = key
            else:
                public = key
        if self.private_key is not None:
            key, is_private = _load_key(_pem(self.private_key, "private_key"), "private_key")
            if not is_private:
                raise _bad("private_key", self.private_key, "a PEM private key (this is a public key)")
            _check_family(self.algorithm, key, "private_key")
            private = key
        if self.public_key is not None:
            key, is_private = _load_key(_pem(self.public_key, "public_key"), "public_key")
            if is_private:
                key = key.public_key()
            _check_family(self.algorithm, key, "public_key")
            public = key
        if private is None:
            if public is None:
                raise ConfigError(
                    "JwtConfig.secret", None, f"a PEM key for {self.algorithm}: secret=, public_key= or private_key="
                )
            self._derived(None, public)
        else:
            self._derived(private, public if public is not None else private.public_key())

    def secret_problems(self) -> list[str]:
        return [self.secret_problem] if self.secret_problem else []

    def __repr__(self) -> str:
        return f"JwtConfig(algorithm={self.algorithm!r}, expiration={self.expiration}, issuer={self.issuer!r})"
