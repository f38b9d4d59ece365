"""Compression (SPEC §2.8): when gzip applies, what it changes, and what it never touches."""

from __future__ import annotations

import gzip
import os
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Response, StaticFilesConfig
from cello_twisted.middleware import Compression
from cello_twisted.middleware.compression import accepts
from cello_twisted.response import Streamer

BIG = "hello compression " * 200  # 3600 bytes


def gz_app(**kwargs):
    app = App(clock=Clock())
    app.enable_compression(**kwargs)

    @app.get("/text")
    def text(request):
        return BIG

    @app.get("/json")
    def json(request):
        return {"items": [BIG]}

    @app.get("/small")
    def small(request):
        return "tiny"

    @app.get("/png")
    def png(request):
        return Response.binary(b"\x89PNG" + b"\0" * 5000, "image/png")

    @app.get("/problem")
    def problem(request):
        return Response(BIG.encode(), 400, content_type="application/problem+json")

    @app.get("/svg")
    def svg(request):
        return Response(BIG.encode(), content_type="image/svg+xml")

    @app.get("/encoded")
    def encoded(request):
        return Response(BIG.encode(), headers={"Content-Encoding": "identity"}, content_type="text/plain")

    @app.get("/nocontent")
    def nocontent(request):
        return Response(BIG.encode(), 204, content_type="text/plain")

    return app


GZ = {"Accept-Encoding": "gzip"}


class CompressionTests(SynchronousTestCase):
    def test_gzip_when_accepted(self):
        """§2.8 r1/r2: gzip body, Content-Encoding, new Content-Length, Vary: Accept-Encoding."""
        client = gz_app().test_client()
        r = client.get("/text", headers={"Accept-Encoding": "deflate, gzip;q=0.5"})
        self.assertEqual(r.headers["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(r.content).decode(), BIG)
        self.assertEqual(int(r.headers["Content-Length"]), len(r.content))
        self.assertLess(len(r.content), len(BIG))
        self.assertIn("Accept-Encoding", r.headers["Vary"])

    def test_q_zero_and_absent(self):
        """§2.8 r1: gzip;q=0, no Accept-Encoding or other codings only -> identity."""
        client = gz_app().test_client()
        for headers in ({}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "br, deflate"},
                        {"Accept-Encoding": "gzip; q=0.000, *"}):
            r = client.get("/text", headers=headers)
            self.assertNotIn("Content-Encoding", r.headers, headers)
            self.assertEqual(r.text, BIG)

    def test_accept_parsing(self):
        """§2.8 r1: q-values respected; "*" counts only when gzip is not named."""
        self.assertTrue(accepts("GZIP", "gzip"))
        self.assertTrue(accepts("br;q=1, gzip;q=0.1", "gzip"))
        self.assertTrue(accepts("*", "gzip"))
        self.assertFalse(accepts("*;q=0", "gzip"))
        self.assertFalse(accepts("gzip;q=0, *;q=1", "gzip"))
        self.assertFalse(accepts("gzip;q=abc", "gzip"))

    def test_min_size(self):
        """§2.8 r1: bodies below min_size stay uncompressed; min_size is configurable."""
        client = gz_app().test_client()
        self.assertNotIn("Content-Encoding", client.get("/small", headers=GZ).headers)
        client = gz_app(min_size=4).test_client()
        self.assertEqual(client.get("/small", headers=GZ).headers["Content-Encoding"], "gzip")

    def test_compressible_types(self):
        """§2.8 r1: text/*, JSON, +json, SVG compressed; images not."""
        client = gz_app().test_client()
        for path in ("/text", "/json", "/problem", "/svg"):
            self.assertEqual(client.get(path, headers=GZ).headers.get("Content-Encoding"), "gzip", path)
        self.assertNotIn("Content-Encoding", client.get("/png", headers=GZ).headers)

    def test_existing_encoding_and_no_body_statuses(self):
        """§2.8 r1: an existing Content-Encoding or status 204 is left alone."""
        client = gz_app().test_client()
        self.assertEqual(client.get("/encoded", headers=GZ).headers["Content-Encoding"], "identity")
        r = client.get("/nocontent", headers=GZ)
        self.assertEqual(r.status_code, 204)
        self.assertNotIn("Content-Encoding", r.headers)

    def test_head_untouched(self):
        """§2.8 r3: HEAD responses are never compressed."""
        r = gz_app().test_client().head("/text", headers=GZ)
        self.assertNotIn("Content-Encoding", r.headers)
        self.assertEqual(r.headers["Content-Length"], str(len(BIG)))

    def test_streamed_responses_untouched(self):
        """§2.8 r3: streamer responses (files, SSE, WebSocket 101) pass through untouched."""
        mw = Compression(min_size=0)

        class Upgrade(Streamer):
            pass

        class FakeRaw:
            class requestHeaders:  # noqa: N801
                @staticmethod
                def getRawHeaders(name):
                    return [b"gzip"]

        class FakeRequest:
            method = "GET"
            raw = FakeRaw()

        for status, ctype in ((101, None), (200, "text/event-stream")):
            resp = Response(BIG.encode(), status, content_type=ctype)
            resp.streamer = Upgrade()
            out = mw(FakeRequest(), lambda request, resp=resp: resp)
            self.assertIs(out, resp)
            self.assertEqual(out.body, BIG.encode())
            self.assertNotIn("Content-Encoding", out.headers)
            self.assertNotIn("Vary", out.headers)

    def test_file_and_static_untouched(self):
        """§2.8 r3: Response.file and static files are sent as stored, never gzipped."""
        root = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.remove(os.path.join(root, n)) for n in os.listdir(root)] and os.rmdir(root))
        with open(os.path.join(root, "page.html"), "w") as fh:
            fh.write(BIG)
        app = gz_app(min_size=0)
        app.enable_static_files(StaticFilesConfig("/static", root))
        app.get("/download")(lambda request: Response.file(os.path.join(root, "page.html")))
        client = app.test_client()
        for path in ("/static/page.html", "/download"):
            r = client.get(path, headers=GZ)
            self.assertNotIn("Content-Encoding", r.headers, path)
            self.assertEqual(r.text, BIG)

    def test_errors(self):
        """§2.8 errors: min_size < 0 and level outside 1-9 are ValueErrors."""
        for kwargs in ({"min_size": -1}, {"level": 0}, {"level": 10}):
            with self.assertRaises(ValueError):
                Compression(**kwargs)
        app = App()
        self.assertIsInstance(app.enable_compression(min_size=10, level=9), Compression)


class UpgradeAndSseTests(SynchronousTestCase):
    def test_websocket_upgrade_with_compression(self):
        """§2.8 r3 / seed 000: a WebSocket upgrade succeeds with compression enabled."""
        app = App(clock=Clock())
        app.enable_compression(min_size=0)

        @app.websocket("/ws")
        async def ws(socket):
            message = await socket.receive()
            await socket.send_text(message * 300)

        client = app.test_client()
        socket = client.websocket_connect("/ws", headers={"Accept-Encoding": "gzip"})
        socket.send_text("echo")
        self.assertEqual(socket.receive_text(timeout=5), "echo" * 300)
        socket.close()

    def test_sse_not_compressed(self):
        """§2.8 r3: Server-Sent Events are never gzipped (events must not sit in zlib)."""
        from cello_twisted import SseStream

        app = App(clock=Clock())
        app.enable_compression(min_size=0)

        @app.get("/events")
        def events(request):
            stream = SseStream(ping_interval=None)
            stream.add_data("x" * 2000)
            return stream

        r = app.test_client().get("/events", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status_code, 200)
        self.assertNotIn("Content-Encoding", r.headers)
        self.assertIn(b"data: " + b"x" * 2000, r.content)
