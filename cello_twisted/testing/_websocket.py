"""Test-client side of WebSocket: autobahn's client over an in-memory pump (SPEC §2.23 r7)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .. import _json
from .._headers import Headers
from ..errors import WebSocketClosed
from ..websocket._socket import WebSocketMessage
from ._response import TestResponse

if TYPE_CHECKING:
    from autobahn.twisted.websocket import WebSocketClientProtocol
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.http_headers import Headers as TwistedHeaders
    from twisted.web.server import Site

    from ._response import CookieJar
    from ._threads import InlineThreads


class _Agent(Protocol):
    @property
    def server_factory(self) -> Site: ...

    @property
    def clock(self) -> Any: ...


class ConnectingClient(Protocol):
    """What ``connect`` uses of the TestClient (declared here: the client imports this module)."""

    @property
    def agent(self) -> _Agent: ...

    threads: InlineThreads
    base_url: str
    client_ip: str
    cookies: CookieJar

    def build_request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, bytes, TwistedHeaders, bytes | None]: ...

__all__ = ["TestWebSocket", "WebSocketRejected", "connect"]

CONNECT_TIMEOUT = 5.0


class WebSocketRejected(Exception):
    """The server answered the upgrade with plain HTTP; ``response`` is a TestResponse."""

    def __init__(self, status_code: int, response: Any) -> None:
        super().__init__(f"WebSocket upgrade refused with HTTP {status_code}")
        self.status_code = status_code
        self.response = response


class _ClockTimer:
    """autobahn's timer interface on the in-memory clock."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.clock.callLater(delay, fn, *args, **kwargs)


def _client_protocol_class() -> type[WebSocketClientProtocol]:
    from autobahn.twisted.websocket import WebSocketClientProtocol

    class ClientProtocol(WebSocketClientProtocol):
        owner: TestWebSocket

        def processHandshake(self) -> None:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line, _, rest = self.data[:end].partition(b"\r\n")
            parts = status_line.split(None, 2)
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if code == 101:
                super().processHandshake()  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
                return
            headers = Headers()
            for line in rest.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name:
                    headers.add(name.decode("latin-1").strip(), value.decode("latin-1").strip())
            body = self.data[end + 4 :]
            length = headers.get("content-length")
            if length is not None and length.isdigit() and len(body) < int(length):
                return  # wait for the rest of the refusal's body
            self.owner._rejection = (code, headers, bytes(body))
            self.dropConnection(abort=True)

        def onOpen(self) -> None:
            self.owner._opened = True

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.owner._inbox.append(
                WebSocketMessage("binary", payload)
                if isBinary
                else WebSocketMessage("text", payload.decode("utf-8"))
            )

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            owner = self.owner
            owner._closed = True
            if self.remoteCloseCode is not None:
                owner.close_code, owner.close_reason = (
                    self.remoteCloseCode,
                    self.remoteCloseReason or "",
                )
            elif owner.close_code is None:
                owner.close_code, owner.close_reason = 1006, ""

    return ClientProtocol


class TestWebSocket:
    """A client connection; ``receive_*`` pump the in-memory link until a message arrives."""

    __test__ = False

    def __init__(self) -> None:
        self._inbox: list[WebSocketMessage] = []
        self._opened = False
        self._closed = False
        self._close_delivered = False
        self._rejection: tuple[int, Headers, bytes] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.subprotocol: str | None = None
        self.headers = Headers()
        self._proto: Any = None
        self._pump: Any = None
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()

    # -- the pump loop ---------------------------------------------------------------

    def _spin(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self._run_calls()
            self._pump.flush()
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                fn, args = self._calls.get(timeout=min(remaining, 0.02))
            except queue.Empty:
                continue
            fn(*args)

    def _run_calls(self) -> None:
        while True:
            try:
                fn, args = self._calls.get_nowait()
            except queue.Empty:
                return
            fn(*args)

    # -- sending ---------------------------------------------------------------------

    def _send(self, payload: bytes, binary: bool) -> None:
        if self._closed:
            raise WebSocketClosed("the WebSocket is closed")
        self._proto.sendMessage(payload, isBinary=binary)
        self._spin(lambda: True, 0)

    def send_text(self, text: str) -> None:
        self._send(text.encode("utf-8"), False)

    def send_bytes(self, data: bytes) -> None:
        self._send(bytes(data), True)

    send_binary = send_bytes

    def send_json(self, obj: Any) -> None:
        self._send(_json.dumpb(obj), False)

    def send_raw(self, data: bytes) -> None:
        """Write raw bytes on the connection (for malformed-frame tests)."""
        self._proto.transport.write(data)
        self._spin(lambda: True, 0)

    # -- receiving -------------------------------------------------------------------

    def receive(self, timeout: float = 5.0) -> WebSocketMessage:
        """The next message; a ``close`` message (with the server's code) once closed."""
        if not self._spin(lambda: bool(self._inbox) or self._closed, timeout):
            raise TimeoutError(f"no WebSocket message within {timeout} s")
        if self._inbox:
            return self._inbox.pop(0)
        self._close_delivered = True
        return WebSocketMessage.close(self.close_code or 1006, self.close_reason)

    def _receive_data(self, timeout: float) -> WebSocketMessage:
        msg = self.receive(timeout)
        if msg.is_close():
            raise WebSocketClosed(f"the WebSocket closed with code {msg.code}")
        return msg

    def receive_text(self, timeout: float = 5.0) -> str:
        msg = self._receive_data(timeout)
        if not msg.is_text():
            raise TypeError(f"expected a text message, got {msg.msg_type}")
        text: str = msg.text
        return text

    def receive_bytes(self, timeout: float = 5.0) -> bytes:
        msg = self._receive_data(timeout)
        if not msg.is_binary():
            raise TypeError(f"expected a binary message, got {msg.msg_type}")
        return msg.data

    def receive_json(self, timeout: float = 5.0) -> Any:
        return self._receive_data(timeout).json()

    @property
    def closed(self) -> bool:
        self._spin(lambda: True, 0)
        return self._closed

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Pump until the server closed the connection; returns the close code."""
        if not self._spin(lambda: self._closed, timeout):
            raise TimeoutError(f"the WebSocket is still open after {timeout} s")
        return self.close_code

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Closing handshake from the client side; waits (bounded) for it to complete."""
        if self._closed:
            return
        self._proto.sendClose(code, reason)
        self._spin(lambda: self._closed, CONNECT_TIMEOUT)

    def drop(self) -> None:
        """Vanish without a close frame (the server sees an abnormal close, 1006)."""
        self._pump.clientIO.loseConnection()
        self._spin(lambda: self._closed, CONNECT_TIMEOUT)

    def __enter__(self) -> TestWebSocket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TestWebSocket {'closed ' + str(self.close_code) if self._closed else 'open'}>"


def connect(
    client: ConnectingClient, path: str, headers: Mapping[str, str] | None = None, subprotocols: Any = None
) -> TestWebSocket:
    """Open a WebSocket to ``client.app`` in memory; raises WebSocketRejected on a plain HTTP answer."""
    from autobahn.twisted.websocket import WebSocketClientFactory
    from autobahn.websocket.compress import (
        PerMessageDeflateOffer,
        PerMessageDeflateResponse,
        PerMessageDeflateResponseAccept,
    )
    from twisted.internet.address import IPv4Address, IPv6Address
    from twisted.test import iosim

    agent = client.agent
    ws = TestWebSocket()
    ws._calls = client.threads.calls
    base = urlsplit(client.base_url)
    scheme = "wss" if base.scheme == "https" else "ws"
    url = f"{scheme}://{base.netloc}{path}"
    _method, _url, raw_headers, _body = client.build_request("GET", path, headers=headers)
    extra = {}
    for name, values in raw_headers.getAllRawHeaders():
        extra[name.decode("latin-1")] = b", ".join(values).decode("latin-1")
    factory = WebSocketClientFactory(url, protocols=list(subprotocols or ()), headers=extra or None)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated

    def accept(response: Any) -> Any:
        if isinstance(response, PerMessageDeflateResponse):
            return PerMessageDeflateResponseAccept(response)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
        return None

    factory.setProtocolOptions(  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
        openHandshakeTimeout=0,
        closeHandshakeTimeout=0,
        serverConnectionDropTimeout=0,
        perMessageCompressionOffers=[PerMessageDeflateOffer()],  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
        perMessageCompressionAccept=accept,
    )
    factory._batched_timer = _ClockTimer(agent.clock)
    factory.protocol = _client_protocol_class()
    proto: Any = factory.buildProtocol(None)
    proto.owner = ws
    ws._proto = proto
    address_type = IPv6Address if ":" in client.client_ip else IPv4Address
    server_address = address_type("TCP", "::1" if address_type is IPv6Address else "127.0.0.1", 80)
    client_address = address_type("TCP", client.client_ip, 31337)
    server_protocol = agent.server_factory.buildProtocol(client_address)
    server_transport = iosim.FakeTransport(
        server_protocol, isServer=True, hostAddress=server_address, peerAddress=client_address
    )
    client_transport = iosim.FakeTransport(
        proto, isServer=False, hostAddress=client_address, peerAddress=server_address
    )
    if scheme == "wss":
        from twisted.internet.interfaces import ISSLTransport
        from zope.interface import directlyProvides

        directlyProvides(server_transport, ISSLTransport)
        directlyProvides(client_transport, ISSLTransport)
    ws._pump = iosim.connect(
        server_protocol,
        server_transport,
        proto,
        client_transport,
        greet=False,
        clock=agent.clock,
    )
    if not ws._spin(lambda: ws._opened or ws._rejection is not None or ws._closed, CONNECT_TIMEOUT):
        raise TimeoutError(f"WebSocket upgrade of {path} still pending after {CONNECT_TIMEOUT} s")
    if ws._rejection is not None or not ws._opened:
        code, resp_headers, body = ws._rejection or (0, Headers(), b"")
        ws._spin(lambda: True, 0)
        response = TestResponse(code, resp_headers, body)
        client.cookies.update_from(resp_headers)
        raise WebSocketRejected(code, response)
    ws.subprotocol = proto.websocket_protocol_in_use
    for name, value in (proto.http_headers or {}).items():
        ws.headers.add(name, value)
    client.cookies.update_from(ws.headers)
    return ws
