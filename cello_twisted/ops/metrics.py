"""Prometheus metrics on prometheus-client (SPEC_OPERATIONS §7; extra ``[metrics]``).

The series are created once per registry. The middleware is the outermost link of
every route's chain; per route template and method it binds its label children when
the routes are compiled (``labels()`` is never called per request), so a
request costs one dict lookup, a gauge inc/dec, one histogram observation and one
counter increment. Label values are bounded by the route table: the route label is
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
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .. import _signals
from .._defer import is_deferred
from .._validators import fail
from ..response import Response
from ..routing._handoff import ResourceStreamer

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    from .._types import AppContext, ErrorHandler, Link, RouteView, TableView
    from ..request import Request
    from ..server._lifecycle import Lifecycle

__all__ = ["Metrics", "MetricsMiddleware", "MultiprocessDirectory", "Series", "multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
STATIC = "<static>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(
            "app.enable_metrics() needs prometheus-client: pip install 'cello-twisted[metrics]'"
        ) from None
    return prometheus_client


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process (cluster workers), or None."""
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower()) or None


class MetricsApp(Protocol):
    """What metrics use of an App (declared here: app.py sits above ops/)."""

    lifecycle: Lifecycle
    @property
    def static_mounts(self) -> Sequence[Any]: ...


    def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]: ...


class Series:
    """The normative series, registered once in one registry."""

    def __init__(self, registry: Any, buckets: Sequence[float] | None) -> None:
        prom = _prometheus()
        self.registry = registry
        self.buckets = tuple(buckets) if buckets is not None else tuple(prom.Histogram.DEFAULT_BUCKETS)
        kw: dict[str, Any] = {"registry": registry}
        self.requests = prom.Counter(
            "cello_requests_total", "Responses sent, by method, route template and status.", ["method", "route", "status"], **kw
        )
        self.duration = prom.Histogram(
            "cello_request_duration_seconds",
            "Time to the response (last byte of buffered responses, headers of streams).",
            ["method", "route"],
            buckets=self.buckets,
            **kw,
        )
        # Gauges: "livesum" sums the live workers in multiprocess mode (dead workers drop out).
        self.in_progress = prom.Gauge(
            "cello_requests_in_progress", "Requests being handled.", ["method"], multiprocess_mode="livesum", **kw
        )
        self.rate_limited = prom.Counter("cello_rate_limited_total", "Requests refused by a rate limit.", ["route"], **kw)
        self.auth_failures = prom.Counter(
            "cello_auth_failures_total", "Requests refused by JWT, a guard or CSRF.", ["kind"], **kw
        )
        self.store_errors = prom.Counter(
            "cello_shared_store_errors_total", "Failed calls to a shared (Redis) store.", ["store"], **kw
        )
        self.websockets = prom.Gauge(
            "cello_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum", **kw
        )
        self.sse = prom.Gauge("cello_sse_streams", "Open Server-Sent Events streams.", multiprocess_mode="livesum", **kw)
        self.collectors = [
            self.requests, self.duration, self.in_progress, self.rate_limited,
            self.auth_failures, self.store_errors, self.websockets, self.sse,
        ]  # fmt: skip
        _signals.stream_listeners.append(self.stream_changed)
        _signals.store_error_listeners.append(self.store_failed)

    def stream_changed(self, kind: str, delta: int) -> None:
        gauge = self.websockets if kind == "websocket" else self.sse
        gauge.inc(delta)

    def store_failed(self, store: str) -> None:
        self.store_errors.labels(store).inc()

    def retire(self) -> None:
        """Unregister (a registry re-enabled with other buckets gets new series)."""
        for collector in self.collectors:
            try:
                self.registry.unregister(collector)
            except KeyError:
                pass
        _signals.stream_listeners[:] = [f for f in _signals.stream_listeners if f != self.stream_changed]
        _signals.store_error_listeners[:] = [f for f in _signals.store_error_listeners if f != self.store_failed]


_series: weakref.WeakKeyDictionary[Any, Series] = weakref.WeakKeyDictionary()


def series_for(registry: Any, buckets: Sequence[float] | None) -> Series:
    """The registry's series, created on first use (apps in one process share them)."""
    found = _series.get(registry)
    if found is not None:
        if buckets is None or tuple(buckets) == found.buckets:
            return found
        found.retire()
    made = _series[registry] = Series(registry, buckets)
    return made


class _Bound:
    """One (route template, method): label children bound once."""

    __slots__ = ("series", "route", "method", "duration", "in_progress", "statuses", "rate_limited")

    def __init__(self, series: Series, route: str, method: str) -> None:
        self.series = series
        self.route = route
        self.duration = series.duration.labels(method, route)
        self.in_progress = series.in_progress.labels(method)
        self.statuses: dict[int, Any] = {}
        self.rate_limited: Any = None
        self.method = method

    def count(self, status: int) -> None:
        child = self.statuses.get(status)
        if child is None:
            child = self.statuses[status] = self.series.requests.labels(self.method, self.route, str(status))
        child.inc()

    def refused(self, by: str) -> None:
        if by == "rate_limit":
            if self.rate_limited is None:
                self.rate_limited = self.series.rate_limited.labels(self.route)
            self.rate_limited.inc()
        else:
            self.series.auth_failures.labels(by).inc()


class MetricsMiddleware:
    """The outermost link that observes every response (feature paths excluded)."""

    native = True
    singleton = True
    feature_path_exempt = True  # /metrics and /health are not counted

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.bound: dict[tuple[str, str], _Bound] = {}

    def applies_to(self, route: RouteView | None, app: TableView) -> bool:
        """Called per route when routes compile: bind its label children now, not per request."""
        if route is not None and route.method in METHODS:
            key = (route.path, route.method)
            if key not in self.bound:
                self.bound[key] = _Bound(self.metrics.series, route.path, route.method)
        return True

    def _bind(self, request: Request) -> _Bound:
        method = request.method if request.method in METHODS else "OTHER"
        route = request.route
        label = route.path if route is not None else self.metrics.unmatched_label(request.path)
        key = (label, method)
        found = self.bound.get(key)
        if found is None:
            found = self.bound[key] = _Bound(self.metrics.series, label, method)
        if route is not None and method != "OTHER":
            self.bound[(route.path, method)] = found  # direct hit next time (bounded: known methods only)
        return found

    def link(self, call_next: Link, on_error: ErrorHandler, context: AppContext) -> Link:
        bound = self.bound
        bind = self._bind
        clock = time.perf_counter

        def metered(request: Request) -> Response | Deferred[Response]:
            route = request.route
            b = bound.get((route.path, request.method)) if route is not None else None
            if b is None:
                b = bind(request)
            b.in_progress.inc()
            started = clock()
            try:
                result = call_next(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                result = on_error(request, exc)
            if type(result) is not Response and is_deferred(result):
                return result.addCallbacks(_observed, _abandoned, (request, b, started), {}, (b,))
            return _observed(result, request, b, started)

        return metered

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        return self.link(call_next, _reraise, None)(request)  # type: ignore[arg-type]  # typing note: composed by hand, no context needed


def _reraise(request: Request, exc: BaseException) -> Response:
    raise exc


def _observed(response: Response, request: Request, b: _Bound, started: float) -> Response:
    b.duration.observe(time.perf_counter() - started)
    if response.streamer is not None and isinstance(response.streamer, ResourceStreamer):
        # A mounted or returned twisted.web resource sets its own status: count that one
        # once the resource has finished (or the client went away).
        raw = request.raw
        raw.notifyFinish().addBoth(_resource_finished, raw, b)
    else:
        b.count(response.status)
    b.in_progress.dec()
    refused = request.refused_by
    if refused is not None:
        b.refused(refused)
    return response


def _resource_finished(_result: object, raw: Any, b: _Bound) -> None:
    b.count(int(raw.code))


def _abandoned(failure: Failure, b: _Bound) -> Failure:
    b.in_progress.dec()  # the client went away (cancelled): nothing was sent
    return failure


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
        prom = _prometheus()
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
        self.series = series_for(self.registry, buckets)
        self.middleware = MetricsMiddleware(self)
        self.multiprocess = multiprocess_dir() is not None
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
        prom = _prometheus()

        def render(body: bytes) -> Response:
            resp = Response(body, 200, None, prom.CONTENT_TYPE_LATEST)
            resp.headers.set("Cache-Control", "no-store")
            return resp

        return self.app.run_blocking(prom.generate_latest, self.exposed).addCallback(render)
