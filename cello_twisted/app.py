"""App: the route table at the root, its middleware, lifecycle and ways to serve it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ._types import AppContext, hooks_of
from ._validators import check_timeout, fail
from .errors import ConfigError
from .middleware._chain import AfterRequest, BeforeRequest
from .request import TrustedProxies
from .routing._pattern import join_paths, parse_pattern
from .routing._table import RouteSpec, RouteTable
from .server._lifecycle import Lifecycle, check_event
from .server._threads import ReactorThreads

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint

    from .guards import GuardLike
    from .middleware.csrf import Csrf, CsrfConfig
    from .middleware.jwt import JwtAuth, JwtConfig
    from .middleware.logging import RequestLogging
    from .middleware.security_headers import SecurityHeaders, SecurityHeadersConfig
    from .middleware.session import SessionConfig, Sessions
    from .ops.health import Health, HealthCheck
    from .ops.metrics import Metrics
    from .ops.openapi import OpenApi
    from .ops.request_id import RequestId
    from .request import Request
    from .response import Response
    from .routing._compile import CompiledRoute, Pipeline
    from .routing._resource import AppResource
    from .server._site import CelloSite
    from .server._threads import Threads
    from .static._mount import StaticFilesConfig, StaticMount
    from .testing._client import TestClient


class App(RouteTable):
    """A Cello application.

    Args:
        max_body_size: request bodies above this many bytes get 413 (None: no limit).
        trusted_proxies: peers (IPs, CIDRs or ``"*"``) allowed to set X-Forwarded-For.
        clock: an ``IReactorTime`` for every time-based feature; defaults to the reactor.
        strict_secrets: refuse short secrets in every environment, not only production.
        lifespan: ``lifespan(app)`` returning an async context manager, entered after the
            startup hooks and exited before the shutdown hooks; a yielded mapping's items
            are set on ``app.state`` (SPEC_OPERATIONS §8).
        handler_timeout: seconds a route (handler and middleware) may take to produce a
            response before it is cancelled and answered 503; a route's ``timeout=``
            overrides it. None: no limit.
        max_concurrent_requests: per worker, a request arriving while this many are in
            progress gets 503 + ``Retry-After: 1`` before routing (None: no load shedding).
        max_form_fields: urlencoded or multipart bodies with more fields get 400.
    """

    def __init__(
        self,
        *,
        max_body_size: int | None = 10 * 1024 * 1024,
        trusted_proxies: Sequence[str] = (),
        clock: IReactorTime | None = None,
        strict_secrets: bool = False,
        lifespan: Callable[[App], Any] | None = None,
        handler_timeout: float | None = None,
        max_concurrent_requests: int | None = None,
        max_form_fields: int = 1000,
    ) -> None:
        super().__init__()
        self.max_body_size = max_body_size
        self.trusted_proxies = TrustedProxies(trusted_proxies)
        self.strict_secrets = strict_secrets
        if isinstance(max_form_fields, bool) or not isinstance(max_form_fields, int) or max_form_fields < 1:
            fail(self, "max_form_fields", max_form_fields, "an int >= 1")
        self.max_form_fields = max_form_fields
        self.handler_timeout = check_timeout(handler_timeout, "App.handler_timeout")
        if max_concurrent_requests is not None and (
            isinstance(max_concurrent_requests, bool)
            or not isinstance(max_concurrent_requests, int)
            or max_concurrent_requests < 1
        ):
            fail(self, "max_concurrent_requests", max_concurrent_requests, "None or an int >= 1")
        self.max_concurrent_requests = max_concurrent_requests
        self.state = SimpleNamespace()
        self.env = "development"
        self.debug = False
        self.static_mounts: list[StaticMount] = []
        self.broadcast: Any = None  # a Broadcast (SPEC §10), set by the application
        # What routes and middleware are handed when compiled: clock, threads, finalizers.
        self.context = AppContext(clock, ReactorThreads())
        # Hooks and serving state used by server/ (run, listen, twistd, workers).
        self.lifecycle = Lifecycle()
        if lifespan is not None and not callable(lifespan):
            raise ConfigError("App.lifespan", lifespan, "a callable lifespan(app) returning an async context manager")
        self.lifecycle.lifespan = lifespan
        # The compiled routes; None until the next request compiles them (registration is live).
        self.pipeline: Pipeline | None = None
        self._enabled_jwt: JwtAuth | None = None
        # Routes added by ``enable_*`` features (OpenAPI, docs, ...), by feature name.
        self._feature_routes: dict[str, list[RouteSpec]] = {}

    # -- configuration -------------------------------------------------------

    @property
    def clock(self) -> IReactorTime:
        """The clock of every time-based feature: the reactor unless one was given."""
        return self.context.clock

    @clock.setter
    def clock(self, value: IReactorTime) -> None:
        self.context.clock = value
        self.invalidate()  # compiled chains captured the old clock

    @property
    def threads(self) -> Threads:
        """The thread hand-off (reactor pool + callFromThread; the test client swaps its own in)."""
        return self.context.threads

    @threads.setter
    def threads(self, value: Threads) -> None:
        self.context.threads = value

    def invalidate(self) -> None:
        """Registrations changed: recompile the routes on the next request."""
        self.pipeline = None

    def compile(self) -> Pipeline:
        """Compile the routes now (done by the first request after a change)."""
        from .routing._compile import compile_app

        self.clock  # noqa: B018 - resolves the default clock before the chains capture it
        self.pipeline = compile_app(self)
        return self.pipeline

    def _check_unique(self, tables: tuple[RouteTable, ...], spec: RouteSpec) -> None:
        new_shape = _shape(tables, spec)
        for existing, chain in self.walk_routes():
            if existing.method == spec.method and _shape(chain, existing) == new_shape:
                raise ValueError(f"route {spec.method} {join_paths(*(t.prefix for t in tables), spec.path)} is already registered")

    def _vet(self, middleware: object) -> None:
        bind_clock = hooks_of(middleware).bind_clock
        if bind_clock is not None and self.context.clock_given:
            bind_clock(self.context.clock)  # e.g. JwtAuth: token times follow app.clock (SPEC §1 r7)
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

    def before_request(self, fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        self.use(BeforeRequest(fn))
        return fn

    def after_request(self, fn: Callable[[Request, Response], Any]) -> Callable[[Request, Response], Any]:
        self.use(AfterRequest(fn))
        return fn

    def enable_logging(self, exclude_paths: Sequence[str] = ("/health", "/metrics", "/favicon.ico"), colors: bool | None = None) -> RequestLogging:
        from .middleware.logging import RequestLogging

        return self._install(RequestLogging(exclude_paths=exclude_paths, colors=colors))

    def enable_jwt(self, config: JwtConfig, *, required: bool = False, skip_paths: Sequence[str] = ()) -> JwtAuth:
        from .middleware.jwt import JwtAuth

        enabled: JwtAuth = self._install(JwtAuth(config, required=required, skip_paths=skip_paths))
        self._enabled_jwt = enabled
        return enabled

    def enable_sessions(self, config: SessionConfig) -> Sessions:
        from .middleware.session import Sessions

        return self._install(Sessions(config))

    enable_session = enable_sessions

    def enable_csrf(self, config: CsrfConfig | None = None) -> Csrf:
        from .middleware.csrf import Csrf

        return self._install(Csrf(config))

    def enable_security_headers(self, config: SecurityHeadersConfig | None = None) -> SecurityHeaders:
        from .middleware.security_headers import SecurityHeaders

        # A finalizer, not a chain link: applied where every response is written,
        # whatever the registration position (SPEC §2.15 r1); a second call replaces it.
        headers = SecurityHeaders(config)
        finalizers = self.context.finalizers
        finalizers[:] = [f for f in finalizers if not isinstance(getattr(f, "__self__", None), SecurityHeaders)]
        finalizers.append(headers.finalize)
        return headers

    def enable_static_files(self, config: StaticFilesConfig) -> StaticMount:
        from .static._mount import StaticMount

        mount = StaticMount(config)
        self.static_mounts.append(mount)
        self.invalidate()
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
        guards: Sequence[GuardLike] | None = None,
    ) -> OpenApi:
        """Serve an OpenAPI 3.1.0 document at ``path`` and Swagger UI at ``docs_path`` (SPEC_OPERATIONS §9)."""
        from .ops.openapi import OpenApi, OpenApiSettings

        feature = OpenApi(OpenApiSettings(path, docs_path, title, version, description, servers), self)
        self.set_feature_routes("openapi", feature.routes(), guards=guards)
        return feature

    def enable_request_id(
        self, header: str = "X-Request-ID", trust_incoming: bool = True, generator: Callable[[], str] | None = None
    ) -> RequestId:
        """``request.id`` and the ``header`` on every response (SPEC_OPERATIONS §5).

        A valid incoming ID is kept when ``trust_incoming``; otherwise ``generator()``
        (default: 32 hex characters from uuid4) makes one. Installed outermost.
        """
        from .ops.request_id import RequestId

        feature = RequestId(header, trust_incoming, generator)
        self._outermost(feature)
        return feature

    def enable_health(
        self,
        path: str = "/health",
        checks: dict[str, HealthCheck] | None = None,
        timeout: float = 2.0,
        drain_delay: float = 5.0,
        *,
        guards: Sequence[GuardLike] | None = None,
    ) -> Health:
        """``{path}/live`` and ``{path}/ready`` (SPEC_OPERATIONS §6); a graceful stop keeps
        serving ``drain_delay`` seconds with readiness 503 before it stops accepting."""
        from .ops.health import Health

        feature = Health(self, path, checks, timeout, drain_delay)
        self.set_feature_routes("health", feature.routes(), guards=guards)
        self.lifecycle.drain_delay = feature.drain_delay
        return feature

    def enable_metrics(
        self,
        path: str = "/metrics",
        registry: Any = None,
        buckets: Sequence[float] | None = None,
        *,
        guards: Sequence[GuardLike] | None = None,
    ) -> Metrics:
        """Prometheus metrics at ``path`` (SPEC_OPERATIONS §7; needs the ``[metrics]`` extra)."""
        from .ops.metrics import Metrics, MultiprocessDirectory

        feature = Metrics(self, path, registry, buckets)
        self.set_feature_routes("metrics", feature.routes(), guards=guards)
        self._outermost(feature.middleware)
        plugins = self.lifecycle.cluster_plugins
        plugins[:] = [p for p in plugins if not isinstance(p, MultiprocessDirectory)] + [MultiprocessDirectory()]
        return feature

    def _outermost(self, middleware: object) -> None:
        """Install ``middleware`` first in the chain, replacing one of its class."""
        self._vet(middleware)
        self.middleware[:] = [mw for mw in self.middleware if type(mw) is not type(middleware)]
        self.middleware.insert(0, middleware)
        self.invalidate()

    def set_feature_routes(
        self,
        feature: str,
        routes: Sequence[tuple[str, Callable[[Request], Any]]],
        *,
        guards: Sequence[GuardLike] | None = None,
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
            self.invalidate()
            raise
        self._feature_routes[feature] = added
        self.invalidate()

    def compiled_routes(self) -> tuple[CompiledRoute, ...]:
        """Every route as served (full path, the middleware and guards that apply), in
        registration order; compiles the table first if it changed."""
        return (self.pipeline or self.compile()).routes

    @property
    def jwt(self) -> JwtAuth:
        from .middleware.jwt import JwtAuth

        enabled = self._enabled_jwt
        candidates = [enabled] if enabled is not None and enabled in self.middleware else []
        for mw in candidates + self.middleware:
            if isinstance(mw, JwtAuth):
                if mw.clock is None:
                    mw.bind_clock(self.clock)  # token times follow app.clock (SPEC §1 r7)
                return mw
        raise RuntimeError("no JWT configured: call app.enable_jwt(JwtConfig(...)) or app.use(JwtAuth(...))")

    # -- lifecycle -----------------------------------------------------------

    def on_event(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        check_event(name)

        def decorator(fn: Callable[[], Any]) -> Callable[[], Any]:
            self.lifecycle.add_hook(name, fn)
            return fn

        return decorator

    def run_hooks(self, name: str) -> Deferred[None]:
        """Run the ``name`` hooks in order, each awaited before the next."""
        return self.lifecycle.run_hooks(name)

    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Run blocking ``fn`` in the reactor's thread pool (inline when no reactor runs)."""
        return self.context.threads.run_blocking(fn, *args, **kwargs)

    def cooperate(self, steps: Iterator[object]) -> Deferred[None]:
        """Run ``steps`` (an iterator doing a little work per item) between reactor events.

        Fires when the iterator is exhausted. Runs inline when no reactor runs (and
        under the in-memory test client), like ``run_blocking``.
        """
        return self.context.threads.cooperate(steps)

    # -- serving -------------------------------------------------------------

    def resource(self) -> AppResource:
        from .routing._resource import AppResource

        return AppResource(self)

    def site(self, **site_kwargs: Any) -> CelloSite:
        """A Site serving this app; accepts the connection limits ``app.run()`` takes
        (header_timeout, body_timeout, keep_alive_timeout, max_header_count, max_header_bytes, backlog)."""
        from .server._embed import build_site

        return build_site(self, site_kwargs)

    def listen(
        self, endpoint: IStreamServerEndpoint | str, reactor: Any = None, **site_kwargs: Any
    ) -> Deferred[IListeningPort]:
        from .server._embed import listen

        return listen(self, endpoint, reactor, **site_kwargs)

    def run(self, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
        from .server._runner import run

        run(self, host=host, port=port, **kwargs)

    def test_client(self, **kwargs: Any) -> TestClient:
        from .testing._client import TestClient

        return TestClient(self, **kwargs)


def _secret_problems_of(middleware: object) -> list[str]:
    check = hooks_of(middleware).secret_problems
    return list(check()) if check is not None else []


def _shape(tables: Sequence[RouteTable], spec: RouteSpec) -> str:
    full = join_paths(*(t.prefix for t in tables), spec.path)
    return "/" + "/".join(s.shape() for s in parse_pattern(full, spec.constraints))
