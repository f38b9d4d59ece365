"""The metrics series and what one request updates in them (SPEC_OPERATIONS §7 r2, r4).

Every request touches three series: ``cello_requests_total``, ``cello_request_duration_seconds``
and ``cello_requests_in_progress``. In a single process they are plain numbers on one
object per (route template, method), read by a custom prometheus-client collector at
scrape time: a request pays a few integer adds and one ``bisect`` instead of five locked
prometheus-client calls (the Histogram walks its buckets in Python). Cluster workers
use prometheus-client's multiprocess mode, whose files only its own metric objects
write, so there every request goes through those objects (bound once per route).
Either way a scrape shows the same names, types, labels, values and ``_created`` samples.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .. import _signals
from ..routing._handoff import ResourceStreamer

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from ..request import Request
    from ..response import Response

__all__ = ["Bound", "LocalBound", "Series", "SharedBound", "prometheus"]

REQUESTS = ("cello_requests_total", "Responses sent, by method, route template and status.")
DURATION = (
    "cello_request_duration_seconds",
    "Time to the response (last byte of buffered responses, headers of streams).",
)
IN_PROGRESS = ("cello_requests_in_progress", "Requests being handled.")


def prometheus() -> Any:
    """The prometheus_client module, or an ImportError naming the extra."""
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(
            "app.enable_metrics() needs prometheus-client: pip install 'cello-twisted[metrics]'"
        ) from None
    return prometheus_client


class Series:
    """The normative series of one registry, registered once.

    Args:
        registry: the prometheus_client registry the series live in.
        buckets: the histogram's upper bounds in seconds (None: prometheus-client's defaults).
        shared: multiprocess mode (cluster workers): per-request series are
            prometheus-client objects writing the shared files.
    """

    def __init__(self, registry: Any, buckets: Sequence[float] | None, shared: bool) -> None:
        prom = prometheus()
        self.registry = registry
        self.shared = shared
        self.buckets = tuple(buckets) if buckets is not None else tuple(prom.Histogram.DEFAULT_BUCKETS)
        bounds = [float(b) for b in self.buckets]
        if bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self.upper_bounds = tuple(bounds)  # as prometheus_client.Histogram prepares them
        from prometheus_client.utils import floatToGoString

        self.les = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call]  # typing note: prometheus-client is partly unannotated; the "le" label values
        self.table: dict[tuple[str, str], Bound] = {}  # (route label, method) -> Bound, in creation order
        self.first_statuses: list[tuple[LocalBound, int, float]] = []  # counter children, in creation order
        kw: dict[str, Any] = {"registry": registry}
        if shared:
            self.requests = prom.Counter(*REQUESTS, ["method", "route", "status"], **kw)
            self.duration = prom.Histogram(*DURATION, ["method", "route"], buckets=self.buckets, **kw)
            # "livesum" sums the live workers in multiprocess mode (dead workers drop out).
            self.in_progress = prom.Gauge(*IN_PROGRESS, ["method"], multiprocess_mode="livesum", **kw)
            per_request: list[Any] = [self.requests, self.duration, self.in_progress]
        else:
            per_request = [LocalCollector(self)]
            registry.register(per_request[0])
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
            *per_request, self.rate_limited, self.auth_failures, self.store_errors, self.websockets, self.sse,
        ]  # fmt: skip
        _signals.stream_listeners.append(self.stream_changed)
        _signals.store_error_listeners.append(self.store_failed)

    def bound(self, route: str, method: str) -> Bound:
        """The (route label, method) pair's per-request state, made on first use."""
        found = self.table.get((route, method))
        if found is None:
            found = self.table[(route, method)] = (SharedBound if self.shared else LocalBound)(self, route, method)
        return found

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


class Bound:
    """One (route label, method): what a request updates, bound when the routes compile.

    The middleware counts the request in progress and reads the clock before the
    chain, then calls ``observed(response, request, started)`` (or
    ``abandoned(failure)`` when the client went away before a response existed).
    """

    __slots__ = ("series", "route", "method", "rate_limited")

    def __init__(self, series: Series, route: str, method: str) -> None:
        self.series = series
        self.route = route
        self.method = method
        self.rate_limited: Any = None

    def observed(self, response: Response, request: Request, started: float) -> Response:
        raise NotImplementedError

    def abandoned(self, failure: Failure) -> Failure:
        raise NotImplementedError

    def count(self, status: int) -> None:
        raise NotImplementedError

    def counted(self, response: Response, request: Request) -> None:
        """Count the response's status (a twisted.web resource's once it finished) and a refusal."""
        streamer = response.streamer
        if streamer is None or not isinstance(streamer, ResourceStreamer):
            self.count(response.status)
        else:
            # A mounted or returned resource sets its own status: count that one once
            # it has finished (or the client went away).
            raw = request.raw
            raw.notifyFinish().addBoth(self._finished, raw)
        refused = request.refused_by
        if refused is not None:
            self.refused(refused)

    def _finished(self, _result: object, raw: Any) -> None:
        self.count(int(raw.code))

    def refused(self, by: str) -> None:
        if by == "rate_limit":
            if self.rate_limited is None:
                self.rate_limited = self.series.rate_limited.labels(self.route)
            self.rate_limited.inc()
        else:
            self.series.auth_failures.labels(by).inc()


class LocalBound(Bound):
    """Single process: plain numbers, written only by the reactor thread, read by ``LocalCollector``.

    The middleware updates ``entered``, ``total``, ``buckets`` and ``usual_count`` inline on
    its synchronous path (see ``MetricsMiddleware``); ``observed`` is the same for
    responses that arrive through a Deferred. Requests in progress are not a counter of
    their own, which every request would change twice: they are the requests entered
    minus those observed (the histogram's count) and those abandoned. The first
    non-error status a route answers with (nearly always its usual one) is counted in a
    slot, other statuses in a dict: a dict increment costs more than the rest of the update.
    """

    __slots__ = ("entered", "abandoned_count", "total", "buckets", "usual", "usual_count", "counts", "created")

    def __init__(self, series: Series, route: str, method: str) -> None:
        super().__init__(series, route, method)
        self.entered = 0  # requests that reached the middleware
        self.abandoned_count = 0  # requests whose client went away before a response
        self.total = 0.0  # the histogram's sum
        self.buckets = [0] * len(series.upper_bounds)  # per bound, not cumulative
        self.usual: int | None = None  # the first status below 400 counted
        self.usual_count = 0
        self.counts: dict[int, int] = {}  # every other status -> responses
        self.created = time.time()

    def observed(self, response: Response, request: Request, started: float) -> Response:
        elapsed = perf_counter() - started
        self.total += elapsed
        self.buckets[bisect_left(self.series.upper_bounds, elapsed)] += 1  # the first bound >= elapsed ("le")
        self.counted(response, request)
        return response

    def abandoned(self, failure: Failure) -> Failure:
        self.abandoned_count += 1  # the client went away (cancelled): nothing was sent
        return failure

    def count(self, status: int) -> None:
        if status == self.usual:
            self.usual_count += 1
        elif status in self.counts:
            self.counts[status] += 1
        else:
            if self.usual is None and status < 400:  # an error first must not take the slot
                self.usual, self.usual_count = status, 1
            else:
                self.counts[status] = 1
            self.series.first_statuses.append((self, status, time.time()))

    def count_of(self, status: int) -> int:
        return self.usual_count if status == self.usual else self.counts.get(status, 0)


class SharedBound(Bound):
    """Multiprocess mode: prometheus-client's children (they write the shared files), bound once."""

    __slots__ = ("observe", "enter_gauge", "leave_gauge", "incs")

    def __init__(self, series: Series, route: str, method: str) -> None:
        super().__init__(series, route, method)
        self.observe = series.duration.labels(method, route).observe
        gauge = series.in_progress.labels(method)
        self.enter_gauge, self.leave_gauge = gauge.inc, gauge.dec
        self.incs: dict[int, Any] = {}

    def observed(self, response: Response, request: Request, started: float) -> Response:
        self.observe(perf_counter() - started)
        self.counted(response, request)
        self.leave_gauge()
        return response

    def abandoned(self, failure: Failure) -> Failure:
        self.leave_gauge()  # the client went away (cancelled): nothing was sent
        return failure

    def count(self, status: int) -> None:
        inc = self.incs.get(status)
        if inc is None:
            inc = self.incs[status] = self.series.requests.labels(self.method, self.route, str(status)).inc
        inc()


class LocalCollector:
    """A prometheus-client custom collector for the per-request series of one process.

    It yields what prometheus_client's Counter, Histogram and Gauge (labelled as in
    ``Series``) would: the same samples in the same order. Scrapes run off the reactor
    thread, so it reads snapshots (``list``/``dict`` copies are single C calls).
    """

    def __init__(self, series: Series) -> None:
        self.series = series

    def describe(self) -> list[Any]:
        """The families without samples (the registry checks names with this)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        return [
            CounterMetricFamily(*REQUESTS, labels=("method", "route", "status")),
            Metric(*DURATION, "histogram"),
            GaugeMetricFamily(*IN_PROGRESS, labels=("method",)),
        ]

    def collect(self) -> list[Any]:
        prom = prometheus()
        series = self.series
        with_created = _created_series_on(prom)
        requests, duration, in_progress = self.describe()
        for counted, status, created in list(series.first_statuses):
            value = float(counted.count_of(status))
            requests.add_metric((counted.method, counted.route, str(status)), value, created if with_created else None)
        name = duration.name
        les = series.les
        with_sum = series.upper_bounds[0] >= 0
        by_method: dict[str, int] = {}
        for bound in list(series.table.values()):
            if not isinstance(bound, LocalBound):
                continue
            labels = {"method": bound.method, "route": bound.route}
            buckets, abandoned = list(bound.buckets), bound.abandoned_count  # read before ``entered``
            cumulative = 0.0
            for le, n in zip(les, buckets, strict=True):
                cumulative += n
                duration.add_sample(name + "_bucket", {**labels, "le": le}, cumulative)
            duration.add_sample(name + "_count", dict(labels), cumulative)
            if with_sum:
                duration.add_sample(name + "_sum", dict(labels), bound.total)
            if with_created:
                duration.add_sample(name + "_created", dict(labels), bound.created)
            # Requests finishing while this runs may be in ``entered`` but not in the
            # snapshot above: at most those few are counted as still in progress.
            active = max(0, bound.entered - int(cumulative) - abandoned)
            by_method[bound.method] = by_method.get(bound.method, 0) + active
        for method, active in by_method.items():
            in_progress.add_metric((method,), float(active))
        return [requests, duration, in_progress]


def _created_series_on(prom: Any) -> bool:
    """Whether prometheus-client exposes ``_created`` samples now
    (``PROMETHEUS_DISABLE_CREATED_SERIES``, ``disable_created_metrics()``): ask a throwaway counter."""
    probe = prom.Counter("cello_created_probe", "", registry=None)
    return any(sample.name.endswith("_created") for sample in probe.collect()[0].samples)
