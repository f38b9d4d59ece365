"""The in-memory rate-limit store: exact sliding windows and token buckets, bounded in size."""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable
from math import ceil, floor
from typing import Any, NamedTuple

EPSILON = 1e-9  # float slack so 10 x 0.1 s of refill counts as one whole token
_ONE = 1.0 - EPSILON  # a bucket holding at least this much has a whole token


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


def ceil_seconds(seconds: float) -> int:
    return max(0, ceil(seconds - EPSILON))


class _Log:
    """A sliding window's allowed-request times: ``times[head:]`` are still counted.

    Kept as raw doubles in one array rather than a deque of float objects: a busy
    key holds up to ``requests`` of them, at 8 bytes each instead of ~32 (measured
    CPU cost is the same). Expired times are skipped by moving ``head`` and cut off
    in bulk once they outnumber the live ones, so the array stays under twice the
    live count (plus 64).
    """

    __slots__ = ("times", "head")

    def __init__(self) -> None:
        self.times = array("d")
        self.head = 0


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.stamp = now


def _idle(entry: Any, horizon: float) -> bool:
    """Back to a fresh state, so dropping it changes nothing.

    A sliding window is fresh once its newest counted hit is out of the window; a
    bucket refills completely in one window, so one untouched since ``horizon``
    (= now - window) is full again.
    """
    if type(entry) is _Bucket:
        return entry.stamp <= horizon
    times = entry.times
    return bool(len(times) == entry.head or times[-1] <= horizon)


_new = tuple.__new__  # RateLimitResult(...) without the namedtuple's Python-level __new__

#: ``(key, now) -> (allowed, limit, remaining, reset, retry_after)``: a plain tuple, in
#: RateLimitResult's field order (the middleware's hot path skips the namedtuple).
Hitter = Callable[[str, float], tuple[Any, ...]]


class MemoryRateLimitStore:
    """Counters in this process (so per worker in cluster mode).

    Memory is bounded: at most ``max_keys`` keys are kept. Keys are kept in
    least-recently-used order; idle keys (whose state is back to "fresh") are
    dropped as new keys arrive, and when the store is full the least recently used
    key is evicted, so a flood of distinct client addresses cannot grow it. An
    evicted key simply starts afresh.

    The interface is ``hit(key, config, now) -> RateLimitResult``; a shared store
    (Redis) implements the same method with an atomic script and may return a
    Deferred instead. ``bind(config)`` returns the same operation specialised for
    one config, ``(key, now) -> tuple`` in RateLimitResult's field order: what the
    middleware calls.
    """

    shared = False  # per process: RateLimit.cluster_warning() mentions it

    def __init__(self, max_keys: int = 10000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.max_keys = max_keys
        self._entries: OrderedDict[str, Any] = OrderedDict()  # never rebound: hitters hold it
        self._hitters: dict[Any, Hitter] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def hit(self, key: str, config: Any, now: float) -> RateLimitResult:
        """Count one request for ``key`` under ``config`` at time ``now``."""
        return _new(RateLimitResult, self.bind(config)(key, now))

    def bind(self, config: Any) -> Hitter:
        """``hit`` for one config, with its numbers read once (the request hot path)."""
        hitter = self._hitters.get(config)
        if hitter is None:
            make = _bucket_hitter if config.strategy == "token_bucket" else _window_hitter
            hitter = self._hitters[config] = make(self, config.requests, config.window)
        return hitter

    def _add(self, key: str, entry: Any, now: float, window: float) -> Any:
        # Memory only grows here, so idle keys are swept (and the bound enforced) here.
        entries = self._entries
        horizon = now - window
        for _ in range(8):
            if not entries:
                break
            oldest_key = next(iter(entries))
            if not _idle(entries[oldest_key], horizon):
                break
            del entries[oldest_key]
        while len(entries) >= self.max_keys:
            entries.popitem(last=False)
        entries[key] = entry
        return entry


def _window_hitter(store: MemoryRateLimitStore, limit: int, window: float) -> Hitter:
    """Sliding window: allowed iff fewer than ``limit`` allowed hits in ``(now - window, now]``."""
    entries = store._entries
    get, move_to_end = entries.get, entries.move_to_end

    def hit(key: str, now: float) -> tuple[Any, ...]:
        log = get(key)
        if log is None:
            log = store._add(key, _Log(), now, window)
        else:
            move_to_end(key)
        times, head = log.times, log.head
        horizon = now - window
        end = len(times)
        while head < end and times[head] <= horizon:
            head += 1
        count = end - head
        if count < limit:
            times.append(now)
            if head > 64 and head > count:  # cut the expired prefix off, amortised O(1)
                del times[:head]
                head = 0
            log.head = head
            reset = ceil(times[head] + window - now - EPSILON)
            return (True, limit, limit - count - 1, reset if reset > 0 else 0, 0)
        log.head = head
        wait = ceil_seconds(times[head] + window - now)
        return (False, limit, 0, wait if wait > 1 else 1, wait if wait > 1 else 1)

    return hit


def _bucket_hitter(store: MemoryRateLimitStore, capacity: int, window: float) -> Hitter:
    """Token bucket: ``capacity`` tokens, refilled continuously at ``capacity / window`` per second."""
    entries = store._entries
    get, move_to_end = entries.get, entries.move_to_end
    rate = capacity / window
    full = float(capacity)

    def hit(key: str, now: float) -> tuple[Any, ...]:
        bucket = get(key)
        if bucket is None:
            bucket = store._add(key, _Bucket(full, now), now, window)
        else:
            move_to_end(key)
        tokens = bucket.tokens + (now - bucket.stamp) * rate
        if tokens > full:
            tokens = full
        bucket.stamp = now
        if tokens < _ONE:
            bucket.tokens = tokens
            wait = ceil_seconds((1.0 - tokens) / rate)
            return (False, capacity, 0, ceil_seconds((full - tokens) / rate), wait if wait > 1 else 1)
        tokens = tokens - 1.0 if tokens > 1.0 else 0.0
        bucket.tokens = tokens
        reset = ceil((full - tokens) / rate - EPSILON)
        return (True, capacity, floor(tokens + EPSILON), reset if reset > 0 else 0, 0)

    return hit
