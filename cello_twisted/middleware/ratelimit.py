"""RateLimit: sliding-window / token-bucket limits per client, globally, per blueprint or per route."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from attrs import Attribute, field, frozen

from .._defer import is_deferred, recover, then
from .._types import AppContext, ErrorHandler, Link
from .._validators import fail, one_of, positive_int, positive_number, str_tuple
from ..errors import ConfigError, HTTPError
from ..response import Response, error_response
from ..stores.ratelimit import MemoryRateLimitStore, RateLimitResult
from ..wire._headers import wire_name
from ._util import any_path_matches, is_preflight

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import RouteView, TableView
    from ..request import Request

_STRATEGIES = ("sliding_window", "token_bucket")
_ids = itertools.count(1)


def _key_converter(key: Any) -> Any:
    return None if key == "ip" else key


def _valid_key(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not (value is None or callable(value)):
        fail(instance, attribute.name, value, "None, 'ip' or a callable (request) -> str | None")


@frozen(init=False, eq=False)
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

    Raises:
        ConfigError: a value outside what the field allows (named in the error).
    """

    requests: int = field(validator=positive_int)
    window: float = field(validator=positive_number)
    strategy: str = field(validator=one_of(_STRATEGIES))
    key: Any = field(converter=_key_converter, validator=_valid_key)
    exempt_paths: tuple[str, ...] = field(converter=str_tuple)
    store: Any = field()

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
        self.__attrs_init__(
            requests=_alias("requests", requests, "max_requests", max_requests),
            window=_alias("window", window, "window_secs", window_secs),
            strategy=_alias("strategy", strategy, "algorithm", algorithm) or "sliding_window",
            key=_alias("key", key, "key_func", key_func),
            exempt_paths=exempt_paths,
            store=store,
        )

    @classmethod
    def sliding_window(cls, requests: int, window: float, **kw: Any) -> RateLimitConfig:
        return cls(requests, window, "sliding_window", **kw)

    @classmethod
    def token_bucket(cls, requests: int, window: float, **kw: Any) -> RateLimitConfig:
        return cls(requests, window, "token_bucket", **kw)

    # ``max_requests`` / ``window_secs`` / ``algorithm`` read back like the aliases they are.
    @property
    def max_requests(self) -> int:
        return self.requests

    @property
    def window_secs(self) -> float:
        return self.window

    @property
    def algorithm(self) -> str:
        return self.strategy

    def __repr__(self) -> str:
        return f"RateLimitConfig(requests={self.requests}, window={self.window}, strategy={self.strategy!r})"


def _alias(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ConfigError(
            f"RateLimitConfig.{alias}", alias_value, f"the same value as {name}= ({value!r}) or only one of them"
        )
    return alias_value


_LIMIT = wire_name("X-RateLimit-Limit")
_REMAINING = wire_name("X-RateLimit-Remaining")
_RESET = wire_name("X-RateLimit-Reset")


class RateLimit:
    """Native middleware enforcing one RateLimitConfig with its own counters.

    Exactly one limiter applies to a request (SPEC §2.14 r5): the route's
    ``rate_limit=``, else the nearest blueprint's, else the app's (which also
    covers 404s and static files). That choice is made when the routes are
    compiled: ``applies_to`` keeps a limiter out of the chains of routes it does
    not own, so a request never asks.
    """

    native = True
    feature_path_exempt = True  # never on OpenAPI/docs/health/metrics paths (SPEC_OPERATIONS principles)

    def __init__(self, config: RateLimitConfig, *, route_level: bool = False, name: str | None = None) -> None:
        if not isinstance(config, RateLimitConfig):
            raise TypeError("RateLimit needs a RateLimitConfig")
        self.config = config
        store: Any = MemoryRateLimitStore() if config.store is None else config.store
        self.store = store
        # (key, now) -> result. The memory store specialises it for this config once and
        # answers synchronously; any other store (or an overridden hit) is called as is.
        if isinstance(store, MemoryRateLimitStore) and type(store).hit is MemoryRateLimitStore.hit:
            self._hit = store.bind(config)
            self._may_defer = False
        else:
            self._hit = partial(_generic_hit, store.hit, config)
            self._may_defer = True
        # Counters are per limiter: a store shared by several limiters keeps them apart.
        # The name is stable across cluster workers (same creation order in each).
        self.name = name or f"rl{next(_ids)}"
        # A store of our own needs no key prefix; the bare client IP (whose hash Python
        # has already cached) is the cheapest key there is.
        self._prefix = "" if config.store is None else self.name + ":"
        self._bare_ip = config.key is None and not self._prefix
        self._route_level = route_level
        self._exempt = config.exempt_paths
        self._key = config.key
        self._limit = b"%d" % config.requests

    def cluster_warning(self) -> str | None:
        if getattr(self.store, "shared", True):
            return None
        return (
            f"rate limit {self.config.requests}/{self.config.window}s uses MemoryRateLimitStore: "
            "counters are per worker process; use RedisRateLimitStore to share them"
        )

    def applies_to(self, route: RouteView | None, app: TableView) -> bool:
        """Whether this limiter belongs in ``route``'s chain (None: 404s and static files)."""
        return self._route_level or _owner_of(route, app) is self

    def _key_of(self, request: Request) -> str:
        key_fn = self._key
        if key_fn is not None:
            value = key_fn(request)
            if value is not None:
                return self._prefix + str(value)
        return self._prefix + request.client_ip

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        """The generic ``(request, call_next)`` protocol; chains use ``link`` instead."""
        app = request.app
        return self.link(call_next, _reraise, AppContext(app.clock, app.threads))(request)

    def link(
        self, call_next: Link, on_error: ErrorHandler, context: AppContext, route: RouteView | None = None
    ) -> Link:
        """This limiter in front of ``call_next``, with its own error guard: the hot path.

        ``compose`` calls this once per chain. Errors raised here (a key function, a
        store) become ``on_error`` responses, as any native middleware's would; the
        inner link never raises.
        """
        hit, decide, key_of, bare_ip = self._hit, self._decide, self._key_of, self._bare_ip
        exempt, limit, may_defer = self._exempt, self._limit, self._may_defer
        seconds = context.clock.seconds  # the app's clock, resolved when the routes are compiled

        def limited(request: Request) -> Response | Deferred[Response]:
            try:
                if (exempt and any_path_matches(exempt, request.path)) or (
                    request.method == "OPTIONS" and is_preflight(request)
                ):
                    return call_next(request)
                result = hit(
                    request.client_ip if bare_ip else key_of(request),
                    seconds(),
                )
                if may_defer and is_deferred(result):  # a shared store answers later
                    return result.addCallback(decide, request, call_next).addErrback(recover, request, on_error)
                if not result[0]:
                    return decide(result, request, call_next)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                return on_error(request, exc)
            resp = call_next(request)  # allowed: the common case
            remaining = result[2]
            stamp = {
                _LIMIT: [limit],
                _REMAINING: [b"%d" % remaining if remaining > 0 else b"0"],
                _RESET: [b"%d" % result[3]],
            }
            if type(resp) is Response and resp.encoded_headers is None:
                resp.encoded_headers = stamp
                return resp
            return then(resp, partial(_stamped, stamp=stamp))

        return limited

    def _decide(self, result: Any, request: Request, call_next: Link) -> Response | Deferred[Response]:
        """The uncommon outcomes: a rejection, or a result that arrived asynchronously."""
        result = RateLimitResult(*result)
        remaining = int(result.remaining)
        stamp = {  # the same headers as the hot path in link()
            _LIMIT: [self._limit],
            _REMAINING: [b"%d" % remaining if remaining > 0 else b"0"],
            _RESET: [b"%d" % int(result.reset)],
        }
        if not result.allowed:
            wait = max(1, int(result.retry_after))
            request.refused_by = "rate_limit"  # counted by metrics (cello_rate_limited_total)
            resp = error_response(
                HTTPError(429, "Rate limit exceeded", {"Retry-After": str(wait)}, extra={"retry_after": wait}),
                request.id,
            )
            return _stamped(resp, stamp)
        return then(call_next(request), partial(_stamped, stamp=stamp))


def _reraise(request: Request, exc: BaseException) -> NoReturn:
    raise exc


def _generic_hit(hit: Callable[..., Any], config: RateLimitConfig, key: str, now: float) -> Any:
    return hit(key, config, now)


def _stamped(resp: Response, stamp: dict[bytes, list[bytes]]) -> Response:
    resp.add_encoded_headers(stamp)
    return resp


def _limiter_in(table: TableView) -> RateLimit | None:
    for mw in table.middleware:
        if isinstance(mw, RateLimit):
            return mw
    return None


def _owner_of(route: RouteView | None, app: TableView) -> RateLimit | None:
    """The limiter that applies to ``route`` (None: a 404 or static file -> the app's)."""
    if route is not None:
        if getattr(route, "rate_limit", None) is not None:
            return None  # the route's own limiter, installed innermost by the pipeline
        for bp in reversed(route.blueprints):
            found = _limiter_in(bp)
            if found is not None:
                return found
    return _limiter_in(app)


def route_limiter(context: AppContext, spec: Any) -> RateLimit:
    """The limiter for a route's ``rate_limit=`` config, kept across recompilations."""
    limiters = context.kept
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
    for spec, _tables in app.walk_routes():
        config = spec.rate_limit
        if isinstance(config, RateLimitConfig) and not getattr(config.store, "shared", config.store is not None):
            found.append(
                f"route {spec.method} {spec.path}: rate limit {config.requests}/{config.window}s uses "
                "MemoryRateLimitStore: counters are per worker process; use RedisRateLimitStore to share them"
            )
    return found
