"""app.run(): one process, a cluster parent or worker, or the reload supervisor (SPEC §2.20)."""

from __future__ import annotations

import os
import sys
import threading
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from .._types import hooks_of
from ._config import ServeOptions, StartupError, resolve
from ._lifecycle import ServedApp, cluster_environ, parent_stopped, worker_exited
from ._tls import TlsError, certificate_options, resolve_http2

if TYPE_CHECKING:
    from collections.abc import Sequence


class RunnableApp(ServedApp, Protocol):
    """What app.run() uses of an App (declared here: app.py sits above server/)."""

    env: str
    debug: bool

    @property
    def middleware(self) -> list[Any]: ...

    @property
    def blueprints(self) -> Sequence[Any]: ...

    def invalidate(self) -> None: ...

    def secret_problems(self) -> list[str]: ...


_log = Logger(namespace="cello_twisted.server")
_ran = False


def run(app: RunnableApp, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; start-up failures exit 1 with one stderr line."""
    global _ran
    from twisted.internet import reactor

    if reactor.running:
        raise RuntimeError("the reactor is already running: use app.listen() to serve inside it")
    if _ran:
        raise RuntimeError("app.run() can be called once per process (the reactor cannot restart)")
    main_thread = threading.current_thread() is threading.main_thread()
    try:
        opts = resolve(host, port, kwargs, sys.argv[1:])
    except StartupError as e:
        _fail(str(e))
    _ran = True
    app.env, app.debug = opts.env, opts.debug
    _start_logging(opts.log_format)
    for warning in opts.warnings:
        _log.warn("{warning}", warning=warning)
    if opts.logs:
        add_request_logging(app)
    problems = app.secret_problems() if opts.env == "production" else []
    if problems:
        _fail(f"refusing to start in production: {problems[0]}")
    from ._cluster import worker_index

    if worker_index() is None:  # the process the operator started; workers stay quiet
        from ._durability import warn_revocations

        warn_revocations(app)
    tls_options = None
    if opts.tls is not None:
        try:
            tls_options = certificate_options(opts.tls)
        except TlsError as e:
            _fail(str(e))
    http2 = resolve_http2(opts.http2, opts.tls is not None)

    from ._cluster import adoption_supported, worker_index

    if opts.reload and main_thread:
        from .reload import supervise

        code = supervise(opts.graceful_timeout)
        if code:
            raise SystemExit(code)
        return
    if opts.reload:
        _log.warn("reload needs the main thread; serving without it")
    index = worker_index()
    if index is None and opts.workers > 1:
        if not main_thread:
            _log.warn("workers need the main thread; serving with one process")
        elif not adoption_supported(reactor):
            _log.warn("this reactor cannot adopt sockets; serving with one process")
        else:
            return _run_parent(app, opts, reactor)
    _run_single(app, opts, reactor, tls_options, http2, index, main_thread)


def _fail(message: str) -> Any:
    sys.stderr.write(f"cello_twisted: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _start_logging(log_format: str = "text") -> None:
    from ._logging import start_logging

    start_logging(log_format)


def add_request_logging(app: RunnableApp) -> None:
    """Outermost, so the logged status and time include every other middleware."""
    from ..middleware.logging import RequestLogging

    if any(isinstance(mw, RequestLogging) for mw in app.middleware):
        return
    app.middleware.insert(0, RequestLogging())
    app.invalidate()


def banner(opts: ServeOptions, bound_port: int, workers: int) -> str:
    scheme = "https" if opts.tls is not None else "http"
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    debug = "on" if opts.debug else "off"
    return (
        f"cello_twisted serving on {scheme}://{host}:{bound_port} "
        f"(env: {opts.env}, debug: {debug}, workers: {workers}, pid: {os.getpid()})"
    )


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cluster_warnings(app: RunnableApp) -> list[str]:
    """Per-process state that cluster mode splits per worker: middleware and route limits."""
    from ..middleware.ratelimit import route_cluster_warnings

    return _middleware_warnings(app) + route_cluster_warnings(app)


def _middleware_warnings(table: Any) -> list[str]:
    found = []
    for mw in table.middleware:
        check = hooks_of(mw).cluster_warning
        message = check() if callable(check) else None
        if message:
            found.append(message)
    for bp in getattr(table, "blueprints", ()):
        found += _middleware_warnings(bp)
    return found


def _run_parent(app: RunnableApp, opts: ServeOptions, reactor: Any) -> None:
    from ._cluster import ClusterParent, bind_socket

    try:
        sock = bind_socket(opts.host, opts.port, opts.limits.backlog)
    except StartupError as e:
        _fail(str(e))
    for message in cluster_warnings(app):
        _log.warn("cluster mode: {message}", message=message)
    lifecycle = app.lifecycle
    parent = ClusterParent(
        reactor,
        [sock],
        opts.workers,
        opts.graceful_timeout + lifecycle.drain_delay,  # workers keep serving drain_delay s first
        sys.orig_argv[1:],
        environ=cluster_environ(lifecycle),
        on_exit=partial(worker_exited, lifecycle),
    )
    reactor.addSystemEventTrigger("before", "shutdown", lambda: parent.stop().addBoth(lambda _: parent_stopped(lifecycle)))

    bound_port = sock.getsockname()[1]
    parent.ready.addCallback(lambda _: _print(banner(opts, bound_port, opts.workers)))  # once a worker accepts
    reactor.callWhenRunning(parent.start)
    reactor.run()
    parent.close_sockets()
    if parent.failure is not None:  # no worker could ever start (SPEC_OPERATIONS §4 r14)
        _fail(parent.failure)


def _endpoints(opts: ServeOptions, reactor: Any, tls_options: Any, index: int | None) -> list[Any]:
    if index is not None:
        from ._cluster import adopted_endpoints, prepare_worker

        prepare_worker(reactor)
        return adopted_endpoints(reactor, [tls_options])
    from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint

    backlog = opts.limits.backlog
    if tls_options is not None:
        return [SSL4ServerEndpoint(reactor, opts.port, tls_options, backlog=backlog, interface=opts.host)]
    return [TCP4ServerEndpoint(reactor, opts.port, backlog=backlog, interface=opts.host)]


def _run_single(
    app: RunnableApp,
    opts: ServeOptions,
    reactor: Any,
    tls_options: Any,
    http2: bool,
    index: int | None,
    main_thread: bool,
) -> None:
    from ._service import CelloServer, build_site

    site = build_site(app, http2, opts.limits)
    server = CelloServer(app, site, _endpoints(opts, reactor, tls_options, index), opts.graceful_timeout, reactor)
    failure: list[str] = []

    def started(ports: list[Any]) -> None:
        if index is None:
            _print(banner(opts, ports[0].getHost().port, 1))
        else:
            _log.info("worker {index} serving (pid {pid})", index=index, pid=os.getpid())

    def failed(f: Any) -> None:
        error = f.value
        if isinstance(error, CannotListenError):
            reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
            if "in use" in reason.lower():
                reason = "address already in use"
            failure.append(f"cannot listen on {opts.host}:{opts.port}: {reason}")
        else:
            failure.append(f"startup failed: {type(error).__name__}: {error}")
        reactor.stop()

    def start() -> None:
        server.start().addCallbacks(started, failed)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", server.stop)
    if index is None and main_thread:
        from ._cluster import stop_on_signals

        stop_on_signals(reactor)
    reactor.run(installSignalHandlers=main_thread)
    if failure:
        _fail(failure[0])
