"""Cluster lifecycle in real processes (SPEC_OPERATIONS §4 r13, r14).

Workers die with their parent (SIGKILL included) and free the port; the parent prints
its banner only once a worker accepts; a cluster whose workers can never start exits 1
with the worker's error line after 3 attempts.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import (
    PYTHON,
    TWISTD,
    Child,
    alive,
    get,
    spawn,
    tempdir,
    wait_until,
    write_app,
)

pytestmark = pytest.mark.live

APP_SOURCE = '''
import os
import time

from twisted.internet import reactor, task

from cello_twisted import App

if os.environ.get("FAIL_IMPORT") and os.environ.get("CELLO_TWISTED_WORKER"):
    import module_that_does_not_exist  # only workers fail: the parent imported fine

app = App()
MARKER = os.environ.get("MARKER")


@app.get("/")
def index(request):
    return {"pid": os.getpid()}


@app.get("/slow")
def slow(request):
    return task.deferLater(reactor, 30, lambda: {"slow": True})


@app.on_event("startup")
def started():
    delay = float(os.environ.get("STARTUP_DELAY", "0"))
    if delay:
        time.sleep(delay)
    if os.environ.get("FAIL_STARTUP"):
        raise RuntimeError("database unreachable")
    if MARKER:
        if os.path.exists(MARKER):
            raise RuntimeError("second start refused")
        open(MARKER, "w").close()


if __name__ == "__main__":
    app.run()
'''


FAILED_START = r"exited with status 1; (restarting|\d+ workers in a row)"  # not the exits while stopping


def _worker_pids(child: Child) -> set[int]:
    return {int(m) for m in re.findall(r"worker \d started \(pid (\d+)\)", child.output)}


def _port_is_free(port: int) -> bool:
    """A new server could bind and listen on the port (what a restarted service needs)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
        return True


class ClusterLifecycleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, source=APP_SOURCE)

    def start(self, workers: int = 2, **env: str) -> Child:
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--workers", str(workers), "--no-logs"], self.dir, env)
        self.addCleanup(self._kill_workers, child)
        return child

    def _kill_workers(self, child: Child) -> None:
        for pid in _worker_pids(child):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def test_sigkill_of_parent_stops_every_worker_and_frees_the_port(self) -> None:
        """§4 r13: kill -9 of the parent → every worker gone within 2 s, even one with a request in flight; the port binds."""
        child = self.start()
        port = child.port()
        child.wait_for(r"worker 0 serving", 15)
        child.wait_for(r"worker 1 serving", 15)
        pids = _worker_pids(child)
        self.assertEqual(len(pids), 2)
        self.assertEqual(get(port, "/")[0], 200)
        in_flight: list[object] = []

        def slow_request() -> None:
            try:
                in_flight.append(get(port, "/slow", timeout=10))
            except Exception as e:  # noqa: BLE001 - the worker goes away under it
                in_flight.append(e)

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.3)  # let the slow request reach a worker
        child.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait(5)
        gone = wait_until(lambda: not any(alive(p) for p in pids), 2.0)
        elapsed = time.monotonic() - killed_at
        self.assertTrue(gone, f"workers still alive {elapsed:.2f} s after the parent died")
        self.assertLessEqual(elapsed, 2.0)
        self.assertTrue(_port_is_free(port))
        t.join(10)
        self.assertEqual(len(in_flight), 1)

    def test_banner_only_once_a_worker_accepts(self) -> None:
        """§4 r14: with a 2 s startup hook the banner comes after a worker accepts, and a request then succeeds at once."""
        child = self.start(STARTUP_DELAY="2")
        spawned = time.monotonic()
        port = child.port(20)
        self.assertGreaterEqual(time.monotonic() - spawned, 1.5)
        lines = child.lines
        banner_at = next(i for i, line in enumerate(lines) if "serving on" in line)
        accepting_at = next(i for i, line in enumerate(lines) if "accepting connections" in line)
        self.assertLess(accepting_at, banner_at)
        self.assertEqual(get(port, "/", timeout=2)[0], 200)
        self.assertEqual(child.stop(), 0)

    def test_failing_startup_hook_exits_1_after_three_attempts(self) -> None:
        """§4 r14: workers failing in a startup hook: 3 attempts, no banner, exit 1, last line is the worker's error."""
        child = self.start(FAIL_STARTUP="1")
        self.assertEqual(child.wait(30), 1)
        output = child.output
        self.assertEqual(len(re.findall(FAILED_START, output)), 3)
        self.assertNotIn("serving on", output)
        self.assertEqual(child.lines[-1], "cello_twisted: error: startup failed: RuntimeError: database unreachable")
        self.assertTrue(wait_until(lambda: not any(alive(p) for p in _worker_pids(child)), 5))

    def test_import_failure_exits_1_with_the_workers_error(self) -> None:
        """§4 r14: workers failing at import: exit 1 after 3 attempts, last line names the import error."""
        child = self.start(FAIL_IMPORT="1")
        self.assertEqual(child.wait(30), 1)
        self.assertEqual(len(re.findall(FAILED_START, child.output)), 3)
        self.assertEqual(
            child.lines[-1],
            "cello_twisted: error: worker failed to start: "
            "ModuleNotFoundError: No module named 'module_that_does_not_exist'",
        )
        self.assertNotIn("serving on", child.output)

    def test_twistd_cluster_gives_up_too(self) -> None:
        """§4 r14 under twistd: workers failing in a startup hook → exit 1 after 3, the error as the last line."""
        child = spawn(
            self,
            [TWISTD, "-n", "--pidfile=", "cello", "--app", self.app_path, "--listen", "tcp:0:interface=127.0.0.1",
             "--workers", "2"],
            self.dir,
            {"FAIL_STARTUP": "1"},
        )
        self.addCleanup(self._kill_workers, child)
        self.assertEqual(child.wait(30), 1)
        self.assertEqual(len(re.findall(FAILED_START, child.output)), 3)
        self.assertTrue(child.lines[-1].endswith("cello_twisted: error: startup failed: RuntimeError: database unreachable"))
        self.assertNotIn("cluster listening on", child.output)

    def test_after_one_start_restarts_go_on(self) -> None:
        """§4 r14 + SPEC §2.20 r10: once a worker has started, later start failures never make the parent give up."""
        marker = os.path.join(self.dir, "started-once")
        child = self.start(workers=2, MARKER=marker)
        port = child.port()
        self.assertEqual(get(port, "/")[0], 200)
        self.assertTrue(wait_until(lambda: len(_worker_pids(child)) >= 2, 5))
        for pid in _worker_pids(child):  # every replacement now fails in its startup hook
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        start = len(child.lines)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(re.findall(r"exited with status 1", "\n".join(child.lines[start:]))) < 3:
            time.sleep(0.1)
        self.assertGreaterEqual(len(re.findall(r"exited with status 1", "\n".join(child.lines[start:]))), 3)
        self.assertIsNone(child.proc.poll(), "the parent keeps restarting")
        self.assertNotIn("giving up", child.output)
        self.assertEqual(child.stop(), 0)
