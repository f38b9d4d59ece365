"""Real-socket fixtures: an app on 127.0.0.1, autobahn and raw TCP clients, bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from .realtime import upgrade_request


@inlineCallbacks
def wait_until(condition: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> Any:
    """Poll ``condition`` on the reactor until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        yield deferLater(reactor, 0.005, lambda: None)


class LiveServer:
    """``app.site()`` on an ephemeral loopback port; holds no references to connections."""

    def __init__(self, case: Any, app: Any) -> None:
        self.port = reactor.listenTCP(0, app.site(), interface="127.0.0.1")
        self.number = self.port.getHost().port
        case.addCleanup(self.stop)

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.number}{path}"

    @inlineCallbacks
    def stop(self) -> Any:
        yield self.port.stopListening()
        # Take-overs swap the protocol; find live sockets through the reactor instead.
        for selectable in list(reactor.getReaders()) + list(reactor.getWriters()):
            host = getattr(selectable, "getHost", None)
            if host is not None and getattr(host(), "port", None) == self.number:
                selectable.abortConnection()
        yield wait_until(lambda: not self._live(), 2.0, "server connections closed")

    def _live(self) -> bool:
        for selectable in list(reactor.getReaders()) + list(reactor.getWriters()):
            host = getattr(selectable, "getHost", None)
            if host is not None and getattr(host(), "port", None) == self.number:
                return True
        return False


class WsClient(WebSocketClientProtocol):
    """autobahn's Twisted client collecting messages and the close code."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: Deferred = Deferred()
        self.closed: Deferred = Deferred()
        self.messages: DeferredQueue = DeferredQueue()

    def onOpen(self) -> None:
        self.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messages.put(payload if isBinary else payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback(self.remoteCloseCode if self.remoteCloseCode is not None else code)


def _accept(response: Any) -> Any:
    if isinstance(response, PerMessageDeflateResponse):
        return PerMessageDeflateResponseAccept(response)
    return None


@inlineCallbacks
def ws_connect(
    server: LiveServer, path: str, headers: dict | None = None, deflate: bool = True
) -> Any:
    """Open an autobahn client connection; fires with the opened protocol (bounded)."""
    factory = WebSocketClientFactory(server.url(path, "ws"), headers=headers)
    factory.protocol = WsClient
    if deflate:
        factory.setProtocolOptions(
            perMessageCompressionOffers=[PerMessageDeflateOffer()],
            perMessageCompressionAccept=_accept,
        )
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.number, timeout=5)
    proto = yield endpoint.connect(factory)
    yield proto.opened.addTimeout(2, reactor)
    return proto


class RawClient(Protocol):
    """A TCP client that records every byte; for raw requests and abrupt disconnects."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lost: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data.extend(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)


@inlineCallbacks
def raw_connect(server: LiveServer, request: bytes) -> Any:
    proto = RawClient()
    yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.number, timeout=5), proto)
    proto.transport.write(request)
    return proto


def raw_upgrade(path: str = "/ws", **overrides: Any) -> bytes:
    return upgrade_request(path, **overrides)
