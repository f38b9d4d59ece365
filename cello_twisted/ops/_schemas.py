"""JSON Schemas for the API description: models through msgspec or pydantic, path
parameters from route constraints.

No schema generator lives here: model schemas come from ``msgspec.json.schema_components``
(dataclasses, attrs classes, TypedDicts, Structs) and pydantic's ``models_json_schema``
(pydantic models), both JSON Schema 2020-12 as OpenAPI 3.1 expects. This module only
asks them, once for all the types of a document, and merges their components.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Any, Literal

from ..routing import (
    AlphaConstraint,
    AlphanumConstraint,
    Constraint,
    IntConstraint,
    RegexConstraint,
    UuidConstraint,
)
from ._body import model_kind, require_msgspec

REF = "#/components/schemas/{name}"
Mode = Literal["validation", "serialization"]  # request bodies / responses

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The standard error body; 422 adds `errors`, 404 `path`, 429 `retry_after`.",
    "required": ["error", "status"],
    "properties": {
        "error": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


class ModelSchemas:
    """Schemas of every body/response type of one document, with shared components.

    ``mode`` is ``"validation"`` for request bodies and ``"serialization"`` for
    responses (pydantic may describe the two differently; msgspec does not).
    """

    def __init__(self, entries: Iterable[tuple[Any, Mode]]) -> None:
        self.components: dict[str, Any] = {}
        self._schemas: dict[tuple[Any, Mode], dict[str, Any]] = {}
        plain: list[tuple[Any, Mode]] = []
        pydantic: list[tuple[Any, Mode]] = []
        for tp, mode in dict.fromkeys(entries):
            if model_kind(tp) == "pydantic":
                pydantic.append((tp, mode))
            else:
                plain.append((tp, mode))
        if plain:
            self._add_msgspec(plain)
        if pydantic:
            self._add_pydantic(pydantic)

    def schema(self, tp: Any, mode: Mode) -> dict[str, Any]:
        return self._schemas[(tp, mode)]

    def _merge(self, components: dict[str, Any], origin: str) -> None:
        for name, schema in components.items():
            known = self.components.get(name)
            if known is not None and known != schema:
                raise ValueError(
                    f"two different models are both named {name!r} in the API description "
                    f"({origin}); rename one"
                )
            self.components[name] = schema

    def _add_msgspec(self, entries: list[tuple[Any, Mode]]) -> None:
        msgspec = require_msgspec("the API description")
        types = list(dict.fromkeys(tp for tp, _ in entries))
        schemas, components = msgspec.json.schema_components(types, ref_template=REF)
        by_type = dict(zip(types, schemas, strict=True))
        for tp, mode in entries:
            self._schemas[(tp, mode)] = by_type[tp]
        self._merge(components, "msgspec")

    def _add_pydantic(self, entries: list[tuple[Any, Mode]]) -> None:
        from pydantic.json_schema import models_json_schema

        models: list[tuple[Any, Mode]] = []
        for tp, mode in entries:
            item = _list_item(tp)
            models.append((item if item is not None else tp, mode))
        models = list(dict.fromkeys(models))
        refs, top = models_json_schema(models, ref_template=REF.replace("{name}", "{model}"))
        for tp, mode in entries:
            item = _list_item(tp)
            if item is None:
                self._schemas[(tp, mode)] = refs[(tp, mode)]
            else:
                self._schemas[(tp, mode)] = {"type": "array", "items": refs[(item, mode)]}
        self._merge(top.get("$defs", {}), "pydantic")


def _list_item(tp: Any) -> Any:
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0]
    return None


# -- path parameters ---------------------------------------------------------------------------

_FIXED: dict[type, dict[str, Any]] = {
    IntConstraint: {"type": "integer"},
    UuidConstraint: {"type": "string", "format": "uuid"},
    AlphaConstraint: {"type": "string", "pattern": "^[A-Za-z]+$"},
    AlphanumConstraint: {"type": "string", "pattern": "^[A-Za-z0-9]+$"},
}

# Python-only regex syntax with no ECMA-262 spelling: inline flags, \A \Z, comments,
# conditionals, possessive quantifiers, atomic groups and named backreferences.
_PYTHON_ONLY = re.compile(r"\(\?[aiLmsux-]|\\[AZ]|\(\?#|\(\?\(|\(\?>|[*+?}]\+|\(\?P=")
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def ecma_pattern(pattern: str) -> str | None:
    """``pattern`` (a Python full-match regex) as an anchored regex that ECMA-262 and
    Python read alike, or None when it uses syntax ECMA-262 lacks (the parameter is
    then a plain string). Named groups become plain groups: the two dialects spell
    names differently, and matching does not depend on them."""
    if _PYTHON_ONLY.search(pattern):
        return None
    return "^(?:" + _NAMED_GROUP.sub("(?:", pattern) + ")$"


def param_schema(constraint: Constraint | None) -> dict[str, Any]:
    """The schema of a ``{name}`` segment: from its converter/constraint, else a string."""
    if constraint is None:
        return {"type": "string", "minLength": 1}
    fixed = _FIXED.get(type(constraint))
    if fixed is not None:
        return dict(fixed)
    if isinstance(constraint, RegexConstraint):
        pattern = ecma_pattern(constraint.pattern)
        return {"type": "string", "pattern": pattern} if pattern else {"type": "string", "minLength": 1}
    first, second = getattr(constraint, "first", None), getattr(constraint, "second", None)
    if isinstance(first, Constraint) and isinstance(second, Constraint):
        # a converter plus an explicit constraint: both hold
        one, two = param_schema(first), param_schema(second)
        if one.get("type") != "string":
            return one
        if two.get("type") != "string":
            return two
        patterns = [s["pattern"] for s in (one, two) if "pattern" in s]
        if len(patterns) == 2:
            return {"type": "string", "allOf": [{"pattern": p} for p in patterns]}
        return one if "pattern" in one or "format" in one else two
    return {"type": "string", "minLength": 1}
