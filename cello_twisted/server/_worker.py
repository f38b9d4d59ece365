"""A cluster worker's side of the lifecycle (SPEC_OPERATIONS §4 r13, r14).

- It stops when its parent dies, whatever killed the parent (SIGKILL included), so
  no orphan keeps the port: the parent holds the write end of the worker's stdin
  pipe, and the kernel closes it when the parent goes (EOF, or HUP under epoll);
  a cheap ``getppid()`` poll backs that up. The listening socket closes at once
  (graceful stop); the process exits within ``ORPHAN_EXIT_AFTER`` seconds even if
  requests are still in flight, because nobody is left to stop it.
- It tells the parent when it is accepting connections ("ready" on a status pipe),
  so the parent prints its banner only then, and it reports a start-up failure as
  one line ("error ...") so the parent can repeat it when it gives up.
- Until ready, its stderr is a pipe the parent relays (and remembers the last line
  of); once ready it switches fd 2 back to the parent's real stderr, so request
  logs never pass through the parent.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import abstract
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger

_log = Logger(namespace="cello_twisted.cluster")

PARENT_PID_ENV = "CELLO_TWISTED_PARENT_PID"
STATUS_FD_ENV = "CELLO_TWISTED_STATUS_FD"
STDERR_FD_ENV = "CELLO_TWISTED_STDERR_FD"

PARENT_POLL_INTERVAL = 0.25  # seconds between getppid() checks (the pipe usually tells first)
ORPHAN_EXIT_AFTER = 1.0  # seconds an orphaned worker may drain before it exits regardless

READY = b"ready"
ERROR = b"error "


class StdinWatch(abstract.FileDescriptor):
    """Reads the worker's stdin pipe: EOF or a hang-up means the parent died."""

    def __init__(self, reactor: Any, on_gone: Any) -> None:
        super().__init__(reactor)
        self._on_gone = on_gone

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
            self.stopReading()  # type: ignore[no-untyped-call]  # typing note: Twisted leaves it untyped
            self._on_gone("its stdin pipe closed")
        return None

    def connectionLost(self, reason: Any) -> None:
        # epoll reports the closed pipe as a hang-up (ConnectionDone), which arrives
        # here, not in doRead. The reactor's own shutdown passes ConnectionLost.
        if reason.check(ConnectionDone):
            self._on_gone("its stdin pipe hung up")


class ParentGuard:
    """Stops this worker's reactor once when the parent process is gone."""

    def __init__(self, reactor: Any, parent_pid: int | None) -> None:
        self.reactor = reactor
        self.parent_pid = parent_pid if parent_pid is not None else os.getppid()
        self.gone = False
        self._poll: Any = None

    def start(self) -> None:
        from twisted.internet.task import LoopingCall

        try:
            os.fstat(0)
            os.set_blocking(0, False)
        except OSError:
            pass
        else:
            StdinWatch(self.reactor, self.parent_gone).startReading()  # type: ignore[no-untyped-call]
        self._poll = LoopingCall(self.check)
        self._poll.clock = self.reactor
        self._poll.start(PARENT_POLL_INTERVAL, now=True)

    def check(self) -> None:
        """The fallback: reparented (to init or a subreaper) means the parent is gone."""
        if os.getppid() != self.parent_pid:
            self.parent_gone("it is no longer this process's parent")

    def parent_gone(self, how: str) -> None:
        if self.gone:
            return
        self.gone = True
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        _log.warn(
            "cluster parent (pid {pid}) went away ({how}); stopping worker {worker}",
            pid=self.parent_pid,
            how=how,
            worker=os.getpid(),
        )
        self.reactor.callLater(ORPHAN_EXIT_AFTER, _exit_now)
        if self.reactor.running:
            try:
                self.reactor.stop()
            except Exception:  # noqa: BLE001 - already stopping: the exit timer still runs
                pass


def _exit_now() -> None:
    _log.warn("worker {pid} still running {after:g} s after its parent died; exiting", pid=os.getpid(), after=ORPHAN_EXIT_AFTER)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - exiting anyway
            pass
    os._exit(1)


def _env_fd(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def parent_pid_from_env() -> int | None:
    value = os.environ.get(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else None


def _send_status(line: bytes) -> None:
    fd = _env_fd(STATUS_FD_ENV)
    if fd is None:
        return
    try:
        os.write(fd, line + b"\n")
    except OSError:
        pass


def report_ready() -> None:
    """Tell the parent this worker accepts connections; stop routing stderr through it."""
    _send_status(READY)
    status_fd = _env_fd(STATUS_FD_ENV)
    real_stderr = _env_fd(STDERR_FD_ENV)
    os.environ.pop(STATUS_FD_ENV, None)
    os.environ.pop(STDERR_FD_ENV, None)
    if status_fd is not None:
        _close(status_fd)
    if real_stderr is not None:
        try:
            sys.stderr.flush()
            os.dup2(real_stderr, 2)
        except OSError:
            pass
        _close(real_stderr)


def report_error(message: str) -> None:
    """Tell the parent, in one line, why this worker failed to start."""
    _send_status(ERROR + " ".join(message.split()).encode("utf-8", "replace"))


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Readiness:
    """Counts the adopted listening sockets; the last one listening makes the worker ready."""

    def __init__(self, count: int) -> None:
        self.waiting = count

    def listening(self, port: Any) -> Any:
        self.waiting -= 1
        if self.waiting == 0:
            report_ready()
        return port
