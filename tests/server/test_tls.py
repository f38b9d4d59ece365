"""TLS in real processes: versions, plain HTTP on the TLS port, ALPN/HTTP/2, bad files (SPEC §2.20 r3, r7)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import warnings

import pytest
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import TlsConfig
from cello_twisted.server._tls import TlsError, certificate_options, resolve_http2
from tests._support.processes import PYTHON, spawn, tempdir, write_app

from ._certs import make_cert


def client_context(cert_path: str, version: ssl.TLSVersion | None = None, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert_path)
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if version < ssl.TLSVersion.TLSv1_2:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions at all
            ctx.minimum_version = version
            ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def https_get(port: int, ctx: ssl.SSLContext, path: str = "/") -> tuple[int, bytes, str]:
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), conn.sock.version()
    finally:
        conn.close()


def h2_get(port: int, cert_path: str, path: str) -> tuple[str | None, int, bytes]:
    """A real HTTP/2 request over ALPN with the h2 package; returns (alpn, status, body)."""
    import h2.config
    import h2.connection
    import h2.events

    ctx = client_context(cert_path, alpn=["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            alpn = tls.selected_alpn_protocol()
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.send_headers(1, [(":method", "GET"), (":path", path), (":scheme", "https"), (":authority", "localhost")], end_stream=True)
            tls.sendall(conn.data_to_send())
            status, body = 0, b""
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        return alpn, status, body
                tls.sendall(conn.data_to_send())
            return alpn, status, body


@pytest.mark.live
class TlsServerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir)
        self.cert, self.key, _ = make_cert(self.dir)

    def start(self, *flags: str, **env: str):
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--no-logs", "--tls-cert", self.cert, "--tls-key", self.key, *flags], self.dir, env)
        return child, child.port()

    def test_tls12_and_tls13_accepted_tls11_refused(self) -> None:
        """§2.20 r7: TLS 1.2 and 1.3 handshakes succeed; a TLS 1.1-only client gets a protocol-version alert."""
        child, port = self.start()
        self.assertIn(f"https://127.0.0.1:{port}", child.output)
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            status, body, negotiated = https_get(port, client_context(self.cert, version))
            self.assertEqual((status, negotiated), (200, name))
            self.assertIn("pid", json.loads(body))
        with self.assertRaises(ssl.SSLError) as caught:
            https_get(port, client_context(self.cert, ssl.TLSVersion.TLSv1_1))
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper())
        self.assertEqual(child.stop(), 0)

    def test_plain_http_to_tls_port_fails_cleanly(self) -> None:
        """§2.20 r7: plain HTTP gets no HTTP answer (connection closed); the server keeps serving TLS."""
        child, port = self.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                reply = s.recv(1024)
            except ConnectionResetError:
                reply = b""
        self.assertNotIn(b"HTTP/1.1", reply)
        self.assertEqual(https_get(port, client_context(self.cert))[0], 200)
        self.assertEqual(child.stop(), 0)

    def test_http2_negotiated_via_alpn(self) -> None:
        """§2.20 r7: http2=None with TLS and h2 installed: ALPN picks h2 and the request is HTTP/2."""
        child, port = self.start()
        alpn, status, body = h2_get(port, self.cert, "/proto")
        self.assertEqual((alpn, status), ("h2", 200))
        self.assertEqual(json.loads(body), {"clientproto": "HTTP/2"})
        self.assertEqual(child.stop(), 0)

    def test_http2_false_offers_only_http11(self) -> None:
        """§2.20 r7: http2=False pins ALPN to http/1.1 even though h2 is importable."""
        child, port = self.start(RUN_KWARGS="{'http2': False}")
        ctx = client_context(self.cert, alpn=["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            self.assertEqual(tls.selected_alpn_protocol(), "http/1.1")
        self.assertEqual(child.stop(), 0)

    def test_tls_with_two_workers(self) -> None:
        """§2.20 r9: workers wrap the adopted socket in TLS."""
        child, port = self.start("--workers", "2")
        child.wait_for("worker 1 serving")
        pids = {json.loads(https_get(port, client_context(self.cert))[1])["pid"] for _ in range(5)}
        self.assertNotIn(child.proc.pid, pids)
        self.assertEqual(child.stop(), 0)

    def test_unreadable_certificate_exits_one(self) -> None:
        """§2.20 r5: an unreadable certificate file is a one-line start-up failure."""
        missing = os.path.join(self.dir, "missing.pem")
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--tls-cert", missing, "--tls-key", self.key], self.dir)
        self.assertEqual(child.wait(), 1)
        self.assertEqual(child.output.strip().splitlines(),
                         [f"cello_twisted: error: cannot read TLS certificate file {missing}: No such file or directory"])

    def test_mismatched_key_exits_one(self) -> None:
        """§2.20 r5: a key that does not match the certificate is a one-line start-up failure."""
        _, other_key, _ = make_cert(self.dir, "other")
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--tls-cert", self.cert, "--tls-key", other_key], self.dir)
        self.assertEqual(child.wait(), 1)
        self.assertIn("does not match certificate", child.output)
        self.assertEqual(len(child.output.strip().splitlines()), 1)

    def test_tls_flags_must_come_together(self) -> None:
        """§2.20 r3: --tls-cert without --tls-key is a bad flag (exit 1)."""
        child = spawn(self, [PYTHON, self.app_path, "--port", "0", "--tls-cert", self.cert], self.dir)
        self.assertEqual(child.wait(), 1)
        self.assertIn("--tls-cert and --tls-key must be given together", child.output)


class TlsConfigTests(SynchronousTestCase):
    def test_empty_paths_rejected(self) -> None:
        """§2.20 r3: TlsConfig with empty paths → ValueError."""
        with self.assertRaises(ValueError):
            TlsConfig("", "key.pem")
        with self.assertRaises(ValueError):
            TlsConfig(cert_path="cert.pem", key_path="")

    def test_public_name_is_the_server_class(self) -> None:
        """§1 r3: cello_twisted.TlsConfig is defined in cello_twisted.server._tls."""
        self.assertEqual(TlsConfig.__module__, "cello_twisted.server._tls")

    def test_garbage_pem_is_a_tls_error(self) -> None:
        """§2.20 r5: files that are not PEM give a clear error, not a traceback."""
        d = tempdir(self)
        cert, key, _ = make_cert(d)
        junk = os.path.join(d, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate")
        with self.assertRaises(TlsError) as caught:
            certificate_options(TlsConfig(junk, key))
        self.assertIn("holds no PEM certificate", str(caught.exception))
        with self.assertRaises(TlsError):
            certificate_options(TlsConfig(cert, junk))

    def test_http2_switch(self) -> None:
        """§2.20 r7: None follows TLS; True without TLS → RuntimeError; False disables."""
        self.assertTrue(resolve_http2(None, True))
        self.assertFalse(resolve_http2(None, False))
        self.assertFalse(resolve_http2(False, True))
        with self.assertRaises(RuntimeError):
            resolve_http2(True, False)
