"""State a client can grow is bounded by bytes and count (SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, JwtConfig, SessionConfig
from cello_twisted.errors import ConfigError
from cello_twisted.stores import MemorySessionStore

from ._helpers import EPOCH, KEY, SECRET, b64, bearer, clock_at, forge_hs, strict_app


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


def _store_app(store: MemorySessionStore) -> App:
    app = App(clock=clock_at())
    app.enable_sessions(SessionConfig(KEY, secure=False, store=store))

    @app.post("/login")
    def login(request: Any) -> dict:
        user = request.form().get("user") if request.is_form() else None
        if user:
            request.session["user"] = user
        return {"ok": bool(user)}

    @app.post("/fixate")
    def fixate(request: Any) -> dict:
        request.session.regenerate()  # a login handler that regenerates before checking
        return {"ok": False}

    @app.get("/me")
    def me(request: Any) -> dict:
        return {"user": request.session.get("user")}

    return app


class SessionStoreBoundTests(SynchronousTestCase):
    def test_least_recently_used_session_is_evicted(self) -> None:
        """max_sessions=3: a fourth login evicts the least recently used session (logged out)."""
        store = MemorySessionStore(max_sessions=3)
        app = _store_app(store)
        clients = [app.test_client() for _ in range(4)]
        for i, client in enumerate(clients[:3]):
            client.post("/login", data={"user": f"u{i}"})
        self.assertEqual(clients[0].get("/me").json(), {"user": "u0"})  # u0 is now the most recent
        clients[3].post("/login", data={"user": "u3"})
        self.assertEqual(len(store), 3)
        users = [c.get("/me").json()["user"] for c in clients]
        self.assertEqual(users, ["u0", None, "u2", "u3"])

    def test_default_bound_and_validation(self) -> None:
        """The default bound is 100,000; a non-positive bound is a config error."""
        self.assertEqual(MemorySessionStore().max_sessions, 100_000)
        with self.assertRaises(ConfigError):
            MemorySessionStore(max_sessions=0)

    def test_anonymous_requests_create_no_session(self) -> None:
        """A POST /login that writes nothing (even one that regenerates) stores nothing and sets no cookie."""
        store = MemorySessionStore()
        app = _store_app(store)
        client = app.test_client()
        for path in ("/login", "/fixate", "/login"):
            resp = client.post(path)
            self.assertNotIn("set-cookie", resp.headers)
        self.assertEqual(len(store), 0)
        client.post("/login", data={"user": "zed"})
        self.assertEqual(len(store), 1)
        self.assertEqual(client.get("/me").json(), {"user": "zed"})

    def test_anonymous_cookie_mode_sets_no_cookie(self) -> None:
        """Cookie mode: an empty anonymous session sends no Set-Cookie either."""
        app = App(clock=clock_at())
        app.enable_sessions(SessionConfig(KEY, secure=False))
        app.post("/fixate")(lambda request: request.session.regenerate() or {"ok": True})
        self.assertNotIn("set-cookie", app.test_client().post("/fixate").headers)
