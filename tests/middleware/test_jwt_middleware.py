"""JWT middleware: strict/optional modes, token sources, skip paths, stores (SPEC §2.10 r11-r17)."""

from __future__ import annotations

import warnings

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import (
    App,
    InvalidTokenError,
    JwtConfig,
    UnauthorizedError,
)
from cello_twisted.middleware import JwtAuth
from cello_twisted.stores import MemoryTokenBlacklist
from tests._support.auth import (
    EPOCH,
    OTHER_SECRET,
    SECRET,
    bearer,
    clock_at,
    strict_app,
)


class MiddlewareTests(SynchronousTestCase):
    def test_strict_success_sets_context_user_and_token(self) -> None:
        """§2.10 r12: claims in context[claims_key] and context[user_key]; request.jwt_token."""
        app, auth = strict_app()
        seen = {}

        @app.get("/ctx")
        def ctx(request: object) -> dict:
            seen.update(user=request.context["user"], token=request.jwt_token)  # type: ignore[attr-defined]
            return {}

        token = auth.create_token({"sub": "u"})
        self.assertEqual(app.test_client().get("/ctx", headers=bearer(token)).status_code, 200)
        self.assertEqual((seen["user"]["sub"], seen["token"]), ("u", token))

    def test_existing_user_not_overwritten(self) -> None:
        """§2.10 r12: context[user_key] is set only when not already set."""
        app = App(clock=clock_at())

        @app.middleware
        def preset(request, call_next):  # type: ignore[no-untyped-def]
            request.context["user"] = {"sub": "preset"}
            return call_next(request)

        auth = app.use(JwtAuth(JwtConfig(secret=SECRET)))

        @app.get("/u")
        def u(request: object) -> dict:
            return request.context["user"]  # type: ignore[attr-defined]

        token = auth.create_token({"sub": "jwt"})
        self.assertEqual(
            app.test_client().get("/u", headers=bearer(token)).json(), {"sub": "preset"}
        )

    def test_strict_missing_token_is_401_with_realm(self) -> None:
        """§2.10 r13/r17: strict + no token → 401, WWW-Authenticate Bearer realm, handler not called."""
        app, auth = strict_app(realm="shop")
        response = app.test_client().get("/me")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.headers.get("www-authenticate"), 'Bearer realm="shop"')

    def test_skip_paths_prefix_rule_and_optional_population(self) -> None:
        """§2.10 r14/r16: skipped paths run without a token; a valid token still populates."""
        app, auth = strict_app(skip_paths=["/public"])
        client = app.test_client()
        self.assertEqual(client.get("/public/info").json(), {"claims": None})
        token = auth.create_token({"sub": "u"})
        self.assertEqual(
            client.get("/public/info", headers=bearer(token)).json()["claims"]["sub"], "u"
        )
        self.assertEqual(
            client.get("/public/info", headers=bearer("junk")).json(), {"claims": None}
        )
        self.assertIs(auth.skip_path("/login"), auth)

    def test_optional_mode_enable_jwt(self) -> None:
        """§2.10 example: enable_jwt is optional; jwt_claims answers 401 without a token."""
        app = App(clock=clock_at())
        app.enable_jwt(JwtConfig(secret=SECRET))

        @app.post("/login")
        def login(request: object) -> dict:
            return {"token": app.jwt.create_token({"sub": "u"})}

        @app.get("/me")
        def me(request: object) -> dict:
            return {"sub": request.jwt_claims["sub"]}  # type: ignore[attr-defined]

        client = app.test_client()
        token = client.post("/login").json()["token"]
        self.assertEqual(client.get("/me", headers=bearer(token)).json(), {"sub": "u"})
        response = client.get("/me")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.headers.get("www-authenticate"), 'Bearer realm="api"')
        bad = client.get("/me", headers=bearer("a.b.c"))
        self.assertEqual(bad.status_code, 401)
        self.assertIn('error="invalid_token"', bad.headers.get("www-authenticate"))

    def test_enable_jwt_strict_equivalent(self) -> None:
        """§2.10 r16: enable_jwt(cfg, required=True, skip_paths=[...]) is strict with skips."""
        app = App(clock=clock_at())
        auth = app.enable_jwt(JwtConfig(secret=SECRET), required=True, skip_paths=["/open"])

        @app.get("/open")
        def open_(request: object) -> str:
            return "ok"

        @app.get("/closed")
        def closed(request: object) -> str:
            return "ok"

        client = app.test_client()
        self.assertEqual(client.get("/open").status_code, 200)
        self.assertEqual(client.get("/closed").status_code, 401)
        self.assertIs(app.jwt, auth)

    def test_jwt_claims_without_middleware(self) -> None:
        """§2.10 r15: request.jwt_claims with no JWT middleware is a RuntimeError (→ 500)."""
        app = App()

        @app.get("/x")
        def x(request: object) -> object:
            try:
                return request.jwt_claims  # type: ignore[attr-defined]
            except RuntimeError:
                return "runtime"

        self.assertEqual(app.test_client().get("/x").text, "runtime")
        with self.assertRaises(RuntimeError):
            _ = App().jwt

    def test_token_sources_order(self) -> None:
        """§2.10 r11: header (prefix case-insensitive), then query_param, then cookie."""
        app, auth = strict_app(query_param="access_token", cookie="jwt")
        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        self.assertEqual(
            client.get("/me", headers={"Authorization": "bearer " + token}).status_code, 200
        )
        self.assertEqual(client.get("/me", params={"access_token": token}).status_code, 200)
        self.assertEqual(client.get("/me", cookies={"jwt": token}).status_code, 200)
        other = pyjwt.encode({"sub": "x", "exp": EPOCH + 60}, OTHER_SECRET, algorithm="HS256")
        self.assertEqual(
            client.get("/me", headers=bearer(other), params={"access_token": token}).status_code,
            401,
        )

    def test_custom_header(self) -> None:
        """§2.10 r11: header_name/header_prefix are configurable."""
        app, auth = strict_app(
            JwtConfig(secret=SECRET, header_name="X-Token", header_prefix="Token")
        )
        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        self.assertEqual(client.get("/me", headers={"X-Token": "Token " + token}).status_code, 200)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)

    def test_preflight_untouched(self) -> None:
        """§2.6 r6: a CORS preflight passes a strict JwtAuth untouched."""
        app, auth = strict_app()
        response = app.test_client().options(
            "/me", headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET"}
        )
        self.assertNotEqual(response.status_code, 401)

    def test_refresh_endpoint_reuse_is_401(self) -> None:
        """§2.10 r9: a refresh endpoint answers 401 (reason revoked) to a reused rotated token."""
        app, auth = strict_app(skip_paths=["/refresh"])
        pair = auth.create_token_pair({"sub": "u"})
        client = app.test_client()
        self.assertEqual(
            client.post("/refresh", json={"refresh_token": pair["refresh_token"]}).status_code, 200
        )
        again = client.post("/refresh", json={"refresh_token": pair["refresh_token"]})
        self.assertEqual(again.status_code, 401)
        self.assertIn('error_description="revoked"', again.headers.get("www-authenticate"))

    def test_secret_problems_and_cluster_warning(self) -> None:
        """§1 r8: secret_problems() lists short secrets; memory blacklist gives a cluster warning."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auth = JwtAuth(JwtConfig(secret="short"))
        self.assertEqual(len(auth.secret_problems()), 1)
        self.assertIn("32", auth.secret_problems()[0])
        self.assertIsNotNone(auth.cluster_warning())

        class Shared:
            def add(self, key: str, exp: float) -> None: ...

            def contains(self, key: str) -> bool:
                return False

        self.assertIsNone(JwtAuth(JwtConfig(secret=SECRET, blacklist=Shared())).cluster_warning())

    def test_strict_secrets_app_refuses_short(self) -> None:
        """§1 r8: App(strict_secrets=True) makes a short secret a ValueError."""
        app = App(strict_secrets=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = JwtConfig(secret="short")
        with self.assertRaises(ValueError):
            app.enable_jwt(config)


class StoreTests(SynchronousTestCase):
    def test_custom_store_and_deferred_contains(self) -> None:
        """§2.10 stores: a custom blacklist may answer with Deferreds."""
        from twisted.internet.defer import succeed

        class DeferredStore:
            def __init__(self) -> None:
                self.keys: dict[str, float] = {}

            def add(self, key: str, expires_at: float) -> object:
                self.keys[key] = expires_at
                return succeed(None)

            def contains(self, key: str) -> object:
                return succeed(key in self.keys)

        app, auth = strict_app(JwtConfig(secret=SECRET, blacklist=DeferredStore()))
        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        auth.revoke(token)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)

    def test_memory_blacklist_unit(self) -> None:
        """MemoryTokenBlacklist: contains until expires_at on its clock, then forgotten."""
        clock = clock_at(100)
        store = MemoryTokenBlacklist(clock=clock)
        store.add("k", 110)
        self.assertTrue(store.contains("k"))
        clock.advance(10)
        self.assertFalse(store.contains("k"))
        self.assertEqual(len(store), 0)

    def test_unauthorized_error_type(self) -> None:
        """§2.10 r8: InvalidTokenError is an UnauthorizedError with a reason."""
        self.assertTrue(issubclass(InvalidTokenError, UnauthorizedError))
