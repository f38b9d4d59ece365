"""A worker's parent watch and the parent's exit message, in-process (SPEC_OPERATIONS §4 r13, r14)."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.server import _worker
from cello_twisted.server._cluster import worker_failure
from cello_twisted.server._worker import ORPHAN_EXIT_AFTER, ParentGuard, StdinWatch


class FakeReactor(Clock):
    """A Clock that records stop() like a running reactor would get it."""

    running = True

    def __init__(self) -> None:
        super().__init__()
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


class ParentGuardTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.exits: list[bool] = []
        self.patch(_worker, "_exit_now", lambda: self.exits.append(True))

    def test_live_parent_changes_nothing(self) -> None:
        """§4 r13: while the parent is this process's parent, the poll does nothing."""
        guard = ParentGuard(self.reactor, os.getppid())
        guard.check()
        self.assertEqual((self.reactor.stops, guard.gone), (0, False))

    def test_reparented_worker_stops_then_exits(self) -> None:
        """§4 r13: the getppid() fallback stops the reactor once and exits 1 s later whatever is in flight."""
        guard = ParentGuard(self.reactor, os.getppid() + 1_000_000)
        guard.check()
        guard.check()
        self.assertEqual(self.reactor.stops, 1)
        self.reactor.advance(ORPHAN_EXIT_AFTER - 0.01)
        self.assertEqual(self.exits, [])
        self.reactor.advance(0.01)
        self.assertEqual(self.exits, [True])

    def test_pipe_hangup_means_parent_gone_but_shutdown_does_not(self) -> None:
        """§4 r13: a hang-up on the stdin pipe (epoll's ConnectionDone) stops the worker; the reactor's own
        shutdown (ConnectionLost to every reader) does not count as the parent dying."""
        seen: list[str] = []
        watch = StdinWatch(self.reactor, seen.append)
        watch.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(seen, [])
        watch.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(seen), 1)


class WorkerFailureMessageTests(SynchronousTestCase):
    def test_message(self) -> None:
        """§4 r14: the parent's last line repeats the worker's one-line error (one prefix, never two)."""
        cases: list[tuple[Any, str]] = [
            ("cello_twisted: error: startup failed: RuntimeError: boom", "startup failed: RuntimeError: boom"),
            ("ImportError: cannot import name 'x'", "worker failed to start: ImportError: cannot import name 'x'"),
            (None, "worker exited with status 1 before accepting connections"),
        ]
        for line, expected in cases:
            self.assertEqual(worker_failure(line, "status 1"), expected)
