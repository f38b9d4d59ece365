"""MemorySessionStore holds at most max_sessions sessions, least recently used out first
(SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.errors import ConfigError
from cello_twisted.stores import MemorySessionStore
from tests._support.auth import clock_at, store_app


class SessionStoreBoundTests(SynchronousTestCase):
    def test_least_recently_used_session_is_evicted(self) -> None:
        """max_sessions=3: a fourth login evicts the least recently used session (logged out)."""
        store = MemorySessionStore(max_sessions=3)
        app = store_app(store)
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
        for bad in (0, -1, 1.5, "10", True):
            with self.assertRaises(ConfigError) as caught:
                MemorySessionStore(max_sessions=bad)  # type: ignore[arg-type]
            self.assertEqual(caught.exception.field, "MemorySessionStore.max_sessions")

    def test_store_evicts_least_recently_loaded(self) -> None:
        """Straight on the store: a load refreshes an entry, the coldest one goes when full."""
        store = MemorySessionStore(clock_at(), max_sessions=2)
        store.save("a", {"n": 1}, 60)
        store.save("b", {"n": 2}, 60)
        self.assertEqual(store.load("a"), {"n": 1})
        store.save("c", {"n": 3}, 60)
        self.assertEqual((store.load("a"), store.load("b"), store.load("c")), ({"n": 1}, None, {"n": 3}))
