"""WebSocket handlers: threads, recv/send semantics, close codes, limits (SPEC §2.19 r3-r7)."""

from __future__ import annotations

import struct
import threading

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import App, WebSocketClosed, WebSocketMessage
from tests._support.realtime import LogCapture


class HandlerStyleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()
        self.seen: list = []

    def test_sync_handler_own_thread_with_request(self) -> None:
        """§2.19 r3: a sync handler taking (ws, request) runs in its own thread."""

        @self.app.websocket("/rooms/{room}")
        def room(ws, request):
            self.seen.append((threading.current_thread() is threading.main_thread(), request.path))
            ws.send_json({"room": ws.params["room"], "same": ws.request is request})

        ws = self.client.websocket_connect("/rooms/lobby")
        self.assertEqual(ws.receive_json(), {"room": "lobby", "same": True})
        self.assertEqual(self.seen, [(False, "/rooms/lobby")])

    def test_async_handler_on_reactor_thread(self) -> None:
        """§2.19 r3: an async handler runs on the reactor (here: the pumping test) thread."""

        @self.app.websocket("/a")
        async def handler(ws):
            self.seen.append(threading.current_thread() is threading.main_thread())
            await ws.send_text("hi")

        ws = self.client.websocket_connect("/a")
        self.assertEqual(ws.receive_text(), "hi")
        self.assertEqual(self.seen, [True])


class ReceiveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()
        self.seen: list = []
        self.done = threading.Event()

    def test_recv_types_then_close_then_none(self) -> None:
        """§2.19 r4: recv() gives text/binary messages, one close message with the code, then None."""

        @self.app.websocket("/r")
        def handler(ws):
            for _ in range(4):
                msg = ws.recv(timeout=5)
                self.seen.append(
                    None
                    if msg is None
                    else (msg.msg_type, msg.payload if msg.msg_type != "close" else msg.code)
                )
            self.done.set()

        ws = self.client.websocket_connect("/r")
        ws.send_text("t")
        ws.send_bytes(b"\x00\x01")
        ws.close(4001)
        self.assertTrue(self.done.wait(5))
        self.assertEqual(self.seen, [("text", "t"), ("binary", b"\x00\x01"), ("close", 4001), None])

    def test_pings_answered_not_returned(self) -> None:
        """§2.19 r4: a client ping is answered with a pong and never returned by recv()."""

        @self.app.websocket("/p")
        def handler(ws):
            ws.send_text(ws.recv(timeout=5).text)

        ws = self.client.websocket_connect("/p")
        pongs: list = []
        ws._proto.onPong = pongs.append
        ws._proto.sendPing(b"are-you-there")
        ws.send_text("after ping")
        self.assertEqual(ws.receive_text(), "after ping")
        self.assertEqual(pongs, [b"are-you-there"])

    def test_await_receive_payloads(self) -> None:
        """§2.19 r4: on the reactor, `await ws.receive()` gives str, bytes, then None after close."""

        @self.app.websocket("/aw")
        async def handler(ws):
            self.seen.append(await ws.receive())
            self.seen.append(await ws.receive())
            self.seen.append(await ws.receive())
            self.seen.append(await ws.receive())

        ws = self.client.websocket_connect("/aw")
        ws.send_text("s")
        ws.send_bytes(b"b")
        ws.close()
        self.assertEqual(self.seen, ["s", b"b", None, None])

    def test_recv_on_reactor_returns_awaitable(self) -> None:
        """§2.19 r4: recv() on the reactor thread returns a Deferred."""

        @self.app.websocket("/d")
        async def handler(ws):
            pending = ws.recv()
            self.seen.append(isinstance(pending, Deferred))
            msg = await pending
            await ws.send_text(msg.text.upper())

        ws = self.client.websocket_connect("/d")
        ws.send_text("up")
        self.assertEqual(ws.receive_text(), "UP")
        self.assertEqual(self.seen, [True])

    def test_iteration_sync_and_async(self) -> None:
        """§2.19 r4: for/async for yield messages until the peer closes."""

        @self.app.websocket("/sync")
        def sync_handler(ws):
            self.seen.append(("sync", [m.text for m in ws]))
            self.done.set()

        @self.app.websocket("/async")
        async def async_handler(ws):
            self.seen.append(("async", [m.text async for m in ws]))

        for path in ("/sync", "/async"):
            ws = self.client.websocket_connect(path)
            ws.send_text("1")
            ws.send_text("2")
            ws.close()
        self.assertTrue(self.done.wait(5))
        self.assertEqual(sorted(self.seen), [("async", ["1", "2"]), ("sync", ["1", "2"])])

    def test_recv_timeout_in_thread(self) -> None:
        """§2.19 r4: recv(timeout) in a sync handler raises TimeoutError when nothing arrives."""

        @self.app.websocket("/t")
        def handler(ws):
            try:
                ws.recv(timeout=0.05)
            except TimeoutError:
                ws.send_text("timed out")

        ws = self.client.websocket_connect("/t")
        self.assertEqual(ws.receive_text(), "timed out")

    def test_recv_timeout_on_reactor_uses_app_clock(self) -> None:
        """§2.19 r4 / §1 r7: recv(timeout) on the reactor fails with TimeoutError after app.clock time."""

        @self.app.websocket("/rt")
        async def handler(ws):
            try:
                await ws.recv(timeout=2)
            except TimeoutError:
                await ws.send_text("timed out")

        ws = self.client.websocket_connect("/rt")
        with self.assertRaises(TimeoutError):
            ws.receive_text(timeout=0.02)
        self.clock.advance(2)
        self.assertEqual(ws.receive_text(), "timed out")

    def test_invalid_close_code(self) -> None:
        """§2.19 (RFC 6455 7.4): close() refuses codes that may not be sent."""

        @self.app.websocket("/cc")
        async def handler(ws):
            for code in (1005, 1006, 999, 5000):
                try:
                    ws.close(code)
                except ValueError:
                    self.seen.append(code)
            await ws.close(4999)

        ws = self.client.websocket_connect("/cc")
        self.assertEqual(ws.receive().code, 4999)
        self.assertEqual(self.seen, [1005, 1006, 999, 5000])

    def test_client_receive_timeout(self) -> None:
        """§2.23 r7: receive_* raise TimeoutError after `timeout`."""

        @self.app.websocket("/silent")
        async def handler(ws):
            await ws.recv()

        ws = self.client.websocket_connect("/silent")
        with self.assertRaises(TimeoutError):
            ws.receive_text(timeout=0.05)
        ws.close()


class SendTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()
        self.seen: list = []
        self.done = threading.Event()

    def test_thread_sends_completed_awaitable_in_order(self) -> None:
        """§2.19 r5: send* from a thread are thread-safe, ordered, and return a completed awaitable."""

        @self.app.websocket("/s")
        def handler(ws):
            results = [
                ws.send_text("a"),
                ws.send_bytes(b"b"),
                ws.send_json([1]),
                ws.send(WebSocketMessage.text("c")),
            ]
            self.seen.extend(d.called for d in results)
            ws.send(b"d")
            ws.send_binary(b"e")

        ws = self.client.websocket_connect("/s")
        got = [
            ws.receive_text(),
            ws.receive_bytes(),
            ws.receive_json(),
            ws.receive_text(),
            ws.receive_bytes(),
            ws.receive_bytes(),
        ]
        self.assertEqual(got, ["a", b"b", [1], "c", b"d", b"e"])
        self.assertEqual(self.seen, [True] * 4)

    def test_send_after_close_raises(self) -> None:
        """§2.19 r5: sending after close raises WebSocketClosed, a ConnectionError."""

        @self.app.websocket("/c")
        def handler(ws):
            ws.recv(timeout=5)  # the close message
            try:
                ws.send_text("late")
            except WebSocketClosed as exc:
                self.seen.append(isinstance(exc, ConnectionError))
            self.done.set()

        ws = self.client.websocket_connect("/c")
        ws.close()
        self.assertTrue(self.done.wait(5))
        self.assertEqual(self.seen, [True])

    def test_server_close_code_and_connected(self) -> None:
        """§2.19: ws.close(code, reason) closes with that code; connected turns False."""

        @self.app.websocket("/bye")
        async def handler(ws):
            await ws.close(4000, "bye")
            self.seen.append((ws.connected, ws.close_code))

        ws = self.client.websocket_connect("/bye")
        msg = ws.receive()
        self.assertEqual((msg.msg_type, msg.code, msg.reason), ("close", 4000, "bye"))
        self.assertEqual(self.seen, [(False, 4000)])


class CloseCodeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.app = App(clock=self.clock)
        self.client = self.app.test_client()

    def test_return_closes_1000(self) -> None:
        """§2.19 r6: a handler that returns closes the connection with 1000."""
        self.app.websocket("/r")(lambda ws: ws.send_text("x"))
        ws = self.client.websocket_connect("/r")
        self.assertEqual(ws.receive_text(), "x")
        self.assertEqual(ws.receive().code, 1000)

    def test_exception_closes_1011_and_logs(self) -> None:
        """§2.19 r6: any other exception closes with 1011 and is logged."""
        capture = LogCapture(self, "cello_twisted.websocket")

        @self.app.websocket("/e")
        async def handler(ws):
            raise KeyError("boom")

        ws = self.client.websocket_connect("/e")
        self.assertEqual(ws.receive().code, 1011)
        self.assertEqual(len(capture.failures()), 1)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_sync_exception_closes_1011(self) -> None:
        """§2.19 r6: the same for a sync handler in its thread."""

        @self.app.websocket("/e")
        def handler(ws):
            raise ValueError("bad")

        ws = self.client.websocket_connect("/e")
        self.assertEqual(ws.receive().code, 1011)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_websocket_closed_escaping_is_quiet(self) -> None:
        """§2.19 r6: WebSocketClosed escaping the handler ends it quietly (no 1011, nothing logged)."""
        capture = LogCapture(self, "cello_twisted.websocket")
        done = threading.Event()

        @self.app.websocket("/q")
        def handler(ws):
            try:
                for _ in ws:
                    pass
                ws.send_text("after close")  # raises WebSocketClosed
            finally:
                done.set()

        ws = self.client.websocket_connect("/q")
        ws.close(1000)
        self.assertTrue(done.wait(5))
        ws._spin(lambda: False, 0.05)
        self.assertEqual(ws.close_code, 1000)
        self.assertEqual(capture.failures(), [])

    def test_oversized_message_1009(self) -> None:
        """§2.19 r6: a message over max_message_size closes with 1009; smaller ones pass."""

        @self.app.websocket("/small", max_message_size=1024)
        async def handler(ws):
            async for msg in ws:
                await ws.send_text(str(len(msg.data)))

        ws = self.client.websocket_connect("/small")
        ws.send_bytes(b"x" * 1024)
        self.assertEqual(ws.receive_text(), "1024")
        ws.send_bytes(b"x" * 1025)
        self.assertEqual(ws.receive().code, 1009)

    def test_large_send_not_limited(self) -> None:
        """§2.19 r6: max_message_size limits what the server receives, not what it sends."""

        @self.app.websocket("/big", max_message_size=16)
        async def handler(ws):
            await ws.send_bytes(b"y" * 5000)

        ws = self.client.websocket_connect("/big")
        self.assertEqual(len(ws.receive_bytes()), 5000)

    def test_invalid_frame_1002_others_unaffected(self) -> None:
        """§2.19 r1 (RFC 6455): an unmasked client frame closes that connection with 1002 only."""

        @self.app.websocket("/echo")
        async def handler(ws):
            async for msg in ws:
                await ws.send(msg.payload)

        good = self.client.websocket_connect("/echo")
        bad = self.client.websocket_connect("/echo")
        bad.send_raw(b"\x81\x02hi")  # FIN+text, no mask bit: forbidden from clients
        self.assertEqual(bad.receive().code, 1002)
        reserved = self.client.websocket_connect("/echo")
        reserved.send_raw(b"\x83\x80" + struct.pack("!I", 0))  # reserved opcode 3
        self.assertEqual(reserved.receive().code, 1002)
        good.send_text("still here")
        self.assertEqual(good.receive_text(), "still here")


class ShutdownTests(SynchronousTestCase):
    def test_close_all_going_away(self) -> None:
        """§2.20 r8: close_all(app) closes the app's open WebSockets with 1001."""
        from cello_twisted.websocket import close_all

        app = App(clock=Clock())

        @app.websocket("/w")
        async def handler(ws):
            async for _ in ws:
                pass

        client = app.test_client()
        sockets = [client.websocket_connect("/w") for _ in range(3)]
        self.assertEqual(close_all(App(clock=Clock())), 0)
        self.assertEqual(close_all(app), 3)
        self.assertEqual([ws.receive().code for ws in sockets], [1001] * 3)


class MessageApiTests(SynchronousTestCase):
    def test_text_factory_and_payload(self) -> None:
        """§2.19 r7: WebSocketMessage.text(...) is a factory; msg.text is the payload."""
        msg = WebSocketMessage.text("hé")
        self.assertEqual((msg.msg_type, msg.text, msg.data), ("text", "hé", "hé".encode()))
        self.assertTrue(msg.is_text() and not msg.is_binary())

    def test_other_factories(self) -> None:
        """§2.19: binary, ping, close factories and predicates."""
        self.assertTrue(WebSocketMessage.binary(b"\x00").is_binary())
        self.assertTrue(WebSocketMessage.ping().is_ping())
        self.assertTrue(WebSocketMessage.pong(b"x").is_pong())
        close = WebSocketMessage.close(4001, "r")
        self.assertTrue(close.is_close())
        self.assertEqual((close.code, close.reason), (4001, "r"))
        self.assertEqual(WebSocketMessage.close().code, 1000)

    def test_json(self) -> None:
        """§2.19: msg.json() parses the payload."""
        self.assertEqual(WebSocketMessage.text('{"a": [1]}').json(), {"a": [1]})
        self.assertEqual(WebSocketMessage.binary(b"[2]").json(), [2])

    def test_bad_type(self) -> None:
        """§2.19: msg_type is one of text/binary/ping/pong/close."""
        with self.assertRaises(ValueError):
            WebSocketMessage("nope")
