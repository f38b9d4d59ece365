"""Rate limiting (SPEC §2.14): algorithms, headers, 429, the one-limiter rule, keys, exemptions."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, CorsConfig, RateLimitConfig
from cello_twisted.middleware import RateLimit
from cello_twisted.stores import RateLimitResult

PREFLIGHT = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}


def limited_app(config: RateLimitConfig) -> tuple[App, Clock]:
    clock = Clock()
    app = App(clock=clock)
    app.enable_rate_limit(config)

    @app.get("/x")
    def x(request):
        return {"ok": True}

    @app.get("/boom")
    def boom(request):
        raise RuntimeError("boom")

    return app, clock


class ConfigTests(SynchronousTestCase):
    def test_aliases_and_classmethods(self):
        """§2.14: max_requests=/window_secs=/algorithm=/key_func= are aliases; sliding_window()/token_bucket()."""
        key = lambda request: "k"  # noqa: E731
        config = RateLimitConfig(max_requests=5, window_secs=10, algorithm="token_bucket", key_func=key)
        self.assertEqual((config.requests, config.window, config.strategy, config.key), (5, 10, "token_bucket", key))
        self.assertEqual(RateLimitConfig.sliding_window(3, 1).strategy, "sliding_window")
        self.assertEqual(RateLimitConfig.token_bucket(3, 1, exempt_paths=["/h"]).exempt_paths, ("/h",))
        self.assertEqual(RateLimitConfig(1, 1).strategy, "sliding_window")

    def test_errors(self):
        """§2.14 errors: non-positive requests/window, unknown strategy, bad key -> ValueError."""
        for kwargs in (
            {"requests": 0, "window": 1},
            {"requests": -1, "window": 1},
            {"requests": 1, "window": 0},
            {"requests": 1, "window": -5},
            {"requests": 1, "window": 1, "strategy": "leaky"},
            {"requests": 1, "window": 1, "key": "cookie"},
            {"requests": 1, "window": 1, "key": 42},
        ):
            with self.assertRaises(ValueError, msg=kwargs):
                RateLimitConfig(**kwargs)

    def test_enable_returns_and_replaces(self):
        """§2.6 r5: enable_rate_limit returns the RateLimit; calling it again replaces in place."""
        app = App(clock=Clock())
        first = app.enable_rate_limit(RateLimitConfig(1, 1))
        second = app.enable_rate_limit(RateLimitConfig(2, 1))
        self.assertIsInstance(first, RateLimit)
        self.assertEqual([m for m in app.middleware if isinstance(m, RateLimit)], [second])

    def test_cluster_warning(self):
        """Memory store is per process: cluster_warning() says so; a shared store gives None."""
        self.assertIn("per worker", RateLimit(RateLimitConfig(1, 1)).cluster_warning())

        class Shared:
            shared = True

            def hit(self, key, config, now):
                return RateLimitResult(True, 1, 0, 1, 0)

        self.assertIsNone(RateLimit(RateLimitConfig(1, 1, store=Shared())).cluster_warning())


class SlidingWindowTests(SynchronousTestCase):
    def test_allows_exactly_requests_in_window(self):
        """§2.14 r1: allowed iff fewer than `requests` allowed requests in (now - window, now]."""
        app, clock = limited_app(RateLimitConfig(3, 10))
        client = app.test_client()
        self.assertEqual([client.get("/x").status_code for _ in range(4)], [200, 200, 200, 429])
        clock.advance(9.999)
        self.assertEqual(client.get("/x").status_code, 429)
        clock.advance(0.001)  # the first three are now exactly `window` old: out of the window
        self.assertEqual([client.get("/x").status_code for _ in range(4)], [200, 200, 200, 429])

    def test_rejected_requests_are_not_counted(self):
        """§2.14 r1: rejected requests don't extend the block."""
        app, clock = limited_app(RateLimitConfig(1, 10))
        client = app.test_client()
        client.get("/x")
        clock.advance(5)
        self.assertEqual(client.get("/x").status_code, 429)
        clock.advance(5)
        self.assertEqual(client.get("/x").status_code, 200)

    def test_slides_per_request(self):
        """§2.14 r1: each counted request leaves the window separately (not a fixed window)."""
        app, clock = limited_app(RateLimitConfig(2, 10))
        client = app.test_client()
        client.get("/x")
        clock.advance(6)
        client.get("/x")
        clock.advance(4)  # the first left, the second still counts
        self.assertEqual(client.get("/x").status_code, 200)
        self.assertEqual(client.get("/x").status_code, 429)

    def test_headers_on_success(self):
        """§2.14 r3: Limit = requests, Remaining, Reset = ceil seconds until the oldest leaves."""
        app, clock = limited_app(RateLimitConfig(3, 10))
        client = app.test_client()
        r = client.get("/x")
        self.assertEqual(
            (r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Reset"]),
            ("3", "2", "10"),
        )
        clock.advance(2.5)
        r = client.get("/x")
        self.assertEqual((r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Reset"]), ("1", "8"))

    def test_headers_on_error_responses(self):
        """§2.14 r3: error responses on a limited route (404, 500) carry the headers too."""
        app, _ = limited_app(RateLimitConfig(5, 10))
        client = app.test_client()
        for path, status in (("/boom", 500), ("/missing", 404)):
            r = client.get(path)
            self.assertEqual(r.status_code, status)
            self.assertEqual(r.headers.get("X-RateLimit-Limit"), "5")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_429_body_and_retry_after(self):
        """§2.14 r4: 429, standard body + retry_after, Retry-After seconds; handler not called."""
        calls = []
        clock = Clock()
        app = App(clock=clock)
        app.enable_rate_limit(RateLimitConfig(1, 30))

        @app.get("/x")
        def x(request):
            calls.append(1)
            return "ok"

        client = app.test_client()
        client.get("/x")
        clock.advance(10.2)
        r = client.get("/x")
        self.assertEqual(r.status_code, 429)
        self.assertEqual(r.json(), {"error": "Too Many Requests", "status": 429, "detail": "Rate limit exceeded", "retry_after": 20})
        self.assertEqual(r.headers["Retry-After"], "20")
        self.assertEqual((r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Reset"]), ("0", "20"))
        self.assertEqual(len(calls), 1)


class TokenBucketTests(SynchronousTestCase):
    def test_starts_full_and_refills_at_rate(self):
        """§2.14 r2: capacity `requests`, starts full, refills requests/window per second."""
        app, clock = limited_app(RateLimitConfig.token_bucket(10, 10))  # 1 token per second
        client = app.test_client()
        self.assertEqual([client.get("/x").status_code for _ in range(11)], [200] * 10 + [429])
        clock.advance(0.5)
        self.assertEqual(client.get("/x").status_code, 429)
        clock.advance(0.5)
        self.assertEqual(client.get("/x").status_code, 200)
        self.assertEqual(client.get("/x").status_code, 429)
        clock.advance(3)
        self.assertEqual([client.get("/x").status_code for _ in range(4)], [200, 200, 200, 429])

    def test_fractional_rate_adds_up(self):
        """§2.14 r2: continuous refill; ten 0.1 s steps of a 1/s bucket make one whole token."""
        app, clock = limited_app(RateLimitConfig.token_bucket(1, 1))
        client = app.test_client()
        client.get("/x")
        for _ in range(10):
            clock.advance(0.1)
        self.assertEqual(client.get("/x").status_code, 200)

    def test_capacity_is_capped(self):
        """§2.14 r2: a long idle period refills to capacity, not beyond."""
        app, clock = limited_app(RateLimitConfig.token_bucket(2, 10))
        client = app.test_client()
        clock.advance(1000)
        self.assertEqual([client.get("/x").status_code for _ in range(3)], [200, 200, 429])

    def test_headers_and_retry_after(self):
        """§2.14 r3/r4: Reset = seconds until full; Retry-After = seconds until one token."""
        app, clock = limited_app(RateLimitConfig.token_bucket(4, 20))  # one token per 5 s
        client = app.test_client()
        r = client.get("/x")
        self.assertEqual((r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Reset"]), ("3", "5"))
        for _ in range(3):
            client.get("/x")
        clock.advance(1)
        r = client.get("/x")
        self.assertEqual(r.status_code, 429)
        self.assertEqual((r.headers["Retry-After"], r.headers["X-RateLimit-Reset"]), ("4", "19"))
        self.assertEqual(r.json()["retry_after"], 4)


class OneLimiterTests(SynchronousTestCase):
    def build(self):
        clock = Clock()
        app = App(clock=clock)
        app.enable_rate_limit(RateLimitConfig(5, 60))
        api = Blueprint("/api")
        api.enable_rate_limit(RateLimitConfig(3, 60))
        inner = Blueprint("/v1")
        inner.enable_rate_limit(RateLimitConfig(2, 60))
        plain = Blueprint("/plain")

        @app.get("/top")
        def top(request):
            return "top"

        @app.get("/own", rate_limit=RateLimitConfig(1, 60))
        def own(request):
            return "own"

        @api.get("/a")
        def a(request):
            return "a"

        @api.get("/special", rate_limit=RateLimitConfig(4, 60))
        def special(request):
            return "special"

        @inner.get("/b")
        def b(request):
            return "b"

        @plain.get("/c")
        def c(request):
            return "c"

        api.register(inner)
        app.register_blueprint(api)
        app.register_blueprint(plain)
        return app, clock

    def limit_of(self, client, path):
        r = client.get(path)
        return r.status_code, r.headers.get("X-RateLimit-Limit"), r.headers.get("X-RateLimit-Remaining")

    def test_route_beats_blueprint_beats_global(self):
        """§2.14 r5: route rate_limit=, else the nearest blueprint's, else global; one set of headers."""
        app, _ = self.build()
        client = app.test_client()
        self.assertEqual(self.limit_of(client, "/own"), (200, "1", "0"))
        self.assertEqual(self.limit_of(client, "/api/special"), (200, "4", "3"))
        self.assertEqual(self.limit_of(client, "/api/v1/b"), (200, "2", "1"))
        self.assertEqual(self.limit_of(client, "/api/a"), (200, "3", "2"))
        self.assertEqual(self.limit_of(client, "/plain/c"), (200, "5", "4"))
        self.assertEqual(self.limit_of(client, "/top"), (200, "5", "3"))

    def test_counters_are_per_limiter(self):
        """§2.14 r5: exhausting the route limiter leaves the global and blueprint counters untouched."""
        app, _ = self.build()
        client = app.test_client()
        client.get("/own")
        self.assertEqual(client.get("/own").status_code, 429)
        for _ in range(2):
            client.get("/api/v1/b")
        self.assertEqual(client.get("/api/v1/b").status_code, 429)
        self.assertEqual(self.limit_of(client, "/api/a"), (200, "3", "2"))
        self.assertEqual(self.limit_of(client, "/top"), (200, "5", "4"))

    def test_global_counts_404s(self):
        """§2.14 r5: the global limiter also counts 404s."""
        app, _ = self.build()
        client = app.test_client()
        for _ in range(5):
            self.assertEqual(client.get("/nope").status_code, 404)
        r = client.get("/top")
        self.assertEqual(r.status_code, 429)

    def test_route_limit_without_global(self):
        """§2.14 r5: a route's rate_limit= works with no app-level limiter at all."""
        app = App(clock=Clock())

        @app.get("/r", rate_limit=RateLimitConfig(2, 60))
        def r(request):
            return "r"

        @app.get("/free")
        def free(request):
            return "free"

        client = app.test_client()
        self.assertEqual([client.get("/r").status_code for _ in range(3)], [200, 200, 429])
        free_response = client.get("/free")
        self.assertEqual(free_response.status_code, 200)
        self.assertNotIn("X-RateLimit-Limit", free_response.headers)

    def test_route_limiter_survives_registration(self):
        """§2.4 r2: registering more routes (live) does not reset a route limiter's counters."""
        app = App(clock=Clock())

        @app.get("/r", rate_limit=RateLimitConfig(1, 60))
        def r(request):
            return "r"

        client = app.test_client()
        client.get("/r")

        @app.get("/later")
        def later(request):
            return "later"

        self.assertEqual(client.get("/r").status_code, 429)


class KeyAndExemptionTests(SynchronousTestCase):
    def test_clients_counted_separately_by_ip(self):
        """§2.14 key None/"ip": each client IP has its own counter."""
        app, _ = limited_app(RateLimitConfig(1, 60))
        a = app.test_client(client_ip="10.0.0.1")
        b = app.test_client(client_ip="10.0.0.2")
        self.assertEqual([a.get("/x").status_code, a.get("/x").status_code], [200, 429])
        self.assertEqual(b.get("/x").status_code, 200)

    def test_ip_behind_trusted_proxy(self):
        """§2.14 + §2.2 r2: the key is request.client_ip (X-Forwarded-For from a trusted proxy)."""
        clock = Clock()
        app = App(clock=clock, trusted_proxies=["127.0.0.1"])
        app.enable_rate_limit(RateLimitConfig(1, 60))
        app.get("/x")(lambda request: "x")
        client = app.test_client()
        self.assertEqual(client.get("/x", headers={"X-Forwarded-For": "1.1.1.1"}).status_code, 200)
        self.assertEqual(client.get("/x", headers={"X-Forwarded-For": "2.2.2.2"}).status_code, 200)
        self.assertEqual(client.get("/x", headers={"X-Forwarded-For": "1.1.1.1"}).status_code, 429)

    def test_custom_key_and_none_fallback(self):
        """§2.14 key callable: its value is the key; None falls back to the IP."""
        app, _ = limited_app(RateLimitConfig(1, 60, key=lambda request: request.headers.get("x-api-key")))
        client = app.test_client()
        self.assertEqual(client.get("/x", headers={"X-Api-Key": "k1"}).status_code, 200)
        self.assertEqual(client.get("/x", headers={"X-Api-Key": "k2"}).status_code, 200)
        self.assertEqual(client.get("/x", headers={"X-Api-Key": "k1"}).status_code, 429)
        self.assertEqual(client.get("/x").status_code, 200)  # no key: the IP's own counter
        self.assertEqual(client.get("/x").status_code, 429)

    def test_exempt_paths(self):
        """§2.14 r6: exempt paths (prefix rule) are neither counted nor given headers."""
        app, _ = limited_app(RateLimitConfig(1, 60, exempt_paths=["/x"]))
        client = app.test_client()
        for _ in range(3):
            r = client.get("/x")
            self.assertEqual(r.status_code, 200)
            self.assertNotIn("X-RateLimit-Limit", r.headers)
        self.assertEqual(client.get("/boom").status_code, 500)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(client.get("/xylophone").status_code, 429)  # not under /x

    def test_preflights_not_counted(self):
        """§2.14 r6 / §2.6 r6 / seed 000: CORS preflights bypass rate limiting, whatever the order."""
        clock = Clock()
        app = App(clock=clock)
        app.enable_rate_limit(RateLimitConfig(1, 60))  # registered before CORS on purpose
        app.enable_cors(CorsConfig(origins=["https://a.example"]))

        @app.get("/x", rate_limit=RateLimitConfig(1, 60))
        def x(request):
            return "x"

        client = app.test_client()
        for path in ("/x", "/elsewhere"):
            for _ in range(3):
                r = client.options(path, headers=PREFLIGHT)
                self.assertEqual(r.status_code, 200)
                self.assertNotIn("X-RateLimit-Limit", r.headers)
        self.assertEqual(client.get("/x").status_code, 200)
        self.assertEqual(client.get("/elsewhere").status_code, 404)


class StampTests(SynchronousTestCase):
    """How the X-RateLimit-* headers travel with the response."""

    def test_outer_middleware_sees_and_can_change_them(self):
        """Middleware outside the limiter reads the counters from response.headers and may override them."""
        seen = []
        app = App(clock=Clock())

        @app.middleware
        def outer(request, call_next):
            def after(resp):
                seen.append(resp.headers.get("x-ratelimit-remaining"))
                resp.headers["X-RateLimit-Limit"] = "custom"
                return resp

            return call_next(request).addCallback(after)

        app.enable_rate_limit(RateLimitConfig(5, 60))
        app.get("/x")(lambda request: "x")
        r = app.test_client().get("/x")
        self.assertEqual(seen, ["4"])
        self.assertEqual((r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"]), ("custom", "4"))

    def test_handler_cannot_forge_them(self):
        """Values a handler sets under the same names are replaced by the limiter's."""
        app = App(clock=Clock())
        app.enable_rate_limit(RateLimitConfig(5, 60))
        app.get("/x")(lambda request: ("x", 200, {"X-RateLimit-Remaining": "999", "X-RateLimit-Limit": "999"}))
        r = app.test_client().get("/x")
        self.assertEqual((r.headers.get_all("x-ratelimit-limit"), r.headers.get_all("x-ratelimit-remaining")), (["5"], ["4"]))

    def test_deferred_handler(self):
        """A handler answering later still gets the headers (stamped when its Deferred fires)."""
        from twisted.internet.defer import Deferred

        clock = Clock()
        app = App(clock=clock)
        app.enable_rate_limit(RateLimitConfig.token_bucket(2, 10))

        @app.get("/later")
        def later(request):
            d = Deferred()
            clock.callLater(1, d.callback, {"ok": True})
            return d

        client = app.test_client()
        pending = client.agent.request(b"GET", b"http://localhost/later")
        client.flush()
        clock.advance(1)
        client.flush()
        response = self.successResultOf(pending)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"x-ratelimit-remaining"), [b"1"])
        self.assertEqual(response.headers.getRawHeaders(b"x-ratelimit-reset"), [b"5"])

    def test_limiter_used_as_plain_middleware(self):
        """A RateLimit called through the generic (request, call_next) protocol works the same."""
        limiter = RateLimit(RateLimitConfig(1, 60))
        app = App(clock=Clock())

        @app.middleware
        def delegate(request, call_next):
            return limiter(request, call_next)

        app.get("/x")(lambda request: "x")
        client = app.test_client()
        first, second = client.get("/x"), client.get("/x")
        self.assertEqual((first.status_code, first.headers["X-RateLimit-Remaining"]), (200, "0"))
        self.assertEqual((second.status_code, second.headers["Retry-After"]), (429, "60"))

    def test_store_subclass_overriding_hit_is_called(self):
        """A MemoryRateLimitStore subclass that overrides hit() is used as written, not bypassed."""
        from cello_twisted.stores import MemoryRateLimitStore

        calls = []

        class CountingStore(MemoryRateLimitStore):
            def hit(self, key, config, now):
                calls.append(key)
                return super().hit(key, config, now)

        app, _ = limited_app(RateLimitConfig(1, 60, store=CountingStore()))
        client = app.test_client()
        self.assertEqual([client.get("/x").status_code for _ in range(2)], [200, 429])
        self.assertEqual(len(calls), 2)
