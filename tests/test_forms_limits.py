"""Form field limits and large form bodies parsed off the reactor (SPEC_OPERATIONS §11 r4)."""

from __future__ import annotations

import gc
import http.client
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App
from cello_twisted.errors import ConfigError
from cello_twisted.request import Request
from tests._support.processes import PYTHON, spawn, tempdir, write_app


def make_app(**kwargs: Any) -> App:
    """An App on a task.Clock, so time-based behaviour is deterministic."""
    return App(clock=Clock(), **kwargs)


def _form_app(**kwargs: object) -> App:
    app = make_app(**kwargs)

    @app.post("/form")
    def form(request: Request) -> dict:
        data = request.form()
        return {"fields": data.field_count(), "files": data.file_count()}

    @app.post("/ignore")
    def ignore(request: Request) -> dict:
        return {"ok": True}

    return app


def _urlencoded(count: int, value: str = "v") -> bytes:
    return "&".join(f"f{i}={value}" for i in range(count)).encode()


def _multipart(count: int) -> tuple[bytes, str]:
    parts = [
        f'--BOUND\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n'.encode() for i in range(count)
    ]
    return b"".join(parts) + b"--BOUND--\r\n", "multipart/form-data; boundary=BOUND"


URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


class FieldLimitTests(SynchronousTestCase):
    def test_1000_fields_pass_1001_are_refused(self) -> None:
        """1,000 urlencoded fields parse; 1,001 → 400 "too many form fields"."""
        client = _form_app().test_client()
        self.assertEqual(client.post("/form", data=_urlencoded(1000), headers=URLENCODED).json()["fields"], 1000)
        resp = client.post("/form", data=_urlencoded(1001), headers=URLENCODED)
        self.assertEqual(resp.status_code, 400)
        self.assertEqual(resp.json(), {"error": "Bad Request", "status": 400, "detail": "too many form fields"})

    def test_multipart_1001_parts_are_refused(self) -> None:
        """1,000 multipart fields parse; 1,001 → 400 "too many form fields"."""
        client = _form_app().test_client()
        body, ctype = _multipart(1000)
        self.assertEqual(client.post("/form", data=body, headers={"Content-Type": ctype}).json()["fields"], 1000)
        body, ctype = _multipart(1001)
        resp = client.post("/form", data=body, headers={"Content-Type": ctype})
        self.assertEqual((resp.status_code, resp.json()["detail"]), (400, "too many form fields"))

    def test_limit_is_configurable(self) -> None:
        """App(max_form_fields=3): a fourth field is refused; a bad value fails at construction."""
        client = _form_app(max_form_fields=3).test_client()
        self.assertEqual(client.post("/form", data=_urlencoded(3), headers=URLENCODED).status_code, 200)
        self.assertEqual(client.post("/form", data=_urlencoded(4), headers=URLENCODED).status_code, 400)
        for bad in (0, -1, "10", True):
            with self.assertRaises(ConfigError):
                App(max_form_fields=bad)  # type: ignore[arg-type]

    def test_hostile_body_fails_fast(self) -> None:
        """900,000 fields in 8 MB are refused by counting, well under a second."""
        client = _form_app().test_client()
        body = b"&".join(b"a=%d" % i for i in range(900_000))
        started = time.perf_counter()
        resp = client.post("/form", data=body, headers=URLENCODED)
        self.assertEqual(resp.status_code, 400)
        self.assertLess(time.perf_counter() - started, 2.0)

    def test_large_body_parsed_ahead_still_lazy_in_effect(self) -> None:
        """A large form body is parsed before the handler; its error shows only if the handler asks."""
        client = _form_app().test_client()
        big = _urlencoded(500, "x" * 1000)  # ~500 KB: parsed ahead of the handler
        self.assertEqual(client.post("/form", data=big, headers=URLENCODED).json()["fields"], 500)
        too_many = _urlencoded(2000, "y" * 200)
        self.assertEqual(client.post("/form", data=too_many, headers=URLENCODED).status_code, 400)
        self.assertEqual(client.post("/ignore", data=too_many, headers=URLENCODED).json(), {"ok": True})


    def test_chunked_large_body_is_parsed_ahead_too(self) -> None:
        """Without Content-Length (chunked), a large urlencoded body is still decoded in slices up front."""
        import io

        from twisted.web.test.requesthelper import DummyRequest

        from cello_twisted.forms import prefetch_form

        raw = DummyRequest([b"form"])
        raw.method = b"POST"
        raw.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
        raw.content = io.BytesIO(_urlencoded(300, "%41" * 400))
        request = Request(raw, make_app(), "POST", "/form")
        parsing = prefetch_form(request)
        self.assertIsNotNone(parsing)
        self.successResultOf(parsing)
        form = request.form()
        self.assertEqual((form.field_count(), form.get("f7")), (300, "A" * 400))


LIVE_APP = '''
import os
from cello_twisted import App

app = App()

@app.post("/form")
def form(request):
    return {"fields": request.form().field_count()}

@app.get("/ping")
def ping(request):
    return {"pong": True}

if __name__ == "__main__":
    app.run(port=0, logs=False)
'''


@pytest.mark.live
class ReactorStaysResponsiveTests(SynchronousTestCase):
    def test_get_answered_within_100ms_while_10mib_form_is_parsed(self) -> None:
        """While a 10 MiB urlencoded body (percent-escapes, slow to decode) is parsed, GETs answer in < 100 ms."""
        directory = tempdir(self)
        child = spawn(self, [PYTHON, write_app(directory, source=LIVE_APP)], directory, {})
        port = child.port()
        field = quote("é" * 1700)  # ~10 KB of %-escapes per field
        body = "&".join(f"f{i}={field}" for i in range(1000)).encode()
        body = body[: 10 * 1024 * 1024 - 64].rsplit(b"&", 1)[0]
        self.assertGreater(len(body), 9 * 1024 * 1024)
        result: dict[str, object] = {}

        def post() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/form", body=body, headers=URLENCODED)
            response = conn.getresponse()
            result["status"], result["body"] = response.status, response.read()
            conn.close()

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        latencies, statuses = [], set()
        gc.collect()
        gc.disable()  # measure the server's pauses, not this process's garbage collector
        try:
            poster = threading.Thread(target=post)
            poster.start()
            while poster.is_alive():
                started = time.perf_counter()
                conn.request("GET", "/ping")
                response = conn.getresponse()
                response.read()
                latencies.append(time.perf_counter() - started)
                statuses.add(response.status)
        finally:
            gc.enable()
        conn.close()
        self.assertEqual(statuses, {200})
        poster.join(30)
        self.assertEqual(result.get("status"), 200, result)
        self.assertGreater(len(latencies), 5)  # the GETs really overlapped the parse
        self.assertLess(max(latencies), 0.1, [(i, round(x, 3)) for i, x in enumerate(latencies) if x > 0.03] + [len(latencies)])
        self.assertEqual(child.stop(), 0)
