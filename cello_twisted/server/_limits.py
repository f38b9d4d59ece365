"""Connection limits and timeouts, validated once when a server is configured (SPEC_OPERATIONS §4)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from attrs import Attribute, field, frozen

from .._validators import fail, positive_int, positive_number

#: The keyword names accepted by app.run(), app.site() and app.listen().
LIMIT_NAMES = (
    "header_timeout",
    "body_timeout",
    "keep_alive_timeout",
    "max_header_count",
    "max_header_bytes",
    "backlog",
    "http_parser",
)

#: ``http_parser`` values: llhttp through httptools (the fast layer) or Twisted's own parser.
HTTP_PARSERS = ("httptools", "twisted")
#: The environment variable that picks the default parser (CI runs the suite under both).
PARSER_ENV = "CELLO_HTTP_PARSER"


def httptools_available() -> bool:
    """Is the fast layer's parser importable?"""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def default_parser() -> str:
    """``$CELLO_HTTP_PARSER`` if set, else httptools when it is importable, else twisted."""
    chosen = os.environ.get(PARSER_ENV, "").strip().lower()
    if chosen in HTTP_PARSERS:
        return chosen
    return "httptools" if httptools_available() else "twisted"


def _parser(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if value not in HTTP_PARSERS:
        fail(instance, attribute.name, value, "'httptools' or 'twisted'")
    if value == "httptools" and not httptools_available():
        fail(instance, attribute.name, value, "'twisted' (httptools is not installed)")


def _seconds(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    positive_number(instance, attribute, value)
    if math.isnan(value):
        fail(instance, attribute.name, value, "a number of seconds > 0")


def _header_bytes(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    positive_int(instance, attribute, value)
    if value < 64:
        fail(instance, attribute.name, value, "an int >= 64 (a request line must fit)")


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
        http_parser: ``"httptools"`` (llhttp; the default when installed) or ``"twisted"``
            (Twisted's own ``HTTPChannel``); both enforce the same rules.

    Raises:
        ConfigError: a value out of range (naming the field and what is allowed).
    """

    header_timeout: float = field(validator=_seconds, default=10.0)
    body_timeout: float = field(validator=_seconds, default=30.0)
    keep_alive_timeout: float = field(validator=_seconds, default=60.0)
    max_header_count: int = field(default=100, validator=positive_int)
    max_header_bytes: int = field(default=16384, validator=_header_bytes)
    backlog: int = field(default=1024, validator=positive_int)
    http_parser: str = field(factory=default_parser, validator=_parser)

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

