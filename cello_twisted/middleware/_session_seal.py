"""Session cookie sealing: AES-256-GCM with HKDF-derived keys and key rotation (SPEC §2.12 r1-r2)."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
INFO = b"cello_twisted.session.v1"
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_COOKIE_VALUE = 8192

_strict_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Strict JSON (no coercion of dates, sets...): what is stored reads back identical."""
    try:
        return _strict_encode(payload).encode("utf-8")
    except ValueError as exc:  # NaN/Infinity
        raise TypeError(str(exc)) from None


def derive_key(secret: bytes, info: bytes = INFO) -> bytes:
    """HKDF-SHA256(secret, info) -> 32-byte key (default info: the session cookie key)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def sealed_length(cookie_name: str, plaintext_length: int) -> int:
    """Length of ``name=value`` for a plaintext of ``plaintext_length`` bytes (no padding)."""
    raw = len(VERSION) + NONCE_SIZE + plaintext_length + TAG_SIZE
    return len(cookie_name) + 1 + (raw * 4 + 2) // 3


class Sealer:
    """Seals with the newest secret; opens with any (newest first)."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        self._ciphers = [AESGCM(derive_key(secret)) for secret in secrets]

    def seal(self, payload: dict[str, Any], cookie_name: str) -> str:
        nonce = os.urandom(NONCE_SIZE)  # fresh per write
        blob = self._ciphers[0].encrypt(nonce, encode_payload(payload), cookie_name.encode("utf-8"))
        return base64.urlsafe_b64encode(VERSION + nonce + blob).rstrip(b"=").decode("ascii")

    def open(self, value: str, cookie_name: str) -> tuple[dict[str, Any], int] | None:
        """(payload, index of the secret that opened it) or None for anything invalid."""
        if not value or len(value) > MAX_COOKIE_VALUE:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.encode("ascii") + b"=" * (-len(value) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return None
        if len(raw) < 1 + NONCE_SIZE + TAG_SIZE or raw[:1] != VERSION:
            return None
        nonce, blob = raw[1 : 1 + NONCE_SIZE], raw[1 + NONCE_SIZE :]
        aad = cookie_name.encode("utf-8")
        for index, cipher in enumerate(self._ciphers):
            try:
                plaintext = cipher.decrypt(nonce, blob, aad)
            except InvalidTag:
                continue
            try:
                payload = json.loads(plaintext)
            except (ValueError, UnicodeDecodeError):
                return None
            return (payload, index) if isinstance(payload, dict) else None
        return None
