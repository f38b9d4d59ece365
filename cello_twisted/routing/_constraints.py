"""Parameter constraints: a failing constraint means "no match", never an error."""

from __future__ import annotations

import re


class Constraint:
    """Base class: ``matches(value)`` decides whether a path segment fits."""

    #: Higher ranks are tried first among a node's parameter children.
    rank = 1

    def matches(self, value: str) -> bool:
        raise NotImplementedError

    def key(self) -> str:
        """Identity used to detect duplicate routes."""
        return type(self).__name__


class IntConstraint(Constraint):
    def matches(self, value: str) -> bool:
        body = value[1:] if value[:1] in "+-" else value
        return body.isascii() and body.isdigit()


class UuidConstraint(Constraint):
    _re = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

    def matches(self, value: str) -> bool:
        return self._re.fullmatch(value) is not None


class AlphaConstraint(Constraint):
    def matches(self, value: str) -> bool:
        return value.isascii() and value.isalpha()


class AlphanumConstraint(Constraint):
    def matches(self, value: str) -> bool:
        return value.isascii() and value.isalnum()


class RegexConstraint(Constraint):
    """Full-match regular expression constraint."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._re = re.compile(pattern)

    def matches(self, value: str) -> bool:
        return self._re.fullmatch(value) is not None

    def key(self) -> str:
        return f"re:{self.pattern}"


class BothConstraints(Constraint):
    """A converter plus an explicit constraint on the same parameter: both must hold."""

    def __init__(self, first: Constraint, second: Constraint) -> None:
        self.first, self.second = first, second

    def matches(self, value: str) -> bool:
        return self.first.matches(value) and self.second.matches(value)

    def key(self) -> str:
        return f"{self.first.key()}&{self.second.key()}"


CONVERTERS: dict[str, type[Constraint]] = {
    "int": IntConstraint,
    "uuid": UuidConstraint,
    "alpha": AlphaConstraint,
    "alnum": AlphanumConstraint,
}
