"""Request logging (SPEC §2.9)."""

from __future__ import annotations

import re

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App
from cello_twisted.middleware import RequestLogging


class LoggingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict] = []

        def observer(event):
            if event.get("log_namespace") == "cello_twisted.access":
                self.events.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def test_one_event_per_request(self) -> None:
        """§2.9 r1: one info event per request with method, path (no query), status, duration_ms, client_ip.

        The text has no timestamp of its own (the observer adds the time once) and ends
        with the client address; the duration has sub-millisecond precision.
        """
        from twisted.logger import formatEvent

        app = App()
        app.enable_logging(colors=False)
        app.get("/items/{id}")(lambda r: "ok")
        app.test_client().get("/items/3?secret=1")
        self.assertEqual(len(self.events), 1)
        event = self.events[0]
        self.assertEqual((event["method"], event["path"], event["status"], event["client_ip"]), ("GET", "/items/3", 200, "127.0.0.1"))
        self.assertIsInstance(event["duration_ms"], float)
        self.assertRegex(formatEvent(event), r"^GET /items/3 \u2192 200 \(\d+\.\d{3}ms\) 127\.0\.0\.1$")

    def test_excluded_paths(self) -> None:
        """§2.9 r2: excluded paths (prefix rule) are not logged."""
        app = App()
        app.enable_logging()
        app.get("/health")(lambda r: "ok")
        app.get("/health/deep")(lambda r: "ok")
        app.get("/healthz")(lambda r: "ok")
        client = app.test_client()
        for path in ("/health", "/health/deep", "/healthz"):
            client.get(path)
        self.assertEqual([e["path"] for e in self.events], ["/healthz"])

    def test_colors(self) -> None:
        """§2.9 r2: colours by status class when enabled (2xx green, 4xx yellow, 5xx red)."""
        from twisted.logger import formatEvent

        app = App()
        app.enable_logging(colors=True)
        app.get("/ok")(lambda r: "ok")
        client = app.test_client()
        client.get("/ok")
        client.get("/missing")
        texts = [formatEvent(e) for e in self.events]
        self.assertIn("\033[32m200\033[0m", texts[0])
        self.assertIn("\033[33m404\033[0m", texts[1])
        self.assertTrue(re.search(r"\(\d+\.\d{3}ms\) 127\.0\.0\.1$", texts[1]))

    def test_no_colors_when_not_tty(self) -> None:
        """§2.9 r2: colors=None → no ANSI codes unless debug on a TTY (tests are not a TTY)."""
        from twisted.logger import formatEvent

        app = App()
        app.debug = True
        app.use(RequestLogging())
        app.get("/")(lambda r: "ok")
        app.test_client().get("/")
        self.assertNotIn("\033[", formatEvent(self.events[0]))
