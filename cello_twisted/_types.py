"""The contracts of the request path: links, middleware and its optional hooks, app context.

A *link* is one compiled step of a route's chain: ``link(request)`` returns a
Response now or a Deferred that fires with one. Middleware wraps a link around the
next one. Framework ("native") middleware may declare the optional hooks of
``NativeMiddleware``; they are looked up once per middleware (``hooks_of``) when
routes are compiled or middleware registered, never per request.

This module sits low: it imports nothing of the package at run time, only names
for type checking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime

    from .request import Request
    from .response import Response
    from .server._threads import Threads

Link = Callable[["Request"], Union["Response", "Deferred[Response]"]]
"""One step of a compiled chain: a Response now, or a Deferred firing with one."""

ErrorHandler = Callable[["Request", BaseException], Union["Response", "Deferred[Response]"]]
"""Turns an exception raised below a link into the error Response."""

Finalizer = Callable[["Request", "Response"], None]
"""Runs on every response the app writes, just before its headers go out."""

CallNext = Callable[..., "Deferred[Response]"]
"""What user middleware receives: ``call_next(request=None)`` always returns a Deferred."""


class Middleware(Protocol):
    """User middleware (SPEC §2.6): may return a value, a Deferred or a coroutine."""

    def __call__(self, request: Request, call_next: CallNext) -> Any: ...


class RouteView(Protocol):
    """A compiled route as middleware hooks see it."""

    path: str
    method: str
    rate_limit: Any
    blueprints: tuple[Any, ...]

    @property
    def feature_path(self) -> bool:
        """Whether an ``enable_*`` feature (OpenAPI, health, ...) added this route."""
        ...


class TableView(Protocol):
    """A route table (App or Blueprint) as middleware hooks see it."""

    @property
    def middleware(self) -> Sequence[object]: ...

    @property
    def blueprints(self) -> Sequence[TableView]: ...


class NativeMiddleware(Protocol):
    """Framework middleware: ``native = True``, called with the chain's fast ``call_next``.

    ``call_next(request)`` returns a Response or a Deferred (no Deferred is allocated
    for a synchronous chain). Every hook below is optional; ``hooks_of`` reads them
    once. Kept here, in one place, so that a new middleware knows what it may offer.
    """

    native: bool

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]: ...

    def link(self, call_next: Link, on_error: ErrorHandler, context: AppContext, route: RouteView | None = None) -> Link:
        """Optional: build this layer's own error-guarded link (saves a frame on hot paths).

        ``route`` is the route whose chain is being built (None for the chains without one:
        404, 405, OPTIONS, mounts), so per-route work can be bound here, not per request."""
        ...

    guards_call_next: bool
    """Optional: ``link`` turns what ``call_next`` raises, and its failed Deferreds, into
    responses through ``on_error`` itself, so when this layer is innermost the chain hands
    it the endpoint unguarded (one frame fewer per request; metrics uses it)."""

    def request_class(self) -> type[Request] | None:
        """Optional, app-level middleware only: a Request subclass that does this layer's
        work as AppResource builds the request, in place of its link (None: use the link)."""
        ...

    def applies_to(self, route: RouteView | None, app: TableView) -> bool:
        """Optional: False keeps this middleware out of ``route``'s chain (None: unmatched requests)."""
        ...

    def bind_clock(self, clock: IReactorTime) -> None:
        """Optional: follow ``app.clock`` for token and cookie times (SPEC §1 r7)."""
        ...

    def secret_problems(self) -> list[str]:
        """Optional: one message per secret shorter than allowed (SPEC §1 r8)."""
        ...

    def bind_app(self, app: TableView) -> None:
        """Optional: called when routes compile, with the app whose chains hold this middleware
        (Csrf finds the app's Sessions to bind its tokens to)."""
        ...

    def cluster_warning(self) -> str | None:
        """Optional: why this middleware misbehaves across cluster workers, if it does."""
        ...

    def durability_warning(self) -> str | None:
        """Optional: what a restart forgets (e.g. revocations kept in memory), warned once in production."""
        ...

    singleton: bool
    """Optional (default True): ``enable_*`` replaces an installed instance of the same class."""

    feature_path_exempt: bool
    """Optional (default False): kept out of the chains of paths an ``enable_*`` feature adds
    (OpenAPI, docs, health, metrics), as rate limits, CSRF, sessions and logging are."""


class Hooks:
    """The optional hooks of one middleware, looked up once (None where absent)."""

    __slots__ = (
        "native",
        "link",
        "guards_call_next",
        "request_class",
        "applies_to",
        "bind_clock",
        "bind_app",
        "secret_problems",
        "cluster_warning",
        "durability_warning",
        "singleton",
        "feature_path_exempt",
    )

    def __init__(self, middleware: object) -> None:
        self.native: bool = bool(getattr(middleware, "native", False))
        native = self.native
        self.link: Callable[[Link, ErrorHandler, AppContext, RouteView | None], Link] | None = (
            getattr(middleware, "link", None) if native else None
        )
        self.guards_call_next: bool = native and self.link is not None and bool(
            getattr(middleware, "guards_call_next", False)
        )
        self.request_class: Callable[[], type[Request] | None] | None = (
            getattr(middleware, "request_class", None) if native else None
        )
        self.applies_to: Callable[[RouteView | None, TableView], bool] | None = (
            getattr(middleware, "applies_to", None) if native else None
        )
        self.bind_clock: Callable[[IReactorTime], None] | None = getattr(middleware, "bind_clock", None)
        check = getattr(middleware, "secret_problems", None)
        self.secret_problems: Callable[[], list[str]] | None = check if callable(check) else None
        self.bind_app: Callable[[TableView], None] | None = getattr(middleware, "bind_app", None) if native else None
        self.cluster_warning: Callable[[], str | None] | None = getattr(middleware, "cluster_warning", None)
        self.durability_warning: Callable[[], str | None] | None = getattr(middleware, "durability_warning", None)
        self.singleton: bool = bool(getattr(middleware, "singleton", True))
        self.feature_path_exempt: bool = bool(getattr(middleware, "feature_path_exempt", False))


def hooks_of(middleware: object) -> Hooks:
    """The optional hooks ``middleware`` offers (see ``NativeMiddleware``)."""
    return Hooks(middleware)


class AppContext:
    """What an App hands its routes and middleware when they are compiled.

    Created in ``App.__init__``: the clock of every time-based feature, the thread
    hand-off, the response finalizers, and middleware the compiler keeps across
    recompilations (routes' own rate limiters).
    """

    __slots__ = ("_clock", "threads", "finalizers", "kept")

    def __init__(self, clock: IReactorTime | None, threads: Threads) -> None:
        self._clock = clock
        self.threads = threads
        self.finalizers: list[Finalizer] = []
        self.kept: dict[object, Any] = {}

    @property
    def clock(self) -> IReactorTime:
        """The app's clock; the reactor unless one was given (resolved on first use)."""
        clock = self._clock
        if clock is None:
            from twisted.internet import reactor

            clock = self._clock = reactor
        return clock

    @clock.setter
    def clock(self, value: IReactorTime) -> None:
        self._clock = value

    @property
    def clock_given(self) -> bool:
        """Whether a clock was chosen (given or resolved) already."""
        return self._clock is not None
