"""The public API is pinned: every exported name resolves to the real object (SPEC §1 r3-r4)."""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import cello_twisted

SPEC_EXPORTS = (
    "App Blueprint Request Response JwtConfig RateLimitConfig SessionConfig SecurityHeadersConfig CSP "
    "TlsConfig CsrfConfig CorsConfig StaticFilesConfig SseEvent SseStream WebSocket WebSocketMessage "
    "UploadedFile FormData HTTPError BadRequestError InvalidTokenError InsecureSecretWarning "
    "SessionTooLargeError WebSocketClosed Guard RoleGuard PermissionGuard Authenticated And Or Not "
    "GuardError ForbiddenError UnauthorizedError Broadcast BroadcastOverflow __version__"
).split()


class ExportTests(SynchronousTestCase):
    def test_all_matches_spec(self) -> None:
        """§1 r3: __all__ lists exactly the SPEC's top-level exports."""
        self.assertEqual(sorted(cello_twisted.__all__), sorted(SPEC_EXPORTS))
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

    def test_import_does_not_install_reactor(self) -> None:
        """TWISTED_NOTES §4: importing cello_twisted never imports the reactor."""
        code = "import sys, cello_twisted, cello_twisted.middleware; print('twisted.internet.reactor' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "False", out.stderr)
