"""Prometheus metrics on prometheus-client (SPEC_OPERATIONS §7; extra ``[metrics]``).

The series are created once per registry (``_metrics_series``). The middleware is the
outermost link of every route's chain. It guards what it calls itself, so on a route
with no other middleware it calls the endpoint directly (``guards_call_next``: the
chain is no longer than without metrics). Per route template and method it binds that
pair's state when the routes are compiled (a route's own chain holds its pair, so its
requests need no lookup), and a request costs two clock reads and a few integer adds
(plain numbers a collector exposes at scrape time; prometheus-client's own objects in
multiprocess mode). Label values are bounded by the route table: the route label is
the template, ``<unmatched>`` or ``<static>``; unknown methods are ``OTHER``.

Cluster mode uses prometheus-client's multiprocess mode: the parent creates a
per-run directory, hands it to workers as ``PROMETHEUS_MULTIPROC_DIR`` and removes it
at stop. A dead worker's counter files stay, so a restart loses no counts; its
live gauges are dropped (``mark_process_dead``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from bisect import bisect_left
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol, cast

from .._defer import is_deferred, recover
from .._validators import fail
from ..response import Response
from ._metrics_series import Bound, LocalBound, Series, SharedBound, prometheus

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import AppContext, ErrorHandler, Link, RouteView, TableView
    from ..request import Request
    from ..server._lifecycle import Lifecycle

__all__ = ["Metrics", "MetricsMiddleware", "MultiprocessDirectory", "Series", "multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
STATIC = "<static>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process (cluster workers), or None."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class MetricsApp(Protocol):
    """What metrics use of an App (declared here: app.py sits above ops/)."""

    lifecycle: Lifecycle
    @property
    def static_mounts(self) -> Sequence[Any]: ...


    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]: ...


_series: weakref.WeakKeyDictionary[Any, Series] = weakref.WeakKeyDictionary()


def series_for(registry: Any, buckets: Sequence[float] | None, shared: bool) -> Series:
    """The registry's series, created on first use (apps in one process share them)."""
    found = _series.get(registry)
    if found is not None:
        if (buckets is None or tuple(buckets) == found.buckets) and found.shared == shared:
            return found
        found.retire()
    made = _series[registry] = Series(registry, buckets, shared)
    return made


class MetricsMiddleware:
    """The outermost link that observes every response (feature paths excluded)."""

    native = True
    singleton = True
    feature_path_exempt = True  # /metrics and /health are not counted
    guards_call_next = True  # innermost, it is handed the endpoint itself: one frame fewer

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.bound: dict[tuple[str, str], Bound] = {}  # (route label, method) -> the series' Bound

    def applies_to(self, route: RouteView | None, app: TableView) -> bool:
        """Called per route when routes compile: bind its label children now, not per request."""
        if route is not None and route.method in METHODS:
            self._bound_for(route.path, route.method)
        return True

    def _bound_for(self, label: str, method: str) -> Bound:
        key = (label, method)
        found = self.bound.get(key)
        if found is None:
            found = self.bound[key] = self.metrics.series.bound(label, method)
        return found

    def _bind(self, request: Request) -> Bound:
        method = request.method if request.method in METHODS else "OTHER"
        route = request.route
        return self._bound_for(route.path if route is not None else self.metrics.unmatched_label(request.path), method)

    def link(
        self, call_next: Link, on_error: ErrorHandler, context: AppContext, route: RouteView | None = None
    ) -> Link:
        own = self._route_bound(route)
        if self.metrics.series.shared:
            return self._shared_link(call_next, on_error, own)
        return self._local_link(call_next, on_error, own)

    def _route_bound(self, route: RouteView | None) -> tuple[str, Bound] | None:
        """A route's own (method, Bound), bound now: its requests need no lookup. Everything
        else (HEAD on a GET route, 404s, 405s, OPTIONS, mounts) goes through ``_bind``."""
        if route is None or route.method not in METHODS:
            return None
        return route.method, self._bound_for(route.path, route.method)

    def _local_link(self, call_next: Link, on_error: ErrorHandler, own: tuple[str, Bound] | None) -> Link:
        """One process: the request's numbers are updated inline (the hot path of every route)."""
        bind = self._bind
        upper_bounds = self.metrics.series.upper_bounds
        first_bound = upper_bounds[0]
        clock = perf_counter
        own_method, own_bound = own if own is not None else ("", None)
        mine = cast(LocalBound, own_bound)  # typing note: None only when own_method matches nothing

        def metered(request: Request) -> Response | Deferred[Response]:
            b = mine if request.method == own_method else cast(LocalBound, bind(request))
            b.entered += 1
            started = clock()
            try:
                result = call_next(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                result = on_error(request, exc)
            if type(result) is not Response and is_deferred(result):
                result.addErrback(recover, request, on_error)  # call_next may be the bare endpoint
                return result.addCallbacks(b.observed, b.abandoned, (request, started))
            # LocalBound.observed, inline:
            elapsed = clock() - started
            b.total += elapsed
            # the first bound >= elapsed ("le"); most requests fall in the first bucket
            b.buckets[0 if elapsed <= first_bound else bisect_left(upper_bounds, elapsed)] += 1
            if result.status == b.usual and result.streamer is None and request.refused_by is None:
                b.usual_count += 1
            else:
                b.counted(result, request)
            return result

        return metered

    def _shared_link(self, call_next: Link, on_error: ErrorHandler, own: tuple[str, Bound] | None) -> Link:
        """Multiprocess mode: prometheus-client's children, bound per route."""
        bind = self._bind
        own_method, own_bound = own if own is not None else ("", None)
        mine = cast(SharedBound, own_bound)  # typing note: None only when own_method matches nothing

        def metered(request: Request) -> Response | Deferred[Response]:
            b = mine if request.method == own_method else cast(SharedBound, bind(request))
            b.enter_gauge()
            started = perf_counter()
            try:
                result = call_next(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                result = on_error(request, exc)
            if type(result) is not Response and is_deferred(result):
                result.addErrback(recover, request, on_error)  # call_next may be the bare endpoint
                return result.addCallbacks(b.observed, b.abandoned, (request, started))
            return b.observed(result, request, started)

        return metered

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        return self.link(call_next, _reraise, None)(request)  # type: ignore[arg-type]  # typing note: composed by hand, no context needed


def _reraise(request: Request, exc: BaseException) -> Response:
    raise exc


class MultiprocessDirectory:
    """The cluster parent's part: a per-run directory under the temp dir, removed at stop."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.owned = False

    def parent_starting(self) -> dict[str, str]:
        existing = multiprocess_dir()
        if existing is not None:  # the operator chose one: use it, leave it in place
            self.path, self.owned = existing, False
        else:
            self.path, self.owned = tempfile.mkdtemp(prefix="cello-metrics-", dir=tempfile.gettempdir()), True
        return {MULTIPROC_ENV: self.path}

    def worker_exited(self, pid: int) -> None:
        if self.path is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]  # typing note: prometheus-client is partly unannotated; drops live gauges, counters stay

    def parent_stopped(self) -> None:
        if self.owned and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        self.path = None


class Metrics:
    """``app.enable_metrics(...)``: the series, the middleware and the scrape endpoint."""

    def __init__(
        self,
        app: MetricsApp,
        path: str = "/metrics",
        registry: Any = None,
        buckets: Sequence[float] | None = None,
    ) -> None:
        prom = prometheus()
        if not isinstance(path, str) or not path.startswith("/"):
            fail(self, "path", path, "a path starting with '/'")
        if buckets is not None:
            try:
                values = [float(b) for b in buckets]
            except (TypeError, ValueError):
                fail(self, "buckets", buckets, "a sequence of numbers")
            if not values or values != sorted(values):
                fail(self, "buckets", buckets, "a non-empty increasing sequence of seconds")
            buckets = values
        if registry is not None and not callable(getattr(registry, "register", None)):
            fail(self, "registry", registry, "a prometheus_client CollectorRegistry or None")
        self.app = app
        self.path = path
        self.registry = registry if registry is not None else prom.REGISTRY
        self.multiprocess = multiprocess_dir() is not None
        self.series = series_for(self.registry, buckets, self.multiprocess)
        self.middleware = MetricsMiddleware(self)
        if self.multiprocess:
            from prometheus_client import multiprocess

            self.exposed = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(self.exposed)  # type: ignore[no-untyped-call]  # typing note: prometheus-client is partly unannotated
        else:
            self.exposed = self.registry

    def unmatched_label(self, path: str) -> str:
        """``<static>`` under a static mount, else ``<unmatched>``."""
        for mount in self.app.static_mounts:
            prefix = mount.url_path
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return STATIC
        return UNMATCHED

    def routes(self) -> list[tuple[str, Callable[[Request], Any]]]:
        return [(self.path, self.scrape)]

    def scrape(self, request: Request) -> Deferred[Response]:
        """The exposition text (read off the reactor thread: multiprocess mode reads files)."""
        prom = prometheus()

        def render(body: bytes) -> Response:
            resp = Response(body, 200, None, prom.CONTENT_TYPE_LATEST)
            resp.headers.set("Cache-Control", "no-store")
            return resp

        return self.app.run_blocking(prom.generate_latest, self.exposed).addCallback(render)
