"""Health checks (SPEC_OPERATIONS §6): /live, /ready, checks, and readiness following the server's life."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

import pytest
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cello_twisted import App, JwtConfig, RateLimitConfig
from cello_twisted.errors import ConfigError
from cello_twisted.stores import RedisRateLimitStore
from tests._support.live import LiveServer
from tests._support.processes import PYTHON, get, spawn, tempdir, wait_until, write_app
from tests.stores import _redis_server


class LiveAndReadyTests(SynchronousTestCase):
    def test_live_answers_ok_with_no_store(self) -> None:
        """r1, r5: GET /health/live → 200 {"status": "ok"} with Cache-Control: no-store; HEAD works."""
        app = App()
        app.enable_health()
        client = app.test_client()
        resp = client.get("/health/live")
        self.assertEqual((resp.status_code, resp.json()), (200, {"status": "ok"}))
        self.assertEqual(resp.headers.get("Cache-Control"), "no-store")
        head = client.head("/health/live")
        self.assertEqual((head.status_code, head.content), (200, b""))
        self.assertEqual(head.headers.get("Cache-Control"), "no-store")

    def test_ready_is_ok_once_started(self) -> None:
        """r2, r5: after start-up /ready → 200 {"status": "ok", "checks": {...}}; HEAD works."""
        app = App()
        app.enable_health(checks={"db": lambda: True, "cache": lambda: None})
        with app.test_client() as client:
            resp = client.get("/health/ready")
            self.assertEqual(resp.status_code, 200)
            self.assertEqual(resp.json(), {"status": "ok", "checks": {"db": "ok", "cache": "ok"}})
            self.assertEqual(resp.headers.get("Cache-Control"), "no-store")
            self.assertEqual(client.head("/health/ready").status_code, 200)

    def test_failing_checks_are_reported_by_name(self) -> None:
        """r2: a raising check, a failed Deferred and a False return → 503 with "failed: <reason>" per name."""
        from twisted.internet.defer import fail

        async def cache() -> bool:
            raise ConnectionError("cache refused the connection")

        app = App()
        app.enable_health(
            checks={
                "db": lambda: True,
                "queue": lambda: False,
                "cache": cache,
                "search": lambda: fail(RuntimeError("index missing")),
            }
        )
        with app.test_client() as client:
            resp = client.get("/health/ready")
        self.assertEqual(resp.status_code, 503)
        self.assertEqual(
            resp.json(),
            {
                "status": "unavailable",
                "checks": {
                    "db": "ok",
                    "queue": "failed: returned False",
                    "cache": "failed: cache refused the connection",
                    "search": "failed: index missing",
                },
            },
        )

    def test_ready_is_503_starting_without_startup(self) -> None:
        """r3: before start-up finished (a test client used without `with` runs none) → 503 starting."""
        app = App()
        app.enable_health(checks={"db": lambda: True})
        resp = app.test_client().get("/health/ready")
        self.assertEqual(resp.status_code, 503)
        self.assertEqual(resp.json(), {"status": "unavailable", "checks": {"server": "starting"}})

    def test_ready_is_503_while_a_startup_hook_or_lifespan_runs(self) -> None:
        """r3: a request arriving while a startup hook or the lifespan runs sees 503 "starting"."""
        seen: dict[str, Any] = {}

        @asynccontextmanager
        async def lifespan(app: App) -> Any:
            seen["lifespan"] = client.get("/health/ready")
            yield

        app = App(lifespan=lifespan)
        app.enable_health()

        @app.on_event("startup")
        def hook() -> None:
            seen["hook"] = client.get("/health/ready")

        client = app.test_client()
        with client:
            after = client.get("/health/ready")
        for when in ("hook", "lifespan"):
            self.assertEqual(seen[when].status_code, 503)
            self.assertEqual(seen[when].json()["checks"], {"server": "starting"})
        self.assertEqual(after.status_code, 200)

    def test_ready_is_503_draining_once_a_stop_begins(self) -> None:
        """r3: from the moment a graceful stop begins, /ready → 503 "draining"; /live stays 200."""
        app = App()
        app.enable_health()
        with app.test_client() as client:
            app.lifecycle.begin_stop()
            resp = client.get("/health/ready")
            self.assertEqual(resp.status_code, 503)
            self.assertEqual(resp.json(), {"status": "unavailable", "checks": {"server": "draining"}})
            self.assertEqual(client.get("/health/live").status_code, 200)

    def test_feature_paths_skip_jwt_rate_limits_and_take_guards(self) -> None:
        """Principles: health paths are outside JWT and rate limits; guards= applies to them."""
        app = App()
        app.enable_jwt(JwtConfig(secret="k" * 40), required=True)
        app.enable_rate_limit(RateLimitConfig(requests=1, window=60))
        app.enable_health(guards=[lambda request: request.client_ip == "127.0.0.1"])
        with app.test_client() as client:
            for _ in range(3):
                self.assertEqual(client.get("/health/live").status_code, 200)
                self.assertIsNone(client.get("/health/live").headers.get("X-RateLimit-Limit"))
        outsider = app.test_client(client_ip="10.0.0.9")
        self.assertEqual(outsider.get("/health/live").status_code, 403)

    def test_custom_path_and_bad_configuration(self) -> None:
        """The path is configurable; bad settings are ConfigErrors naming the field."""
        app = App()
        app.enable_health("/_status")
        self.assertEqual(app.test_client().get("/_status/live").status_code, 200)
        for kwargs in ({"path": "health"}, {"timeout": 0}, {"drain_delay": -1}, {"checks": {"x": 3}}):
            with self.assertRaises(ConfigError) as caught:
                App().enable_health(**kwargs)  # type: ignore[arg-type]
            self.assertIn("Health.", str(caught.exception))


@pytest.mark.live
class CheckTimingTests(TestCase):
    """Checks over a real socket with the reactor's clock."""

    def setUp(self) -> None:
        from twisted.web.client import HTTPConnectionPool

        self.pool = HTTPConnectionPool(reactor, persistent=False)

    @inlineCallbacks
    def test_checks_run_concurrently_and_time_out_by_name(self) -> Any:
        """r2: checks run concurrently, each bounded by timeout; a hung one is "timed out"."""
        never: Deferred[None] = Deferred()
        self.addCleanup(lambda: never.called or never.cancel())

        def slow() -> Deferred[bool]:
            return deferLater(reactor, 0.3, lambda: True)

        app = App()
        app.enable_health(checks={"a": slow, "b": slow, "c": slow, "hung": lambda: never}, timeout=0.5)
        yield app.lifecycle.begin(app)
        server = LiveServer(self, app)
        started = time.monotonic()
        resp = yield treq.get(server.url("/health/ready"), pool=self.pool)
        body = json.loads((yield treq.content(resp)))
        elapsed = time.monotonic() - started
        self.assertEqual(resp.code, 503)
        self.assertEqual(body["checks"], {"a": "ok", "b": "ok", "c": "ok", "hung": "timed out"})
        self.assertLess(elapsed, 1.3)  # concurrent: ~0.5 s; one after another would take 0.9 + 0.5 s

    @inlineCallbacks
    def test_redis_store_health_check(self) -> Any:
        """r4: a Redis store's health_check is a check: ok with Redis up, "failed: ..." when it hangs."""
        redis = _redis_server.start(self)
        store = RedisRateLimitStore(url=redis.url, timeout=0.3)
        self.addCleanup(store.close)
        app = App()
        app.enable_health(checks={"redis": store.health_check}, timeout=2.0)
        yield app.lifecycle.begin(app)
        server = LiveServer(self, app)
        resp = yield treq.get(server.url("/health/ready"), pool=self.pool)
        self.assertEqual((resp.code, json.loads((yield treq.content(resp)))["checks"]), (200, {"redis": "ok"}))
        redis.pause()
        self.addCleanup(redis.resume)
        resp = yield treq.get(server.url("/health/ready"), pool=self.pool)
        checks = json.loads((yield treq.content(resp)))["checks"]
        self.assertEqual(resp.code, 503)
        self.assertTrue(checks["redis"].startswith("failed: "), checks)
        self.assertIn("RedisRateLimitStore", checks["redis"])


DRAIN_APP = '''
import os
from twisted.internet import reactor, task
from cello_twisted import App

app = App()
app.enable_health(drain_delay=float(os.environ.get("DRAIN_DELAY", "1.5")))


@app.get("/slow")
def slow(request):
    print("slow request started", flush=True)
    return task.deferLater(reactor, float(request.query.get("s", "1")), lambda: {"slow": True, "pid": os.getpid()})


@app.get("/")
def index(request):
    return {"pid": os.getpid()}


@app.on_event("startup")
async def startup():
    await task.deferLater(reactor, float(os.environ.get("STARTUP_DELAY", "0")), lambda: None)
    print("startup hook done", flush=True)


if __name__ == "__main__":
    app.run(**eval(os.environ.get("RUN_KWARGS", "{}")))
'''


@pytest.mark.live
class ServerLifeTests(SynchronousTestCase):
    """Readiness in a real process: never 200 before start-up, 503 from SIGTERM while a request drains."""

    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir, source=DRAIN_APP)

    def _ready(self, port: int) -> tuple[int, Any]:
        status, body = get(port, "/health/ready")
        return status, json.loads(body)

    def test_never_ready_before_a_slow_startup_hook_finishes(self) -> None:
        """r3: while a 1 s startup hook runs, /ready is refused (not listening yet), never 200."""
        from tests._support.processes import free_port

        port = free_port()
        child = spawn(self, [PYTHON, self.app_path, "--port", str(port), "--no-logs"], self.dir, {"STARTUP_DELAY": "1"})
        answers: list[int] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                answers.append(self._ready(port)[0])
                break
            except OSError:
                answers.append(0)  # refused: nothing listens during start-up
                time.sleep(0.05)
        self.assertIn("startup hook done", child.output)  # the first answer came after the hook
        self.assertEqual(answers[-1], 200)
        self.assertGreater(answers.count(0), 3)
        self.assertEqual(child.stop(), 0)

    def _drains(self, args: list[str], env: dict[str, str]) -> None:
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs", *args], self.dir, env)
        port = child.port()
        self.assertTrue(wait_until(lambda: self._ready(port)[0] == 200, 15))
        slow: list[Any] = []
        thread = threading.Thread(target=lambda: slow.append(get(port, "/slow?s=2.5", timeout=15)))
        thread.start()
        self.addCleanup(thread.join, 20)
        child.wait_for("slow request started", 10)  # in flight now (it takes 2.5 s)
        child.send(signal.SIGTERM)
        self.assertTrue(wait_until(lambda: self._ready(port)[0] == 503, 5))
        status, body = self._ready(port)
        self.assertEqual((status, body), (503, {"status": "unavailable", "checks": {"server": "draining"}}))
        self.assertEqual(get(port, "/")[0], 200)  # still serving during drain_delay
        thread.join(20)
        self.assertEqual(slow[0][0], 200)  # the in-flight request finished
        self.assertEqual(child.wait(20), 0)

    def test_sigterm_makes_ready_503_while_a_slow_request_drains(self) -> None:
        """r3: from SIGTERM /ready is 503 draining, the server keeps serving drain_delay s, the slow request ends 200, exit 0."""
        self._drains([], {"DRAIN_DELAY": "1.5"})

    def test_cluster_workers_drain_too(self) -> None:
        """r3 in cluster mode: SIGTERM to the parent → workers answer 503 draining, finish, exit 0."""
        self._drains(["--workers", "2"], {"DRAIN_DELAY": "1.5"})

    def test_after_the_delay_partial_requests_close_at_once_and_in_flight_ones_finish(self) -> None:
        """r3 with §4 r10: a connection holding half a request line is kept through drain_delay, then closed
        at once when accepting stops, while the in-flight request still completes; exit 0 right after it."""
        import socket

        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs"], self.dir, {"DRAIN_DELAY": "1"})
        port = child.port()
        slow: list[Any] = []
        thread = threading.Thread(target=lambda: slow.append(get(port, "/slow?s=4", timeout=15)))
        thread.start()
        self.addCleanup(thread.join, 20)
        child.wait_for("slow request started", 10)
        sigterm_at = time.monotonic()
        child.send(signal.SIGTERM)
        self.assertTrue(wait_until(lambda: self._ready(port)[0] == 503, 5))
        partial = socket.create_connection(("127.0.0.1", port), timeout=10)  # accepted during the delay
        self.addCleanup(partial.close)
        partial.sendall(b"GET /never-fin")
        while partial.recv(4096):  # EOF once the delay is over (not after graceful_timeout)
            pass
        closed_after = time.monotonic() - sigterm_at
        self.assertGreaterEqual(closed_after, 0.9)  # kept while the server was still accepting
        self.assertLess(closed_after, 3.5)
        self.assertEqual(slow, [])  # the in-flight request was still running
        thread.join(20)
        self.assertEqual(slow[0][0], 200)
        finished_at = time.monotonic()
        self.assertEqual(child.wait(20), 0)
        self.assertLess(time.monotonic() - finished_at, 2)


del os
