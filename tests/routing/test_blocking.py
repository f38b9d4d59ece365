"""The blocking-handler warning (SPEC_OPERATIONS §11 r9): routing/_blocking.py and the endpoint's clock reads."""

from __future__ import annotations

from typing import Any

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App


class BlockingWarningTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict] = []

        def observer(event: dict) -> None:
            if event.get("log_namespace") == "cello_twisted.blocking":
                self.events.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def _fake_time(self, steps: list[float]) -> None:
        """Make the endpoint's clock reads return ``steps`` in turn (a handler 'taking' their gaps)."""
        from cello_twisted.routing import _blocking, _compile

        values = iter(steps)
        self.patch(_compile, "perf_counter", lambda: next(values))
        self.patch(_blocking, "perf_counter", lambda: next(values))

    def test_blocking_handler_logged_once_per_route(self) -> None:
        """§11 r9: a plain handler holding the reactor > 1 s is logged once per route, with path and advice."""
        from twisted.logger import formatEvent

        app = App()
        app.get("/slow/{id}")(lambda request: {"ok": True})
        app.get("/other")(lambda request: {"ok": True})
        client = app.test_client()
        self._fake_time([0.0, 1.5, 10.0, 12.0, 20.0, 22.5])
        client.get("/slow/1")
        client.get("/slow/2")
        client.get("/other")
        self.assertEqual([(e["method"], e["path"]) for e in self.events], [("GET", "/slow/{id}"), ("GET", "/other")])
        self.assertIn("threaded=True", formatEvent(self.events[0]))

    def test_quick_handler_not_logged(self) -> None:
        """§11 r9: up to 1 s is not reported."""
        app = App()
        app.get("/q")(lambda request: {"ok": True})
        self._fake_time([0.0, 1.0])
        app.test_client().get("/q")
        self.assertEqual(self.events, [])

    def test_guarded_handler_watched(self) -> None:
        """§11 r9: a plain handler behind guards is watched as well."""
        app = App()
        app.get("/g", guards=[lambda request: True])(lambda request: "ok")
        self._fake_time([0.0, 3.0])
        app.test_client().get("/g")
        self.assertEqual(len(self.events), 1)

    def test_real_sleep_is_reported(self) -> None:
        """§11 r9: measured with a real clock: a handler sleeping 1.1 s is reported."""
        import time

        app = App()
        app.get("/sleep")(lambda request: time.sleep(1.1) or "ok")
        app.test_client().get("/sleep")
        self.assertEqual(len(self.events), 1)

    def test_async_and_threaded_not_watched(self) -> None:
        """§11 r9: only plain handlers are watched (async ones yield; threaded ones run off the reactor)."""
        app = App()

        async def coro(request: Any) -> Any:
            return "ok"

        app.get("/a")(coro)
        app.get("/t", threaded=True)(lambda request: "ok")
        self._fake_time([])  # any clock read would raise StopIteration
        client = app.test_client()
        self.assertEqual(client.get("/a").status, 200)
        self.assertEqual(client.get("/t").status, 200)
