"""health_check() and close(): PING bounded by the timeout; closed once after a graceful stop (SPEC §12 r6)."""

from __future__ import annotations

import socket
import time

import pytest
from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from cello_twisted import App, Broadcast, RateLimitConfig
from cello_twisted.server._service import CelloServer, build_site
from cello_twisted.stores import RedisRateLimitStore, RedisTokenBlacklist, SharedStoreUnavailable

from ._redis_server import start

pytestmark = pytest.mark.live


class HealthCheckTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_health_check_pings_within_the_timeout(self) -> None:
        """§6 r4: store.health_check() is True while Redis answers, a 503 error within `timeout` when hung."""
        redis = start(self)
        store = RedisTokenBlacklist(redis.url, timeout=0.3)
        self.addCleanup(store.close)
        yield deferLater(reactor, 0, lambda: None)
        self.assertIs((yield store.health_check()), True)
        redis.pause()
        self.addCleanup(redis.resume)
        started = time.monotonic()
        with self.assertRaises(SharedStoreUnavailable):
            yield store.health_check()
        self.assertLess(time.monotonic() - started, 0.3 + 0.5)


class GracefulStopTests(TestCase):
    timeout = 20

    @inlineCallbacks
    def test_stores_and_broadcast_closed_once_after_in_flight_requests(self) -> None:
        """§12 r6: a graceful stop lets the in-flight request finish, then closes each store once."""
        redis = start(self)
        inspect = redis.client()
        self.addCleanup(inspect.close)
        events: list[str] = []
        app = App()
        store = RedisRateLimitStore(redis.url)
        app.broadcast = Broadcast(redis.url)
        for name, obj in (("store", store), ("broadcast", app.broadcast)):
            original = obj.close

            def close(original=original, name=name) -> None:  # noqa: ANN001
                events.append(f"{name} closed")
                original()

            obj.close = close

        @app.get("/slow", rate_limit=RateLimitConfig(100, 60, store=store))
        async def slow(request):  # noqa: ANN001, ANN202
            await deferLater(reactor, 0.5, lambda: None)
            await app.broadcast.publish("done", "bye")
            events.append("handler finished")
            return {"ok": True}

        server = CelloServer(app, build_site(app), [TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")], 5, reactor)
        ports = yield server.start()
        sock = socket.create_connection(("127.0.0.1", ports[0].getHost().port), timeout=5)
        self.addCleanup(sock.close)
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        yield deferLater(reactor, 0.2, lambda: None)  # the request is in flight
        self.assertEqual(events, [])
        reply = threads.deferToThread(sock.recv, 4096)
        yield server.stop()
        self.assertTrue((yield reply).startswith(b"HTTP/1.1 200"))
        self.assertEqual(events[0], "handler finished")
        self.assertEqual(sorted(events[1:]), ["broadcast closed", "store closed"])

        def only_inspector() -> bool:
            return len(inspect.client_list()) == 1

        deadline = time.monotonic() + 2
        while not only_inspector() and time.monotonic() < deadline:
            yield deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(only_inspector(), inspect.client_list())
