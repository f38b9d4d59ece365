"""Acceptance 1: the security code examples of seeds 000, 001 and 002 run with only the import renamed.

Each example's text is kept as the seed shows it (``from cello`` → ``from cello_twisted``);
the test supplies what the seed leaves to the reader (``authenticate``, ``Response`` where
the snippet uses it without importing it) and checks that it does what the seed says.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import Response
from tests._support.auth import (
    clock_at,
    run_seed,
    with_warnings,
)

# -- seed 002_6c0807fc035a49ee.txt (session management page) ------------------------------

SEED002_QUICK_START = """
from cello_twisted import App, SessionConfig

app = App()

config = SessionConfig(
    secret=b"session-secret-minimum-32-bytes-long",
    cookie_name="session_id",
    max_age=86400  # 24 hours
)

app.enable_sessions(config)

@app.post("/login")
def login(request):
    request.session["user_id"] = "123"
    request.session["username"] = "alice"
    return {"logged_in": True}

@app.get("/profile")
def profile(request):
    user_id = request.session.get("user_id")
    if not user_id:
        return Response.json({"error": "Not logged in"}, status=401)
    return {"user_id": user_id}
"""

SEED002_CONFIGS = """
from cello_twisted import SessionConfig
config = SessionConfig(
    secret=b"session-secret-minimum-32-bytes-long",
    cookie_name="session_id",
    max_age=86400,
    http_only=True,
    secure=True,
    same_site="Lax"
)
# Strict -- maximum security, may break some OAuth flows
config = SessionConfig(
    secret=b"secret-key-minimum-32-bytes-long!",
    same_site="Strict"
)

# Lax -- good balance of security and usability (default)
config = SessionConfig(
    secret=b"secret-key-minimum-32-bytes-long!",
    same_site="Lax"
)
# Session expires after 1 hour
config = SessionConfig(
    secret=b"secret-key-minimum-32-bytes-long!",
    max_age=3600
)

# Session expires after 7 days
config = SessionConfig(
    secret=b"secret-key-minimum-32-bytes-long!",
    max_age=604800
)
"""

SEED002_READ_WRITE = """
from cello_twisted import App, Response, SessionConfig
app = App()
app.enable_sessions(SessionConfig(secret=b"session-secret-minimum-32-bytes-long"))

@app.post("/login")
def login(request):
    data = request.json()
    user = authenticate(data["username"], data["password"])
    if user:
        request.session["user_id"] = str(user["id"])
        request.session["username"] = user["name"]
        request.session["role"] = user["role"]
        return {"logged_in": True}
    return Response.json({"error": "Invalid credentials"}, status=401)

@app.get("/dashboard")
def dashboard(request):
    user_id = request.session.get("user_id")
    username = request.session.get("username")
    if not user_id:
        return Response.redirect("/login")
    return {"user_id": user_id, "username": username}

@app.post("/logout")
def logout(request):
    # Clear all session data
    request.session.clear()
    return {"logged_out": True}
"""

SEED002_FLOW = """
from cello_twisted import App, Response, SessionConfig

app = App()
app.enable_sessions(SessionConfig(
    secret=b"session-secret-minimum-32-bytes-long",
    max_age=86400
))

@app.post("/login")
def login(request):
    data = request.json()
    if data.get("username") == "admin" and data.get("password") == "secret":
        request.session["user_id"] = "1"
        request.session["role"] = "admin"
        return {"logged_in": True}
    return Response.json({"error": "Invalid credentials"}, status=401)

@app.get("/me")
def me(request):
    user_id = request.session.get("user_id")
    if not user_id:
        return Response.json({"error": "Not authenticated"}, status=401)
    return {
        "user_id": user_id,
        "role": request.session.get("role")
    }

@app.post("/logout")
def logout(request):
    request.session.clear()
    return {"logged_out": True}
"""


class Seed002Tests(SynchronousTestCase):
    """Seed 002_6c0807fc035a49ee.txt: the session management page."""

    def test_quick_start(self) -> None:
        """Seed 002 Quick Start: login writes the session; profile reads it; a stranger gets 401."""
        client = run_seed(SEED002_QUICK_START, Response=Response)["app"].test_client()
        self.assertEqual(client.get("/profile").status_code, 401)
        self.assertEqual(client.post("/login").json(), {"logged_in": True})
        header = client.get("/profile").headers.get("set-cookie")
        self.assertIsNone(header)  # read-only request: no Set-Cookie
        self.assertEqual(client.get("/profile").json(), {"user_id": "123"})

    def test_config_examples(self) -> None:
        """Seed 002 SessionConfig / SameSite / expiration examples build with the documented defaults."""
        ns, caught = with_warnings(run_seed, SEED002_CONFIGS)
        self.assertEqual(caught, [])
        config = ns["config"]
        self.assertEqual(
            (config.max_age, config.cookie_name, config.http_only, config.secure, config.same_site),
            (604800, "session_id", True, True, "Lax"),
        )

    def test_cookie_attributes(self) -> None:
        """Seed 002 HttpOnly/Secure/SameSite: defaults give HttpOnly; Secure; SameSite=Lax."""
        client = run_seed(SEED002_QUICK_START, Response=Response)["app"].test_client()
        header = client.post("/login").headers.get("set-cookie")
        for part in ("session_id=", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=86400"):
            self.assertIn(part, header)

    def test_read_write_delete(self) -> None:
        """Seed 002 Reading/Writing/Deleting: login, dashboard (redirect when logged out), logout."""
        users = {("alice", "pw"): {"id": 5, "name": "alice", "role": "admin"}}
        ns = run_seed(SEED002_READ_WRITE, authenticate=lambda u, p: users.get((u, p)))
        client = ns["app"].test_client()
        redirect = client.get("/dashboard")
        self.assertEqual((redirect.status_code, redirect.headers.get("location")), (302, "/login"))
        self.assertEqual(
            client.post("/login", json={"username": "alice", "password": "bad"}).status_code, 401
        )
        self.assertEqual(
            client.post("/login", json={"username": "alice", "password": "pw"}).json(),
            {"logged_in": True},
        )
        self.assertEqual(client.get("/dashboard").json(), {"user_id": "5", "username": "alice"})
        self.assertEqual(client.post("/logout").json(), {"logged_out": True})
        self.assertEqual(client.get("/dashboard").status_code, 302)

    def test_expiration(self) -> None:
        """Seed 002 Session Expiration: after max_age the session reads as an empty dictionary."""
        ns = run_seed(SEED002_FLOW)
        app = ns["app"]
        app.clock = clock_at()
        client = app.test_client()
        client.post("/login", json={"username": "admin", "password": "secret"})
        cookie = client.cookies["session_id"]
        app.clock.advance(86399)
        self.assertEqual(
            client.get("/me", cookies={"session_id": cookie}).json(),
            {"user_id": "1", "role": "admin"},
        )
        app.clock.advance(1)
        self.assertEqual(client.get("/me", cookies={"session_id": cookie}).status_code, 401)

    def test_login_logout_flow_with_immediate_revocation(self) -> None:
        """Seed 002 Login/Logout Flow + 'Revocation: Immediate': a copied cookie is dead after logout."""
        client = run_seed(SEED002_FLOW)["app"].test_client()
        self.assertEqual(
            client.post("/login", json={"username": "admin", "password": "nope"}).status_code, 401
        )
        self.assertEqual(
            client.post("/login", json={"username": "admin", "password": "secret"}).json(),
            {"logged_in": True},
        )
        stolen = client.cookies["session_id"]
        self.assertEqual(client.get("/me").json(), {"user_id": "1", "role": "admin"})
        self.assertEqual(client.post("/logout").json(), {"logged_out": True})
        self.assertEqual(client.get("/me").status_code, 401)
        self.assertEqual(client.get("/me", cookies={"session_id": stolen}).status_code, 401)
