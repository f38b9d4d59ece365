"""JWT: config validation, token service, strict/optional modes, hostile tokens, the cache (SPEC §2.10)."""

from __future__ import annotations

import hashlib
import warnings

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import (
    App,
    InsecureSecretWarning,
    InvalidTokenError,
    JwtConfig,
    UnauthorizedError,
)
from cello_twisted.middleware import JwtAuth, _jwt_tokens
from cello_twisted.stores import MemoryTokenBlacklist

from ._helpers import (
    EC256_PRIVATE,
    EC256_PUBLIC,
    EC384_PRIVATE,
    EC384_PUBLIC,
    EPOCH,
    OTHER_SECRET,
    RSA_PRIVATE,
    RSA_PUBLIC,
    SECRET,
    assert_no_leak,
    clock_at,
    forge_hs,
    unsigned,
    with_warnings,
)


def strict_app(config: JwtConfig | None = None, **kw: object) -> tuple[App, JwtAuth]:
    clock = clock_at()
    app = App(clock=clock)
    auth = app.use(JwtAuth(config or JwtConfig(secret=SECRET), **kw))

    @app.get("/me")
    def me(request: object) -> dict:
        return {"sub": request.jwt_claims["sub"], "ctx": request.context.get("jwt_claims")["sub"]}  # type: ignore[attr-defined]

    @app.post("/refresh")
    def refresh(request: object) -> dict:
        return app.jwt.refresh(request.json()["refresh_token"])  # type: ignore[attr-defined]

    @app.get("/public/info")
    def info(request: object) -> dict:
        return {"claims": request.context.get("jwt_claims")}  # type: ignore[attr-defined]

    return app, auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ConfigTests(SynchronousTestCase):
    def test_algorithm_allow_list(self) -> None:
        """§2.10 r1: only HS/RS/ES listed algorithms; "none" in any case is refused."""
        for bad in ("none", "NONE", "None", "HS1", "PS256", "EdDSA", ""):
            with self.assertRaises(ValueError):
                JwtConfig(secret=SECRET, algorithm=bad)

    def test_short_hmac_secrets_warn_per_algorithm(self) -> None:
        """§1 r8 / §2.10 r2: HS256 < 32, HS384 < 48, HS512 < 64 bytes warn; long enough is silent."""
        for alg, minimum in (("HS256", 32), ("HS384", 48), ("HS512", 64)):
            config, caught = with_warnings(JwtConfig, secret=b"x" * (minimum - 1), algorithm=alg)
            self.assertEqual(caught, [InsecureSecretWarning])
            self.assertIn(str(minimum), config.secret_problems()[0])
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                self.assertEqual(JwtConfig(secret=b"x" * minimum, algorithm=alg).secret_problems(), [])

    def test_empty_secret_is_value_error(self) -> None:
        """§1 r8: an empty secret is a ValueError at construction."""
        for empty in (b"", ""):
            with self.assertRaises(ValueError):
                JwtConfig(secret=empty)
        with self.assertRaises(ValueError):
            JwtConfig()

    def test_pem_as_hmac_secret_refused(self) -> None:
        """§2.10 r2: a PEM/SSH-looking HS secret is refused (no HS/RS key confusion)."""
        for secret in (RSA_PUBLIC, b"ssh-rsa AAAAB3NzaC1yc2E" + b"A" * 40):
            with self.assertRaises(ValueError):
                JwtConfig(secret=secret, algorithm="HS256")

    def test_wrong_key_family(self) -> None:
        """§2.10 r3: RS needs RSA keys, ES256/384 need P-256/P-384; garbage is not a key."""
        with self.assertRaises(ValueError):
            JwtConfig(secret=EC256_PUBLIC, algorithm="RS256")
        with self.assertRaises(ValueError):
            JwtConfig(secret=RSA_PUBLIC, algorithm="ES256")
        with self.assertRaises(ValueError):
            JwtConfig(secret=EC384_PUBLIC, algorithm="ES256")
        with self.assertRaises(ValueError):
            JwtConfig(secret=b"not a pem key at all, just words", algorithm="RS256")

    def test_lifetimes(self) -> None:
        """§2.10 r4: positive int lifetimes; expiry/expiration aliases must agree."""
        self.assertEqual(JwtConfig(secret=SECRET, expiry=60).expiration, 60)
        self.assertEqual(JwtConfig(secret=SECRET, expiration=60, expiry=60).expiry, 60)
        with self.assertRaises(ValueError):
            JwtConfig(secret=SECRET, expiration=60, expiry=61)
        for bad in (0, -1, 1.5, True):
            with self.assertRaises(ValueError):
                JwtConfig(secret=SECRET, expiration=bad)
            with self.assertRaises(ValueError):
                JwtConfig(secret=SECRET, refresh_expiry=bad)

    def test_public_key_only_cannot_sign(self) -> None:
        """§2.10 r3: create_token without a private key is a RuntimeError."""
        auth = JwtAuth(JwtConfig(secret=RSA_PUBLIC, algorithm="RS256"))
        with self.assertRaises(RuntimeError):
            auth.create_token({"sub": "1"})


class TokenServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.auth = strict_app(JwtConfig(secret=SECRET, issuer="iss-1", audience="aud-1"))

    def test_create_token_claims(self) -> None:
        """§2.10 r5: iat=now, exp=now+expiration (caller's overwritten), random jti, iss/aud."""
        token = self.auth.create_token({"sub": "u", "iat": 1, "exp": 2})
        claims = self.auth.decode(token)
        self.assertEqual((claims["iat"], claims["exp"]), (EPOCH, EPOCH + 3600))
        self.assertEqual((claims["iss"], claims["aud"]), ("iss-1", "aud-1"))
        self.assertNotEqual(claims["jti"], self.auth.decode(self.auth.create_token({"sub": "u"}))["jti"])
        self.assertEqual(self.auth.decode(self.auth.create_token({}, expires_in=5))["exp"], EPOCH + 5)

    def test_non_json_claims(self) -> None:
        """§2.10 r5: non-JSON claims are a TypeError."""
        with self.assertRaises(TypeError):
            self.auth.create_token({"x": object()})

    def test_refresh_token_and_pair(self) -> None:
        """§2.10 r6: refresh tokens carry token_type=refresh and exp=now+refresh_expiry."""
        pair = self.auth.create_token_pair({"sub": "u", "roles": ["a"]})
        self.assertEqual((pair["token_type"], pair["expires_in"]), ("Bearer", 3600))
        claims = self.auth.decode(pair["refresh_token"], token_type="refresh")
        self.assertEqual((claims["token_type"], claims["exp"]), ("refresh", EPOCH + 86400))

    def test_wrong_type_both_ways(self) -> None:
        """§2.10 r7: access checks reject refresh tokens and refresh checks require them."""
        pair = self.auth.create_token_pair({"sub": "u"})
        with self.assertRaises(InvalidTokenError) as ctx:
            self.auth.decode(pair["refresh_token"])
        self.assertEqual(ctx.exception.reason, "wrong_type")
        with self.assertRaises(InvalidTokenError) as ctx:
            self.auth.refresh(pair["access_token"])
        self.assertEqual(ctx.exception.reason, "wrong_type")

    def test_issuer_and_audience_enforced(self) -> None:
        """§2.10 r7: iss/aud must match when configured."""
        for claims in ({"iss": "other", "aud": "aud-1"}, {"iss": "iss-1", "aud": "other"}, {"aud": "aud-1"}):
            token = pyjwt.encode({"sub": "u", "exp": EPOCH + 60, **claims}, SECRET, algorithm="HS256")
            with self.assertRaises(InvalidTokenError) as ctx:
                self.auth.decode(token)
            self.assertEqual(ctx.exception.reason, "invalid_claims")

    def test_refresh_rotation_and_reuse(self) -> None:
        """§2.10 r9: refresh keeps custom claims; the rotated token is revoked (reuse → revoked)."""
        pair = self.auth.create_token_pair({"sub": "u", "roles": ["admin"]})
        new = self.auth.refresh(pair["refresh_token"])
        claims = self.auth.decode(new["access_token"])
        self.assertEqual((claims["sub"], claims["roles"]), ("u", ["admin"]))
        with self.assertRaises(InvalidTokenError) as ctx:
            self.auth.refresh(pair["refresh_token"])
        self.assertEqual(ctx.exception.reason, "revoked")
        self.assertIsInstance(self.auth.refresh(new["refresh_token"], rotate=False), dict)
        self.assertIsInstance(self.auth.refresh(new["refresh_token"]), dict)

    def test_revoke_needs_valid_signature_accepts_expired(self) -> None:
        """§2.10 r10: revoke checks the signature; expired tokens may still be revoked."""
        other = pyjwt.encode({"sub": "u", "exp": EPOCH + 60}, OTHER_SECRET, algorithm="HS256")
        with self.assertRaises(InvalidTokenError):
            self.auth.revoke(other)
        live = self.auth.create_token({"sub": "u"}, expires_in=60)
        self.auth.revoke(live)
        self.assertTrue(self.auth.is_revoked(live))
        token = self.auth.create_token({"sub": "u"}, expires_in=1)
        self.app.clock.advance(5)
        self.auth.revoke(token)  # accepted, though there is nothing left to remember
        self.assertFalse(self.auth.is_revoked(token))

    def test_revocation_key_jti_else_sha256(self) -> None:
        """§2.10 r10: the revocation key is the jti, else the SHA-256 hex of the token."""
        foreign = pyjwt.encode({"sub": "u", "exp": EPOCH + 60, "iss": "iss-1", "aud": "aud-1"}, SECRET, algorithm="HS256")
        self.auth.revoke(foreign)
        self.assertTrue(self.auth.blacklist.contains("sha256:" + hashlib.sha256(foreign.encode()).hexdigest()))
        mine = self.auth.create_token({"sub": "u"})
        self.auth.revoke(mine)
        self.assertTrue(self.auth.blacklist.contains("jti:" + self.auth.decode.__self__.verified(mine).claims["jti"]))

    def test_blacklist_forgets_at_expiry(self) -> None:
        """§2.10 r10: revoked keys are kept until the token's exp, then dropped (bounded memory)."""
        token = self.auth.create_token({"sub": "u"}, expires_in=10)
        self.auth.revoke(token)
        self.assertEqual(len(self.auth.blacklist), 1)
        self.app.clock.advance(11)
        self.auth.revoke(self.auth.create_token({"sub": "v"}))  # any add prunes
        self.assertEqual(len(self.auth.blacklist), 1)


class AlgorithmTests(SynchronousTestCase):
    def test_every_algorithm_round_trips(self) -> None:
        """§2.10 r1/r3: HS256/384/512, RS256/384/512, ES256/384 sign and verify end to end."""
        cases = [
            (JwtConfig(secret=b"h" * 32, algorithm="HS256"), None),
            (JwtConfig(secret=b"h" * 48, algorithm="HS384"), None),
            (JwtConfig(secret=b"h" * 64, algorithm="HS512"), None),
            (JwtConfig(secret=RSA_PRIVATE, algorithm="RS256"), RSA_PUBLIC),
            (JwtConfig(private_key=RSA_PRIVATE, algorithm="RS384"), RSA_PUBLIC),
            (JwtConfig(private_key=RSA_PRIVATE, public_key=RSA_PUBLIC, algorithm="RS512"), RSA_PUBLIC),
            (JwtConfig(secret=EC256_PRIVATE, algorithm="ES256"), EC256_PUBLIC),
            (JwtConfig(private_key=EC384_PRIVATE, algorithm="ES384"), EC384_PUBLIC),
        ]
        for config, public in cases:
            app, auth = strict_app(config)
            token = app.jwt.create_token({"sub": config.algorithm})
            self.assertEqual(pyjwt.get_unverified_header(token)["alg"], config.algorithm)
            response = app.test_client().get("/me", headers=bearer(token))
            self.assertEqual(response.json()["sub"], config.algorithm, config.algorithm)
            if public is not None:  # a verify-only app accepts it too
                verify_app, _ = strict_app(JwtConfig(secret=public, algorithm=config.algorithm))
                self.assertEqual(verify_app.test_client().get("/me", headers=bearer(token)).status_code, 200)


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
        self.assertEqual(app.test_client().get("/u", headers=bearer(token)).json(), {"sub": "preset"})

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
        self.assertEqual(client.get("/public/info", headers=bearer(token)).json()["claims"]["sub"], "u")
        self.assertEqual(client.get("/public/info", headers=bearer("junk")).json(), {"claims": None})
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
        self.assertEqual(client.get("/me", headers={"Authorization": "bearer " + token}).status_code, 200)
        self.assertEqual(client.get("/me", params={"access_token": token}).status_code, 200)
        self.assertEqual(client.get("/me", cookies={"jwt": token}).status_code, 200)
        other = pyjwt.encode({"sub": "x", "exp": EPOCH + 60}, OTHER_SECRET, algorithm="HS256")
        self.assertEqual(client.get("/me", headers=bearer(other), params={"access_token": token}).status_code, 401)

    def test_custom_header(self) -> None:
        """§2.10 r11: header_name/header_prefix are configurable."""
        app, auth = strict_app(JwtConfig(secret=SECRET, header_name="X-Token", header_prefix="Token"))
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
        self.assertEqual(client.post("/refresh", json={"refresh_token": pair["refresh_token"]}).status_code, 200)
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
        self.assert_refused(bearer(forge_hs({"alg": "NONE"}, {"sub": "u", "exp": EPOCH + 60}, SECRET)))

    def test_other_hmac_algorithm(self) -> None:
        """§2.10 r7: header alg must equal the configured one (HS512 with the right key → 401)."""
        token = pyjwt.encode({"sub": "u", "exp": EPOCH + 60}, SECRET * 2, algorithm="HS512")
        self.assert_refused(bearer(token), "invalid_signature")

    def test_key_confusion_hs256_with_rs_public_key(self) -> None:
        """§2.10 r7: HS256 token MACed with the RS256 public key → 401 on an RS256 app."""
        app, auth = strict_app(JwtConfig(secret=RSA_PUBLIC, algorithm="RS256"))
        token = forge_hs({"alg": "HS256", "typ": "JWT"}, {"sub": "u", "exp": EPOCH + 60}, RSA_PUBLIC)
        response = app.test_client().get("/me", headers=bearer(token))
        self.assertEqual(response.status_code, 401)
        assert_no_leak(self, response)

    def test_tampered_payload(self) -> None:
        """§2.10 r7: payload changed, original signature kept → 401."""
        token = self.auth.create_token({"sub": "u", "roles": ["user"]})
        header, _, signature = token.split(".")
        forged = forge_hs({"alg": "HS256"}, {"sub": "admin", "roles": ["admin"], "exp": EPOCH + 60}, b"x").split(".")[1]
        self.assert_refused(bearer(f"{header}.{forged}.{signature}"), "invalid_signature")

    def test_kid_and_jku_ignored(self) -> None:
        """§2.10 r7: kid/jku headers never select a key: an attacker-keyed token fails, ours passes."""
        attacker = pyjwt.encode(
            {"sub": "u", "exp": EPOCH + 60}, OTHER_SECRET, algorithm="HS256",
            headers={"kid": "../../dev/null", "jku": "https://evil.example/jwks.json"},
        )
        self.assert_refused(bearer(attacker), "invalid_signature")
        ours = pyjwt.encode({"sub": "u", "exp": EPOCH + 60}, SECRET, algorithm="HS256", headers={"kid": "x", "jku": "https://evil.example/"})
        self.assertEqual(self.client.get("/me", headers=bearer(ours)).status_code, 200)

    def test_garbage_authorization_headers(self) -> None:
        """§2.10 r13: garbage Authorization values → 401, never 500."""
        for value in ("Bearer", "Bearer ", "Bearer a.b", "Bearer a.b.c.d", "Basic dXNlcjpwYXNz", "Bearer \u00e9\u00e9.\u00e9",
                      "Bearer " + "A" * 8192, "x" * 8192, "Bearer ....", "Bearer e30.e30.e30"):
            self.assert_refused({"Authorization": value})

    def test_non_numeric_exp_and_missing_exp(self) -> None:
        """§2.10 r7: exp must be present and numeric."""
        for payload in ({"sub": "u"}, {"sub": "u", "exp": "never"}, {"sub": "u", "exp": True}, {"sub": "u", "exp": EPOCH + 60, "nbf": "x"}):
            self.assert_refused(bearer(pyjwt.encode(payload, SECRET, algorithm="HS256")))

    def test_not_before(self) -> None:
        """§2.10 r7: nbf in the future → 401 until it arrives (leeway applies)."""
        token = pyjwt.encode({"sub": "u", "exp": EPOCH + 600, "nbf": EPOCH + 100}, SECRET, algorithm="HS256")
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
        """The cache never holds more than CACHE_SIZE tokens (oldest evicted first)."""
        self.patch(_jwt_tokens, "CACHE_SIZE", 3)
        app, auth = strict_app()
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
