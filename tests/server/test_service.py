"""CelloServer in-process: stop accepts the queued backlog, then drains (SPEC §2.20 r8)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase

from cello_twisted import App
from cello_twisted.server._service import CelloServer, build_site


class StopTests(TestCase):
    timeout = 10

    @pytest.mark.live
    @defer.inlineCallbacks
    def test_queued_connection_is_served_on_stop(self):
        """§2.20 r8: a connection already in the kernel queue when the stop begins still gets its answer."""
        app = App()
        events: list[str] = []
        app.get("/")(lambda request: {"ok": True})
        app.on_event("shutdown")(lambda: events.append("shutdown"))
        server = CelloServer(app, build_site(app), [TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")], 5, reactor)
        ports = yield server.start()
        sock = socket.create_connection(("127.0.0.1", ports[0].getHost().port), timeout=5)
        self.addCleanup(sock.close)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        stopped = server.stop()  # same reactor turn: the connection has not been accepted yet

        def read_all() -> bytes:
            chunks = []
            while True:
                data = sock.recv(4096)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)

        reply = yield threads.deferToThread(read_all)
        yield stopped
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply)
        self.assertIn(b"connection: close", reply.lower())
        self.assertEqual(events, ["shutdown"])

    @defer.inlineCallbacks
    def test_stop_before_start_runs_no_hooks(self):
        """§2.5 r5: shutdown hooks only follow a successful start."""
        app = App()
        events: list[str] = []
        app.on_event("shutdown")(lambda: events.append("shutdown"))
        server = CelloServer(app, build_site(app), [], 1, reactor)
        yield server.stop()
        self.assertEqual(events, [])
