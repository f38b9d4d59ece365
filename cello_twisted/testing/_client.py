"""In-memory test client: real HTTP bytes through the app's Site, no sockets (SPEC §2.23)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
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
from ._sse import StreamingTestResponse, open_stream
from ._websocket import TestWebSocket, WebSocketRejected
from ._websocket import connect as connect_websocket
from ..errors import ResponseNotReady

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

    def __init__(self, app: Any, client_ip: str) -> None:
        super().__init__(app.resource())
        self._serverFactory = app.site(reactor=self._memoryReactor)
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
        server_protocol = self._serverFactory.buildProtocol(client_address)
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


class TestResponse:
    """A finished response: status, headers, body and the cookies it set."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for header in self.headers.get_all("set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed:
                out[parsed[0]] = parsed[1].value
        return out

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code} {len(self.content)} bytes>"


def _parse_set_cookie(header: str) -> tuple[str, Any] | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    for name, morsel in jar.items():
        return name, morsel
    return None


class CookieJar:
    """Cookies set by responses: honours Path, Max-Age=0 and past Expires; ignores Secure/Domain."""

    def __init__(self, clock: Any = None) -> None:
        self._cookies: dict[str, tuple[str, str]] = {}  # name -> (value, path)

    def update_from(self, headers: Headers) -> None:
        import time
        from email.utils import parsedate_to_datetime

        for header in headers.get_all("set-cookie"):
            parsed = _parse_set_cookie(header)
            if parsed is None:
                continue
            name, morsel = parsed
            expired = morsel["max-age"] not in ("", None) and int(morsel["max-age"]) <= 0
            if not expired and morsel["expires"]:
                try:
                    expired = parsedate_to_datetime(morsel["expires"]).timestamp() <= time.time()
                except (TypeError, ValueError):
                    pass
            if expired:
                self._cookies.pop(name, None)
            else:
                self._cookies[name] = (morsel.value, morsel["path"] or "/")

    def for_path(self, path: str) -> dict[str, str]:
        out = {}
        for name, (value, cookie_path) in self._cookies.items():
            prefix = cookie_path.rstrip("/")
            if path == cookie_path or path.startswith(prefix + "/") or cookie_path == "/":
                out[name] = value
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        entry = self._cookies.get(name)
        return entry[0] if entry else default

    def set(self, name: str, value: str, path: str = "/") -> None:
        self._cookies[name] = (value, path)

    def clear(self) -> None:
        self._cookies.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._cookies

    def __getitem__(self, name: str) -> str:
        return self._cookies[name][0]

    def __len__(self) -> int:
        return len(self._cookies)

    def keys(self) -> list[str]:
        return list(self._cookies)


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
        app: Any,
        base_url: str = "http://localhost",
        client_ip: str = "127.0.0.1",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        app._inline_blocking = True
        self.base_url = base_url.rstrip("/")
        self.client_ip = client_ip
        self.default_headers = dict(headers or {})
        self.cookies = CookieJar()
        self._agent = _AppAgent(app, client_ip)
        self._http = HTTPClient(agent=self._agent, data_to_body_producer=_SynchronousProducer)

    # -- helpers -------------------------------------------------------------

    def flush(self) -> None:
        """Move pending bytes between client and server (after advancing ``app.clock``)."""
        self._agent.flush()

    def _wait(self, d: Any, what: str) -> Any:
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(_MAX_FLUSHES):
            if results:
                break
            before = sum(len(p.clientIO.stream) + len(p.serverIO.stream) for p in self._agent._pumps)
            self._agent.flush()
            if results:
                break
            after = sum(len(p.clientIO.stream) + len(p.serverIO.stream) for p in self._agent._pumps)
            if before == after == 0 and not results:
                break
        if not results:
            d.cancel() if hasattr(d, "cancel") else None
            raise ResponseNotReady(f"{what} is still pending; advance app.clock and retry")
        result = results[0]
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    def _build(
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
        method_b, url, headers, body = self._build(method, path, **kwargs)
        d = self._agent.request(method_b, url, headers, _SynchronousProducer(body) if body is not None else None)
        response = self._wait(d, f"{method} {path}")
        content = self._wait(_read_body(response), f"body of {method} {path}")
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
