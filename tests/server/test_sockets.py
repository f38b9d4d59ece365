"""Real loopback sockets: early 413, chunked cut-off, concurrent rate limiting, file streaming."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import treq
from twisted.internet import defer, protocol, reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from cello_twisted import App, RateLimitConfig, StaticFilesConfig

pytestmark = pytest.mark.live  # starts processes or opens real sockets

TIMEOUT = 5


class RawClient(protocol.Protocol):
    """Sends scripted bytes and collects everything the server answers until it closes."""

    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred = Deferred()
        self.first_data: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if not self.first_data.called:
            self.first_data.callback(None)

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.received)


class SocketTestCase(TestCase):
    timeout = 15

    def serve(self, app: App) -> int:
        port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def connect(self, port: int) -> Deferred:
        return protocol.ClientCreator(reactor, RawClient).connectTCP("127.0.0.1", port)

    def bounded(self, d: Deferred) -> Deferred:
        return d.addTimeout(TIMEOUT, reactor)


class BodyLimitTests(SocketTestCase):
    def setUp(self) -> None:
        self.calls: list[int] = []
        self.app = App(max_body_size=1024 * 1024)

        @self.app.post("/upload")
        def upload(request):
            self.calls.append(len(request.body()))
            return {"size": len(request.body())}

        self.port = self.serve(self.app)

    @defer.inlineCallbacks
    def test_huge_content_length_refused_before_reading(self):
        """§2.17 r3 (acceptance 3): a 50 MB upload is answered 413 after the headers alone."""
        client = yield self.connect(self.port)
        client.transport.write(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % (50 * 1024 * 1024)
        )
        client.transport.write(b"x" * 65536)  # only a sliver of the 50 MB is ever sent
        received = yield self.bounded(client.closed)
        self.assertTrue(received.startswith(b"HTTP/1.1 413 "), received[:80])
        self.assertIn(b'"status":413', received)
        self.assertEqual(self.calls, [])

    @defer.inlineCallbacks
    def test_expect_continue_gets_413_not_100(self):
        """§2.17 r3: with Expect: 100-continue the client gets 413 instead of 100."""
        client = yield self.connect(self.port)
        client.transport.write(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (50 * 1024 * 1024)
        )
        received = yield self.bounded(client.closed)
        self.assertTrue(received.startswith(b"HTTP/1.1 413 "), received[:80])
        self.assertNotIn(b"100 Continue", received)

    @defer.inlineCallbacks
    def test_chunked_body_cut(self):
        """§2.17 r3: a chunked body is cut with 413 as soon as it passes the limit."""
        client = yield self.connect(self.port)
        client.transport.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(17):  # 1.06 MiB > 1 MiB; the stream is never terminated
            client.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        received = yield self.bounded(client.closed)
        self.assertTrue(received.startswith(b"HTTP/1.1 413 "), received[:80])
        self.assertEqual(self.calls, [])

    @defer.inlineCallbacks
    def test_under_limit_accepted(self):
        """§2.17 r3: bodies within the limit (fixed or chunked) reach the handler."""
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = yield self.bounded(treq.post(f"http://127.0.0.1:{self.port}/upload", data=b"z" * 1000, pool=pool))
        body = yield response.json()
        self.assertEqual((response.code, body), (200, {"size": 1000}))
        client = yield self.connect(self.port)
        client.transport.write(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
        received = yield self.bounded(client.closed)
        self.assertTrue(received.startswith(b"HTTP/1.1 200 "), received[:80])
        self.assertEqual(self.calls, [1000, 5])


class ConcurrencyTests(SocketTestCase):
    @defer.inlineCallbacks
    def test_100_concurrent_against_10(self):
        """§2.14 r1 (acceptance 2): 100 concurrent requests, limit 10 -> exactly 10 successes."""
        app = App()
        app.enable_rate_limit(RateLimitConfig(10, 60))
        app.get("/x")(lambda request: {"ok": True})
        port = self.serve(app)
        pool = HTTPConnectionPool(reactor, persistent=False)
        requests = [treq.get(f"http://127.0.0.1:{port}/x", pool=pool) for _ in range(100)]
        responses = yield self.bounded(defer.gatherResults(requests))
        for response in responses:
            yield response.content()
        codes = [r.code for r in responses]
        self.assertEqual((codes.count(200), codes.count(429)), (10, 90))


class StreamingTests(SocketTestCase):
    @defer.inlineCallbacks
    def test_large_file_with_backpressure(self):
        """§2.3 r5: a 3 MB static file streams intact over a real socket (producer paused/resumed)."""
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        data = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(root, "big.bin"), "wb") as fh:
            fh.write(data)
        app = App()
        app.enable_static_files(StaticFilesConfig("/static", root))
        port = self.serve(app)
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = yield self.bounded(treq.get(f"http://127.0.0.1:{port}/static/big.bin", pool=pool))
        body = yield self.bounded(response.content())
        self.assertEqual((response.code, len(body)), (200, len(data)))
        self.assertEqual(body, data)
        response = yield self.bounded(
            treq.get(f"http://127.0.0.1:{port}/static/big.bin", headers={"Range": "bytes=1000000-2999999"}, pool=pool)
        )
        body = yield self.bounded(response.content())
        self.assertEqual((response.code, body), (206, data[1000000:3000000]))
