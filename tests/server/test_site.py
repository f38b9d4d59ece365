"""Embedding the app resource and the Site's handling of bad input (SPEC §2.22, §2.17 r3)."""

from __future__ import annotations

import json

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from cello_twisted import App


def _exchange(site, raw: bytes) -> bytes:
    """One connection: send ``raw``, collect the reply, close (no timers left behind)."""
    site.reactor = Clock()  # the channel's idle timeout must not touch the global reactor
    proto = site.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(raw)
    out = transport.value()
    proto.connectionLost(ConnectionDone())
    return out


def _body(raw: bytes) -> dict:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


class EmbeddingTests(SynchronousTestCase):
    def test_mounted_resource(self) -> None:
        """§2.22 r1: app.resource() mounted below a prefix: inner path and root_path."""
        app = App()
        app.get("/hello/{name}")(lambda r: {"path": r.path, "root": r.root_path, "name": r.params["name"]})
        root = Resource()
        api = Resource()
        root.putChild(b"api", api)
        api.putChild(b"v1", app.resource())
        out = _exchange(Site(root), b"GET /api/v1/hello/ann HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200 OK", out)
        self.assertEqual(_body(out), {"path": "/hello/ann", "root": "/api/v1", "name": "ann"})

    def test_plain_site_still_limits_body(self) -> None:
        """§2.17 r3: mounted in a plain Site, a body over the limit still gets 413 JSON."""
        app = App(max_body_size=5)
        app.post("/")(lambda r: "ok")
        root = Resource()
        root.putChild(b"app", app.resource())
        out = _exchange(Site(root), b"POST /app/ HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n123456")
        self.assertIn(b"413", out.split(b"\r\n")[0])
        self.assertEqual(_body(out)["status"], 413)

    def test_site_refuses_large_content_length_early(self) -> None:
        """§2.17 r3 / §2.22 r2: app.site() refuses a too-large Content-Length before reading the body."""
        app = App(max_body_size=1000)
        app.post("/")(lambda r: "ok")
        out = _exchange(app.site(), b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\nExpect: 100-continue\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:60])
        self.assertNotIn(b"100 Continue", out)
        self.assertEqual(_body(out)["status"], 413)

    def test_site_cuts_chunked_body(self) -> None:
        """§2.17 r3: a chunked body is cut as soon as it exceeds the limit."""
        app = App(max_body_size=10)
        seen: list = []
        app.post("/")(lambda r: seen.append(1))
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"8\r\n12345678\r\n" * 3 + b"0\r\n\r\n"
        out = _exchange(app.site(), raw)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"))
        self.assertEqual(seen, [])

    def test_site_never_renders_html_tracebacks(self) -> None:
        """§2.22 r2: app.site() never renders Twisted HTML tracebacks; errors are JSON."""
        app = App()
        app.get("/")(lambda r: 1 / 0)
        out = _exchange(app.site(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"500", out.split(b"\r\n")[0])
        self.assertNotIn(b"<html", out.lower())
        self.assertEqual(_body(out), {"error": "Internal Server Error", "status": 500})
        self.flushLoggedErrors(ZeroDivisionError)

    def test_malformed_http_gets_400_and_site_keeps_serving(self) -> None:
        """Bad input: malformed request lines/headers get a 400; the next connection is served."""
        app = App()
        app.get("/")(lambda r: "ok")
        site = app.site()
        self.assertIn(b"400", _exchange(site, b"GARBAGE\r\n\r\n"))
        self.assertIn(b"400", _exchange(site, b"GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n"))
        self.assertIn(b"200 OK", _exchange(site, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))

    def test_access_log_disabled(self) -> None:
        """TWISTED_NOTES §8: the Site's own access log is off (RequestLogging replaces it)."""
        from twisted.logger import globalLogPublisher

        events: list = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        app = App()
        app.get("/")(lambda r: "ok")
        _exchange(app.site(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual([e for e in events if "GET / HTTP/1.1" in str(e.get("log_format", ""))], [])
