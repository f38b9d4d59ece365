"""Route tables shared by App and Blueprint: decorators, middleware, guards, nesting."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._types import hooks_of
from .._validators import check_timeout
from ._mount import MountSpec, mount_path
from ._pattern import Segment, join_paths, parse_pattern

if TYPE_CHECKING:
    from ..guards import GuardLike
    from ..middleware.compression import Compression
    from ..middleware.cors import Cors, CorsConfig
    from ..middleware.ratelimit import RateLimit, RateLimitConfig

M = TypeVar("M")
F = TypeVar("F", bound=Callable[..., Any])

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


class RouteSpec:
    """One registration: ``@app.get("/users/{id}")`` or ``@app.websocket(...)``."""

    __slots__ = (
        "path",
        "method",
        "handler",
        "segments",
        "guards",
        "rate_limit",
        "constraints",
        "threaded",
        "timeout",
        "name",
        "tags",
        "summary",
        "description",
        "options",
        "owner",
        "body",
        "response",
        "include_in_schema",
        "named",
        "feature_path",
    )

    def __init__(self, path: str, method: str, handler: Callable[..., Any], owner: RouteTable, **opts: Any) -> None:
        self.path = path
        self.method = method
        self.handler = handler
        self.owner = owner
        self.constraints = opts.pop("constraints", None)
        self.segments: list[Segment] = parse_pattern(path, self.constraints)
        self.guards = list(opts.pop("guards", None) or ())
        self.rate_limit = opts.pop("rate_limit", None)
        self.threaded = bool(opts.pop("threaded", False))
        self.timeout = check_timeout(opts.pop("timeout", None), "route timeout")  # overrides App(handler_timeout=)
        self.named = bool(opts.get("name"))  # an explicit name= (the OpenAPI operationId)
        self.name = opts.pop("name", None) or getattr(handler, "__name__", None)
        self.tags = list(opts.pop("tags", None) or ())
        self.summary = opts.pop("summary", None)
        self.description = opts.pop("description", None)
        # API description (SPEC_OPERATIONS §9): typed body/response and schema visibility.
        # ``feature_path`` marks paths added by an ``enable_*`` feature (OpenAPI, docs,
        # health, metrics): left out of the schema and of JWT/CSRF/session/rate-limit/logging.
        self.body = opts.pop("body", None)
        self.response = opts.pop("response", None)
        self.feature_path = bool(opts.pop("feature_path", False))
        self.include_in_schema = bool(opts.pop("include_in_schema", True)) and not self.feature_path
        if self.body is not None or self.response is not None:
            from ..ops._body import check_model

            check_model(self.body, "body")
            check_model(self.response, "response")
        self.options = opts  # websocket options (subprotocols, max_message_size)
        if self.threaded and inspect.iscoroutinefunction(handler):
            raise ValueError(f"threaded=True cannot run coroutine function {self.name!r}")

    @property
    def param_names(self) -> list[str]:
        return [s.value for s in self.segments if s.kind != "lit"]

    def shape(self, prefix_segments: Sequence[Segment] = ()) -> str:
        return "/" + "/".join(s.shape() for s in (*prefix_segments, *self.segments))

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.path} -> {self.name}>"


class MiddlewareList(list):  # type: ignore[type-arg]
    """The registered middleware, in order; also usable as the ``@app.middleware`` decorator."""

    def __init__(self, owner: RouteTable) -> None:
        super().__init__()
        self._owner = owner

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._owner.use(fn)
        return fn


class RouteTable:
    """Routes, middleware, guards, exception handlers and child blueprints."""

    prefix = ""
    name: str | None = None  # a Blueprint's name

    def __init__(self) -> None:
        self.routes: list[RouteSpec] = []
        self.middleware: MiddlewareList = MiddlewareList(self)
        self.guards: list[GuardLike] = []
        self.exception_handlers: dict[type, Callable[..., Any]] = {}
        self.blueprints: list[RouteTable] = []
        self.mounts: list[MountSpec] = []
        self._parents: list[RouteTable] = []

    # -- change notification (registration is live) ------------------------

    def invalidate(self) -> None:
        """Registrations changed: the app recompiles its routes on the next request."""
        for parent in self._parents:
            parent.invalidate()

    def _roots(self) -> Iterator[RouteTable]:
        if not self._parents:
            yield self
        for parent in self._parents:
            yield from parent._roots()

    # -- routes --------------------------------------------------------------

    def route(self, path: str, methods: Iterable[str] = ("GET",), **options: Any) -> Callable[[F], F]:
        if isinstance(methods, str):
            methods = (methods,)
        methods = [m.upper() for m in methods]

        def decorator(fn: F) -> F:
            specs = [RouteSpec(path, m, fn, self, **dict(options)) for m in methods]
            for spec in specs:
                self._add(spec)
            return fn

        return decorator

    def _add(self, spec: RouteSpec) -> None:
        for root in self._roots():
            root._check_unique(self._chain_to(root), spec)
        self.routes.append(spec)
        self.invalidate()

    def _vet(self, middleware: object) -> None:
        """Overridden by App: refuse short secrets under ``strict_secrets``."""

    def _check_unique(self, tables: tuple[RouteTable, ...], spec: RouteSpec) -> None:
        """Overridden by App: same normalised path + method twice is an error."""

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("GET",), **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("POST",), **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("PUT",), **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("PATCH",), **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("DELETE",), **options)

    def options(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("OPTIONS",), **options)

    def head(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route(path, ("HEAD",), **options)

    def websocket(
        self,
        path: str,
        *,
        guards: Any = None,
        subprotocols: Sequence[str] | None = None,
        max_message_size: int = 1048576,
    ) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            self._add(
                RouteSpec(
                    path,
                    "WEBSOCKET",
                    fn,
                    self,
                    guards=guards,
                    subprotocols=list(subprotocols or ()),
                    max_message_size=max_message_size,
                )
            )
            return fn

        return decorator

    def mount(self, path: str, resource: Any, guards: Sequence[GuardLike] | None = None) -> None:
        """Serve ``resource`` (any twisted.web ``IResource``) at and below ``path`` (SPEC_OPERATIONS §13).

        Paths a route matches stay with the routes; the app's middleware and
        ``guards`` run first. Raises ValueError if something is mounted there already.
        """
        spec = MountSpec(path, resource, guards)
        for root in self._roots():
            self._check_mount_free(root, mount_path([t.prefix for t in self._chain_to(root)], spec.path))
        self.mounts.append(spec)
        self.invalidate()

    @staticmethod
    def _check_mount_free(root: RouteTable, full: str) -> None:
        for existing, chain in root.walk_mounts():
            if mount_path([t.prefix for t in chain], existing.path) == full:
                raise ValueError(f"a resource is already mounted at {full}")

    # -- middleware, guards, errors ------------------------------------------

    def use(self, middleware: M) -> M:
        """Append ``middleware(request, call_next)`` to this table's chain."""
        if not callable(middleware):
            raise TypeError("middleware must be callable as mw(request, call_next)")
        for root in self._roots():
            root._vet(middleware)
        self.middleware.append(middleware)
        self.invalidate()
        return middleware

    def _install(self, middleware: M) -> M:
        """Add framework middleware, or replace one of the same class in place."""
        for index, existing in enumerate(self.middleware):
            if type(existing) is type(middleware) and hooks_of(middleware).singleton:
                for root in self._roots():
                    root._vet(middleware)
                self.middleware[index] = middleware
                self.invalidate()
                return middleware
        return self.use(middleware)

    def add_guard(self, guard: GuardLike) -> None:
        if not callable(guard):
            raise TypeError("a guard must be callable as guard(request)")
        self.guards.append(guard)
        self.invalidate()

    def exception_handler(self, exc_class: type) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            self.exception_handlers[exc_class] = fn
            self.invalidate()
            return fn

        return decorator

    def enable_cors(self, config: CorsConfig | None = None, **fields: Any) -> Cors:
        from ..middleware.cors import Cors

        return self._install(Cors(config, **fields))

    def enable_rate_limit(self, config: RateLimitConfig) -> RateLimit:
        from ..middleware.ratelimit import RateLimit

        return self._install(RateLimit(config))

    def enable_compression(self, min_size: int = 1024, level: int = 6) -> Compression:
        from ..middleware.compression import Compression

        return self._install(Compression(min_size=min_size, level=level))

    # -- nesting ---------------------------------------------------------------

    def register_blueprint(self, bp: RouteTable) -> None:
        if bp is self or self._is_descendant_of(bp):
            raise ValueError("cannot register a blueprint into itself or its descendant")
        for root in self._roots():
            if root._contains(bp):
                raise ValueError(f"blueprint {bp.name!r} is already registered in this app")
        for root in self._roots():
            outer = self._chain_to(root)
            for spec, inner in bp.walk_routes():
                root._check_unique((*outer, *inner), spec)
            for mounted, inner in bp.walk_mounts():
                self._check_mount_free(root, mount_path([t.prefix for t in (*outer, *inner)], mounted.path))
        self.blueprints.append(bp)
        bp._parents.append(self)
        self.invalidate()

    register = register_blueprint

    def _is_descendant_of(self, other: RouteTable) -> bool:
        return any(p is other or p._is_descendant_of(other) for p in self._parents)

    def _contains(self, bp: RouteTable) -> bool:
        return any(child is bp or child._contains(bp) for child in self.blueprints)

    def _chain_to(self, root: RouteTable) -> tuple[RouteTable, ...]:
        """The tables from ``root`` down to ``self``, both included."""
        if self is root:
            return (self,)
        for parent in self._parents:
            if any(r is root for r in parent._roots()):
                return (*parent._chain_to(root), self)
        return (self,)

    def walk_routes(
        self, outer: tuple[RouteTable, ...] = ()
    ) -> Iterator[tuple[RouteSpec, tuple[RouteTable, ...]]]:
        """Every route below this table, with the tables (outermost first) enclosing it."""
        chain = (*outer, self)
        for spec in self.routes:
            yield spec, chain
        for child in self.blueprints:
            yield from child.walk_routes(chain)

    def walk_mounts(
        self, outer: tuple[RouteTable, ...] = ()
    ) -> Iterator[tuple[MountSpec, tuple[RouteTable, ...]]]:
        """Every mount below this table, with the tables (outermost first) enclosing it."""
        chain = (*outer, self)
        for spec in self.mounts:
            yield spec, chain
        for child in self.blueprints:
            yield from child.walk_mounts(chain)

    def get_all_routes(self) -> list[tuple[str, str]]:
        """``[(full_path, METHOD)]`` in registration order, blueprints included; then mounts as ``(prefix, "MOUNT")``."""
        out = []
        for spec, chain in self.walk_routes():
            prefixes = [t.prefix for t in chain]
            out.append((join_paths(*prefixes, spec.path), spec.method))
        for mounted, chain in self.walk_mounts():
            out.append((mount_path([t.prefix for t in chain], mounted.path), "MOUNT"))
        return out
