"""twistd plugin body: ``twistd cello --app APP [--listen ENDPOINT]...`` (SPEC §2.21)."""

from __future__ import annotations

import os
import sys
from functools import partial
from typing import Any

from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from ._config import ENVS, LOG_FORMATS
from ._twistd_endpoints import EndpointError, parse_listen

_log = Logger(namespace="cello_twisted.server")
DEFAULT_LISTEN = "tcp:8000:interface=127.0.0.1"


def _workers(value: str) -> int:
    workers = int(value)
    if workers < 1:
        raise ValueError("must be at least 1")
    return workers


class Options(usage.Options):
    """Command-line options for the ``cello`` twistd subcommand."""

    synopsis = "--app APP [--listen ENDPOINT]... [--workers N] [--env ENV] [--debug]"
    longdesc = (
        "Serve a cello_twisted App. APP is a path to a .py file (path.py[:attr]) or "
        "package.module[:attr]; attr defaults to 'app' and may be a factory returning an App."
    )
    optParameters = [
        ["app", None, None, "The App to serve: file.py[:attr] or package.module[:attr]."],
        ["workers", None, 1, "Worker processes sharing the listening sockets (tcp:/ssl: only).", _workers],
        ["env", None, "production", "development or production."],
        ["graceful-timeout", None, 30.0, "Seconds in-flight requests get to finish on stop.", float],
        ["log-format", None, "text", "text (twistd's lines) or json (one JSON object per line)."],
        ["header-timeout", None, 10.0, "Seconds a request's line and headers may take (408 after).", float],
        ["body-timeout", None, 30.0, "Longest gap in seconds between two bytes of a request body (408 after).", float],
        ["keep-alive-timeout", None, 60.0, "Seconds an idle keep-alive connection stays open.", float],
        ["max-header-count", None, 100, "Header lines allowed per request (431 above).", int],
        ["max-header-bytes", None, 16384, "Bytes of request line + headers allowed (431; 414 for the line).", int],
        ["backlog", None, 1024, "Accept queue length for listen endpoints that do not set backlog=.", int],
        ["http-parser", None, None, "HTTP/1.1 layer: httptools (llhttp; default when installed) or twisted."],
    ]
    optFlags = [
        ["debug", None, "Debug behaviour (and access logs)."],
        ["logs", None, "Write one access-log line per request."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """A Twisted endpoint string to listen on (repeatable); default tcp:8000:interface=127.0.0.1."""
        self["listen"].append(description)

    def postOptions(self) -> None:
        from ._loader import AppNotFound, load_app

        if not self["app"]:
            raise usage.UsageError("--app is required")
        if self["env"] not in ENVS:
            raise usage.UsageError(f"--env must be one of {', '.join(ENVS)}")
        if self["graceful-timeout"] < 0:
            raise usage.UsageError("--graceful-timeout must be >= 0")
        if self["log-format"] not in LOG_FORMATS:
            raise usage.UsageError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        parent = getattr(self, "parent", None)
        if self["log-format"] == "json" and parent is not None and not parent.get("logger"):
            from ._logging import twistd_target

            # twistd builds its log observer from --logger (a name it imports): the JSON-lines one.
            twistd_target.append((parent.get("logfile") or "", bool(parent.get("nodaemon"))))
            parent["logger"] = "cello_twisted.server._logging.twistd_json_observer"
        from ._limits import ConnectionLimits

        try:
            self["limits"] = ConnectionLimits(
                header_timeout=self["header-timeout"],
                body_timeout=self["body-timeout"],
                keep_alive_timeout=self["keep-alive-timeout"],
                max_header_count=self["max-header-count"],
                max_header_bytes=self["max-header-bytes"],
                backlog=self["backlog"],
                **({"http_parser": self["http-parser"]} if self["http-parser"] else {}),
            )
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        try:
            specs = [parse_listen(d, self["backlog"]) for d in (self["listen"] or [DEFAULT_LISTEN])]
        except EndpointError as e:
            raise usage.UsageError(str(e)) from None
        if self["workers"] > 1:
            others = [s.description for s in specs if s.kind not in ("tcp", "ssl")]
            if others:
                raise usage.UsageError(f"--workers > 1 needs tcp: or ssl: endpoints, not {others[0]!r}")
        try:
            app = load_app(self["app"])
        except AppNotFound as e:
            raise usage.UsageError(str(e)) from None
        except Exception as e:
            from ._worker import report_error

            message = f"cannot import {self['app']}: {type(e).__name__}: {e}"
            report_error(message)  # a cluster worker: the parent repeats it if it gives up
            raise usage.UsageError(message) from None
        if self["env"] == "production":
            problems = app.secret_problems()
            if problems:
                raise usage.UsageError(f"refusing to start in production: {problems[0]}")
        from twisted.internet import reactor  # twistd has installed its reactor by now

        from ._twistd_endpoints import check_listen

        try:
            for spec in specs:
                check_listen(spec, reactor)
        except EndpointError as e:
            raise usage.UsageError(str(e)) from None
        self["specs"] = specs
        self["app_object"] = app


def _stderr_line(message: str) -> None:
    sys.stderr.write(f"cello_twisted: error: {message}\n")
    sys.stderr.flush()


def _exit_after_shutdown(reactor: Any, message: str) -> None:
    """twistd exits 0 after reactor.stop(); a failed start must exit 1."""
    from ._worker import report_error

    _log.critical("{message}", message=message)
    report_error(message)  # a cluster worker: the parent repeats it if it gives up

    def exit_now() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    reactor.addSystemEventTrigger("after", "shutdown", exit_now)
    if reactor.running:
        reactor.stop()


class CelloService(service.Service):
    """One process: startup hooks, listen; on stop: drain, shutdown hooks."""

    def __init__(self, app: Any, endpoints_factory: Any, graceful_timeout: float, limits: Any = None) -> None:
        self.app = app
        self.endpoints_factory = endpoints_factory
        self.graceful_timeout = graceful_timeout
        self.limits = limits
        self.server: Any = None

    def startService(self) -> None:
        from twisted.internet import reactor

        from ._service import CelloServer, build_site

        super().startService()
        site = build_site(self.app) if self.limits is None else build_site(self.app, limits=self.limits)
        self.server = CelloServer(self.app, site, self.endpoints_factory(reactor), self.graceful_timeout, reactor)

        def listening(ports: list[Any]) -> None:
            for port in ports:
                _log.info("cello_twisted serving on {address}", address=port.getHost())

        def failed(f: Any) -> None:
            _exit_after_shutdown(reactor, f"startup failed: {type(f.value).__name__}: {f.value}")

        reactor.callWhenRunning(lambda: self.server.start().addCallbacks(listening, failed))

    def stopService(self) -> Any:
        super().stopService()
        return self.server.stop() if self.server is not None else None


class ClusterService(service.Service):
    """The cluster parent under twistd: binds in privilegedStartService, spawns in startService."""

    def __init__(self, app: Any, specs: list[Any], workers: int, graceful_timeout: float) -> None:
        self.app = app
        self.specs = specs
        self.workers = workers
        self.graceful_timeout = graceful_timeout
        self.sockets: list[Any] = []
        self.parent: Any = None

    def privilegedStartService(self) -> None:
        from ._cluster import bind_socket
        from ._config import StartupError

        try:
            self.sockets = [bind_socket(s.interface or "0.0.0.0", s.port, s.backlog) for s in self.specs]
        except StartupError as e:
            for sock in self.sockets:
                sock.close()
            sys.stderr.write(f"cello_twisted: error: {e}\n")
            raise SystemExit(1) from None
        super().privilegedStartService()

    def startService(self) -> None:
        from twisted.internet import reactor

        from ._cluster import ClusterParent
        from ._lifecycle import cluster_environ, worker_exited
        from ._runner import cluster_warnings

        super().startService()
        for message in cluster_warnings(self.app):
            _log.warn("cluster mode: {message}", message=message)
        lifecycle = self.app.lifecycle
        self.parent = ClusterParent(
            reactor,
            self.sockets,
            self.workers,
            self.graceful_timeout + lifecycle.drain_delay,  # workers keep serving drain_delay s first
            worker_argv(),
            environ=cluster_environ(lifecycle),
            on_exit=partial(worker_exited, lifecycle),
        )
        bound = [(spec.kind, sock.getsockname()[1]) for sock, spec in zip(self.sockets, self.specs, strict=True)]

        def accepting(_: Any) -> None:  # the banner waits for a worker (SPEC_OPERATIONS §4 r14)
            for kind, port in bound:
                _log.info("cello_twisted cluster listening on {kind}:{port}", kind=kind, port=port)

        def give_up(message: str) -> None:
            reactor.addSystemEventTrigger("after", "shutdown", _stderr_line, message)
            _exit_after_shutdown(reactor, message)

        self.parent.ready.addCallback(accepting)
        self.parent.gave_up.addCallback(give_up)
        reactor.callWhenRunning(self.parent.start)

    def stopService(self) -> Any:
        from ._lifecycle import parent_stopped

        super().stopService()
        if self.parent is None:
            return None
        lifecycle = self.app.lifecycle
        return self.parent.stop().addBoth(lambda _: parent_stopped(lifecycle))


def worker_argv(argv: list[str] | None = None) -> list[str]:
    """``sys.orig_argv`` minus the interpreter, forced to --nodaemon with no pidfile."""
    argv = list(sys.orig_argv[1:] if argv is None else argv)
    try:
        at = argv.index("cello")
    except ValueError:
        at = len(argv)
    return argv[:at] + ["--nodaemon", "--pidfile="] + argv[at:]


def makeService(options: Options) -> service.IService:
    from ._cluster import adopted_endpoints, worker_index
    from ._runner import add_request_logging
    from ._tls import certificate_options
    from ._twistd_endpoints import make_endpoint

    app = options["app_object"]
    specs = options["specs"]
    app.env = options["env"]
    app.debug = bool(options["debug"])
    if options["logs"] or app.debug:
        add_request_logging(app)
    timeout = options["graceful-timeout"]
    if worker_index() is None:  # the process the operator started; workers stay quiet
        from ._durability import warn_revocations

        warn_revocations(app)
    if worker_index() is not None:
        def adopted(reactor: Any) -> list[Any]:
            from ._cluster import prepare_worker

            prepare_worker(reactor)
            return adopted_endpoints(reactor, [certificate_options(s.tls) if s.tls else None for s in specs])

        return CelloService(app, adopted, timeout, options["limits"])
    if options["workers"] > 1:
        return ClusterService(app, specs, options["workers"], timeout)
    return CelloService(app, lambda reactor: [make_endpoint(s, reactor) for s in specs], timeout, options["limits"])
