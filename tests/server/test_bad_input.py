"""Bad input over a real socket: clear 4xx JSON errors, and the server keeps serving (issue acceptance 3)."""

from __future__ import annotations

import json
import socket

import pytest
from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase

from cello_twisted import App

pytestmark = pytest.mark.live  # starts processes or opens real sockets


def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a fresh connection and read until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def _status_and_json(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


class BadInputLiveTests(TestCase):
    def setUp(self) -> None:
        app = App(max_body_size=1024)

        @app.route("/items", methods=["GET", "POST"])
        def items(request):
            if request.method == "POST":
                return request.json()
            return {"q": request.query.get("q")}

        @app.get("/boom")
        def boom(request):
            raise RuntimeError("handler failed")

        self.port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def send(self, raw: bytes):
        return threads.deferToThread(_exchange, self.port.getHost().port, raw)

    async def test_bad_inputs_then_good_request(self) -> None:
        """§2.24 r4 / §2.2 r1 / §2.17 r3: each bad request gets a JSON 4xx (or a 500 for a raising handler), the next good one 200."""
        close = b"Connection: close\r\n"
        cases = [
            (b"POST /items HTTP/1.1\r\nHost: x\r\n" + close + b"Content-Length: 5\r\n\r\n{nope", 400),
            (b"GET /items/%FF%FE HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", 400),
            (b"GET /items?q=%FF HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", 400),
            (b"BREW /items HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", 405),
            (b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
            (b"GET /boom HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", 500),
        ]
        for raw, expected in cases:
            status, body = _status_and_json(await self.send(raw))
            self.assertEqual((status, body["status"]), (expected, expected), raw[:40])
            self.assertIn("error", body)
        self.flushLoggedErrors(RuntimeError)
        malformed = await self.send(b"NOT HTTP AT ALL\r\n\r\n")
        self.assertTrue(malformed.startswith(b"HTTP/1.1 400"), malformed[:40])
        status, body = _status_and_json(await self.send(b"GET /items?q=ok HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n"))
        self.assertEqual((status, body), (200, {"q": "ok"}))
