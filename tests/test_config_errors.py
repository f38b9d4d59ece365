"""Every *Config is frozen and refuses bad values when built, with a ConfigError naming the field."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import attrs
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import (
    CSP,
    App,
    CorsConfig,
    CsrfConfig,
    JwtConfig,
    RateLimitConfig,
    SecurityHeadersConfig,
    SessionConfig,
    StaticFilesConfig,
    TlsConfig,
)
from cello_twisted.errors import ConfigError
from cello_twisted.response import format_cookie
from cello_twisted.stores import MemorySessionStore

KEY = b"k" * 32
PEM_LIKE = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


class ConfigErrorTests(SynchronousTestCase):
    def refused(self, build: Callable[[], Any]) -> ConfigError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with self.assertRaises(ConfigError) as caught:
                build()
        return caught.exception

    def test_shape(self) -> None:
        """ConfigError is a ValueError carrying field, value and allowed, all named in its message."""
        error = self.refused(lambda: RateLimitConfig(-1, 60))
        self.assertIsInstance(error, ValueError)
        self.assertEqual((error.field, error.value, error.allowed), ("RateLimitConfig.requests", -1, "an int > 0"))
        self.assertEqual(str(error), "RateLimitConfig.requests: -1 is not allowed; expected an int > 0")

    def test_rate_limit(self) -> None:
        """RateLimitConfig names the window, the strategy and an alias that disagrees."""
        self.assertEqual(self.refused(lambda: RateLimitConfig(5, 0)).field, "RateLimitConfig.window")
        error = self.refused(lambda: RateLimitConfig(5, 60, "fixed"))
        self.assertEqual((error.field, error.value), ("RateLimitConfig.strategy", "fixed"))
        self.assertIn("'token_bucket'", error.allowed)
        self.assertEqual(self.refused(lambda: RateLimitConfig(5, 60, max_requests=6)).field, "RateLimitConfig.max_requests")

    def test_cors(self) -> None:
        """CorsConfig names max_age, a malformed origin and credentials with "*"."""
        self.assertEqual(self.refused(lambda: CorsConfig(max_age=-1)).field, "CorsConfig.max_age")
        error = self.refused(lambda: CorsConfig(origins=["a.example"]))
        self.assertEqual((error.field, error.value), ("CorsConfig.origins", "a.example"))
        self.assertEqual(self.refused(lambda: CorsConfig(credentials=True)).field, "CorsConfig.credentials")

    def test_csrf(self) -> None:
        """CsrfConfig names an empty header name, an unknown SameSite and None without Secure."""
        self.assertEqual(self.refused(lambda: CsrfConfig(header_name="")).field, "CsrfConfig.header_name")
        error = self.refused(lambda: CsrfConfig(same_site="sometimes"))
        self.assertEqual((error.field, error.value), ("CsrfConfig.same_site", "sometimes"))
        self.assertEqual(self.refused(lambda: CsrfConfig(same_site="none", secure=False)).field, "CsrfConfig.same_site")
        self.assertEqual(self.refused(lambda: CsrfConfig(secret="")).field, "CsrfConfig.secret")

    def test_session(self) -> None:
        """SessionConfig names max_age, max_size, the cookie name, the secret and SameSite (alias too)."""
        self.assertEqual(self.refused(lambda: SessionConfig(secret=KEY, max_age=0)).field, "SessionConfig.max_age")
        self.assertEqual(self.refused(lambda: SessionConfig(secret=KEY, max_size=-5)).field, "SessionConfig.max_size")
        self.assertEqual(self.refused(lambda: SessionConfig(secret=KEY, cookie_name="a b")).field, "SessionConfig.cookie_name")
        self.assertEqual(self.refused(lambda: SessionConfig(secret=[])).field, "SessionConfig.secret")
        error = self.refused(lambda: SessionConfig(secret=KEY, samesite="loose"))
        self.assertEqual((error.field, error.value), ("SessionConfig.same_site", "loose"))

    def test_security_headers(self) -> None:
        """SecurityHeadersConfig names frame options, referrer policy, HSTS fields and header text; CSP names its directive."""
        error = self.refused(lambda: SecurityHeadersConfig(frame_options="ALLOW-FROM x"))
        self.assertEqual((error.field, error.value), ("SecurityHeadersConfig.frame_options", "ALLOW-FROM X"))
        self.assertEqual(self.refused(lambda: SecurityHeadersConfig(referrer_policy="sometimes")).field, "SecurityHeadersConfig.referrer_policy")
        self.assertEqual(self.refused(lambda: SecurityHeadersConfig(hsts_max_age=-1)).field, "SecurityHeadersConfig.hsts_max_age")
        self.assertEqual(self.refused(lambda: SecurityHeadersConfig(hsts_preload=True, hsts_include_subdomains=False)).field, "SecurityHeadersConfig.hsts_preload")
        self.assertEqual(self.refused(lambda: SecurityHeadersConfig(csp="default-src 'self'\r\nX-Evil: 1")).field, "SecurityHeadersConfig.csp")
        self.assertEqual(self.refused(lambda: CSP(unknown_src=["x"])).field, "CSP.unknown_src")
        self.assertEqual(self.refused(lambda: CSP(script_src=["'self'; report-uri x"])).field, "CSP.script_src")

    def test_jwt(self) -> None:
        """JwtConfig names the algorithm, lifetimes, leeway and the header name."""
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, algorithm="none")).field, "JwtConfig.algorithm")
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, expiration=0)).field, "JwtConfig.expiration")
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, refresh_expiry=1.5)).field, "JwtConfig.refresh_expiry")
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, leeway=-1)).field, "JwtConfig.leeway")
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, header_name="")).field, "JwtConfig.header_name")
        self.assertEqual(self.refused(lambda: JwtConfig(secret=KEY, expiration=60, expiry=61)).field, "JwtConfig.expiry")
        error = self.refused(lambda: JwtConfig(secret=KEY, cache_max_bytes=-1))
        self.assertEqual((error.field, error.value, error.allowed), ("JwtConfig.cache_max_bytes", -1, "an int >= 0"))

    def test_jwt_error_never_shows_key_material(self) -> None:
        """A refused JWT secret or key is described by type and size only, never its bytes."""
        for build in (
            lambda: JwtConfig(secret=PEM_LIKE, algorithm="HS256"),
            lambda: JwtConfig(secret=PEM_LIKE, algorithm="RS256"),
        ):
            error = self.refused(build)
            self.assertEqual(error.field, "JwtConfig.secret")
            self.assertNotIn("MIIE", str(error))
            self.assertNotIn("MIIE", repr(error.value))

    def test_static_files(self) -> None:
        """StaticFilesConfig names url_path, cache_max_age and a malformed cache_str duration."""
        self.assertEqual(self.refused(lambda: StaticFilesConfig("static", "/tmp")).field, "StaticFilesConfig.url_path")
        self.assertEqual(self.refused(lambda: StaticFilesConfig("/s", "/tmp", cache_max_age=-1)).field, "StaticFilesConfig.cache_max_age")
        error = self.refused(lambda: StaticFilesConfig("/s", "/tmp").cache_str("soon"))
        self.assertEqual((error.field, error.value), ("StaticFilesConfig.cache_max_age", "soon"))

    def test_tls(self) -> None:
        """TlsConfig names an empty certificate or key path and a cipher string OpenSSL refuses."""
        self.assertEqual(self.refused(lambda: TlsConfig("", "key.pem")).field, "TlsConfig.cert_path")
        self.assertEqual(self.refused(lambda: TlsConfig("cert.pem", None)).field, "TlsConfig.key_path")
        error = self.refused(lambda: TlsConfig("cert.pem", "key.pem", ciphers="NOT-A-CIPHER"))
        self.assertEqual((error.field, error.value), ("TlsConfig.ciphers", "NOT-A-CIPHER"))

    def test_app_and_store_bounds(self) -> None:
        """App(max_form_fields=) and MemorySessionStore(max_sessions=) name themselves when not an int >= 1."""
        error = self.refused(lambda: App(max_form_fields=0))
        self.assertEqual((error.field, error.value, error.allowed), ("App.max_form_fields", 0, "an int >= 1"))
        self.assertEqual(self.refused(lambda: MemorySessionStore(max_sessions=True)).field, "MemorySessionStore.max_sessions")


class FrozenTests(SynchronousTestCase):
    def test_configs_cannot_be_changed_in_place(self) -> None:
        """Assigning to a built config fails; a changed copy comes from attrs.evolve."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            configs: list[tuple[Any, str, Any]] = [
                (RateLimitConfig(5, 60), "requests", 10),
                (CorsConfig(), "max_age", 1),
                (CsrfConfig(), "secure", False),
                (SessionConfig(secret=KEY), "max_age", 1),
                (SecurityHeadersConfig(), "hsts", False),
                (JwtConfig(secret=KEY), "expiration", 1),
                (JwtConfig(secret=KEY), "cache_max_bytes", 0),
                (StaticFilesConfig("/s", "/tmp"), "cache_max_age", 1),
                (TlsConfig("c.pem", "k.pem"), "cert_path", "x.pem"),
                (TlsConfig("c.pem", "k.pem"), "ciphers", "ECDHE+AESGCM"),
            ]
        for config, name, value in configs:
            with self.assertRaises(attrs.exceptions.FrozenInstanceError, msg=type(config).__name__):
                setattr(config, name, value)
            self.assertEqual(getattr(attrs.evolve(config, **{name: value}), name), value, type(config).__name__)

    def test_evolve_validates_again(self) -> None:
        """A copy made with attrs.evolve is checked like a new config."""
        with self.assertRaises(ConfigError):
            attrs.evolve(RateLimitConfig(5, 60), requests=0)
        with self.assertRaises(ConfigError):
            attrs.evolve(SessionConfig(secret=KEY), same_site="None", secure=False)

    def test_evolve_keeps_aliases_and_derived_values(self) -> None:
        """evolve keeps every other setting, and derived values (keys, secrets) are rebuilt."""
        session = attrs.evolve(SessionConfig(secret=[KEY, b"o" * 32], samesite="strict"), max_age=60)
        self.assertEqual((session.secrets, session.same_site, session.max_age), ((KEY, b"o" * 32), "Strict", 60))
        jwt = attrs.evolve(JwtConfig(secret=KEY, expiry=60), issuer="me")
        self.assertEqual((jwt.expiration, jwt.issuer, jwt.signing_key), (60, "me", KEY))
        limit = attrs.evolve(RateLimitConfig(max_requests=5, window_secs=10, algorithm="token_bucket"), window=20)
        self.assertEqual((limit.requests, limit.window, limit.strategy), (5, 20, "token_bucket"))


class SameSiteTests(SynchronousTestCase):
    def test_one_spelling_table(self) -> None:
        """Cookies, sessions and CSRF accept the same SameSite spellings and write the same canonical value."""
        for given, canonical in (("strict", "Strict"), ("LAX", "Lax"), ("None", "None")):
            self.assertIn(f"SameSite={canonical}", format_cookie("a", "1", secure=True, samesite=given))
            self.assertEqual(SessionConfig(secret=KEY, same_site=given).same_site, canonical)
            self.assertEqual(CsrfConfig(same_site=given).same_site, canonical)
        with self.assertRaises(ValueError):
            format_cookie("a", "1", samesite="loose")
