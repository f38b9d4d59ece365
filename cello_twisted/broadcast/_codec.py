"""Messages on the wire: a one-byte tag keeps ``str``, ``bytes`` and ``dict`` apart.

``\x00s`` + UTF-8 text, ``\x00b`` + raw bytes, ``\x00j`` + JSON object. A payload
without a tag (published by another program) is delivered as ``bytes``.
"""

from __future__ import annotations

import json
from typing import Any

_STR, _BYTES, _JSON = b"\x00s", b"\x00b", b"\x00j"


def encode(message: Any) -> bytes:
    """The payload for ``message``; a TypeError for anything but str, bytes or dict."""
    if isinstance(message, str):
        return _STR + message.encode("utf-8")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(message)
    if isinstance(message, dict):
        try:
            text = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"broadcast dict messages must be JSON-serializable: {exc}") from None
        return _JSON + text.encode("utf-8")
    raise TypeError(f"broadcast messages are str, bytes or dict, not {type(message).__name__}")


def decode(payload: bytes) -> Any:
    """The message as published (a fresh object each call, so subscribers never share a dict)."""
    tag = payload[:2]
    if tag == _STR:
        return payload[2:].decode("utf-8", "replace")
    if tag == _BYTES:
        return payload[2:]
    if tag == _JSON:
        try:
            return json.loads(payload[2:])
        except ValueError:
            return payload
    return payload
