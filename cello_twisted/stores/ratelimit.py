"""The in-memory rate-limit store: exact sliding windows and token buckets, bounded in size."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Any, NamedTuple

_EPSILON = 1e-9  # float slack so 10 x 0.1 s of refill counts as one whole token


class RateLimitResult(NamedTuple):
    """The outcome of one ``hit``: what the middleware turns into headers or a 429.

    ``reset`` is whole seconds (rounded up) until the oldest counted request leaves
    the window (sliding window) or until the bucket is full again (token bucket);
    ``retry_after`` is whole seconds (>= 1) until a request would be allowed, 0 when allowed.
    """

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int


def _ceil(seconds: float) -> int:
    return max(0, math.ceil(seconds - _EPSILON))


class _Window:
    """Timestamps of allowed requests still inside the window (at most ``requests``)."""

    __slots__ = ("hits", "touched")

    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.touched = 0.0


class _Bucket:
    __slots__ = ("tokens", "stamp", "touched")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.stamp = now
        self.touched = now


class MemoryRateLimitStore:
    """Counters in this process (so per worker in cluster mode).

    Memory is bounded: at most ``max_keys`` keys are kept. Keys are kept in
    least-recently-used order; idle keys (untouched for a whole window, so their
    state is back to "fresh") are dropped as new hits arrive, and when the store is
    full the least recently used key is evicted, so a flood of distinct client
    addresses cannot grow it. An evicted key simply starts afresh.

    The interface is ``hit(key, config, now) -> RateLimitResult``; a shared store
    (Redis) implements the same method with an atomic script and may return a
    Deferred instead.
    """

    shared = False  # per process: RateLimit.cluster_warning() mentions it

    def __init__(self, max_keys: int = 10000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.max_keys = max_keys
        self._entries: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def hit(self, key: str, config: Any, now: float) -> RateLimitResult:
        """Count one request for ``key`` under ``config`` at time ``now``."""
        entries = self._entries
        window = config.window
        entry = entries.get(key)
        if entry is None:
            # Memory only grows here, so idle keys are swept (and the bound enforced) here.
            self._make_room(now, window)
            entry = _Window() if config.strategy == "sliding_window" else _Bucket(float(config.requests), now)
            entries[key] = entry
        else:
            entries.move_to_end(key)
        entry.touched = now
        if config.strategy != "sliding_window":
            return _take(entry, config.requests, window, now)
        hits = entry.hits  # sliding window, inlined: the hot path
        horizon = now - window
        while hits and hits[0] <= horizon:  # the window is (now - window, now]
            hits.popleft()
        count = len(hits)
        limit = config.requests
        if count < limit:
            hits.append(now)
            reset = math.ceil(hits[0] + window - now - _EPSILON)
            return RateLimitResult(True, limit, limit - count - 1, reset if reset > 0 else 0, 0)
        wait = max(1, _ceil(hits[0] + window - now))
        return RateLimitResult(False, limit, 0, wait, wait)

    def _sweep(self, now: float, window: float, budget: int) -> None:
        """Drop up to ``budget`` idle keys from the least-recently-used end."""
        entries = self._entries
        horizon = now - window
        while budget and entries:
            oldest_key = next(iter(entries))
            if entries[oldest_key].touched > horizon:
                return
            del entries[oldest_key]
            budget -= 1

    def _make_room(self, now: float, window: float) -> None:
        self._sweep(now, window, 8)
        entries = self._entries
        while len(entries) >= self.max_keys:
            entries.popitem(last=False)


def _take(entry: _Bucket, capacity: int, window: float, now: float) -> RateLimitResult:
    rate = capacity / window
    tokens = min(float(capacity), entry.tokens + (now - entry.stamp) * rate)
    entry.stamp = now
    if tokens >= 1.0 - _EPSILON:
        tokens = max(0.0, tokens - 1.0)
        entry.tokens = tokens
        return RateLimitResult(True, capacity, int(tokens + _EPSILON), _ceil((capacity - tokens) / rate), 0)
    entry.tokens = tokens
    wait = max(1, _ceil((1.0 - tokens) / rate))
    return RateLimitResult(False, capacity, 0, _ceil((capacity - tokens) / rate), wait)
