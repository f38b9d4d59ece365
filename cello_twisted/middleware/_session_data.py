"""The Session object handlers see as ``request.session`` (SPEC §2.12)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..errors import SessionTooLargeError
from ._session_seal import encode_payload, sealed_length


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


class Session(MutableMapping):  # type: ignore[type-arg]
    """A dict-like session plus ``id``, ``new``, ``modified`` and ``regenerate()``.

    Every mutation is validated at once: non-JSON values raise TypeError and, in
    cookie mode, a cookie over ``max_size`` raises SessionTooLargeError; either
    way the session is left unchanged.
    """

    def __init__(
        self,
        owner: Any,
        data: dict[str, Any] | None,
        sid: str | None,
        exp: float | None,
        now: float,
        stale_key: bool = False,
    ) -> None:
        self._owner = owner
        self._data: dict[str, Any] = data or {}
        self.id: str | None = sid
        self.new = sid is None
        self.modified = stale_key  # sealed with an older secret: re-seal with the newest
        self._incoming_id = sid
        self._incoming_exp = exp
        self._now = now
        self.cleared = False
        self.pending: list[
            Any
        ] = []  # Deferreds from store/revocation calls made by clear()/regenerate()

    # -- mapping ---------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        trial = dict(self._data)
        trial[key] = value
        self._validate(trial)
        self._data = trial
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def clear(self) -> None:
        """Empty the session and revoke its id: a replayed copy of the old cookie reads empty."""
        self._data = {}
        self._retire_id()
        self.cleared = True
        self.modified = True

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Validate the whole update once, so a failure leaves the session unchanged."""
        trial = dict(self._data)
        trial.update(*args, **kwargs)
        if not all(isinstance(k, str) for k in trial):
            raise TypeError("session keys must be str")
        self._validate(trial)
        self._data = trial
        self.modified = True

    def regenerate(self) -> None:
        """Keep the data under a fresh id (e.g. after login); the old id is revoked."""
        self._retire_id()
        self.id = new_session_id()
        self.modified = True

    def commit_id(self) -> str | None:
        """The id this session has once the response is sent, or None when none is stored.

        A new session gets its id here, as soon as a value is written (the middleware
        then saves it under that id); an anonymous session with no data has none.
        """
        if self.id is None and self.modified and self._data:
            self.id = new_session_id()
        if self.new and not self._data:
            return None
        return self.id

    def _retire_id(self) -> None:
        if self.id is not None and self.id == self._incoming_id:
            self.pending += self._owner.retire(self.id, self._incoming_exp)
            self._incoming_id = None
        self.id = None

    def _validate(self, data: dict[str, Any]) -> None:
        encoded = encode_payload(data)  # TypeError for non-JSON values
        owner = self._owner
        if owner.store is None:
            envelope = len(
                encode_payload(owner.envelope(self.id or new_session_id(), self._now, {}))
            )
            size = sealed_length(owner.cookie_name, envelope - 2 + len(encoded))
            if size > owner.max_size:
                raise SessionTooLargeError(
                    f"session cookie would be {size} bytes; max_size is {owner.max_size}"
                )

    # -- for the middleware ------------------------------------------------------

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    def __repr__(self) -> str:
        return f"<Session id={self.id!r} new={self.new} modified={self.modified} {self._data!r}>"
