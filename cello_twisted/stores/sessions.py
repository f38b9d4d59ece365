"""MemorySessionStore: server-side session data with a TTL, in this process's memory."""

from __future__ import annotations

import heapq
import json
import time
from typing import Any


class MemorySessionStore:
    """``load(sid) -> dict | None``, ``save(sid, data, ttl)``, ``delete(sid)``.

    Data is stored as JSON text, so a loaded session never aliases a saved one
    (the same isolation a Redis store gives). Expired entries are dropped lazily.
    Per process: in cluster mode each worker has its own store (use RedisSessionStore).
    """

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock
        self._data: dict[str, tuple[float, str]] = {}
        self._heap: list[tuple[float, str]] = []

    def _now(self) -> float:
        return self.clock.seconds() if self.clock is not None else time.time()

    def load(self, sid: str) -> dict[str, Any] | None:
        entry = self._data.get(sid)
        if entry is None:
            return None
        if entry[0] <= self._now():
            self._prune()
            return None
        data: dict[str, Any] = json.loads(entry[1])
        return data

    def save(self, sid: str, data: dict[str, Any], ttl: float) -> None:
        self._prune()
        expires_at = self._now() + float(ttl)
        self._data[sid] = (expires_at, json.dumps(data, separators=(",", ":")))
        heapq.heappush(self._heap, (expires_at, sid))

    def delete(self, sid: str) -> None:
        self._data.pop(sid, None)

    def _prune(self) -> None:
        now = self._now()
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, sid = heapq.heappop(heap)
            entry = self._data.get(sid)
            if entry is not None and entry[0] == expires_at:
                del self._data[sid]

    def __len__(self) -> int:
        return len(self._data)
