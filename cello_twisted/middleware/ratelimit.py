"""RateLimit: sliding-window / token-bucket limits per client, globally, per blueprint or per route."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import HTTPError
from ..response import error_response
from ._chain import is_deferred
from ._util import any_path_matches, is_preflight

_STRATEGIES = ("sliding_window", "token_bucket")
_ids = itertools.count(1)


class RateLimitConfig:
    """How many ``requests`` a client may make per ``window`` seconds (SPEC §2.14).

    Args:
        requests: the limit (alias ``max_requests``).
        window: seconds (alias ``window_secs``).
        strategy: ``"sliding_window"`` or ``"token_bucket"`` (alias ``algorithm``).
        key: ``None``/``"ip"`` for the client IP, or ``fn(request) -> str | None``
            (``None`` falls back to the IP) (alias ``key_func``).
        exempt_paths: prefixes (SPEC §1 r6) neither counted nor given headers.
        store: a ``hit(key, config, now)`` store; default a new ``MemoryRateLimitStore``.
    """

    __slots__ = ("requests", "window", "strategy", "key", "exempt_paths", "store")

    def __init__(
        self,
        requests: int | None = None,
        window: float | None = None,
        strategy: str | None = None,
        key: Any = None,
        exempt_paths: Sequence[str] = (),
        store: Any = None,
        *,
        max_requests: int | None = None,
        window_secs: float | None = None,
        algorithm: str | None = None,
        key_func: Any = None,
    ) -> None:
        requests = _alias("requests", requests, "max_requests", max_requests)
        window = _alias("window", window, "window_secs", window_secs)
        strategy = _alias("strategy", strategy, "algorithm", algorithm) or "sliding_window"
        key = _alias("key", key, "key_func", key_func)
        if requests is None or window is None:
            raise ValueError("RateLimitConfig needs requests and window")
        if isinstance(requests, bool) or not isinstance(requests, int) or requests <= 0:
            raise ValueError(f"requests must be a positive integer, not {requests!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise ValueError(f"window must be a positive number of seconds, not {window!r}")
        if strategy not in _STRATEGIES:
            raise ValueError(f"unknown rate-limit strategy {strategy!r}; use one of {_STRATEGIES}")
        if not (key is None or key == "ip" or callable(key)):
            raise ValueError("key must be None, 'ip' or a callable (request) -> str | None")
        if isinstance(exempt_paths, str):
            exempt_paths = (exempt_paths,)
        self.requests = requests
        self.window = window
        self.strategy = strategy
        self.key = None if key == "ip" else key
        self.exempt_paths = tuple(exempt_paths)
        self.store = store

    @classmethod
    def sliding_window(cls, requests: int, window: float, **kw: Any) -> RateLimitConfig:
        return cls(requests, window, "sliding_window", **kw)

    @classmethod
    def token_bucket(cls, requests: int, window: float, **kw: Any) -> RateLimitConfig:
        return cls(requests, window, "token_bucket", **kw)

    # ``max_requests`` / ``window_secs`` / ``algorithm`` read back like the aliases they are.
    max_requests = property(lambda self: self.requests)
    window_secs = property(lambda self: self.window)
    algorithm = property(lambda self: self.strategy)

    def __repr__(self) -> str:
        return f"RateLimitConfig(requests={self.requests}, window={self.window}, strategy={self.strategy!r})"


def _alias(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ValueError(f"{name}= and its alias {alias}= disagree")
    return alias_value


class RateLimit:
    """Native middleware enforcing one RateLimitConfig with its own counters.

    Exactly one limiter applies to a request (SPEC §2.14 r5): the route's
    ``rate_limit=``, else the nearest blueprint's, else the app's (which also
    covers 404s and static files). Several RateLimit instances can sit in one
    chain; each acts only when it is the one that applies to ``request.route``.
    """

    native = True

    def __init__(self, config: RateLimitConfig, *, route_level: bool = False, name: str | None = None) -> None:
        if not isinstance(config, RateLimitConfig):
            raise TypeError("RateLimit needs a RateLimitConfig")
        self.config = config
        if config.store is None:
            from ..stores.ratelimit import MemoryRateLimitStore

            store: Any = MemoryRateLimitStore()
        else:
            store = config.store
        self.store = store
        self._hit = store.hit
        # Counters are per limiter: a store shared by several limiters keeps them apart.
        # The name is stable across cluster workers (same creation order in each).
        self.name = name or f"rl{next(_ids)}"
        self._prefix = self.name + ":"
        self._route_level = route_level
        self._exempt = config.exempt_paths
        self._key = config.key
        self._limit = str(config.requests)
        self._applies: dict[Any, bool] = {}

    def cluster_warning(self) -> str | None:
        if getattr(self.store, "shared", True):
            return None
        return (
            f"rate limit {self.config.requests}/{self.config.window}s uses MemoryRateLimitStore: "
            "counters are per worker process; use RedisRateLimitStore to share them"
        )

    def _applies_to(self, request: Any) -> bool:
        route = request.route
        cached = self._applies.get(route)
        if cached is None:
            cached = _owner_of(route, request.app) is self
            if len(self._applies) > 4096:  # stale compiled routes after re-registration
                self._applies.clear()
            self._applies[route] = cached
        return cached

    def _key_of(self, request: Any) -> str:
        key_fn = self._key
        if key_fn is not None:
            value = key_fn(request)
            if value is not None:
                return self._prefix + str(value)
        return self._prefix + request.client_ip

    def __call__(self, request: Any, call_next: Callable[[Any], Any]) -> Any:
        # The hot path: a few dict lookups, one store hit, three headers.
        if not self._route_level:
            applies = self._applies.get(request.route)
            if applies is None:
                applies = self._applies_to(request)
            if not applies:
                return call_next(request)
        if (self._exempt and any_path_matches(self._exempt, request.path)) or (
            request.method == "OPTIONS" and is_preflight(request)
        ):
            return call_next(request)
        key = self._prefix + request.client_ip if self._key is None else self._key_of(request)
        result = self._hit(key, self.config, request.app.clock.seconds())
        if is_deferred(result):
            return result.addCallback(self._decide, request, call_next)
        if not result[0]:
            return self._decide(result, request, call_next)
        resp = call_next(request)  # allowed, synchronous: the common case, inlined
        remaining = result[2]
        stamp = (self._limit, str(remaining) if remaining > 0 else "0", str(result[3]))
        if is_deferred(resp):
            return resp.addCallback(_stamp, stamp)
        items = resp.headers._items
        items["x-ratelimit-limit"] = ("X-RateLimit-Limit", [stamp[0]])
        items["x-ratelimit-remaining"] = ("X-RateLimit-Remaining", [stamp[1]])
        items["x-ratelimit-reset"] = ("X-RateLimit-Reset", [stamp[2]])
        return resp

    def _decide(self, result: Any, request: Any, call_next: Callable[[Any], Any]) -> Any:
        stamp = (self._limit, str(result.remaining) if result.remaining > 0 else "0", str(result.reset))
        if not result.allowed:
            wait = max(1, int(result.retry_after))
            resp = error_response(
                HTTPError(429, "Rate limit exceeded", {"Retry-After": str(wait)}, extra={"retry_after": wait})
            )
            return _stamp(resp, stamp)
        resp = call_next(request)
        if is_deferred(resp):
            return resp.addCallback(_stamp, stamp)
        return _stamp(resp, stamp)


def _stamp(resp: Any, stamp: tuple[str, str, str]) -> Any:
    # Written straight into the header map (lower-case key -> (name, values)): hot path.
    items = resp.headers._items
    items["x-ratelimit-limit"] = ("X-RateLimit-Limit", [stamp[0]])
    items["x-ratelimit-remaining"] = ("X-RateLimit-Remaining", [stamp[1]])
    items["x-ratelimit-reset"] = ("X-RateLimit-Reset", [stamp[2]])
    return resp


def _limiter_in(table: Any) -> RateLimit | None:
    for mw in table.middleware:
        if isinstance(mw, RateLimit):
            return mw
    return None


def _owner_of(route: Any, app: Any) -> RateLimit | None:
    """The limiter that applies to ``route`` (None: a 404 or static file -> the app's)."""
    if route is not None:
        if getattr(route, "rate_limit", None) is not None:
            return None  # the route's own limiter, installed innermost by the pipeline
        for bp in reversed(route.blueprints):
            found = _limiter_in(bp)
            if found is not None:
                return found
    return _limiter_in(app)


def route_limiter(app: Any, spec: Any) -> RateLimit:
    """The limiter for a route's ``rate_limit=`` config, kept across recompilations."""
    limiters = app.__dict__.setdefault("_route_limiters", {})
    limiter = limiters.get(spec)
    if limiter is None or limiter.config is not spec.rate_limit:
        config = spec.rate_limit
        if not isinstance(config, RateLimitConfig):
            raise ValueError(f"rate_limit= must be a RateLimitConfig, not {type(config).__name__}")
        limiter = RateLimit(config, route_level=True, name=f"route:{spec.method}:{spec.owner.prefix}{spec.path}")
        limiters[spec] = limiter
    return limiter


def route_cluster_warnings(app: Any) -> list[str]:
    """``cluster_warning()`` messages for routes' own ``rate_limit=`` configs (not in any chain yet)."""
    found = []
    for spec, _tables in app._walk():
        config = spec.rate_limit
        if isinstance(config, RateLimitConfig) and not getattr(config.store, "shared", config.store is not None):
            found.append(
                f"route {spec.method} {spec.path}: rate limit {config.requests}/{config.window}s uses "
                "MemoryRateLimitStore: counters are per worker process; use RedisRateLimitStore to share them"
            )
    return found
