"""MemorySessionStore: server-side session data with a TTL, in this process's memory."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from .._validators import fail

MAX_SESSIONS = 100_000


class MemorySessionStore:
    """``load(sid) -> dict | None``, ``save(sid, data, ttl)``, ``delete(sid)``.

    Data is stored as JSON text, so a loaded session never aliases a saved one
    (the same isolation a Redis store gives). At most ``max_sessions`` sessions are
    kept (SPEC_OPERATIONS §11 r6): the least recently used one is evicted first,
    which logs it out. Expired entries are dropped lazily.
    Per process: in cluster mode each worker has its own store (use RedisSessionStore).
    """

    def __init__(self, clock: Any = None, max_sessions: int = MAX_SESSIONS) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            fail(self, "max_sessions", max_sessions, "an int >= 1")
        self.clock = clock
        self.max_sessions = max_sessions
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()  # least recently used first

    def _now(self) -> float:
        return self.clock.seconds() if self.clock is not None else time.time()

    def load(self, sid: str) -> dict[str, Any] | None:
        entry = self._data.get(sid)
        if entry is None:
            return None
        if entry[0] <= self._now():
            del self._data[sid]
            return None
        self._data.move_to_end(sid)
        data: dict[str, Any] = json.loads(entry[1])
        return data

    def save(self, sid: str, data: dict[str, Any], ttl: float) -> None:
        entries = self._data
        now = self._now()
        for _ in range(8):  # drop a few expired entries from the cold end as we go
            if not entries:
                break
            oldest = next(iter(entries))
            if entries[oldest][0] > now:
                break
            del entries[oldest]
        entries.pop(sid, None)
        while len(entries) >= self.max_sessions:
            entries.popitem(last=False)
        entries[sid] = (now + float(ttl), json.dumps(data, separators=(",", ":")))

    def delete(self, sid: str) -> None:
        self._data.pop(sid, None)

    def __len__(self) -> int:
        return len(self._data)
