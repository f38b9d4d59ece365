"""App: the route table at the root, its middleware, lifecycle and ways to serve it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed

from .middleware._chain import AfterRequest, BeforeRequest
from .request import TrustedProxies
from .routing._pattern import join_paths, parse_pattern
from .routing._table import RouteSpec, RouteTable

_EVENTS = ("startup", "shutdown")


class App(RouteTable):
    """A Cello application.

    Args:
        max_body_size: request bodies above this many bytes get 413 (None: no limit).
        trusted_proxies: peers (IPs, CIDRs or ``"*"``) allowed to set X-Forwarded-For.
        clock: an ``IReactorTime`` for every time-based feature; defaults to the reactor.
        strict_secrets: refuse short secrets in every environment, not only production.
    """

    def __init__(
        self,
        *,
        max_body_size: int | None = 10 * 1024 * 1024,
        trusted_proxies: Sequence[str] = (),
        clock: Any = None,
        strict_secrets: bool = False,
    ) -> None:
        super().__init__()
        self.max_body_size = max_body_size
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self._clock = clock
        self.strict_secrets = strict_secrets
        self.state = SimpleNamespace()
        self.env = "development"
        self.debug = False
        self.static_mounts: list[Any] = []
        self._finalizers: list[Callable[[Any, Any], None]] = []
        self._hooks: dict[str, list[Callable[[], Any]]] = {name: [] for name in _EVENTS}
        self._started = False
        self._shutdown_registered = False
        self._pipeline: Any = None
        self._thread_pool_ready = False
        self._secret_checks: list[tuple[str, int, int]] = []  # (config name, length, minimum)
        self._feature_routes: dict[str, list[RouteSpec]] = {}

    # -- configuration -------------------------------------------------------

    @property
    def clock(self) -> Any:
        if self._clock is None:
            from twisted.internet import reactor

            self._clock = reactor
        return self._clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self._clock = value

    def _changed(self) -> None:
        self._pipeline = None

    def _compile(self) -> Any:
        from .routing._compile import compile_app

        self.clock  # noqa: B018 - resolves the default clock now: request hot paths read ``_clock``
        self._pipeline = compile_app(self)
        return self._pipeline

    def _check_unique(self, tables: tuple[RouteTable, ...], spec: RouteSpec) -> None:
        new_shape = _shape(tables, spec)
        for existing, chain in self._walk():
            if existing.method == spec.method and _shape(chain, existing) == new_shape:
                raise ValueError(f"route {spec.method} {join_paths(*(t.prefix for t in tables), spec.path)} is already registered")

    def _vet(self, middleware: Any) -> None:
        bind_clock = getattr(middleware, "bind_clock", None)
        if bind_clock is not None and self._clock is not None:
            bind_clock(self._clock)  # e.g. JwtAuth: token times follow app.clock (SPEC §1 r7)
        if self.strict_secrets:
            problems = _secret_problems_of(middleware)
            if problems:
                raise ValueError(problems[0])

    def secret_problems(self) -> list[str]:
        """Short-secret findings of every installed middleware (SPEC §1 r8).

        Middleware with secrets exposes ``secret_problems() -> list[str]``, each a
        one-line message naming the config and the minimum length.
        """
        found: list[str] = []
        tables: list[RouteTable] = [self]
        while tables:
            table = tables.pop(0)
            for mw in table.middleware:
                found += _secret_problems_of(mw)
            tables += table.blueprints
        return found

    # -- middleware ----------------------------------------------------------

    def before_request(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        self.use(BeforeRequest(fn))
        return fn

    def after_request(self, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        self.use(AfterRequest(fn))
        return fn

    def enable_logging(self, exclude_paths: Sequence[str] = ("/health", "/metrics", "/favicon.ico"), colors: bool | None = None) -> Any:
        from .middleware.logging import RequestLogging

        return self._install(RequestLogging(exclude_paths=exclude_paths, colors=colors))

    def enable_jwt(self, config: Any, *, required: bool = False, skip_paths: Sequence[str] = ()) -> Any:
        from .middleware.jwt import JwtAuth

        self._enabled_jwt = self._install(JwtAuth(config, required=required, skip_paths=skip_paths))
        return self._enabled_jwt

    def enable_sessions(self, config: Any) -> Any:
        from .middleware.session import Sessions

        return self._install(Sessions(config))

    enable_session = enable_sessions

    def enable_csrf(self, config: Any = None) -> Any:
        from .middleware.csrf import Csrf

        return self._install(Csrf(config))

    def enable_security_headers(self, config: Any = None) -> Any:
        from .middleware.security_headers import SecurityHeaders

        # A finalizer, not a chain link: applied where every response is written,
        # whatever the registration position (SPEC §2.15 r1); a second call replaces it.
        headers = SecurityHeaders(config)
        self._finalizers[:] = [
            f for f in self._finalizers if not isinstance(getattr(f, "__self__", None), SecurityHeaders)
        ]
        self._finalizers.append(headers.finalize)
        return headers

    def enable_static_files(self, config: Any) -> Any:
        from .static._mount import StaticMount

        mount = StaticMount(config)
        self.static_mounts.append(mount)
        self._changed()
        return mount

    def enable_body_limit(self, max_size: int = 10485760) -> None:
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.max_body_size = max_size

    def enable_openapi(
        self,
        path: str = "/openapi.json",
        docs_path: str | None = "/docs",
        title: str | None = None,
        version: str = "0.1.0",
        description: str | None = None,
        servers: Sequence[str | dict[str, Any]] | None = None,
        *,
        guards: Sequence[Any] | None = None,
    ) -> Any:
        """Serve an OpenAPI 3.1.0 document at ``path`` and Swagger UI at ``docs_path`` (SPEC_OPERATIONS §9)."""
        from .ops.openapi import OpenApi, OpenApiSettings

        feature = OpenApi(OpenApiSettings(path, docs_path, title, version, description, servers))
        self.set_feature_routes("openapi", feature.routes(), guards=guards)
        return feature

    def set_feature_routes(
        self, feature: str, routes: Sequence[tuple[str, Callable[[Any], Any]]], *, guards: Sequence[Any] | None = None
    ) -> None:
        """Register (or, called again, replace) the GET routes of an ``enable_*`` feature.

        Feature paths are left out of the API description and of rate limits, CSRF,
        sessions, request logging and the JWT requirement (SPEC_OPERATIONS principles);
        ``guards`` apply to them like to any route.
        """
        old = self._feature_routes.pop(feature, [])
        self.routes[:] = [spec for spec in self.routes if spec not in old]
        added: list[RouteSpec] = []
        try:
            for path, handler in routes:
                spec = RouteSpec(path, "GET", handler, self, guards=guards, feature_path=True)
                self._add(spec)
                added.append(spec)
        except Exception:
            self.routes[:] = [spec for spec in self.routes if spec not in added] + old
            self._feature_routes[feature] = old
            self._changed()
            raise
        self._feature_routes[feature] = added
        self._changed()

    def compiled_routes(self) -> tuple[Any, ...]:
        """Every route as served (full path, the middleware and guards that apply), in
        registration order; compiles the table first if it changed."""
        return (self._pipeline or self._compile()).routes

    @property
    def jwt(self) -> Any:
        from .middleware.jwt import JwtAuth

        enabled = getattr(self, "_enabled_jwt", None)
        candidates = [enabled] if enabled is not None and enabled in self.middleware else []
        for mw in candidates + self.middleware:
            if isinstance(mw, JwtAuth):
                if mw.clock is None:
                    mw.bind_clock(self.clock)  # token times follow app.clock (SPEC §1 r7)
                return mw
        raise RuntimeError("no JWT configured: call app.enable_jwt(JwtConfig(...)) or app.use(JwtAuth(...))")

    # -- lifecycle -----------------------------------------------------------

    def on_event(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        if name not in _EVENTS:
            raise ValueError(f"unknown event {name!r}; use 'startup' or 'shutdown'")

        def decorator(fn: Callable[[], Any]) -> Callable[[], Any]:
            self._hooks[name].append(fn)
            return fn

        return decorator

    def run_hooks(self, name: str) -> Deferred:
        """Run the ``name`` hooks in order, each awaited before the next."""
        hooks = list(self._hooks[name])

        def call(fn: Callable[[], Any]) -> Deferred:
            def invoke() -> Any:
                result = fn()
                return Deferred.fromCoroutine(result) if inspect.iscoroutine(result) else result

            return maybeDeferred(invoke)

        d: Deferred = succeed(None)
        for fn in hooks:
            d.addCallback(lambda _, fn=fn: call(fn))
        return d

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run blocking ``fn`` in the reactor's thread pool (inline when no reactor runs)."""
        from twisted.internet import reactor

        if getattr(reactor, "running", False) and not getattr(self, "_inline_blocking", False):
            from twisted.internet.threads import deferToThread

            return deferToThread(fn, *args, **kwargs)
        return maybeDeferred(fn, *args, **kwargs)

    # -- serving -------------------------------------------------------------

    def resource(self) -> Any:
        from .routing._resource import AppResource

        return AppResource(self)

    def site(self, **site_kwargs: Any) -> Any:
        from .server._site import CelloSite

        return CelloSite(self.resource(), max_body_size=self.max_body_size, **site_kwargs)

    def listen(self, endpoint: Any, reactor: Any = None) -> Deferred:
        from .server._embed import listen

        return listen(self, endpoint, reactor)

    def run(self, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
        from .server._runner import run

        run(self, host=host, port=port, **kwargs)

    def test_client(self, **kwargs: Any) -> Any:
        from .testing._client import TestClient

        return TestClient(self, **kwargs)


def _secret_problems_of(middleware: Any) -> list[str]:
    check = getattr(middleware, "secret_problems", None)
    return list(check()) if callable(check) else []


def _shape(tables: Sequence[RouteTable], spec: RouteSpec) -> str:
    full = join_paths(*(t.prefix for t in tables), spec.path)
    return "/" + "/".join(s.shape() for s in parse_pattern(full, spec.constraints))
