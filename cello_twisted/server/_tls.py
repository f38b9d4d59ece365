"""TlsConfig and the Twisted TLS options built from it (SPEC §2.20 r3, r7)."""

from __future__ import annotations

from typing import Any

from attrs import Attribute, field, frozen

from .._validators import fail


def _path(value: Any) -> str:
    return "" if value is None else str(value)


def _non_empty(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        fail(instance, attribute.name, value, "a non-empty file path")


#: Mozilla "intermediate" TLS 1.2 suites without DHE (SPEC_OPERATIONS §11 r8): ECDHE key
#: exchange with AES-GCM or ChaCha20-Poly1305 only: no static RSA, no CBC, no DHE.
DEFAULT_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
#: TLS 1.3 suites (all AEAD), in Mozilla's order.
TLS13_CIPHERS = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#: Key-exchange groups offered: Mozilla intermediate's curves.
CURVES = "X25519:P-256:P-384"


def _cipher_string(instance: Any, attribute: Attribute[Any], value: Any) -> None:
    if value is None:
        return
    allowed = "None or a non-empty OpenSSL cipher string naming TLS 1.2 ciphers this OpenSSL knows"
    if not isinstance(value, str) or not value.strip():
        fail(instance, attribute.name, value, allowed)
    from OpenSSL import SSL

    try:
        SSL.Context(SSL.TLS_METHOD).set_cipher_list(value.encode("ascii", "replace"))
    except SSL.Error:
        fail(instance, attribute.name, value, allowed)


@frozen
class TlsConfig:
    """Certificate and key files for HTTPS; the certificate file may hold the whole chain.

    ``ciphers`` (an OpenSSL cipher string for TLS 1.2) replaces the default policy,
    ``DEFAULT_CIPHERS`` (Mozilla intermediate without DHE).

    Raises:
        ConfigError: an empty path or an unusable cipher string (the files themselves are
            read by ``certificate_options``).
    """

    cert_path: str = field(converter=_path, validator=_non_empty)
    key_path: str = field(converter=_path, validator=_non_empty)
    ciphers: str | None = field(default=None, validator=_cipher_string)


class TlsError(Exception):
    """A certificate or key that cannot be used; the message is one line for the operator."""


def _read(kind: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsError(f"cannot read TLS {kind} file {path}: {e.strerror or e}") from None


def certificate_options(tls: TlsConfig) -> Any:
    """Load and check ``tls``; only TLS 1.2 and 1.3 are offered (TWISTED_NOTES §5).

    Raises:
        TlsError: a file is unreadable, not PEM, or the key does not match the certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import crypto
    from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

    cert_pem = _read("certificate", tls.cert_path)
    key_pem = _read("key", tls.key_path)
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TlsError(f"TLS certificate file {tls.cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise TlsError(f"TLS key file {tls.key_path} holds no usable PEM private key ({e})") from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certs[0].public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
        raise TlsError(f"TLS key {tls.key_path} does not match certificate {tls.cert_path}")
    leaf = crypto.X509.from_cryptography(certs[0])
    pkey = crypto.PKey.from_cryptography_key(key)  # type: ignore[arg-type]
    chain = [crypto.X509.from_cryptography(c) for c in certs[1:]]
    options = CertificateOptions(
        privateKey=pkey,
        certificate=leaf,
        extraCertChain=chain or None,
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(tls.ciphers or DEFAULT_CIPHERS),
        enableSessions=True,  # resumption: a returning client skips the full handshake
        enableSessionTickets=True,
    )
    _apply_policy(options.getContext())  # the one context every connection of ``options`` uses
    return options


def _apply_policy(ctx: Any) -> None:
    """TLS 1.3 suites and key-exchange groups, which CertificateOptions does not set."""
    ctx.set_tls13_ciphersuites(TLS13_CIPHERS.encode("ascii"))
    from cryptography.hazmat.bindings.openssl.binding import Binding

    set_groups = getattr(Binding.lib, "SSL_CTX_set1_curves_list", None)
    handle = getattr(ctx, "_context", None)  # pyOpenSSL has no public setter for groups
    if set_groups is None or handle is None or set_groups(handle, CURVES.encode("ascii")) != 1:
        from twisted.logger import Logger

        Logger(namespace="cello_twisted.server").warn(
            "this OpenSSL cannot restrict TLS key-exchange groups to {curves}: using its defaults",
            curves=CURVES,
        )


def h2_available() -> bool:
    from twisted.web import http

    return bool(getattr(http, "H2_ENABLED", False))


def resolve_http2(http2: bool | None, tls_on: bool) -> bool:
    """``None``: HTTP/2 when TLS is on and h2 imports; ``True`` without them is an error."""
    if http2 is None:
        return tls_on and h2_available()
    if http2:
        if not tls_on:
            raise RuntimeError("http2=True needs TLS (HTTP/2 is negotiated with ALPN)")
        if not h2_available():
            raise RuntimeError("http2=True needs the h2 package: pip install 'twisted[http2]'")
        return True
    return False


def apply_http2(site: Any, enabled: bool) -> Any:
    """Pin the Site's ALPN list; Twisted would otherwise offer h2 whenever it imports."""
    protocols = [b"h2", b"http/1.1"] if enabled else [b"http/1.1"]
    site.acceptableProtocols = lambda: list(protocols)
    return site
