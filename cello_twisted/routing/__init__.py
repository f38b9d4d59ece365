"""Route path constraints for ``constraints={"param": ...}``."""

from ._constraints import (
    AlphaConstraint,
    AlphanumConstraint,
    Constraint,
    IntConstraint,
    RegexConstraint,
    UuidConstraint,
)

__all__ = [
    "AlphaConstraint",
    "AlphanumConstraint",
    "Constraint",
    "IntConstraint",
    "RegexConstraint",
    "UuidConstraint",
]
