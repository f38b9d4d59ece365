"""Lifespan (SPEC_OPERATIONS §8): entered after startup hooks, exited before shutdown hooks, everywhere."""

from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import asynccontextmanager
from typing import Any

import pytest
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App
from cello_twisted.errors import ConfigError
from tests._support.processes import PYTHON, TWISTD, get, spawn, tempdir, write_app


def _recording_app(order: list[str]) -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> Any:
        order.append("enter")
        yield {"pool": "db-pool", "answer": 42}
        order.append("exit")

    app = App(lifespan=lifespan)

    @app.on_event("startup")
    def startup() -> None:
        order.append("startup")

    @app.on_event("shutdown")
    def shutdown() -> None:
        order.append("shutdown")

    @app.get("/state")
    def state(request: Any) -> dict[str, Any]:
        order.append("request")
        return {"pool": request.app.state.pool, "answer": request.app.state.answer}

    return app


class TestClientLifespanTests(SynchronousTestCase):
    def test_with_runs_hooks_and_lifespan_in_order(self) -> None:
        """r1, r2, r4: `with app.test_client()` runs startup, lifespan enter, then at the end exit, shutdown;
        the yielded mapping's items are on app.state for handlers."""
        order: list[str] = []
        app = _recording_app(order)
        with app.test_client() as client:
            self.assertEqual(client.get("/state").json(), {"pool": "db-pool", "answer": 42})
        self.assertEqual(order, ["startup", "enter", "request", "exit", "shutdown"])

    def test_without_with_runs_neither(self) -> None:
        """r4: a test client used without `with` runs no hooks and no lifespan."""
        order: list[str] = []
        app = _recording_app(order)
        app.test_client().get("/missing")
        self.assertEqual(order, [])

    def test_exit_failure_still_runs_shutdown_hooks(self) -> None:
        """r3: an exception while exiting is logged; shutdown hooks still run."""
        order: list[str] = []

        @asynccontextmanager
        async def lifespan(app: App) -> Any:
            yield
            raise RuntimeError("pool close failed")

        app = App(lifespan=lifespan)
        app.on_event("shutdown")(lambda: order.append("shutdown"))
        with app.test_client():
            pass
        self.assertEqual(order, ["shutdown"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_enter_failure_fails_startup(self) -> None:
        """r3: an exception while entering fails the start (the client's `with` raises it)."""

        @asynccontextmanager
        async def lifespan(app: App) -> Any:
            raise ConnectionError("database unreachable")
            yield

        app = App(lifespan=lifespan)
        with self.assertRaises(ConnectionError):
            with app.test_client():
                pass

    def test_bad_lifespan_values(self) -> None:
        """A non-callable lifespan is a ConfigError; a non-mapping yield or a plain object fails the start."""
        with self.assertRaises(ConfigError):
            App(lifespan=42)  # type: ignore[arg-type]

        @asynccontextmanager
        async def yields_list(app: App) -> Any:
            yield [1, 2]

        with self.assertRaises(TypeError):
            with App(lifespan=yields_list).test_client():
                pass
        with self.assertRaises(TypeError):
            with App(lifespan=lambda app: object()).test_client():
                pass


LIFESPAN_APP = '''
import os
from contextlib import asynccontextmanager
from twisted.internet import reactor, task
from cello_twisted import App

LOG = os.environ["ORDER_LOG"]


def note(line):
    with open(LOG, "a") as f:
        f.write(f"{line} {os.getpid()}\\n")


@asynccontextmanager
async def lifespan(app):
    if os.environ.get("FAIL_ENTER"):
        raise ConnectionError("database unreachable")
    note("enter")
    yield {"started_by": os.getpid()}
    note("exit")
    if os.environ.get("FAIL_EXIT"):
        raise RuntimeError("pool close failed")


app = App(lifespan=lifespan)


@app.on_event("startup")
def startup():
    note("startup")


@app.on_event("shutdown")
def shutdown():
    note("shutdown")


@app.get("/state")
def state(request):
    return {"started_by": request.app.state.started_by, "pid": os.getpid()}


@app.get("/slow")
def slow(request):
    print("slow request started", flush=True)

    def done():
        note("request-done")
        return {"ok": True}

    return task.deferLater(reactor, 1.0, done)


if __name__ == "__main__":
    app.run(**eval(os.environ.get("RUN_KWARGS", "{}")))
'''


@pytest.mark.live
class ServerLifespanTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, source=LIFESPAN_APP)
        self.log = os.path.join(self.dir, "order.log")

    def order(self) -> list[str]:
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [line.split()[0] for line in f]

    def test_order_around_an_in_flight_request(self) -> None:
        """r1: startup → enter → serve; on SIGTERM the in-flight request ends, then exit, then shutdown; exit 0."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs"], self.dir, {"ORDER_LOG": self.log})
        port = child.port()
        body = json.loads(get(port, "/state")[1])
        self.assertEqual(body["started_by"], body["pid"])  # r2: state set from the yielded mapping
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(get(port, "/slow", timeout=10)))
        thread.start()
        self.assertEqual(self.order(), ["startup", "enter"])
        child.wait_for("slow request started", 10)  # in flight now (it takes 1 s)
        child.send(signal.SIGTERM)
        thread.join(10)
        self.assertEqual(result[0][0], 200)
        self.assertEqual(child.wait(15), 0)
        self.assertEqual(self.order(), ["startup", "enter", "request-done", "exit", "shutdown"])

    def test_enter_failure_exits_one_with_one_line(self) -> None:
        """r3: an exception entering the lifespan → exit 1, one stderr line naming it, no traceback."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs"], self.dir,
                      {"ORDER_LOG": self.log, "FAIL_ENTER": "1"})  # fmt: skip
        self.assertEqual(child.wait(15), 1)
        errors = [line for line in child.lines if line.startswith("cello_twisted: error:")]
        self.assertEqual(errors, ["cello_twisted: error: startup failed: ConnectionError: database unreachable"])
        self.assertNotIn("Traceback", child.output)
        self.assertEqual(self.order(), ["startup"])

    def test_exit_failure_is_logged_and_stop_continues(self) -> None:
        """r3: an exception exiting is logged, shutdown hooks still run, exit status 0."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs"], self.dir,
                      {"ORDER_LOG": self.log, "FAIL_EXIT": "1"})  # fmt: skip
        child.port()
        self.assertEqual(child.stop(), 0)
        self.assertIn("lifespan exit failed", child.output)
        self.assertIn("pool close failed", child.output)
        self.assertEqual(self.order(), ["startup", "enter", "exit", "shutdown"])

    def test_once_per_cluster_worker(self) -> None:
        """r1: in cluster mode every worker enters and exits its own lifespan."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs", "--workers", "2"], self.dir,
                      {"ORDER_LOG": self.log})  # fmt: skip
        child.port()
        child.wait_for(r"worker 0 serving", 15)
        child.wait_for(r"worker 1 serving", 15)
        self.assertEqual(child.stop(), 0)
        with open(self.log) as f:
            lines = [line.split() for line in f]
        pids = {pid for _, pid in lines}
        self.assertEqual(len(pids), 2)
        for pid in pids:
            self.assertEqual([e for e, p in lines if p == pid], ["startup", "enter", "exit", "shutdown"])

    def test_with_the_twistd_service(self) -> None:
        """r1: under twistd the lifespan is entered with the service start and exited with its stop."""
        from tests._support.processes import free_port

        port = free_port()
        child = spawn(self, [TWISTD, "-n", "--pidfile=", "cello", "--app", self.app_path, "--listen",
                             f"tcp:{port}:interface=127.0.0.1"], self.dir, {"ORDER_LOG": self.log})  # fmt: skip
        child.wait_for(r"cello_twisted serving on", 15)
        body = json.loads(get(port, "/state")[1])
        self.assertEqual(body["started_by"], body["pid"])
        child.send(signal.SIGTERM)
        child.wait(15)
        self.assertEqual(self.order(), ["startup", "enter", "exit", "shutdown"])
