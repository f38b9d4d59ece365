"""Compile an App's tables into a router whose entries hold ready-made chains.

Done once at start-up and again only after a registration changes something
(registration is live, SPEC §2.4 r2), never per request.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from twisted.internet.defer import Deferred

from .. import _json
from ..errors import BadRequestError, HTTPError, PayloadTooLargeError
from ..guards import run_guards
from ..middleware._chain import compose, settle
from ..middleware._errors import ErrorHandling
from ..middleware._timeout import with_timeout
from ..response import JSON_TYPE, Response
from ._blocking import BLOCKING_THRESHOLD, BlockingWatch, timed_call, watch_for
from ._pattern import join_paths, parse_pattern
from ._router import PathEntry, Router


class CompiledRoute:
    """A route as served: full path, the enclosing blueprints and its chain."""

    __slots__ = ("spec", "path", "method", "param_names", "blueprints", "chain", "handler", "rate_limit")

    def __init__(self, spec: Any, path: str, param_names: list[str], blueprints: tuple[Any, ...]) -> None:
        self.spec = spec
        self.path = path
        self.method = spec.method
        self.param_names = param_names
        self.blueprints = blueprints
        self.handler = spec.handler
        self.rate_limit = spec.rate_limit
        self.chain: Callable[[Any], Any] = _unset

    @property
    def name(self) -> str | None:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.path}>"


def _unset(request: Any) -> Any:
    raise RuntimeError("route chain used before compilation finished")


class Pipeline:
    """What AppResource consults per request."""

    __slots__ = ("router", "not_found", "bad_path", "too_large", "raw_static")

    def __init__(
        self,
        router: Router,
        not_found: Callable[[Any], Any],
        bad_path: Callable[[Any], Any],
        too_large: Callable[[Any], Any],
    ) -> None:
        self.router = router
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


def _call_handler(spec: Any, app: Any) -> Callable[[Any], Any]:
    fn = spec.handler
    if spec.threaded:
        return lambda request: app.run_blocking(fn, request)
    if inspect.iscoroutinefunction(fn):
        return lambda request: Deferred.fromCoroutine(fn(request))
    return fn


def make_endpoint(
    call: Callable[[Any], Any], guards: Sequence[Any], watch: BlockingWatch | None = None
) -> Callable[[Any], Any]:
    """Innermost link: guards in order, then the handler, then result conversion.

    ``watch`` (plain handlers only) times the synchronous call with two clock reads.
    """
    if watch is not None and not guards:

        def endpoint_watched(request: Any) -> Any:
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

        def endpoint_without_guards(request: Any) -> Any:
            value = call(request)
            if type(value) is dict:  # the common case, converted without further checks
                return Response(_json.dumpb(value), 200, None, JSON_TYPE)
            return settle(value)

        return endpoint_without_guards
    guards = tuple(guards)

    def endpoint(request: Any) -> Any:
        pending = run_guards(guards, request)
        if pending is None:
            return settle(call(request))
        return pending.addCallback(lambda _: settle(call(request)))

    return endpoint


def _raiser(make_error: Callable[[Any], HTTPError]) -> Callable[[Any], Any]:
    def endpoint(request: Any) -> Any:
        raise make_error(request)

    return endpoint


def _options_endpoint(entry: PathEntry) -> Callable[[Any], Any]:
    def endpoint(request: Any) -> Response:
        resp = Response(b"", 204)
        resp.headers.set("Allow", entry.allow)
        return resp

    return endpoint


def _not_allowed(entry: PathEntry) -> Callable[[Any], Any]:
    return _raiser(lambda request: HTTPError(405, headers={"Allow": entry.allow}))


def _not_found_endpoint(app: Any) -> Callable[[Any], Any]:
    mounts = sorted(app.static_mounts, key=lambda m: len(m.url_path), reverse=True)

    def endpoint(request: Any) -> Any:
        for mount in mounts:
            result = mount.serve(request)
            if result is not None:
                return result
        raise HTTPError(404, extra={"path": request.path})

    return endpoint


def compile_app(app: Any) -> Pipeline:
    router = Router()
    app_errors = ErrorHandling([app.exception_handlers], app)
    owners: dict[int, tuple[list[Any], ErrorHandling]] = {}
    websockets = []
    for spec, tables in app._walk():
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

            middleware.append(route_limiter(app, spec))
        errors = ErrorHandling([bp.exception_handlers for bp in reversed(blueprints)] + [app.exception_handlers], app)
        route = CompiledRoute(spec, full_path, [s.value for s in segments if s.kind != "lit"], blueprints)
        middleware = _for_route(middleware, route, app)
        if entry.owner is None:
            entry.owner = route
            owners[id(entry)] = (middleware, errors)
        if spec.method == "WEBSOCKET":
            websockets.append((route, entry, middleware, guards, errors))
            continue
        endpoint = make_endpoint(_call_handler(spec, app), guards, watch_for(spec, full_path))
        chain = compose(middleware, endpoint, errors)
        route.chain = _timed(chain, spec, full_path, app)
        entry.methods[spec.method] = route
    if websockets:
        from ..websocket._socket import websocket_endpoint

        for route, entry, middleware, guards, errors in websockets:
            route.chain = _timed(compose(middleware, websocket_endpoint(route, guards, app), errors), route.spec, route.path, app)
            entry.websocket = route
    for entry in router.entries():
        entry.finish()
        middleware, errors = owners[id(entry)]
        entry.options_chain = _app_timed(compose(middleware, _options_endpoint(entry), errors), app)
        entry.not_allowed_chain = _app_timed(compose(middleware, _not_allowed(entry), errors), app)
    app_level = _for_route(app.middleware, None, app)  # requests that match no route
    not_found = _app_timed(compose(app_level, _not_found_endpoint(app), app_errors), app)
    bad_path = _app_timed(
        compose(app_level, _raiser(lambda r: BadRequestError("Request path is not valid UTF-8")), app_errors), app
    )
    too_large = _app_timed(
        compose(app_level, _raiser(lambda r: PayloadTooLargeError(app.max_body_size)), app_errors), app
    )
    return Pipeline(router, not_found, bad_path, too_large)


def _timed(chain: Callable[[Any], Any], spec: Any, path: str, app: Any) -> Callable[[Any], Any]:
    """The handler timeout around a route's whole chain (SPEC_OPERATIONS §4 r5).

    Outermost, so the clock starts when the request enters the chain and covers slow
    middleware too; the 503 is produced where the cancelled work was pending and so
    still passes outward through every middleware (see middleware/_timeout.py).
    """
    seconds = spec.timeout if spec.timeout is not None else app.handler_timeout
    label = f"{spec.method} {path}"
    return with_timeout(chain, seconds, app.clock, label, spec.threaded)


def _app_timed(chain: Callable[[Any], Any], app: Any) -> Callable[[Any], Any]:
    """App-level chains (404, 405, OPTIONS, 413) run middleware too: the app's timeout applies."""
    return with_timeout(chain, app.handler_timeout, app.clock)


def _for_route(middleware: list[Any], route: CompiledRoute | None, app: Any) -> list[Any]:
    """Leave out native middleware that says it does not apply to ``route``.

    Rate limiters use this: exactly one applies per request (SPEC §2.14 r5), decided
    here once instead of on every request.
    """
    return [
        mw
        for mw in middleware
        if not (getattr(mw, "native", False) and hasattr(mw, "applies_to")) or mw.applies_to(route, app)
    ]
