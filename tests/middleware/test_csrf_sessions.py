"""Duplicate cookies (first wins) and CSRF tokens bound to the session (SPEC_OPERATIONS §11 r2, r3)."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, Blueprint, CsrfConfig, SessionConfig
from cello_twisted.middleware.session import Sessions
from cello_twisted.request import Request


def make_app(**kwargs: Any) -> App:
    """An App on a task.Clock, so time-based behaviour is deterministic."""
    return App(clock=Clock(), **kwargs)


SECRET = "s" * 32


def _app(csrf_first: bool = False, csrf_secret: str | None = None) -> App:
    app = make_app()
    if csrf_first:
        app.enable_csrf(CsrfConfig(secret=csrf_secret))
        app.enable_sessions(SessionConfig(SECRET))
    else:
        app.enable_sessions(SessionConfig(SECRET))
        app.enable_csrf(CsrfConfig(secret=csrf_secret))

    @app.get("/form")
    def form(request: Request) -> dict:
        return {"token": request.csrf_token, "user": request.session.get("user")}

    @app.post("/login")
    def login(request: Request) -> dict:
        request.session["user"] = request.form().get("user") or "anon"
        return {"ok": True}

    @app.post("/logout")
    def logout(request: Request) -> dict:
        request.session.clear()
        return {"ok": True}

    @app.post("/action")
    def action(request: Request) -> dict:
        return {"user": request.session.get("user")}

    return app


def _login(client: object, user: str) -> str:
    """Log ``user`` in through the anonymous double-submit flow; returns the bound token."""
    token = client.get("/form").json()["token"]  # type: ignore[attr-defined]
    resp = client.post("/login", data={"user": user, "_csrf": token})  # type: ignore[attr-defined]
    assert resp.status_code == 200, resp.text
    return client.get("/form").json()["token"]  # type: ignore[attr-defined]


class DuplicateCookieTests(SynchronousTestCase):
    def test_request_cookies_keep_the_first_duplicate(self) -> None:
        """request.cookies holds the first of two same-named cookies."""
        app = make_app()
        app.get("/c")(lambda request: dict(request.cookies))
        body = app.test_client().get("/c", headers={"Cookie": "a=first; b=x; a=second"}).json()
        self.assertEqual(body, {"a": "first", "b": "x"})

    def test_session_uses_the_first_session_cookie(self) -> None:
        """Sessions read the first session cookie; a later duplicate cannot replace it."""
        app = _app()
        alice = app.test_client()
        _login(alice, "alice")
        sealed = alice.cookies.get("session_id")
        other = app.test_client()
        body = other.get("/form", headers={"Cookie": f"session_id={sealed}; session_id=forged"}).json()
        self.assertEqual(body["user"], "alice")
        body = other.get("/form", headers={"Cookie": f"session_id=forged; session_id={sealed}"}).json()
        self.assertIsNone(body["user"])

    def test_csrf_uses_the_first_csrf_cookie(self) -> None:
        """A planted second _csrf cookie plus a matching form field does not pass (double-submit mode)."""
        app = make_app()
        app.enable_csrf(CsrfConfig())
        app.get("/t")(lambda request: {"token": request.csrf_token})
        app.post("/p")(lambda request: {"ok": True})
        victim = app.test_client().get("/t").json()["token"]
        attacker = app.test_client().get("/t").json()["token"]
        client = app.test_client()
        cookie = {"Cookie": f"_csrf={victim}; _csrf={attacker}"}
        self.assertEqual(client.post("/p", data={"_csrf": attacker}, headers=cookie).status_code, 403)
        self.assertEqual(client.post("/p", data={"_csrf": victim}, headers=cookie).status_code, 200)


class SessionBoundCsrfTests(SynchronousTestCase):
    def test_token_from_another_session_is_refused(self) -> None:
        """A token issued to client A's session gets 403 from client B, even with A's token as B's cookie."""
        for csrf_first in (False, True):
            for secret in (None, "c" * 32):
                app = _app(csrf_first, secret)
                alice, bob = app.test_client(), app.test_client()
                token_a = _login(alice, "alice")
                _login(bob, "bob")
                bob.cookies.set("_csrf", token_a)
                resp = bob.post("/action", headers={"X-CSRF-Token": token_a})
                self.assertEqual(resp.status_code, 403, (csrf_first, secret))
                self.assertEqual(resp.json()["detail"], "CSRF token validation failed")
                ok = alice.post("/action", headers={"X-CSRF-Token": token_a})
                self.assertEqual((ok.status_code, ok.json()), (200, {"user": "alice"}))

    def test_anonymous_token_is_rebound_when_the_session_is_created(self) -> None:
        """The pre-login double-submit token stops working once the session exists; the re-bound cookie works."""
        app = _app()
        client = app.test_client()
        anonymous = client.get("/form").json()["token"]
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": anonymous}).status_code, 200)
        login = client.post("/login", data={"user": "carol", "_csrf": anonymous})
        self.assertEqual(login.status_code, 200)
        rebound = login.cookies["_csrf"]
        self.assertNotEqual(rebound, anonymous)
        self.assertEqual(client.cookies.get("_csrf"), rebound)
        client.cookies.set("_csrf", anonymous)
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": anonymous}).status_code, 403)
        client.cookies.set("_csrf", rebound)
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": rebound}).json(), {"user": "carol"})

    def test_logout_issues_a_fresh_double_submit_token(self) -> None:
        """Ending the session replaces the bound token with an unbound one that works without a session."""
        app = _app()
        client = app.test_client()
        bound = _login(client, "dave")
        out = client.post("/logout", headers={"X-CSRF-Token": bound})
        self.assertEqual(out.status_code, 200)
        fresh = out.cookies["_csrf"]
        self.assertNotEqual(fresh, bound)
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": bound}).status_code, 403)
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": fresh}).status_code, 200)

    def test_bound_token_needs_no_matching_cookie_but_a_valid_signature(self) -> None:
        """With a session, the submitted token alone decides; a tampered one is refused."""
        app = _app()
        client = app.test_client()
        token = _login(client, "erin")
        client.cookies.set("_csrf", "garbage")
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": token}).status_code, 200)
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        self.assertEqual(client.post("/action", headers={"X-CSRF-Token": tampered}).status_code, 403)
        self.assertEqual(client.post("/action").status_code, 403)

    def test_sessions_enabled_later_or_in_a_blueprint_bind_the_tokens(self) -> None:
        """Tokens bind to the app's sessions wherever they are enabled: after the app has served
        requests (routes recompile) or only in a blueprint."""
        late = make_app()
        late.enable_csrf(CsrfConfig())
        late.get("/probe")(lambda request: {"ok": True})
        self.assertEqual(late.test_client().get("/probe").status_code, 200)  # compiled without sessions
        late.enable_sessions(SessionConfig(SECRET))
        nested = make_app()
        nested.enable_csrf(CsrfConfig())
        bp = Blueprint("/bp")
        bp.use(Sessions(SessionConfig(SECRET)))
        for table in (late, bp):

            @table.post("/login")
            def login(request: Request) -> dict:
                request.session["user"] = "frank"
                return {"ok": True}

            @table.get("/whoami")
            def whoami(request: Request) -> dict:
                return {"token": request.csrf_token}

        nested.register_blueprint(bp)
        for app, prefix in ((late, ""), (nested, "/bp")):
            alice, bob = app.test_client(), app.test_client()
            for client in (alice, bob):
                anonymous = client.get(prefix + "/whoami").json()["token"]
                self.assertEqual(client.post(prefix + "/login", headers={"X-CSRF-Token": anonymous}).status_code, 200)
            token_a = alice.cookies.get("_csrf")
            self.assertIsNotNone(token_a)
            bob.cookies.set("_csrf", token_a)
            self.assertEqual(bob.post(prefix + "/login", headers={"X-CSRF-Token": token_a}).status_code, 403, prefix)
            self.assertEqual(alice.post(prefix + "/login", headers={"X-CSRF-Token": token_a}).status_code, 200, prefix)
