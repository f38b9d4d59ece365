"""The JWT hot path: a token already verified and cached, presented again (SPEC §2.10 r7-r17).

``JwtAuth`` answers that case inline, from the exact header bytes after the first
sightings. Every rule must hold on it exactly as on the first request, so each test
repeats the request enough times to reach it (first: decode; second: the header is
parsed and remembered; from the third on: the header bytes alone).
"""

from __future__ import annotations

from typing import Any

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, JwtConfig
from cello_twisted.middleware import JwtAuth
from cello_twisted.stores import MemoryTokenBlacklist
from tests._support.auth import EPOCH, SECRET, bearer, clock_at, strict_app

WARM = 4  # requests that take a token from its first sighting to the fully cached path


class FastPathTests(SynchronousTestCase):
    """A cached token keeps every per-use rule: expiry, not-before, type, revocation."""

    def setUp(self) -> None:
        self.app, self.auth = strict_app(realm="shop")
        self.client = self.app.test_client()

    def get(self, token: str, path: str = "/me") -> Any:
        return self.client.get(path, headers=bearer(token))

    def warm(self, token: str) -> None:
        for _ in range(WARM):
            response = self.get(token)
            self.assertEqual(response.status_code, 200, response.text)

    def assert_refused(self, token: str, reason: str) -> None:
        response = self.get(token)
        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            response.headers.get("www-authenticate"),
            f'Bearer realm="shop", error="invalid_token", error_description="{reason}"',
        )

    def test_claims_context_user_and_token_on_every_request(self) -> None:
        """§2.10 r12/r15: each cached request sees the claims, context and request.jwt_token."""
        seen: list[tuple[Any, ...]] = []

        @self.app.get("/all")
        def everything(request: Any) -> dict:
            seen.append(
                (request.jwt_claims, request.context["jwt_claims"], request.context["user"], request.jwt_token)
            )
            return {}

        token = self.auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(self.get(token, "/all").status_code, 200)
        for claims, in_context, user, seen_token in seen:
            self.assertEqual(claims["sub"], "u")
            self.assertIs(in_context, claims)
            self.assertIs(user, claims)
            self.assertEqual(seen_token, token)

    def test_handlers_cannot_poison_the_cached_claims(self) -> None:
        """A handler mutating its claims (or the context's) never changes the next request's."""

        @self.app.get("/mutate")
        def mutate(request: Any) -> dict:
            before = {"sub": request.jwt_claims["sub"], "ctx": request.context["user"]["sub"]}
            request.jwt_claims["sub"] = "admin"
            request.context["user"]["sub"] = "root"
            return before

        token = self.auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(self.get(token, "/mutate").json(), {"sub": "u", "ctx": "u"})

    def test_expiry_applies_to_a_cached_token(self) -> None:
        """§2.10 r7: a cached token is refused once its exp passes (401 expired)."""
        token = self.auth.create_token({"sub": "u"}, expires_in=10)
        self.warm(token)
        self.app.clock.advance(10)
        for _ in range(2):
            self.assert_refused(token, "expired")

    def test_leeway_applies_to_a_cached_token(self) -> None:
        """§2.10 r7: exp counts with the leeway: valid until exp + leeway, not after."""
        app, auth = strict_app(JwtConfig(secret=SECRET, leeway=5))
        client = app.test_client()
        token = auth.create_token({"sub": "u"}, expires_in=10)
        for _ in range(WARM):
            self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        app.clock.advance(14)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        app.clock.advance(1)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)

    def test_not_before_applies_to_a_cached_token(self) -> None:
        """§2.10 r7: a token with nbf is accepted only from nbf on, however often it was seen."""
        token = pyjwt.encode({"sub": "u", "exp": EPOCH + 600, "nbf": EPOCH + 100}, SECRET, algorithm="HS256")
        for _ in range(WARM):
            self.assert_refused(token, "invalid_claims")
        self.app.clock.advance(100)
        self.warm(token)

    def test_revocation_applies_from_the_next_request(self) -> None:
        """§2.10 r10: revoking a cached token refuses it from the next request on."""
        token = self.auth.create_token({"sub": "u"})
        self.warm(token)
        self.auth.revoke(token)
        for _ in range(2):
            self.assert_refused(token, "revoked")

    def test_revocation_is_forgotten_at_expiry(self) -> None:
        """A revoked token stays refused until its exp, and expired after (never accepted again)."""
        token = self.auth.create_token({"sub": "u"}, expires_in=60)
        self.warm(token)
        self.auth.revoke(token)
        self.assert_refused(token, "revoked")
        self.app.clock.advance(60)
        self.assert_refused(token, "expired")

    def test_refresh_token_is_refused_every_time(self) -> None:
        """§2.10 r7: a refresh token on an access route is 401 wrong_type, cached or not."""
        token = self.auth.create_refresh_token({"sub": "u"})
        for _ in range(WARM):
            self.assert_refused(token, "wrong_type")

    def test_other_spellings_of_the_header_keep_working(self) -> None:
        """§2.10 r11: the prefix is case-insensitive and spaces around the token are ignored."""
        token = self.auth.create_token({"sub": "u"})
        for value in (f"Bearer {token}", f"bearer {token}", f"BEARER   {token}  ", f"Bearer {token}"):
            for _ in range(WARM):
                response = self.client.get("/me", headers={"Authorization": value})
                self.assertEqual(response.json(), {"sub": "u", "ctx": "u"}, value)

    def test_a_token_is_remembered_under_one_header_spelling_only(self) -> None:
        """Hostile: many spellings of one valid token cannot crowd the verified-token cache."""
        token = self.auth.create_token({"sub": "u"})
        self.warm(token)
        held = len(self.auth._cache)  # the token, and the header "Bearer <token>"
        for spaces in range(1, 40):
            value = "bEaReR" + " " * spaces + token + " " * spaces
            response = self.client.get("/me", headers={"Authorization": value})
            self.assertEqual(response.status_code, 200)
        self.assertEqual(len(self.auth._cache), held)
        self.assertLessEqual(held, 2)

    def test_skip_paths_and_optional_mode_with_a_cached_token(self) -> None:
        """§2.10 r14: a cached token populates the context on skipped paths too."""
        app, auth = strict_app(skip_paths=["/public"])
        client = app.test_client()
        token = auth.create_token({"sub": "u"})
        for _ in range(WARM):
            response = client.get("/public/info", headers=bearer(token))
            self.assertEqual(response.json()["claims"]["sub"], "u")


class CustomHeaderTests(SynchronousTestCase):
    def test_custom_header_name_and_prefix_on_the_cached_path(self) -> None:
        """§2.10: header_name/header_prefix hold on every repeat; the Authorization header is then ignored."""
        app, auth = strict_app(JwtConfig(secret=SECRET, header_name="X-Auth-Token", header_prefix="Token"))
        client = app.test_client()
        token = auth.create_token({"sub": "u7"})
        for _ in range(WARM):
            answer = client.get("/me", headers={"x-auth-token": f"Token {token}"})
            self.assertEqual(answer.status_code, 200, answer.text)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)
        self.assertEqual(client.get("/me", headers={"X-Auth-Token": f"Bearer {token}"}).status_code, 401)


class FallbackTests(SynchronousTestCase):
    """Setups the inline path does not cover still follow the rules (they take the general path)."""

    def test_subclass_overriding_call_is_honoured(self) -> None:
        """A JwtAuth subclass with its own ``__call__`` is called for every request."""
        calls: list[str] = []

        class Counting(JwtAuth):
            def __call__(self, request: Any, call_next: Any) -> Any:
                calls.append(request.path)
                return super().__call__(request, call_next)

        app = App(clock=clock_at())
        auth = app.use(Counting(JwtConfig(secret=SECRET)))

        @app.get("/me")
        def me(request: Any) -> dict:
            return {"sub": request.jwt_claims["sub"]}

        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        for _ in range(WARM):
            self.assertEqual(client.get("/me", headers=bearer(token)).json(), {"sub": "u"})
        self.assertEqual(len(calls), WARM)

    def test_custom_synchronous_blacklist_is_asked_every_time(self) -> None:
        """A custom blacklist (not MemoryTokenBlacklist) answers every request's revocation check."""
        asked: list[str] = []

        class Listing:
            def __init__(self) -> None:
                self.revoked: set[str] = set()

            def add(self, key: str, expires_at: float) -> None:
                self.revoked.add(key)

            def contains(self, key: str) -> bool:
                asked.append(key)
                return key in self.revoked

        app, auth = strict_app(JwtConfig(secret=SECRET, blacklist=Listing()))
        client = app.test_client()
        token = auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        self.assertEqual(len(asked), WARM)
        auth.revoke(token)
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)

    def test_memory_blacklist_subclass_is_asked_every_time(self) -> None:
        """A MemoryTokenBlacklist subclass overriding ``contains`` is consulted on every request."""
        asked: list[str] = []

        class Watching(MemoryTokenBlacklist):
            def contains(self, key: str) -> bool:
                asked.append(key)
                return super().contains(key)

        app, auth = strict_app(JwtConfig(secret=SECRET, blacklist=Watching()))
        client = app.test_client()
        token = auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        self.assertEqual(len(asked), WARM)

    def test_no_header_prefix(self) -> None:
        """§2.10 r11: with header_prefix="" the whole header is the token, every time."""
        app, auth = strict_app(JwtConfig(secret=SECRET, header_name="X-Token", header_prefix=""))
        client = app.test_client()
        token = auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(client.get("/me", headers={"X-Token": token}).json()["sub"], "u")
        self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 401)

    def test_query_and_cookie_tokens(self) -> None:
        """§2.10 r11: query and cookie tokens authenticate repeatedly (header absent)."""
        app, auth = strict_app(query_param="token", cookie="jwt")
        client = app.test_client()
        token = auth.create_token({"sub": "u"})
        for _ in range(WARM):
            self.assertEqual(client.get(f"/me?token={token}").json()["sub"], "u")
            self.assertEqual(client.get("/me", headers={"Cookie": f"jwt={token}"}).json()["sub"], "u")

    def test_preflight_passes_through(self) -> None:
        """A CORS preflight is not asked for a token, even with a cached one present."""
        app, auth = strict_app()
        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        headers = {**bearer(token), "Origin": "https://a.example", "Access-Control-Request-Method": "GET"}
        for _ in range(WARM):
            self.assertNotEqual(client.options("/me", headers=headers).status_code, 401)
            self.assertNotEqual(client.options("/me", headers={k: v for k, v in headers.items() if k != "Authorization"}).status_code, 401)
