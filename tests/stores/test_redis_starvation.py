"""Redis-backed routes never wait behind threaded handlers (SPEC §12 r1)."""

from __future__ import annotations

import time

import pytest
import treq
from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from cello_twisted import App, RateLimitConfig
from cello_twisted.stores import RedisRateLimitStore, RedisSessionStore, RedisTokenBlacklist
from tests._support.live import raw_connect

from ._redis_server import start
from .test_redis_broadcast_processes import Remote

pytestmark = pytest.mark.live


class PoolStarvationTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_threaded_handlers_filling_the_pool_cause_no_503(self) -> None:
        """§12 r1: 12 threaded handlers sleeping 3 s (pool: 10 threads) -> Redis routes still 200, nothing logged.

        Covers the native client (URL) and a caller-supplied redis-py client (own pool).
        """
        redis = start(self)
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        app = App()
        store = RedisRateLimitStore(redis.url, timeout=1.0)
        sessions = RedisSessionStore(redis.url, timeout=1.0)
        own_client = redis.client()  # a caller's redis-py client runs in the store's own pool
        revocations = RedisTokenBlacklist(client=own_client, timeout=1.0)
        for closing in (store, sessions, revocations, own_client):
            self.addCleanup(closing.close)

        @app.get("/slow", threaded=True)
        def slow(request):  # noqa: ANN001, ANN202
            time.sleep(3)
            return {"slept": 3}

        @app.get("/limited", rate_limit=RateLimitConfig(100_000, 60, store=store))
        def limited(request):  # noqa: ANN001, ANN202
            d = sessions.load("nobody").addCallback(lambda _: revocations.contains("jti"))
            return d.addCallback(lambda revoked: {"revoked": revoked})

        port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        base = f"http://127.0.0.1:{port.getHost().port}"
        pool = HTTPConnectionPool(reactor, persistent=False)
        pool.maxPersistentPerHost = 64
        slow_calls = [treq.get(base + "/slow", pool=pool, timeout=20) for _ in range(12)]
        yield deferLater(reactor, 0.5, lambda: None)  # every pool thread is now asleep
        codes = []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # while the pool is still full
            # A raw client: treq would resolve the host name in the (full) thread pool.
            client = yield raw_connect(Remote(port.getHost().port), b"GET /limited HTTP/1.0\r\n\r\n")
            yield client.lost.addTimeout(5, reactor)
            codes.append(int(bytes(client.data).split(b" ", 2)[1]))
        self.assertTrue(len(codes) >= 5, codes)
        self.assertEqual(set(codes), {200}, codes)
        slow_responses = yield gatherResults(slow_calls)
        self.assertEqual([r.code for r in slow_responses], [200] * 12)
        for r in slow_responses:
            yield r.content()
        unavailable = [e for e in events if "unavailable" in str(e.get("log_format", ""))]
        self.assertEqual(unavailable, [])
