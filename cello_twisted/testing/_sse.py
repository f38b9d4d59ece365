"""Test-client side of SSE: a streamed response read incrementally in memory (SPEC §2.23 r6)."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Protocol

from .._headers import Headers
from ..sse._events import SseEvent

__all__ = ["StreamingTestResponse", "parse_events", "open_stream"]


def parse_events(text: str) -> tuple[list[SseEvent], str]:
    """Complete events in ``text`` (comments skipped) and the unparsed remainder."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events: list[SseEvent] = []
    *blocks, rest = text.split("\n\n")
    for block in blocks:
        data: list[str] = []
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name in ("event", "id"):
                fields[name] = value
            elif name == "retry" and value.isdigit():
                fields["retry"] = int(value)
        if data or fields:
            events.append(
                SseEvent(
                    "\n".join(data), fields.get("event"), fields.get("id"), fields.get("retry")
                )
            )
    return events, rest


class _Collector(Protocol):
    def __init__(self, owner: StreamingTestResponse) -> None:
        self.owner = owner

    def dataReceived(self, data: bytes) -> None:
        self.owner._received.extend(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.owner._ended = True


class StreamingTestResponse:
    """A response whose body is read as it arrives; ``close()`` simulates a client disconnect."""

    __test__ = False

    def __init__(self, client: Any, response: Any, pump: Any) -> None:
        self._client = client
        self._pump = pump
        self.status_code: int = response.code
        self.headers = Headers()
        for name, values in response.headers.getAllRawHeaders():
            for value in values:
                self.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        self._received = bytearray()
        self._read_pos = 0
        self._event_pos = 0
        self._pending_text = ""
        self._ended = False
        self._disconnected = False
        response.deliverBody(_Collector(self))

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def closed(self) -> bool:
        """True once the server ended the body or the client disconnected."""
        self._client.flush()
        return self._ended or self._disconnected

    def read(self) -> bytes:
        """Body bytes that arrived since the last ``read()`` (flushes first)."""
        self._client.flush()
        out = bytes(self._received[self._read_pos :])
        self._read_pos = len(self._received)
        return out

    def read_events(self) -> list[SseEvent]:
        """Complete events that arrived since the last ``read_events()`` (flushes first)."""
        self._client.flush()
        chunk = bytes(self._received[self._event_pos :])
        self._event_pos = len(self._received)
        self._pending_text += chunk.decode("utf-8")
        events, self._pending_text = parse_events(self._pending_text)
        return events

    def close(self) -> None:
        """Drop the connection as a vanishing client would; the server sees connection loss."""
        if self._disconnected:
            return
        self._disconnected = True
        pump = self._pump
        if pump is not None:
            pump.clientIO.loseConnection()
            pump.flush()
        self._client.flush()

    def __enter__(self) -> StreamingTestResponse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StreamingTestResponse {self.status_code} {'closed' if self._ended else 'open'}>"


def open_stream(client: Any, method: str, path: str, **kwargs: Any) -> StreamingTestResponse:
    """Send a request and return as soon as the response headers arrived."""
    from treq.testing import _SynchronousProducer

    agent = client.agent
    before = set(agent.pumps)
    method_b, url, headers, body = client.build_request(method, path, **kwargs)
    d = agent.request(
        method_b, url, headers, _SynchronousProducer(body) if body is not None else None  # type: ignore[no-untyped-call]  # typing note: treq is unannotated
    )
    new = [p for p in agent.pumps if p not in before]
    pump = new[0] if new else None
    response = client.wait(d, f"{method} {path}")
    result = StreamingTestResponse(client, response, pump)
    client.cookies.update_from(result.headers)
    return result
