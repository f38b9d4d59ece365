"""The public API is pinned: every exported name resolves to the real object (SPEC §1 r3-r4)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from twisted.trial.unittest import SynchronousTestCase

import cello_twisted

SPEC_EXPORTS = (
    "App Blueprint Request Response JwtConfig RateLimitConfig SessionConfig SecurityHeadersConfig CSP "
    "TlsConfig CsrfConfig CorsConfig StaticFilesConfig SseEvent SseStream WebSocket WebSocketMessage "
    "UploadedFile FormData HTTPError BadRequestError InvalidTokenError InsecureSecretWarning "
    "SessionTooLargeError WebSocketClosed Guard RoleGuard PermissionGuard Authenticated And Or Not "
    "GuardError ForbiddenError UnauthorizedError Broadcast BroadcastOverflow __version__"
).split()
# Added by the v0.5 line (SPEC_OPERATIONS): the error every *Config raises.
V05_EXPORTS = ["ConfigError"]


# Every public sub-module and exactly the names it exports (its ``__all__``).
SUBMODULE_EXPORTS = {
    "guards": "Guard Role Permission RoleGuard PermissionGuard Authenticated And Or Not GuardError "
    "ForbiddenError UnauthorizedError verify_guards",
    "middleware": "JwtAuth RateLimit Sessions SecurityHeaders Cors Compression RequestLogging Csrf "
    "JwtConfig RateLimitConfig SessionConfig SecurityHeadersConfig CSP CsrfConfig CorsConfig "
    "StaticFilesConfig TlsConfig",
    "routing": "Constraint IntConstraint UuidConstraint AlphaConstraint AlphanumConstraint RegexConstraint",
    "stores": "MemoryTokenBlacklist MemorySessionStore MemoryRateLimitStore RateLimitResult "
    "RedisTokenBlacklist RedisSessionStore RedisRateLimitStore SharedStoreUnavailable",
    "testing": "TestClient TestResponse ResponseNotReady StreamingTestResponse TestWebSocket WebSocketRejected",
    "sse": "SseEvent SseStream sse_response close_streams",
    "websocket": "WebSocket WebSocketMessage close_all",
    "static": "StaticFilesConfig StaticMount file_response parse_duration",
}


class ExportTests(SynchronousTestCase):
    def test_all_matches_spec(self) -> None:
        """§1 r3: __all__ lists exactly the SPEC's top-level exports, plus the v0.5 additions."""
        self.assertEqual(sorted(cello_twisted.__all__), sorted(SPEC_EXPORTS + V05_EXPORTS))
        self.assertEqual(cello_twisted.__version__, "0.4.0")

    def test_every_export_resolves(self) -> None:
        """§1 r3: each name resolves to a real class/object defined in the package."""
        for name in cello_twisted.__all__:
            value = getattr(cello_twisted, name)
            if name != "__version__":
                self.assertTrue(value.__module__.startswith("cello_twisted"), name)

    def test_submodules(self) -> None:
        """§1 r4: guards, middleware, routing and stores sub-modules expose their names."""
        from cello_twisted import guards, middleware, routing

        self.assertIs(guards.RoleGuard, guards.Role)
        self.assertIs(guards.PermissionGuard, guards.Permission)
        self.assertIs(cello_twisted.RoleGuard, guards.Role)
        for name in ("Guard", "Role", "Permission", "Authenticated", "And", "Or", "Not", "GuardError",
                     "ForbiddenError", "UnauthorizedError", "verify_guards"):
            self.assertTrue(callable(getattr(guards, name)), name)
        for name in middleware.__all__:
            self.assertTrue(getattr(middleware, name).__module__.startswith("cello_twisted"), name)
        for name in ("IntConstraint", "UuidConstraint", "AlphaConstraint", "AlphanumConstraint", "RegexConstraint"):
            self.assertTrue(callable(getattr(routing, name)), name)

    def test_every_submodule_pins_its_names(self) -> None:
        """§1 r4: each public sub-module's __all__ is exactly its documented names, and each
        name resolves to an object defined in the package (lazy re-exports included)."""
        for package, names in SUBMODULE_EXPORTS.items():
            module = importlib.import_module(f"cello_twisted.{package}")
            with self.subTest(package=package):
                self.assertEqual(sorted(module.__all__), sorted(names.split()), package)
                for name in names.split():
                    value = getattr(module, name)
                    self.assertTrue(value.__module__.startswith("cello_twisted"), f"{package}.{name}")

    def test_one_object_per_public_name(self) -> None:
        """A name exported from the package and from a sub-module is the same object in both,
        so isinstance checks and except clauses agree whichever import a user wrote."""
        for package, names in SUBMODULE_EXPORTS.items():
            module = importlib.import_module(f"cello_twisted.{package}")
            for name in names.split():
                if name in cello_twisted.__all__:
                    self.assertIs(getattr(module, name), getattr(cello_twisted, name), f"{package}.{name}")

    @pytest.mark.live
    def test_import_does_not_install_reactor(self) -> None:
        """TWISTED_NOTES §4: importing cello_twisted never imports the reactor."""
        code = "import sys, cello_twisted, cello_twisted.middleware; print('twisted.internet.reactor' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "False", out.stderr)
