"""The Redis connection shared by the Redis stores: off-reactor calls, timeouts, back-off, 503s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.logger import Logger

from .._signals import store_failed
from ..errors import HTTPError

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT = 1.0
_BACKOFF_FIRST = 0.05  # seconds without attempts after the first failure...
_BACKOFF_MAX = 2.0  # ...doubling up to this: Redis coming back is noticed within 2 s

_log = Logger(namespace="cello_twisted.stores.redis")


class SharedStoreUnavailable(HTTPError):
    """Redis could not be reached in time: the request is answered 503 (fail closed).

    The body names the store but not the cause (``.reason``, logged once per outage),
    so no host, port or error text reaches clients.
    """

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(
            503,
            f"Shared store unavailable: {store} could not reach Redis",
            {"Retry-After": "1"},
        )
        self.store = store
        self.reason = reason


def make_client(url: str, timeout: float) -> Any:
    """A redis-py client for ``url`` whose every call is bounded by ``timeout`` seconds.

    redis-py's own retries are disabled: back-off is done here, so a dead Redis
    costs one fast failure per back-off period instead of several slow ones per request.
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Redis stores need redis-py: pip install 'cello-twisted[redis]'"
        ) from exc
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"Redis URL must start with redis://, rediss:// or unix://, not {url!r}")
    pool = redis.ConnectionPool.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return redis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))


def _outage_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
    except ImportError:  # pragma: no cover
        return (OSError,)
    return (ConnectionError, TimeoutError, BusyLoadingError, OSError)


class RedisBackend:
    """Runs blocking redis-py calls in the reactor's thread pool, never on the reactor thread.

    Every call is bounded by ``timeout`` (socket timeouts in redis-py plus a
    reactor-side deadline, which also covers a saturated thread pool). After a
    failure no call is attempted for a back-off period (50 ms doubling to 2 s) and
    requests fail at once; the first call after the period probes Redis again, so
    service resumes by itself. Without a running reactor (synchronous tests) calls
    run inline and return plain values.
    """

    def __init__(self, owner: str, url: str, client: Any, timeout: float) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.owner = owner
        self.url = url
        self.timeout = float(timeout)
        self.client = client if client is not None else make_client(url, self.timeout)
        self._errors = _outage_errors()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._backoff = 0.0
        self._reactor: Any = None

    # -- outage bookkeeping (called from worker threads and the reactor) -------------------

    def _failed(self, reason: str) -> SharedStoreUnavailable:
        store_failed(self.owner)  # cello_shared_store_errors_total{store}, when metrics are on
        with self._lock:
            first = self._backoff == 0.0
            self._backoff = _BACKOFF_FIRST if first else min(self._backoff * 2, _BACKOFF_MAX)
            self._down_until = time.monotonic() + self._backoff
        if first:
            _log.warn(
                "{owner}: Redis at {url} unavailable ({reason}); failing closed",
                owner=self.owner,
                url=safe_url(self.url),
                reason=reason,
            )
        return SharedStoreUnavailable(self.owner, reason)

    def _succeeded(self) -> None:
        if self._backoff:
            with self._lock:
                self._backoff = 0.0
                self._down_until = 0.0
            _log.info(
                "{owner}: Redis at {url} reachable again", owner=self.owner, url=safe_url(self.url)
            )

    def available(self) -> bool:
        """False while backing off after a failure (calls fail without trying)."""
        return not self._backoff or time.monotonic() >= self._down_until

    # -- calls -----------------------------------------------------------------------------

    def _guarded(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            result = fn(*args)
        except self._errors as exc:
            raise self._failed(_describe(exc)) from exc
        self._succeeded()
        return result

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` off the reactor thread: a Deferred (or a value when no reactor runs).

        Outages raise (or fail with) SharedStoreUnavailable, a 503 HTTPError.
        """
        if not self.available():
            store_failed(self.owner)
            error = SharedStoreUnavailable(self.owner, "backing off after a failure")
            return _raise_or_fail(error, self._reactor_running())
        if not self._reactor_running():
            return self._guarded(fn, args)
        from twisted.internet.threads import deferToThread

        d: Deferred[Any] = deferToThread(self._guarded, fn, args)
        d.addTimeout(self.timeout, self._reactor)
        d.addErrback(self._timed_out)
        return d

    def _timed_out(self, failure: Any) -> Any:
        if failure.check(DeferredTimeout):
            raise self._failed(f"no answer within {self.timeout:g} s")
        return failure

    def _reactor_running(self) -> bool:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        return bool(getattr(reactor, "running", False))

    def close(self) -> None:
        """Close pooled connections (the stores stay usable; connections reopen on demand)."""
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()


def _raise_or_fail(error: Exception, deferred: bool) -> Any:
    if deferred:
        return fail(error)
    raise error


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:200] if text else name


def safe_url(url: str) -> str:
    """``url`` without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in creds else '***'}@{host}"
