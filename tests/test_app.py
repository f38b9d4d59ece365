"""Handlers: sync, async, Deferred, threaded, cancellation, lifecycle, state (SPEC §2.5)."""

from __future__ import annotations

import threading

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App
from cello_twisted.errors import ResponseNotReady


class HandlerTests(SynchronousTestCase):
    def test_sync_async_deferred(self) -> None:
        """§2.5 r1-r2: plain, async def (awaiting Deferreds/coroutines) and Deferred-returning handlers."""
        clock = Clock()
        app = App(clock=clock)

        @app.get("/sync")
        def sync(request):
            return {"kind": "sync", "thread": threading.current_thread() is threading.main_thread()}

        async def helper():
            return "coro"

        @app.get("/async")
        async def async_handler(request):
            first = await succeed("deferred")
            second = await helper()
            return {"kind": [first, second]}

        @app.get("/deferred")
        def deferred(request):
            return succeed(["d"])

        client = app.test_client()
        self.assertEqual(client.get("/sync").json(), {"kind": "sync", "thread": True})
        self.assertEqual(client.get("/async").json(), {"kind": ["deferred", "coro"]})
        self.assertEqual(client.get("/deferred").json(), ["d"])

    def test_threaded_runs_inline_under_test_client(self) -> None:
        """§2.5 r1, r4, §2.23 r5: threaded handlers use run_blocking, inline under the test client."""
        app = App()
        app.get("/t", threaded=True)(lambda request: {"ok": True})
        self.assertEqual(app.test_client().get("/t").json(), {"ok": True})

    def test_run_blocking_inline_without_reactor(self) -> None:
        """§2.5 r4: run_blocking returns a Deferred, inline when the reactor isn't running."""
        app = App()
        d = app.run_blocking(lambda a, b=0: a + b, 1, b=2)
        self.assertIsInstance(d, Deferred)
        self.assertEqual(self.successResultOf(d), 3)

    def test_pending_response_and_clock(self) -> None:
        """§2.23 r2: a pending response raises ResponseNotReady; time-based code uses app.clock."""
        clock = Clock()
        app = App(clock=clock)

        @app.get("/slow")
        async def slow(request):
            await deferLater(app.clock, 5, lambda: None)
            return "done"

        client = app.test_client()
        with self.assertRaises(ResponseNotReady):
            client.get("/slow")

    def test_disconnect_cancels_handler(self) -> None:
        """§2.5 r3: client disconnect cancels the pending Deferred; the coroutine sees CancelledError."""
        app = App()
        seen: list[str] = []
        gate: Deferred = Deferred()

        @app.get("/wait")
        async def wait(request):
            try:
                await gate
            except CancelledError:
                seen.append("cancelled")
                raise
            return "never"

        from twisted.internet.testing import StringTransport

        site = app.site(reactor=Clock())
        proto = site.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        proto.connectionLost(Exception("gone"))
        self.assertEqual(seen, ["cancelled"])
        self.assertEqual(transport.value(), b"", "nothing is written after a disconnect")

    def test_lifecycle_hooks(self) -> None:
        """§2.5 r5: on_event startup/shutdown, sync or async, run in order; other names → ValueError."""
        app = App()
        log: list[str] = []

        @app.on_event("startup")
        def first():
            log.append("s1")

        @app.on_event("startup")
        async def second():
            log.append("s2")

        @app.on_event("shutdown")
        def down():
            log.append("down")

        self.successResultOf(app.run_hooks("startup"))
        self.successResultOf(app.run_hooks("shutdown"))
        self.assertEqual(log, ["s1", "s2", "down"])
        with self.assertRaises(ValueError):
            app.on_event("boot")

    def test_failing_hook_fails_deferred(self) -> None:
        """§2.5 r5: a failing startup hook fails the start-up Deferred (the runner exits 1)."""
        app = App()
        app.on_event("startup")(lambda: 1 / 0)
        self.failureResultOf(app.run_hooks("startup"), ZeroDivisionError)

    def test_state(self) -> None:
        """§2.5 r6: app.state is a free namespace, reachable as request.app.state."""
        app = App()
        app.state.counter = 41

        @app.get("/")
        def handler(request):
            request.app.state.counter += 1
            return {"n": request.app.state.counter}

        self.assertEqual(app.test_client().get("/").json(), {"n": 42})
