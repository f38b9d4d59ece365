"""app.run() in real processes: banner, signals, exit codes, hooks, logging, graceful stop (SPEC §2.20)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import PYTHON, get, spawn, tempdir, write_app

pytestmark = pytest.mark.live  # starts processes or opens real sockets


class RunProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir)
        self.hooks = os.path.join(self.dir, "hooks.log")

    def start(self, *flags: str, **env: str):
        return spawn(self, [PYTHON, self.app_path, *flags], self.dir, {"HOOK_LOG": self.hooks, **env})

    def hook_lines(self) -> list[str]:
        with open(self.hooks) as f:
            return [line.split()[0] for line in f.read().splitlines()]

    def test_serves_banner_and_sigterm_exits_zero(self) -> None:
        """§2.20 r4, r5: the banner shows the URL with the bound port, env and workers; SIGTERM → 0."""
        child = self.start("--port", "0", "--host", "127.0.0.1")
        port = child.port()
        self.assertRegex(child.output, rf"http://127\.0\.0\.1:{port} \(env: development, debug: on, workers: 1")
        status, body = get(port, "/")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["env"], "development")
        self.assertEqual(child.stop(signal.SIGTERM), 0)
        self.assertEqual(self.hook_lines(), ["startup", "shutdown"])

    def test_sigint_exits_zero(self) -> None:
        """§2.20 r5: SIGINT is a clean stop with exit status 0."""
        child = self.start("--port=0")
        get(child.port(), "/")
        self.assertEqual(child.stop(signal.SIGINT), 0)

    def test_port_in_use_exits_one_with_one_line(self) -> None:
        """§2.20 r5: a port in use is a start-up failure: exit 1, one stderr line."""
        first = self.start("--port", "0")
        port = first.port()
        second_log = os.path.join(self.dir, "second.log")
        second = self.start("--port", str(port), HOOK_LOG=second_log)
        self.assertEqual(second.wait(), 1)
        errors = [line for line in second.output.splitlines() if "error" in line]
        self.assertEqual(len(errors), 1, second.output)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: address already in use", errors[0])
        with open(second_log) as f:  # startup hooks ran, so their cleanup runs too
            self.assertEqual([line.split()[0] for line in f], ["startup", "shutdown"])

    def test_short_secret_in_production_exits_one(self) -> None:
        """§1 r8: production refuses to start with a short secret (exit 1, names the config)."""
        child = self.start("--port", "0", "--env", "production", SHORT_SECRET="1")
        self.assertEqual(child.wait(), 1)
        self.assertIn("refusing to start in production: SessionConfig.secret", child.output)
        self.assertNotIn("serving on", child.output)

    def test_short_secret_in_development_serves(self) -> None:
        """§1 r8: the same app still runs in development."""
        child = self.start("--port", "0", SHORT_SECRET="1")
        self.assertEqual(get(child.port(), "/")[0], 200)
        self.assertEqual(child.stop(), 0)

    def test_bad_flag_exits_one(self) -> None:
        """§2.20 r5: a bad flag value is a one-line start-up failure."""
        child = self.start("--port", "eighty")
        self.assertEqual(child.wait(), 1)
        self.assertEqual(child.output.strip().splitlines(), ["cello_twisted: error: --port needs an integer, got 'eighty'"])

    def test_failing_startup_hook_exits_one(self) -> None:
        """§2.5 r5: a failing startup hook aborts start-up with exit 1; nothing listens."""
        child = self.start("--port", "0", FAIL_STARTUP="1")
        self.assertEqual(child.wait(), 1)
        self.assertIn("startup failed: RuntimeError: database unreachable", child.output)
        self.assertNotIn("serving on", child.output)

    def test_flag_beats_run_argument(self) -> None:
        """§2.20 r1, r2: --env production overrides run(env=...); debug/logs follow env; unknown argv ignored."""
        child = self.start("--env", "production", "--whatever", "x", "--port", "0",
                           RUN_KWARGS="{'env': 'development', 'workers': 1}")
        port = child.port()
        self.assertIn("env: production, debug: off, workers: 1", child.output)
        body = json.loads(get(port, "/")[1])
        self.assertEqual((body["env"], body["debug"]), ("production", False))
        self.assertEqual(child.stop(), 0)
        self.assertNotIn("GET / \u2192 200", child.output)

    def test_logs_in_debug_and_no_logs_flag(self) -> None:
        """§2.9 r3: debug runs add the access log; --no-logs turns it off."""
        child = self.start("--port", "0")
        port = child.port()
        get(port, "/")
        child.wait_for(r"GET / \u2192 200 \(\d+\.\d{3}ms\) 127\.0\.0\.1$")
        self.assertEqual(child.stop(), 0)
        quiet = self.start("--port", "0", "--no-logs")
        get(quiet.port(), "/")
        self.assertEqual(quiet.stop(), 0)
        self.assertNotIn("GET / \u2192", quiet.output)

    def test_graceful_stop_finishes_in_flight_request(self) -> None:
        """§2.20 r8: SIGTERM lets an in-flight request finish, refuses new ones, then shutdown hooks, exit 0."""
        child = self.start("--port", "0")
        port = child.port()
        result: list = []
        t = threading.Thread(target=lambda: result.append(get(port, "/slow?s=1", timeout=10)))
        t.start()
        child.wait_for("slow request started", 10)  # its headers are complete: the stop must wait for it
        child.send(signal.SIGTERM)
        t.join(10)
        self.assertEqual(result and result[0][0], 200)
        self.assertEqual(child.wait(), 0)
        self.assertEqual(self.hook_lines(), ["startup", "shutdown"])

    def test_graceful_stop_ends_sse_streams(self) -> None:
        """§2.20 r8: a graceful stop ends open SSE streams instead of waiting graceful_timeout (30 s)."""
        import http.client

        child = self.start("--port", "0")
        conn = http.client.HTTPConnection("127.0.0.1", child.port(), timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/events")
        response = conn.getresponse()
        self.assertEqual(response.getheader("content-type"), "text/event-stream")
        self.assertEqual(response.readline(), b"data: hello\n")
        started = time.monotonic()
        child.send(signal.SIGTERM)
        rest = response.read()  # returns at the end of the stream, not after 60 s
        self.assertNotIn(b"never", rest)
        self.assertEqual(child.wait(), 0)
        self.assertLess(time.monotonic() - started, 8)

    def test_graceful_timeout_bounds_the_wait(self) -> None:
        """§2.20 r8: a request longer than graceful_timeout is cut off; the process still exits 0."""
        child = self.start("--port", "0", RUN_KWARGS="{'graceful_timeout': 0.5}")
        port = child.port()
        errors: list = []

        def call() -> None:
            try:
                get(port, "/slow?s=30", timeout=20)
            except Exception as e:
                errors.append(e)

        t = threading.Thread(target=call)
        t.start()
        child.wait_for("slow request started", 10)  # its headers are complete: the stop must wait for it
        child.send(signal.SIGTERM)
        self.assertEqual(child.wait(timeout=10), 0)
        t.join(10)
        self.assertEqual(len(errors), 1)


THREAD_SCRIPT = '''
import signal, threading, time
from twisted.internet import reactor
from cello_twisted import App
app = App()
t = threading.Thread(target=app.run, kwargs={"port": 0, "logs": False})
t.start()
for _ in range(200):
    if reactor.running:
        break
    time.sleep(0.05)
handlers_untouched = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
reactor.callFromThread(reactor.stop)
t.join(10)
print("thread done", not t.is_alive(), handlers_untouched)
'''

RUNNING_SCRIPT = '''
from twisted.internet import reactor
from cello_twisted import App
app = App()
def inside():
    try:
        app.run(port=0)
    except RuntimeError as e:
        print("RuntimeError:", e)
    reactor.stop()
reactor.callWhenRunning(inside)
reactor.run()
'''


class RunEdgeTests(SynchronousTestCase):
    def run_script(self, source: str):
        d = tempdir(self)
        path = write_app(d, "script.py", source)
        child = spawn(self, [PYTHON, path], d)
        self.assertEqual(child.wait(20), 0, child.output)
        return child.output

    def test_non_main_thread(self) -> None:
        """§2.20 r6: run() in a non-main thread serves without installing signal handlers."""
        output = self.run_script(THREAD_SCRIPT)
        self.assertIn("serving on http://127.0.0.1:", output)
        self.assertIn("thread done True True", output)

    def test_reactor_already_running(self) -> None:
        """§2.20 r6: run() while the reactor runs → RuntimeError pointing at app.listen()."""
        output = self.run_script(RUNNING_SCRIPT)
        self.assertIn("RuntimeError: the reactor is already running: use app.listen()", output)
