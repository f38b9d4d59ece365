"""Broadcast over a real redis-server: delivery, queue bounds, one connection, release, outages (SPEC §10)."""

from __future__ import annotations

import time

import pytest
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from cello_twisted import App, Broadcast, BroadcastOverflow
from cello_twisted.stores import SharedStoreUnavailable

from ._redis_server import start

pytestmark = pytest.mark.live


async def wait_until(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await deferLater(reactor, 0.02, lambda: None)


async def next_message(sub, timeout: float = 5.0):  # noqa: ANN001
    return await Deferred.fromCoroutine(sub.__anext__()).addTimeout(timeout, reactor)


class RedisBroadcastTests(TestCase):
    timeout = 40

    def setUp(self) -> None:
        self.redis = start(self)
        self.inspect = self.redis.client()
        self.addCleanup(self.inspect.close)

    def broadcast(self, **kw) -> Broadcast:  # noqa: ANN003
        bc = Broadcast(self.redis.url, **kw)
        self.addCleanup(bc.close)
        return bc

    def numsub(self, channel: str) -> int:
        return dict(self.inspect.pubsub_numsub("cello:broadcast:" + channel)).get(
            ("cello:broadcast:" + channel).encode(), 0
        )

    def test_values_round_trip_in_publish_order_across_processes(self) -> None:
        """§10 r1: str, bytes and dict arrive as published, in publish order, on another connection."""

        async def run() -> None:
            a, b = self.broadcast(), self.broadcast()
            async with b.subscribe("room") as sub:
                self.assertEqual(self.numsub("room"), 1)  # __aenter__ waited for the SUBSCRIBE
                await a.publish("room", "héllo")
                await a.publish("room", b"\x00\xffraw")
                await a.publish("room", {"n": 1, "nested": {"ok": True}})
                for i in range(50):
                    await a.publish("room", str(i))
                self.assertEqual(await next_message(sub), "héllo")
                self.assertEqual(await next_message(sub), b"\x00\xffraw")
                self.assertEqual(await next_message(sub), {"n": 1, "nested": {"ok": True}})
                self.assertEqual([await next_message(sub) for _ in range(50)], [str(i) for i in range(50)])

        return ensureDeferred(run())

    def test_one_subscriber_connection_and_release_on_leave(self) -> None:
        """§10 r3, r5: all subscriptions share one connection; the last one leaving unsubscribes."""

        async def run() -> None:
            bc = self.broadcast()
            subs = [bc.subscribe(f"ch{i % 3}") for i in range(30)]
            for sub in subs:
                await sub.__aenter__()
            clients = self.inspect.client_list(_type="pubsub")
            self.assertEqual(len(clients), 1, clients)
            self.assertEqual([self.numsub(f"ch{i}") for i in range(3)], [1, 1, 1])
            for sub in subs[:-3]:  # one subscription left per channel
                await sub.__aexit__(None, None, None)
            await deferLater(reactor, 0.1, lambda: None)
            self.assertEqual([self.numsub(f"ch{i}") for i in range(3)], [1, 1, 1])
            for sub in subs[-3:]:
                await sub.__aexit__(None, None, None)
            await wait_until(
                lambda: [self.numsub(f"ch{i}") for i in range(3)] == [0, 0, 0], 2, "unsubscribed"
            )

        return ensureDeferred(run())

    def test_a_subscriber_that_never_reads_does_not_delay_others(self) -> None:
        """§10 r2: a stalled subscriber keeps at most queue_size messages; others get everything at once."""

        async def run() -> None:
            publisher, bc = self.broadcast(), self.broadcast()
            async with bc.subscribe("feed", queue_size=10) as stalled, bc.subscribe("feed") as reader:
                received = []

                async def read() -> None:
                    async for message in reader:
                        received.append(message)
                        if len(received) == 200:
                            return

                reading = Deferred.fromCoroutine(read())
                for i in range(200):
                    await publisher.publish("feed", {"i": i})
                await reading.addTimeout(5, reactor)
                self.assertEqual(received, [{"i": i} for i in range(200)])
                self.assertEqual(stalled.pending, 10)
                self.assertEqual(await next_message(stalled), BroadcastOverflow(190))
                rest = [await next_message(stalled) for _ in range(10)]
                self.assertEqual(rest, [{"i": i} for i in range(190, 200)])

        return ensureDeferred(run())

    def test_outage_publish_fails_fast_and_subscribers_resume(self) -> None:
        """§10 r4: Redis down -> publish raises SharedStoreUnavailable within 1 s; back -> delivery within 5 s."""

        async def run() -> None:
            publisher, bc = self.broadcast(), self.broadcast()
            async with bc.subscribe("news") as sub:
                await publisher.publish("news", "before")
                self.assertEqual(await next_message(sub), "before")
                self.redis.stop()
                started = time.monotonic()
                with self.assertRaises(SharedStoreUnavailable):
                    await publisher.publish("news", "lost")
                self.assertLess(time.monotonic() - started, 1.0)
                self.redis.restart()
                back = time.monotonic()
                while True:  # publishes during back-off fail fast; keep trying, bounded
                    try:
                        await publisher.publish("news", "after")
                    except SharedStoreUnavailable:
                        pass
                    if sub.pending or time.monotonic() - back > 5:
                        break
                    await deferLater(reactor, 0.1, lambda: None)
                self.assertEqual(await next_message(sub, 0.5), "after")
                self.assertLess(time.monotonic() - back, 5.0)

        return ensureDeferred(run())

    @inlineCallbacks
    def test_uncaught_outage_is_a_503(self) -> None:
        """§10 r4: a handler whose publish fails answers 503 with the standard body."""
        app = App()
        app.broadcast = self.broadcast()

        @app.post("/say")
        async def say(request):  # noqa: ANN001, ANN202
            await app.broadcast.publish("c", "hi")
            return {"ok": True}

        port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/say"
        pool = HTTPConnectionPool(reactor, persistent=False)
        resp = yield treq.post(url, timeout=5, pool=pool)
        self.assertEqual(resp.code, 200)
        yield resp.content()
        self.redis.stop()
        resp = yield treq.post(url, timeout=5, pool=pool)
        body = yield resp.json()
        self.assertEqual(resp.code, 503)
        self.assertIn("Shared store unavailable", body["detail"])
        self.redis.restart()


class HungRedisPublishTests(TestCase):
    timeout = 20

    def test_publish_to_a_hung_redis_fails_within_one_second(self) -> None:
        """§10 r4: Redis accepting connections but never answering -> publish fails within 1 s."""
        redis = start(self)
        bc = Broadcast(redis.url)
        self.addCleanup(bc.close)

        async def run() -> None:
            await deferLater(reactor, 0, lambda: None)
            await bc.publish("c", "warm")  # connected
            redis.pause()
            self.addCleanup(redis.resume)
            started = time.monotonic()
            with self.assertRaises(SharedStoreUnavailable):
                await bc.publish("c", "stuck")
            self.assertLess(time.monotonic() - started, 1.0)

        return ensureDeferred(run())
