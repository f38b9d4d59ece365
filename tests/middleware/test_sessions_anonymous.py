"""A visitor who writes nothing to the session gets no cookie and no store entry
(SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, SessionConfig
from cello_twisted.stores import MemorySessionStore
from tests._support.auth import KEY, clock_at, store_app


class AnonymousSessionTests(SynchronousTestCase):
    def test_anonymous_requests_create_no_session(self) -> None:
        """A POST /login that writes nothing (even one that regenerates) stores nothing and sets no cookie."""
        store = MemorySessionStore()
        app = store_app(store)
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
