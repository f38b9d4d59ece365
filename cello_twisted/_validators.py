"""attrs validators for the ``*Config`` classes: each refusal is a ConfigError naming the field."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from typing import Any, NoReturn

from attrs import Attribute

from ._headers import SAME_SITE, same_site_value
from .errors import ConfigError

Validator = Callable[[Any, "Attribute[Any]", Any], None]


def fail(owner: object, name: str, value: Any, allowed: str) -> NoReturn:
    """Raise ConfigError for ``<owner's class>.<name>``."""
    cls = owner if isinstance(owner, type) else type(owner)
    raise ConfigError(f"{cls.__name__}.{name}", value, allowed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not _is_int(value) or value <= 0:
        fail(instance, attribute.name, value, "an int > 0")


def non_negative_int(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not _is_int(value) or value < 0:
        fail(instance, attribute.name, value, "an int >= 0")


def positive_number(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not _is_number(value) or value <= 0:
        fail(instance, attribute.name, value, "a number > 0")


def non_negative_number(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not _is_number(value) or value < 0:
        fail(instance, attribute.name, value, "a number >= 0")


def non_empty_str(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        fail(instance, attribute.name, value, "a non-empty str")


def one_of(choices: Collection[Any]) -> Validator:
    """Accept exactly one of ``choices`` (listed in the error in the given order)."""
    allowed = "one of " + ", ".join(repr(c) for c in choices)

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value not in choices:
            fail(instance, attribute.name, value, allowed)

    return check


def str_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    """Converter: one string or an iterable of strings -> a tuple (a lone str is one item)."""
    return (value,) if isinstance(value, str) else tuple(value)


def cookie_same_site(owner: object, value: Any, secure: bool, name: str = "same_site") -> str:
    """The canonical SameSite value; ``"None"`` needs ``secure`` (browsers drop it otherwise)."""
    canonical = same_site_value(value)
    if canonical is None:
        fail(owner, name, value, "one of " + ", ".join(SAME_SITE.values()) + " (any case)")
    if canonical == "None" and not secure:
        fail(owner, name, value, 'Strict or Lax unless secure=True ("None" requires secure=True)')
    return canonical


def check_timeout(value: Any, field: str) -> float | None:
    """A timeout setting: None (no limit), or seconds > 0 (``math.inf``: never).

    Raises:
        ConfigError: the value is not a positive number.
    """
    if value is None:
        return None
    if not _is_number(value) or math.isnan(value) or value <= 0:
        raise ConfigError(field, value, "a number of seconds > 0 (math.inf: never) or None")
    return float(value)
