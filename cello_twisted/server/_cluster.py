"""Cluster mode: a parent holds the listening socket, workers adopt it (SPEC §2.20 r9-r11, TWISTED_NOTES §3)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from ._config import LISTEN_FD_ENV, WORKER_ENV, StartupError
from ._worker import (
    ERROR,
    PARENT_PID_ENV,
    READY,
    STATUS_FD_ENV,
    STDERR_FD_ENV,
    ParentGuard,
    Readiness,
    parent_pid_from_env,
)

_log = Logger(namespace="cello_twisted.cluster")

FIRST_FD = 3
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0
KILL_MARGIN = 1.0  # seconds past graceful_timeout, so workers can run their shutdown hooks
MAX_START_FAILURES = 3  # workers failing before accepting, in a row, before the parent gives up
ERROR_PREFIX = "cello_twisted: error: "
MAX_PARTIAL_LINE = 65536  # bytes of a worker's unfinished output line held before relaying it anyway


def bind_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """Bind and listen on a plain socket the workers will adopt.

    Raises:
        StartupError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        reason = "address already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def adoption_supported(reactor: Any) -> bool:
    from twisted.internet.interfaces import IReactorSocket

    return IReactorSocket.providedBy(reactor)


def worker_index(environ: Any = None) -> int | None:
    value = (os.environ if environ is None else environ).get(WORKER_ENV)
    return int(value) if value not in (None, "") else None


def adopted_endpoints(reactor: Any, tls_options: Sequence[Any | None]) -> list[Any]:
    """Endpoints for the fds the parent passed, TLS-wrapped where ``tls_options`` says so."""
    from twisted.internet.endpoints import AdoptedStreamServerEndpoint, wrapServerTLS

    fds = [int(fd) for fd in os.environ.get(LISTEN_FD_ENV, str(FIRST_FD)).split(",") if fd]
    readiness = Readiness(len(fds))  # all adopted sockets listening: tell the parent
    endpoints = []
    for i, fd in enumerate(fds):
        probe = socket.socket(fileno=os.dup(fd))  # learn the family without taking the fd
        family = probe.family
        probe.close()
        endpoint: Any = _OneAcceptPerWakeup(AdoptedStreamServerEndpoint(reactor, fd, family), readiness)
        options = tls_options[i] if i < len(tls_options) else None
        if options is not None:
            endpoint = wrapServerTLS(options, endpoint)
        endpoints.append(endpoint)
    return endpoints


class _SingleAccept:
    """Mixin pinning ``tcp.Port.numberAccepts`` to 1 (its setter is ignored)."""

    numberAccepts = property(lambda self: 1, lambda self, value: None)


class _OneAcceptPerWakeup:
    """Adopt the shared socket, accepting one connection per wakeup.

    Twisted's port accepts up to 100+ connections each time the socket is readable,
    so with several workers on one socket the first to wake takes a whole burst
    (wrk's 32 keep-alive connections all landed in one worker). Accepting one at a
    time lets every woken worker take its share.
    """

    def __init__(self, inner: Any, readiness: Readiness | None = None) -> None:
        self._inner = inner
        self._readiness = readiness

    def listen(self, factory: Any) -> Any:
        def balance(port: Any) -> Any:
            cls = type(port)
            port.__class__ = type(f"Balanced{cls.__name__}", (_SingleAccept, cls), {})
            return port

        d = self._inner.listen(factory).addCallback(balance)
        if self._readiness is not None:
            d.addCallback(self._readiness.listening)
        return d


def stop_on_signals(reactor: Any) -> None:
    """SIGINT/SIGTERM stop the reactor once; repeats are ignored.

    Ctrl-C reaches every worker and the parent then sends SIGTERM as well; with
    Twisted's own handlers the second signal logs a ReactorNotRunning traceback.
    The parent's SIGKILL after graceful_timeout remains the hard stop.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    stopping: list[bool] = []

    def stop_once() -> None:
        if not stopping and reactor.running:
            stopping.append(True)
            reactor.stop()

    def handler(signum: int, frame: Any) -> None:
        reactor.callFromThread(stop_once)

    def install() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    reactor.callWhenRunning(install)  # after the reactor has installed its own


def prepare_worker(reactor: Any) -> None:
    """Stop once on signals, and stop within 2 s if the parent dies (SPEC_OPERATIONS §4 r13)."""
    stop_on_signals(reactor)
    ParentGuard(reactor, parent_pid_from_env()).start()


class _Worker(protocol.ProcessProtocol):
    """One worker process: relays its start-up stderr, hears "ready" or "error" on its status pipe."""

    def __init__(self, parent: ClusterParent, index: int, status_fd: int) -> None:
        self.parent = parent
        self.index = index
        self.status_fd = status_fd
        self.pid: int | None = None
        self.started_at = 0.0
        self.ready = False
        self.error: str | None = None  # its own one-line report, if it sent one
        self.last_line: str | None = None  # the last line it wrote to stderr before ready
        self._stderr = b""
        self._status = b""
        self.ended: Deferred[None] = Deferred()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            self._stderr += data
            *lines, self._stderr = self._stderr.split(b"\n")
            if len(self._stderr) > MAX_PARTIAL_LINE:  # never buffer without bound
                lines.append(self._stderr)
                self._stderr = b""
            for line in lines:
                self._relay(line)
        elif childFD == self.status_fd:
            self._status += data
            *lines, self._status = self._status.split(b"\n")
            self._status = self._status[-MAX_PARTIAL_LINE:]
            for line in lines:
                self._status_line(line)

    def childConnectionLost(self, childFD: int) -> None:
        if childFD == 2 and self._stderr:
            self._relay(self._stderr)
            self._stderr = b""

    def _relay(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line.strip():
            self.last_line = line.strip()
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _status_line(self, line: bytes) -> None:
        if line == READY and not self.ready:
            self.ready = True
            self.parent._ready(self)
        elif line.startswith(ERROR):
            self.error = line[len(ERROR) :].decode("utf-8", "replace").strip() or None

    def processEnded(self, reason: Any) -> None:
        self.childConnectionLost(2)
        self.parent._ended(self, reason.value)
        self.ended.callback(None)


class ClusterParent:
    """Spawns and supervises ``workers`` copies of this program sharing ``sockets``."""

    def __init__(
        self,
        reactor: Any,
        sockets: Sequence[socket.socket],
        workers: int,
        graceful_timeout: float,
        argv: Sequence[str],
        environ: Any = None,
        on_exit: Callable[[int], object] | None = None,
    ) -> None:
        self.reactor = reactor
        self.sockets = list(sockets)
        self.count = workers
        self.graceful_timeout = graceful_timeout
        self.argv = list(argv)
        self.environ = dict(os.environ if environ is None else environ)
        self.live: dict[int, _Worker] = {}
        self.delays: dict[int, float] = {}
        self.pending: dict[int, Any] = {}
        self.stopping = False
        self.on_exit = on_exit  # told each ended worker's pid (metrics drop its live gauges)
        self.ever_ready = False
        self.start_failures = 0  # workers in a row that exited before accepting
        self.failure: str | None = None  # set when the parent gives up (exit 1 with it)
        self.ready: Deferred[int] = Deferred()  # fires (worker index) when the first worker accepts connections
        self.gave_up: Deferred[str | None] = Deferred()  # fires with ``failure`` when no worker can start

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.live.values() if w.pid is not None]

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        self.pending.pop(index, None)
        if self.stopping:
            return
        fds = list(range(FIRST_FD, FIRST_FD + len(self.sockets)))
        status_fd = FIRST_FD + len(self.sockets)  # worker → parent: "ready" / "error ..."
        real_stderr = status_fd + 1  # the worker's stderr once it is ready
        env = {
            **self.environ,
            WORKER_ENV: str(index),
            LISTEN_FD_ENV: ",".join(map(str, fds)),
            PARENT_PID_ENV: str(os.getpid()),
            STATUS_FD_ENV: str(status_fd),
            STDERR_FD_ENV: str(real_stderr),
        }
        # stdin: a pipe whose closing tells the worker we died; stderr: relayed until ready.
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: "r", status_fd: "r", real_stderr: 2}
        for fd, sock in zip(fds, self.sockets, strict=True):
            child_fds[fd] = sock.fileno()
        worker = _Worker(self, index, status_fd)
        transport = self.reactor.spawnProcess(
            worker, sys.executable, [sys.executable, *self.argv], env=env, childFDs=child_fds
        )
        worker.pid = transport.pid  # None again inside processEnded (TWISTED_NOTES §3)
        worker.started_at = self.reactor.seconds()
        self.live[index] = worker
        _log.info("worker {index} started (pid {pid})", index=index, pid=worker.pid)

    def _ended(self, worker: _Worker, reason: Any) -> None:
        if self.live.get(worker.index) is worker:
            del self.live[worker.index]
        if self.on_exit is not None and worker.pid is not None:
            self.on_exit(worker.pid)
        code = getattr(reason, "exitCode", None)
        sig = getattr(reason, "signal", None)
        how = f"signal {sig}" if sig else f"status {code}"
        if self.stopping:
            _log.info("worker {index} (pid {pid}) exited with {how}", index=worker.index, pid=worker.pid, how=how)
            return
        if worker.ready:
            self.start_failures = 0
        else:
            self.start_failures += 1
            if not self.ever_ready and self.start_failures >= MAX_START_FAILURES:
                self._give_up(worker, how)
                return
        uptime = self.reactor.seconds() - worker.started_at
        previous = self.delays.get(worker.index)
        if previous is None or uptime >= BACKOFF_RESET_AFTER:
            delay = BACKOFF_START
        else:
            delay = min(previous * 2, BACKOFF_MAX)
        self.delays[worker.index] = delay
        _log.warn(
            "worker {index} (pid {pid}) exited with {how}; restarting in {delay:g}s",
            index=worker.index, pid=worker.pid, how=how, delay=delay,
        )
        self.pending[worker.index] = self.reactor.callLater(delay, self._spawn, worker.index)

    def _ready(self, worker: _Worker) -> None:
        _log.info("worker {index} (pid {pid}) accepting connections", index=worker.index, pid=worker.pid)
        if not self.ever_ready:
            self.ever_ready = True
            self.ready.callback(worker.index)

    def _give_up(self, worker: _Worker, how: str) -> None:
        """SPEC_OPERATIONS §4 r14: no worker ever started and 3 failed in a row: stop, exit 1."""
        self.failure = worker.error or worker_failure(worker.last_line, how)  # its own report is already ours
        _log.error(
            "worker {index} (pid {pid}) exited with {how}; {count} workers in a row exited before accepting "
            "connections and none ever started: giving up",
            index=worker.index, pid=worker.pid, how=how, count=self.start_failures,
        )
        self.gave_up.callback(self.failure)
        if self.reactor.running:
            try:
                self.reactor.stop()
            except Exception:  # noqa: BLE001 - already stopping
                pass

    def close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def stop(self) -> Deferred[None]:
        """Close our socket first (clean refusals), SIGTERM workers, SIGKILL late ones."""
        self.stopping = True
        self.close_sockets()
        for call in self.pending.values():
            if call.active():
                call.cancel()
        self.pending.clear()
        workers = list(self.live.values())
        for worker in workers:
            _signal(worker, signal.SIGTERM)

        def kill_survivors() -> None:
            for worker in workers:
                if not worker.ended.called:
                    _log.warn("worker {index} (pid {pid}) did not stop in time; killing it", index=worker.index, pid=worker.pid)
                    _signal(worker, signal.SIGKILL)

        killer = self.reactor.callLater(self.graceful_timeout + KILL_MARGIN, kill_survivors)
        done = DeferredList([w.ended for w in workers])

        def finished(result: Any) -> Any:
            if killer.active():
                killer.cancel()
            return result

        return done.addBoth(finished)


def worker_failure(line: str | None, how: str) -> str:
    """The parent's exit message: the worker's one-line error, without our usual prefix."""
    if not line:
        return f"worker exited with {how} before accepting connections"
    if line.startswith(ERROR_PREFIX):
        return line[len(ERROR_PREFIX) :]
    return f"worker failed to start: {line}"


def _signal(worker: _Worker, sig: int) -> None:
    if worker.pid is None or worker.ended.called:
        return
    try:
        os.kill(worker.pid, sig)
    except ProcessLookupError:
        pass
