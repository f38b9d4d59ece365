"""CSRF double-submit: token issue, header/form echo, HMAC signing, hostile tokens (SPEC §2.13)."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, CsrfConfig, InsecureSecretWarning
from cello_twisted.middleware import Csrf
from tests._support.auth import with_warnings

SECRET = b"c" * 32


def csrf_app(config: CsrfConfig | None = None) -> App:
    app = App()
    app.enable_csrf(config)

    @app.get("/form")
    def form(request: Any) -> dict:
        return {"token": request.csrf_token, "again": request.csrf_token}

    @app.post("/submit")
    def submit(request: Any) -> dict:
        return {"ok": True}

    @app.post("/hooks/in")
    def hook(request: Any) -> dict:
        return {"ok": True}

    return app


def issue(client: Any) -> str:
    response = client.get("/form")
    body = response.json()
    assert body["token"] == body["again"]
    return body["token"]


class CsrfTests(SynchronousTestCase):
    def test_token_issued_as_readable_cookie(self) -> None:
        """§2.13 r1: request.csrf_token creates a token and sets a non-HttpOnly cookie."""
        client = csrf_app().test_client()
        response = client.get("/form")
        header = response.headers.get("set-cookie")
        self.assertTrue(header.startswith("_csrf="))
        self.assertNotIn("HttpOnly", header)
        self.assertIn("SameSite=Lax", header)
        self.assertEqual(client.cookies["_csrf"], response.json()["token"])
        self.assertEqual(len(response.json()["token"]), 43)  # 32 random bytes, base64url
        again = client.get("/form")
        self.assertEqual(again.json()["token"], response.json()["token"])
        self.assertIsNone(again.headers.get("set-cookie"))

    def test_header_and_form_echo_pass(self) -> None:
        """§2.13 r3: the token in the header or the urlencoded form field passes."""
        client = csrf_app().test_client()
        token = issue(client)
        self.assertEqual(client.post("/submit", headers={"X-CSRF-Token": token}).status_code, 200)
        self.assertEqual(client.post("/submit", data={"_csrf": token, "x": "1"}).status_code, 200)

    def test_multipart_form_field(self) -> None:
        """§2.13 r3: a multipart form field carries the token too."""
        client = csrf_app().test_client()
        token = issue(client)
        response = client.post(
            "/submit", data={"_csrf": token}, files={"f": ("a.txt", b"hi", "text/plain")}
        )
        self.assertEqual(response.status_code, 200)

    def test_missing_wrong_and_cross_cookie_tokens(self) -> None:
        """§2.13 r3 / acceptance 2: missing, wrong and cross-cookie tokens → 403, handler not called."""
        client = csrf_app().test_client()
        token = issue(client)
        other = csrf_app().test_client()
        other_token = issue(other)
        cases = [
            {},
            {"headers": {"X-CSRF-Token": token[:-1] + ("A" if token[-1] != "A" else "B")}},
            {"headers": {"X-CSRF-Token": other_token}},
            {"headers": {"X-CSRF-Token": ""}},
            {"headers": {"X-CSRF-Token": "x" * 5000}},
            {"data": {"_csrf": other_token}},
        ]
        for kwargs in cases:
            response = client.post("/submit", **kwargs)
            self.assertEqual(response.status_code, 403, kwargs)
            self.assertEqual(
                response.json(),
                {"error": "Forbidden", "status": 403, "detail": "CSRF token validation failed"},
            )
        no_cookie = csrf_app().test_client()
        self.assertEqual(
            no_cookie.post("/submit", headers={"X-CSRF-Token": token}).status_code, 403
        )

    def test_safe_methods_and_exempt_paths(self) -> None:
        """§2.13 r3: safe methods and exempt paths (prefix rule) need no token."""
        client = csrf_app(CsrfConfig(exempt_paths=["/hooks"])).test_client()
        self.assertEqual(client.get("/form").status_code, 200)
        self.assertEqual(client.post("/hooks/in").status_code, 200)
        self.assertEqual(client.post("/submit").status_code, 403)

    def test_signed_tokens(self) -> None:
        """§2.13 r2: with a secret tokens are value.HMAC; forged or foreign-signed tokens fail."""
        app = csrf_app(CsrfConfig(secret=SECRET))
        client = app.test_client()
        token = issue(client)
        value, _, signature = token.partition(".")
        self.assertTrue(value and signature)
        self.assertEqual(client.post("/submit", headers={"X-CSRF-Token": token}).status_code, 200)
        forged = value[:-1] + ("A" if value[-1] != "A" else "B") + "." + signature
        response = client.post(
            "/submit", headers={"X-CSRF-Token": forged}, cookies={"_csrf": forged}
        )
        self.assertEqual(response.status_code, 403)
        foreign_client = csrf_app(CsrfConfig(secret=b"d" * 32)).test_client()
        foreign = issue(foreign_client)
        response = client.post(
            "/submit", headers={"X-CSRF-Token": foreign}, cookies={"_csrf": foreign}
        )
        self.assertEqual(response.status_code, 403)
        unsigned = csrf_app().test_client()
        plain = issue(unsigned)
        self.assertEqual(
            client.post(
                "/submit", headers={"X-CSRF-Token": plain}, cookies={"_csrf": plain}
            ).status_code,
            403,
        )

    def test_invalid_cookie_is_replaced(self) -> None:
        """§2.13 r1: csrf_token returns the valid cookie token or creates a new one."""
        client = csrf_app(CsrfConfig(secret=SECRET)).test_client()
        response = client.get("/form", cookies={"_csrf": "forged.token"})
        self.assertNotEqual(response.json()["token"], "forged.token")
        self.assertIsNotNone(response.headers.get("set-cookie"))

    def test_runtime_error_without_csrf(self) -> None:
        """§2.13 r1: request.csrf_token without CSRF enabled raises RuntimeError."""
        app = App()

        @app.get("/t")
        def t(request: Any) -> str:
            try:
                return request.csrf_token
            except RuntimeError:
                return "runtime"

        self.assertEqual(app.test_client().get("/t").text, "runtime")

    def test_short_secret_policy(self) -> None:
        """§1 r8 / §2.13: a short CSRF secret warns; empty is a ValueError; strict_secrets refuses."""
        config, caught = with_warnings(CsrfConfig, secret="short")
        self.assertEqual(caught, [InsecureSecretWarning])
        self.assertEqual(len(Csrf(config).secret_problems()), 1)
        with self.assertRaises(ValueError):
            CsrfConfig(secret="")
        with self.assertRaises(ValueError):
            App(strict_secrets=True).enable_csrf(config)

    def test_preflight_untouched(self) -> None:
        """§2.6 r6: a CORS preflight passes CSRF untouched."""
        app = csrf_app()
        response = app.test_client().options(
            "/submit",
            headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"},
        )
        self.assertNotEqual(response.status_code, 403)
