"""Sessions: encrypted cookie sessions, or a sealed id with a server-side store (SPEC §2.12)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import Attribute, field, frozen
from twisted.internet.defer import Deferred, gatherResults

from .._secrets import MIN_SESSION_SECRET, check_secret, secret_bytes
from .._validators import cookie_same_site, fail, positive_int
from ..errors import ConfigError
from ..stores.sessions import MemorySessionStore
from ..stores.tokens import MemoryTokenBlacklist
from ._chain import then
from ._session_data import Session, new_session_id
from ._session_seal import Sealer, derive_key
from ._util import is_preflight

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from .._types import Link
    from ..request import Request
    from ..response import Response

__all__ = ["SessionConfig", "Sessions", "Session"]

_BAD_NAME_CHARS = set(' \t\r\n;,="()<>@:\\/[]?{}')
_REVOKED_PREFIX = "session:"
CSRF_INFO = b"cello_twisted.csrf.v1"


def _secret_list(secret: Any) -> tuple[bytes, ...]:
    raw = list(secret) if isinstance(secret, (list, tuple)) else [secret]
    if not raw:
        raise ConfigError("SessionConfig.secret", secret, "a non-empty str or bytes, or a non-empty list of them")
    return tuple(secret_bytes(s, "SessionConfig.secret") for s in raw)


def _valid_cookie_name(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or _BAD_NAME_CHARS & set(value):
        fail(instance, attribute.name, value, "a non-empty cookie name without spaces or separators")


@frozen(init=False, eq=False)
class SessionConfig:
    """Session cookie settings; ``secret`` may be a list (newest first) for key rotation.

    ``store``: None for cookie mode (data sealed in the cookie), or a store with
    ``load/save/delete`` (the cookie then holds only a sealed id).
    ``revocations``: where ids retired by ``clear()``/``regenerate()`` are kept
    until their expiry (``add(key, expires_at)``, ``contains(key)``); memory by default.
    ``httponly``/``samesite`` are aliases of ``http_only``/``same_site``.

    Raises:
        ConfigError: an empty secret, a bad cookie name, a non-positive ``max_age`` or
            ``max_size``, or a SameSite value outside Strict/Lax/None (``"None"`` needs
            ``secure=True``).
    """

    secrets: tuple[bytes, ...] = field(converter=_secret_list, alias="secret", repr=False)
    cookie_name: str = field(validator=_valid_cookie_name)
    max_age: int = field(validator=positive_int)
    http_only: bool = field(converter=bool)
    secure: bool = field(converter=bool)
    same_site: str = field()
    path: str = field()
    domain: str | None = field()
    store: Any = field()
    max_size: int = field(validator=positive_int)
    revocations: Any = field()
    secret_problems_found: tuple[str, ...] = field(init=False, default=(), repr=False)

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
        site = cookie_same_site(type(self), same_site if samesite is None else samesite, bool(secure))
        self.__attrs_init__(
            secret,
            cookie_name,
            max_age,
            http_only if httponly is None else httponly,
            secure,
            site,
            path,
            domain,
            store,
            max_size,
            revocations,
        )
        many = len(self.secrets) > 1
        problems: list[str] = []
        for i, key in enumerate(self.secrets):
            what = f"SessionConfig.secret[{i}]" if many else "SessionConfig.secret"
            problem = check_secret(what, key, MIN_SESSION_SECRET, stacklevel=3)
            if problem:
                problems.append(problem)
        # A derived, read-only value: set once here, as attrs' own __init__ would.
        object.__setattr__(self, "secret_problems_found", tuple(problems))

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
        self._clock: IReactorTime | None = None

    # -- hooks -------------------------------------------------------------------

    def secret_problems(self) -> list[str]:
        return self.config.secret_problems()

    def cluster_warning(self) -> str | None:
        parts: list[str] = []
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

    def durability_warning(self) -> str | None:
        """Production start-up warning when revoked ids live in process memory (§11 r7).

        Not needed with a shared store (e.g. Redis): there ``clear()`` deletes the data,
        so a replayed cookie reads empty whatever the revocation set remembers.
        """
        if not isinstance(self.revocations, MemoryTokenBlacklist):
            return None
        if self.store is not None and not isinstance(self.store, MemorySessionStore):
            return None
        return (
            "Sessions keeps revoked session ids in process memory: revocations are lost on restart "
            "and kept per worker, so a logged-out session cookie is accepted again after a restart "
            "or by another worker; use SessionConfig(store=RedisSessionStore(...)) or "
            "SessionConfig(revocations=RedisTokenBlacklist(...))"
        )

    def _bind(self, clock: IReactorTime) -> None:
        self._clock = clock
        for store in (self.store, self.revocations):
            if (
                isinstance(store, (MemorySessionStore, MemoryTokenBlacklist))
                and store.clock is None
            ):
                store.clock = clock

    # -- used by Csrf ------------------------------------------------------------------

    def csrf_keys(self) -> list[bytes]:
        """Keys for session-bound CSRF tokens, derived from the session secrets (newest first)."""
        return [derive_key(secret, CSRF_INFO) for secret in self.config.secrets]

    def incoming_id(self, request: Request) -> str | None:
        """The id of the session ``request`` carries: the loaded one, else the sealed cookie's."""
        context = request.context
        if "session" in context:
            session: Session = context["session"]
            return None if session.new else session.id
        value = request.cookies.get(self.cookie_name)
        opened = self._sealer.open(value, self.cookie_name) if value else None
        if opened is None:
            return None
        clock = self._clock
        if clock is None:
            clock = request.app.clock
            self._bind(clock)
        payload = self._valid(opened[0], clock.seconds())
        return None if payload is None else str(payload["id"])

    @staticmethod
    def outgoing_id(request: Request) -> str | None:
        """The id the session will have once this response is sent (None: no session)."""
        session: Session | None = request.context.get("session")
        return None if session is None else session.commit_id()

    # -- used by Session ------------------------------------------------------------

    def envelope(self, sid: str, now: float, data: dict[str, Any] | None) -> dict[str, Any]:
        iat = int(now)
        out: dict[str, Any] = {"id": sid, "iat": iat, "exp": iat + self.max_age}
        if data is not None:
            out["d"] = data
        return out

    def _seconds(self) -> float:
        clock = self._clock
        if clock is None:  # bound by the first request, before any Session exists
            raise RuntimeError("Sessions has no clock before its first request")
        return clock.seconds()

    def retire(self, sid: str, exp: float | None) -> list[Deferred[Any]]:
        """Revoke ``sid`` until its expiry (and delete it from the store): immediate logout."""
        results = [
            self.revocations.add(
                _REVOKED_PREFIX + sid,
                exp if exp is not None else self._seconds() + self.max_age,
            )
        ]
        if self.store is not None:
            results.append(self.store.delete(sid))
        return [r for r in results if isinstance(r, Deferred)]

    # -- request path -------------------------------------------------------------

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        if request.method == "OPTIONS" and is_preflight(request):
            return call_next(request)
        clock = self._clock
        if clock is None:
            clock = request.app.clock
            self._bind(clock)
        now = clock.seconds()
        value = request.cookies.get(self.cookie_name)
        opened = self._sealer.open(value, self.cookie_name) if value else None
        payload = self._valid(opened[0], now) if opened is not None else None
        if opened is None or payload is None:
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
        revoked: object,
        request: Request,
        call_next: Link,
        payload: dict[str, Any],
        now: float,
        stale: bool,
    ) -> Response | Deferred[Response]:
        if revoked:
            return self._run(request, call_next, Session(self, None, None, None, now), True)
        if self.store is None:
            session = Session(self, payload["d"], payload["id"], payload["exp"], now, stale)
            return self._run(request, call_next, session, True)

        def loaded(data: object) -> Response | Deferred[Response]:
            if not isinstance(data, dict):
                return self._run(request, call_next, Session(self, None, None, None, now), True)
            return self._run(
                request,
                call_next,
                Session(self, data, payload["id"], payload["exp"], now, stale),
                True,
            )

        return then(self.store.load(payload["id"]), loaded)

    def _run(
        self, request: Request, call_next: Link, session: Session, carried: bool
    ) -> Response | Deferred[Response]:
        request.context["session"] = session
        return then(call_next(request), lambda resp: self._finish(session, carried, resp))

    def _finish(self, session: Session, carried: bool, resp: Response) -> Response | Deferred[Response]:
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
        if session.new and not session.data:
            return resp  # anonymous and nothing written: no cookie, no store entry (§11 r6)
        if session.id is None:
            session.id = new_session_id()
        now = self._seconds()
        if self.store is None:
            return self._set_cookie(resp, self.envelope(session.id, now, session.data))
        saved = self.store.save(session.id, dict(session.data), self.max_age)
        envelope = self.envelope(session.id, now, None)
        return then(saved, lambda _: self._set_cookie(resp, envelope))

    def _set_cookie(self, resp: Response, envelope: dict[str, Any]) -> Response:
        self._cookie(resp, self._sealer.seal(envelope, self.cookie_name), max_age=self.max_age)
        return resp

    def _cookie(self, resp: Response, value: str, *, max_age: int, expires: Any = None) -> None:
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
