"""Sessions: encrypted cookie sessions, or a sealed id with a server-side store (SPEC §2.12)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, gatherResults

from .._secrets import MIN_SESSION_SECRET, check_secret, secret_bytes
from ..stores.sessions import MemorySessionStore
from ..stores.tokens import MemoryTokenBlacklist
from ._chain import then
from ._session_data import Session, new_session_id
from ._session_seal import Sealer
from ._util import is_preflight

__all__ = ["SessionConfig", "Sessions", "Session"]

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
_BAD_NAME_CHARS = set(' \t\r\n;,="()<>@:\\/[]?{}')
_REVOKED_PREFIX = "session:"


class SessionConfig:
    """Session cookie settings; ``secret`` may be a list (newest first) for key rotation.

    ``store``: None for cookie mode (data sealed in the cookie), or a store with
    ``load/save/delete`` (the cookie then holds only a sealed id).
    ``revocations``: where ids retired by ``clear()``/``regenerate()`` are kept
    until their expiry (``add(key, expires_at)``, ``contains(key)``); memory by default.
    """

    def __init__(
        self,
        secret: Any,
        cookie_name: str = "session_id",
        max_age: int = 86400,
        http_only: bool = True,
        secure: bool = True,
        same_site: str = "Lax",
        path: str = "/",
        domain: str | None = None,
        store: Any = None,
        max_size: int = 4096,
        *,
        httponly: bool | None = None,
        samesite: str | None = None,
        revocations: Any = None,
    ) -> None:
        raw = list(secret) if isinstance(secret, (list, tuple)) else [secret]
        if not raw:
            raise ValueError("SessionConfig.secret must not be an empty list")
        self.secrets = [secret_bytes(s, "SessionConfig.secret") for s in raw]
        self.secret_problems_found = [
            p
            for i, s in enumerate(self.secrets)
            if (
                p := check_secret(
                    f"SessionConfig.secret[{i}]" if len(raw) > 1 else "SessionConfig.secret",
                    s,
                    MIN_SESSION_SECRET,
                    stacklevel=4,
                )
            )
        ]
        if (
            not isinstance(cookie_name, str)
            or not cookie_name
            or _BAD_NAME_CHARS & set(cookie_name)
        ):
            raise ValueError(f"invalid session cookie_name {cookie_name!r}")
        self.cookie_name = cookie_name
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise ValueError("SessionConfig.max_age must be a positive int (seconds)")
        self.max_age = max_age
        self.http_only = bool(http_only if httponly is None else httponly)
        self.secure = bool(secure)
        site = same_site if samesite is None else samesite
        canonical = _SAME_SITE.get(str(site).lower())
        if canonical is None:
            raise ValueError(f"same_site must be Strict, Lax or None, not {site!r}")
        if canonical == "None" and not self.secure:
            raise ValueError('same_site="None" requires secure=True')
        self.same_site = canonical
        self.path = path
        self.domain = domain
        self.store = store
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
            raise ValueError("SessionConfig.max_size must be a positive int")
        self.max_size = max_size
        self.revocations = revocations

    @property
    def secret(self) -> bytes:
        return self.secrets[0]

    def secret_problems(self) -> list[str]:
        return list(self.secret_problems_found)


class Sessions:
    """Loads ``request.session`` before the handler and writes the cookie after it.

    ``Set-Cookie`` is sent only when the session changed or was sealed with an
    older secret; ``clear()`` expires the cookie and revokes the old id at once.
    """

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, config: SessionConfig) -> None:
        if not isinstance(config, SessionConfig):
            raise TypeError("Sessions needs a SessionConfig")
        self.config = config
        self.cookie_name = config.cookie_name
        self.max_age = config.max_age
        self.max_size = config.max_size
        self.store = config.store
        self.revocations = (
            config.revocations if config.revocations is not None else MemoryTokenBlacklist()
        )
        self._sealer = Sealer(config.secrets)
        self._clock: Any = None

    # -- hooks -------------------------------------------------------------------

    def secret_problems(self) -> list[str]:
        return self.config.secret_problems()

    def cluster_warning(self) -> str | None:
        parts = []
        if isinstance(self.store, MemorySessionStore):
            parts.append("session data (MemorySessionStore)")
        if isinstance(self.revocations, MemoryTokenBlacklist):
            parts.append("revoked session ids")
        if not parts:
            return None
        return (
            f"Sessions keeps {' and '.join(parts)} in process memory: each worker has its own, so a "
            "session cleared in one worker can still be replayed in another (use the Redis stores)"
        )

    def _bind(self, clock: Any) -> None:
        self._clock = clock
        for store in (self.store, self.revocations):
            if (
                isinstance(store, (MemorySessionStore, MemoryTokenBlacklist))
                and store.clock is None
            ):
                store.clock = clock

    # -- used by Session ------------------------------------------------------------

    def envelope(self, sid: str, now: float, data: dict[str, Any] | None) -> dict[str, Any]:
        iat = int(now)
        out: dict[str, Any] = {"id": sid, "iat": iat, "exp": iat + self.max_age}
        if data is not None:
            out["d"] = data
        return out

    def retire(self, sid: str, exp: float | None) -> list[Deferred]:
        """Revoke ``sid`` until its expiry (and delete it from the store): immediate logout."""
        results = [
            self.revocations.add(
                _REVOKED_PREFIX + sid,
                exp if exp is not None else self._clock.seconds() + self.max_age,
            )
        ]
        if self.store is not None:
            results.append(self.store.delete(sid))
        return [r for r in results if isinstance(r, Deferred)]

    # -- request path -------------------------------------------------------------

    def __call__(self, request: Any, call_next: Any) -> Any:
        if request.method == "OPTIONS" and is_preflight(request):
            return call_next(request)
        if self._clock is None:
            self._bind(request.app.clock)
        now = self._clock.seconds()
        value = request.cookies.get(self.cookie_name)
        opened = self._sealer.open(value, self.cookie_name) if value else None
        payload = self._valid(opened[0], now) if opened is not None else None
        if payload is None:
            return self._run(
                request, call_next, Session(self, None, None, None, now), value is not None
            )
        stale = opened[1] != 0
        revoked = self.revocations.contains(_REVOKED_PREFIX + payload["id"])
        return then(revoked, lambda r: self._load(r, request, call_next, payload, now, stale))

    def _valid(self, payload: dict[str, Any], now: float) -> dict[str, Any] | None:
        sid, exp = payload.get("id"), payload.get("exp")
        if not isinstance(sid, str) or not sid or len(sid) > 128:
            return None
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or exp <= now:
            return None
        if self.store is None and not isinstance(payload.get("d"), dict):
            return None
        return payload

    def _load(
        self,
        revoked: Any,
        request: Any,
        call_next: Any,
        payload: dict[str, Any],
        now: float,
        stale: bool,
    ) -> Any:
        if revoked:
            return self._run(request, call_next, Session(self, None, None, None, now), True)
        if self.store is None:
            session = Session(self, payload["d"], payload["id"], payload["exp"], now, stale)
            return self._run(request, call_next, session, True)

        def loaded(data: Any) -> Any:
            if not isinstance(data, dict):
                return self._run(request, call_next, Session(self, None, None, None, now), True)
            return self._run(
                request,
                call_next,
                Session(self, data, payload["id"], payload["exp"], now, stale),
                True,
            )

        return then(self.store.load(payload["id"]), loaded)

    def _run(self, request: Any, call_next: Any, session: Session, carried: bool) -> Any:
        request.context["session"] = session
        return then(call_next(request), lambda resp: self._finish(session, carried, resp))

    def _finish(self, session: Session, carried: bool, resp: Any) -> Any:
        if session.pending:
            pending, session.pending = session.pending, []
            return gatherResults(pending, consumeErrors=True).addCallback(
                lambda _: self._finish(session, carried, resp)
            )
        if not session.modified:
            return resp
        if session.id is None and session.cleared and not session.data:
            if carried:
                self._cookie(resp, "", max_age=0, expires=0)
            return resp
        if session.id is None:
            session.id = new_session_id()
        now = self._clock.seconds()
        if self.store is None:
            return self._set_cookie(resp, self.envelope(session.id, now, session.data))
        saved = self.store.save(session.id, dict(session.data), self.max_age)
        envelope = self.envelope(session.id, now, None)
        return then(saved, lambda _: self._set_cookie(resp, envelope))

    def _set_cookie(self, resp: Any, envelope: dict[str, Any]) -> Any:
        self._cookie(resp, self._sealer.seal(envelope, self.cookie_name), max_age=self.max_age)
        return resp

    def _cookie(self, resp: Any, value: str, *, max_age: int, expires: Any = None) -> None:
        """One Set-Cookie with the configured attributes (SPEC §2.12 r5)."""
        config = self.config
        resp.set_cookie(
            self.cookie_name,
            value,
            max_age=max_age,
            expires=expires,
            path=config.path,
            domain=config.domain,
            secure=config.secure,
            httponly=config.http_only,
            samesite=config.same_site,
        )

    def __repr__(self) -> str:
        mode = "cookie" if self.store is None else type(self.store).__name__
        return f"Sessions({self.cookie_name!r}, {mode}, max_age={self.max_age})"
