"""CelloServer: start-up hooks, listening, graceful drain and shutdown hooks (SPEC §2.5 r5, §2.20 r8)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger

from ._limits import DEFAULT_LIMITS, ConnectionLimits
from ._site import CelloSite

if TYPE_CHECKING:
    from ._lifecycle import ServedApp

_log = Logger(namespace="cello_twisted.server")
_POLL = 0.05
FRESH_GRACE = 0.5  # a just-accepted connection that sent nothing yet gets this long (its bytes may be queued)


if TYPE_CHECKING:
    from twisted.web.server import Request as _RequestBase
else:
    _RequestBase = object


class _DrainAware(_RequestBase):
    """Requests arriving while the site drains are answered with ``Connection: close``."""

    def process(self) -> None:
        site: TrackingSite = self.channel.site  # type: ignore[attr-defined]  # typing note: the Site sets channel.site
        if site.draining and hasattr(self.channel, "persistent"):  # HTTP/1.x only
            self.responseHeaders.setRawHeaders(b"connection", [b"close"])
            self.channel.persistent = False
        super().process()  # type: ignore[no-untyped-call]  # typing note: Request.process is unannotated


class TrackingSite(CelloSite):
    """A CelloSite that remembers its connections so a stop can drain them."""

    draining = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requestFactory = type("DrainAwareRequest", (_DrainAware, self.requestFactory), {})  # type: ignore[assignment]  # typing note: a dynamic subclass
        self.connections: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.noisy = False  # no "Starting factory" line per listen

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            self.connections[protocol] = _now()
        return protocol


def _now() -> float:
    import time

    return time.monotonic()


def build_site(app: ServedApp, http2: bool | None = None, limits: ConnectionLimits = DEFAULT_LIMITS) -> TrackingSite:
    """The Site every server mode uses; ``http2`` pins the ALPN list when not None."""
    from ._tls import apply_http2

    site = TrackingSite(
        app.resource(),
        max_body_size=app.max_body_size,
        limits=limits,
        max_concurrent_requests=app.max_concurrent_requests,
        clock=app.clock,
    )
    if http2 is not None:
        apply_http2(site, http2)
    return site


def on_drain(app: ServedApp, callback: Callable[[], Any]) -> None:
    """Register ``callback`` to run when a graceful stop begins (WebSocket 1001, SSE end)."""
    app.lifecycle.drain_callbacks.append(callback)


def close_long_lived(app: ServedApp) -> None:
    """Close the app's WebSockets with 1001 and end its SSE streams, so the drain can finish."""
    from ..sse._streamer import close_streams

    for close in list(app.lifecycle.closers.values()):  # WebSockets, when the app has any
        close()
    close_streams(app)


def _accept_backlog(port: Any) -> None:
    """Accept what already waits in the kernel queue: closing the socket would reset it."""
    accept = getattr(port, "doRead", None)
    if accept is not None and getattr(port, "connected", False):
        try:
            accept()
        except Exception:
            _log.failure("accepting the backlog before stopping failed")


def _in_flight(protocol: Any) -> list[Any]:
    channel = getattr(protocol, "_channel", protocol)
    requests = getattr(channel, "requests", None)
    if requests is not None:
        return list(requests)
    streams = getattr(channel, "streams", None)  # HTTP/2
    return list(streams.values()) if streams else []


def _state(protocol: Any) -> str:
    """"busy" when a request with complete headers is in progress (SPEC_OPERATIONS §4 r10)."""
    state = getattr(protocol, "connection_state", None)
    if state is not None:
        return str(state())
    return "busy" if _in_flight(protocol) else "idle"  # a protocol from another site class


def drain(site: TrackingSite, timeout: float, clock: Any) -> Deferred[Any]:
    """Close idle connections and partial requests now, let busy ones finish (then close),
    abort the rest at ``timeout``."""
    done: Deferred[Any] = Deferred()
    deadline = clock.seconds() + timeout
    site.draining = True

    def sweep() -> None:
        live = 0
        expired = clock.seconds() >= deadline
        for protocol, accepted in list(site.connections.items()):
            channel = getattr(protocol, "_channel", protocol)  # H1/H2 switch wraps the channel
            transport = getattr(channel, "transport", None)
            if transport is None or getattr(transport, "disconnected", False):
                site.connections.pop(protocol, None)
                continue
            state = _state(protocol)
            fresh = state == "fresh" and _now() - accepted < FRESH_GRACE
            if (state != "busy" and not fresh) or expired:
                if expired:
                    transport.abortConnection()
                else:
                    transport.loseConnection()
                site.connections.pop(protocol, None)
                continue
            live += 1
            if fresh:
                continue
            close_after = getattr(protocol, "close_after_response", None)
            if close_after is not None:
                close_after()  # keep-alive ends with the current response
        if live and not expired:
            clock.callLater(_POLL, sweep)
        else:
            done.callback(None)

    sweep()
    return done


def _close_shared_state(app: Any) -> Deferred[Any]:
    """Close the Redis stores and the app's Broadcast once no request is in flight (SPEC §12 r6).

    Redis stores reopen connections on demand, so closing every one in the process is safe
    even when it serves several apps.
    """
    from ..stores._registry import close_all

    broadcast = getattr(app, "broadcast", None)
    if broadcast is not None and hasattr(broadcast, "close"):
        try:
            broadcast.close()
        except Exception:
            _log.failure("closing the broadcast failed")
    return close_all()


class CelloServer:
    """One process serving ``app`` on some endpoints; used by run(), workers and twistd."""

    def __init__(
        self,
        app: ServedApp,
        site: TrackingSite,
        endpoints: Sequence[Any],
        graceful_timeout: float,
        reactor: Any,
    ) -> None:
        self.app = app
        self.site = site
        self.endpoints = list(endpoints)
        self.graceful_timeout = graceful_timeout
        self.reactor = reactor
        self.ports: list[Any] = []
        self._started = False
        self._stopping: Deferred[Any] | None = None

    def start(self) -> Deferred[Any]:
        """Run startup hooks in order, then listen; fires with the listening ports."""
        d = self.app.lifecycle.begin(self.app)  # startup hooks, then the lifespan

        def listen(_: Any) -> Deferred[Any]:
            self._started = True
            self.app.lifecycle.started = True
            attempts = [ep.listen(self.site) for ep in self.endpoints]
            return gatherResults(attempts, consumeErrors=True).addErrback(self._listen_failed, attempts)

        def keep(ports: list[Any]) -> list[Any]:
            self.ports = ports
            return ports

        return d.addCallback(listen).addCallback(keep)

    def _listen_failed(self, failure: Any, attempts: list[Deferred[Any]]) -> Any:
        for attempt in attempts:  # release the ports that did bind
            attempt.addCallback(lambda port: port.stopListening()).addErrback(lambda _: None)
        inner = getattr(failure.value, "subFailure", None)
        return inner if inner is not None else failure

    def stop(self) -> Deferred[Any]:
        """(After the health drain delay) stop accepting, drain within graceful_timeout, exit the lifespan, run shutdown hooks."""
        if self._stopping is not None:
            return self._stopping
        if not self._started:
            self._stopping = succeed(None)
            return self._stopping
        lifecycle = self.app.lifecycle
        lifecycle.begin_stop()  # readiness answers 503 "draining" from now on
        delay = lifecycle.drain_delay
        if delay > 0:  # keep serving while load balancers notice (SPEC_OPERATIONS §6 r3)
            from twisted.internet.task import deferLater

            self._stopping = deferLater(self.reactor, delay, self._stop_now)
        else:
            self._stopping = self._stop_now()
        return self._stopping

    def _stop_now(self) -> Deferred[Any]:
        for port in self.ports:
            _accept_backlog(port)
        stopped = DeferredList([maybeDeferred(p.stopListening) for p in self.ports], consumeErrors=True)
        try:
            close_long_lived(self.app)
        except Exception:
            _log.failure("closing WebSockets/SSE streams failed")
        for callback in self.app.lifecycle.drain_callbacks:
            try:
                callback()
            except Exception:
                _log.failure("drain callback failed")
        d = stopped.addCallback(lambda _: drain(self.site, self.graceful_timeout, self.reactor))
        d.addCallback(lambda _: self.app.lifecycle.end())  # lifespan exit, then shutdown hooks
        d.addErrback(lambda f: _log.failure("shutdown hook failed", f))
        d.addCallback(lambda _: _close_shared_state(self.app))
        return d
