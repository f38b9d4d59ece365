"""A busy reactor or impatient clients are not a Redis outage (SPEC §12 r2).

Under load the server's own reactor can be late reading Redis replies, and clients hang up
while their request waits on Redis. Neither may turn a healthy Redis into 503s.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from cello_twisted import App, RateLimitConfig
from cello_twisted.stores import RedisRateLimitStore
from tests._support.live import raw_connect

from ._redis_server import start
from .test_redis_broadcast_processes import Remote

pytestmark = pytest.mark.live

TIMEOUT = 1.0


def _status(data: bytes) -> int:
    return int(bytes(data).split(b" ", 2)[1])


class BusyReactorTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.redis = start(self)
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.store = RedisRateLimitStore(self.redis.url, timeout=TIMEOUT)
        self.addCleanup(self.store.close)
        self.config = RateLimitConfig(10**9, 60, store=self.store)
        self.app = App()
        self.arrived: list[float] = []

        @self.app.get("/limited", rate_limit=self.config)
        def limited(request: Any) -> dict[str, bool]:
            return {"ok": True}

        @self.app.get("/busy")
        def busy(request: Any) -> dict[str, bool]:
            # Runs while the reactor reads sockets: Redis answers during the sleep, and the
            # reply sits unread in the socket past the store's deadline.
            self.redis.resume()
            time.sleep(TIMEOUT + 0.3)
            return {"slept": True}

        @self.app.get("/waits")
        def waits(request: Any) -> Any:
            self.arrived.append(time.monotonic())
            d = self.store.hit("waits", self.config, time.time())
            return d.addCallback(lambda result: {"allowed": result.allowed})

        port = reactor.listenTCP(0, self.app.site(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.server = Remote(port.getHost().port)

    def get(self, path: str) -> Any:
        return raw_connect(self.server, f"GET {path} HTTP/1.0\r\n\r\n".encode())

    @inlineCallbacks
    def response(self, path: str) -> Any:
        client = yield self.get(path)
        yield client.lost.addTimeout(10, reactor)
        return _status(client.data)

    def unavailable(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "unavailable" in str(e.get("log_format", ""))]

    @inlineCallbacks
    def test_a_reply_left_unread_by_a_busy_reactor_is_not_an_outage(self) -> None:
        """A Redis reply that arrived in time but was read late (reactor busy past the timeout) -> 200, no 'unavailable' log."""
        self.assertEqual((yield self.response("/limited")), 200)  # connected, script loaded
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        limited = yield self.get("/limited")  # its EVALSHA waits on the stopped Redis
        yield deferLater(reactor, 0.2, lambda: None)
        busy = yield self.get("/busy")  # resumes Redis, then blocks the reactor past the deadline
        yield busy.lost.addTimeout(10, reactor)
        yield limited.lost.addTimeout(10, reactor)
        self.assertEqual(_status(busy.data), 200)
        self.assertEqual(_status(limited.data), 200, bytes(limited.data))
        self.assertEqual((yield self.response("/limited")), 200)
        self.assertEqual(self.unavailable(), [])

    @inlineCallbacks
    def test_clients_hanging_up_while_waiting_on_redis_cause_no_503(self) -> None:
        """Clients that disconnect while their request waits on Redis -> the next requests are still 200, nothing logged."""
        self.assertEqual((yield self.response("/waits")), 200)  # connected, script loaded
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        clients = []
        for _ in range(12):
            clients.append((yield self.get("/waits")))
        deadline = time.monotonic() + 5
        while len(self.arrived) < 13 and time.monotonic() < deadline:
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len(self.arrived), 13)  # every request now waits on Redis
        for client in clients:
            client.transport.abortConnection()
        for client in clients:
            yield client.lost.addTimeout(5, reactor)
        self.redis.resume()
        codes = []
        for path in ("/limited", "/waits", "/limited"):
            codes.append((yield self.response(path)))
        self.assertEqual(codes, [200, 200, 200])
        self.assertEqual(self.unavailable(), [])
