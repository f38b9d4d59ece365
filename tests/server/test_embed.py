"""app.listen() inside a reactor the test runs (SPEC §2.22 r3)."""

from __future__ import annotations

import pytest
import treq
from twisted.internet import defer, reactor
from twisted.internet.error import CannotListenError
from twisted.trial.unittest import TestCase

from cello_twisted import App


def make_app(events: list[str]) -> App:
    app = App()

    @app.get("/users/{id:int}")
    def user(request):
        return {"id": request.params["id"]}

    @app.on_event("startup")
    async def startup():
        events.append("startup")

    return app


class ListenTests(TestCase):
    timeout = 10

    @pytest.mark.live
    @defer.inlineCallbacks
    def test_listen_serves_and_runs_startup_once(self):
        """§2.22 r3: startup hooks run once (first call), then the port serves real requests."""
        events: list[str] = []
        app = make_app(events)
        port = yield app.listen("tcp:0:interface=127.0.0.1")
        self.addCleanup(port.stopListening)
        second = yield app.listen("tcp:0:interface=127.0.0.1", reactor)
        self.addCleanup(second.stopListening)
        self.assertEqual(events, ["startup"])
        for p in (port, second):
            response = yield treq.get(f"http://127.0.0.1:{p.getHost().port}/users/7", persistent=False)
            self.assertEqual(response.code, 200)
            self.assertEqual((yield response.json()), {"id": "7"})

    @pytest.mark.live
    @defer.inlineCallbacks
    def test_listen_error_fails_the_deferred(self):
        """§2.22 r3: a listen error fails the Deferred (address in use)."""
        app = make_app([])
        port = yield app.listen("tcp:0:interface=127.0.0.1")
        self.addCleanup(port.stopListening)
        with self.assertRaises(CannotListenError):
            yield app.listen(f"tcp:{port.getHost().port}:interface=127.0.0.1")

    @defer.inlineCallbacks
    def test_failed_startup_hook_fails_every_listen(self):
        """§2.5 r5, §2.22 r3: a failing startup hook fails listen() and nothing listens."""
        app = App()

        @app.on_event("startup")
        def boom():
            raise RuntimeError("no database")

        for _ in range(2):
            with self.assertRaises(RuntimeError):
                yield app.listen("tcp:0:interface=127.0.0.1")

    def test_shutdown_hooks_registered_once(self):
        """§2.22 r3: shutdown hooks become one 'before shutdown' trigger, however often listen() is called."""
        from twisted.internet.task import Clock

        class FakeReactor(Clock):
            def __init__(self):
                super().__init__()
                self.triggers = []

            def addSystemEventTrigger(self, phase, event, fn, *args):
                self.triggers.append((phase, event, fn, args))

        class Endpoint:
            def listen(self, factory):
                return defer.succeed("port")

        fake = FakeReactor()
        app = App()
        ran: list[str] = []
        app.on_event("shutdown")(lambda: ran.append("shutdown"))
        results = []
        app.listen(Endpoint(), fake).addCallback(results.append)
        app.listen(Endpoint(), fake).addCallback(results.append)
        self.assertEqual(results, ["port", "port"])
        self.assertEqual([(p, e) for p, e, _, _ in fake.triggers], [("before", "shutdown")])
        phase, event, fn, args = fake.triggers[0]
        fn(*args)
        self.assertEqual(ran, ["shutdown"])

    def test_listen_enters_and_exits_the_lifespan(self):
        """SPEC_OPERATIONS §8 r1, §6 r3: listen() enters the lifespan after startup hooks (readiness turns
        serving); the shutdown trigger exits it before the shutdown hooks."""
        from contextlib import asynccontextmanager

        from twisted.internet.task import Clock

        class FakeReactor(Clock):
            def __init__(self):
                super().__init__()
                self.triggers = []

            def addSystemEventTrigger(self, phase, event, fn, *args):
                self.triggers.append((fn, args))

        class Endpoint:
            def listen(self, factory):
                return defer.succeed("port")

        order: list[str] = []

        @asynccontextmanager
        async def lifespan(app):
            order.append("enter")
            yield {"ready": True}
            order.append("exit")

        app = App(lifespan=lifespan)
        app.enable_health()
        app.on_event("startup")(lambda: order.append("startup"))
        app.on_event("shutdown")(lambda: order.append("shutdown"))
        fake = FakeReactor()
        self.assertEqual(self.successResultOf(app.listen(Endpoint(), fake)), "port")
        self.assertEqual((order, app.state.ready, app.lifecycle.state), (["startup", "enter"], True, "serving"))
        fn, args = fake.triggers[0]
        fn(*args)
        self.assertEqual(order, ["startup", "enter", "exit", "shutdown"])
