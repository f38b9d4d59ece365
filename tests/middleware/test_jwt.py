"""JWT: config validation, token service, strict/optional modes, hostile tokens, the cache (SPEC §2.10)."""

from __future__ import annotations

import hashlib
import warnings

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import (
    InsecureSecretWarning,
    InvalidTokenError,
    JwtConfig,
)
from cello_twisted.middleware import JwtAuth
from tests._support.auth import (
    EC256_PRIVATE,
    EC256_PUBLIC,
    EC384_PRIVATE,
    EC384_PUBLIC,
    EPOCH,
    OTHER_SECRET,
    RSA_PRIVATE,
    RSA_PUBLIC,
    SECRET,
    bearer,
    strict_app,
    with_warnings,
)


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
                self.assertEqual(
                    JwtConfig(secret=b"x" * minimum, algorithm=alg).secret_problems(), []
                )

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
        self.assertNotEqual(
            claims["jti"], self.auth.decode(self.auth.create_token({"sub": "u"}))["jti"]
        )
        self.assertEqual(
            self.auth.decode(self.auth.create_token({}, expires_in=5))["exp"], EPOCH + 5
        )

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
        for claims in (
            {"iss": "other", "aud": "aud-1"},
            {"iss": "iss-1", "aud": "other"},
            {"aud": "aud-1"},
        ):
            token = pyjwt.encode(
                {"sub": "u", "exp": EPOCH + 60, **claims}, SECRET, algorithm="HS256"
            )
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
        foreign = pyjwt.encode(
            {"sub": "u", "exp": EPOCH + 60, "iss": "iss-1", "aud": "aud-1"},
            SECRET,
            algorithm="HS256",
        )
        self.auth.revoke(foreign)
        self.assertTrue(
            self.auth.blacklist.contains("sha256:" + hashlib.sha256(foreign.encode()).hexdigest())
        )
        mine = self.auth.create_token({"sub": "u"})
        self.auth.revoke(mine)
        self.assertTrue(
            self.auth.blacklist.contains(
                "jti:" + self.auth.decode.__self__.verified(mine).claims["jti"]
            )
        )

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
            (
                JwtConfig(private_key=RSA_PRIVATE, public_key=RSA_PUBLIC, algorithm="RS512"),
                RSA_PUBLIC,
            ),
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
                self.assertEqual(
                    verify_app.test_client().get("/me", headers=bearer(token)).status_code, 200
                )
