"""RedisRateLimitStore against a real redis-server: exact SPEC §2.14 semantics, TTLs, middleware."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, RateLimitConfig
from cello_twisted.middleware.ratelimit import RateLimit, route_cluster_warnings
from cello_twisted.stores import MemoryRateLimitStore, RateLimitResult, RedisRateLimitStore

from ._redis_server import flushed


@pytest.mark.live
class StoreRuleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = flushed(self)
        self.redis = self.server.client()
        self.addCleanup(self.redis.close)
        self.store = RedisRateLimitStore(self.server.url)
        self.addCleanup(self.store.close)

    def test_sliding_window_counts_allowed_requests_in_half_open_window(self) -> None:
        """§2.14 r1: allowed iff fewer than `requests` allowed hits in (now - window, now]."""
        cfg = RateLimitConfig.sliding_window(3, 10)
        hit = self.store.hit
        self.assertEqual(hit("k", cfg, 100.0), RateLimitResult(True, 3, 2, 10, 0))
        self.assertEqual(hit("k", cfg, 101.0), RateLimitResult(True, 3, 1, 9, 0))
        self.assertEqual(hit("k", cfg, 102.0), RateLimitResult(True, 3, 0, 8, 0))
        self.assertEqual(hit("k", cfg, 105.0), RateLimitResult(False, 3, 0, 5, 5))
        # At exactly 110 the hit at 100 has left the window (100 <= 110 - 10).
        self.assertEqual(hit("k", cfg, 110.0), RateLimitResult(True, 3, 0, 1, 0))
        self.assertEqual(hit("k", cfg, 110.5), RateLimitResult(False, 3, 0, 1, 1))

    def test_sliding_window_rejections_are_not_counted(self) -> None:
        """§2.14 r1: rejected requests aren't counted, so a flood does not extend the block."""
        cfg = RateLimitConfig.sliding_window(2, 5)
        self.store.hit("k", cfg, 0.0)
        self.store.hit("k", cfg, 0.0)
        for t in range(1, 5):
            self.assertFalse(self.store.hit("k", cfg, float(t)).allowed)
        self.assertEqual(self.redis.zcard("cello:rl:k"), 2)
        self.assertTrue(self.store.hit("k", cfg, 5.0).allowed)

    def test_token_bucket_refills_continuously(self) -> None:
        """§2.14 r2: capacity `requests`, refill requests/window per second, starts full."""
        cfg = RateLimitConfig.token_bucket(2, 10)  # one token per 5 s
        hit = self.store.hit
        self.assertEqual(hit("b", cfg, 0.0), RateLimitResult(True, 2, 1, 5, 0))
        self.assertEqual(hit("b", cfg, 0.0), RateLimitResult(True, 2, 0, 10, 0))
        self.assertEqual(hit("b", cfg, 1.0), RateLimitResult(False, 2, 0, 9, 4))
        self.assertEqual(hit("b", cfg, 5.0), RateLimitResult(True, 2, 0, 10, 0))
        for step in range(1, 11):  # ten 0.5 s steps refill exactly one token (float slack)
            result = hit("c", RateLimitConfig.token_bucket(1, 5), step * 0.5 if step > 1 else 0.0)
        self.assertTrue(result.allowed)

    def test_same_results_as_memory_store(self) -> None:
        """§2.14 r1-r2: the Redis scripts give exactly the memory store's RateLimitResults."""
        rng = random.Random(1234)
        configs = [
            RateLimitConfig.sliding_window(5, 10),
            RateLimitConfig.sliding_window(3, 2.5),
            RateLimitConfig.token_bucket(5, 10),
            RateLimitConfig.token_bucket(7, 0.7),
        ]
        for n, cfg in enumerate(configs):
            memory = MemoryRateLimitStore()
            now = 1_700_000_000.123456
            for i in range(120):
                now += rng.choice([0.0, 0.1, 0.25, 1.0, cfg.window / 3, cfg.window])
                key = f"eq{n}:{i % 2}"
                self.assertEqual(
                    self.store.hit(key, cfg, now), memory.hit(key, cfg, now), (cfg, i, now)
                )

    def test_keys_use_prefix_and_expire_after_the_window(self) -> None:
        """§2.14 stores: keys under `cello:rl:` (or `prefix=`) with a TTL of one window."""
        self.store.hit("rl1:1.2.3.4", RateLimitConfig.sliding_window(5, 30), 0.0)
        self.store.hit("rl2:1.2.3.4", RateLimitConfig.token_bucket(5, 45), 0.0)
        self.assertIn(self.redis.type("cello:rl:rl1:1.2.3.4"), (b"zset",))
        self.assertEqual(self.redis.type("cello:rl:rl2:1.2.3.4"), b"hash")
        self.assertTrue(29_000 < self.redis.pttl("cello:rl:rl1:1.2.3.4") <= 30_000)
        self.assertTrue(44_000 < self.redis.pttl("cello:rl:rl2:1.2.3.4") <= 45_000)
        self.assertEqual(self.redis.ttl("cello:rl:rl1:1.2.3.4"), 30)
        other = RedisRateLimitStore(self.server.url, prefix="app2:")
        self.addCleanup(other.close)
        other.hit("x", RateLimitConfig.sliding_window(1, 2), 0.0)
        self.assertEqual(self.redis.ttl("app2:x"), 2)

    def test_client_argument_is_used(self) -> None:
        """§2.14 stores: `client=` takes any redis-py client instead of a URL."""
        store = RedisRateLimitStore(client=self.redis, prefix="via-client:")
        store.hit("k", RateLimitConfig(1, 60), 0.0)
        self.assertEqual(self.redis.exists("via-client:k"), 1)

    def test_bad_arguments(self) -> None:
        """§2.14 stores: a non-Redis URL or a non-positive timeout is a ValueError at construction."""
        self.assertRaises(ValueError, RedisRateLimitStore, "http://localhost:6379")
        self.assertRaises(ValueError, RedisRateLimitStore, self.server.url, timeout=0)


def limited_app(url: str, clock: Clock, **store_kw: object) -> App:
    app = App(clock=clock)
    store = RedisRateLimitStore(url, **store_kw)
    cfg = RateLimitConfig(3, 60, store=store)

    @app.get("/limited", rate_limit=cfg)
    def limited(request):
        return {"ok": True}

    return app


@pytest.mark.live
class MiddlewareTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = flushed(self)
        self.clock = Clock()
        self.clock.advance(1000)

    def test_headers_and_429_through_the_middleware(self) -> None:
        """§2.14 r3-r4: headers on every response, then 429 with Retry-After and retry_after."""
        client = limited_app(self.server.url, self.clock).test_client()
        remaining = [client.get("/limited").headers.get("X-RateLimit-Remaining") for _ in range(3)]
        self.assertEqual(remaining, ["2", "1", "0"])
        resp = client.get("/limited")
        self.assertEqual(resp.status_code, 429)
        self.assertEqual(resp.headers.get("Retry-After"), "60")
        self.assertEqual(resp.json()["retry_after"], 60)
        self.assertEqual(resp.headers.get("X-RateLimit-Limit"), "3")

    def test_two_apps_share_one_limit(self) -> None:
        """§2.14 stores: two processes' limiters (same route) share counters through Redis."""
        a = limited_app(self.server.url, self.clock).test_client()
        b = limited_app(self.server.url, self.clock).test_client()
        statuses = [c.get("/limited").status_code for c in (a, b, a, b, a, b)]
        self.assertEqual(statuses, [200, 200, 200, 429, 429, 429])

    def test_outage_is_a_503_then_recovers(self) -> None:
        """§2.14 stores: Redis down -> 503 standard body naming the shared store, no internals leaked."""
        client = limited_app(self.server.url, self.clock).test_client()
        self.assertEqual(client.get("/limited").status_code, 200)
        self.server.stop()
        self.addCleanup(self.server.restart)
        resp = client.get("/limited")
        self.assertEqual(resp.status_code, 503)
        body = resp.json()
        self.assertEqual(body["error"], "Service Unavailable")
        self.assertEqual(body["status"], 503)
        self.assertIn("Shared store unavailable", body["detail"])
        self.assertNotIn(str(self.server.port), resp.text)
        self.assertEqual(resp.headers.get("Retry-After"), "1")

    def test_fail_open_lets_requests_through(self) -> None:
        """§2.14 stores: fail_open=True lets requests through uncounted while Redis is down."""
        client = limited_app(self.server.url, self.clock, fail_open=True).test_client()
        self.server.stop()
        self.addCleanup(self.server.restart)
        self.assertEqual([client.get("/limited").status_code for _ in range(5)], [200] * 5)

    def test_no_cluster_warning_for_redis(self) -> None:
        """§2.20 cluster: a Redis-backed limiter keeps no per-process state, so no warning."""
        store = RedisRateLimitStore(self.server.url)
        self.assertIsNone(RateLimit(RateLimitConfig(3, 60, store=store)).cluster_warning())
        self.assertIsNotNone(RateLimit(RateLimitConfig(3, 60)).cluster_warning())
        app = limited_app(self.server.url, self.clock)
        self.assertEqual(route_cluster_warnings(app), [])


class UrlTests(SynchronousTestCase):
    def test_url_forms(self) -> None:
        """§2.14 stores: redis:// host/port/db and password, rediss:// TLS; repr and logs hide the password."""
        import redis

        store = RedisRateLimitStore("rediss://:s3cret@cache.example:6380/2", timeout=0.25)
        pool = store.client.connection_pool
        self.assertTrue(issubclass(pool.connection_class, redis.SSLConnection))
        kwargs = pool.connection_kwargs
        self.assertEqual(
            (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]),
            ("cache.example", 6380, 2, "s3cret"),
        )
        self.assertEqual((kwargs["socket_timeout"], kwargs["socket_connect_timeout"]), (0.25, 0.25))
        self.assertNotIn("s3cret", repr(store))
        plain = RedisRateLimitStore("redis://user:pw@127.0.0.1:6379/0")
        self.assertFalse(
            issubclass(plain.client.connection_pool.connection_class, redis.SSLConnection)
        )
        self.assertNotIn("pw@", repr(plain))
