"""Redis stores: token revocation, sessions and rate limits shared by every worker and machine.

Each store takes ``url`` (``redis://[user:password@]host:port/db``, ``rediss://`` for
TLS, ``unix:///path.sock?db=0``) or a ready redis-py ``client``, a key ``prefix``
and a ``timeout`` (seconds) that bounds every call. Calls run in the reactor's
thread pool; an unreachable Redis answers the request with a 503
(``SharedStoreUnavailable``) within ``timeout`` and service resumes by itself when
Redis is back (SPEC §2.10, §2.12, §2.14).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from ._redis_client import DEFAULT_TIMEOUT, DEFAULT_URL, RedisBackend, SharedStoreUnavailable
from ._redis_scripts import REVOKE, SLIDING_WINDOW, TOKEN_BUCKET
from .ratelimit import EPSILON, RateLimitResult, ceil_seconds

__all__ = [
    "RedisTokenBlacklist",
    "RedisSessionStore",
    "RedisRateLimitStore",
    "SharedStoreUnavailable",
]


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _RedisStore:
    """Common constructor: one client and back-off state per store instance."""

    shared = True  # state lives in Redis: no per-process cluster warning

    def __init__(self, url: str, client: Any, prefix: str, timeout: float) -> None:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        self.url = url
        self.prefix = prefix
        self.backend = RedisBackend(type(self).__name__, url, client, timeout)
        self.client = self.backend.client
        self.timeout = self.backend.timeout

    def close(self) -> None:
        """Drop pooled connections (they reopen on the next call)."""
        self.backend.close()

    def health_check(self) -> Any:
        """``PING`` bounded by the store's timeout; usable as a readiness check (SPEC_OPERATIONS §6 r4).

        A Deferred (or True without a running reactor); fails with SharedStoreUnavailable
        when Redis does not answer.
        """
        return self.backend.call(self.client.ping)

    def __repr__(self) -> str:
        from ._redis_client import safe_url

        return f"{type(self).__name__}({safe_url(self.url)!r}, prefix={self.prefix!r})"


class RedisTokenBlacklist(_RedisStore):
    """Revoked JWT ids (and session ids) in Redis until their expiry, seen by every worker.

    ``add(key, expires_at)`` stores ``expires_at`` under ``prefix + key`` with a TTL
    ending at ``expires_at``; ``contains(key)`` is true while the entry exists and its
    ``expires_at`` is still ahead of ``clock`` (default: wall time; pass the app's
    clock when it is a ``task.Clock``). Outages: ``contains`` fails closed (503) unless
    ``fail_open=True`` (then an unreachable Redis counts as "not revoked"); ``add``
    always reports the outage, a revocation is never silently dropped.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        client: Any = None,
        prefix: str = "cello:jwt:revoked:",
        timeout: float = DEFAULT_TIMEOUT,
        *,
        fail_open: bool = False,
        clock: Any = None,
    ) -> None:
        super().__init__(url, client, prefix, timeout)
        self.fail_open = bool(fail_open)
        self.clock = clock
        self._revoke = self.client.register_script(REVOKE)

    def _now(self) -> float:
        return self.clock.seconds() if self.clock is not None else time.time()

    def add(self, key: str, expires_at: float) -> Any:
        expires_at = float(expires_at)
        ttl = expires_at - self._now()
        if ttl <= 0:
            return None  # already expired: nothing left to revoke
        return self.backend.call(self._add_sync, self.prefix + key, repr(expires_at), _ms(ttl))

    def _add_sync(self, name: str, expires_at: str, ttl_ms: int) -> None:
        self._revoke(keys=[name], args=[expires_at, ttl_ms])

    def contains(self, key: str) -> Any:
        name = self.prefix + key
        now = self._now()
        try:
            result = self.backend.call(self.client.get, name)
        except SharedStoreUnavailable:
            if self.fail_open:
                return False
            raise
        if hasattr(result, "addCallbacks"):
            return result.addCallbacks(self._decide, self._outage, callbackArgs=(now,))
        return self._decide(result, now)

    @staticmethod
    def _decide(value: Any, now: float) -> bool:
        if value is None:
            return False
        try:
            return float(_text(value)) > now
        except ValueError:
            return True  # a foreign value under our key: treat as revoked (fail closed)

    def _outage(self, failure: Any) -> Any:
        if self.fail_open and failure.check(SharedStoreUnavailable):
            return False
        return failure


class RedisSessionStore(_RedisStore):
    """Session data as JSON under ``prefix + sid`` with TTL ``max_age`` (SPEC §2.12 r9-r10).

    ``delete(sid)`` from any process revokes the session everywhere at once.
    Outages are always 503: session data cannot be guessed.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        client: Any = None,
        prefix: str = "cello:session:",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(url, client, prefix, timeout)

    def load(self, sid: str) -> Any:
        result = self.backend.call(self.client.get, self.prefix + sid)
        if hasattr(result, "addCallback"):
            return result.addCallback(_decode_session)
        return _decode_session(result)

    def save(self, sid: str, data: dict[str, Any], ttl: float) -> Any:
        text = json.dumps(data, separators=(",", ":"))
        return self.backend.call(self._save_sync, self.prefix + sid, text, _ms(float(ttl)))

    def _save_sync(self, name: str, text: str, ttl_ms: int) -> None:
        self.client.set(name, text, px=ttl_ms)

    def delete(self, sid: str) -> Any:
        return self.backend.call(self._delete_sync, self.prefix + sid)

    def _delete_sync(self, name: str) -> None:
        self.client.delete(name)


def _decode_session(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(_text(value))
    except ValueError:
        return None  # not ours: an unreadable entry reads as no session
    return data if isinstance(data, dict) else None


class RedisRateLimitStore(_RedisStore):
    """Exact sliding windows (sorted set) and token buckets (hash) in Redis, via atomic Lua.

    Same rules and results as MemoryRateLimitStore (SPEC §2.14 r1-r2), for every
    worker and machine sharing the Redis. Time is the ``now`` the middleware passes
    (the app's clock); keys expire one window after their last change. Outages fail
    closed (503) unless ``fail_open=True``, which lets requests through uncounted.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        client: Any = None,
        prefix: str = "cello:rl:",
        timeout: float = DEFAULT_TIMEOUT,
        *,
        fail_open: bool = False,
    ) -> None:
        super().__init__(url, client, prefix, timeout)
        self.fail_open = bool(fail_open)
        self._sliding = self.client.register_script(SLIDING_WINDOW)
        self._bucket = self.client.register_script(TOKEN_BUCKET)

    def hit(self, key: str, config: Any, now: float) -> Any:
        """Count one request for ``key`` under ``config`` at ``now``: a RateLimitResult (or Deferred)."""
        try:
            result = self.backend.call(self._hit_sync, self.prefix + key, config, float(now))
        except SharedStoreUnavailable:
            if self.fail_open:
                return _let_through(config)
            raise
        if self.fail_open and hasattr(result, "addErrback"):
            return result.addErrback(_open_on_outage, config)
        return result

    def _hit_sync(self, name: str, config: Any, now: float) -> RateLimitResult:
        window = float(config.window)
        limit = config.requests
        if config.strategy == "sliding_window":
            member = f"{now!r}:{os.urandom(6).hex()}"
            allowed, count, oldest = self._sliding(
                keys=[name], args=[repr(now - config.window), repr(now), limit, member, _ms(window)]
            )
            return _sliding_result(
                bool(allowed), int(count), float(_text(oldest)), limit, window, now
            )
        rate = limit / config.window
        allowed, tokens = self._bucket(
            keys=[name], args=[limit, repr(rate), repr(now), _ms(window), repr(EPSILON)]
        )
        return _bucket_result(bool(allowed), float(_text(tokens)), limit, rate)


def _sliding_result(
    allowed: bool, count: int, oldest: float, limit: int, window: float, now: float
) -> RateLimitResult:
    if allowed:
        reset = math.ceil(oldest + window - now - EPSILON)
        return RateLimitResult(True, limit, limit - count - 1, reset if reset > 0 else 0, 0)
    wait = max(1, ceil_seconds(oldest + window - now))
    return RateLimitResult(False, limit, 0, wait, wait)


def _bucket_result(allowed: bool, tokens: float, capacity: int, rate: float) -> RateLimitResult:
    reset = ceil_seconds((capacity - tokens) / rate)
    if allowed:
        return RateLimitResult(True, capacity, int(tokens + EPSILON), reset, 0)
    return RateLimitResult(False, capacity, 0, reset, max(1, ceil_seconds((1.0 - tokens) / rate)))


def _let_through(config: Any) -> RateLimitResult:
    return RateLimitResult(True, config.requests, max(0, config.requests - 1), 0, 0)


def _open_on_outage(failure: Any, config: Any) -> Any:
    if failure.check(SharedStoreUnavailable):
        return _let_through(config)
    return failure
