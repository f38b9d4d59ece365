"""The Redis connection behind each Redis store: reactor-native calls, timeouts, back-off, 503s.

On a running reactor commands go over a Twisted connection (hiredis parses replies) and
never touch a thread pool, so threaded handlers or ``run_blocking`` work cannot delay
them (SPEC §12 r1). Without a running reactor (synchronous tests, scripts) the same
commands run inline through redis-py. A ready redis-py ``client=`` runs in a small
pool of its own, never the reactor's.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._signals import store_failed
from ..errors import HTTPError
from ._redis_protocol import RedisReplyError
from ._redis_url import RedisTarget, parse_url, safe_url, sync_client

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT = 1.0
_BACKOFF_FIRST = 0.05  # seconds without attempts after the first failure...
_BACKOFF_MAX = 2.0  # ...doubling up to this: Redis coming back is noticed within 2 s
# Error replies that mean "not now" (failover, loading, resharding) rather than a bug.
OUTAGE_CODES = frozenset(
    {"CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "READONLY", "LOADING", "MASTERDOWN",
     "BUSY", "NOAUTH", "WRONGPASS", "NOPERM", "NOREPLICAS"}
)

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


class Script:
    """A Lua script run by its SHA1 (``EVALSHA``), sent in full once per server that lacks it."""

    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest().encode()


def _sync_outage_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import (
            BusyLoadingError,
            ClusterDownError,
            ConnectionError,
            ReadOnlyError,
            TimeoutError,
            TryAgainError,
        )
    except ImportError:  # pragma: no cover
        return (OSError,)
    return (
        ConnectionError, TimeoutError, BusyLoadingError, ClusterDownError, TryAgainError,
        ReadOnlyError, OSError,
    )  # fmt: skip


class RedisBackend:
    """Runs a store's Redis commands: bounded by ``timeout``, backing off after failures.

    After a failure no call is attempted for a back-off period (50 ms doubling to 2 s)
    and requests fail at once with SharedStoreUnavailable; the first call after the
    period tries again, so service resumes by itself.
    """

    def __init__(
        self, owner: str, url: str, client: Any, timeout: float, reactor: Any = None
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.owner = owner
        self.url = url
        self.timeout = float(timeout)
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor
        self.target: RedisTarget | None = None
        self.connector: Any = None
        self._client = client
        self._pool: Any = None
        self._sync_errors = _sync_outage_errors()
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._backoff = 0.0
        if client is None:
            from ._redis_nodes import connector
            from ._redis_tls import tls_options_factory

            self.target = parse_url(url)
            tls = tls_options_factory(self.target, safe_url(url))
            self.connector = connector(reactor, self.target, self.timeout, tls)

    @property
    def client(self) -> Any:
        """The redis-py client used without a running reactor (built on first use)."""
        if self._client is None:
            assert self.target is not None
            self._client = sync_client(self.target, self.timeout)
        return self._client

    # -- outage bookkeeping ------------------------------------------------------------------

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
        with self._lock:
            was_down = self._backoff != 0.0
            self._backoff = 0.0
            self._down_until = 0.0
        if was_down:
            _log.info(
                "{owner}: Redis at {url} reachable again", owner=self.owner, url=safe_url(self.url)
            )

    def available(self) -> bool:
        """False while backing off after a failure (calls fail without trying)."""
        return not self._backoff or time.monotonic() >= self._down_until

    # -- calls -------------------------------------------------------------------------------

    def command(self, key: Any, *args: Any) -> Any:
        """Run one command (``key`` routes it on a Cluster): a Deferred[Any], or a value without a reactor."""
        if not self.reactor.running:
            return self._inline(self.client.execute_command, args)
        if self._backoff and not self.available():
            store_failed(self.owner)
            return fail(SharedStoreUnavailable(self.owner, "backing off after a failure"))
        if self.connector is None:
            return self._threaded(self.client.execute_command, args)
        d = self.connector.execute(key, args)
        return d.addCallbacks(self._ok, self._native_failed, errbackArgs=(key, None))

    def script(self, script: Script, key: Any, args: Sequence[Any]) -> Any:
        """Run ``script`` on ``key`` with ``args`` atomically inside Redis."""
        if not self.reactor.running:
            return self._inline(self._script_sync, (script, key, args))
        if self._backoff and not self.available():
            store_failed(self.owner)
            return fail(SharedStoreUnavailable(self.owner, "backing off after a failure"))
        if self.connector is None:
            return self._threaded(self._script_sync, (script, key, args))
        d = self.connector.execute(key, (b"EVALSHA", script.sha, 1, key, *args))
        return d.addCallbacks(self._ok, self._native_failed, errbackArgs=(key, (script, args)))

    def health_check(self) -> Any:
        """``PING`` bounded by the timeout: True, or SharedStoreUnavailable (SPEC §6 r4)."""
        result = self.command(None, "PING")
        if isinstance(result, Deferred):
            return result.addCallback(lambda _: True)
        return True

    def _ok(self, value: Any) -> Any:
        if self._backoff:
            self._succeeded()
        return value

    def _native_failed(self, failure: Failure, key: Any, rerun: Any) -> Any:
        error = failure.value
        if isinstance(error, CancelledError):
            # The caller gave up (client disconnected, handler timeout): Redis did nothing
            # wrong, so no back-off and no 503s for the requests that follow.
            return failure
        if isinstance(error, RedisReplyError):
            code = error.code
            if code == "NOSCRIPT" and rerun is not None:  # first use on this server: send it
                script, args = rerun
                d = self.connector.execute(key, (b"EVAL", script.text, 1, key, *args))
                return d.addCallbacks(self._ok, self._native_failed, errbackArgs=(key, None))
            self.connector.on_reply_error(key, error)
            if code in OUTAGE_CODES:
                raise self._failed(_describe(error))
            return failure  # a genuine error (a bug): the app answers 500 and logs it
        if isinstance(error, SharedStoreUnavailable):
            return failure
        self.connector.on_outage()
        raise self._failed(_describe(error) if error is not None else "connection failed")

    def _script_sync(self, script: Script, key: Any, args: Sequence[Any]) -> Any:
        from redis.exceptions import NoScriptError

        client = self.client
        try:
            return client.evalsha(script.sha.decode(), 1, key, *args)
        except NoScriptError:
            return client.eval(script.text, 1, key, *args)

    def _guarded(self, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        try:
            result = fn(*args)
        except self._sync_errors as exc:
            raise self._failed(_describe(exc)) from exc
        if self._backoff:
            self._succeeded()
        return result

    def _inline(self, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        if not self.available():
            store_failed(self.owner)
            raise SharedStoreUnavailable(self.owner, "backing off after a failure")
        return self._guarded(fn, args)

    def _threaded(self, fn: Callable[..., Any], args: Sequence[Any]) -> Deferred[Any]:
        """A caller-supplied redis-py client: blocking calls in this store's own small pool."""
        from twisted.internet.threads import deferToThreadPool

        if self._pool is None:
            from ._redis_nodes import daemon_pool

            self._pool = daemon_pool(8, f"cello-redis-{self.owner}")
            self.reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)
        d: Deferred[Any] = deferToThreadPool(self.reactor, self._pool, self._guarded, fn, args)
        d.addTimeout(self.timeout, self.reactor)
        d.addErrback(self._timed_out)
        return d

    def _timed_out(self, failure: Failure) -> Any:
        if failure.check(DeferredTimeout):
            raise self._failed(f"no answer within {self.timeout:g} s")
        return failure

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()

    def close(self) -> None:
        """Close connections (the store stays usable: connections reopen on demand)."""
        if self.connector is not None:
            self.connector.close()
        client = self._client
        if client is not None:
            pool = getattr(client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()
            elif hasattr(client, "close"):
                client.close()
        self._stop_pool()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:200] if text else name
