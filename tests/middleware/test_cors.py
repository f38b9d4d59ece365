"""CORS (SPEC §2.7): origin matching, preflights on any path, labels on every response."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, CorsConfig, RateLimitConfig, UnauthorizedError
from cello_twisted.middleware import Cors

ORIGIN = "https://app.example"


def preflight(origin=ORIGIN, method="GET"):
    return {"Origin": origin, "Access-Control-Request-Method": method}


def cors_app(**fields):
    app = App(clock=Clock())
    app.enable_cors(**fields)
    calls = []

    @app.get("/data")
    def data(request):
        calls.append(request.method)
        return {"ok": True}

    @app.options("/data")
    def data_options(request):
        calls.append("OPTIONS")
        return "handler"

    @app.get("/private")
    def private(request):
        raise UnauthorizedError()

    @app.get("/crash")
    def crash(request):
        raise RuntimeError("crash")

    return app, calls


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """§2.7: CorsConfig defaults."""
        config = CorsConfig()
        self.assertEqual(config.origins, ("*",))
        self.assertEqual(config.methods, ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"))
        self.assertEqual(config.headers, ("Content-Type", "Authorization", "Accept", "Origin", "X-Requested-With"))
        self.assertEqual((config.credentials, config.max_age, config.expose_headers), (False, 86400, ()))

    def test_errors(self):
        """§2.7 errors: credentials with "*" and a negative max_age are ValueErrors."""
        with self.assertRaises(ValueError):
            CorsConfig(credentials=True)
        with self.assertRaises(ValueError):
            CorsConfig(origins=[ORIGIN], max_age=-1)
        with self.assertRaises(ValueError):
            Cors(origins=["*"], credentials=True)

    def test_enable_returns_cors(self):
        """§2.6 r5: enable_cors returns the middleware; config or fields both accepted."""
        app = App()
        self.assertIsInstance(app.enable_cors(CorsConfig(origins=[ORIGIN])), Cors)
        self.assertEqual(app.enable_cors(origins=["https://b.example"]).config.origins, ("https://b.example",))
        self.assertEqual(len([m for m in app.middleware if isinstance(m, Cors)]), 1)


class OriginTests(SynchronousTestCase):
    def test_wildcard_without_credentials(self):
        """§2.7 r1: "*" without credentials -> Access-Control-Allow-Origin: *."""
        app, _ = cors_app()
        r = app.test_client().get("/data", headers={"Origin": "https://any.example"})
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        self.assertNotIn("Vary", r.headers)

    def test_explicit_origin_echoed_with_vary(self):
        """§2.7 r1: explicit origins -> the request Origin is echoed + Vary: Origin."""
        app, _ = cors_app(origins=[ORIGIN])
        r = app.test_client().get("/data", headers={"Origin": ORIGIN})
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], ORIGIN)
        self.assertIn("Origin", r.headers["Vary"])

    def test_exact_match_scheme_host_port(self):
        """§2.7 r1: scheme, host and port must all match (default ports are equivalent)."""
        app, _ = cors_app(origins=["https://app.example", "http://localhost:3000"])
        client = app.test_client()
        for origin in ("http://app.example", "https://app.example:8443", "https://evil.app.example",
                       "https://app.example.evil", "http://localhost:3001", "null"):
            self.assertNotIn("Access-Control-Allow-Origin", client.get("/data", headers={"Origin": origin}).headers, origin)
        for origin in ("https://app.example", "https://app.example:443", "http://localhost:3000"):
            self.assertEqual(client.get("/data", headers={"Origin": origin}).headers["Access-Control-Allow-Origin"], origin)

    def test_credentials_and_expose(self):
        """§2.7 r4: allowed origins also get Allow-Credentials and Expose-Headers."""
        app, _ = cors_app(origins=[ORIGIN], credentials=True, expose_headers=["X-Total", "X-Page"])
        r = app.test_client().get("/data", headers={"Origin": ORIGIN})
        self.assertEqual(r.headers["Access-Control-Allow-Credentials"], "true")
        self.assertEqual(r.headers["Access-Control-Expose-Headers"], "X-Total, X-Page")

    def test_no_origin_or_other_origin_no_headers(self):
        """§2.7 r4: requests without an allowed Origin get no CORS headers."""
        app, _ = cors_app(origins=[ORIGIN], credentials=True)
        client = app.test_client()
        for headers in ({}, {"Origin": "https://evil.example"}):
            r = client.get("/data", headers=headers)
            self.assertEqual(r.status_code, 200)
            self.assertFalse([h for h in r.headers if h.startswith("access-control")])


class PreflightTests(SynchronousTestCase):
    def test_preflight_routed_path(self):
        """§2.7 r2: allowed preflight -> 200, empty body, all Allow-* headers; handler not called."""
        app, calls = cors_app(origins=[ORIGIN], credentials=True, max_age=600)
        r = app.test_client().options("/data", headers=preflight(method="PUT"))
        self.assertEqual((r.status_code, r.content), (200, b""))
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], ORIGIN)
        self.assertEqual(r.headers["Access-Control-Allow-Methods"], "GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD")
        self.assertEqual(r.headers["Access-Control-Allow-Headers"], "Content-Type, Authorization, Accept, Origin, X-Requested-With")
        self.assertEqual(r.headers["Access-Control-Max-Age"], "600")
        self.assertEqual(r.headers["Access-Control-Allow-Credentials"], "true")
        self.assertEqual(calls, [])

    def test_preflight_unrouted_path(self):
        """§2.7 r2: preflights are answered on any path, routed or not."""
        app, _ = cors_app()
        r = app.test_client().options("/no/such/path", headers=preflight())
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")

    def test_preflight_refused(self):
        """§2.7 r3: other origin or method -> 403 without CORS headers."""
        app, calls = cors_app(origins=[ORIGIN], methods=["GET", "POST"])
        client = app.test_client()
        for headers in (preflight(origin="https://evil.example"), preflight(method="DELETE")):
            r = client.options("/data", headers=headers)
            self.assertEqual(r.status_code, 403)
            self.assertEqual(r.json()["status"], 403)
            self.assertFalse([h for h in r.headers if h.startswith("access-control")])
        self.assertEqual(calls, [])

    def test_plain_options_reaches_handler(self):
        """§2.7: OPTIONS without Access-Control-Request-Method is not a preflight."""
        app, calls = cors_app()
        r = app.test_client().options("/data", headers={"Origin": ORIGIN})
        self.assertEqual(r.text, "handler")
        self.assertEqual(calls, ["OPTIONS"])

    def test_blueprint_cors_answers_preflight(self):
        """§2.4 r4: blueprint CORS answers preflights on its own routes only."""
        app = App(clock=Clock())
        bp = Blueprint("/api")
        bp.enable_cors(origins=[ORIGIN])
        bp.post("/items")(lambda request: "created")
        app.get("/outside")(lambda request: "outside")
        app.register_blueprint(bp)
        client = app.test_client()
        self.assertEqual(client.options("/api/items", headers=preflight(method="POST")).status_code, 200)
        r = client.options("/outside", headers=preflight())
        self.assertNotIn("Access-Control-Allow-Origin", r.headers)


class DownstreamTests(SynchronousTestCase):
    def test_error_responses_labelled(self):
        """§2.7 r4 / §2.24 r5: downstream 401, 404, 405 and 500 carry the CORS headers."""
        app, _ = cors_app(origins=[ORIGIN])
        client = app.test_client()
        for path, method, status in (("/private", "GET", 401), ("/nope", "GET", 404),
                                     ("/data", "DELETE", 405), ("/crash", "GET", 500)):
            r = client.request(method, path, headers={"Origin": ORIGIN})
            self.assertEqual(r.status_code, status)
            self.assertEqual(r.headers["Access-Control-Allow-Origin"], ORIGIN, path)
        self.flushLoggedErrors(RuntimeError)

    def test_429_labelled(self):
        """§2.7 r4: a downstream rate-limit 429 carries the CORS headers."""
        app, _ = cors_app(origins=[ORIGIN])
        app.enable_rate_limit(RateLimitConfig(1, 60))
        client = app.test_client()
        client.get("/data", headers={"Origin": ORIGIN})
        r = client.get("/data", headers={"Origin": ORIGIN})
        self.assertEqual(r.status_code, 429)
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], ORIGIN)
