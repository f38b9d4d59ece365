"""WebSocket handlers (SPEC §2.19): the WebSocket and WebSocketMessage API over autobahn."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

from .. import _json
from .._class_or_instance import ClassOrInstance
from ..errors import WebSocketClosed

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..request import Request

__all__ = ["WebSocket", "WebSocketMessage"]

MESSAGE_TYPES = ("text", "binary", "ping", "pong", "close")
_END = object()


class WebSocketMessage:
    """One message: ``msg_type`` and its payload (``text`` for text, ``data`` as bytes)."""

    __slots__ = ("msg_type", "_text", "data", "code", "reason")

    def __init__(
        self, msg_type: str, data: bytes | str = b"", code: int | None = None, reason: str = ""
    ) -> None:
        if msg_type not in MESSAGE_TYPES:
            raise ValueError(f"msg_type must be one of {MESSAGE_TYPES}, not {msg_type!r}")
        self.msg_type = msg_type
        if isinstance(data, str):
            self._text: str | None = data
            self.data = data.encode("utf-8")
        else:
            self.data = bytes(data)
            self._text = None
        if msg_type == "text" and self._text is None:
            self._text = self.data.decode("utf-8")
        self.code = code
        self.reason = reason

    @classmethod
    def _text_factory(cls, text: str) -> WebSocketMessage:
        return cls("text", text)

    text = ClassOrInstance(_text_factory, "_text")

    @classmethod
    def binary(cls, data: bytes) -> WebSocketMessage:
        return cls("binary", bytes(data))

    @classmethod
    def ping(cls, data: bytes = b"") -> WebSocketMessage:
        return cls("ping", bytes(data))

    @classmethod
    def pong(cls, data: bytes = b"") -> WebSocketMessage:
        return cls("pong", bytes(data))

    @classmethod
    def close(cls, code: int = 1000, reason: str = "") -> WebSocketMessage:
        return cls("close", b"", code, reason)

    def is_text(self) -> bool:
        return self.msg_type == "text"

    def is_binary(self) -> bool:
        return self.msg_type == "binary"

    def is_close(self) -> bool:
        return self.msg_type == "close"

    def is_ping(self) -> bool:
        return self.msg_type == "ping"

    def is_pong(self) -> bool:
        return self.msg_type == "pong"

    def json(self) -> Any:
        return _json.loads(self._text if self._text is not None else self.data)

    @property
    def payload(self) -> str | bytes:
        """``text`` for text messages, ``data`` otherwise."""
        text = self._text
        return text if self.msg_type == "text" and text is not None else self.data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WebSocketMessage):
            return NotImplemented
        return (self.msg_type, self.data, self.code) == (other.msg_type, other.data, other.code)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.msg_type == "close":
            return f"WebSocketMessage.close({self.code!r}, {self.reason!r})"
        return f"WebSocketMessage({self.msg_type!r}, {self.payload!r})"


class WebSocket:
    """What a WebSocket handler receives.

    ``send*`` may be called from any thread and return an already-completed
    awaitable. ``recv()`` blocks in a sync handler's thread and returns a
    Deferred on the reactor thread.
    """

    def __init__(
        self, conn: Any, request: Request, subprotocol: str | None, call_in_loop: Callable[..., Any]
    ) -> None:
        self._conn = conn
        self.request = request
        self.params: dict[str, str] = dict(request.params)
        self.subprotocol = subprotocol
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False
        self.call_in_loop = call_in_loop
        self._loop_thread = threading.get_ident()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._waiters: list[Deferred[Any]] = []
        self._ended = False
        self._clock: IReactorTime | None = request.app.clock

    @property
    def connected(self) -> bool:
        return not self._closed

    # -- sending -------------------------------------------------------------------

    def _in_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _dispatch(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        if self._closed:
            raise WebSocketClosed("the WebSocket is closed")
        if self._in_loop():
            fn(*args)
        else:
            self.call_in_loop(fn, *args)
        return succeed(None)

    def send_text(self, text: str) -> Deferred[Any]:
        if not isinstance(text, str):
            raise TypeError("send_text() takes a str")
        return self._dispatch(self._conn.cello_send, text.encode("utf-8"), False)

    def send_binary(self, data: bytes) -> Deferred[Any]:
        return self._dispatch(self._conn.cello_send, bytes(data), True)

    send_bytes = send_binary

    def send_json(self, obj: Any) -> Deferred[Any]:
        return self._dispatch(self._conn.cello_send, _json.dumpb(obj), False)

    def send(self, message: str | bytes | WebSocketMessage) -> Deferred[Any]:
        if isinstance(message, str):
            return self.send_text(message)
        if isinstance(message, (bytes, bytearray, memoryview)):
            return self.send_binary(bytes(message))
        if isinstance(message, WebSocketMessage):
            kind = message.msg_type
            if kind == "text":
                return self.send_text(message.text)
            if kind == "binary":
                return self.send_binary(message.data)
            if kind == "close":
                return self.close(message.code or 1000, message.reason)
            return self._dispatch(self._conn.cello_control, kind, message.data)
        raise TypeError(f"cannot send {type(message).__name__} over a WebSocket")

    def close(self, code: int = 1000, reason: str = "") -> Deferred[Any]:
        """Start the closing handshake; closing twice is harmless."""
        _check_close_code(code)
        if self._closed:
            return succeed(None)
        self._closed = True
        self.close_code = code
        self.close_reason = reason
        if self._in_loop():
            self._conn.cello_close(code, reason)
        else:
            self.call_in_loop(self._conn.cello_close, code, reason)
        return succeed(None)

    # -- receiving -------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Any:
        """The next text/binary message; one ``close`` message at the end, then None."""
        if self._in_loop():
            return self._recv_deferred(timeout)
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no WebSocket message within {timeout} s") from None
        if item is _END:
            self._inbox.put(_END)
            return None
        return item

    def _recv_deferred(self, timeout: float | None) -> Deferred[Any]:
        try:
            item = self._inbox.get_nowait()
        except queue.Empty:
            d: Deferred[Any] = Deferred(
                lambda d: self._waiters.remove(d) if d in self._waiters else None
            )
            self._waiters.append(d)
            if timeout is not None and self._clock is not None:
                d.addTimeout(timeout, self._clock, onTimeoutCancel=_recv_timed_out)
            return d
        if item is _END:
            self._inbox.put(_END)
            return succeed(None)
        return succeed(item)

    def receive(self) -> Any:
        """The next payload (``str`` or ``bytes``), None once closed; awaitable on the reactor."""
        result = self.recv()
        if isinstance(result, Deferred):
            return result.addCallback(_payload_of)
        return _payload_of(result)

    def __iter__(self) -> Iterator[WebSocketMessage]:
        while True:
            msg = self.recv()
            if isinstance(msg, Deferred):
                raise TypeError("use 'async for' on the reactor thread")
            if msg is None or msg.msg_type == "close":
                return
            yield msg

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> WebSocketMessage:
        msg = self.recv()
        if isinstance(msg, Deferred):
            msg = await msg
        if msg is None or msg.msg_type == "close":
            raise StopAsyncIteration
        message: WebSocketMessage = msg
        return message

    # -- fed by the protocol on the reactor thread --------------------------------------

    def deliver(self, msg: Any) -> None:
        """Called by the server protocol: a message (or the end marker) arrived."""
        if self._waiters:
            self._waiters.pop(0).callback(None if msg is _END else msg)
        else:
            self._inbox.put(msg)

    def mark_closed(self, code: int, reason: str) -> bool:
        """Called by the server protocol as it starts closing: record the code; False if already closed."""
        if self._closed:
            return False
        self._closed = True
        self.close_code, self.close_reason = code, reason
        return True

    def peer_closed(self, code: int, reason: str) -> None:
        """Called by the server protocol: the connection closed (code 1006 if not cleanly)."""
        if self._ended:
            return
        self._ended = True
        if not self._closed:
            self._closed = True
            self.close_code = code
            self.close_reason = reason
        self.deliver(WebSocketMessage("close", b"", code, reason))
        self.deliver(_END)
        while self._waiters:
            self._waiters.pop(0).callback(None)

    def __repr__(self) -> str:
        path = self.request.path
        return f"<WebSocket {path} {'open' if self.connected else f'closed {self.close_code}'}>"


def _check_close_code(code: int) -> None:
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError("close code must be an int")
    if not (
        code == 1000
        or 1001 <= code <= 1014
        and code not in (1004, 1005, 1006)
        or 3000 <= code <= 4999
    ):
        raise ValueError(f"invalid WebSocket close code {code}")


def _payload_of(msg: Any) -> Any:
    if msg is None or msg.msg_type == "close":
        return None
    return msg.payload


def _recv_timed_out(result: Any, timeout: float) -> Any:
    raise TimeoutError(f"no WebSocket message within {timeout} s")
