"""Shared fixtures for the security tests: fixed keys, token forging, a clock at a real epoch."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.internet import task

from cello_twisted import App, JwtConfig, SessionConfig, SessionTooLargeError
from cello_twisted.middleware import JwtAuth
from cello_twisted.stores import MemorySessionStore

SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
EPOCH = 1_700_000_000
KEY = b"s" * 32  # session secret
OTHER = b"t" * 32  # another session secret

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC256 = ec.generate_private_key(ec.SECP256R1())
_EC384 = ec.generate_private_key(ec.SECP384R1())


def _private_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


RSA_PRIVATE = _private_pem(_RSA)
RSA_PUBLIC = _public_pem(_RSA)
EC256_PRIVATE = _private_pem(_EC256)
EC256_PUBLIC = _public_pem(_EC256)
EC384_PRIVATE = _private_pem(_EC384)
EC384_PUBLIC = _public_pem(_EC384)


def clock_at(seconds: float = EPOCH) -> task.Clock:
    clock = task.Clock()
    clock.advance(seconds)
    return clock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge_hs(
    header: dict[str, Any], payload: dict[str, Any], key: bytes, digest: Any = hashlib.sha256
) -> str:
    """A token signed by hand (to build attacks PyJWT refuses to build)."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    signature = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return signing_input + "." + b64(signature)


def unsigned(payload: dict[str, Any]) -> str:
    return (
        b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps(payload).encode())
        + "."
    )


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` ignoring InsecureSecretWarning (the seeds' short placeholders)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def assert_no_leak(case: Any, response: Any, *secrets: Any) -> None:
    """Standard error body only: no traceback, no exception name, no secret or token echoed."""
    body = response.json()
    case.assertLessEqual(set(body), {"error", "status", "detail"})
    text = response.text
    case.assertNotIn("Traceback", text)
    for secret in secrets:
        if isinstance(secret, bytes):
            secret = secret.decode("latin-1")
        if secret:
            case.assertNotIn(secret, text)


def with_warnings(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[type]]:
    """(result, warning categories) of ``fn(*args, **kwargs)``; works under trial and pytest."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [w.category for w in caught]


# -- shared app builders


def strict_app(config: JwtConfig | None = None, **kw: object) -> tuple[App, JwtAuth]:
    clock = clock_at()
    app = App(clock=clock)
    auth = app.use(JwtAuth(config or JwtConfig(secret=SECRET), **kw))

    @app.get("/me")
    def me(request: object) -> dict:
        return {"sub": request.jwt_claims["sub"], "ctx": request.context.get("jwt_claims")["sub"]}  # type: ignore[attr-defined]

    @app.post("/refresh")
    def refresh(request: object) -> dict:
        return app.jwt.refresh(request.json()["refresh_token"])  # type: ignore[attr-defined]

    @app.get("/public/info")
    def info(request: object) -> dict:
        return {"claims": request.context.get("jwt_claims")}  # type: ignore[attr-defined]

    return app, auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_app(**config: Any) -> App:
    config.setdefault("secret", KEY)
    config.setdefault("secure", False)
    app = App(clock=clock_at())
    app.enable_sessions(SessionConfig(**config))

    @app.post("/set")
    def set_(request: Any) -> dict:
        request.session.update(request.json())
        return dict(request.session)

    @app.get("/get")
    def get(request: Any) -> dict:
        return {"data": dict(request.session), "new": request.session.new}

    @app.post("/clear")
    def clear(request: Any) -> dict:
        request.session.clear()
        return {}

    @app.post("/clear-then-set")
    def clear_then_set(request: Any) -> dict:
        request.session.clear()
        request.session["fresh"] = True
        return {}

    @app.post("/regenerate")
    def regenerate(request: Any) -> dict:
        old = request.session.id
        request.session.regenerate()
        return {"old": old, "new": request.session.id}

    @app.post("/big")
    def big(request: Any) -> dict:
        try:
            request.session["blob"] = "x" * 5000
        except SessionTooLargeError:
            return {"refused": True, "unchanged": "blob" not in request.session}
        return {"refused": False}

    @app.post("/bad")
    def bad(request: Any) -> dict:
        try:
            request.session["obj"] = object()
        except TypeError:
            return {
                "type_error": True,
                "unchanged": "obj" not in request.session,
                "modified": request.session.modified,
            }
        return {"type_error": False}

    return app


def store_app(store: MemorySessionStore) -> App:
    """An app with store-backed sessions: POST /login (form user=...), POST /fixate, GET /me."""
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


def cookie_of(response: Any, name: str = "session_id") -> str | None:
    for header in response.headers.get_all("set-cookie"):
        if header.startswith(name + "="):
            return header
    return None


def run_seed(source: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "seed_example", **names}
    exec(compile(source, "<seed>", "exec"), namespace)  # noqa: S102 - the seed text is the test input
    return namespace
