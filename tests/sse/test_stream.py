"""Streaming SSE through the in-memory client (SPEC §2.18 r2-r5, §2.23 r6)."""

from __future__ import annotations

import gzip

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Response, SseEvent, SseStream
from cello_twisted.sse._streamer import live_streams


class _Capture:
    """Collects logged failures so tests can assert a source error was logged."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def failures(self) -> list[dict]:
        return [
            e
            for e in self.events
            if "log_failure" in e and e.get("log_namespace") == "cello_twisted.sse"
        ]


class SseHeaderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)

        @self.app.get("/events")
        def events(request):
            return SseStream().add_data("one")

        self.client = self.app.test_client()

    def test_headers(self) -> None:
        """§2.18 r2: text/event-stream, Cache-Control: no-cache, X-Accel-Buffering: no."""
        resp = self.client.get("/events")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers.get("content-type"), "text/event-stream")
        self.assertEqual(resp.headers.get("cache-control"), "no-cache")
        self.assertEqual(resp.headers.get("x-accel-buffering"), "no")
        self.assertEqual(resp.content, b"data: one\n\n")

    def test_never_compressed(self) -> None:
        """§2.18 r2 / §2.8 r3: SSE is never gzip-compressed, even with min_size=0."""
        self.app.enable_compression(min_size=0)
        resp = self.client.get("/events", headers={"Accept-Encoding": "gzip"})
        self.assertIsNone(resp.headers.get("content-encoding"))
        self.assertEqual(resp.content, b"data: one\n\n")

    def test_compression_still_applies_elsewhere(self) -> None:
        """§2.8: the same app still compresses ordinary JSON (so the SSE test can fail)."""
        self.app.enable_compression(min_size=0)

        @self.app.get("/json")
        def js(request):
            return {"a": "b" * 100}

        resp = self.client.get("/json", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(resp.headers.get("content-encoding"), "gzip")
        self.assertIn(b"bbbb", gzip.decompress(resp.content))


class SseSourceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()

    def route(self, factory):
        self.app.get("/s")(lambda request: factory())

    def test_added_events_then_source(self) -> None:
        """§2.18 r3: added events go first, then the source's items in order."""
        self.route(lambda: SseStream(iter(["b", "c"])).add_data("a"))
        self.assertEqual(self.client.get("/s").content, b"data: a\n\ndata: b\n\ndata: c\n\n")

    def test_item_kinds(self) -> None:
        """§2.18 r3: items may be SseEvent, dict (data/event/id/retry) or str."""
        items = [SseEvent("e", event="t"), {"data": {"n": 1}, "id": "9", "retry": 5}, "s"]
        self.route(lambda: SseStream(items))
        events = self.client.stream("GET", "/s").read_events()
        self.assertEqual(
            events, [SseEvent("e", event="t"), SseEvent('{"n":1}', id="9", retry=5), SseEvent("s")]
        )

    def test_plain_generator_returned(self) -> None:
        """§2.3 r7 + §2.18 r3: Response.sse accepts a generator; it runs to exhaustion."""

        def gen():
            for i in range(3):
                yield {"data": i}

        self.route(lambda: Response.sse(gen()))
        resp = self.client.get("/s")
        self.assertEqual(resp.content, b"data: 0\n\ndata: 1\n\ndata: 2\n\n")

    def test_events_flushed_one_by_one(self) -> None:
        """§2.18 r3: each item is written as it is produced, not at the end."""
        gate: list[Deferred] = []

        async def source():
            for i in range(3):
                d = Deferred()
                gate.append(d)
                await d
                yield f"ev{i}"

        self.route(lambda: SseStream(source()))
        stream = self.client.stream("GET", "/s")
        self.assertEqual(stream.status_code, 200)
        self.assertEqual(stream.read_events(), [])
        gate[0].callback(None)
        self.assertEqual([e.data for e in stream.read_events()], ["ev0"])
        self.assertFalse(stream.closed)
        gate[1].callback(None)
        self.assertEqual([e.data for e in stream.read_events()], ["ev1"])
        gate[2].callback(None)
        self.assertEqual([e.data for e in stream.read_events()], ["ev2"])
        self.assertTrue(stream.closed)

    def test_async_generator_with_clock(self) -> None:
        """§2.18 r3: an async generator awaiting app.clock delays is streamed as time passes."""

        async def ticks():
            for i in range(2):
                await deferLater(self.clock, 1.0, lambda: None)
                yield SseEvent.with_event("tick", i)

        self.route(lambda: SseStream(ticks(), ping_interval=None))
        stream = self.client.stream("GET", "/s")
        self.assertEqual(stream.read(), b"")
        self.clock.advance(1.0)
        self.assertEqual(stream.read(), b"event: tick\ndata: 0\n\n")
        self.clock.advance(1.0)
        self.assertEqual(stream.read(), b"event: tick\ndata: 1\n\n")
        self.assertTrue(stream.closed)

    def test_async_iterable_object(self) -> None:
        """§2.18 r3: any async iterable (not only generators) is a source."""

        class Countdown:
            def __init__(self) -> None:
                self.n = 2

            def __aiter__(self):
                return self

            async def __anext__(self):
                if self.n == 0:
                    raise StopAsyncIteration
                self.n -= 1
                return str(self.n)

        self.route(lambda: SseStream(Countdown()))
        self.assertEqual(self.client.get("/s").content, b"data: 1\n\ndata: 0\n\n")

    def test_source_exception_ends_and_logs(self) -> None:
        """§2.18 r3: a source exception ends the response cleanly and is logged."""
        capture = _Capture(self)

        def gen():
            yield "ok"
            raise RuntimeError("boom")

        self.route(lambda: SseStream(gen()))
        resp = self.client.get("/s")
        self.assertEqual((resp.status_code, resp.content), (200, b"data: ok\n\n"))
        self.assertEqual(len(capture.failures()), 1)
        self.flushLoggedErrors(RuntimeError)

    def test_bad_item_type_ends_and_logs(self) -> None:
        """§2.18 r3: an item of another type ends the stream (logged); later items are not pulled."""
        capture = _Capture(self)
        pulled = []

        def gen():
            yield "a"
            yield 42
            pulled.append("after")
            yield "never"

        self.route(lambda: SseStream(gen()))
        self.assertEqual(self.client.get("/s").content, b"data: a\n\n")
        self.assertEqual(pulled, [])
        self.assertEqual(len(capture.failures()), 1)
        self.flushLoggedErrors(TypeError)


class SsePingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()
        self.gate: Deferred = Deferred()

        async def idle():
            yield "first"
            await self.gate
            yield "second"

        @self.app.get("/idle")
        def handler(request):
            return SseStream(idle(), ping_interval=5)

        @self.app.get("/quiet")
        def quiet(request):
            return SseStream(idle(), ping_interval=None)

    def test_ping_every_interval_when_idle(self) -> None:
        """§2.18 r4: an idle live source gets ': ping' comments every ping_interval (app.clock)."""
        stream = self.client.stream("GET", "/idle")
        self.assertEqual(stream.read(), b"data: first\n\n")
        self.clock.advance(4.9)
        self.assertEqual(stream.read(), b"")
        self.clock.advance(0.1)
        self.assertEqual(stream.read(), b": ping\n\n")
        self.clock.advance(5)
        self.assertEqual(stream.read(), b": ping\n\n")
        self.assertEqual(stream.read_events(), [SseEvent("first")])  # pings are not events
        stream.close()

    def test_event_resets_ping_timer(self) -> None:
        """§2.18 r4: pings are for idle streams; an event restarts the interval."""
        stream = self.client.stream("GET", "/idle")
        self.clock.advance(3)
        self.gate.callback(None)
        self.assertEqual(stream.read(), b"data: first\n\ndata: second\n\n")
        self.assertTrue(stream.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_ping_disabled(self) -> None:
        """§2.18 r4: ping_interval=None sends no pings and schedules no timer."""
        stream = self.client.stream("GET", "/quiet")
        stream.read()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(100)
        self.assertEqual(stream.read(), b"")
        stream.close()


class SseDisconnectTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()
        self.log: list[str] = []

    def test_async_generator_closed_and_deferred_cancelled(self) -> None:
        """§2.18 r5: on disconnect the pending Deferred is cancelled and the generator's finally runs at once."""
        pending: list[Deferred] = []

        async def source():
            try:
                yield "hello"
                d = Deferred()
                pending.append(d)
                await d
                yield "never"
            finally:
                self.log.append("finally")

        self.app.get("/s")(lambda r: SseStream(source(), ping_interval=1))
        stream = self.client.stream("GET", "/s")
        self.assertEqual(stream.read_events(), [SseEvent("hello")])
        self.assertEqual(len(live_streams), 1)
        stream.close()
        self.assertEqual(self.log, ["finally"])
        self.assertTrue(
            pending[0].called
        )  # cancelled: CancelledError was raised into the generator
        self.assertEqual(self.clock.getDelayedCalls(), [])  # ping timer gone
        self.assertEqual(len(live_streams), 0)
        self.clock.advance(10)
        self.assertEqual(
            stream.read(), b"data: hello\n\n"
        )  # no ping, no event after the disconnect

    def test_sync_generator_closed_after_thread_pull(self) -> None:
        """§2.18 r5: a sync generator owned by a pool thread at disconnect is closed when that thread
        gets it back, without pulling another item."""
        pulled: list[int] = []

        def source():
            try:
                for i in range(100):
                    pulled.append(i)
                    yield str(i)
            finally:
                self.log.append("finally")

        in_thread: list = []

        def run_blocking(fn, *args):
            from twisted.internet.defer import succeed

            if not in_thread:
                in_thread.append(fn)
                return succeed(fn(*args))  # first pull completes at once
            in_thread.append(fn)
            return Deferred()  # second pull: queued in the pool, not yet run

        self.app.run_blocking = run_blocking
        self.app.get("/s")(lambda r: SseStream(source()))
        stream = self.client.stream("GET", "/s")
        self.assertEqual(stream.read_events(), [SseEvent("0")])
        self.assertEqual(len(in_thread), 2)
        stream.close()
        self.assertEqual(self.log, [])  # a thread owns the generator: closing it now would race
        in_thread[1]()  # the pool thread runs ...
        self.assertEqual(self.log, ["finally"])  # ... closes the generator instead of pulling
        self.assertEqual(pulled, [0])
        self.assertEqual(len(in_thread), 2)  # no further pull was scheduled

    def test_handler_pending_before_headers_cancelled(self) -> None:
        """§2.5 r3 / §2.18 r5: a disconnect before the stream starts cancels the handler; nothing is pulled."""
        started: list[str] = []
        gate: Deferred = Deferred()

        async def handler(request):
            await gate
            started.append("handler resumed")
            return SseStream(["x"])

        self.app.get("/s")(handler)
        d = self.client.agent.request(b"GET", b"http://localhost/s")
        self.client.flush()
        for pump in list(self.client.agent._pumps):
            pump.clientIO.loseConnection()
        self.client.flush()
        self.assertEqual(started, [])
        self.assertTrue(gate.called)  # cancelled
        d.cancel()
        self.failureResultOf(d)

    def test_finite_stream_leaves_nothing(self) -> None:
        """§2.18 r3/r5: an exhausted source ends the response and leaves no timer or live stream."""
        self.app.get("/s")(lambda r: SseStream(["a", "b"], ping_interval=2))
        stream = self.client.stream("GET", "/s")
        self.assertEqual(len(stream.read_events()), 2)
        self.assertTrue(stream.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(live_streams), 0)

    def test_many_clients_vanish(self) -> None:
        """§2.18 r5 (seed 000 fix): 200 streaming clients vanish; every finally runs, no timers remain."""
        finals: list[int] = []
        waits: list[Deferred] = []

        async def source(n):
            try:
                yield f"hello {n}"
                while True:
                    d = Deferred()
                    waits.append(d)
                    await d
            finally:
                finals.append(n)

        counter = iter(range(1000))
        self.app.get("/s")(lambda r: SseStream(source(next(counter)), ping_interval=15))
        streams = [self.client.stream("GET", "/s") for _ in range(200)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 200)
        for s in streams:
            s.close()
        self.assertEqual(sorted(finals), list(range(200)))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertTrue(all(d.called for d in waits))
        self.assertEqual(len(live_streams), 0)


class SseShutdownTests(SynchronousTestCase):
    def test_close_streams_ends_live_streams(self) -> None:
        """§2.20 r8: close_streams(app) ends every live SSE stream of the app and closes its source."""
        from cello_twisted.sse import close_streams

        clock = Clock()
        app = App(clock=clock)
        log: list[str] = []

        async def source():
            try:
                yield "a"
                await Deferred()
            finally:
                log.append("finally")

        app.get("/s")(lambda r: SseStream(source()))
        client = app.test_client()
        streams = [client.stream("GET", "/s") for _ in range(3)]
        other_app_count = close_streams(App(clock=Clock()))
        self.assertEqual(other_app_count, 0)
        self.assertEqual(close_streams(app), 3)
        self.assertTrue(all(s.closed for s in streams))
        self.assertEqual(log, ["finally"] * 3)
        self.assertEqual(clock.getDelayedCalls(), [])
