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
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ..routing import (
    AlphaConstraint,
    AlphanumConstraint,
    Constraint,
    IntConstraint,
    RegexConstraint,
    UuidConstraint,
)
from ..routing._constraints import BothConstraints
from ._body import model_kind, require_msgspec

REF = "#/components/schemas/{name}"
Mode = Literal["validation", "serialization"]  # request bodies / responses
JsonSchema = dict[str, Any]

ERROR_SCHEMA: JsonSchema = {
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
    ``reserved`` components (the error body) keep their names; a model whose
    component name is already taken by a different schema (a pydantic model and a
    dataclass both called ``Item``) is listed as ``Item_2``, its references with it.
    """

    def __init__(self, entries: Iterable[tuple[Any, Mode]], reserved: Mapping[str, JsonSchema] | None = None) -> None:
        self.components: dict[str, JsonSchema] = dict(reserved or {})
        self._schemas: dict[tuple[Any, Mode], JsonSchema] = {}
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

    def schema(self, tp: Any, mode: Mode) -> JsonSchema:
        return self._schemas[(tp, mode)]

    def _merge(self, schemas: dict[tuple[Any, Mode], JsonSchema], components: Mapping[str, JsonSchema]) -> None:
        """Add one library's output, renaming components whose names are taken."""
        renames: dict[str, str] = {}
        for name, schema in components.items():
            known = self.components.get(name)
            if known is not None and known != schema:
                renames[name] = _free_name(name, self.components, components)
        if renames:
            refs = {REF.format(name=old): REF.format(name=new) for old, new in renames.items()}
            schemas = {key: _renamed(schema, refs) for key, schema in schemas.items()}
            components = {renames.get(name, name): _renamed(schema, refs) for name, schema in components.items()}
        self._schemas.update(schemas)
        self.components.update(components)

    def _add_msgspec(self, entries: list[tuple[Any, Mode]]) -> None:
        msgspec = require_msgspec("the API description")
        types = list(dict.fromkeys(tp for tp, _ in entries))
        schemas, components = msgspec.json.schema_components(types, ref_template=REF)
        by_type = dict(zip(types, schemas, strict=True))
        self._merge({(tp, mode): by_type[tp] for tp, mode in entries}, components)

    def _add_pydantic(self, entries: list[tuple[Any, Mode]]) -> None:
        from pydantic.json_schema import models_json_schema

        models: list[tuple[Any, Mode]] = []
        for tp, mode in entries:
            item = _list_item(tp)
            models.append((item if item is not None else tp, mode))
        models = list(dict.fromkeys(models))
        refs, top = models_json_schema(models, ref_template=REF.replace("{name}", "{model}"))
        schemas: dict[tuple[Any, Mode], JsonSchema] = {}
        for tp, mode in entries:
            item = _list_item(tp)
            if item is None:
                schemas[(tp, mode)] = dict(refs[(tp, mode)])
            else:
                schemas[(tp, mode)] = {"type": "array", "items": dict(refs[(item, mode)])}
        self._merge(schemas, top.get("$defs", {}))


def _free_name(name: str, *taken: Mapping[str, object]) -> str:
    n = 2
    while any(f"{name}_{n}" in names for names in taken):
        n += 1
    return f"{name}_{n}"


def _renamed(schema: Any, refs: Mapping[str, str]) -> Any:
    """``schema`` with every ``$ref`` in ``refs`` pointed at its new name (a copy)."""
    if isinstance(schema, dict):
        out = {key: _renamed(value, refs) for key, value in schema.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref in refs:
            out["$ref"] = refs[ref]
        return out
    if isinstance(schema, list):
        return [_renamed(value, refs) for value in schema]
    return schema


def _list_item(tp: Any) -> Any:
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0]
    return None


# -- path parameters ---------------------------------------------------------------------------

_FIXED: dict[type[Constraint], JsonSchema] = {
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


def param_schema(constraint: Constraint | None) -> JsonSchema:
    """The schema of a ``{name}`` segment: from its converter/constraint, else a string."""
    if constraint is None:
        return {"type": "string", "minLength": 1}
    fixed = _FIXED.get(type(constraint))
    if fixed is not None:
        return dict(fixed)
    if isinstance(constraint, RegexConstraint):
        pattern = ecma_pattern(constraint.pattern)
        return {"type": "string", "pattern": pattern} if pattern else {"type": "string", "minLength": 1}
    if isinstance(constraint, BothConstraints):
        # a converter plus an explicit constraint: both hold
        one, two = param_schema(constraint.first), param_schema(constraint.second)
        if one.get("type") != "string":
            return one
        if two.get("type") != "string":
            return two
        patterns = [s["pattern"] for s in (one, two) if "pattern" in s]
        if len(patterns) == 2:
            return {"type": "string", "allOf": [{"pattern": p} for p in patterns]}
        return one if "pattern" in one or "format" in one else two
    return {"type": "string", "minLength": 1}
