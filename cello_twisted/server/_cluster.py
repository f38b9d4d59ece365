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

from twisted.internet import abstract, protocol
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from ._config import LISTEN_FD_ENV, WORKER_ENV, StartupError

_log = Logger(namespace="cello_twisted.cluster")

FIRST_FD = 3
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0
KILL_MARGIN = 1.0  # seconds past graceful_timeout, so workers can run their shutdown hooks


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
    endpoints = []
    for i, fd in enumerate(fds):
        probe = socket.socket(fileno=os.dup(fd))  # learn the family without taking the fd
        family = probe.family
        probe.close()
        endpoint: Any = _OneAcceptPerWakeup(AdoptedStreamServerEndpoint(reactor, fd, family))
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

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def listen(self, factory: Any) -> Any:
        def balance(port: Any) -> Any:
            cls = type(port)
            port.__class__ = type(f"Balanced{cls.__name__}", (_SingleAccept, cls), {})
            return port

        return self._inner.listen(factory).addCallback(balance)


class _ParentWatch(abstract.FileDescriptor):
    """Reads the worker's stdin pipe: EOF means the parent died, so the worker stops."""

    def __init__(self, reactor: Any) -> None:
        super().__init__(reactor)
        os.set_blocking(0, False)
        self._reactor = reactor

    def fileno(self) -> int:
        return 0

    def doRead(self) -> Any:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            self.stopReading()
            _log.warn("cluster parent went away; stopping worker")
            if self._reactor.running:
                self._reactor.stop()
        return None

    def connectionLost(self, reason: Any) -> None:
        pass


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
    """Stop once on signals, and stop if the parent dies (its stdin pipe closes)."""
    stop_on_signals(reactor)
    try:
        os.fstat(0)
    except OSError:
        return
    _ParentWatch(reactor).startReading()


class _Worker(protocol.ProcessProtocol):
    def __init__(self, parent: ClusterParent, index: int) -> None:
        self.parent = parent
        self.index = index
        self.pid: int | None = None
        self.started_at = 0.0
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Any) -> None:
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
        env = {**self.environ, WORKER_ENV: str(index), LISTEN_FD_ENV: ",".join(map(str, fds))}
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2}
        for fd, sock in zip(fds, self.sockets, strict=True):
            child_fds[fd] = sock.fileno()
        worker = _Worker(self, index)
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


def _signal(worker: _Worker, sig: int) -> None:
    if worker.pid is None or worker.ended.called:
        return
    try:
        os.kill(worker.pid, sig)
    except ProcessLookupError:
        pass
