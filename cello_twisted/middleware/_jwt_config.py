"""JwtConfig: algorithm allow-list, key loading and lifetimes, validated when built (SPEC §2.10)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from .._secrets import HMAC_MINIMUMS, check_secret, secret_bytes

ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384")
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
_UNSET: Any = object()


def _lifetime(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"JwtConfig.{name} must be a positive int (seconds), not {value!r}")
    return value


def _looks_like_key(secret: bytes) -> bool:
    head = secret.lstrip()[:16]
    return head.startswith((b"-----BEGIN", b"ssh-", b"ecdsa-sha2-")) or b"PRIVATE KEY" in secret


def _pem(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray)) or not value:
        raise ValueError(f"JwtConfig.{what} must be a PEM key (str or bytes)")
    return bytes(value)


def _load_key(data: bytes, what: str) -> tuple[Any, bool]:
    """(key object, is_private) from PEM bytes; ValueError when it is not a PEM key."""
    try:
        return load_pem_private_key(data, password=None), True
    except (ValueError, TypeError):
        pass
    try:
        return load_pem_public_key(data), False
    except (ValueError, TypeError):
        raise ValueError(f"JwtConfig.{what} is not a PEM public or private key") from None


def _check_family(algorithm: str, key: Any, what: str) -> None:
    if algorithm.startswith("RS"):
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            raise ValueError(f"{algorithm} needs an RSA key; JwtConfig.{what} is not one")
        if key.key_size < 2048:
            raise ValueError(f"{algorithm} needs an RSA key of at least 2048 bits")
        return
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        raise ValueError(f"{algorithm} needs an EC key; JwtConfig.{what} is not one")
    if not isinstance(key.curve, _CURVES[algorithm]):
        raise ValueError(f"{algorithm} needs a {_CURVES[algorithm].name} key, not {key.curve.name}")


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
        cache_max_bytes: token text the verified-token cache may hold (tokens over
            8 KiB are never cached); 0 turns the cache off.
    """

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
        cache_max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if not isinstance(algorithm, str) or algorithm.upper() not in ALGORITHMS:
            raise ValueError(
                f"unsupported JWT algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
            )
        self.algorithm = algorithm = algorithm.upper()
        if expiration is _UNSET:
            expiration = 3600 if expiry is None else expiry
        elif expiry is not None and expiry != expiration:
            raise ValueError(
                "JwtConfig: expiry and expiration are aliases; give one (or equal values)"
            )
        self.expiration = _lifetime("expiration", expiration)
        self.refresh_expiry = _lifetime("refresh_expiry", refresh_expiry)
        if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or leeway < 0:
            raise ValueError("JwtConfig.leeway must be a number >= 0")
        self.leeway = leeway
        self.issuer = issuer
        self.audience = audience
        if not header_name or not isinstance(header_name, str):
            raise ValueError("JwtConfig.header_name must be a non-empty str")
        self.header_name = header_name
        self.header_prefix = header_prefix or ""
        self.blacklist = blacklist
        if isinstance(cache_max_bytes, bool) or not isinstance(cache_max_bytes, int) or cache_max_bytes < 0:
            from ..errors import ConfigError

            raise ConfigError(f"JwtConfig.cache_max_bytes must be an int >= 0, not {cache_max_bytes!r}")
        self.cache_max_bytes = cache_max_bytes
        self.secret_problem: str | None = None
        self.signing_key: Any = None
        self.verifying_key: Any = None
        if algorithm.startswith("HS"):
            self._init_hmac(secret, public_key, private_key)
        else:
            self._init_asymmetric(secret, public_key, private_key)

    @property
    def expiry(self) -> int:
        return self.expiration

    def _init_hmac(self, secret: Any, public_key: Any, private_key: Any) -> None:
        if public_key is not None or private_key is not None:
            raise ValueError(f"{self.algorithm} is an HMAC algorithm: give secret=, not PEM keys")
        if secret is None:
            raise ValueError(f"{self.algorithm} needs secret=")
        key = secret_bytes(secret, "JwtConfig.secret")
        if _looks_like_key(key):
            raise ValueError(
                f"{self.algorithm} secret looks like a PEM/SSH key; use an RS*/ES* algorithm for keys"
            )
        minimum = HMAC_MINIMUMS[self.algorithm]
        self.secret_problem = check_secret(
            f"JwtConfig.secret ({self.algorithm})", key, minimum, stacklevel=4
        )
        self.signing_key = self.verifying_key = key

    def _init_asymmetric(self, secret: Any, public_key: Any, private_key: Any) -> None:
        private = public = None
        if secret is not None:
            key, is_private = _load_key(_pem(secret, "secret"), "secret")
            _check_family(self.algorithm, key, "secret")
            if is_private:
                private = key
            else:
                public = key
        if private_key is not None:
            key, is_private = _load_key(_pem(private_key, "private_key"), "private_key")
            if not is_private:
                raise ValueError("JwtConfig.private_key is a public key")
            _check_family(self.algorithm, key, "private_key")
            private = key
        if public_key is not None:
            key, is_private = _load_key(_pem(public_key, "public_key"), "public_key")
            if is_private:
                key = key.public_key()
            _check_family(self.algorithm, key, "public_key")
            public = key
        if private is None and public is None:
            raise ValueError(
                f"{self.algorithm} needs a PEM key: secret=, public_key= or private_key="
            )
        self.signing_key = private
        self.verifying_key = public if public is not None else private.public_key()

    def secret_problems(self) -> list[str]:
        return [self.secret_problem] if self.secret_problem else []

    def __repr__(self) -> str:
        return f"JwtConfig(algorithm={self.algorithm!r}, expiration={self.expiration}, issuer={self.issuer!r})"
