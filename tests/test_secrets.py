"""Short-secret policy across JWT, sessions and CSRF (SPEC §1 r8)."""

from __future__ import annotations

import warnings

from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, CsrfConfig, InsecureSecretWarning, JwtConfig, SessionConfig
from cello_twisted._secrets import check_secret, secret_bytes
from cello_twisted.middleware import JwtAuth
from tests._support.auth import with_warnings


def quietly(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


class SecretPolicyTests(SynchronousTestCase):
    def test_str_is_utf8_bytes_as_is(self) -> None:
        """§1 r8: str secrets are UTF-8 encoded, bytes used as is."""
        self.assertEqual(secret_bytes("é" * 16, "x"), "é".encode() * 16)
        self.assertEqual(secret_bytes(b"\xff" * 32, "x"), b"\xff" * 32)
        with self.assertRaises(TypeError):
            secret_bytes(1234, "x")

    def test_empty_is_value_error_everywhere(self) -> None:
        """§1 r8: an empty secret is a ValueError at construction for JWT, sessions and CSRF."""
        for make in (
            lambda: JwtConfig(secret=""),
            lambda: SessionConfig(secret=b""),
            lambda: CsrfConfig(secret=""),
        ):
            with self.assertRaises(ValueError):
                make()

    def test_warning_is_user_warning_subclass(self) -> None:
        """§1 r8: InsecureSecretWarning is a UserWarning emitted once at construction."""
        self.assertTrue(issubclass(InsecureSecretWarning, UserWarning))
        problem, caught = with_warnings(check_secret, "Thing.secret", b"abc", 32)
        self.assertEqual(caught, [InsecureSecretWarning])
        self.assertEqual(problem, "Thing.secret is 3 bytes; at least 32 bytes are required")

    def test_app_collects_problems(self) -> None:
        """§1 r8: App.secret_problems() names each short config and its minimum."""
        app = App()
        app.enable_sessions(quietly(SessionConfig, secret="short-session"))
        app.enable_csrf(quietly(CsrfConfig, secret="short-csrf"))
        app.use(JwtAuth(quietly(JwtConfig, secret=b"x" * 40, algorithm="HS512")))
        problems = app.secret_problems()
        self.assertEqual(len(problems), 3)
        self.assertIn("SessionConfig.secret", problems[0])
        self.assertIn("CsrfConfig.secret", problems[1])
        self.assertIn("64", problems[2])

    def test_strict_secrets(self) -> None:
        """§1 r8: App(strict_secrets=True) turns a short secret into a ValueError."""
        app = App(strict_secrets=True)
        with self.assertRaises(ValueError):
            app.enable_sessions(quietly(SessionConfig, secret="short"))
        with self.assertRaises(ValueError):
            app.use(JwtAuth(quietly(JwtConfig, secret="short")))
        app.enable_sessions(SessionConfig(secret=b"s" * 32))  # long enough is fine

    def test_rotation_list_checks_each(self) -> None:
        """§2.12 / §1 r8: each secret in a rotation list follows the policy."""
        config, caught = with_warnings(SessionConfig, secret=[b"n" * 32, b"old"])
        self.assertEqual(caught, [InsecureSecretWarning])
        self.assertEqual(len(config.secret_problems()), 1)
        self.assertIn("secret[1]", config.secret_problems()[0])
