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


def listen(app: Any, endpoint: Any, reactor: Any = None) -> Deferred:
    """Startup hooks once (first call), then listen; shutdown hooks once before reactor shutdown."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    if isinstance(endpoint, str):
        from twisted.internet.endpoints import serverFromString

        endpoint = serverFromString(reactor, endpoint)
    if not app._shutdown_registered:
        app._shutdown_registered = True
        reactor.addSystemEventTrigger("before", "shutdown", app.run_hooks, "shutdown")
    startup = app.__dict__.get("_startup_once")
    if startup is None:
        startup = app._startup_once = _Startup(app)

    def listen_now(_: Any) -> Deferred:
        app._started = True
        return endpoint.listen(app.site())

    return startup.wait().addCallback(listen_now)
