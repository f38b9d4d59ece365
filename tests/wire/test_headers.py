"""Response headers on the wire: what reaches Twisted is what Twisted itself would have stored."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers as TwistedHeaders

from cello_twisted import App, Response
from cello_twisted.wire._headers import DIRECT_WRITES, set_content_type, set_headers


class WireHeaderTests(SynchronousTestCase):
    def test_same_as_set_raw_headers(self):
        """The fast writer stores exactly what Twisted's setRawHeaders would (names, values, folding)."""
        self.assertTrue(DIRECT_WRITES, "the fast header path is off for this Twisted release")
        items = [
            ("x-lower", ["a"]),
            ("X-Two", ["1", "2"]),
            ("X-Evil", ["a\r\nSet-Cookie: x=1"]),
            ("X-Text", ["caf\u00e9"]),
            ("Content-Type", ["text/plain"]),
        ]
        ours, theirs = TwistedHeaders(), TwistedHeaders()
        set_headers(ours, items)
        set_content_type(ours, "text/plain")
        for name, values in items:
            theirs.setRawHeaders(name, values)
        self.assertEqual(sorted(ours.getAllRawHeaders()), sorted(theirs.getAllRawHeaders()))

    def test_line_breaks_cannot_inject_headers(self):
        """A header value with CR/LF reaches the client folded into one line: no extra header."""
        app = App()
        app.get("/x")(lambda request: Response("x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"}))
        r = app.test_client().get("/x")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("x-evil"), "a Set-Cookie: pwned=1")
        self.assertNotIn("set-cookie", r.headers)

    def test_invalid_header_name_is_a_500(self):
        """A header name that is not an HTTP token is refused with a JSON 500, and the server goes on."""
        app = App()
        app.get("/bad")(lambda request: Response("x", headers={"Bad Name": "1"}))
        app.get("/ok")(lambda request: "ok")
        client = app.test_client()
        r = client.get("/bad")
        self.assertEqual((r.status_code, r.json()["status"]), (500, 500))
        self.assertEqual(client.get("/ok").status_code, 200)
        self.flushLoggedErrors()

    def test_public_api_fallback_gives_the_same_response(self):
        """If a Twisted release fails the import-time probe, the public setRawHeaders path answers alike."""
        from twisted.internet.task import Clock

        from cello_twisted import RateLimitConfig
        from cello_twisted.wire import _headers as wire
        from cello_twisted.wire import _writer

        def exchange():
            app = App(clock=Clock())
            app.enable_rate_limit(RateLimitConfig(5, 60))
            app.get("/x")(lambda request: Response("x", headers={"X-Two": "a", "X-Evil": "a\r\nb"}))
            r = app.test_client().get("/x")
            return r.status_code, sorted((k.lower(), v) for k, v in r.headers.items() if k.lower() != "date")

        fast = exchange()
        self.patch(_writer, "DIRECT_WRITES", False)
        self.patch(_writer, "set_headers", wire._public_set_all)
        self.patch(_writer, "set_content_type", wire._public_set_content_type)
        self.patch(_writer, "set_encoded_headers", wire._public_set_encoded)
        self.assertEqual(exchange(), fast)
        self.assertIn(("x-ratelimit-remaining", "4"), fast[1])
