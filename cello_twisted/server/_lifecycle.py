"""Lifecycle: an app's startup/shutdown hooks and the serving state shared by run, listen and twistd.

One per App (``app.lifecycle``). Process-level features live here too (the serving
state behind readiness, the lifespan context, the drain delay, cluster plugins), so
server code never keeps state on the App itself.

States (SPEC_OPERATIONS §6 r3): ``starting`` until startup hooks and the lifespan
entered, ``serving``, then ``draining`` from the moment a graceful stop begins.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.resource import Resource
    from twisted.web.server import Site

EVENTS = ("startup", "shutdown")
STARTING, SERVING, DRAINING = "starting", "serving", "draining"

_log = Logger(namespace="cello_twisted.server")

Lifespan = Callable[[Any], Any]
"""``lifespan(app)`` -> an async context manager (SPEC_OPERATIONS §8)."""


def check_event(name: str) -> None:
    """Refuse a hook name other than ``startup`` and ``shutdown``."""
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; use 'startup' or 'shutdown'")


class ServedApp(Protocol):
    """What server code uses of an App (declared here: app.py sits above server/)."""

    lifecycle: Lifecycle
    max_body_size: int | None
    state: Any
    max_concurrent_requests: int | None

    @property
    def clock(self) -> IReactorTime: ...

    def site(self, **site_kwargs: Any) -> Site: ...

    def resource(self) -> Resource: ...

    def run_hooks(self, name: str) -> Deferred[None]: ...


class ClusterPlugin(Protocol):
    """A feature that needs the cluster parent's help (metrics: the multiprocess directory)."""

    def parent_starting(self) -> dict[str, str]:
        """Prepare before workers spawn; returns environment variables for the workers."""
        ...

    def worker_exited(self, pid: int) -> None:
        """A worker process ended (crashed or stopped)."""
        ...

    def parent_stopped(self) -> None:
        """Every worker has ended: clean up."""
        ...


class Startup:
    """The outcome of the app's one start (hooks, lifespan), shared by every listen() call."""

    def __init__(self, lifecycle: Lifecycle, app: Any) -> None:
        self.done = False
        self.failure: Failure | None = None
        self.waiters: list[Deferred[None]] = []
        lifecycle.begin(app).addCallbacks(self._ok, self._failed)

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
        self.state = STARTING
        self.lifespan: Lifespan | None = None  # App(lifespan=...)
        self._entered: Any = None  # the entered lifespan context, until exited
        # Seconds a graceful stop keeps serving (readiness 503) before it stops accepting;
        # set by enable_health (SPEC_OPERATIONS §6 r3).
        self.drain_delay = 0.0
        self.cluster_plugins: list[ClusterPlugin] = []

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

    def startup_once(self, app: Any) -> Startup:
        """The shared start (hooks, lifespan), started on first use."""
        if self.startup is None:
            self.startup = Startup(self, app)
        return self.startup

    @property
    def ready(self) -> bool:
        """Serving: startup hooks and lifespan finished, no stop begun."""
        return self.state == SERVING

    def begin(self, app: Any) -> Deferred[None]:
        """Startup hooks in order, then enter the lifespan; the state becomes ``serving``."""
        self.state = STARTING
        d = self.run_hooks("startup")
        d.addCallback(lambda _: self._enter_lifespan(app))

        def serving(_: object) -> None:
            self.state = SERVING

        return d.addCallback(serving)

    def begin_stop(self) -> None:
        """A graceful stop began: readiness answers 503 ``draining`` from now on."""
        self.state = DRAINING

    def end(self) -> Deferred[None]:
        """Exit the lifespan (a failure is logged, the stop goes on), then run shutdown hooks."""
        self.state = DRAINING
        d = self._exit_lifespan()
        d.addCallback(lambda _: self.run_hooks("shutdown"))
        return d

    def _enter_lifespan(self, app: Any) -> Deferred[None] | None:
        factory = self.lifespan
        if factory is None:
            return None
        context = factory(app)
        if not hasattr(context, "__aenter__"):
            raise TypeError(f"lifespan(app) must return an async context manager, not {type(context).__name__}")

        async def enter() -> None:
            value = await context.__aenter__()
            self._entered = context
            if value is not None:
                if not isinstance(value, Mapping):
                    raise TypeError(f"lifespan yielded {type(value).__name__}; yield a mapping or nothing")
                for key, item in value.items():
                    setattr(app.state, key, item)

        return Deferred.fromCoroutine(enter())

    def _exit_lifespan(self) -> Deferred[None]:
        context, self._entered = self._entered, None
        if context is None:
            return succeed(None)

        async def leave() -> None:
            await context.__aexit__(None, None, None)

        def failed(failure: Failure) -> None:
            _log.failure("lifespan exit failed; stopping anyway", failure=failure)

        return Deferred.fromCoroutine(leave()).addErrback(failed)


def _call_hook(_: object, fn: Callable[[], Any]) -> Deferred[Any]:
    def invoke() -> Any:
        result = fn()
        return Deferred.fromCoroutine(result) if inspect.iscoroutine(result) else result

    return maybeDeferred(invoke)


# -- cluster parent side of the plugins (metrics' multiprocess directory) ------------


def cluster_environ(lifecycle: Lifecycle) -> dict[str, str]:
    """This process's environment plus what the cluster plugins give the workers."""
    import os

    environ = dict(os.environ)
    for plugin in lifecycle.cluster_plugins:
        environ.update(plugin.parent_starting())
    return environ


def worker_exited(lifecycle: Lifecycle, pid: int) -> None:
    for plugin in lifecycle.cluster_plugins:
        try:
            plugin.worker_exited(pid)
        except Exception:
            _log.failure("cluster plugin failed after worker {pid} exited", pid=pid)


def parent_stopped(lifecycle: Lifecycle) -> None:
    for plugin in lifecycle.cluster_plugins:
        try:
            plugin.parent_stopped()
        except Exception:
            _log.failure("cluster plugin failed to clean up")
