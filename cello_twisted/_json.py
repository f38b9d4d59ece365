"""JSON shared by requests, responses, SSE and WebSocket: UTF-8, compact, extended types.

Output never contains NaN/Infinity (invalid JSON): encoding such a value raises
ValueError. Input (``loads``) refuses what a hostile client could use to crash or
confuse a handler (SPEC_OPERATIONS §11 r5): nesting deeper than ``MAX_DEPTH``,
the tokens NaN/Infinity/-Infinity and strings with unpaired surrogates.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import re
import uuid
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (uuid.UUID, decimal.Decimal)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_python_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_default, allow_nan=False
).encode
# The C encoder ``JSONEncoder.encode`` builds on every call, built once: the same output without
# two Python frames per response. Without a markers dict (shared between threads it would
# report false cycles), a cycle ends in RecursionError, turned into the ValueError Python's
# encoder raises.
_c_encode = (
    c_make_encoder(None, _default, encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None
    else None
)


def _encode(data: Any) -> str:
    if _c_encode is None or type(data) is str:
        return _python_encode(data)
    try:
        return "".join(_c_encode(data, 0))
    except RecursionError:
        raise ValueError("Circular reference detected, or JSON nested too deep") from None


def dumps(data: Any) -> str:
    """Encode ``data`` as compact JSON text (non-ASCII kept as is)."""
    return _encode(data)


def dumpb(data: Any) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON bytes."""
    return _encode(data).encode("utf-8")


MAX_DEPTH = 512
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class JsonInputError(ValueError):
    """JSON text that parses but is refused: too deep, NaN/Infinity or a lone surrogate."""


def _refuse_constant(token: str) -> Any:
    raise JsonInputError(f"{token} is not valid JSON")


_decode = json.JSONDecoder(parse_constant=_refuse_constant).decode


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON input strictly; every refusal is a ``ValueError`` (a 400 for requests).

    Cheap on the usual body: the depth walk runs only when the text holds more than
    ``MAX_DEPTH`` brackets, the surrogate check only when it holds a ``\\uD8xx``-style escape.
    """
    text = data if isinstance(data, str) else bytes(data).decode(json.detect_encoding(data))
    try:
        value = _decode(text)
    except RecursionError:
        raise JsonInputError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if len(text) > 2 * MAX_DEPTH and text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise JsonInputError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None:
        try:
            _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError("JSON string with an unpaired surrogate") from None
    return value


def _too_deep(value: Any) -> bool:
    """Whether containers nest more than ``MAX_DEPTH`` levels, level by level (no recursion)."""
    if type(value) is not list and type(value) is not dict:
        return False
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is list or type(child) is dict
        ]
        if not level:
            return False
    return True
