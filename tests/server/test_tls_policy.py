"""TLS policy over real sockets: ECDHE+AEAD suites only, three curves, session resumption (SPEC_OPERATIONS §11 r8)."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess

import pytest
from twisted.trial.unittest import SynchronousTestCase

from cello_twisted import TlsConfig
from cello_twisted.errors import ConfigError
from tests._support.processes import PYTHON, spawn, tempdir, write_app

from ._certs import make_cert
from .test_tls import client_context

pytestmark = pytest.mark.live


def _tls12_candidates() -> list[str]:
    """Every TLS 1.2 suite this client's OpenSSL can offer, weak ones included."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return sorted({c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"})


def _handshake(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost", session=session)


def _get(tls: ssl.SSLSocket) -> bytes:
    tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    return data


class TlsPolicyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = tempdir(self)
        self.app_path = write_app(self.dir)
        self.cert, self.key, _ = make_cert(self.dir)
        self.child = spawn(
            self,
            [PYTHON, self.app_path, "--port", "0", "--no-logs", "--tls-cert", self.cert, "--tls-key", self.key],
            self.dir,
            {},
        )
        self.port = self.child.port()

    def accepts_tls12(self, cipher: str) -> bool:
        ctx = client_context(self.cert, ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(cipher + ":@SECLEVEL=0")
        try:
            with _handshake(self.port, ctx) as tls:
                return tls.cipher()[0] == cipher
        except (ssl.SSLError, ConnectionError):
            return False

    def test_tls12_suites_are_ecdhe_with_aead_only(self) -> None:
        """Of every TLS 1.2 suite a client can offer, the server accepts only ECDHE with AES-GCM or ChaCha20-Poly1305."""
        candidates = _tls12_candidates()
        self.assertGreater(len(candidates), 10)
        accepted = [c for c in candidates if self.accepts_tls12(c)]
        self.assertTrue(accepted)
        for name in accepted:
            self.assertTrue(name.startswith("ECDHE-"), name)
            self.assertTrue("GCM" in name or "CHACHA20-POLY1305" in name, name)
        self.assertIn("ECDHE-ECDSA-AES128-GCM-SHA256", accepted)  # the server's key is EC P-256
        self.assertIn("ECDHE-ECDSA-CHACHA20-POLY1305", accepted)
        self.assertEqual(self.child.stop(), 0)

    def test_key_exchange_groups_are_x25519_p256_p384(self) -> None:
        """TLS 1.3 completes with X25519, P-256 or P-384 alone and with no other group; TLS 1.2 never picks another."""

        def temp_key(groups: str, version: str) -> str | None:
            result = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", version, "-groups", groups,
                 "-servername", "localhost"],
                input=b"", capture_output=True, timeout=15,
            )
            found = re.search(rb"Server Temp Key: ([^\n]+)", result.stdout)
            return found.group(1).decode() if found else None

        for group, key in (("X25519", "X25519"), ("P-256", "prime256v1"), ("P-384", "secp384r1")):
            self.assertIn(key, temp_key(group, "-tls1_3") or "", group)
        for group in ("X448", "P-521", "ffdhe2048"):
            self.assertIsNone(temp_key(group, "-tls1_3"), group)
        # TLS 1.2 (an ECDSA P-256 certificate needs P-256 in the client's list as well)
        self.assertIn("X25519", temp_key("X25519:P-256", "-tls1_2") or "")
        self.assertIn("prime256v1", temp_key("X448:P-521:ffdhe2048:P-256", "-tls1_2") or "")
        self.assertEqual(self.child.stop(), 0)

    def test_second_connection_resumes_the_session(self) -> None:
        """With TLS 1.3 and 1.2, a client presenting the first connection's session skips the full handshake."""
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_context(self.cert, version)
            with _handshake(self.port, ctx) as first:
                self.assertIn(b"200 OK", _get(first))  # reading lets TLS 1.3 tickets arrive
                session = first.session
            self.assertIsNotNone(session)
            with _handshake(self.port, ctx, session) as second:
                self.assertTrue(second.session_reused, version)
                self.assertIn(b"200 OK", _get(second))
        self.assertEqual(self.child.stop(), 0)


class TlsCipherOverrideTests(SynchronousTestCase):
    def test_ciphers_override_the_default(self) -> None:
        """TlsConfig(ciphers=...) replaces the policy: only the named TLS 1.2 suite is accepted."""
        directory = tempdir(self)
        cert, key, _ = make_cert(directory)
        app_path = write_app(directory)
        tls = f"__import__('cello_twisted').TlsConfig({cert!r}, {key!r}, ciphers='ECDHE-ECDSA-AES256-GCM-SHA384')"
        child = spawn(self, [PYTHON, app_path, "--port", "0", "--no-logs"], directory, {"RUN_KWARGS": f"dict(tls={tls})"})
        port = child.port()
        try:
            for cipher, ok in (("ECDHE-ECDSA-AES256-GCM-SHA384", True), ("ECDHE-ECDSA-AES128-GCM-SHA256", False)):
                ctx = client_context(cert, ssl.TLSVersion.TLSv1_2)
                ctx.set_ciphers(cipher)
                if ok:
                    with _handshake(port, ctx) as tls:
                        self.assertEqual(tls.cipher()[0], cipher)
                else:
                    with self.assertRaises(ssl.SSLError):
                        _handshake(port, ctx).close()
        finally:
            self.assertEqual(child.stop(), 0)

    def test_unknown_cipher_string_is_a_config_error(self) -> None:
        """A cipher string naming nothing OpenSSL knows fails when TlsConfig is built."""
        with self.assertRaises(ConfigError) as caught:
            TlsConfig("c.pem", "k.pem", ciphers="NOT-A-CIPHER")
        self.assertIn("ciphers", str(caught.exception))
        with self.assertRaises(ConfigError):
            TlsConfig("c.pem", "k.pem", ciphers="")
