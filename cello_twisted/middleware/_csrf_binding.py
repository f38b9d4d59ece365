"""CSRF tokens bound to the session they were issued to (SPEC_OPERATIONS §11 r3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._types import TableView
    from ..request import Request
    from .session import Sessions

MAX_TOKEN = 256


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def find_sessions(app: TableView) -> Sessions | None:
    """The app's Sessions middleware (app level first, then blueprints), or None."""
    from .session import Sessions

    tables: list[TableView] = [app]
    while tables:
        table = tables.pop(0)
        for mw in table.middleware:
            if isinstance(mw, Sessions):
                return mw
        tables += table.blueprints
    return None


class SessionBinding:
    """Tokens ``random.HMAC(key, "csrf:" + session id + ":" + random)``.

    A token verifies only together with the session id it was made for, so a token
    taken from one client is useless with another client's session.
    """

    def __init__(self, sessions: Sessions, secret: bytes | None) -> None:
        self.sessions = sessions
        self._keys = [secret] if secret is not None else sessions.csrf_keys()

    def incoming_id(self, request: Request) -> str | None:
        return self.sessions.incoming_id(request)

    def outgoing_id(self, request: Request) -> str | None:
        return self.sessions.outgoing_id(request)

    @staticmethod
    def _sign(key: bytes, sid: str, random: str) -> bytes:
        message = f"csrf:{sid}:{random}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest()).encode("ascii")

    def token(self, sid: str) -> str:
        random = _b64(secrets.token_bytes(24))
        return f"{random}.{self._sign(self._keys[0], sid, random).decode('ascii')}"

    def valid(self, token: object, sid: str) -> bool:
        """Constant-time check that ``token`` was issued to session ``sid``."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN or not token.isascii():
            return False
        random, dot, signature = token.partition(".")
        if not dot or not random:
            return False
        given = signature.encode("ascii")
        return any(hmac.compare_digest(given, self._sign(key, sid, random)) for key in self._keys)
