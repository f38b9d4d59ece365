"""Sessions: sealing, expiry, rotation, change-only Set-Cookie, clear/revocation, size, store mode (SPEC §2.12)."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, InsecureSecretWarning, SessionConfig, SessionTooLargeError
from cello_twisted.middleware import Sessions
from cello_twisted.middleware._session_seal import derive_key
from cello_twisted.stores import MemorySessionStore
from tests._support.auth import (
    KEY,
    OTHER,
    clock_at,
    cookie_of,
    session_app,
    with_warnings,
)


class CookieFormatTests(SynchronousTestCase):
    def test_format_is_aes_gcm_hkdf_with_name_as_aad(self) -> None:
        """§2.12 r1: base64url(0x01 ‖ nonce ‖ AES-256-GCM(JSON{id,iat,exp,d})), AAD = cookie name, HKDF key."""
        app = session_app()
        client = app.test_client()
        client.post("/set", json={"user": "alice"})
        value = client.cookies["session_id"]
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        self.assertEqual(raw[:1], b"\x01")
        plaintext = AESGCM(derive_key(KEY)).decrypt(raw[1:13], raw[13:], b"session_id")
        payload = json.loads(plaintext)
        self.assertEqual(set(payload), {"id", "iat", "exp", "d"})
        self.assertEqual(payload["d"], {"user": "alice"})
        self.assertEqual(payload["exp"] - payload["iat"], 86400)

    def test_fresh_nonce_per_write(self) -> None:
        """§2.12 r1: the same data sealed twice gives different cookies."""
        app = session_app()
        client = app.test_client()
        first = cookie_of(client.post("/set", json={"a": 1}))
        second = cookie_of(client.post("/set", json={"a": 1}))
        self.assertNotEqual(first, second)

    def test_attributes(self) -> None:
        """§2.12 r5: Path, Max-Age, Expires, HttpOnly, Secure, SameSite, Domain."""
        app = App(clock=clock_at())
        app.enable_sessions(
            SessionConfig(
                secret=KEY, max_age=60, domain="example.com", path="/app", same_site="strict"
            )
        )

        @app.get("/app/x")
        def x(request: Any) -> dict:
            request.session["k"] = 1
            return {}

        header = cookie_of(app.test_client().get("/app/x"))
        for part in (
            "Path=/app",
            "Max-Age=60",
            "Expires=",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Domain=example.com",
        ):
            self.assertIn(part, header)


class BehaviourTests(SynchronousTestCase):
    def test_round_trip_and_read_only_sends_no_cookie(self) -> None:
        """§2.12 r4: data persists; a read-only request sends no Set-Cookie."""
        client = session_app().test_client()
        self.assertIsNotNone(cookie_of(client.post("/set", json={"n": 1})))
        response = client.get("/get")
        self.assertEqual(response.json(), {"data": {"n": 1}, "new": False})
        self.assertIsNone(cookie_of(response))
        fresh = session_app().test_client().get("/get")
        self.assertEqual(fresh.json(), {"data": {}, "new": True})
        self.assertIsNone(cookie_of(fresh))

    def test_expiry_from_inside_the_cookie(self) -> None:
        """§2.12 r3: a cookie replayed after exp reads empty even if the browser kept it."""
        app = session_app(max_age=100)
        client = app.test_client()
        client.post("/set", json={"n": 1})
        value = client.cookies["session_id"]
        app.clock.advance(99)
        self.assertEqual(client.get("/get", cookies={"session_id": value}).json()["data"], {"n": 1})
        app.clock.advance(1)
        self.assertEqual(
            client.get("/get", cookies={"session_id": value}).json(), {"data": {}, "new": True}
        )

    def test_key_rotation_reseals_with_newest(self) -> None:
        """§2.12 r2/r4: a cookie sealed with an older secret opens and is re-sealed with the newest."""
        old_app = session_app(secret=OTHER)
        client = old_app.test_client()
        client.post("/set", json={"n": 1})
        old_cookie = client.cookies["session_id"]
        new_app = session_app(secret=[KEY, OTHER])
        new_client = new_app.test_client()
        response = new_client.get("/get", cookies={"session_id": old_cookie})
        self.assertEqual(response.json()["data"], {"n": 1})
        resealed = new_client.cookies["session_id"]
        self.assertNotEqual(resealed, old_cookie)
        only_new = session_app(secret=KEY).test_client()
        self.assertEqual(
            only_new.get("/get", cookies={"session_id": resealed}).json()["data"], {"n": 1}
        )
        self.assertIsNone(cookie_of(new_client.get("/get")))  # newest-key cookies are not re-sent

    def test_clear_expires_cookie_and_revokes(self) -> None:
        """§2.12 r6: clear() expires the cookie; a replayed copy of the old cookie reads empty."""
        client = session_app().test_client()
        client.post("/set", json={"user": "alice"})
        old = client.cookies["session_id"]
        header = cookie_of(client.post("/clear"))
        self.assertIn("Max-Age=0", header)
        self.assertIn("1970", header)
        self.assertNotIn("session_id", client.cookies)
        self.assertEqual(
            client.get("/get", cookies={"session_id": old}).json(), {"data": {}, "new": True}
        )

    def test_clear_without_cookie_sends_nothing(self) -> None:
        """§2.12 r6: clear() on a request without the cookie sets none."""
        self.assertIsNone(cookie_of(session_app().test_client().post("/clear")))

    def test_write_after_clear_is_a_new_session(self) -> None:
        """§2.12 r6: data written after clear() yields a normal new cookie with a new id."""
        client = session_app().test_client()
        client.post("/set", json={"user": "alice"})
        old = client.cookies["session_id"]
        header = cookie_of(client.post("/clear-then-set"))
        self.assertNotIn("Max-Age=0", header)
        self.assertEqual(client.get("/get").json()["data"], {"fresh": True})
        self.assertEqual(client.get("/get", cookies={"session_id": old}).json()["data"], {})

    def test_regenerate(self) -> None:
        """§2.12: regenerate() keeps data under a new id; the old cookie is revoked."""
        client = session_app().test_client()
        client.post("/set", json={"n": 1})
        old = client.cookies["session_id"]
        ids = client.post("/regenerate").json()
        self.assertNotEqual(ids["old"], ids["new"])
        self.assertEqual(client.get("/get").json()["data"], {"n": 1})
        self.assertEqual(client.get("/get", cookies={"session_id": old}).json()["data"], {})

    def test_size_limit(self) -> None:
        """§2.12 r8: a mutation past max_size raises SessionTooLargeError; session unchanged."""
        self.assertEqual(
            session_app().test_client().post("/big").json(), {"refused": True, "unchanged": True}
        )
        self.assertEqual(
            session_app(max_size=9000).test_client().post("/big").json(), {"refused": False}
        )

    def test_size_limit_uncaught_is_500(self) -> None:
        """§2.12 r8: SessionTooLargeError uncaught → 500."""
        app = session_app()

        @app.post("/huge")
        def huge(request: Any) -> dict:
            request.session["x"] = "y" * 10000
            return {}

        self.assertEqual(app.test_client().post("/huge").status_code, 500)
        self.assertEqual(len(self.flushLoggedErrors(SessionTooLargeError)), 1)

    def test_size_estimate_matches_real_cookie(self) -> None:
        """§2.12 r8: the size check at mutation agrees with the cookie actually written."""
        app = session_app(max_size=400)

        @app.post("/fill")
        def fill(request: Any) -> dict:
            n = 0
            while True:
                try:
                    request.session["v"] = "x" * n
                except SessionTooLargeError:
                    return {"n": n - 1}
                n += 1

        response = app.test_client().post("/fill")
        header = cookie_of(response)
        self.assertLessEqual(len(header.split(";", 1)[0]), 400)
        self.assertGreater(len(header.split(";", 1)[0]), 396)

    def test_non_json_value(self) -> None:
        """§2.12 r7: non-JSON values raise TypeError and leave the session unchanged."""
        self.assertEqual(
            session_app().test_client().post("/bad").json(),
            {"type_error": True, "unchanged": True, "modified": False},
        )

    def test_modified_flag_forces_write(self) -> None:
        """§2.12 r4: setting modified = True sends the cookie (nested mutation)."""
        app = session_app()

        @app.post("/append")
        def append(request: Any) -> dict:
            request.session["items"].append(1)
            request.session.modified = True
            return {}

        client = app.test_client()
        client.post("/set", json={"items": []})
        self.assertIsNotNone(cookie_of(client.post("/append")))
        self.assertEqual(client.get("/get").json()["data"], {"items": [1]})

    def test_session_is_context_session_and_runtime_error_without(self) -> None:
        """§2.12: request.session is request.context["session"]; without sessions → RuntimeError."""
        app = session_app()

        @app.get("/same")
        def same(request: Any) -> dict:
            return {"same": request.session is request.context["session"]}

        self.assertEqual(app.test_client().get("/same").json(), {"same": True})
        bare = App()

        @bare.get("/s")
        def s(request: Any) -> str:
            try:
                _ = request.session
            except RuntimeError:
                return "runtime"
            return "no"

        self.assertEqual(bare.test_client().get("/s").text, "runtime")


class ConfigTests(SynchronousTestCase):
    def test_validation(self) -> None:
        """§2.12 errors: empty secret/list, bad same_site, None without secure, max_age <= 0, empty name."""
        for kwargs in (
            {"secret": b""},
            {"secret": []},
            {"secret": KEY, "same_site": "sometimes"},
            {"secret": KEY, "same_site": "None", "secure": False},
            {"secret": KEY, "max_age": 0},
            {"secret": KEY, "cookie_name": ""},
        ):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                SessionConfig(**kwargs)
        self.assertEqual(
            SessionConfig(secret=KEY, samesite="strict", httponly=False).same_site, "Strict"
        )

    def test_short_secret_warns(self) -> None:
        """§1 r8: a session secret under 32 bytes warns and is reported by secret_problems()."""
        config, caught = with_warnings(SessionConfig, secret="session-encryption-key")
        self.assertEqual(caught, [InsecureSecretWarning])
        self.assertEqual(len(Sessions(config).secret_problems()), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.assertEqual(Sessions(SessionConfig(secret=KEY)).secret_problems(), [])

    def test_cluster_warning(self) -> None:
        """Memory revocation/session stores are per process: cluster_warning says so."""
        self.assertIn("revoked", Sessions(SessionConfig(secret=KEY)).cluster_warning())
        self.assertIn(
            "MemorySessionStore",
            Sessions(SessionConfig(secret=KEY, store=MemorySessionStore())).cluster_warning(),
        )

    def test_preflight_untouched(self) -> None:
        """§2.6 r6: a CORS preflight gets no session and no cookie."""
        app = session_app()
        response = app.test_client().options(
            "/set", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
        )
        self.assertIsNone(cookie_of(response))
