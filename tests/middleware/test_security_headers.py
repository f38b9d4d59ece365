"""Security headers on every written response, CSP builder and config checks (SPEC §2.15)."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import CSP, App, HTTPError, Response, SecurityHeadersConfig
from cello_twisted.middleware import SecurityHeaders

DEFAULTS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'self'",
}


def app_with_routes() -> App:
    app = App()

    @app.get("/ok")
    def ok(request: Any) -> dict:
        return {}

    @app.get("/boom")
    def boom(request: Any) -> dict:
        raise RuntimeError("boom")

    @app.get("/own")
    def own(request: Any) -> Response:
        return Response.text("x", headers={"X-Frame-Options": "SAMEORIGIN"})

    return app


class SecurityHeadersTests(SynchronousTestCase):
    def assert_defaults(self, response: Any) -> None:
        for name, value in DEFAULTS.items():
            self.assertEqual(response.headers.get(name), value, name)
        self.assertIsNone(response.headers.get("x-xss-protection"))

    def test_defaults_on_every_response(self) -> None:
        """§2.15 r1/r2: defaults on success, 404, 405, 500 and HTTPError responses."""
        app = app_with_routes()
        app.enable_security_headers()
        client = app.test_client()
        for path in ("/ok", "/missing", "/boom"):
            self.assert_defaults(client.get(path))
        self.assert_defaults(client.post("/ok"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_whatever_the_registration_position(self) -> None:
        """§2.15 r1: a response short-circuited by middleware registered before still gets them."""
        app = app_with_routes()

        @app.middleware
        def gate(request, call_next):  # type: ignore[no-untyped-def]
            if request.path == "/ok":
                raise HTTPError(401, "nope")
            return call_next(request)

        app.enable_security_headers()
        response = app.test_client().get("/ok")
        self.assertEqual(response.status_code, 401)
        self.assert_defaults(response)

    def test_existing_headers_kept(self) -> None:
        """§2.15 r1: headers already present are not overwritten."""
        app = app_with_routes()
        app.enable_security_headers()
        self.assertEqual(app.test_client().get("/own").headers.get("x-frame-options"), "SAMEORIGIN")

    def test_seed_config_and_options(self) -> None:
        """§2.15 r1: preload, xss_protection, permissions policy, CSP object; None/False omit."""
        app = app_with_routes()
        csp = CSP(default_src=["'self'"]).script_src("'self'", "https://cdn.example").img_src("*")
        app.enable_security_headers(
            SecurityHeadersConfig(
                hsts_preload=True,
                xss_protection=True,
                frame_options="sameorigin",
                csp=csp,
                permissions_policy="camera=()",
                referrer_policy=None,
                content_type_nosniff=False,
            )
        )
        headers = app.test_client().get("/ok").headers
        self.assertEqual(
            headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains; preload"
        )
        self.assertEqual(headers.get("x-xss-protection"), "1; mode=block")
        self.assertEqual(headers.get("x-frame-options"), "SAMEORIGIN")
        self.assertEqual(
            headers.get("content-security-policy"),
            "default-src 'self'; script-src 'self' https://cdn.example; img-src *",
        )
        self.assertEqual(headers.get("permissions-policy"), "camera=()")
        self.assertIsNone(headers.get("referrer-policy"))
        self.assertIsNone(headers.get("x-content-type-options"))

    def test_second_call_replaces(self) -> None:
        """§2.6 r5: enable_security_headers again replaces the config (one finalizer)."""
        app = app_with_routes()
        app.enable_security_headers()
        returned = app.enable_security_headers(
            SecurityHeadersConfig(hsts=False, x_frame_options="SAMEORIGIN")
        )
        self.assertIsInstance(returned, SecurityHeaders)
        headers = app.test_client().get("/ok").headers
        self.assertIsNone(headers.get("strict-transport-security"))
        self.assertEqual(headers.get_all("x-frame-options"), ["SAMEORIGIN"])
        self.assertEqual(len(app.context.finalizers), 1)

    def test_server_header_dropped(self) -> None:
        """TWISTED_NOTES §9: Twisted's Server: TwistedWeb/<version> is not disclosed."""
        app = app_with_routes()
        self.assertIsNotNone(app.test_client().get("/ok").headers.get("server"))
        app.enable_security_headers()
        self.assertIsNone(app.test_client().get("/ok").headers.get("server"))

    def test_as_plain_middleware(self) -> None:
        """app.use(SecurityHeaders(...)) applies the headers at its chain position."""
        app = app_with_routes()
        app.use(SecurityHeaders())
        self.assert_defaults(app.test_client().get("/ok"))

    def test_aliases(self) -> None:
        """§2.15 aliases: x_frame_options, x_content_type_options ("nosniff"), x_xss_protection."""
        config = SecurityHeadersConfig(
            x_frame_options="DENY", x_content_type_options="nosniff", x_xss_protection=True
        )
        self.assertTrue(config.content_type_nosniff and config.xss_protection)
        self.assertEqual(config.frame_options, "DENY")

    def test_validation(self) -> None:
        """§2.15 errors: bad frame_options/referrer_policy, negative max-age, bad preload."""
        for kwargs in (
            {"frame_options": "ALLOW-FROM x"},
            {"referrer_policy": "sometimes"},
            {"hsts_max_age": -1},
            {"hsts_preload": True, "hsts_include_subdomains": False},
            {"hsts_preload": True, "hsts_max_age": 60},
        ):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                SecurityHeadersConfig(**kwargs)
        with self.assertRaises(ValueError):
            CSP(script_src=["'self'; report-uri x"])
        with self.assertRaises(ValueError):
            CSP(unknown_src=["x"])
