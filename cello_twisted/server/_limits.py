"""Connection limits and timeouts, validated once when a server is configured (SPEC_OPERATIONS §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import fields, frozen

from ..errors import ConfigError

#: The keyword names accepted by app.run(), app.site() and app.listen().
LIMIT_NAMES = (
    "header_timeout",
    "body_timeout",
    "keep_alive_timeout",
    "max_header_count",
    "max_header_bytes",
    "backlog",
)

_TIMEOUTS = ("header_timeout", "body_timeout", "keep_alive_timeout")


@frozen
class ConnectionLimits:
    """What one connection may cost: every timeout in seconds, header sizes, the accept queue.

    Args:
        header_timeout: request line + headers must be complete this long after their first byte.
        body_timeout: the longest gap allowed between two bytes of a request body.
        keep_alive_timeout: an idle keep-alive connection is closed after this long.
        max_header_count: header lines allowed per request.
        max_header_bytes: bytes allowed for request line + headers (and for the request line alone).
        backlog: the kernel's accept queue length for every listening socket.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 60.0
    max_header_count: int = 100
    max_header_bytes: int = 16384
    backlog: int = 1024

    def __attrs_post_init__(self) -> None:
        for name in _TIMEOUTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        for name in ("max_header_count", "max_header_bytes", "backlog"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.max_header_bytes < 64:
            raise ConfigError(f"max_header_bytes must be at least 64, got {self.max_header_bytes!r}")

    @property
    def shortest_timeout(self) -> float:
        """The connection timer never sleeps longer than this, so no deadline is missed."""
        return float(min(self.header_timeout, self.body_timeout, self.keep_alive_timeout))


DEFAULT_LIMITS = ConnectionLimits()


def split_limits(kwargs: Mapping[str, Any]) -> tuple[ConnectionLimits, dict[str, Any]]:
    """The limits named in ``kwargs`` (``None`` means the default) and the other keywords.

    Raises:
        ConfigError: a limit with a bad value.
    """
    given = {k: v for k, v in kwargs.items() if k in LIMIT_NAMES and v is not None}
    rest = {k: v for k, v in kwargs.items() if k not in LIMIT_NAMES}
    return (ConnectionLimits(**given) if given else DEFAULT_LIMITS), rest


def limit_defaults() -> dict[str, Any]:
    """Each limit's default, keyed by name (for usage texts and docs)."""
    return {f.name: f.default for f in fields(ConnectionLimits)}


def validate_max_concurrent(value: Any) -> int | None:
    """``App(max_concurrent_requests=)``: None (no shedding) or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"max_concurrent_requests must be None or an integer >= 1, got {value!r}")
    return value
