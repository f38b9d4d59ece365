"""Acceptance 1: the security code examples of seeds 000, 001 and 002 run with only the import renamed.

Each example's text is kept as the seed shows it (``from cello`` → ``from cello_twisted``);
the test supplies what the seed leaves to the reader (``authenticate``, ``Response`` where
the snippet uses it without importing it) and checks that it does what the seed says.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import jwt as pyjwt
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import Response
from tests._support.auth import (
    RSA_PRIVATE,
    RSA_PUBLIC,
    bearer,
    run_seed,
    with_warnings,
)

# -- seed 001_abc68592b581f572.txt (JWT authentication page) ------------------------------

SEED001_QUICK_START = """
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
"""

SEED001_HEAD = """
from cello_twisted import App, JwtConfig
from cello_twisted.middleware import JwtAuth
app = App()
jwt_config = JwtConfig(
secret=b"your-secret-key-minimum-32-bytes-long",
algorithm="HS256",
expiration=3600 # Token valid for 1 hour
)
"""

SEED001_SKIP = """
jwt_auth = JwtAuth(jwt_config)
# Public paths -- no token required
jwt_auth.skip_path("/login")
jwt_auth.skip_path("/register")
jwt_auth.skip_path("/health")
jwt_auth.skip_path("/docs")
jwt_auth.skip_path("/openapi.json")
jwt_auth.skip_path("/public")
app.use(jwt_auth)
"""

SEED001_LOGIN = """
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
"""

SEED001_PROFILE = """
@app.get("/profile")
def profile(request):
    claims = request.context.get("jwt_claims")
    return {
        "user_id": claims["sub"],
        "name": claims.get("name"),
        "roles": claims.get("roles", [])
    }
"""

SEED001_REFRESH = """
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
"""

SEED001_BLACKLIST = """
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
"""

SEED001_GUARDS = """
from cello_twisted.guards import Role, Permission
admin_only = Role(["admin"])
can_write = Permission(["write"])
@app.get("/admin/dashboard", guards=[admin_only])
def admin_dashboard(request):
    return {"admin": True}
@app.post("/articles", guards=[can_write])
def create_article(request):
    return {"created": True}
"""

SEED001_RSA = """
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
"""

SEED001_HMAC = """
# HMAC (symmetric) -- same secret for signing and verification
jwt_config = JwtConfig(
secret=b"your-secret-key-minimum-32-bytes-long",
algorithm="HS256"
)
"""

SEED001_ENV = """
import os
jwt_config = JwtConfig(
secret=os.environ["JWT_SECRET"].encode(),
algorithm="HS256",
expiration=3600
)
"""

USERS = {
    ("alice", "pw"): {
        "id": 1,
        "name": "Alice",
        "roles": ["admin", "editor"],
        "permissions": ["read", "write"],
    },
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
        token = pyjwt.encode(
            {"sub": "user_123", "exp": int(time.time()) + 3600},
            b"your-secret-key-minimum-32-bytes-long",
            algorithm="HS256",
        )
        self.assertEqual(
            client.get("/protected", headers=bearer(token)).json(), {"user_id": "user_123"}
        )
        self.assertEqual(client.get("/protected").status_code, 401)

    def full_app(self) -> dict[str, Any]:
        source = (
            SEED001_HEAD
            + SEED001_SKIP
            + SEED001_LOGIN
            + SEED001_PROFILE
            + SEED001_REFRESH
            + SEED001_BLACKLIST
            + SEED001_GUARDS
        )
        return run_seed(source, authenticate=seed_authenticate, Response=Response)

    def login(self, client: Any, username: str = "alice") -> str:
        response = client.post("/login", json={"username": username, "password": "pw"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["expires_in"], 3600)
        return response.json()["token"]

    def test_login_skip_paths_and_profile(self) -> None:
        """Seed 001 Token Creation / Validation / Skip Paths: login skipped, profile reads claims."""
        client = self.full_app()["app"].test_client()
        self.assertEqual(
            client.post("/login", json={"username": "alice", "password": "no"}).status_code, 401
        )
        token = self.login(client)
        self.assertEqual(
            client.get("/profile", headers=bearer(token)).json(),
            {"user_id": "1", "name": "Alice", "roles": ["admin", "editor"]},
        )
        self.assertEqual(client.get("/profile").status_code, 401)
        self.assertEqual(
            client.get("/public/anything").status_code, 404
        )  # skipped: reaches routing

    def test_refresh(self) -> None:
        """Seed 001 Token Refresh: a valid token gets a fresh one; no token is refused."""
        client = self.full_app()["app"].test_client()
        token = self.login(client)
        fresh = client.post("/refresh", headers=bearer(token)).json()
        self.assertEqual(
            pyjwt.decode(
                fresh["token"], b"your-secret-key-minimum-32-bytes-long", algorithms=["HS256"]
            )["sub"],
            "1",
        )
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
        self.assertEqual(
            client.get("/admin/dashboard", headers=bearer(alice)).json(), {"admin": True}
        )
        self.assertEqual(client.get("/admin/dashboard", headers=bearer(bob)).status_code, 403)
        self.assertEqual(client.post("/articles", headers=bearer(bob)).status_code, 403)
        custom = pyjwt.encode(
            {
                "sub": "user_123",
                "roles": ["admin", "editor"],
                "permissions": ["read", "write", "delete"],
                "org_id": "org_456",
                "iat": int(time.time()),
                "exp": int(time.time()) + 3600,
            },
            b"your-secret-key-minimum-32-bytes-long",
            algorithm="HS256",
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
            ns = run_seed(
                SEED001_HEAD.replace("app = App()", "app = App()\n").split("jwt_config =")[0]
                + SEED001_RSA
            )
        finally:
            os.chdir(cwd)
        client = ns["app"].test_client()
        token = pyjwt.encode(
            {"sub": "rsa-user", "exp": int(time.time()) + 60}, RSA_PRIVATE, algorithm="RS256"
        )
        self.assertEqual(
            client.get("/protected", headers=bearer(token)).json(), {"user_id": "rsa-user"}
        )
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
