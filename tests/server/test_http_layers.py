"""Conformance: both HTTP/1.1 connection layers (llhttp via httptools, and Twisted's parser) behave alike.

Every case runs once per layer (``http_parser="httptools"`` and ``"twisted"``): pipelining,
chunked bodies, ``Expect: 100-continue``, HTTP/1.0 and keep-alive, the body limit, every
timeout and limit, each strictness case, producers, the WebSocket hand-over and TLS.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import tempfile
import unittest
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cello_twisted import App, Response, StaticFilesConfig
from cello_twisted.errors import ConfigError
from cello_twisted.server._limits import httptools_available

from .test_channel import Conn

LAYERS = ["httptools", "twisted"] if httptools_available() else ["twisted"]


def make_app(clock: Any = None) -> tuple[App, list[Deferred]]:
    app = App(clock=clock) if clock is not None else App()
    app.max_body_size = 1000
    pending: list[Deferred] = []

    @app.get("/")
    def index(request):
        return {"ok": True}

    @app.get("/n/{n}")
    def number(request):
        return {"n": request.params["n"], "query": dict(request.query)}

    @app.post("/echo")
    def echo(request):
        return Response(request.body(), content_type="application/octet-stream")

    @app.get("/multi")
    def multi(request):
        resp = Response(b"m", content_type="text/plain")
        resp.headers.add("X-Multi", "one")
        resp.headers.add("X-Multi", "two")
        resp.headers.set("X-Single", "1")
        return resp

    @app.get("/wait")
    def wait(request):
        d: Deferred = Deferred()
        pending.append(d)
        return d

    return app, pending


def statuses(data: bytes) -> list[int]:
    """Status codes of every response in ``data`` (in order)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def bodies(data: bytes) -> list[bytes]:
    """The bodies of the Content-Length framed responses in ``data``."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        out.append(rest[:length])
        data = rest[length:]
    return out


def make_app_for_twistd() -> App:
    """An app factory for the twistd option test."""
    return make_app()[0]


class _Layer:
    parser = "httptools"

    def serve(self, **limits: Any) -> None:
        self.clock = Clock()
        self.app, self.pending = make_app(self.clock)
        self.site = self.app.site(http_parser=self.parser, **limits)

    def connect(self) -> Conn:
        return Conn(self.site)


class _Framing(_Layer):
    def test_selected_layer(self):
        """app.site(http_parser=...) picks the layer; the channel class says which."""
        self.serve()
        channel = type(self.connect().protocol._channel).__name__
        self.assertEqual(channel, "CelloFastChannel" if self.parser == "httptools" else "CelloSiteChannel")

    def test_keep_alive_serves_many_requests(self):
        """HTTP/1.1 keeps the connection open across requests."""
        self.serve()
        conn = self.connect()
        for _ in range(3):
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200, 200, 200])
        self.assertFalse(conn.closing)

    def test_pipelined_requests_answered_in_order(self):
        """Pipelined requests in one read are answered in order, each with its own body."""
        self.serve()
        conn = self.connect()
        conn.send(
            b"GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /n/2?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        got = bodies(conn.data)
        self.assertEqual([json.loads(got[0])["n"], got[1], json.loads(got[2])], ["1", b"abc", {"n": "2", "query": {"q": "1"}}])

    def test_pipelined_request_waits_for_a_slow_one(self):
        """Head-of-line: a request pipelined behind a pending one runs only after it answers."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /n/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(conn.data, b"")
        self.pending[0].callback({"slow": True})
        got = bodies(conn.data)
        self.assertEqual([json.loads(b) for b in got], [{"slow": True}, {"n": "7", "query": {}}])

    def test_response_header_lines_one_per_value(self):
        """A header with several values goes out as one line per value, in order; single ones once."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET /multi HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first, _, rest = conn.data.partition(b"\r\n\r\n")
        lines = first.split(b"\r\n")
        self.assertEqual([line for line in lines if line.lower().startswith(b"x-multi:")], [b"X-Multi: one", b"X-Multi: two"])
        self.assertEqual([line for line in lines if line.lower().startswith(b"x-single:")], [b"X-Single: 1"])
        self.assertEqual(statuses(conn.data), [200, 200])
        self.assertEqual(bodies(conn.data), [b"m", b'{"ok":true}'])

    def test_request_split_across_reads(self):
        """A request arriving a byte at a time is parsed once complete."""
        self.serve()
        conn = self.connect()
        raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        for i in range(len(raw)):
            conn.send(raw[i : i + 1])
        self.assertEqual(bodies(conn.data), [b"hello"])

    def test_chunked_body(self):
        """A chunked request body reaches the handler whole."""
        self.serve()
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        self.assertEqual(bodies(conn.data), [b"abcde"])

    def test_expect_100_continue(self):
        """Expect: 100-continue is answered with 100 before the body, then the response."""
        self.serve()
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        self.assertEqual(conn.data, b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.send(b"ok")
        self.assertEqual(statuses(conn.data), [100, 200])

    def test_body_over_limit_refused_before_reading(self):
        """A Content-Length over the limit gets 413 at once; Expect: 100-continue gets no 100."""
        self.serve()
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        self.assertEqual(statuses(conn.data), [413])
        self.assertIn(b"Connection: close", conn.data)

    def test_chunked_body_over_limit(self):
        """A chunked upload is cut with 413 once it passes the limit."""
        self.serve()
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(b"400\r\n" + b"a" * 1024 + b"\r\n")
        self.assertEqual(statuses(conn.data), [413])

    def test_http_1_0_closes_after_response(self):
        """HTTP/1.0 (no Host needed) gets its answer and the connection closes."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200])
        self.assertTrue(conn.closing)

    def test_connection_close(self):
        """Connection: close is honoured and echoed; bytes after it are ignored."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200])
        self.assertIn(b"Connection: close", conn.data)
        self.assertTrue(conn.closing)

    def test_head_has_no_body(self):
        """HEAD answers the GET's Content-Length with no body."""
        self.serve()
        conn = self.connect()
        conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200, 200])
        self.assertTrue(conn.data.split(b"\r\n\r\n")[1].startswith(b"HTTP/1.1 200"))

    def test_absolute_form_routes_on_its_path(self):
        """An absolute-form target routes on its path and query."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET http://example.com/n/3?a=b HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.assertEqual(json.loads(bodies(conn.data)[0]), {"n": "3", "query": {"a": "b"}})

    def test_request_headers_reach_the_app(self):
        """Header names are case-insensitive and repeated headers keep every value, in order."""
        app = App(clock=Clock())

        @app.get("/h")
        def headers(request):
            return {"a": request.headers.get("x-a"), "all": request.raw.requestHeaders.getRawHeaders("x-b")}

        conn = Conn(app.site(http_parser=self.parser))
        conn.send(b"GET /h HTTP/1.1\r\nHost: x\r\nX-A: one  \r\nx-b: 1\r\nX-B: 2\r\n\r\n")
        self.assertEqual(json.loads(bodies(conn.data)[0]), {"a": "one", "all": ["1", "2"]})


class _Hostile(_Layer):
    def test_pipelined_flood_pauses_reading(self):
        """Requests piling up behind a pending one stop the reading (bounded memory), and all get answers after."""
        self.serve()
        conn = self.connect()
        paused: list[bool] = []
        conn.transport.pauseProducing = lambda: paused.append(True)  # type: ignore[method-assign]
        conn.transport.resumeProducing = lambda: paused.append(False)  # type: ignore[method-assign]
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(12):
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n")
        self.assertIn(True, paused)
        self.pending[0].callback({"first": True})
        self.assertEqual(statuses(conn.data), [200] * 13)
        self.assertEqual(paused[-1], False)

    def test_unknown_method_reaches_the_app(self):
        """A method the parser does not know still gets the app's 405 with Allow, then the connection goes on."""
        self.serve()
        conn = self.connect()
        conn.send(b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [405])
        conn.send(b"GET /n/4 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [405, 200])

    def test_disconnect_mid_request_cancels_pending_handler(self):
        """A client that leaves while its request is pending: nothing is written, no error."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n")
        conn.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(conn.data, b"")


class _Strictness(_Layer):
    CASES = {
        "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
        "TE identity": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        "TE gzip, chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "TE + Content-Length": (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
        ),
        "two Content-Lengths": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "signed Content-Length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        "missing Host": b"GET / HTTP/1.1\r\n\r\n",
        "two Hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "NUL in value": b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
        "no colon": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        "bad target": b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "garbage line": b"HELLO\r\n\r\n",
    }

    def test_each_malformed_request_gets_400_and_close(self):
        """Every smuggling/malformed case: 400 with the JSON error body, connection closed, app not run."""
        for name, raw in self.CASES.items():
            self.serve()
            conn = self.connect()
            conn.send(raw)
            self.assertEqual(statuses(conn.data), [400], f"{name}: {conn.data[:120]!r}")
            body = json.loads(conn.data.split(b"\r\n\r\n", 1)[1])
            self.assertEqual(body["status"], 400, name)
            self.assertTrue(conn.closing, name)

    def test_smuggled_request_after_bad_one_never_runs(self):
        """A request hidden behind a malformed one is never served."""
        self.serve()
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nGET /n/9 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [400])

    def test_malformed_pipelined_request_answered_after_the_good_one(self):
        """A bad request behind a good one: 200 first, then 400, in order."""
        self.serve()
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost : x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200, 400])

    def test_long_request_line_gets_414(self):
        """A request line over max_header_bytes: 414."""
        self.serve(max_header_bytes=1024)
        conn = self.connect()
        conn.send(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(conn.data), [414])

    def test_trickled_long_request_line_gets_414(self):
        """A request line sent in small pieces is cut once it passes the limit."""
        self.serve(max_header_bytes=1024)
        conn = self.connect()
        conn.send(b"GET /")
        for _ in range(40):
            conn.send(b"a" * 100)
        self.assertEqual(statuses(conn.data), [414])

    def test_large_headers_get_431(self):
        """Headers over max_header_bytes: 431."""
        self.serve(max_header_bytes=1024)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n")
        self.assertEqual(statuses(conn.data), [431])

    def test_trickled_header_value_gets_431(self):
        """One endless header value arriving in pieces is cut with 431, not buffered forever."""
        self.serve(max_header_bytes=1024)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(40):
            conn.send(b"b" * 100)
        self.assertEqual(statuses(conn.data), [431])

    def test_too_many_headers_get_431(self):
        """More header lines than max_header_count: 431."""
        self.serve(max_header_count=5)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(6)) + b"\r\n")
        self.assertEqual(statuses(conn.data), [431])

    def test_headers_under_the_limits_pass(self):
        """Just under the limits is served."""
        self.serve(max_header_count=5, max_header_bytes=1024)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(3)) + b"X-Pad: " + b"p" * 800 + b"\r\n\r\n")
        self.assertEqual(statuses(conn.data), [200])


class _Timeouts(_Layer):
    def test_header_timeout(self):
        """Headers not complete header_timeout after their first byte: 408 and close."""
        self.serve(header_timeout=4)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHo")
        self.clock.advance(3)
        conn.send(b"s")
        self.assertEqual(conn.data, b"")
        self.clock.advance(1.5)
        self.assertEqual(statuses(conn.data), [408])
        self.assertTrue(conn.closing)

    def test_body_timeout(self):
        """A body stalled longer than body_timeout: 408."""
        self.serve(body_timeout=3)
        conn = self.connect()
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        self.clock.advance(3.5)
        self.assertEqual(statuses(conn.data), [408])

    def test_keep_alive_timeout(self):
        """An idle keep-alive connection is closed silently after keep_alive_timeout."""
        self.serve(keep_alive_timeout=5)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(4)
        self.assertFalse(conn.closing)
        self.clock.advance(2)
        self.assertTrue(conn.closing)
        self.assertEqual(statuses(conn.data), [200])

    def test_busy_request_is_not_timed_out(self):
        """A request with the app is never cut by the connection's timers."""
        self.serve(header_timeout=2, keep_alive_timeout=2)
        conn = self.connect()
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(30)
        self.assertFalse(conn.closing)
        self.pending[0].callback({"late": True})
        self.assertEqual(statuses(conn.data), [200])

    def test_partial_pipelined_request_gets_header_deadline(self):
        """A partial request behind a finished one is timed like any partial request."""
        self.serve(header_timeout=4)
        conn = self.connect()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo")
        self.clock.advance(5)
        self.assertEqual(statuses(conn.data), [200, 408])

    def test_graceful_stop_state(self):
        """The graceful stop sees fresh, idle (partial request) and busy connections alike on both layers."""
        self.serve()
        fresh, partial, busy = self.connect(), self.connect(), self.connect()
        partial.send(b"GET / HTT")
        busy.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        states = [c.protocol.connection_state() for c in (fresh, partial, busy)]
        self.assertEqual(states, ["fresh", "idle", "busy"])


class _Shedding(_Layer):
    def test_over_capacity_gets_503(self):
        """max_concurrent_requests: the request over the limit gets 503 at once, on either layer."""
        self.clock = Clock()
        app, pending = make_app(self.clock)
        app.max_concurrent_requests = 1
        site = app.site(http_parser=self.parser)
        first, second = Conn(site), Conn(site)
        first.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        second.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statuses(second.data), [503])
        pending[0].callback({})
        self.assertEqual(statuses(first.data), [200])


def _layer_cases(base: type, name: str) -> dict[str, type]:
    return {
        f"{name}_{parser}": type(f"{name}_{parser}", (base, SynchronousTestCase), {"parser": parser}) for parser in LAYERS
    }


globals().update(_layer_cases(_Framing, "FramingTests"))
globals().update(_layer_cases(_Strictness, "StrictnessTests"))
globals().update(_layer_cases(_Timeouts, "TimeoutTests"))
globals().update(_layer_cases(_Shedding, "SheddingTests"))
globals().update(_layer_cases(_Hostile, "HostileTests"))


class OneSendTests(SynchronousTestCase):
    def test_flat_request_constructor_matches_twisted(self):
        """The fast layer builds requests in one frame only while Twisted's constructor sets the same attributes."""
        if "httptools" not in LAYERS:
            raise unittest.SkipTest("httptools not installed")
        from cello_twisted.server import _fast_channel

        self.assertTrue(_fast_channel._FLAT_INIT, "Twisted's Request.__init__ changed: review FastRequest.__init__")
        app, _ = make_app(Clock())
        conn = Conn(app.site(http_parser="httptools"))
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        request = conn.protocol._channel.requests[0]
        self.assertEqual((request.client.host, request.queued, request.args), ("127.0.0.1", 0, {}))

    def test_head_and_body_leave_in_one_write(self):
        """Fast layer: a response's head and body reach the transport in one write, pipelined answers too."""
        if "httptools" not in LAYERS:
            raise unittest.SkipTest("httptools not installed")
        app, pending = make_app(Clock())
        conn = Conn(app.site(http_parser="httptools"))
        writes: list[bytes] = []
        write = conn.transport.write
        conn.transport.write = lambda data: (writes.append(data), write(data))  # type: ignore[method-assign]
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /n/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(writes), 1)
        self.assertEqual(statuses(writes[0]), [200, 200])
        conn.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        pending[0].callback({"later": True})
        self.assertEqual(len(writes), 2)
        self.assertEqual(bodies(writes[1]), [b'{"later":true}'])


class SelectionTests(SynchronousTestCase):
    def test_unknown_parser_is_a_config_error(self):
        """http_parser accepts only 'httptools' or 'twisted'."""
        with self.assertRaises(ConfigError):
            App().site(http_parser="fast")

    def test_run_flag_and_twistd_option(self):
        """`--http-parser twisted` reaches app.run()'s options and the twistd plugin's limits."""
        from cello_twisted.server._config import StartupError, parse_flags
        from cello_twisted.server.tap import Options

        self.assertEqual(parse_flags(["--http-parser", "twisted"]), {"http_parser": "twisted"})
        with self.assertRaises(StartupError):
            parse_flags(["--http-parser=fast"])
        options = Options()
        options.parseOptions(["--app", "tests.server.test_http_layers:make_app_for_twistd", "--http-parser", "twisted"])
        self.assertEqual(options["limits"].http_parser, "twisted")

    def test_run_argument_and_flag_precedence(self):
        """app.run(http_parser=...) sets the layer; the --http-parser flag wins over it."""
        from cello_twisted.server._config import resolve

        self.assertEqual(resolve("127.0.0.1", 0, {"http_parser": "twisted"}, []).limits.http_parser, "twisted")
        flagged = resolve("127.0.0.1", 0, {"http_parser": "twisted"}, ["--http-parser", LAYERS[0]])
        self.assertEqual(flagged.limits.http_parser, LAYERS[0])

    def test_site_uses_the_stock_channel_when_asked(self):
        """app.site(http_parser="twisted") serves through Twisted's HTTPChannel subclass."""
        from cello_twisted.server._channel import CelloChannel
        from cello_twisted.server._fast_channel import FastChannel

        channel = Conn(App(clock=Clock()).site(http_parser="twisted")).protocol._channel
        self.assertIsInstance(channel, CelloChannel)
        self.assertNotIsInstance(channel, FastChannel)

    def test_environment_picks_the_default(self):
        """CELLO_HTTP_PARSER=twisted makes the stock channel the default (CI runs the suite under both)."""
        from cello_twisted.server._limits import PARSER_ENV, default_parser

        old = os.environ.get(PARSER_ENV)
        try:
            os.environ[PARSER_ENV] = "twisted"
            self.assertEqual(default_parser(), "twisted")
            os.environ[PARSER_ENV] = "httptools"
            self.assertEqual(default_parser(), "httptools")
        finally:
            if old is None:
                os.environ.pop(PARSER_ENV, None)
            else:
                os.environ[PARSER_ENV] = old


# -- over real sockets --------------------------------------------------------------------


def _blocking_exchange(port: int, payload: bytes, until: int, tls: ssl.SSLContext | None = None) -> bytes:
    """Send ``payload``; read until ``until`` responses arrived or the peer closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        sock: Any = tls.wrap_socket(raw, server_hostname="localhost") if tls is not None else raw
        sock.sendall(payload)
        data = b""
        while len(statuses(data)) < until or not _complete(data, until):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _complete(data: bytes, count: int) -> bool:
    """Have ``count`` Content-Length framed responses arrived in full?"""
    for _ in range(count):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        length = int(match.group(1)) if match else 0
        if len(rest) < length:
            return False
        data = rest[length:]
    return True


class _Live(_Layer):
    @inlineCallbacks
    def listen(self, app: App, **kwargs: Any) -> Any:
        port = reactor.listenTCP(0, app.site(http_parser=self.parser), interface="127.0.0.1", **kwargs)
        self.addCleanup(port.stopListening)
        return port.getHost().port
        yield

    @inlineCallbacks
    def test_pipelined_keep_alive_over_tcp(self):
        """Real socket: pipelined requests and a keep-alive body come back in order."""
        app, _ = make_app()
        port = yield self.listen(app)
        payload = b"GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\n" + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
        data = yield deferToThread(_blocking_exchange, port, payload, 2)
        self.assertEqual(statuses(data), [200, 200])
        self.assertEqual(bodies(data)[1], b"hi")

    @inlineCallbacks
    def test_large_streamed_file_with_back_pressure(self):
        """A 3 MB static file (a producer under back-pressure) arrives intact, then the next request runs."""
        folder = tempfile.mkdtemp()
        blob = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(folder, "big.bin"), "wb") as f:
            f.write(blob)
        app, _ = make_app()
        app.enable_static_files(StaticFilesConfig("/files", folder))
        port = yield self.listen(app)
        payload = b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: x\r\n\r\n"
        data = yield deferToThread(_blocking_exchange, port, payload, 2)
        got = bodies(data)
        self.assertEqual(got[0], blob)
        self.assertEqual(json.loads(got[1])["n"], "2")

    @inlineCallbacks
    def test_large_upload(self):
        """A 600 kB request body (several reads) reaches the handler whole."""
        app, _ = make_app()
        app.max_body_size = 10_000_000
        port = yield self.listen(app)
        body = os.urandom(600_000)
        payload = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        data = yield deferToThread(_blocking_exchange, port, payload, 1)
        self.assertEqual(bodies(data)[0], body)

    @inlineCallbacks
    def test_websocket_hand_over(self):
        """After 101 the WebSocket library owns the connection: an echo round trip works."""
        from tests._support.live import LiveServer, ws_connect

        app = App()

        @app.websocket("/ws")
        async def ws(socket):
            async for message in socket:
                await socket.send(message)

        server = LiveServer(self, _Pinned(app, self.parser))
        client = yield ws_connect(server, "/ws")
        client.sendMessage(b"ping", isBinary=True)
        message = yield client.messages.get()
        self.assertEqual(message, b"ping")
        client.transport.loseConnection()
        yield client.closed

    @inlineCallbacks
    def test_tls(self):
        """Over TLS, keep-alive and pipelined requests work on both layers."""
        from cello_twisted.server._tls import certificate_options

        from .test_tls import client_context

        cert_path, key_path = _cert_files()
        app, _ = make_app()
        from cello_twisted import TlsConfig

        options = certificate_options(TlsConfig(cert_path, key_path))
        site = app.site(http_parser=self.parser)
        port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        ctx = client_context(cert_path, alpn=["http/1.1"])
        payload = b"GET /n/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        data = yield deferToThread(_blocking_exchange, port.getHost().port, payload, 2, ctx)
        self.assertEqual([json.loads(b)["n"] for b in bodies(data)], ["1", "2"])


class _Pinned:
    """An app whose site() always uses one layer (LiveServer calls app.site() with no arguments)."""

    def __init__(self, app: App, parser: str) -> None:
        self.app, self.parser = app, parser

    def site(self) -> Any:
        return self.app.site(http_parser=self.parser)


_CERTS: list[tuple[str, str]] = []


def _cert_files() -> tuple[str, str]:
    if not _CERTS:
        from ._certs import make_cert

        cert_path, key_path, _pem = make_cert(tempfile.mkdtemp())
        _CERTS.append((cert_path, key_path))
    return _CERTS[0]


for _parser in LAYERS:
    _name = f"LiveTests_{_parser}"
    globals()[_name] = pytest.mark.live(type(_name, (_Live, TestCase), {"parser": _parser}))
