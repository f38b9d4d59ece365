"""Real loopback sockets for Server-Sent Events: events one by one, gzip, wire headers, vanishing clients.

SPEC §2.18 r2-r5 and the seed 000 fix (SSE cleanup on client disconnect).
"""

from __future__ import annotations

import gc
import time
import weakref

import pytest
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from cello_twisted import App, SseStream
from cello_twisted.sse._streamer import live_streams
from tests._support.live import LiveServer, raw_connect, wait_until

pytestmark = pytest.mark.live  # starts processes or opens real sockets


class LiveSseTests(TestCase):
    timeout = 10

    def setUp(self):
        from twisted.web.client import HTTPConnectionPool

        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    def gated_app(self, gates: list[Deferred]) -> App:
        app = App(clock=Clock())

        async def source():
            for i in range(3):
                d = Deferred()
                gates.append(d)
                await d
                yield f"ev{i}"

        app.get("/events")(lambda r: SseStream(source()))
        return app

    @inlineCallbacks
    def _events_one_by_one(self, app, gates, headers=None):
        server = LiveServer(self, app)
        resp = yield treq.get(
            server.url("/events"), headers=headers, pool=self.pool, unbuffered=True
        )
        self.assertEqual(resp.code, 200)
        self.assertEqual(resp.headers.getRawHeaders(b"content-type"), [b"text/event-stream"])
        # treq's decoder leaves an empty Content-Encoding behind; the wire check is test_wire_headers
        self.assertEqual([v for v in resp.headers.getRawHeaders(b"content-encoding", []) if v], [])
        chunks: list[bytes] = []
        done = treq.collect(resp, chunks.append)
        for i in range(3):
            yield wait_until(lambda i=i: len(gates) == i + 1, 2, f"pull {i}")
            gates[i].callback(None)
            yield wait_until(lambda i=i: f"ev{i}".encode() in b"".join(chunks), 2, f"event {i}")
            self.assertNotIn(f"ev{i + 1}".encode(), b"".join(chunks))
        yield done.addTimeout(2, reactor)
        self.assertEqual(b"".join(chunks), b"data: ev0\n\ndata: ev1\n\ndata: ev2\n\n")

    def test_events_arrive_one_by_one(self):
        """§2.18 r3: a treq client reading with treq.collect sees each event as it is produced."""
        gates: list[Deferred] = []
        return self._events_one_by_one(self.gated_app(gates), gates)

    def test_events_one_by_one_with_gzip(self):
        """§2.18 r2 / §2.8 r3: with gzip enabled (min_size=0) SSE is neither compressed nor buffered."""
        gates: list[Deferred] = []
        app = self.gated_app(gates)
        app.enable_compression(min_size=0)
        return self._events_one_by_one(app, gates, headers={"Accept-Encoding": "gzip"})

    @inlineCallbacks
    def test_wire_headers(self):
        """§2.18 r2: on the wire: text/event-stream, no-cache, X-Accel-Buffering: no, Connection: keep-alive;
        not gzip-compressed although compression (min_size=0) is on and the client accepts gzip."""
        app = App(clock=Clock())
        app.enable_compression(min_size=0)
        app.get("/events")(lambda r: SseStream(["x"]))
        server = LiveServer(self, app)
        request = b"GET /events HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
        raw = yield raw_connect(server, request)
        yield wait_until(lambda: b"0\r\n\r\n" in raw.data, 2, "complete response")
        head = raw.data.split(b"\r\n\r\n")[0].lower()
        for line in (
            b"content-type: text/event-stream",
            b"cache-control: no-cache",
            b"x-accel-buffering: no",
            b"connection: keep-alive",
        ):
            self.assertIn(line, head)
        self.assertNotIn(b"content-encoding", head)
        self.assertIn(b"data: x\n\n", raw.data)
        raw.transport.loseConnection()

    @inlineCallbacks
    def test_200_clients_vanish(self):
        """§2.18 r5 (seed 000 fix): 200 SSE clients vanish abruptly; within 1 s every generator's finally
        ran, pending Deferreds were cancelled, no ping timer or producer is left."""
        clock = Clock()
        app = App(clock=clock)
        finals: list[int] = []
        waits: list[Deferred] = []
        counter = iter(range(10_000))

        async def source(n):
            try:
                yield f"hello {n}"
                d = Deferred()
                waits.append(d)
                await d
            finally:
                finals.append(n)

        app.get("/events")(lambda r: SseStream(source(next(counter)), ping_interval=15))
        server = LiveServer(self, app)
        request = b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"
        clients = yield gatherResults([raw_connect(server, request) for _ in range(200)])
        yield wait_until(lambda: all(b"hello" in c.data for c in clients), 5, "200 streams")
        clock.advance(10)  # each connection's own timer wakes once and sleeps while its stream runs
        self.assertEqual(len(clock.getDelayedCalls()), 200)  # the ping timers
        streamers = [weakref.ref(s) for s in live_streams]
        self.assertEqual(len(streamers), 200)
        started = time.monotonic()
        for c in clients:
            c.transport.abortConnection()
        yield wait_until(lambda: len(finals) == 200, 1.0, "all finally blocks")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertTrue(all(d.called for d in waits))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(live_streams), 0)
        gc.collect()
        self.assertEqual([r for r in streamers if r() is not None], [])

    @inlineCallbacks
    def test_blocking_sync_generator_in_thread(self):
        """§2.18 r3/r5 + §1 r2: a blocking sync generator runs off the reactor; after a disconnect it is
        closed when its current pull returns."""
        app = App(clock=Clock())
        finals: list[str] = []

        def source():
            try:
                while True:
                    yield "tick"
                    time.sleep(0.05)
            finally:
                finals.append("closed")

        app.get("/events")(lambda r: SseStream(source(), ping_interval=None))
        server = LiveServer(self, app)
        raw = yield raw_connect(server, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: raw.data.count(b"data: tick") >= 3, 2, "three ticks")
        raw.transport.abortConnection()
        yield wait_until(lambda: finals == ["closed"], 1.0, "generator closed")

    @inlineCallbacks
    def test_non_waiting_source_does_not_starve_others(self):
        """§1 r2 / §2.18 r3: a source that never waits streams on, yet other requests are served at once."""
        app = App(clock=Clock())

        async def flood():
            n = 0
            while True:
                n += 1
                yield {"data": n}

        app.get("/flood")(lambda r: SseStream(flood(), ping_interval=None))
        app.get("/hello")(lambda r: "hi")
        server = LiveServer(self, app)
        flooded = yield raw_connect(server, b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: len(flooded.data) > 100_000, 3, "flood streaming")
        started = time.monotonic()
        resp = yield treq.get(server.url("/hello"), pool=self.pool).addTimeout(2, reactor)
        self.assertEqual((yield treq.text_content(resp)), "hi")
        self.assertLess(time.monotonic() - started, 1.0)
        size = len(flooded.data)
        yield wait_until(lambda: len(flooded.data) > size + 100_000, 3, "flood still streaming")
        flooded.transport.abortConnection()
