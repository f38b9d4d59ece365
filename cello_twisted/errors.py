"""Exceptions that carry their own HTTP status, detail and headers."""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` ("Unknown" if none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def internal_error_body(exc: BaseException, debug: bool, request_id: str | None = None) -> dict[str, Any]:
    """The standard 500 body (SPEC §2.24 r3): exception details only in debug mode.

    ``request_id`` (when request IDs are on) is added so a client's report names the
    request (SPEC_OPERATIONS §5 r3).
    """
    body: dict[str, Any] = {"error": "Internal Server Error", "status": 500}
    if request_id is not None:
        body["request_id"] = request_id
    if debug:
        body["exception"] = type(exc).__name__
        body["detail"] = str(exc)
        body["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    return body


class HTTPError(Exception):
    """Raise from a handler, guard or middleware to answer with ``status``.

    The response body is the standard error body (SPEC §1 r5):
    ``{"error": <reason>, "status": <code>, "detail": <detail>}``; ``extra`` adds
    named fields (``"path"`` for 404, ``"retry_after"`` for 429).
    """

    def __init__(
        self,
        status: int = 500,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail if detail is not None else reason_phrase(status))
        self.status = int(status)
        self.status_code = self.status
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The standard error body for this error."""
        out: dict[str, Any] = {"error": reason_phrase(self.status), "status": self.status}
        if self.detail is not None:
            out["detail"] = self.detail
        out.update(self.extra)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.detail!r})"


class BadRequestError(HTTPError, ValueError):
    """A malformed request body, query or path (400)."""

    def __init__(self, detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(400, detail, headers)


class PayloadTooLargeError(HTTPError):
    """The request body is larger than the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds the limit of {limit} bytes")
        self.limit = limit


class GuardError(HTTPError):
    """A guard refused the request; ``status_code`` defaults to 403."""

    def __init__(self, message: str = "Access denied", status_code: int = 403) -> None:
        super().__init__(status_code, message)
        self.message = message


class ForbiddenError(GuardError):
    """403: the caller is known but not allowed."""

    def __init__(self, message: str = "Access denied") -> None:
        super().__init__(message, 403)


class UnauthorizedError(GuardError):
    """401: the caller must authenticate first."""

    def __init__(self, message: str = "Authentication required") -> None:
        super().__init__(message, 401)


class InvalidTokenError(UnauthorizedError):
    """A presented JWT was rejected; ``reason`` says why (SPEC §2.10 r8)."""

    REASONS = frozenset(
        {"expired", "invalid_signature", "malformed", "revoked", "wrong_type", "invalid_claims"}
    )

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"Invalid token: {reason}")
        self.reason = reason


class SessionTooLargeError(ValueError):
    """A session mutation would make the cookie larger than ``max_size``."""


class WebSocketClosed(ConnectionError):
    """Sending on a WebSocket that is already closed."""


class InsecureSecretWarning(UserWarning):
    """A secret is shorter than the minimum its algorithm needs (SPEC §1 r8)."""


class ResponseNotReady(RuntimeError):
    """The test client's request is still pending after flushing (advance ``app.clock``)."""


class ConfigError(ValueError):
    """Invalid configuration, raised when a config is built, never per request.

    Attributes:
        field: the offending setting, qualified by its class (``"RateLimitConfig.requests"``).
        value: the value that was refused.
        allowed: what the setting accepts (``"an int > 0"``).
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        super().__init__(f"{field}: {value!r} is not allowed; expected {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, Any, str]]:
        # Rebuilt from the fields (the default would pass the message as ``field``).
        return (type(self), (self.field, self.value, self.allowed))
