"""Sessions: hostile cookies read as empty (acceptance 2) and store mode (SPEC §2.12 r2-r3, r6, r9-r10)."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted.middleware._session_seal import derive_key
from cello_twisted.stores import MemorySessionStore
from tests._support.auth import (
    KEY,
    OTHER,
    cookie_of,
    session_app,
)


class HostileTests(SynchronousTestCase):
    """Acceptance 2: hostile cookies read as an empty session, never an error."""

    def setUp(self) -> None:
        self.app = session_app()
        self.client = self.app.test_client()
        self.client.post("/set", json={"user": "alice"})
        self.value = self.client.cookies["session_id"]

    def assert_empty(self, cookies: dict[str, str]) -> None:
        response = self.app.test_client().get("/get", cookies=cookies)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"data": {}, "new": True})

    def test_flipped_byte(self) -> None:
        """§2.12 r2: any flipped byte fails the GCM tag → empty session."""
        raw = bytearray(base64.urlsafe_b64decode(self.value + "=" * (-len(self.value) % 4)))
        for index in (0, 5, 20, len(raw) - 1):
            flipped = bytearray(raw)
            flipped[index] ^= 0x01
            self.assert_empty(
                {"session_id": base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()}
            )

    def test_truncated_and_garbage(self) -> None:
        """§2.12 r2: truncated, non-base64 and oversized cookies → empty session."""
        for value in (self.value[:-5], self.value[:10], "!!!***", "A", "x" * 9000, "", "\u00e9"):
            self.assert_empty({"session_id": value})

    def test_other_secret(self) -> None:
        """§2.12 r2: a cookie sealed with another secret → empty session."""
        other = session_app(secret=OTHER).test_client()
        other.post("/set", json={"user": "mallory"})
        self.assert_empty({"session_id": other.cookies["session_id"]})

    def test_moved_to_another_cookie_name(self) -> None:
        """§2.12 r1: the cookie name is authenticated: a value moved to another name → empty."""
        app = session_app(cookie_name="other_session")
        response = app.test_client().get("/get", cookies={"other_session": self.value})
        self.assertEqual(response.json(), {"data": {}, "new": True})

    def test_expired(self) -> None:
        """§2.12 r3: an expired cookie → empty session."""
        self.app.clock.advance(86400)
        self.assert_empty({"session_id": self.value})

    def test_replay_after_clear(self) -> None:
        """§2.12 r6: the old cookie replayed after clear() → empty (cookie mode)."""
        self.client.post("/clear")
        self.assert_empty({"session_id": self.value})

    def test_wrong_version_byte(self) -> None:
        """§2.12 r2: a version byte other than 0x01 → empty."""
        raw = bytearray(base64.urlsafe_b64decode(self.value + "=" * (-len(self.value) % 4)))
        raw[0] = 0x02
        self.assert_empty(
            {"session_id": base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()}
        )


class StoreModeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = MemorySessionStore()
        self.app = session_app(store=self.store)
        self.client = self.app.test_client()

    def test_cookie_holds_only_the_id(self) -> None:
        """§2.12 r9: the sealed cookie has no "d"; data lives in the store with TTL max_age."""
        self.client.post("/set", json={"user": "alice"})
        value = self.client.cookies["session_id"]
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        payload = json.loads(AESGCM(derive_key(KEY)).decrypt(raw[1:13], raw[13:], b"session_id"))
        self.assertNotIn("d", payload)
        self.assertEqual(self.store.load(payload["id"]), {"user": "alice"})
        self.assertEqual(self.client.get("/get").json()["data"], {"user": "alice"})
        self.app.clock.advance(86400)
        self.assertIsNone(self.store.load(payload["id"]))

    def test_store_delete_revokes_from_anywhere(self) -> None:
        """§2.12 r10: store.delete(id) revokes: the cookie then reads empty."""
        self.client.post("/set", json={"user": "alice"})
        (sid,) = list(self.store._data)
        self.store.delete(sid)
        self.assertEqual(self.client.get("/get").json(), {"data": {}, "new": True})

    def test_clear_deletes_and_replay_is_empty(self) -> None:
        """§2.12 r10: clear() deletes the entry at once and expires the cookie; replay reads empty."""
        self.client.post("/set", json={"user": "alice"})
        old = self.client.cookies["session_id"]
        self.assertIn("Max-Age=0", cookie_of(self.client.post("/clear")))
        self.assertEqual(len(self.store), 0)
        self.assertEqual(
            self.app.test_client().get("/get", cookies={"session_id": old}).json(),
            {"data": {}, "new": True},
        )

    def test_regenerate_moves_data(self) -> None:
        """§2.12 r10: regenerate() moves data to a new id and deletes the old."""
        self.client.post("/set", json={"n": 1})
        ids = self.client.post("/regenerate").json()
        self.assertIsNone(self.store.load(ids["old"]))
        self.assertEqual(self.store.load(ids["new"]), {"n": 1})

    def test_no_size_limit_in_store_mode(self) -> None:
        """§2.12 r10: max_size does not apply in store mode."""
        self.assertEqual(self.client.post("/big").json(), {"refused": False})

    def test_deferred_store(self) -> None:
        """§2.12 stores: load/save/delete may return Deferreds."""
        from twisted.internet.defer import succeed

        class DeferredStore:
            def __init__(self) -> None:
                self.inner = MemorySessionStore()

            def load(self, sid: str) -> Any:
                return succeed(self.inner.load(sid))

            def save(self, sid: str, data: dict, ttl: float) -> Any:
                return succeed(self.inner.save(sid, data, ttl))

            def delete(self, sid: str) -> Any:
                return succeed(self.inner.delete(sid))

        client = session_app(store=DeferredStore()).test_client()
        client.post("/set", json={"n": 2})
        self.assertEqual(client.get("/get").json()["data"], {"n": 2})
        old = client.cookies["session_id"]
        client.post("/clear")
        self.assertEqual(client.get("/get", cookies={"session_id": old}).json()["data"], {})
