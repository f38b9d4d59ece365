"""MemoryTokenBlacklist: revoked token (or session) keys kept until their expiry, per process."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any


class MemoryTokenBlacklist:
    """Revocation set in this process's memory (default for JWT and session revocation).

    ``add(key, expires_at)`` remembers ``key`` until ``expires_at`` (seconds on the
    bound clock); after that it is forgotten, so memory stays bounded by the number
    of tokens revoked within one token lifetime. ``contains(key)`` is a dict lookup.
    Per process: in cluster mode each worker has its own set (use RedisTokenBlacklist).
    """

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        # The hot path of JwtAuth: None means never revoked (or forgotten); a time may be
        # past already, so anything else is settled by ``contains``.
        self.revoked_until: Callable[[str], float | None] = self._expiry.get

    def _now(self) -> float:
        return self.clock.seconds() if self.clock is not None else time.time()

    def add(self, key: str, expires_at: float) -> None:
        expires_at = float(expires_at)
        self._prune(self._now())
        if expires_at > self._expiry.get(key, float("-inf")):
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))

    def contains(self, key: str) -> bool:
        expires_at = self._expiry.get(key)
        if expires_at is None:
            return False
        if expires_at <= self._now():
            self._prune(self._now())
            return False
        return True

    def _prune(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.contains(key)
