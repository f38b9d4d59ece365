"""Child process for the memory test: drives hostile distinct inputs through an app, prints RSS growth.

Run as ``python -m tests._support.memory_probe N [kind,kind...]``; prints one JSON object with the
RSS growth (MB) per kind, the statuses seen and how many sessions the store holds.
Requests go straight through the app's resource (routing, middleware, writer) with a
lightweight Twisted request, so 200,000 of each kind take about 30 s of CPU. Three speed-ups
change CPU time only, not what the app keeps in memory: tokens are signed with ``hmac`` directly
(as PyJWT would sign them) from a copied HMAC state over their common prefix, PyJWT's
per-character base64url alphabet check (about 5 ms per 10 KB token) is replaced by the same
check done in C (``bytes.translate``), and garbage collection skips the objects that existed
before the measurement (``gc.freeze``).
"""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import hmac
import io
import json
import os
import string
import sys
from collections.abc import Callable, Iterator

from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from cello_twisted import App, JwtConfig, RateLimitConfig, SessionConfig
from cello_twisted.routing._resource import AppResource
from cello_twisted.stores import MemorySessionStore

SECRET = "m" * 64
PAGE = os.sysconf("SC_PAGE_SIZE")


def _fast_alphabet_check() -> None:
    import jwt.api_jws as jws

    alphabet = string.ascii_letters.encode() + string.digits.encode() + b"-_"
    to_standard = bytes.maketrans(b"-_", b"+/")

    def decode(segment: bytes, name: str) -> bytes:
        stripped = segment.rstrip(b"=")
        if stripped.translate(None, alphabet) or len(segment) - len(stripped) > 2 or len(stripped) % 4 == 1:
            raise jws.DecodeError(f"Invalid {name} padding")
        return binascii.a2b_base64(stripped.translate(to_standard) + b"=" * (-len(stripped) % 4))

    jws.PyJWS._decode_base64url_segment = staticmethod(decode)


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / (1024 * 1024)


def build() -> tuple[App, AppResource]:
    app = App(trusted_proxies=["10.0.0.0/8"])
    app.enable_rate_limit(RateLimitConfig(10**9, 60))  # counts every key, never refuses
    app.enable_jwt(JwtConfig(secret=SECRET))
    app.enable_sessions(SessionConfig(SECRET, store=MemorySessionStore()))

    @app.get("/x")
    def x(request: object) -> dict:
        return {"ok": True}

    @app.post("/login")
    def login(request: object) -> dict:
        request.session.regenerate()  # type: ignore[attr-defined]  # then finds the password wrong
        return {"ok": False}

    return app, AppResource(app)


PEER = IPv4Address("TCP", "10.0.0.1", 40000)  # a trusted proxy (10.0.0.0/8): X-Forwarded-For counts


def request(path: str, method: bytes = b"GET", headers: tuple[tuple[bytes, bytes], ...] = ()) -> DummyRequest:
    bare = path.split("?")[0]
    raw = DummyRequest([p.encode() for p in bare.strip("/").split("/")])
    raw.method = method
    raw.uri = path.encode()
    raw.path = bare.encode()
    raw.client = PEER
    for name, value in headers:
        raw.requestHeaders.addRawHeader(name, value)
    raw.content = io.BytesIO()
    return raw


def kinds(app: App, n: int) -> dict[str, Callable[[], Iterator[DummyRequest]]]:
    key = SECRET.encode()
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    pad = "p" * 7400  # len('{"pad":"' + pad + '",') is a multiple of 3
    exp = int(app.clock.seconds()) + 3600

    def tokens() -> Iterator[DummyRequest]:
        # The payload starts with the fixed pad, a multiple of 3 bytes long, so its base64url is a
        # fixed prefix and the HMAC state over "header.prefix" can be copied instead of recomputed;
        # each token still differs (sub, jti) and carries a valid ~10 KB signature.
        prefix = b64(f'{{"pad":"{pad}",'.encode())
        signed_prefix = header + b"." + prefix
        mac = hmac.new(key, signed_prefix, hashlib.sha256)
        for i in range(n):
            rest = b64(f'"sub":"{i}","exp":{exp},"jti":"j{i}"}}'.encode())
            signature = mac.copy()
            signature.update(rest)
            token = b"".join((b"Bearer ", signed_prefix, rest, b".", b64(signature.digest())))
            yield request("/x", headers=((b"authorization", token),))

    def cookies() -> Iterator[DummyRequest]:
        for i in range(n):
            forged = base64.urlsafe_b64encode(b"\x01" + i.to_bytes(12, "big") + os.urandom(60)).rstrip(b"=")
            yield request("/x", headers=((b"cookie", b"session_id=" + forged),))

    def logins() -> Iterator[DummyRequest]:
        for _ in range(n):
            yield request("/login", b"POST")

    def addresses() -> Iterator[DummyRequest]:
        for i in range(n):
            ip = f"{(i >> 16) % 200 + 11}.{(i >> 8) & 255}.{i & 255}.7".encode()
            yield request("/x", headers=((b"x-forwarded-for", b"1.2.3.4, " + ip),))

    def paths() -> Iterator[DummyRequest]:
        for i in range(n):
            yield request(f"/missing/{i}?q={i}&r={i * 7}")

    return {"tokens": tokens, "cookies": cookies, "logins": logins, "addresses": addresses, "paths": paths}


def main(n: int, only: list[str]) -> None:
    _fast_alphabet_check()
    app, resource = build()
    statuses: dict[str, set[int]] = {}
    growth: dict[str, float] = {}
    for name, make in kinds(app, n).items():
        if only and name not in only:
            continue
        for raw in kinds(app, 200)[name]():  # warm-up: imports, first allocations
            resource.render(raw)
        gc.collect()
        gc.freeze()  # what exists now is never collected: later collections scan only new objects
        before = rss_mb()
        seen = statuses.setdefault(name, set())
        for raw in make():
            resource.render(raw)
            seen.add(raw.responseCode or 200)
        gc.collect()
        growth[name] = round(rss_mb() - before, 1)
    store = app.middleware[-1].store
    print(json.dumps({"growth_mb": growth, "statuses": {k: sorted(v) for k, v in statuses.items()},
                      "sessions_stored": len(store)}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].split(",") if len(sys.argv) > 2 else [])
