"""TLS for ``rediss://``: verify the certificate and host name unless told not to (SPEC §12 r4).

The trust store is the system's (OpenSSL default paths, which honour ``SSL_CERT_FILE`` and
``SSL_CERT_DIR``) or the CA file named by ``?ssl_ca_certs=``. ``?ssl_cert_reqs=none`` turns
verification off and logs a warning naming ``ssl_cert_reqs`` when the store is built.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import ssl
from twisted.logger import Logger

from ._redis_url import RedisTarget

_log = Logger(namespace="cello_twisted.stores.redis")


def _trust_root(ca_certs: str | None) -> Any:
    if ca_certs is None:
        return ssl.platformTrust()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        with open(ca_certs, "rb") as fh:
            certs = x509.load_pem_x509_certificates(fh.read())
    except (OSError, ValueError) as exc:
        raise ValueError(f"ssl_ca_certs: cannot read CA certificates from {ca_certs!r}: {exc}") from None
    return ssl.trustRootFromCertificates(
        [ssl.Certificate.loadPEM(c.public_bytes(Encoding.PEM)) for c in certs]
    )


def _client_certificate(target: RedisTarget) -> Any:
    if target.certfile is None:
        return None
    try:
        with open(target.certfile, "rb") as fh:
            pem = fh.read()
        if target.keyfile is not None:
            with open(target.keyfile, "rb") as fh:
                pem += b"\n" + fh.read()
    except OSError as exc:
        raise ValueError(f"ssl_certfile/ssl_keyfile: {exc}") from None
    return ssl.PrivateCertificate.loadPEM(pem)


def tls_options_factory(target: RedisTarget, where: str) -> Any:
    """A function ``host -> IOpenSSLClientConnectionCreator`` for ``target`` (None without TLS).

    CA files are read here, at start-up; a bad file is a ValueError then.
    """
    if not target.tls:
        return None
    client_cert = _client_certificate(target)
    if not target.verify:
        _log.warn(
            "Redis at {where}: TLS certificate verification is OFF (ssl_cert_reqs=none); "
            "anyone on the path can impersonate the server",
            where=where,
        )
        extra: dict[str, Any] = {}
        if client_cert is not None:
            extra = {"privateKey": client_cert.privateKey.original, "certificate": client_cert.original}
        options = ssl.CertificateOptions(verify=False, **extra)
        return lambda host: options
    trust = _trust_root(target.ca_certs)

    def creator(host: str) -> Any:
        return ssl.optionsForClientTLS(host, trustRoot=trust, clientCertificate=client_cert)

    return creator
