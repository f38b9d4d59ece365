"""Acceptance 1: the security code examples of seeds 000, 001 and 002 run with only the import renamed.

Each example's text is kept as the seed shows it (``from cello`` → ``from cello_twisted``);
the test supplies what the seed leaves to the reader (``authenticate``, ``Response`` where
the snippet uses it without importing it) and checks that it does what the seed says.
"""

from __future__ import annotations

import os
import tempfile
import time
from types import SimpleNamespace
from typing import Any

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import InsecureSecretWarning, Response

from ._helpers import RSA_PRIVATE, RSA_PUBLIC, clock_at, with_warnings


def run_seed(source: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "seed_example", **names}
    exec(compile(source, "<seed>", "exec"), namespace)  # noqa: S102 - the seed text is the test input
    return namespace


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- seed 000_baf6e00aa0281f07.txt (v0.4.0 release notes) ---------------------------------

SEED000_JWT = '''
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
'''

SEED000_SESSIONS = '''
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
'''

SEED000_HEADERS = '''
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
'''


class Seed000Tests(SynchronousTestCase):
    """Seed 000_baf6e00aa0281f07.txt: JWT, sessions and security headers sections."""

    def test_jwt_section(self) -> None:
        """Seed 000 JWT: enable_jwt + app.jwt.create_token + request.jwt_claims (SPEC §2.10)."""
        users = {"alice": SimpleNamespace(id=7, role="admin")}
        ns, caught = with_warnings(run_seed, SEED000_JWT, authenticate=lambda body: users[body["username"]])
        self.assertIn(InsecureSecretWarning, caught)  # "your-secret-key" is a 15-byte placeholder
        client = ns["app"].test_client()
        token = client.post("/login", json={"username": "alice"}).json()["access_token"]
        claims = pyjwt.decode(token, "your-secret-key", algorithms=["HS256"], issuer="cello-app", options={"verify_sub": False})
        self.assertEqual((claims["sub"], claims["role"], claims["exp"] - claims["iat"]), (7, "admin", 3600))
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
        self.assertEqual(headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains")
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(headers.get("x-frame-options"), "DENY")
        self.assertEqual(headers.get("x-xss-protection"), "1; mode=block")
        self.assertEqual(headers.get("referrer-policy"), "strict-origin-when-cross-origin")
        self.assertEqual(headers.get("content-security-policy"), "default-src 'self'; script-src 'self'")


# -- seed 001_abc68592b581f572.txt (JWT authentication page) ------------------------------

SEED001_QUICK_START = '''
from cello_twisted import App, JwtConfig
from cello_twisted.middleware import JwtAuth
app = App()
jwt_config = JwtConfig(
secret=b"your-secret-key-minimum-32-bytes-long",
algorithm="HS256",
expiration=3600 # Token valid for 1 hour
)
app.use(JwtAuth(jwt_config))
@app.get("/protected")
def protected(request):
    claims = request.context.get("jwt_claims")
    return {"user_id": claims["sub"]}
'''

SEED001_HEAD = '''
from cello_twisted import App, JwtConfig
from cello_twisted.middleware import JwtAuth
app = App()
jwt_config = JwtConfig(
secret=b"your-secret-key-minimum-32-bytes-long",
algorithm="HS256",
expiration=3600 # Token valid for 1 hour
)
'''

SEED001_SKIP = '''
jwt_auth = JwtAuth(jwt_config)
# Public paths -- no token required
jwt_auth.skip_path("/login")
jwt_auth.skip_path("/register")
jwt_auth.skip_path("/health")
jwt_auth.skip_path("/docs")
jwt_auth.skip_path("/openapi.json")
jwt_auth.skip_path("/public")
app.use(jwt_auth)
'''

SEED001_LOGIN = '''
import jwt # PyJWT library
import time
SECRET = b"your-secret-key-minimum-32-bytes-long"
@app.post("/login")
def login(request):
    data = request.json()
    username = data.get("username")
    password = data.get("password")
    # Validate credentials against your database
    user = authenticate(username, password)
    if not user:
        return Response.json({"error": "Invalid credentials"}, status=401)
    # Create JWT token
    now = int(time.time())
    payload = {
        "sub": str(user["id"]), # Subject (user ID)
        "name": user["name"], # Custom claim
        "roles": user["roles"], # Custom claim
        "iat": now, # Issued at
        "exp": now + 3600 # Expires in 1 hour
    }
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    return {"token": token, "expires_in": 3600}
'''

SEED001_PROFILE = '''
@app.get("/profile")
def profile(request):
    claims = request.context.get("jwt_claims")
    return {
        "user_id": claims["sub"],
        "name": claims.get("name"),
        "roles": claims.get("roles", [])
    }
'''

SEED001_REFRESH = '''
@app.post("/refresh")
def refresh_token(request):
    claims = request.context.get("jwt_claims")
    if not claims:
        return Response.json({"error": "Invalid token"}, status=401)
    # Issue a new token with a fresh expiration
    now = int(time.time())
    new_payload = {
        "sub": claims["sub"],
        "name": claims.get("name"),
        "roles": claims.get("roles", []),
        "iat": now,
        "exp": now + 3600
    }
    new_token = jwt.encode(new_payload, SECRET, algorithm="HS256")
    return {"token": new_token, "expires_in": 3600}
'''

SEED001_BLACKLIST = '''
# In-memory blacklist (use Redis in production)
blacklisted_tokens = set()
@app.post("/logout")
def logout(request):
    token = request.headers.get("authorization", "").replace("Bearer ", "")
    blacklisted_tokens.add(token)
    return {"logged_out": True}
# Check blacklist in a guard or middleware
@app.get("/protected")
def protected(request):
    token = request.headers.get("authorization", "").replace("Bearer ", "")
    if token in blacklisted_tokens:
        return Response.json({"error": "Token revoked"}, status=401)
    claims = request.context.get("jwt_claims")
    return {"user": claims["sub"]}
'''

SEED001_GUARDS = '''
from cello_twisted.guards import Role, Permission
admin_only = Role(["admin"])
can_write = Permission(["write"])
@app.get("/admin/dashboard", guards=[admin_only])
def admin_dashboard(request):
    return {"admin": True}
@app.post("/articles", guards=[can_write])
def create_article(request):
    return {"created": True}
'''

SEED001_RSA = '''
# RSA (asymmetric) -- public key for verification
jwt_config = JwtConfig(
secret=open("public_key.pem", "rb").read(),
algorithm="RS256"
)
app.use(JwtAuth(jwt_config))
@app.get("/protected")
def protected(request):
    claims = request.context.get("jwt_claims")
    return {"user_id": claims["sub"]}
'''

SEED001_HMAC = '''
# HMAC (symmetric) -- same secret for signing and verification
jwt_config = JwtConfig(
secret=b"your-secret-key-minimum-32-bytes-long",
algorithm="HS256"
)
'''

SEED001_ENV = '''
import os
jwt_config = JwtConfig(
secret=os.environ["JWT_SECRET"].encode(),
algorithm="HS256",
expiration=3600
)
'''

USERS = {
    ("alice", "pw"): {"id": 1, "name": "Alice", "roles": ["admin", "editor"], "permissions": ["read", "write"]},
    ("bob", "pw"): {"id": 2, "name": "Bob", "roles": ["viewer"]},
}


def seed_authenticate(username: str, password: str) -> Any:
    return USERS.get((username, password))


class Seed001Tests(SynchronousTestCase):
    """Seed 001_abc68592b581f572.txt: the JWT authentication page."""

    def test_quick_start(self) -> None:
        """Seed 001 Quick Start: JwtAuth verifies a PyJWT token; claims in request.context (§2.10 r12/r13)."""
        ns = run_seed(SEED001_QUICK_START)
        client = ns["app"].test_client()
        token = pyjwt.encode({"sub": "user_123", "exp": int(time.time()) + 3600}, b"your-secret-key-minimum-32-bytes-long", algorithm="HS256")
        self.assertEqual(client.get("/protected", headers=bearer(token)).json(), {"user_id": "user_123"})
        self.assertEqual(client.get("/protected").status_code, 401)

    def full_app(self) -> dict[str, Any]:
        source = SEED001_HEAD + SEED001_SKIP + SEED001_LOGIN + SEED001_PROFILE + SEED001_REFRESH + SEED001_BLACKLIST + SEED001_GUARDS
        return run_seed(source, authenticate=seed_authenticate, Response=Response)

    def login(self, client: Any, username: str = "alice") -> str:
        response = client.post("/login", json={"username": username, "password": "pw"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["expires_in"], 3600)
        return response.json()["token"]

    def test_login_skip_paths_and_profile(self) -> None:
        """Seed 001 Token Creation / Validation / Skip Paths: login skipped, profile reads claims."""
        client = self.full_app()["app"].test_client()
        self.assertEqual(client.post("/login", json={"username": "alice", "password": "no"}).status_code, 401)
        token = self.login(client)
        self.assertEqual(
            client.get("/profile", headers=bearer(token)).json(),
            {"user_id": "1", "name": "Alice", "roles": ["admin", "editor"]},
        )
        self.assertEqual(client.get("/profile").status_code, 401)
        self.assertEqual(client.get("/public/anything").status_code, 404)  # skipped: reaches routing

    def test_refresh(self) -> None:
        """Seed 001 Token Refresh: a valid token gets a fresh one; no token is refused."""
        client = self.full_app()["app"].test_client()
        token = self.login(client)
        fresh = client.post("/refresh", headers=bearer(token)).json()
        self.assertEqual(pyjwt.decode(fresh["token"], b"your-secret-key-minimum-32-bytes-long", algorithms=["HS256"])["sub"], "1")
        self.assertEqual(client.post("/refresh").status_code, 401)

    def test_blacklisting(self) -> None:
        """Seed 001 Token Blacklisting: after /logout the same token gets 401 on /protected."""
        client = self.full_app()["app"].test_client()
        token = self.login(client)
        self.assertEqual(client.get("/protected", headers=bearer(token)).json(), {"user": "1"})
        self.assertEqual(client.post("/logout", headers=bearer(token)).json(), {"logged_out": True})
        response = client.get("/protected", headers=bearer(token))
        self.assertEqual((response.status_code, response.json()), (401, {"error": "Token revoked"}))

    def test_guards_with_jwt(self) -> None:
        """Seed 001 Combining JWT with Guards: Role/Permission read the token's claims (§2.11 r7)."""
        client = self.full_app()["app"].test_client()
        alice, bob = self.login(client), self.login(client, "bob")
        self.assertEqual(client.get("/admin/dashboard", headers=bearer(alice)).json(), {"admin": True})
        self.assertEqual(client.get("/admin/dashboard", headers=bearer(bob)).status_code, 403)
        self.assertEqual(client.post("/articles", headers=bearer(bob)).status_code, 403)
        custom = pyjwt.encode(
            {"sub": "user_123", "roles": ["admin", "editor"], "permissions": ["read", "write", "delete"],
             "org_id": "org_456", "iat": int(time.time()), "exp": int(time.time()) + 3600},
            b"your-secret-key-minimum-32-bytes-long", algorithm="HS256",
        )
        self.assertEqual(client.post("/articles", headers=bearer(custom)).json(), {"created": True})

    def test_rsa_public_key_file(self) -> None:
        """Seed 001 Supported Algorithms: RS256 with a public key read from public_key.pem."""
        directory = tempfile.mkdtemp()
        with open(os.path.join(directory, "public_key.pem"), "wb") as f:
            f.write(RSA_PUBLIC)
        cwd = os.getcwd()
        os.chdir(directory)
        try:
            ns = run_seed(SEED001_HEAD.replace("app = App()", "app = App()\n").split("jwt_config =")[0] + SEED001_RSA)
        finally:
            os.chdir(cwd)
        client = ns["app"].test_client()
        token = pyjwt.encode({"sub": "rsa-user", "exp": int(time.time()) + 60}, RSA_PRIVATE, algorithm="RS256")
        self.assertEqual(client.get("/protected", headers=bearer(token)).json(), {"user_id": "rsa-user"})
        hs = pyjwt.encode({"sub": "x", "exp": int(time.time()) + 60}, b"k" * 32, algorithm="HS256")
        self.assertEqual(client.get("/protected", headers=bearer(hs)).status_code, 401)

    def test_hmac_and_env_configs(self) -> None:
        """Seed 001 HMAC example and Security Best Practices (secret from the environment)."""
        ns = run_seed(SEED001_HEAD + SEED001_HMAC)
        self.assertEqual((ns["jwt_config"].algorithm, ns["jwt_config"].expiration), ("HS256", 3600))
        self.patch(os, "environ", {**os.environ, "JWT_SECRET": "e" * 40})
        ns, caught = with_warnings(run_seed, SEED001_HEAD + SEED001_ENV)
        self.assertEqual(caught, [])
        self.assertEqual(ns["jwt_config"].signing_key, b"e" * 40)


# -- seed 002_6c0807fc035a49ee.txt (session management page) ------------------------------

SEED002_QUICK_START = '''
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
'''

SEED002_CONFIGS = '''
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
'''

SEED002_READ_WRITE = '''
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
'''

SEED002_FLOW = '''
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
'''


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
        self.assertEqual((config.max_age, config.cookie_name, config.http_only, config.secure, config.same_site), (604800, "session_id", True, True, "Lax"))

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
        self.assertEqual(client.post("/login", json={"username": "alice", "password": "bad"}).status_code, 401)
        self.assertEqual(client.post("/login", json={"username": "alice", "password": "pw"}).json(), {"logged_in": True})
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
        self.assertEqual(client.get("/me", cookies={"session_id": cookie}).json(), {"user_id": "1", "role": "admin"})
        app.clock.advance(1)
        self.assertEqual(client.get("/me", cookies={"session_id": cookie}).status_code, 401)

    def test_login_logout_flow_with_immediate_revocation(self) -> None:
        """Seed 002 Login/Logout Flow + 'Revocation: Immediate': a copied cookie is dead after logout."""
        client = run_seed(SEED002_FLOW)["app"].test_client()
        self.assertEqual(client.post("/login", json={"username": "admin", "password": "nope"}).status_code, 401)
        self.assertEqual(client.post("/login", json={"username": "admin", "password": "secret"}).json(), {"logged_in": True})
        stolen = client.cookies["session_id"]
        self.assertEqual(client.get("/me").json(), {"user_id": "1", "role": "admin"})
        self.assertEqual(client.post("/logout").json(), {"logged_out": True})
        self.assertEqual(client.get("/me").status_code, 401)
        self.assertEqual(client.get("/me", cookies={"session_id": stolen}).status_code, 401)
