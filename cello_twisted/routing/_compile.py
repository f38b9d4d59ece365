"""Compile an App's tables into a router whose entries hold ready-made chains.

Done once at start-up and again only after a registration changes something
(registration is live, SPEC §2.4 r2), never per request.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred

from .. import _json
from .._defer import settle
from .._types import AppContext, Link, RouteView, TableView, hooks_of
from ..errors import BadRequestError, HTTPError, PayloadTooLargeError
from ..guards import run_guards
from ..middleware._chain import compose
from ..middleware._errors import ErrorHandling
from ..middleware._timeout import with_timeout
from ..request import AppView, Request
from ..response import JSON_TYPE, Response
from ..wire._writer import ResponseWriter
from ._blocking import BLOCKING_THRESHOLD, BlockingWatch, timed_call, watch_for
from ._mount import MountDispatch, MountRoute, mount_path
from ._pattern import join_paths, parse_pattern
from ._router import PathEntry, Router

if TYPE_CHECKING:
    from ..guards import GuardLike
    from ..server._lifecycle import Lifecycle
    from ..static._mount import StaticMount
    from ._mount import MountSpec
    from ._table import RouteSpec, RouteTable


class RoutedApp(AppView, Protocol):
    """What the compiler and the Resource use of an App (declared here: app.py sits above)."""

    context: AppContext
    lifecycle: Lifecycle
    pipeline: Pipeline | None
    max_body_size: int | None
    static_mounts: list[StaticMount]
    guards: list[GuardLike]
    exception_handlers: dict[type, Callable[..., Any]]
    handler_timeout: float | None

    @property
    def middleware(self) -> Sequence[Any]: ...

    @property
    def blueprints(self) -> Sequence[TableView]: ...

    def compile(self) -> Pipeline: ...

    def walk_routes(self) -> Iterator[tuple[RouteSpec, tuple[RouteTable, ...]]]: ...

    def walk_mounts(self) -> Iterator[tuple[MountSpec, tuple[RouteTable, ...]]]: ...


class CompiledRoute:
    """A route as served: full path, the enclosing blueprints and its chain."""

    __slots__ = (
        "spec",
        "path",
        "method",
        "param_names",
        "blueprints",
        "chain",
        "handler",
        "rate_limit",
        "middleware",
        "guards",
    )

    def __init__(self, spec: RouteSpec, path: str, param_names: list[str], blueprints: tuple[RouteTable, ...]) -> None:
        self.spec = spec
        self.path = path
        self.method = spec.method
        self.param_names = param_names
        self.blueprints = blueprints
        self.handler = spec.handler
        self.rate_limit = spec.rate_limit
        self.chain: Link = _unset
        # What applies to it, outermost first (read by the API description).
        self.middleware: list[Any] = []
        self.guards: list[GuardLike] = []

    @property
    def name(self) -> str | None:
        return self.spec.name

    @property
    def feature_path(self) -> bool:
        """Added by an ``enable_*`` feature (OpenAPI, docs, ...): no JWT requirement."""
        return self.spec.feature_path

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.path}>"


def _unset(request: Request) -> Response:
    raise RuntimeError("route chain used before compilation finished")


class Pipeline:
    """What AppResource consults per request."""

    __slots__ = ("router", "not_found", "bad_path", "too_large", "raw_static", "write", "routes", "new_request")

    def __init__(
        self,
        router: Router,
        not_found: Link,
        bad_path: Link,
        too_large: Link,
        writer: ResponseWriter,
        routes: Sequence[CompiledRoute] = (),
        new_request: type[Request] = Request,
    ) -> None:
        self.new_request = new_request  # the class AppResource builds (request IDs do their work there)
        self.write = writer.write
        self.router = router
        self.routes = tuple(routes)  # every route in registration order
        self.not_found = not_found
        self.bad_path = bad_path
        self.too_large = too_large
        self.raw_static = _raw_static_paths(router)


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")


def _raw_static_paths(router: Router) -> dict[bytes, tuple[PathEntry, str]]:
    """Raw request paths (bytes, no query) of literal routes, with and without a trailing slash.

    Only segments that need no percent-decoding qualify, so the raw bytes mean exactly
    what the decoded segments would; anything else takes the general path.
    """
    out: dict[bytes, tuple[PathEntry, str]] = {}
    for segments, entry in router.static_items():
        if not all(_PLAIN_SEGMENT.fullmatch(s) for s in segments):
            continue
        path = "/" + "/".join(segments)
        out[path.encode("ascii")] = (entry, path)
        if segments:
            out[(path + "/").encode("ascii")] = (entry, path + "/")
    return out


def _call_handler(spec: RouteSpec, app: AppView) -> Callable[[Request], Any]:
    call = _plain_call(spec, app)
    if spec.body is None and spec.response is None:
        return call  # routes without body=/response= get no extra step
    from ..ops._body import typed_call

    return typed_call(call, spec.body, spec.response)


def _plain_call(spec: RouteSpec, app: AppView) -> Callable[[Request], Any]:
    fn = spec.handler
    if spec.threaded:
        return lambda request: app.run_blocking(fn, request)
    if inspect.iscoroutinefunction(fn):
        return lambda request: Deferred.fromCoroutine(fn(request))
    return fn


def make_endpoint(call: Callable[[Request], Any], guards: Sequence[GuardLike], watch: BlockingWatch | None = None) -> Link:
    """Innermost link: guards in order, then the handler, then result conversion.

    ``watch`` (plain handlers only) times the synchronous call with two clock reads.
    """
    if watch is not None and not guards:

        def endpoint_watched(request: Request) -> Response | Deferred[Response]:
            start = perf_counter()
            try:
                value = call(request)
            finally:
                elapsed = perf_counter() - start
                if elapsed > BLOCKING_THRESHOLD:
                    watch.held(elapsed)
            if type(value) is dict:
                return Response(_json.dumpb(value), 200, None, JSON_TYPE)
            return settle(value)

        return endpoint_watched
    if watch is not None:
        call = timed_call(call, watch)
    if not guards:

        def endpoint_without_guards(request: Request) -> Response | Deferred[Response]:
            value = call(request)
            if type(value) is dict:  # the common case, converted without further checks
                return Response(_json.dumpb(value), 200, None, JSON_TYPE)
            return settle(value)

        return endpoint_without_guards
    checks = tuple(guards)

    def endpoint(request: Request) -> Response | Deferred[Response]:
        pending = run_guards(checks, request)
        if pending is None:
            return settle(call(request))
        return pending.addCallback(lambda _: settle(call(request)))

    return endpoint


def _raiser(make_error: Callable[[Request], HTTPError]) -> Link:
    def endpoint(request: Request) -> Response:
        raise make_error(request)

    return endpoint


def _options_endpoint(entry: PathEntry) -> Link:
    def endpoint(request: Request) -> Response:
        resp = Response(b"", 204)
        resp.headers.set("Allow", entry.allow)
        return resp

    return endpoint


def _not_allowed(entry: PathEntry) -> Link:
    return _raiser(lambda request: HTTPError(405, headers={"Allow": entry.allow}))


def _not_found_endpoint(app: RoutedApp) -> Link:
    mounts = sorted(app.static_mounts, key=lambda m: len(m.url_path), reverse=True)

    def endpoint(request: Request) -> Response:
        for mount in mounts:
            result = mount.serve(request)
            if result is not None:
                return result
        raise HTTPError(404, extra={"path": request.path})

    return endpoint


def compile_app(app: RoutedApp) -> Pipeline:
    """The app's routes as a router of ready chains, plus the chains for unmatched requests."""
    context = app.context
    _bind_app(app)
    request_class, builder = _request_builder(app)
    router = Router()
    app_errors = ErrorHandling([app.exception_handlers], app)
    owners: dict[int, tuple[list[Any], ErrorHandling]] = {}
    websockets = []
    routes: list[CompiledRoute] = []
    for spec, tables in app.walk_routes():
        blueprints = tables[1:]
        full_path = join_paths(*(t.prefix for t in tables), spec.path)
        segments = parse_pattern(full_path, spec.constraints)
        entry = router.entry_for(segments)
        middleware = list(app.middleware)
        guards = list(app.guards)
        for bp in blueprints:
            middleware += bp.middleware
            guards += bp.guards
        guards += spec.guards
        if spec.rate_limit is not None:  # SPEC §2.14 r5: the route's own limiter, innermost
            from ..middleware.ratelimit import route_limiter

            middleware.append(route_limiter(context, spec))
        errors = ErrorHandling([bp.exception_handlers for bp in reversed(blueprints)] + [app.exception_handlers], app)
        route = CompiledRoute(spec, full_path, [s.value for s in segments if s.kind != "lit"], blueprints)
        middleware = _for_route(middleware, route, app, builder)
        route.middleware, route.guards = middleware, guards
        routes.append(route)
        if entry.owner is None:
            entry.owner = route
            owners[id(entry)] = (middleware, errors)
        if spec.method == "WEBSOCKET":
            websockets.append((route, entry, middleware, guards, errors))
            continue
        endpoint = make_endpoint(_call_handler(spec, app), guards, watch_for(spec, full_path))
        route.chain = _timed(compose(middleware, endpoint, errors, context, route), spec, full_path, app)
        entry.methods[spec.method] = route
    if websockets:
        from ..websocket._server import close_all, websocket_endpoint

        # A graceful stop closes the app's WebSockets (1001); apps without any never import autobahn.
        app.lifecycle.closers["websocket"] = partial(close_all, app, 1001, "server shutting down")
        for route, entry, middleware, guards, errors in websockets:
            chain = compose(middleware, websocket_endpoint(route, guards, app), errors, context)
            route.chain = _timed(chain, route.spec, route.path, app)
            entry.websocket = route
    for entry in router.entries():
        entry.finish()
        middleware, errors = owners[id(entry)]
        entry.options_chain = _app_timed(compose(middleware, _options_endpoint(entry), errors, context), app)
        entry.not_allowed_chain = _app_timed(compose(middleware, _not_allowed(entry), errors, context), app)
    app_level = _for_route(app.middleware, None, app, builder)  # requests that match no route
    not_found = _with_mounts(
        app, _app_timed(compose(app_level, _not_found_endpoint(app), app_errors, context), app), builder
    )
    bad_path = _app_timed(
        compose(app_level, _raiser(lambda r: BadRequestError("Request path is not valid UTF-8")), app_errors, context),
        app,
    )
    too_large = _app_timed(
        compose(app_level, _raiser(lambda r: PayloadTooLargeError(app.max_body_size or 0)), app_errors, context), app
    )
    return Pipeline(router, not_found, bad_path, too_large, ResponseWriter(context.finalizers), routes, request_class)


def _timed(chain: Link, spec: RouteSpec, path: str, app: RoutedApp) -> Link:
    """The handler timeout around a route's whole chain (SPEC_OPERATIONS §4 r5).

    Outermost, so the clock starts when the request enters the chain and covers slow
    middleware too; the 503 is produced where the cancelled work was pending and so
    still passes outward through every middleware (see middleware/_timeout.py).
    """
    seconds = spec.timeout if spec.timeout is not None else app.handler_timeout
    label = f"{spec.method} {path}"
    return with_timeout(chain, seconds, app.clock, label, spec.threaded)


def _app_timed(chain: Link, app: RoutedApp) -> Link:
    """Chains without a route of their own (404, 405, OPTIONS, 413, mounts) run middleware
    too: the app's timeout applies."""
    return with_timeout(chain, app.handler_timeout, app.clock)


def _bind_app(app: RoutedApp) -> None:
    """Hand the app to middleware that asks for it (``bind_app``), blueprints' included."""
    tables: list[TableView] = [app]
    while tables:
        table = tables.pop(0)
        for mw in table.middleware:
            bind = hooks_of(mw).bind_app
            if bind is not None:
                bind(app)
        tables += table.blueprints


def _with_mounts(app: RoutedApp, not_found: Link, builder: object = None) -> Link:
    """Unmatched paths at or below a mount prefix go to the longest mount (SPEC_OPERATIONS §13 r2).

    Each mount's chain is built like a route's: app and blueprint middleware and
    guards, then the mount's own ``guards``. Without mounts, ``not_found`` itself.
    """
    mounts = []
    for spec, tables in app.walk_mounts():
        blueprints = tables[1:]
        route = MountRoute(spec, mount_path([t.prefix for t in tables], spec.path), blueprints)
        middleware = list(app.middleware)
        guards = list(app.guards)
        for bp in blueprints:
            middleware += bp.middleware
            guards += bp.guards
        errors = ErrorHandling([bp.exception_handlers for bp in reversed(blueprints)] + [app.exception_handlers], app)
        endpoint = make_endpoint(route.endpoint, [*guards, *spec.guards])
        chain = compose(_for_route(middleware, route, app, builder), endpoint, errors, app.context)
        route.chain = _app_timed(chain, app)  # a mount has no timeout= of its own
        mounts.append(route)
    if not mounts:
        return not_found
    return MountDispatch(mounts, [m.url_path for m in app.static_mounts], not_found)


def _request_builder(app: RoutedApp) -> tuple[type[Request], object]:
    """The Request class AppResource builds, and the app-level middleware that supplied it
    (its work is done as the request is built, so its link is left out of every chain)."""
    for mw in app.middleware:
        make = hooks_of(mw).request_class
        if make is not None:
            built = make()
            if built is not None:
                return built, mw
    return Request, None


def _for_route(middleware: Sequence[Any], route: RouteView | None, app: RoutedApp, builder: object = None) -> list[Any]:
    """Leave out native middleware that says it does not apply to ``route``, and the one
    whose work is done as the request is built (``builder``).

    Rate limiters use this: exactly one applies per request (SPEC §2.14 r5), decided
    here once instead of on every request. Paths added by features (OpenAPI, docs,
    health, metrics) also leave out middleware declaring ``feature_path_exempt``
    (rate limits, CSRF, sessions, request logging: SPEC_OPERATIONS principles).
    """
    feature = route is not None and route.feature_path
    kept = []
    for mw in middleware:
        if mw is builder:
            continue
        hooks = hooks_of(mw)
        if feature and hooks.feature_path_exempt:
            continue
        if hooks.applies_to is None or hooks.applies_to(route, app):
            kept.append(mw)
    return kept
