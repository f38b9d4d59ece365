"""In-memory test client: real HTTP bytes through the app's Site, no sockets (SPEC §2.23)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent, _SynchronousProducer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import ISSLTransport
from twisted.test import iosim
from twisted.web.http_headers import Headers as TwistedHeaders
from zope.interface import directlyProvides

from .. import _json
from .._headers import Headers
from ..errors import ResponseNotReady
from ._response import CookieJar, TestResponse
from ._sse import StreamingTestResponse, open_stream
from ._threads import InlineThreads
from ._websocket import TestWebSocket, WebSocketRejected
from ._websocket import connect as connect_websocket

if TYPE_CHECKING:
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from ..server._lifecycle import Lifecycle
    from ..server._threads import Threads


class TestedApp(Protocol):
    """What the client uses of an App (declared here: app.py sits above testing/)."""

    threads: Threads
    lifecycle: Lifecycle

    def resource(self) -> Resource: ...

    def site(self, **site_kwargs: Any) -> Site: ...

__all__ = [
    "TestClient",
    "TestResponse",
    "ResponseNotReady",
    "StreamingTestResponse",
    "TestWebSocket",
    "WebSocketRejected",
]

_MAX_FLUSHES = 1000


class _AppAgent(RequestTraversalAgent):
    """treq's in-memory agent, serving ``app.site()`` and giving the peer ``client_ip``."""

    def __init__(self, app: TestedApp, client_ip: str) -> None:
        super().__init__(app.resource())  # type: ignore[no-untyped-call]  # typing note: treq is unannotated
        # treq's agent keeps these privately; the stream and WebSocket helpers use them.
        self._serverFactory = self.server_factory = app.site(reactor=self._memoryReactor)
        self.clock = self._memoryReactor  # drives timers of the in-memory connections
        self.pumps: set[Any] = self._pumps  # the in-memory connections, flushed by the client
        self._client_ip = client_ip

    def request(self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None) -> Any:
        response = self._realAgent.request(method, uri, headers, bodyProducer)
        if response.called:
            return response
        scheme = urlsplit(uri).scheme
        _host, port, factory, _timeout, _bind = self._memoryReactor.tcpClients[-1]
        address_type = IPv6Address if ":" in self._client_ip else IPv4Address
        server_address = address_type("TCP", "::1" if address_type is IPv6Address else "127.0.0.1", port)
        client_address = address_type("TCP", self._client_ip, 31337)
        server_protocol = self.server_factory.buildProtocol(client_address)
        server_transport = iosim.FakeTransport(
            server_protocol, isServer=True, hostAddress=server_address, peerAddress=client_address
        )
        client_protocol = factory.buildProtocol(None)
        client_transport = iosim.FakeTransport(
            client_protocol, isServer=False, hostAddress=client_address, peerAddress=server_address
        )
        if scheme == b"https":
            directlyProvides(server_transport, ISSLTransport)
            directlyProvides(client_transport, ISSLTransport)
        pump = iosim.connect(server_protocol, server_transport, client_protocol, client_transport)
        self._pumps.add(pump)
        return response


def encode_multipart(data: Mapping[str, Any] | None, files: Mapping[str, Any]) -> tuple[bytes, str]:
    """Build a multipart/form-data body (the client side; the server parses with ``multipart``)."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in (data or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                + (item if isinstance(item, bytes) else str(item).encode())
                + b"\r\n"
            )
    for name, spec in files.items():
        specs = spec if isinstance(spec, list) else [spec]
        for one in specs:
            filename, content, content_type = (tuple(one) + (None, None))[:3]
            if isinstance(content, str):
                content = content.encode()
            elif hasattr(content, "read"):
                content = content.read()
            header = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            header += f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
            parts.append(header.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class TestClient:
    """Synchronous requests against ``app`` through its real Site and middleware chain."""

    __test__ = False

    def __init__(
        self,
        app: TestedApp,
        base_url: str = "http://localhost",
        client_ip: str = "127.0.0.1",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        # Blocking calls run inline and WebSocket threads queue their calls for the test's pump.
        current = app.threads
        self.threads = current if isinstance(current, InlineThreads) else InlineThreads()
        app.threads = self.threads
        self.base_url = base_url.rstrip("/")
        self.client_ip = client_ip
        self.default_headers = dict(headers or {})
        self.cookies = CookieJar()
        self.agent = _AppAgent(app, client_ip)
        self._http = HTTPClient(agent=self.agent, data_to_body_producer=_SynchronousProducer)

    # -- lifecycle (SPEC_OPERATIONS §8 r4) --------------------------------------

    def __enter__(self) -> TestClient:
        """Run the startup hooks and enter the lifespan, as a server would before serving."""
        self.wait(self.app.lifecycle.begin(self.app), "app startup")
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Exit the lifespan and run the shutdown hooks."""
        self.wait(self.app.lifecycle.end(), "app shutdown")

    # -- helpers -------------------------------------------------------------

    def flush(self) -> None:
        """Move pending bytes between client and server (after advancing ``app.clock``)."""
        self.agent.flush()  # type: ignore[no-untyped-call]  # typing note: treq is unannotated

    def wait(self, d: Any, what: str) -> Any:
        """Pump the in-memory connections until ``d`` fires (bounded); its result, or ResponseNotReady."""
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(_MAX_FLUSHES):
            if results:
                break
            before = sum(len(p.clientIO.stream) + len(p.serverIO.stream) for p in self.agent.pumps)
            self.agent.flush()  # type: ignore[no-untyped-call]  # typing note: treq is unannotated
            if results:
                break
            after = sum(len(p.clientIO.stream) + len(p.serverIO.stream) for p in self.agent.pumps)
            if before == after == 0 and not results:
                break
        if not results:
            d.cancel() if hasattr(d, "cancel") else None
            raise ResponseNotReady(f"{what} is still pending; advance app.clock and retry")
        result = results[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def build_request(
        self,
        method: str,
        path: str,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        cookies: Mapping[str, str] | None = None,
    ) -> tuple[bytes, bytes, TwistedHeaders, bytes | None]:
        """Method, URL, headers (defaults, cookies, content type) and body this client would send."""
        url = path if "://" in path else self.base_url + path
        if params:
            query = urlencode(params, doseq=True)
            url += ("&" if "?" in url else "?") + query
        hdrs = {**self.default_headers, **(headers or {})}
        lower = {k.lower() for k in hdrs}
        body: bytes | None = None
        if files:
            body, ctype = encode_multipart(data if isinstance(data, Mapping) else None, files)
            hdrs.setdefault("Content-Type", ctype)
        elif json is not None:
            body = _json.dumpb(json)
            if "content-type" not in lower:
                hdrs["Content-Type"] = "application/json"
        elif isinstance(data, Mapping):
            body = urlencode(data, doseq=True).encode()
            if "content-type" not in lower:
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode("utf-8")
        elif data is not None:
            body = bytes(data)
        jar = self.cookies.for_path(urlsplit(url).path or "/")
        jar.update(cookies or {})
        if jar:
            cookie_header = "; ".join(f"{k}={v}" for k, v in jar.items())
            hdrs["Cookie"] = "; ".join(filter(None, [hdrs.get("Cookie"), cookie_header]))
        raw = TwistedHeaders()
        for name, value in hdrs.items():
            raw.addRawHeader(name.encode("latin-1"), str(value).encode("latin-1"))
        return method.upper().encode("ascii"), url.encode("utf-8"), raw, body

    # -- requests ------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        method_b, url, raw_headers, body = self.build_request(method, path, **kwargs)
        producer = _SynchronousProducer(body) if body is not None else None  # type: ignore[no-untyped-call]  # typing note: treq is unannotated
        d = self.agent.request(method_b, url, raw_headers, producer)
        response = self.wait(d, f"{method} {path}")
        content = self.wait(_read_body(response), f"body of {method} {path}")
        headers = _headers_of(response)
        if content and "content-length" not in headers and "transfer-encoding" not in headers:
            # Twisted's client consumes Content-Length to frame the body; the body it
            # framed is exactly that long, so the header is restored for assertions.
            headers.set("Content-Length", str(len(content)))
        result = TestResponse(response.code, headers, content)
        self.cookies.update_from(result.headers)
        return result

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    # -- streams and WebSockets (SPEC §2.23 r6-7) -------------------------------

    def stream(self, method: str, path: str, **kwargs: Any) -> StreamingTestResponse:
        """Return as soon as the headers arrive; read the body as it comes."""
        return open_stream(self, method, path, **kwargs)

    def websocket_connect(
        self, path: str, headers: Mapping[str, str] | None = None, subprotocols: Any = None
    ) -> TestWebSocket:
        """Open a WebSocket in memory; raises WebSocketRejected on a plain HTTP answer."""
        return connect_websocket(self, path, headers, subprotocols)


def _headers_of(response: Any) -> Headers:
    headers = Headers()
    for name, values in response.headers.getAllRawHeaders():
        for value in values:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def _read_body(response: Any) -> Any:
    import treq

    return treq.content(response)
