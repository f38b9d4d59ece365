"""JWT hostile inputs (acceptance 2) and the verified-token cache (acceptance 4), SPEC §2.10."""

from __future__ import annotations

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import (
    JwtConfig,
)
from cello_twisted.middleware import _jwt_tokens
from tests._support.auth import (
    EPOCH,
    OTHER_SECRET,
    RSA_PUBLIC,
    SECRET,
    assert_no_leak,
    bearer,
    forge_hs,
    strict_app,
    unsigned,
)


class HostileTests(SynchronousTestCase):
    """Acceptance 2: every hostile token is a 401 (never 500) and nothing leaks."""

    def setUp(self) -> None:
        self.app, self.auth = strict_app()
        self.client = self.app.test_client()

    def assert_refused(self, headers: dict[str, str], reason: str | None = None) -> None:
        response = self.client.get("/me", headers=headers)
        self.assertEqual(response.status_code, 401, headers)
        assert_no_leak(self, response, SECRET, headers.get("Authorization", "")[7:][:40] or None)
        if reason is not None:
            self.assertIn(f'error_description="{reason}"', response.headers.get("www-authenticate"))

    def test_missing_token(self) -> None:
        """§2.10 r13: no Authorization header → 401."""
        self.assert_refused({})

    def test_expired(self) -> None:
        """§2.10 r7: exp in the past → 401 expired (also for a token cached while valid)."""
        token = self.auth.create_token({"sub": "u"}, expires_in=10)
        self.assertEqual(self.client.get("/me", headers=bearer(token)).status_code, 200)
        self.app.clock.advance(10)
        self.assert_refused(bearer(token), "expired")

    def test_other_secret(self) -> None:
        """§2.10 r7: a token signed with another secret → 401 invalid_signature."""
        token = pyjwt.encode({"sub": "u", "exp": EPOCH + 60}, OTHER_SECRET, algorithm="HS256")
        self.assert_refused(bearer(token), "invalid_signature")

    def test_alg_none(self) -> None:
        """§2.10 r1/r7: alg none (any case), unsigned → 401."""
        self.assert_refused(bearer(unsigned({"sub": "u", "exp": EPOCH + 60})))
        self.assert_refused(
            bearer(forge_hs({"alg": "NONE"}, {"sub": "u", "exp": EPOCH + 60}, SECRET))
        )

    def test_other_hmac_algorithm(self) -> None:
        """§2.10 r7: header alg must equal the configured one (HS512 with the right key → 401)."""
        token = pyjwt.encode({"sub": "u", "exp": EPOCH + 60}, SECRET * 2, algorithm="HS512")
        self.assert_refused(bearer(token), "invalid_signature")

    def test_key_confusion_hs256_with_rs_public_key(self) -> None:
        """§2.10 r7: HS256 token MACed with the RS256 public key → 401 on an RS256 app."""
        app, auth = strict_app(JwtConfig(secret=RSA_PUBLIC, algorithm="RS256"))
        token = forge_hs(
            {"alg": "HS256", "typ": "JWT"}, {"sub": "u", "exp": EPOCH + 60}, RSA_PUBLIC
        )
        response = app.test_client().get("/me", headers=bearer(token))
        self.assertEqual(response.status_code, 401)
        assert_no_leak(self, response)

    def test_tampered_payload(self) -> None:
        """§2.10 r7: payload changed, original signature kept → 401."""
        token = self.auth.create_token({"sub": "u", "roles": ["user"]})
        header, _, signature = token.split(".")
        forged = forge_hs(
            {"alg": "HS256"}, {"sub": "admin", "roles": ["admin"], "exp": EPOCH + 60}, b"x"
        ).split(".")[1]
        self.assert_refused(bearer(f"{header}.{forged}.{signature}"), "invalid_signature")

    def test_kid_and_jku_ignored(self) -> None:
        """§2.10 r7: kid/jku headers never select a key: an attacker-keyed token fails, ours passes."""
        attacker = pyjwt.encode(
            {"sub": "u", "exp": EPOCH + 60},
            OTHER_SECRET,
            algorithm="HS256",
            headers={"kid": "../../dev/null", "jku": "https://evil.example/jwks.json"},
        )
        self.assert_refused(bearer(attacker), "invalid_signature")
        ours = pyjwt.encode(
            {"sub": "u", "exp": EPOCH + 60},
            SECRET,
            algorithm="HS256",
            headers={"kid": "x", "jku": "https://evil.example/"},
        )
        self.assertEqual(self.client.get("/me", headers=bearer(ours)).status_code, 200)

    def test_garbage_authorization_headers(self) -> None:
        """§2.10 r13: garbage Authorization values → 401, never 500."""
        for value in (
            "Bearer",
            "Bearer ",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Basic dXNlcjpwYXNz",
            "Bearer \u00e9\u00e9.\u00e9",
            "Bearer " + "A" * 8192,
            "x" * 8192,
            "Bearer ....",
            "Bearer e30.e30.e30",
        ):
            self.assert_refused({"Authorization": value})

    def test_non_numeric_exp_and_missing_exp(self) -> None:
        """§2.10 r7: exp must be present and numeric."""
        for payload in (
            {"sub": "u"},
            {"sub": "u", "exp": "never"},
            {"sub": "u", "exp": True},
            {"sub": "u", "exp": EPOCH + 60, "nbf": "x"},
        ):
            self.assert_refused(bearer(pyjwt.encode(payload, SECRET, algorithm="HS256")))

    def test_not_before(self) -> None:
        """§2.10 r7: nbf in the future → 401 until it arrives (leeway applies)."""
        token = pyjwt.encode(
            {"sub": "u", "exp": EPOCH + 600, "nbf": EPOCH + 100}, SECRET, algorithm="HS256"
        )
        self.assert_refused(bearer(token), "invalid_claims")
        self.app.clock.advance(100)
        self.assertEqual(self.client.get("/me", headers=bearer(token)).status_code, 200)

    def test_revoked(self) -> None:
        """§2.10 r10: revoked tokens get 401 from the next request on (cached or not)."""
        token = self.auth.create_token({"sub": "u"})
        self.assertEqual(self.client.get("/me", headers=bearer(token)).status_code, 200)
        self.auth.revoke(token)
        self.assert_refused(bearer(token), "revoked")

    def test_refresh_token_as_access(self) -> None:
        """§2.10 r7: a refresh token on an access route → 401 wrong_type."""
        self.assert_refused(bearer(self.auth.create_refresh_token({"sub": "u"})), "wrong_type")


class CacheTests(SynchronousTestCase):
    """Acceptance 4: a repeated token costs a dict lookup, not a PyJWT decode."""

    def setUp(self) -> None:
        self.calls = 0
        real = _jwt_tokens.pyjwt.decode

        def counting(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return real(*args, **kwargs)

        self.patch(_jwt_tokens.pyjwt, "decode", counting)

    def test_repeat_is_not_decoded_again(self) -> None:
        """§2.10 r7: the second request with the same token does not decode it again."""
        app, auth = strict_app()
        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        for _ in range(3):
            self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
        self.assertEqual(self.calls, 1)

    def test_invalid_tokens_not_cached(self) -> None:
        """Only verified tokens enter the cache (junk cannot fill it)."""
        app, auth = strict_app()
        for _ in range(2):
            app.test_client().get("/me", headers=bearer("a.b.c"))
        self.assertEqual(self.calls, 2)
        self.assertEqual(len(auth._cache), 0)

    def test_cache_is_bounded(self) -> None:
        """The cache never holds more than its entry bound (oldest evicted first)."""
        app, auth = strict_app()
        auth._cache.max_entries = 3
        tokens = [auth.create_token({"sub": str(i)}) for i in range(5)]
        for token in tokens:
            auth.decode(token)
        self.assertEqual(list(auth._cache), tokens[2:])

    def test_cached_claims_cannot_be_poisoned(self) -> None:
        """A handler mutating its claims never changes what the next request sees."""
        app, auth = strict_app()

        @app.get("/mutate")
        def mutate(request: object) -> dict:
            claims = request.jwt_claims  # type: ignore[attr-defined]
            before = dict(claims)
            claims["sub"] = "admin"
            return before

        token = auth.create_token({"sub": "u"})
        client = app.test_client()
        self.assertEqual(client.get("/mutate", headers=bearer(token)).json()["sub"], "u")
        self.assertEqual(client.get("/mutate", headers=bearer(token)).json()["sub"], "u")
