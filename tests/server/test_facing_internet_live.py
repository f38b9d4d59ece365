"""Facing the internet over real sockets and processes (SPEC_OPERATIONS §4; issue 12 acceptance 1, 3, 4, 7, 8)."""

from __future__ import annotations

import http.client
import os
import selectors
import signal
import socket
import threading
import time

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests._support.processes import PYTHON, spawn, tempdir, wait_until, write_app

pytestmark = pytest.mark.live

SERVER_SOURCE = '''
import os
import resource

if os.environ.get("NOFILE"):
    limit = int(os.environ["NOFILE"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

from twisted.internet import reactor, task

from cello_twisted import App

app = App(max_body_size=1024, max_concurrent_requests=eval(os.environ.get("MAX_CONCURRENT", "None")))
MARKS = os.environ.get("MARKS")


@app.get("/")
def index(request):
    return {"ok": True, "path": request.path, "query": dict(request.query)}


@app.get("/p")
def p(request):
    return {"path": request.path, "query": dict(request.query)}


@app.get("/slow")
def slow(request):
    if MARKS:
        with open(MARKS, "a") as f:
            f.write("slow started\\n")
    seconds = float(request.query.get("s", "1"))
    return task.deferLater(reactor, seconds, lambda: {"slow": seconds})


@app.post("/upload")
def upload(request):
    return {"size": len(request.body())}


if __name__ == "__main__":
    app.run(**eval(os.environ.get("RUN_KWARGS", "{}")))
'''


class LiveServerCase(SynchronousTestCase):
    def start(self, run_kwargs: dict | None = None, args: tuple[str, ...] = (), **env: str) -> int:
        directory = tempdir(self)
        path = write_app(directory, "server.py", SERVER_SOURCE)
        kwargs = {"port": 0, "env": "production", "workers": 1, **(run_kwargs or {})}
        self.child = spawn(self, [PYTHON, path, *args], directory, {"RUN_KWARGS": repr(kwargs), **env})
        self.port = self.child.port()
        return self.port

    def raw(self, request: bytes, timeout: float = 5.0) -> bytes:
        """Send ``request`` and read until the server closes (bounded)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks)

    def get(self, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()


class _Attack:
    """Slow clients on non-blocking sockets: slowloris (headers a byte at a time) and slow bodies."""

    def __init__(self, port: int, slowloris: int, slow_bodies: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.loris: list[socket.socket] = []
        self.bodies: list[socket.socket] = []
        self.replies: dict[socket.socket, bytearray] = {}
        self.closed_at: dict[socket.socket, float] = {}
        self.started = time.monotonic()
        for i in range(slowloris + slow_bodies):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            if i < slowloris:
                sock.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
                self.loris.append(sock)
            else:
                sock.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
                self.bodies.append(sock)
            self.replies[sock] = bytearray()
            self.selector.register(sock, selectors.EVENT_READ)

    def pump(self, seconds: float) -> None:
        """Trickle a header byte to every slowloris socket every 0.3 s; collect answers until closed."""
        end = time.monotonic() + seconds
        next_trickle = 0.0
        while time.monotonic() < end and len(self.closed_at) < len(self.replies):
            now = time.monotonic()
            if now >= next_trickle:
                for sock in self.loris:
                    if sock not in self.closed_at:
                        try:
                            sock.send(b"X")
                        except OSError:
                            pass
                next_trickle = now + 0.3
            for key, _ in self.selector.select(timeout=0.05):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if data:
                    self.replies[sock].extend(data)  # type: ignore[index]
                else:
                    self.closed_at[sock] = time.monotonic()  # type: ignore[index]
                    self.selector.unregister(sock)

    def close(self) -> None:
        for sock in self.replies:
            sock.close()
        self.selector.close()


class SlowClientTests(LiveServerCase):
    def test_slow_clients_are_cut_and_a_normal_client_is_served(self):
        """Acceptance 1 / r1-r2: two waves of 300 slowloris + 300 slow-body clients (1,200 in all, more
        than the server's 1,024 files) are each cut with 408 at their deadline, and a normal client is
        served during both waves."""
        self.start({"header_timeout": 1.5, "body_timeout": 1.5}, NOFILE="1024")
        for wave in range(2):
            attack = _Attack(self.port, 300, 300)
            self.addCleanup(attack.close)
            attack.pump(0.5)
            started = time.monotonic()
            status, body, _ = self.get("/", timeout=3)
            self.assertEqual(status, 200)
            self.assertLess(time.monotonic() - started, 1.0, "a normal client waited during the attack")
            attack.pump(6)
            self.assertEqual(len(attack.closed_at), 600, f"wave {wave}: every slow client was closed")
            for sock, reply in attack.replies.items():
                self.assertTrue(reply.startswith(b"HTTP/1.1 408 "), bytes(reply[:60]))
                self.assertIn(b'"status":408', reply)
                elapsed = attack.closed_at[sock] - attack.started
                self.assertGreater(elapsed, 1.3)  # not before its deadline
                self.assertLess(elapsed, 5.0)  # and soon after it
            attack.close()
        self.assertNotIn("Too many open files", self.child.output)


class LoadSheddingLiveTests(LiveServerCase):
    def test_request_over_the_limit_gets_503_at_once(self):
        """Acceptance 3 / r6: with max_concurrent_requests=2 and two slow requests in progress, a third
        gets 503 + Retry-After: 1 at once; afterwards requests are served again."""
        directory = tempdir(self)
        marks = os.path.join(directory, "marks")
        self.start(MAX_CONCURRENT="2", MARKS=marks)
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(self.get("/slow?s=2")[0])) for _ in range(2)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: os.path.exists(marks) and open(marks).read().count("started") == 2, 5))
        started = time.monotonic()
        status, body, headers = self.get("/")
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertEqual((status, headers.get("retry-after")), (503, "1"))
        self.assertIn(b'"status":503', body)
        for t in threads:
            t.join(10)
        self.assertEqual(results, [200, 200])
        self.assertEqual(self.get("/")[0], 200)


class StrictnessLiveTests(LiveServerCase):
    def test_limits_and_strictness_over_a_socket(self):
        """Acceptance 4 / r4, r12: 431 and 414 for oversized headers and request lines; each HTTP/1.1
        leniency → 400 with the standard body and a closed connection; absolute-form routes on its path."""
        self.start({"max_header_bytes": 4096, "max_header_count": 20})
        cases = [
            (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 25 + b"\r\n", 431),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400),
            (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\nHost: x\n\n", 400),
        ]
        for request, status in cases:
            started = time.monotonic()
            reply = self.raw(request, timeout=3)
            self.assertTrue(reply.startswith(b"HTTP/1.1 %d " % status), (request[:60], reply[:80]))
            self.assertIn(b'"status":%d' % status, reply)
            self.assertIn(b"Connection: close", reply)
            self.assertLess(time.monotonic() - started, 1.0, "answered at once, never left hanging")
        reply = self.raw(b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        self.assertIn(b'"path":"/p"', reply)
        self.assertIn(b'"query":{"q":"1"}', reply)


class BacklogTests(LiveServerCase):
    def test_burst_of_500_connects_needs_no_syn_retry(self):
        """Acceptance 7 / r9: 500 simultaneous connects to app.run() all complete in < 200 ms each
        (the default backlog of 1024 holds them; Twisted's old 50 made hundreds wait 1 s for a SYN retry)."""
        self.start()
        socks = []
        selector = selectors.DefaultSelector()
        try:
            started = time.monotonic()
            for _ in range(500):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", self.port))
                selector.register(sock, selectors.EVENT_WRITE)
                socks.append(sock)
            connected: dict[socket.socket, float] = {}
            while len(connected) < 500 and time.monotonic() - started < 5:
                for key, _ in selector.select(timeout=0.1):
                    connected[key.fileobj] = time.monotonic() - started  # type: ignore[index]
                    selector.unregister(key.fileobj)
            self.assertEqual(len(connected), 500)
            errors = [s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) for s in socks]
            self.assertEqual(set(errors), {0})
            self.assertLess(max(connected.values()), 0.2)
        finally:
            selector.close()
            for sock in socks:
                sock.close()
        self.assertEqual(self.get("/")[0], 200)


class GracefulStopTests(LiveServerCase):
    def test_partial_requests_do_not_delay_the_stop(self):
        """Acceptance 8 / r10: at SIGTERM, 10 connections holding a partial request are closed at once;
        the one slow in-flight request completes; the process exits within 2 s after it."""
        directory = tempdir(self)
        marks = os.path.join(directory, "marks")
        self.start({"graceful_timeout": 30}, MARKS=marks)
        partial = []
        for i in range(10):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GET /slo")
            partial.append(sock)
        self.addCleanup(lambda: [s.close() for s in partial])
        outcome: dict[str, object] = {}

        def slow() -> None:
            outcome["reply"] = self.get("/slow?s=2", timeout=10)
            outcome["done"] = time.monotonic()

        thread = threading.Thread(target=slow)
        thread.start()
        self.assertTrue(wait_until(lambda: os.path.exists(marks) and "started" in open(marks).read(), 5))
        self.child.send(signal.SIGTERM)
        stop_sent = time.monotonic()
        for sock in partial:
            sock.settimeout(2)
            self.assertEqual(sock.recv(100), b"")  # closed without an answer
        self.assertLess(time.monotonic() - stop_sent, 1.5)
        thread.join(10)
        status, body, headers = outcome["reply"]  # type: ignore[misc]
        self.assertEqual(status, 200)
        self.assertEqual(self.child.wait(10), 0)
        exited = time.monotonic()
        self.assertLess(exited - outcome["done"], 2.0)  # type: ignore[operator]


UPLOAD = b"u" * 65536


def _post_upload(conn: http.client.HTTPConnection, chunked: bool) -> tuple[int, bytes]:
    """POST a 64 KiB body (declared or chunked) and read the answer, as a plain client does."""
    try:
        if chunked:
            conn.request("POST", "/upload", body=iter([UPLOAD[:16384]] * 4), encode_chunked=True)
        else:
            conn.request("POST", "/upload", body=UPLOAD)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _h2_rounds(port: int, cert_path: str, rounds: int) -> list[tuple[int, int]]:
    """On one HTTP/2 connection, each round opens an oversized upload stream and a GET stream;
    returns the (upload status, GET status) pairs."""
    import h2.config
    import h2.connection
    import h2.events

    from .test_tls import client_context

    results = []
    ctx = client_context(cert_path, alpn=["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            tls.sendall(conn.data_to_send())
            base = [(":scheme", "https"), (":authority", "localhost")]
            for i in range(rounds):
                upload, get = 4 * i + 1, 4 * i + 3
                declared = i % 2 == 0
                headers = [(":method", "POST"), (":path", "/upload"), *base]
                conn.send_headers(upload, headers + ([("content-length", "5000")] if declared else []))
                conn.send_data(upload, b"x" * 5000, end_stream=not declared)  # declared: upload still going
                conn.send_headers(get, [(":method", "GET"), (":path", "/"), *base], end_stream=True)
                tls.sendall(conn.data_to_send())
                status: dict[int, int] = {}
                finished: set[int] = set()
                deadline = time.monotonic() + 5
                while not ({upload, get} <= finished and upload in status) and time.monotonic() < deadline:
                    data = tls.recv(65536)
                    if not data:
                        break
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.ResponseReceived):
                            status[event.stream_id] = int(dict(event.headers)[b":status"])
                        elif isinstance(event, h2.events.DataReceived):
                            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                            finished.add(event.stream_id)
                    tls.sendall(conn.data_to_send())
                results.append((status.get(upload, 0), status.get(get, 0)))
    return results


class BodyLimitEveryTransportTests(LiveServerCase):
    def test_413_over_plain_http_1_1(self):
        """Acceptance 5 / r11: over plain HTTP/1.1 a body over the limit gets its 413 20 times out of 20
        (declared and chunked uploads)."""
        self.start()
        statuses = [
            _post_upload(http.client.HTTPConnection("127.0.0.1", self.port, timeout=5), i % 2 == 1)[0]
            for i in range(20)
        ]
        self.assertEqual(statuses, [413] * 20)

    def test_413_over_tls_and_http2(self):
        """Acceptance 5 / r11: over HTTP/1.1 + TLS the 413 arrives 20 times out of 20; over HTTP/2 only
        the refused stream ends (413, then RST_STREAM) while the connection's other streams complete."""
        from ._certs import make_cert
        from .test_tls import client_context

        cert, key, _ = make_cert(tempdir(self))
        self.start(args=("--tls-cert", cert, "--tls-key", key))
        ctx = client_context(cert, alpn=["http/1.1"])
        replies = [
            _post_upload(http.client.HTTPSConnection("localhost", self.port, context=ctx, timeout=5), i % 2 == 1)
            for i in range(20)
        ]
        self.assertEqual([status for status, _ in replies], [413] * 20)
        self.assertIn(b'"status":413', replies[0][1])
        self.assertEqual(_h2_rounds(self.port, cert, 20), [(413, 200)] * 20)
