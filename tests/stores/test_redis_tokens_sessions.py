"""RedisTokenBlacklist and RedisSessionStore against a real redis-server (SPEC §2.10, §2.12)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, JwtConfig, SessionConfig
from cello_twisted.middleware import JwtAuth, Sessions
from cello_twisted.stores import RedisSessionStore, RedisTokenBlacklist
from cello_twisted.stores.redis import SharedStoreUnavailable

from ._redis_server import flushed

pytestmark = pytest.mark.live  # starts processes or opens real sockets

SECRET = b"j" * 32
KEY = b"s" * 32
EPOCH = 1_700_000_000


def clock_at(seconds: float = EPOCH) -> Clock:
    clock = Clock()
    clock.advance(seconds)
    return clock


class BlacklistTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = flushed(self)
        self.redis = self.server.client()
        self.addCleanup(self.redis.close)
        self.clock = clock_at()
        self.store = RedisTokenBlacklist(self.server.url, clock=self.clock)
        self.addCleanup(self.store.close)

    def test_add_contains_and_ttl_until_expiry(self) -> None:
        """§2.10 r10: a revoked key is kept until the token's exp (Redis TTL ends there)."""
        self.store.add("jti-1", EPOCH + 120)
        self.assertTrue(self.store.contains("jti-1"))
        self.assertFalse(self.store.contains("jti-2"))
        self.assertEqual(self.redis.ttl("cello:jwt:revoked:jti-1"), 120)
        self.clock.advance(120)  # exp reached on the app clock: no longer needed
        self.assertFalse(self.store.contains("jti-1"))

    def test_later_expiry_wins_and_expired_keys_are_not_stored(self) -> None:
        """§2.10 r10: revoking twice keeps the later expiry; an already-expired token stores nothing."""
        self.store.add("k", EPOCH + 300)
        self.store.add("k", EPOCH + 60)
        self.assertEqual(self.redis.ttl("cello:jwt:revoked:k"), 300)
        self.store.add("old", EPOCH - 1)
        self.assertEqual(self.redis.exists("cello:jwt:revoked:old"), 0)

    def test_outage_fails_closed_unless_fail_open(self) -> None:
        """§2.10 r10: with Redis down a lookup is SharedStoreUnavailable (503); fail_open reads "not revoked"."""
        open_store = RedisTokenBlacklist(self.server.url, clock=self.clock, fail_open=True)
        self.server.stop()
        self.addCleanup(self.server.restart)
        error = self.assertRaises(SharedStoreUnavailable, self.store.contains, "k")
        self.assertEqual(error.status, 503)
        self.assertFalse(open_store.contains("k"))
        # A revocation is never dropped silently, even with fail_open.
        self.assertRaises(SharedStoreUnavailable, open_store.add, "k", EPOCH + 60)


def jwt_app(url: str, clock: Clock) -> App:
    app = App(clock=clock)
    app.use(
        JwtAuth(
            JwtConfig(secret=SECRET, blacklist=RedisTokenBlacklist(url, clock=clock)),
            skip_paths=["/login"],
        )
    )

    @app.post("/login")
    def login(request):
        return {"token": request.app.jwt.create_token({"sub": "ann"})}

    @app.post("/logout")
    def logout(request):
        return then_ok(request.app.jwt.revoke(request.jwt_token))

    @app.get("/me")
    def me(request):
        return {"sub": request.jwt_claims["sub"]}

    return app


def then_ok(result):
    if hasattr(result, "addCallback"):
        return result.addCallback(lambda _: {"ok": True})
    return {"ok": True}


class JwtAcrossAppsTests(SynchronousTestCase):
    def test_revoked_in_one_app_rejected_by_another(self) -> None:
        """§2.10 r10: a token revoked through one process gets 401 `revoked` from another."""
        server = flushed(self)
        clock = clock_at()
        a, b = jwt_app(server.url, clock).test_client(), jwt_app(server.url, clock).test_client()
        token = a.post("/login").json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        self.assertEqual(b.get("/me", headers=auth).json(), {"sub": "ann"})
        self.assertEqual(a.post("/logout", headers=auth).status_code, 200)
        resp = b.get("/me", headers=auth)
        self.assertEqual(resp.status_code, 401)
        self.assertIn('error_description="revoked"', resp.headers.get("WWW-Authenticate"))

    def test_no_cluster_warning(self) -> None:
        """§2.20 cluster: JwtAuth with RedisTokenBlacklist keeps no per-process state."""
        server = flushed(self)
        auth = JwtAuth(JwtConfig(secret=SECRET, blacklist=RedisTokenBlacklist(server.url)))
        self.assertIsNone(auth.cluster_warning())


class SessionStoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.server = flushed(self)
        self.redis = self.server.client()
        self.addCleanup(self.redis.close)
        self.store = RedisSessionStore(self.server.url)
        self.addCleanup(self.store.close)

    def test_save_load_delete_with_ttl(self) -> None:
        """§2.12 r9-r10: data under `cello:session:<id>` with TTL max_age; delete revokes."""
        self.store.save("sid1", {"user": "ann", "n": [1, 2]}, 900)
        self.assertEqual(self.store.load("sid1"), {"user": "ann", "n": [1, 2]})
        self.assertEqual(self.redis.ttl("cello:session:sid1"), 900)
        self.assertIsNone(self.store.load("missing"))
        self.store.delete("sid1")
        self.assertIsNone(self.store.load("sid1"))

    def test_foreign_values_read_as_no_session(self) -> None:
        """§2.12 r9: an unreadable entry reads empty, never an error."""
        self.redis.set("cello:session:bad", b"\xff not json")
        self.redis.set("cello:session:list", b"[1]")
        self.assertIsNone(self.store.load("bad"))
        self.assertIsNone(self.store.load("list"))

    def test_outage_is_503(self) -> None:
        """§2.12 stores: session data cannot be guessed, so an outage is SharedStoreUnavailable."""
        self.server.stop()
        self.addCleanup(self.server.restart)
        self.assertRaises(SharedStoreUnavailable, self.store.load, "sid")


def session_app(url: str, clock: Clock, store_mode: bool) -> App:
    app = App(clock=clock)
    store = RedisSessionStore(url) if store_mode else None
    revocations = RedisTokenBlacklist(url, clock=clock)
    app.enable_sessions(
        SessionConfig(secret=KEY, secure=False, max_age=600, store=store, revocations=revocations)
    )

    @app.post("/login")
    def login(request):
        request.session["user"] = "ann"
        return {"ok": True}

    @app.post("/logout")
    def logout(request):
        request.session.clear()
        return {"ok": True}

    @app.get("/me")
    def me(request):
        return {"user": request.session.get("user")}

    return app


class SessionsAcrossAppsTests(SynchronousTestCase):
    def check_cleared_everywhere(self, store_mode: bool) -> None:
        server = flushed(self)
        clock = clock_at()
        a = session_app(server.url, clock, store_mode).test_client()
        b = session_app(server.url, clock, store_mode).test_client()
        cookie = a.post("/login").cookies["session_id"]
        jar = {"session_id": cookie}
        self.assertEqual(b.get("/me", cookies=jar).json(), {"user": "ann"})
        self.assertEqual(a.post("/logout", cookies=jar).status_code, 200)
        self.assertEqual(b.get("/me", cookies=jar).json(), {"user": None})
        return server

    def test_store_mode_clear_in_one_app_is_seen_by_another(self) -> None:
        """§2.12 r10: clear() in one process deletes the Redis entry: the other reads empty."""
        server = self.check_cleared_everywhere(store_mode=True)
        redis = server.client()
        self.addCleanup(redis.close)
        self.assertEqual(redis.keys("cello:session:*"), [])

    def test_cookie_mode_clear_is_revoked_everywhere(self) -> None:
        """§2.12 r6: in cookie mode the old id is revoked in Redis until its exp, for every process."""
        server = self.check_cleared_everywhere(store_mode=False)
        redis = server.client()
        self.addCleanup(redis.close)
        (key,) = redis.keys("cello:jwt:revoked:session:*")
        self.assertEqual(redis.ttl(key), 600)

    def test_no_cluster_warning_with_redis_stores(self) -> None:
        """§2.20 cluster: Redis session data and revocations need no per-process warning."""
        server = flushed(self)
        config = SessionConfig(
            secret=KEY,
            store=RedisSessionStore(server.url),
            revocations=RedisTokenBlacklist(server.url),
        )
        self.assertIsNone(Sessions(config).cluster_warning())
        half = SessionConfig(secret=KEY, store=RedisSessionStore(server.url))
        self.assertIn("revoked session ids", Sessions(half).cluster_warning())
