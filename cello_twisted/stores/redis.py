"""Redis stores: token revocation, sessions and rate limits shared by every worker and machine.

Each store takes ``url`` (``redis://[user:password@]host:port/db``, ``rediss://`` for
TLS, ``unix:///path.sock?db=0``, ``redis+sentinel://``, ``redis+cluster://``) or a ready
redis-py ``client``, a key ``prefix`` and a ``timeout`` (seconds) that bounds every call.
Calls go over a reactor-native connection (no thread pool); an unreachable Redis answers
the request with a 503 (``SharedStoreUnavailable``) within ``timeout`` and service
resumes by itself when Redis is back (SPEC §2.10, §2.12, §2.14, §12).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from twisted.internet.defer import Deferred

from ._redis_client import (
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    RedisBackend,
    Script,
    SharedStoreUnavailable,
)
from ._redis_scripts import REVOKE, SLIDING_WINDOW, TOKEN_BUCKET
from ._redis_url import safe_url
from ._registry import track
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
    """Common constructor: one connection and back-off state per store instance."""

    shared = True  # state lives in Redis: no per-process cluster warning

    def __init__(self, url: str, client: Any, prefix: str, timeout: float) -> None:
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        self.url = url
        self.prefix = prefix
        self.backend = RedisBackend(type(self).__name__, url, client, timeout)
        self.timeout = self.backend.timeout
        track(self)

    @property
    def client(self) -> Any:
        """The redis-py client used when no reactor runs (or the one passed as ``client=``)."""
        return self.backend.client

    def health_check(self) -> Any:
        """``PING`` bounded by ``timeout``, usable as a readiness check (SPEC_OPERATIONS §6 r4).

        True (or a Deferred firing True); SharedStoreUnavailable (a 503) when Redis does not answer.
        """
        return self.backend.health_check()

    def close(self) -> None:
        """Close the connections (they reopen on the next call); the app calls it at a graceful stop."""
        self.backend.close()

    def __repr__(self) -> str:
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
        self._revoke = Script(REVOKE)

    def _now(self) -> float:
        return self.clock.seconds() if self.clock is not None else time.time()

    def add(self, key: str, expires_at: float) -> Any:
        expires_at = float(expires_at)
        ttl = expires_at - self._now()
        if ttl <= 0:
            return None  # already expired: nothing left to revoke
        result = self.backend.script(self._revoke, self.prefix + key, (repr(expires_at), _ms(ttl)))
        return result.addCallback(_none) if isinstance(result, Deferred) else None

    def contains(self, key: str) -> Any:
        name = self.prefix + key
        now = self._now()
        try:
            result = self.backend.command(name, "GET", name)
        except SharedStoreUnavailable:
            if self.fail_open:
                return False
            raise
        if isinstance(result, Deferred):
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
        name = self.prefix + sid
        result = self.backend.command(name, "GET", name)
        if isinstance(result, Deferred):
            return result.addCallback(_decode_session)
        return _decode_session(result)

    def save(self, sid: str, data: dict[str, Any], ttl: float) -> Any:
        text = json.dumps(data, separators=(",", ":"))
        name = self.prefix + sid
        result = self.backend.command(name, "SET", name, text, "PX", _ms(float(ttl)))
        return result.addCallback(_none) if isinstance(result, Deferred) else None

    def delete(self, sid: str) -> Any:
        name = self.prefix + sid
        result = self.backend.command(name, "DEL", name)
        return result.addCallback(_none) if isinstance(result, Deferred) else None


def _none(_: Any) -> None:
    return None


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
        self._sliding = Script(SLIDING_WINDOW)
        self._bucket = Script(TOKEN_BUCKET)

    def hit(self, key: str, config: Any, now: float) -> Any:
        """Count one request for ``key`` under ``config`` at ``now``: a RateLimitResult (or Deferred[Any])."""
        name = self.prefix + key
        now = float(now)
        window = float(config.window)
        limit = config.requests
        try:
            if config.strategy == "sliding_window":
                member = f"{now!r}:{os.urandom(6).hex()}"
                args: tuple[Any, ...] = (repr(now - window), repr(now), limit, member, _ms(window))
                result = self.backend.script(self._sliding, name, args)
                decode: Any = _decode_sliding
                extra: tuple[Any, ...] = (limit, window, now)
            else:
                rate = limit / window
                args = (limit, repr(rate), repr(now), _ms(window), repr(EPSILON))
                result = self.backend.script(self._bucket, name, args)
                decode, extra = _decode_bucket, (limit, rate)
        except SharedStoreUnavailable:
            if self.fail_open:
                return _let_through(config)
            raise
        if not isinstance(result, Deferred):
            return decode(result, *extra)
        result.addCallback(decode, *extra)
        if self.fail_open:
            result.addErrback(_open_on_outage, config)
        return result


def _decode_sliding(reply: Any, limit: int, window: float, now: float) -> RateLimitResult:
    allowed, count, oldest = reply
    return _sliding_result(bool(allowed), int(count), float(_text(oldest)), limit, window, now)


def _decode_bucket(reply: Any, limit: int, rate: float) -> RateLimitResult:
    allowed, tokens = reply
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
