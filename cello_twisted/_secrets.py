"""Short-secret policy shared by JWT, session and CSRF configs (SPEC §1 r8)."""

from __future__ import annotations

import warnings

from .errors import ConfigError, InsecureSecretWarning

MIN_SESSION_SECRET = 32
MIN_CSRF_SECRET = 32
HMAC_MINIMUMS = {"HS256": 32, "HS384": 48, "HS512": 64}


def secret_bytes(secret: object, what: str) -> bytes:
    """``str`` secrets are UTF-8 encoded, ``bytes`` used as is; empty is a ConfigError."""
    if isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray, memoryview)):
        key = bytes(secret)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(secret).__name__}")
    if not key:
        raise ConfigError(what, key, "a non-empty str or bytes")
    return key


def short_secret_problem(what: str, secret: bytes, minimum: int) -> str | None:
    """A one-line message when ``secret`` is shorter than ``minimum`` bytes, else None."""
    if len(secret) >= minimum:
        return None
    return f"{what} is {len(secret)} bytes; at least {minimum} bytes are required"


def check_secret(what: str, secret: bytes, minimum: int, stacklevel: int = 3) -> str | None:
    """Warn (InsecureSecretWarning) at construction for a short secret; return the message."""
    problem = short_secret_problem(what, secret, minimum)
    if problem is not None:
        warnings.warn(
            problem + " (production start-up refuses it)",
            InsecureSecretWarning,
            stacklevel=stacklevel,
        )
    return problem
