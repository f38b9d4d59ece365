"""Rate-limit stores (SPEC §2.14): Deferred stores, exactness under concurrency, bounded memory."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, RateLimitConfig
from cello_twisted.stores import MemoryRateLimitStore, RateLimitResult
from tests.middleware.test_ratelimit import limited_app


class StoreTests(SynchronousTestCase):
    def test_deferred_store(self):
        """§2.14 custom store: hit() may return a Deferred; the response waits for it."""
        pending: list[Deferred] = []

        class SlowStore:
            def hit(self, key, config, now):
                d = Deferred()
                pending.append(d)
                return d

        app, _ = limited_app(RateLimitConfig(2, 60, store=SlowStore()))
        client = app.test_client()
        agent_d = client.agent.request(b"GET", b"http://localhost/x")
        client.flush()
        self.assertEqual(len(pending), 1)
        self.assertNoResult(agent_d)
        pending[0].callback(RateLimitResult(False, 2, 0, 7, 7))
        client.flush()
        response = self.successResultOf(agent_d)
        self.assertEqual(response.code, 429)
        self.assertEqual(response.headers.getRawHeaders(b"retry-after"), [b"7"])

    def test_concurrent_requests_exact(self):
        """Acceptance 2: 100 in-flight requests against a limit of 10 -> exactly 10 reach the handler."""
        clock = Clock()
        app = App(clock=clock)
        app.enable_rate_limit(RateLimitConfig(10, 60))
        release: list[Deferred] = []

        @app.get("/slow")
        def slow(request):
            d = Deferred()
            release.append(d)
            return d

        client = app.test_client()
        results = [client.agent.request(b"GET", b"http://localhost/slow") for _ in range(100)]
        client.flush()
        self.assertEqual(len(release), 10)  # all 100 were decided while 10 were still running
        for d in release:
            d.callback("done")
        client.flush()
        codes = [self.successResultOf(d).code for d in results]
        self.assertEqual((codes.count(200), codes.count(429)), (10, 90))

    def test_memory_bound_under_key_flood(self):
        """Acceptance 3: 100 000 distinct client keys never grow the store past max_keys."""
        store = MemoryRateLimitStore(max_keys=1000)
        config = RateLimitConfig(5, 60)
        peak = 0
        for i in range(100_000):
            store.hit(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", config, float(i) / 1000.0)
            peak = max(peak, len(store))
        self.assertEqual(peak, 1000)

    def test_memory_bound_through_the_app(self):
        """Acceptance 3: a flood of distinct client IPs through the middleware stays bounded."""
        store = MemoryRateLimitStore(max_keys=50)
        app, _ = limited_app(RateLimitConfig(1, 60, store=store, key=lambda request: request.headers.get("x-id")))
        client = app.test_client()
        for i in range(300):
            self.assertEqual(client.get("/x", headers={"X-Id": str(i)}).status_code, 200)
        self.assertEqual(len(store), 50)

    def test_idle_keys_evicted(self):
        """Idle keys (a whole window without hits) are dropped when new keys arrive."""
        store = MemoryRateLimitStore()
        config = RateLimitConfig(5, 10)
        for i in range(5):
            store.hit(f"k{i}", config, 0.0)
        store.hit("k0", config, 5.0)  # k0 stays active
        store.hit("new", config, 11.0)
        self.assertEqual(sorted(store._entries), ["k0", "new"])
        self.assertEqual(store.hit("k1", config, 11.0).remaining, 4)  # an evicted key starts afresh

    def test_sliding_window_matches_a_naive_log(self):
        """§2.14 r1/r3: over thousands of hits the compact log answers exactly like a plain list would."""
        import math
        import random

        rng = random.Random(7)
        for limit, window in ((3, 1.0), (50, 10.0), (200, 2.5)):
            store, config = MemoryRateLimitStore(), RateLimitConfig(limit, window)
            allowed: list[float] = []
            now = 1000.0
            for _ in range(5000):
                now += rng.choice((0.0, 0.001, 0.01, 0.05, 0.3, 1.5)) * window
                live = [t for t in allowed if t > now - window]
                if len(live) < limit:
                    allowed.append(now)
                    reset = max(0, math.ceil(live[0] + window - now - 1e-9)) if live else math.ceil(window - 1e-9)
                    expected = RateLimitResult(True, limit, limit - len(live) - 1, reset, 0)
                else:
                    wait = max(1, math.ceil(live[0] + window - now - 1e-9))
                    expected = RateLimitResult(False, limit, 0, wait, wait)
                allowed = [t for t in allowed if t > now - window]
                self.assertEqual(store.hit("k", config, now), expected, (limit, window, now))

    def test_default_bound(self):
        """The default memory store is bounded (max_keys=10000)."""
        self.assertEqual(MemoryRateLimitStore().max_keys, 10000)
        with self.assertRaises(ValueError):
            MemoryRateLimitStore(max_keys=0)


class SeedExampleTests(SynchronousTestCase):
    def test_seed_000_example(self):
        """Seed 000: the global rate limit example runs and sets the documented headers."""
        from cello_twisted import App as SeedApp
        from cello_twisted import RateLimitConfig as SeedConfig

        app = SeedApp(clock=Clock())
        app.enable_rate_limit(SeedConfig(
            requests=100,
            window=60,
            strategy="sliding_window",  # or "token_bucket"
        ))
        app.get("/")(lambda request: {"ok": True})
        r = app.test_client().get("/")
        self.assertEqual(
            [r.headers[h] for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")],
            ["100", "99", "60"],
        )


class RouteClusterWarningTests(SynchronousTestCase):
    def test_route_limits_reported(self):
        """Cluster mode: routes' own in-memory limits are reported by route_cluster_warnings(app)."""
        from cello_twisted.middleware.ratelimit import route_cluster_warnings

        app = App()
        app.get("/a", rate_limit=RateLimitConfig(1, 1))(lambda request: "a")
        app.get("/b")(lambda request: "b")
        warnings = route_cluster_warnings(app)
        self.assertEqual(len(warnings), 1)
        self.assertIn("GET /a", warnings[0])
