"""rediss:// against a TLS redis-server: certificates and host names are verified by default (SPEC §12 r4)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile

import pytest
from cryptography import x509
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from cello_twisted import RateLimitConfig
from cello_twisted.stores import RedisRateLimitStore, SharedStoreUnavailable

from ..server._certs import self_signed
from ._redis_server import RedisServer, _free_port

pytestmark = pytest.mark.live


def write_cert(directory: str, name: str, sans: list[x509.GeneralName]) -> str:
    """A self-signed certificate (its own CA) for ``sans``; returns the PEM path (key beside it)."""
    cert_pem, key_pem = self_signed(name, sans)
    path = os.path.join(directory, f"{name}.pem")
    with open(path, "wb") as fh:
        fh.write(cert_pem)
    with open(path.replace(".pem", ".key"), "wb") as fh:
        fh.write(key_pem)
    return path


LOCAL = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


class TlsServer:
    """One TLS redis-server and its certificates for this test process (trial has no setUpClass)."""

    def __init__(self) -> None:
        self.tls_port = _free_port()
        self.certs = tempfile.mkdtemp(prefix="cello-redis-certs-")
        self.cert = write_cert(self.certs, "redis", LOCAL)
        self.other_ca = write_cert(self.certs, "elsewhere", LOCAL)
        self.wrong_name = write_cert(self.certs, "wrongname", [x509.DNSName("redis.example")])
        self.server = RedisServer(
            (
                "--tls-port", str(self.tls_port),
                "--tls-cert-file", self.cert,
                "--tls-key-file", self.cert.replace(".pem", ".key"),
                "--tls-ca-cert-file", self.cert,
                "--tls-auth-clients", "no",
            )
        )  # fmt: skip

    def close(self) -> None:
        self.server.close()
        shutil.rmtree(self.certs, ignore_errors=True)


_TLS: TlsServer | None = None


def tls_server() -> TlsServer:
    global _TLS
    if _TLS is None:
        import atexit

        _TLS = TlsServer()
        atexit.register(_TLS.close)
    return _TLS


class TlsTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        tls = tls_server()
        self.tls_port, self.certs, self.cert = tls.tls_port, tls.certs, tls.cert
        self.other_ca, self.wrong_name = tls.other_ca, tls.wrong_name
        saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        os.environ["SSL_CERT_DIR"] = self.certs + "/none"  # no system CA trusts our server

        def restore() -> None:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

        self.addCleanup(restore)

    def store(self, url: str) -> RedisRateLimitStore:
        store = RedisRateLimitStore(url, timeout=2.0)
        self.addCleanup(store.close)
        return store

    async def works(self, store: RedisRateLimitStore) -> bool:
        await deferLater(reactor, 0, lambda: None)  # on the running reactor: the native client
        try:
            self.assertTrue(await store.health_check())
            result = await store.hit("k", RateLimitConfig(5, 60), 1000.0)
        except SharedStoreUnavailable:
            return False
        return result.allowed

    def test_untrusted_certificate_is_refused(self) -> None:
        """§12 r4: without the right CA the store answers SharedStoreUnavailable."""
        os.environ.pop("SSL_CERT_FILE", None)

        async def run() -> None:
            self.assertFalse(await self.works(self.store(f"rediss://127.0.0.1:{self.tls_port}/0")))
            other = self.store(f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.other_ca}")
            self.assertFalse(await self.works(other))

        return ensureDeferred(run())

    def test_right_ca_file_is_accepted(self) -> None:
        """§12 r4: ?ssl_ca_certs= naming the server's CA connects, by IP address and by host name."""

        async def run() -> None:
            for host in ("127.0.0.1", "localhost"):
                url = f"rediss://{host}:{self.tls_port}/0?ssl_ca_certs={self.cert}"
                self.assertTrue(await self.works(self.store(url)), host)

        return ensureDeferred(run())

    def test_system_trust_store_honours_ssl_cert_file(self) -> None:
        """§12 r4: with no ssl_ca_certs the system store is used, which honours SSL_CERT_FILE."""
        os.environ["SSL_CERT_FILE"] = self.cert

        async def run() -> None:
            self.assertTrue(await self.works(self.store(f"rediss://127.0.0.1:{self.tls_port}/0")))

        return ensureDeferred(run())

    def test_host_name_is_verified(self) -> None:
        """§12 r4: a certificate from a trusted CA but for another host name is refused."""
        server = RedisServer(
            (
                "--tls-port", str(_free_port()),
                "--tls-cert-file", self.wrong_name,
                "--tls-key-file", self.wrong_name.replace(".pem", ".key"),
                "--tls-ca-cert-file", self.wrong_name,
                "--tls-auth-clients", "no",
            )
        )  # fmt: skip
        self.addCleanup(server.close)
        port = server.extra[1]

        async def run() -> None:
            url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={self.wrong_name}"
            self.assertFalse(await self.works(self.store(url)))

        return ensureDeferred(run())

    def test_verification_off_is_explicit_and_logged(self) -> None:
        """§12 r4: ?ssl_cert_reqs=none connects to an untrusted server and warns, naming ssl_cert_reqs."""
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        store = self.store(f"rediss://127.0.0.1:{self.tls_port}/0?ssl_cert_reqs=none")
        warnings = [e for e in events if "ssl_cert_reqs" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)

        async def run() -> None:
            self.assertTrue(await self.works(store))

        return ensureDeferred(run())
