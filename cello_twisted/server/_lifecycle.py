"""Lifecycle: an app's startup/shutdown hooks and the serving state shared by run, listen and twistd.

One per App (``app.lifecycle``). Later process-level features (readiness, lifespan)
live here too, so server code never keeps state on the App itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.resource import Resource
    from twisted.web.server import Site

EVENTS = ("startup", "shutdown")


def check_event(name: str) -> None:
    """Refuse a hook name other than ``startup`` and ``shutdown``."""
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; use 'startup' or 'shutdown'")


class ServedApp(Protocol):
    """What server code uses of an App (declared here: app.py sits above server/)."""

    lifecycle: Lifecycle
    max_body_size: int | None
    max_concurrent_requests: int | None

    @property
    def clock(self) -> IReactorTime: ...

    def site(self, **site_kwargs: Any) -> Site: ...

    def resource(self) -> Resource: ...

    def run_hooks(self, name: str) -> Deferred[None]: ...


class Startup:
    """The outcome of the app's one run of startup hooks, shared by every listen() call."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.done = False
        self.failure: Failure | None = None
        self.waiters: list[Deferred[None]] = []
        lifecycle.run_hooks("startup").addCallbacks(self._ok, self._failed)

    def _ok(self, _: object) -> None:
        self._finish(None)

    def _failed(self, failure: Failure) -> None:
        self._finish(failure)

    def _finish(self, failure: Failure | None) -> None:
        self.done, self.failure = True, failure
        waiters, self.waiters = self.waiters, []
        for d in waiters:
            d.errback(failure) if failure is not None else d.callback(None)

    def wait(self) -> Deferred[None]:
        if self.done:
            return fail(self.failure) if self.failure is not None else succeed(None)
        d: Deferred[None] = Deferred()
        self.waiters.append(d)
        return d


class Lifecycle:
    """Hooks, whether the app is serving, and what a graceful stop must close."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[[], Any]]] = {name: [] for name in EVENTS}
        self.started = False  # set once the app listens (run, listen, twistd, a worker)
        self.startup: Startup | None = None  # listen(): the one shared run of startup hooks
        self.shutdown_registered = False  # listen(): shutdown hooks hooked to the reactor once
        # Run when a graceful stop begins, after long-lived connections were told to close.
        self.drain_callbacks: list[Callable[[], Any]] = []
        # Close long-lived connections of one kind (WebSockets) when a graceful stop begins;
        # registered by the feature when its routes are compiled, so an unused one costs nothing.
        self.closers: dict[str, Callable[[], object]] = {}

    def add_hook(self, name: str, fn: Callable[[], Any]) -> None:
        check_event(name)
        self.hooks[name].append(fn)

    def run_hooks(self, name: str) -> Deferred[None]:
        """Run the ``name`` hooks in order, each awaited before the next."""
        hooks = list(self.hooks[name])

        d: Deferred[Any] = succeed(None)
        for fn in hooks:
            d.addCallback(_call_hook, fn)
        return d

    def startup_once(self) -> Startup:
        """The shared run of startup hooks, started on first use."""
        if self.startup is None:
            self.startup = Startup(self)
        return self.startup


def _call_hook(_: object, fn: Callable[[], Any]) -> Deferred[Any]:
    def invoke() -> Any:
        result = fn()
        return Deferred.fromCoroutine(result) if inspect.iscoroutine(result) else result

    return maybeDeferred(invoke)
