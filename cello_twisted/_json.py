"""JSON encoding shared by responses, SSE and WebSocket: UTF-8, compact, extended types."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import uuid
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


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default).encode


def dumps(data: Any) -> str:
    """Encode ``data`` as compact JSON text (non-ASCII kept as is)."""
    return _encode(data)


def dumpb(data: Any) -> bytes:
    """Encode ``data`` as compact UTF-8 JSON bytes."""
    return _encode(data).encode("utf-8")


loads = json.loads
