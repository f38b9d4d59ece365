"""Real loopback sockets for WebSocket: autobahn clients, compression, disconnect cleanup, hostile peers.

SPEC §2.19 r1-r6, §2.8 r3 and the seed 000 fix (upgrade with compression on).
"""

from __future__ import annotations

import gc
import re
import time
import weakref

import pytest
from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from cello_twisted import App
from cello_twisted.websocket._server import live_connections
from tests._support.live import LiveServer, raw_connect, raw_upgrade, wait_until, ws_connect

pytestmark = pytest.mark.live  # starts processes or opens real sockets

CLOSE_1002 = re.compile(
    rb"\x88[\x02-\x7d]\x03\xea", re.S
)  # close frame, code 1002, any short reason


def echo_app(**options):
    app = App(clock=Clock())

    @app.websocket("/ws", **options)
    async def echo(ws):
        async for msg in ws:
            await ws.send(msg.payload)

    @app.websocket("/sync")
    def sync_echo(ws):
        for msg in ws:
            ws.send(msg.payload)

    return app


class LiveWebSocketTests(TestCase):
    timeout = 10

    @inlineCallbacks
    def test_autobahn_client_echo_async_and_sync(self):
        """§2.19 r3-r5: a real autobahn client talks to async and threaded handlers; deflate negotiated."""
        server = LiveServer(self, echo_app())
        for path in ("/ws", "/sync"):
            client = yield ws_connect(server, path)
            self.assertIsNotNone(client._perMessageCompress)
            client.sendMessage(b"hello " + path.encode())
            reply = yield client.messages.get().addTimeout(2, reactor)
            self.assertEqual(reply, "hello " + path)
            client.sendClose(1000)
            code = yield client.closed.addTimeout(2, reactor)
            self.assertEqual(code, 1000)

    @inlineCallbacks
    def test_upgrade_with_gzip_enabled(self):
        """§2.19 r1 / §2.8 r3 (seed 000 fix): the upgrade succeeds with compression on and gzip accepted."""
        app = echo_app()
        app.enable_compression(min_size=0)
        server = LiveServer(self, app)
        client = yield ws_connect(server, "/ws", headers={"Accept-Encoding": "gzip, deflate"})
        client.sendMessage(b"zipped?")
        self.assertEqual((yield client.messages.get().addTimeout(2, reactor)), "zipped?")
        self.assertNotIn("content-encoding", client.http_headers)
        client.sendClose(1000)
        yield client.closed.addTimeout(2, reactor)

    @inlineCallbacks
    def test_oversized_message_only_that_connection(self):
        """§2.19 r6: > max_message_size closes that connection with 1009; the others carry on."""
        server = LiveServer(self, echo_app(max_message_size=1024))
        other = yield ws_connect(server, "/ws")
        victim = yield ws_connect(server, "/ws")
        victim.sendMessage(b"x" * 4096, isBinary=True)
        code = yield victim.closed.addTimeout(2, reactor)
        self.assertEqual(code, 1009)
        other.sendMessage(b"fine")
        self.assertEqual((yield other.messages.get().addTimeout(2, reactor)), "fine")
        other.sendClose(1000)
        yield other.closed.addTimeout(2, reactor)

    @inlineCallbacks
    def test_invalid_frame_1002_and_bad_upgrades(self):
        """§2.19 r1-r2: invalid frames close with 1002; bad upgrades get 426/400; nobody else notices."""
        server = LiveServer(self, echo_app())
        other = yield ws_connect(server, "/ws")
        raw = yield raw_connect(server, raw_upgrade("/ws"))
        yield wait_until(lambda: b"\r\n\r\n" in raw.data, 2, "101 response")
        self.assertTrue(raw.data.startswith(b"HTTP/1.1 101"))
        raw.transport.write(b"\x81\x05hello")  # unmasked client frame
        yield wait_until(lambda: CLOSE_1002.search(bytes(raw.data)) is not None, 2, "close 1002")
        refusals = [
            (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 426"),
            (raw_upgrade("/ws", Sec_WebSocket_Version="7"), b"HTTP/1.1 426"),
            (raw_upgrade("/ws", Sec_WebSocket_Key="bad"), b"HTTP/1.1 400"),
        ]
        for request, status in refusals:
            peer = yield raw_connect(server, request)
            yield wait_until(lambda peer=peer: b"\r\n\r\n" in peer.data, 2, "refusal")
            self.assertTrue(peer.data.startswith(status), peer.data[:40])
            peer.transport.loseConnection()
        other.sendMessage(b"unaffected")
        self.assertEqual((yield other.messages.get().addTimeout(2, reactor)), "unaffected")
        other.sendClose(1000)
        yield other.closed.addTimeout(2, reactor)

    @inlineCallbacks
    def test_200_clients_drop_without_close_frame(self):
        """§2.19 r4/r6: 200 peers vanish without a close frame; within 1 s every handler ended and
        no connection, timer or protocol is left on the server."""
        clock = Clock()
        app = App(clock=clock)
        finals: list[int] = []

        @app.websocket("/ws")
        async def handler(ws):
            try:
                await ws.send_text("hello")
                async for _ in ws:
                    pass
                finals.append(ws.close_code)
            finally:
                if len(finals) == 0 or finals[-1] != ws.close_code:
                    finals.append(-1)

        gc.collect()  # protocols of earlier in-memory tests may linger in reference cycles until collected
        server = LiveServer(self, app)
        clients = yield gatherResults([raw_connect(server, raw_upgrade("/ws")) for _ in range(200)])
        yield wait_until(lambda: all(b"hello" in c.data for c in clients), 5, "200 upgrades")
        self.assertEqual(len(live_connections), 200)
        self.assertGreater(len(clock.getDelayedCalls()), 0)  # auto-ping timers are armed
        protocols = [weakref.ref(p) for p in live_connections]
        started = time.monotonic()
        for c in clients:
            c.transport.abortConnection()
        yield wait_until(lambda: len(finals) == 200, 1.0, "all handlers finished")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(set(finals), {1006})
        self.assertEqual(len(live_connections), 0)
        self.assertEqual(clock.getDelayedCalls(), [])
        gc.collect()
        self.assertEqual([r for r in protocols if r() is not None], [])
