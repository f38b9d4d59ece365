"""Acceptance 1: the security code examples of seeds 000, 001 and 002 run with only the import renamed.

Each example's text is kept as the seed shows it (``from cello`` → ``from cello_twisted``);
the test supplies what the seed leaves to the reader (``authenticate``, ``Response`` where
the snippet uses it without importing it) and checks that it does what the seed says.
"""

from __future__ import annotations

from types import SimpleNamespace

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import InsecureSecretWarning
from tests._support.auth import (
    bearer,
    run_seed,
    with_warnings,
)

# -- seed 000_baf6e00aa0281f07.txt (v0.4.0 release notes) ---------------------------------

SEED000_JWT = """
from cello_twisted import App, JwtConfig

app = App()

app.enable_jwt(JwtConfig(
    secret="your-secret-key",
    algorithm="HS256",
    expiry=3600,          # 1 hour
    issuer="cello-app",
    refresh_expiry=86400, # 24 hours
))

@app.post("/login")
def login(request):
    user = authenticate(request.json())
    token = app.jwt.create_token({"sub": user.id, "role": user.role})
    return {"access_token": token}

@app.get("/protected")
def protected(request):
    claims = request.jwt_claims  # Populated by JWT middleware
    return {"user_id": claims["sub"]}
"""

SEED000_SESSIONS = """
from cello_twisted import App, SessionConfig

app = App()

app.enable_sessions(SessionConfig(
    secret="session-encryption-key",
    cookie_name="cello_session",
    max_age=86400,
    http_only=True,
    secure=True,
    same_site="Lax",
))

@app.get("/dashboard")
def dashboard(request):
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return {"visits": visits}
"""

SEED000_HEADERS = """
from cello_twisted import App, SecurityHeadersConfig

app = App()

app.enable_security_headers(SecurityHeadersConfig(
    hsts=True,
    hsts_max_age=31536000,
    hsts_include_subdomains=True,
    content_type_nosniff=True,
    frame_options="DENY",
    xss_protection=True,
    referrer_policy="strict-origin-when-cross-origin",
    csp="default-src 'self'; script-src 'self'",
))

@app.get("/")
def index(request):
    return {"ok": True}
"""


class Seed000Tests(SynchronousTestCase):
    """Seed 000_baf6e00aa0281f07.txt: JWT, sessions and security headers sections."""

    def test_jwt_section(self) -> None:
        """Seed 000 JWT: enable_jwt + app.jwt.create_token + request.jwt_claims (SPEC §2.10)."""
        users = {"alice": SimpleNamespace(id=7, role="admin")}
        ns, caught = with_warnings(
            run_seed, SEED000_JWT, authenticate=lambda body: users[body["username"]]
        )
        self.assertIn(InsecureSecretWarning, caught)  # "your-secret-key" is a 15-byte placeholder
        client = ns["app"].test_client()
        token = client.post("/login", json={"username": "alice"}).json()["access_token"]
        claims = pyjwt.decode(
            token,
            "your-secret-key",
            algorithms=["HS256"],
            issuer="cello-app",
            options={"verify_sub": False},
        )
        self.assertEqual(
            (claims["sub"], claims["role"], claims["exp"] - claims["iat"]), (7, "admin", 3600)
        )
        self.assertEqual(client.get("/protected", headers=bearer(token)).json(), {"user_id": 7})
        self.assertEqual(client.get("/protected").status_code, 401)

    def test_sessions_section(self) -> None:
        """Seed 000 sessions: visits counter in an encrypted cookie (SPEC §2.12)."""
        ns, caught = with_warnings(run_seed, SEED000_SESSIONS)
        self.assertIn(InsecureSecretWarning, caught)
        client = ns["app"].test_client()
        self.assertEqual([client.get("/dashboard").json()["visits"] for _ in range(3)], [1, 2, 3])
        header = client.get("/dashboard").headers.get("set-cookie")
        for part in ("cello_session=", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=86400"):
            self.assertIn(part, header)
        self.assertNotIn("visits", client.cookies["cello_session"])

    def test_security_headers_section(self) -> None:
        """Seed 000 security headers: the six listed headers are applied (SPEC §2.15)."""
        ns = run_seed(SEED000_HEADERS)
        headers = ns["app"].test_client().get("/").headers
        self.assertEqual(
            headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains"
        )
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(headers.get("x-frame-options"), "DENY")
        self.assertEqual(headers.get("x-xss-protection"), "1; mode=block")
        self.assertEqual(headers.get("referrer-policy"), "strict-origin-when-cross-origin")
        self.assertEqual(
            headers.get("content-security-policy"), "default-src 'self'; script-src 'self'"
        )
