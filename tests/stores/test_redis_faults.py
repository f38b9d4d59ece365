"""Redis outages on a real server and socket: bounded 503s, then recovery by itself (SPEC §2.14 stores)."""

from __future__ import annotations

import time

import pytest
import treq
from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from cello_twisted import App, JwtConfig, RateLimitConfig
from cello_twisted.middleware import JwtAuth
from cello_twisted.stores import RedisRateLimitStore, RedisTokenBlacklist

from ._redis_server import start

pytestmark = pytest.mark.live  # starts processes or opens real sockets

TIMEOUT = 0.5  # the stores' bound on one Redis call
SECRET = b"f" * 32


class OutageTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.redis = start(self)
        app = App()
        app.use(
            JwtAuth(
                JwtConfig(
                    secret=SECRET, blacklist=RedisTokenBlacklist(self.redis.url, timeout=TIMEOUT)
                ),
                required=False,
            )
        )
        self.token = app.jwt.create_token({"sub": "ann"})
        limit = RateLimitConfig(
            10_000, 60, store=RedisRateLimitStore(self.redis.url, timeout=TIMEOUT)
        )

        @app.get("/limited", rate_limit=limit)
        def limited(request):
            return {"ok": True}

        @app.get("/me")
        def me(request):
            return {"sub": request.jwt_claims["sub"]}

        self.port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    @inlineCallbacks
    def get(self, path: str, auth: bool = False):
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        started = time.monotonic()
        resp = yield treq.get(self.base + path, headers=headers, pool=self.pool, timeout=10)
        body = yield resp.json()
        return resp.code, body, time.monotonic() - started

    @inlineCallbacks
    def wait_for_200(self, path: str, auth: bool = False, within: float = 6.0):
        deadline = time.monotonic() + within
        while True:
            code, body, _ = yield self.get(path, auth)
            if code == 200 or time.monotonic() > deadline:
                return code, body
            yield task.deferLater(reactor, 0.1, lambda: None)

    def assert_503(self, code: int, body: dict, elapsed: float) -> None:
        self.assertEqual(code, 503)
        self.assertEqual(body["error"], "Service Unavailable")
        self.assertIn("Shared store unavailable", body["detail"])
        self.assertLess(elapsed, TIMEOUT + 1.0)

    @inlineCallbacks
    def test_hung_redis_gives_bounded_503_then_recovers(self) -> None:
        """§2.14 stores: a Redis that stops answering -> 503 within the timeout; service resumes after."""
        code, _, _ = yield self.get("/limited")
        self.assertEqual(code, 200)
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        for path, auth in (("/limited", False), ("/me", True)):
            code, body, elapsed = yield self.get(path, auth)
            self.assert_503(code, body, elapsed)
        self.redis.resume()
        code, body = yield self.wait_for_200("/limited")
        self.assertEqual((code, body), (200, {"ok": True}))
        code, body = yield self.wait_for_200("/me", auth=True)
        self.assertEqual((code, body), (200, {"sub": "ann"}))

    @inlineCallbacks
    def test_stopped_redis_gives_503_and_restart_on_same_port_recovers(self) -> None:
        """§2.10/§2.14 stores: Redis killed -> fail closed with 503s; restarted -> 200s again by itself."""
        code, _, _ = yield self.get("/me", auth=True)
        self.assertEqual(code, 200)
        self.redis.stop()
        for _ in range(3):  # the first attempt and the fast-failing back-off period
            code, body, elapsed = yield self.get("/me", auth=True)
            self.assert_503(code, body, elapsed)
            code, body, elapsed = yield self.get("/limited")
            self.assert_503(code, body, elapsed)
        code, body, _ = yield self.get("/")  # routes that need no Redis keep working
        self.assertEqual(code, 404)
        self.redis.restart()
        code, body = yield self.wait_for_200("/me", auth=True)
        self.assertEqual((code, body), (200, {"sub": "ann"}))
        code, body = yield self.wait_for_200("/limited")
        self.assertEqual(code, 200)
