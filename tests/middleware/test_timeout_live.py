"""Handler timeout and blocking-handler warning over a real socket (SPEC_OPERATIONS §4 r5, §11 r9)."""

from __future__ import annotations

import http.client
import json
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import PYTHON, spawn, tempdir, write_app

pytestmark = pytest.mark.live

APP_SOURCE = '''
import time

from twisted.internet import reactor, task
from twisted.internet.defer import CancelledError, Deferred

from cello_twisted import App

app = App(handler_timeout=0.6)
app.enable_cors(origins=["https://web.example"])
app.enable_security_headers()
cancelled = []


@app.get("/hang")
def hang(request):
    return Deferred()


@app.get("/coro", timeout=0.3)
async def coro(request):
    try:
        await task.deferLater(reactor, 60, lambda: None)
    except CancelledError:
        cancelled.append("coro")
        raise
    return {"never": True}


@app.get("/cancelled")
def seen(request):
    return {"cancelled": cancelled}


@app.get("/thread", threaded=True)
def thread(request):
    time.sleep(1.0)
    return {"late": True}


@app.get("/block")
def block(request):
    time.sleep(1.1)
    return {"blocked": True}


if __name__ == "__main__":
    app.run()
'''


def _request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, time.monotonic() - started
    finally:
        conn.close()


class HandlerTimeoutLiveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.child = spawn(self, [PYTHON, write_app(self.dir, source=APP_SOURCE), "--port", "0"], self.dir)
        self.port = self.child.port()

    def tearDown(self) -> None:
        self.child.stop()

    def test_hang_and_coroutine_get_503_at_their_deadlines(self) -> None:
        """§4 r5: app timeout 0.6 s, route timeout 0.3 s: 503s at those deadlines, with CORS and security headers;
        the coroutine saw CancelledError; the access log shows the 503."""
        origin = {"Origin": "https://web.example"}
        status, headers, body, elapsed = _request(self.port, "/hang", origin)
        self.assertEqual(status, 503)
        self.assertTrue(0.55 <= elapsed < 2.0, elapsed)
        self.assertEqual(json.loads(body)["detail"], "Request timed out after 0.6 s")
        self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(headers["access-control-allow-origin"], "https://web.example")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        status, _, body, elapsed = _request(self.port, "/coro", origin)
        self.assertEqual(status, 503)
        self.assertTrue(0.25 <= elapsed < 0.55, elapsed)
        self.assertEqual(json.loads(body)["detail"], "Request timed out after 0.3 s")
        self.assertEqual(json.loads(_request(self.port, "/cancelled")[2]), {"cancelled": ["coro"]})
        self.child.wait_for(r"GET /hang \u2192 503", 5)

    def test_threaded_handler_503_then_logged_once(self) -> None:
        """§4 r5: a threaded handler past its deadline: 503 at 0.6 s, the server keeps serving, one log line per route."""
        for _ in range(2):
            status, _, _, elapsed = _request(self.port, "/thread")
            self.assertEqual(status, 503)
            self.assertLess(elapsed, 1.0)
        self.assertEqual(_request(self.port, "/cancelled")[0], 200)
        time.sleep(1.2)  # let both threads finish: their late results must be dropped quietly
        self.assertEqual(_request(self.port, "/cancelled")[0], 200)
        self.assertEqual(self.child.output.count("threaded handler still running"), 1)
        self.assertNotIn("Traceback", self.child.output)

    def test_blocking_handler_logged_once(self) -> None:
        """§11 r9: a plain handler sleeping 1.1 s is logged once per route with its path and the threaded=True advice."""
        self.assertEqual(_request(self.port, "/block")[0], 200)
        self.assertEqual(_request(self.port, "/block")[0], 200)
        line = self.child.wait_for(r"GET /block: handler 'block' held the reactor", 5).string
        self.assertIn("threaded=True", line)
        self.assertEqual(self.child.output.count("held the reactor"), 1)
