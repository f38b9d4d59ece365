"""The verified-token cache is bounded by bytes of token text; non-finite time claims are 401
(SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import JwtConfig
from cello_twisted.errors import ConfigError
from tests._support.auth import EPOCH, SECRET, b64, bearer, forge_hs, strict_app


class JwtCacheTests(SynchronousTestCase):
    def test_cache_bounded_by_bytes_of_token_text(self) -> None:
        """With cache_max_bytes=64 KiB, many 4 KB tokens never make the cache hold more than 64 KiB."""
        app, auth = strict_app(JwtConfig(secret=SECRET, cache_max_bytes=64 * 1024))
        client = app.test_client()
        for i in range(100):
            token = auth.create_token({"sub": str(i), "pad": "x" * 3000})
            self.assertEqual(client.get("/me", headers=bearer(token)).status_code, 200)
            self.assertLessEqual(auth._cache.size_bytes, 64 * 1024)
        self.assertGreater(len(auth._cache), 10)

    def test_default_is_8_mib(self) -> None:
        """The default byte bound is 8 MiB."""
        _, auth = strict_app()
        self.assertEqual(auth._cache.max_bytes, 8 * 1024 * 1024)

    def test_token_over_8_kib_is_verified_but_never_cached(self) -> None:
        """A valid 10 KB token authenticates every time and is never kept in the cache."""
        app, auth = strict_app()
        token = auth.create_token({"sub": "big", "pad": "y" * 7000})
        self.assertGreater(len(token), 8 * 1024)
        client = app.test_client()
        for _ in range(3):
            self.assertEqual(client.get("/me", headers=bearer(token)).json()["sub"], "big")
        self.assertEqual(len(auth._cache), 0)

    def test_bad_cache_size_is_a_config_error(self) -> None:
        """cache_max_bytes must be an int >= 0."""
        for bad in (-1, "8MB", 1.5):
            with self.assertRaises(ConfigError):
                JwtConfig(secret=SECRET, cache_max_bytes=bad)  # type: ignore[arg-type]


def _raw_token(payload_json: str) -> str:
    """A correctly signed HS256 token whose payload is the given JSON text (NaN allowed)."""
    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(payload_json.encode())
    signature = hmac.new(SECRET, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


class NonFiniteClaimTests(SynchronousTestCase):
    def test_non_finite_time_claims_are_401(self) -> None:
        """exp/nbf/iat that are NaN, Infinity or beyond float range → 401, never a token that never expires."""
        app, _ = strict_app()
        client = app.test_client()
        later = EPOCH + 3600
        payloads = [
            '{"sub": "a", "exp": NaN}',
            '{"sub": "a", "exp": Infinity}',
            '{"sub": "a", "exp": 1' + "0" * 400 + "}",
            f'{{"sub": "a", "exp": {later}, "nbf": -Infinity}}',
            f'{{"sub": "a", "exp": {later}, "iat": NaN}}',
        ]
        for payload in payloads:
            resp = client.get("/me", headers=bearer(_raw_token(payload)))
            self.assertEqual(resp.status_code, 401, payload)
            self.assertIn("invalid_claims", resp.headers.get("WWW-Authenticate"))
        ok = client.get("/me", headers=bearer(_raw_token(f'{{"sub": "a", "exp": {later}, "iat": {EPOCH}}}')))
        self.assertEqual(ok.status_code, 200)

    def test_deeply_nested_header_is_401_not_500(self) -> None:
        """A token whose header nests thousands deep is malformed (401), not a 500."""
        app, _ = strict_app()
        header = b64(b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}")
        token = forge_hs({"alg": "HS256"}, {"sub": "a", "exp": EPOCH + 60}, SECRET)
        forged = header + token[token.index(".") :]
        self.assertEqual(app.test_client().get("/me", headers=bearer(forged)).status_code, 401)
        self.assertEqual(self.flushLoggedErrors(), [])
