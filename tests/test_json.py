"""Hostile JSON input is a 400, JSON output never carries NaN/Infinity (SPEC_OPERATIONS §11 r5)."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, _json
from cello_twisted.request import Request


def make_app(**kwargs: Any) -> App:
    """An App on a task.Clock, so time-based behaviour is deterministic."""
    return App(clock=Clock(), **kwargs)


def _strict(body: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} on the wire")

    return json.loads(body, parse_constant=refuse)


class JsonInputTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.app = make_app()

        @self.app.post("/echo")
        def echo(request: Request) -> dict:
            return {"data": request.json()}

        self.client = self.app.test_client()

    def post(self, body: bytes) -> Any:
        return self.client.post("/echo", data=body, headers={"Content-Type": "application/json"})

    def assert_refused(self, body: bytes, detail: str) -> None:
        resp = self.post(body)
        self.assertEqual(resp.status_code, 400, body[:40])
        payload = resp.json()
        self.assertEqual((payload["error"], payload["status"]), ("Bad Request", 400))
        self.assertIn(detail, payload["detail"])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if e.get("log_failure") or "traceback" in str(e).lower()], [])

    def test_nesting_deeper_than_512_is_refused(self) -> None:
        """513 nested arrays or objects → 400; 512 parse; 3,000 (past the recursion limit) → 400, no traceback."""
        self.assertEqual(self.post(b"[" * 512 + b"]" * 512).status_code, 200)
        self.assert_refused(b"[" * 513 + b"]" * 513, "deeper than 512")
        self.assert_refused(b'{"a":' * 513 + b"1" + b"}" * 513, "deeper than 512")
        self.assert_refused(b'[{"a":' * 257 + b"1" + b"}]" * 257, "deeper than 512")
        self.assert_refused(b"[" * 3000 + b"]" * 3000, "deeper than 512")

    def test_brackets_inside_strings_do_not_count(self) -> None:
        """Many brackets inside strings are data, not nesting."""
        body = json.dumps({"s": "[" * 5000, "t": ["{"] * 600}).encode()
        self.assertEqual(self.post(body).json()["data"]["s"], "[" * 5000)

    def test_nan_and_infinity_tokens_are_refused(self) -> None:
        """NaN, Infinity and -Infinity are not JSON: 400."""
        for body in (b"NaN", b"[Infinity]", b'{"x": -Infinity}'):
            self.assert_refused(body, "is not valid JSON")

    def test_unpaired_surrogates_are_refused(self) -> None:
        """A lone high or low surrogate escape (in a value or a key) → 400; a proper pair is fine."""
        for body in (b'"\\ud800"', b'["ok", "\\uDC00"]', b'{"\\ud83d": 1}', b'"\\ud83d\\u0041"'):
            self.assert_refused(body, "unpaired surrogate")
        self.assertEqual(self.post(b'"\\ud83d\\ude00"').json()["data"], "\U0001f600")
        self.assertEqual(self.post(b'"\\\\ud800"').json()["data"], "\\ud800")  # an escaped backslash

    def test_raw_surrogate_bytes_are_refused(self) -> None:
        """UTF-8-encoded surrogates in the body are not valid UTF-8: 400."""
        resp = self.post(b'"\xed\xa0\x80"')
        self.assertEqual(resp.status_code, 400)

    def test_websocket_and_helper_share_the_rules(self) -> None:
        """The JSON decode helper refuses the same input with a ValueError."""
        for body in (b"NaN", "[" * 600 + "]" * 600, '"\\udfff"'):
            with self.assertRaises(ValueError):
                _json.loads(body)


class JsonOutputTests(SynchronousTestCase):
    def test_nan_from_a_handler_is_a_500_with_valid_json(self) -> None:
        """float("nan") or infinity in a handler's result → 500, logged once; the wire has valid JSON."""
        app = make_app()
        app.get("/nan")(lambda request: {"x": float("nan")})
        app.get("/inf")(lambda request: [float("inf")])
        client = app.test_client()
        for path in ("/nan", "/inf"):
            resp = client.get(path)
            self.assertEqual(resp.status_code, 500)
            self.assertEqual(_strict(resp.content), {"error": "Internal Server Error", "status": 500})
            self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_encoder_refuses_nan(self) -> None:
        """The shared encoder raises instead of writing NaN."""
        with self.assertRaises(ValueError):
            _json.dumpb({"x": float("-inf")})

    def test_cyclic_result_is_a_500_and_threads_see_no_false_cycles(self) -> None:
        """A handler result that contains itself → 500 (ValueError logged); the same shared object
        encoded from several threads at once is never reported as a cycle."""
        import threading

        app = make_app()
        loop: list[Any] = []
        loop.append(loop)
        app.get("/loop")(lambda request: {"x": loop})
        resp = app.test_client().get("/loop")
        self.assertEqual(resp.status_code, 500)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

        import datetime
        import sys

        # Dates call back into Python mid-encode, where another thread can take over.
        shared = {"items": [{"n": i, "on": datetime.date(2020, 1, 1 + i % 28)} for i in range(200)]}
        expected = _json.dumpb(shared)
        failures: list[BaseException] = []
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        self.addCleanup(sys.setswitchinterval, interval)

        def encode_many() -> None:
            try:
                for _ in range(200):
                    if _json.dumpb(shared) != expected:
                        raise AssertionError("different output")
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=encode_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(failures, [])

    def test_output_matches_the_standard_encoder(self) -> None:
        """Compact UTF-8 JSON, extended types, non-str keys: byte for byte what json.dumps writes."""
        import datetime
        import uuid

        value = {"a": [1, 2.5, None, True, "é\n\"x\""], 1.5: {}, None: [], True: 0, "t": datetime.date(2020, 1, 2)}
        plain = {k: v for k, v in value.items() if k != "t"}
        self.assertEqual(_json.dumpb(plain), json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode())
        self.assertEqual(_json.dumps({"t": datetime.date(2020, 1, 2)}), '{"t":"2020-01-02"}')
        self.assertEqual(_json.dumps(uuid.UUID(int=1)), '"00000000-0000-0000-0000-000000000001"')
        self.assertEqual(_json.dumps("plain string"), '"plain string"')
        with self.assertRaises(TypeError):
            _json.dumps({(1, 2): "tuple keys are refused"})
