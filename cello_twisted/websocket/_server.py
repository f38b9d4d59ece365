"""The WebSocket route: handshake checks, the hand-over to autobahn, and the handler's life."""

from __future__ import annotations

import base64
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from weakref import WeakSet

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from twisted.internet.defer import Deferred
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._signals import stream_changed
from ..errors import HTTPError, WebSocketClosed
from ..guards import run_guards
from ..response import Response
from ..wire._stream import ResponseHead, Streamer
from ._socket import WebSocket, WebSocketMessage

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime
    from twisted.web.server import Request as TwistedRequest

    from .._types import Link
    from ..guards import GuardLike
    from ..request import AppView, Request

__all__ = ["websocket_endpoint", "close_all", "live_connections"]

_log = Logger(namespace="cello_twisted.websocket")
live_connections: WeakSet[CelloServerProtocol] = WeakSet()

AUTO_PING_INTERVAL = 20.0
AUTO_PING_TIMEOUT = 20.0
# Headers middleware may add that must not be copied into the 101 response.
_NOT_FOR_101 = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "upgrade",
        "vary",
    }
)


class WebSocketRoute(Protocol):
    """What the endpoint needs of its compiled route: the handler and the websocket options."""

    handler: Callable[..., Any]

    @property
    def spec(self) -> Any: ...


class _ClockTimer:
    """autobahn's timer interface on ``app.clock``, so a ``task.Clock`` drives pings and timeouts."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.clock.callLater(delay, fn, *args, **kwargs)


def _accept_deflate(offers: list[Any]) -> Any:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
    return None


class CelloServerProtocol(WebSocketServerProtocol):
    """autobahn's protocol feeding one cello WebSocket and running its handler."""

    cello_ctx: Any = None
    cello_ws: WebSocket | None = None
    cello_app: Any = None
    cello_upgraded: Any = None  # the Twisted request this connection was upgraded from

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        upgraded, self.cello_upgraded = self.cello_upgraded, None
        if upgraded is not None:
            # The HTTP request ends with its WebSocket (load shedding counts it until now).
            upgraded.connectionLost(reason)

    def onConnect(self, request: Any) -> Any:
        ctx = self.cello_ctx
        chosen = None
        for offered in request.protocols:
            if offered in ctx.subprotocols:
                chosen = offered
                break
        ctx.subprotocol = chosen
        return chosen, ctx.extra_headers

    def onOpen(self) -> None:
        ctx, self.cello_ctx = self.cello_ctx, None
        self.cello_app = ctx.app
        ws = WebSocket(self, ctx.request, ctx.subprotocol, ctx.call_in_loop)
        self.cello_ws = ws
        live_connections.add(self)
        stream_changed("websocket", 1)
        ctx.runner(ws, self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        ws = self.cello_ws
        if ws is not None:
            ws.deliver(
                WebSocketMessage("binary", payload)
                if isBinary
                else WebSocketMessage("text", payload.decode("utf-8"))
            )

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self in live_connections:
            live_connections.discard(self)
            stream_changed("websocket", -1)
        ws = self.cello_ws
        if ws is None:
            return
        if self.closedByMe and self.localCloseCode is not None:
            code, reason = (  # type: ignore[unreachable]  # typing note: autobahn declares localCloseCode as None
                self.localCloseCode,
                (self.localCloseReason or b"").decode("utf-8", "replace"),
            )
        elif self.remoteCloseCode is not None and wasClean:
            code, reason = self.remoteCloseCode, self.remoteCloseReason or ""
        else:
            code, reason = 1006, ""
        ws.peer_closed(code, reason or "")

    # -- called on the reactor thread for the WebSocket object --------------------------

    def cello_send(self, payload: bytes, binary: bool) -> None:
        if self.state != self.STATE_OPEN:
            return  # closed while a thread's send was in flight
        limit = self.maxMessagePayloadSize  # type: ignore[has-type]  # typing note: autobahn is unannotated
        self.maxMessagePayloadSize = 0  # the limit guards what we receive, not what we send
        try:
            self.sendMessage(payload, isBinary=binary)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
        finally:
            self.maxMessagePayloadSize = limit

    def cello_control(self, kind: str, payload: bytes) -> None:
        if self.state == self.STATE_OPEN:
            (self.sendPing if kind == "ping" else self.sendPong)(payload or None)

    def cello_close(self, code: int, reason: str = "") -> None:
        if self.state == self.STATE_OPEN:
            ws = self.cello_ws
            if ws is not None:
                ws.mark_closed(code, reason)
            self.sendCloseFrame(
                code, reason.encode("utf-8")[:123] if reason else None, isReply=False
            )


class CelloServerFactory(WebSocketServerFactory):
    """One per WebSocket route; the pending hand-over context is attached to each protocol."""

    protocol = CelloServerProtocol
    next_ctx: Any = None

    def buildProtocol(self, addr: Any) -> CelloServerProtocol:
        proto: CelloServerProtocol = super().buildProtocol(addr)  # type: ignore[assignment]  # typing note: builds ``protocol``
        proto.cello_ctx = self.next_ctx
        proto.cello_upgraded = getattr(getattr(self.next_ctx, "request", None), "raw", None)
        return proto


class _Handover:
    """Per-upgrade context handed from the cello chain to the autobahn protocol."""

    __slots__ = (
        "app",
        "request",
        "subprotocols",
        "subprotocol",
        "extra_headers",
        "runner",
        "call_in_loop",
    )

    def __init__(
        self,
        app: AppView,
        request: Request,
        subprotocols: list[str],
        runner: Callable[[WebSocket, CelloServerProtocol], None],
        call_in_loop: Callable[..., Any],
    ) -> None:
        self.app = app
        self.request = request
        self.subprotocols = subprotocols
        self.subprotocol: str | None = None
        self.extra_headers: dict[str, Any] = {}
        self.runner = runner
        self.call_in_loop = call_in_loop


class TakeoverStreamer(Streamer):
    """Tells the writer to skip the HTTP response and hand the connection to autobahn."""

    takeover = True
    buffered = False

    def __init__(
        self, resource: WebSocketResource, factory: CelloServerFactory, ctx: _Handover
    ) -> None:
        self.resource = resource
        self.factory = factory
        self.ctx = ctx

    def prepare(self, request: Request, response: ResponseHead) -> None:
        extra: dict[str, Any] = {}
        for key, values in response.headers.raw_items():
            if key.lower() in _NOT_FOR_101 or key.lower().startswith("sec-websocket-"):
                continue
            extra[key] = list(values) if len(values) > 1 else values[0]
        self.ctx.extra_headers = extra

    def start(self, twreq: TwistedRequest) -> Any:
        if twreq.content is not None:
            twreq.content.seek(0)  # autobahn replays the request, body included
        self.factory.next_ctx = self.ctx
        try:
            return self.resource.render(twreq)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
        finally:
            self.factory.next_ctx = None
            channel = twreq.channel
            if channel is not None and channel.transport is None:
                retire = getattr(channel, "retire", None)  # the HTTP connection's timers stop here
                if retire is not None:
                    retire()


def _takes_request(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _finish(ws: WebSocket, conn: CelloServerProtocol, failure: Failure | None) -> None:
    """Handler ended: close 1000 if open; 1011 (logged) for an error; WebSocketClosed is quiet."""
    if failure is not None and not failure.check(WebSocketClosed):
        _log.failure(
            "WebSocket handler for {path} failed",
            failure=failure,
            path=ws.request.path,
        )
        conn.cello_close(1011, "internal error")
    else:
        conn.cello_close(1000, "")


def _make_runner(handler: Callable[..., Any]) -> Callable[[WebSocket, CelloServerProtocol], None]:
    with_request = _takes_request(handler)
    if inspect.iscoroutinefunction(handler):

        def run_async(ws: WebSocket, conn: CelloServerProtocol) -> None:
            args = (ws, ws.request) if with_request else (ws,)

            def done(result: Any) -> None:
                _finish(ws, conn, result if isinstance(result, Failure) else None)

            try:
                d = Deferred.fromCoroutine(handler(*args))
            except Exception:  # noqa: BLE001 - reported like any handler failure
                done(Failure())
                return
            d.addBoth(done)

        return run_async

    def run_sync(ws: WebSocket, conn: CelloServerProtocol) -> None:
        args = (ws, ws.request) if with_request else (ws,)

        def target() -> None:
            failure = None
            try:
                result = handler(*args)
                if inspect.iscoroutine(result):
                    result.close()
                    raise TypeError("a sync WebSocket handler returned a coroutine")
            except BaseException:  # noqa: BLE001 - reported on the reactor thread
                failure = Failure()
            ws.call_in_loop(_finish, ws, conn, failure)

        threading.Thread(
            target=target, name=f"cello-ws {ws.request.path}", daemon=True
        ).start()

    return run_sync


def _handshake_error(request: Request) -> HTTPError | None:
    """426/400 for a request that is not a valid RFC 6455 upgrade (SPEC §2.19 r2)."""
    headers = request.headers
    upgrade = [t.strip().lower() for t in (headers.get("upgrade") or "").split(",")]
    if (
        "websocket" not in upgrade
        or request.raw.clientproto != b"HTTP/1.1"
        or request.raw.channel.transport is None
    ):
        return HTTPError(
            426, "This endpoint requires a WebSocket upgrade", {"Upgrade": "websocket"}
        )
    if (headers.get("sec-websocket-version") or "").strip() != "13":
        return HTTPError(426, "Unsupported WebSocket version", {"Sec-WebSocket-Version": "13"})
    connection = [t.strip().lower() for t in (headers.get("connection") or "").split(",")]
    if "upgrade" not in connection:
        return HTTPError(400, "Connection header must include 'upgrade'")
    key = (headers.get("sec-websocket-key") or "").strip()
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        valid_key = False
    if not valid_key:
        return HTTPError(400, "Missing or malformed Sec-WebSocket-Key")
    if not headers.get("host"):
        return HTTPError(400, "Missing Host header")
    return None


def websocket_endpoint(route: WebSocketRoute, guards: Sequence[GuardLike], app: AppView) -> Link:
    """The innermost link of a WebSocket route: guards, handshake checks, then the takeover."""
    options = route.spec.options
    subprotocols = list(options.get("subprotocols") or ())
    max_size = int(options.get("max_message_size", 1048576) or 0)
    factory = CelloServerFactory(server=None)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
    factory.setProtocolOptions(  # type: ignore[no-untyped-call]
        maxMessagePayloadSize=max_size,
        perMessageCompressionAccept=_accept_deflate,
        autoPingInterval=AUTO_PING_INTERVAL,
        autoPingTimeout=AUTO_PING_TIMEOUT,
        failByDrop=False,
        webStatus=False,
        versions=[13],
    )
    factory._batched_timer = _ClockTimer(app.clock)
    resource = WebSocketResource(factory)  # type: ignore[no-untyped-call]  # typing note: autobahn is unannotated
    runner = _make_runner(route.handler)
    checks = tuple(guards)

    def upgrade(request: Request) -> Response:
        error = _handshake_error(request)
        if error is not None:
            raise error
        ctx = _Handover(app, request, subprotocols, runner, app.threads.call_in_loop)
        resp = Response(b"", 101)
        resp.streamer = TakeoverStreamer(resource, factory, ctx)
        return resp

    if not checks:
        return upgrade

    def endpoint(request: Request) -> Response | Deferred[Response]:
        pending = run_guards(checks, request)
        if pending is None:
            return upgrade(request)
        return pending.addCallback(lambda _: upgrade(request))

    return endpoint


def close_all(app: AppView | None = None, code: int = 1001, reason: str = "server shutting down") -> int:
    """Close every open WebSocket (of ``app`` if given), e.g. on graceful shutdown (1001)."""
    count = 0
    for conn in list(live_connections):
        if app is None or conn.cello_app is app:
            conn.cello_close(code, reason)
            count += 1
    return count
