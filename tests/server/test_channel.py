"""The connection's rules, driven in memory with task.Clock (SPEC_OPERATIONS §4 r1-r4, r6, r8, r10-r12)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cello_twisted import App
from cello_twisted.errors import ConfigError


def make_app(clock: Clock, **kwargs: object) -> tuple[App, list[str], list[Deferred]]:
    app = App(clock=clock, **kwargs)  # type: ignore[arg-type]
    calls: list[str] = []
    pending: list[Deferred] = []

    @app.get("/")
    def index(request):
        calls.append("index")
        return {"ok": True}

    @app.get("/where")
    def where(request):
        return {"path": request.path, "query": dict(request.query)}

    @app.post("/upload")
    def upload(request):
        calls.append("upload")
        return {"size": len(request.body())}

    @app.get("/wait")
    def wait(request):
        calls.append("wait")
        d: Deferred = Deferred()
        pending.append(d)
        return d

    @app.post("/wait")
    def wait_post(request):
        return wait(request)

    return app, calls, pending


class Conn:
    """One in-memory connection to a Site."""

    def __init__(self, site: object) -> None:
        self.protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))  # type: ignore[attr-defined]
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    @property
    def data(self) -> bytes:
        return self.transport.value()

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)

    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1])

    def body(self) -> dict:
        return json.loads(self.data.split(b"\r\n\r\n", 1)[1])

    def header(self, name: bytes) -> bytes | None:
        head = self.data.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class ChannelTestCase(SynchronousTestCase):
    def serve(self, app_kwargs: dict | None = None, clock_reactor: bool = False, **limits: object) -> None:
        self.clock = Clock()
        self.app, self.calls, self.pending = make_app(self.clock, **(app_kwargs or {}))
        if clock_reactor:
            limits["reactor"] = self.clock  # the Site's own scheduling (HTTP/2 sends) on the clock too
        self.site = self.app.site(**limits)

    def connect(self) -> Conn:
        return Conn(self.site)

    def assertRefused(self, conn: Conn, status: int, closes: bool = True) -> None:
        self.assertEqual(conn.status(), status, conn.data[:200])
        body = conn.body()
        self.assertEqual((body["status"], set(body)), (status, {"error", "status", "detail"}))
        self.assertEqual(conn.header(b"content-type"), b"application/json")
        if closes:
            self.assertEqual(conn.header(b"connection"), b"close")
            self.assertTrue(conn.closing)


class HeaderTimeoutTests(ChannelTestCase):
    def test_trickled_headers_get_408_at_the_deadline(self):
        """r1: one byte a second does not extend the header deadline: 408 + close at 10 s after the first byte."""
        self.serve()
        conn = self.connect()
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 50
        for i in range(10):
            conn.send(request[i : i + 1])
            self.clock.advance(0.99)
        self.assertEqual(conn.data, b"")
        self.clock.advance(0.2)
        self.assertRefused(conn, 408)
        self.assertIn("10 s", conn.body()["detail"])
        self.assertEqual(self.calls, [])

    def test_deadline_counts_from_the_first_byte(self):
        """r1: a connection that waits 5 s before its first byte still gets the full header_timeout."""
        self.serve(header_timeout=4)
        conn = self.connect()
        self.clock.advance(3)
        conn.send(b"GET / HTTP/1.1\r\n")
        self.clock.advance(3.9)
        self.assertFalse(conn.closing)
        self.clock.advance(0.2)
        self.assertRefused(conn, 408)

    def test_silent_connection_closed_without_an_answer(self):
        """r1: a new connection that sends nothing is closed silently after header_timeout."""
        self.serve(header_timeout=3)
        conn = self.connect()
        self.clock.advance(2.9)
        self.assertFalse(conn.closing)
        self.clock.advance(0.2)
        self.assertTrue(conn.closing)
        self.assertEqual(conn.data, b"")

    def test_non_reading_peer_is_aborted(self):
        """r1: a peer that never reads the 408 cannot keep its socket: it is aborted a few seconds later."""
        self.serve(header_timeout=1)
        conn = self.connect()
        conn.send(b"GET")
        self.clock.advance(1.1)
        self.assertTrue(conn.closing)
        self.clock.advance(10)
        self.assertTrue(conn.transport.disconnected)


class BodyTimeoutTests(ChannelTestCase):
    def test_stalled_body_gets_408_and_the_handler_never_runs(self):
        """r2: a gap longer than body_timeout between body bytes → 408 + close; the handler is not called."""
        self.serve(body_timeout=5)
        conn = self.connect()
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        self.clock.advance(4.9)
        self.assertEqual(conn.data, b"")
        self.clock.advance(0.2)
        self.assertRefused(conn, 408)
        conn.send(b"defghij")  # too late
        self.assertEqual(self.calls, [])

    def test_slow_but_steady_body_is_no_deadline(self):
        """r2: the limit is a gap between bytes, not a deadline for the whole body."""
        self.serve(body_timeout=2, header_timeout=2)
        conn = self.connect()
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        for byte in b"abcdefghij":
            self.clock.advance(1.5)
            conn.send(bytes([byte]))
        self.assertEqual((conn.status(), conn.body()), (200, {"size": 10}))
        self.assertEqual(self.calls, ["upload"])


class KeepAliveTests(ChannelTestCase):
    def test_idle_keep_alive_connection_closes_after_the_timeout(self):
        """r3: an idle keep-alive connection is closed (silently) keep_alive_timeout after its last response."""
        self.serve(keep_alive_timeout=30)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(conn.status(), 200)
        conn.transport.clear()
        self.clock.advance(29.9)
        self.assertFalse(conn.closing)
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # a second request restarts the idle time
        conn.transport.clear()
        self.clock.advance(29.9)
        self.assertFalse(conn.closing)
        self.clock.advance(0.2)
        self.assertTrue(conn.closing)
        self.assertEqual(conn.data, b"")

    def test_request_in_progress_is_never_timed_out(self):
        """r3: a slow handler (or a stream) holds its connection past every timeout; after the answer
        the keep-alive timeout applies."""
        self.serve(header_timeout=1, body_timeout=1, keep_alive_timeout=2)
        conn = self.connect()
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(500)
        self.assertFalse(conn.closing)
        self.pending[0].callback({"late": True})
        self.assertEqual(conn.body(), {"late": True})
        self.clock.advance(1.9)
        self.assertFalse(conn.closing)
        self.clock.advance(0.2)
        self.assertTrue(conn.closing)

    def test_no_timer_is_left_after_the_connection_closes(self):
        """r8: connection timers run on app.clock and are cancelled when the connection goes."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(self.clock.getDelayedCalls())
        conn.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class HeaderLimitTests(ChannelTestCase):
    def test_too_many_headers(self):
        """r4: more than max_header_count header lines → 431 + close."""
        self.serve(max_header_count=10)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10 + b"\r\n")
        self.assertRefused(conn, 431)

    def test_ten_headers_are_fine(self):
        """r4: exactly max_header_count header lines are accepted."""
        self.serve(max_header_count=10)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 9 + b"\r\n")
        self.assertEqual(conn.status(), 200)

    def test_header_bytes_over_the_limit(self):
        """r4: request line + headers above max_header_bytes → 431, whether in one line or many."""
        self.serve(max_header_bytes=1024)
        for headers in (b"X-Big: " + b"a" * 2000 + b"\r\n", b"X-A: " + b"a" * 500 + b"\r\n" + b"X-B: " + b"b" * 600 + b"\r\n"):
            conn = self.connect()
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            self.assertRefused(conn, 431)

    def test_long_request_line_is_414(self):
        """r4: a request line longer than max_header_bytes → 414 (before any CRLF arrives, too)."""
        self.serve(max_header_bytes=1024)
        for tail in (b" HTTP/1.1\r\nHost: x\r\n\r\n", b""):
            conn = self.connect()
            conn.send(b"GET /" + b"a" * 1100 + tail)
            self.assertRefused(conn, 414)


class StrictnessTests(ChannelTestCase):
    CASES = {
        "Transfer-Encoding: identity": b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        "final coding not chunked": b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "coding other than chunked": b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "two Transfer-Encoding lines": b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Content-Length with Transfer-Encoding": b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "identity with Content-Length": b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
        "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
        "obs-fold with a tab": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n",
        "no Host": b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n",
        "two Host headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
        "bare LF after CRLF lines": b"GET / HTTP/1.1\r\nHost: x\nX-A: b\n\n",
        "target that is no path or URI": b"GET abc HTTP/1.1\r\nHost: x\r\n\r\n",
    }

    def test_each_leniency_is_400_and_close(self):
        """r12: each case is answered 400 with the standard body and closed at once (none hangs)."""
        self.serve()
        for name, request in self.CASES.items():
            conn = self.connect()
            conn.send(request)
            with self.subTest(name):
                self.assertRefused(conn, 400)
        self.assertEqual(self.calls, [])

    def test_obs_fold_split_across_reads(self):
        """r12: a fold whose CRLF and space arrive in different reads is still refused."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n")
        conn.send(b" folded\r\n\r\n")
        self.assertRefused(conn, 400)

    def test_absolute_form_routes_on_path_and_query(self):
        """r12: GET http://host/p?q routes on /where and its query, never on the URL text."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET http://example.com/where?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.assertEqual((conn.status(), conn.body()), (200, {"path": "/where", "query": {"a": "1"}}))

    def test_http_1_0_without_host_is_served(self):
        """r12: Host is required of HTTP/1.1 requests only."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(conn.status(), 200)

    def test_folded_looking_body_is_not_refused(self):
        """r12: a body containing CRLF + space (pretty JSON) in the same read as the headers is accepted."""
        self.serve()
        conn = self.connect()
        body = b'{\r\n  "a": 1\r\n}'
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertEqual(conn.body(), {"size": len(body)})

    def test_pipelined_requests_are_all_answered(self):
        """Pipelined requests in one read are answered in order on the kept-alive connection."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        self.assertEqual(conn.data.count(b"HTTP/1.1 200 OK"), 3)
        self.assertFalse(conn.closing)


class LoadSheddingTests(ChannelTestCase):
    def test_request_over_the_limit_gets_503_at_once(self):
        """r6: with N requests in progress, request N+1 gets 503 + Retry-After: 1 before routing and before
        its body is read; a finished request frees its slot."""
        self.serve(app_kwargs={"max_concurrent_requests": 2})
        busy = [self.connect(), self.connect()]
        for conn in busy:
            conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        extra = self.connect()
        extra.send(b"POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")  # body not sent
        self.assertRefused(extra, 503, closes=False)
        self.assertEqual(extra.header(b"connection"), b"close")
        self.assertEqual(extra.header(b"retry-after"), b"1")
        self.assertEqual(self.calls, ["wait", "wait"])
        self.pending[0].callback({"done": 1})
        again = self.connect()
        again.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(again.status(), 200)

    def test_disconnect_frees_the_slot(self):
        """r6: a client that goes away while its request is in progress gives its slot back."""
        self.serve(app_kwargs={"max_concurrent_requests": 1})
        first = self.connect()
        first.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        first.protocol.connectionLost(Failure(ConnectionDone()))
        second = self.connect()
        second.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(second.status(), 200)

    def test_bad_limit_is_a_config_error(self):
        """Principles: max_concurrent_requests is validated at construction."""
        for bad in (0, -1, 1.5, True, "3"):
            with self.assertRaises(ConfigError):
                App(max_concurrent_requests=bad)  # type: ignore[arg-type]


class BodyLimitTests(ChannelTestCase):
    def test_declared_length_over_the_limit_is_refused_before_reading(self):
        """§2.17 r3 / r11: a too-large Content-Length gets 413 at once, with no 100 Continue."""
        self.serve(app_kwargs={"max_body_size": 100})
        conn = self.connect()
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        self.assertNotIn(b"100 Continue", conn.data)
        self.assertRefused(conn, 413, closes=False)
        self.assertEqual(conn.header(b"connection"), b"close")
        conn.send(b"a" * 5000)  # read and dropped; then the connection closes with nothing unread
        self.assertTrue(conn.closing)
        self.assertEqual(self.calls, [])
        self.clock.advance(3)  # the linger ends; a peer that never reads the answer is then cut off
        self.clock.advance(6)
        self.assertTrue(conn.transport.disconnected)

    def test_chunked_body_cut_when_it_passes_the_limit(self):
        """§2.17 r3: a chunked upload is answered 413 as soon as it exceeds the limit."""
        self.serve(app_kwargs={"max_body_size": 100})
        conn = self.connect()
        conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(b"80\r\n" + b"a" * 128 + b"\r\n")
        self.assertRefused(conn, 413, closes=False)
        self.clock.advance(3)  # the rest never comes: the connection is closed soon anyway
        self.assertTrue(conn.closing)


class LimitsConfigTests(SynchronousTestCase):
    def test_bad_values_are_config_errors_naming_the_field(self):
        """r7: app.site() validates its limits at construction (ConfigError names field and value)."""
        app = App()
        for name, bad in (("header_timeout", 0), ("body_timeout", -1), ("keep_alive_timeout", "x"),
                          ("max_header_count", 0), ("max_header_bytes", 10), ("backlog", 0)):
            with self.assertRaises(ConfigError) as caught:
                app.site(**{name: bad})
            self.assertIn(name, str(caught.exception))

    def test_defaults(self):
        """r7/r9: the same defaults everywhere: 10/30/60 s, 100 headers, 16384 bytes, backlog 1024."""
        site = App().site()
        limits = site.limits
        self.assertEqual(
            (limits.header_timeout, limits.body_timeout, limits.keep_alive_timeout,
             limits.max_header_count, limits.max_header_bytes, site.backlog),
            (10.0, 30.0, 60.0, 100, 16384, 1024),
        )

    def test_run_flags_and_arguments(self):
        """r7/r9: app.run() arguments and --header-timeout ... --backlog flags (flags win)."""
        from cello_twisted.server._config import StartupError, resolve

        opts = resolve("127.0.0.1", 0, {"header_timeout": 5, "backlog": 64},
                       ["--header-timeout", "2.5", "--keep-alive-timeout=75", "--max-header-count", "50"])
        limits = opts.limits
        self.assertEqual((limits.header_timeout, limits.keep_alive_timeout, limits.max_header_count, limits.backlog),
                         (2.5, 75.0, 50, 64))
        for argv in (["--body-timeout", "0"], ["--backlog", "x"], ["--max-header-bytes", "-3"]):
            with self.assertRaises(StartupError):
                resolve("127.0.0.1", 0, {}, argv)

    def test_twistd_flags(self):
        """r7/r9: twistd cello takes the same flags; --backlog applies to endpoints without backlog=."""
        from twisted.python import usage

        from cello_twisted.server.tap import Options

        options = Options()
        options.parseOptions(["--app", "tests.server.test_channel:twistd_app", "--header-timeout", "3",
                              "--backlog", "77", "--listen", "tcp:0:interface=127.0.0.1",
                              "--listen", "tcp:0:interface=127.0.0.1:backlog=5"])
        self.assertEqual(options["limits"].header_timeout, 3.0)
        self.assertEqual([s.backlog for s in options["specs"]], [77, 5])
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--app", "tests.server.test_channel:twistd_app", "--keep-alive-timeout", "0"])


twistd_app = App()


@pytest.mark.live
class ListenLimitsTests(TestCase):
    timeout = 10

    @inlineCallbacks
    def test_listen_takes_the_limits_and_a_backlog(self):
        """r7/r9: app.listen(endpoint, **limits) applies them to its connections; an endpoint string
        without backlog= listens with the default 1024 (or the given backlog)."""
        app = App()
        app.get("/")(lambda request: {"ok": True})
        port = yield app.listen("tcp:0:interface=127.0.0.1", header_timeout=0.3)
        self.addCleanup(port.stopListening)
        other = yield app.listen("tcp:0:interface=127.0.0.1", backlog=77)
        self.addCleanup(other.stopListening)
        self.assertEqual((port.backlog, other.backlog), (1024, 77))

        def partial_request() -> tuple[bytes, float]:
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n")
                reply = b""
                while True:
                    data = sock.recv(4096)
                    if not data:
                        return reply, time.monotonic() - started
                    reply += data

        reply, elapsed = yield deferToThreadPool(reactor, reactor.getThreadPool(), partial_request)
        self.assertTrue(reply.startswith(b"HTTP/1.1 408 "), reply[:40])
        self.assertLess(elapsed, 2.0)


class Http2Tests(ChannelTestCase):
    """HTTP/2 behind the same switch, driven in memory with the h2 client library."""

    def h2_connect(self) -> tuple[Conn, object]:
        import h2.config
        import h2.connection

        conn = Conn.__new__(Conn)
        conn.protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5555))
        conn.transport = StringTransport()
        conn.transport.negotiatedProtocol = b"h2"  # what ALPN would have chosen
        conn.protocol.makeConnection(conn.transport)
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        conn.send(client.data_to_send())
        return conn, client

    def exchange(self, conn: Conn, client: object) -> list[object]:
        conn.send(client.data_to_send())  # type: ignore[attr-defined]
        events = client.receive_data(conn.transport.value())  # type: ignore[attr-defined]
        conn.transport.clear()
        return events

    def test_refused_stream_ends_alone(self):
        """r11: over HTTP/2 a body over the limit gets 413 on its stream, then RST_STREAM(NO_ERROR) while
        the upload goes on; another stream of the same connection completes."""
        import h2.events

        self.serve(app_kwargs={"max_body_size": 100}, clock_reactor=True)
        conn, client = self.h2_connect()
        base = [(":scheme", "https"), (":authority", "x")]
        client.send_headers(1, [(":method", "POST"), (":path", "/upload"), *base, ("content-length", "5000")])
        client.send_data(1, b"a" * 1000)
        client.send_headers(3, [(":method", "GET"), (":path", "/"), *base], end_stream=True)
        events = self.exchange(conn, client)
        statuses = {e.stream_id: dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived)}
        resets = [(e.stream_id, e.error_code) for e in events if isinstance(e, h2.events.StreamReset)]
        self.assertEqual(statuses, {1: b"413", 3: b"200"})
        self.assertEqual(resets, [(1, 0)])
        self.assertFalse(conn.closing)
        self.assertEqual(self.calls, ["index"])

    def test_open_stream_is_never_timed_out_but_idle_connection_is(self):
        """r3: an HTTP/2 connection with a request in progress outlives keep_alive_timeout; once idle,
        it is closed after keep_alive_timeout."""
        import h2.events

        self.serve(keep_alive_timeout=5, clock_reactor=True)
        conn, client = self.h2_connect()
        client.send_headers(1, [(":method", "GET"), (":path", "/wait"), (":scheme", "https"), (":authority", "x")], end_stream=True)
        self.exchange(conn, client)
        self.clock.advance(60)
        self.assertFalse(conn.closing)
        self.pending[0].callback({"late": True})
        self.clock.advance(0)  # the Site's reactor (here the clock) runs HTTP/2's send loop
        events = self.exchange(conn, client)
        self.assertTrue(any(isinstance(e, h2.events.StreamEnded) for e in events))
        self.clock.advance(5.1)
        self.assertTrue(conn.closing)


@pytest.mark.live
class LongLivedSheddingTests(TestCase):
    timeout = 10

    @inlineCallbacks
    def test_websocket_and_sse_count_while_open(self):
        """r6: an open WebSocket and an open SSE stream each hold a slot; when they close the slots free."""
        from cello_twisted import SseStream
        from tests._support.live import LiveServer, raw_connect, wait_until, ws_connect

        app = App(max_concurrent_requests=1)
        app.get("/")(lambda request: {"ok": True})
        never: Deferred = Deferred()

        @app.websocket("/ws")
        async def echo(ws):
            async for message in ws:
                await ws.send_text(message.text)

        async def events():
            yield "hello"
            await never

        app.get("/events")(lambda request: SseStream(events(), ping_interval=None))
        server = LiveServer(self, app)

        def get() -> Any:
            return raw_connect(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

        client = yield ws_connect(server, "/ws")
        refused = yield get()
        yield wait_until(lambda: refused.lost.called, 2, "503 answer")
        self.assertTrue(bytes(refused.data).startswith(b"HTTP/1.1 503 "), bytes(refused.data[:40]))
        client.sendClose(1000)
        yield client.closed.addTimeout(2, reactor)
        ok = yield get()
        yield wait_until(lambda: ok.lost.called, 2, "200 answer")
        self.assertTrue(bytes(ok.data).startswith(b"HTTP/1.1 200 "), bytes(ok.data[:40]))

        stream = yield raw_connect(server, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: b"hello" in stream.data, 2, "stream open")
        refused = yield get()
        yield wait_until(lambda: refused.lost.called, 2, "503 answer")
        self.assertTrue(bytes(refused.data).startswith(b"HTTP/1.1 503 "))
        stream.transport.loseConnection()
        yield stream.lost
        ok = yield get()
        yield wait_until(lambda: ok.lost.called, 2, "200 answer")
        self.assertTrue(bytes(ok.data).startswith(b"HTTP/1.1 200 "))
