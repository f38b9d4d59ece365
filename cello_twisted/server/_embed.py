"""app.listen(): serve inside a reactor someone else runs (SPEC §2.22 r3)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed


class _Startup:
    """The outcome of the app's one run of startup hooks, shared by every listen() call."""

    def __init__(self, app: Any) -> None:
        self.done = False
        self.failure: Any = None
        self.waiters: list[Deferred] = []
        app.run_hooks("startup").addCallbacks(self._ok, self._failed)

    def _ok(self, _: Any) -> None:
        self._finish(None)

    def _failed(self, failure: Any) -> None:
        self._finish(failure)

    def _finish(self, failure: Any) -> None:
        self.done, self.failure = True, failure
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.errback(failure) if failure is not None else d.callback(None)

    def wait(self) -> Deferred:
        if self.done:
            return fail(self.failure) if self.failure is not None else succeed(None)
        d: Deferred = Deferred()
        self.waiters.append(d)
        return d


def build_site(app: Any, site_kwargs: dict[str, Any]) -> Any:
    """``app.site(**kw)``: a CelloSite with the app's body limit, load shedding and clock.

    Raises:
        ConfigError: a connection limit with a bad value.
    """
    from ._limits import split_limits
    from ._site import CelloSite

    limits, rest = split_limits(site_kwargs)
    return CelloSite(
        app.resource(),
        max_body_size=app.max_body_size,
        limits=limits,
        max_concurrent_requests=getattr(app, "max_concurrent_requests", None),
        clock=rest.get("reactor") or app.clock,  # an explicit reactor= (the test client's) drives the timers
        **rest,
    )


def listen(app: Any, endpoint: Any, reactor: Any = None, **site_kwargs: Any) -> Deferred:
    """Startup hooks once (first call), then listen; shutdown hooks once before reactor shutdown.

    ``site_kwargs`` are app.site()'s; an endpoint string without ``backlog=`` gets ``backlog``.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    site = build_site(app, site_kwargs)
    if isinstance(endpoint, str):
        from ._twistd_endpoints import endpoint_from_string

        endpoint = endpoint_from_string(reactor, endpoint, site.backlog)
    if not app._shutdown_registered:
        app._shutdown_registered = True
        reactor.addSystemEventTrigger("before", "shutdown", app.run_hooks, "shutdown")
    startup = app.__dict__.get("_startup_once")
    if startup is None:
        startup = app._startup_once = _Startup(app)

    def listen_now(_: Any) -> Deferred:
        app._started = True
        return endpoint.listen(site)

    return startup.wait().addCallback(listen_now)
