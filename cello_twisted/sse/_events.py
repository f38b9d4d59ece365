"""Server-Sent Events values: SseEvent and SseStream (SPEC §2.18); the streamer writes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import _json
from .._class_or_instance import ClassOrInstance

__all__ = ["SseEvent", "SseStream"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _check_field(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"SSE {name} must not contain a newline")
    return text


class SseEvent:
    """One event: ``id:``, ``event:``, ``retry:`` lines, one ``data:`` line per data line."""

    __slots__ = ("_data", "event", "id", "retry")

    def __init__(
        self, data: Any = "", event: str | None = None, id: Any = None, retry: int | None = None
    ) -> None:
        if retry is not None and (
            isinstance(retry, bool) or not isinstance(retry, int) or retry < 0
        ):
            raise ValueError("SSE retry must be a non-negative int (milliseconds)")
        self._data = data
        self.event = _check_field("event", event)
        self.id = _check_field("id", id)
        self.retry = retry

    @classmethod
    def _data_factory(cls, text: Any) -> SseEvent:
        return cls(text)

    data = ClassOrInstance(_data_factory, "_data")

    @classmethod
    def with_event(cls, event: str, data: Any) -> SseEvent:
        """An event of type ``event`` carrying ``data``."""
        return cls(data, event=event)

    @classmethod
    def from_item(cls, item: Any) -> SseEvent:
        """An SseEvent from a stream item: SseEvent, dict (data/event/id/retry) or str."""
        if isinstance(item, SseEvent):
            return item
        if isinstance(item, str):
            return cls(item)
        if isinstance(item, Mapping):
            unknown = set(item) - {"data", "event", "id", "retry"}
            if unknown:
                raise TypeError(f"unknown SSE event keys: {sorted(unknown)}")
            return cls(item.get("data", ""), item.get("event"), item.get("id"), item.get("retry"))
        raise TypeError(
            f"SSE stream items must be SseEvent, dict or str, not {type(item).__name__}"
        )

    def data_text(self) -> str:
        """The payload as text: str as is, anything else JSON-encoded."""
        data = self._data
        return data if isinstance(data, str) else _json.dumps(data)

    def to_sse_string(self) -> str:
        lines = []
        if self.id is not None:
            lines.append(f"id: {self.id}\n")
        if self.event is not None:
            lines.append(f"event: {self.event}\n")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}\n")
        for line in _LINE_BREAK.split(self.data_text()):
            lines.append(f"data: {line}\n")
        lines.append("\n")
        return "".join(lines)

    def encode(self) -> bytes:
        return self.to_sse_string().encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SseEvent):
            return NotImplemented
        return (self.data_text(), self.event, self.id, self.retry) == (
            other.data_text(),
            other.event,
            other.id,
            other.retry,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SseEvent(data={self._data!r}, event={self.event!r}, id={self.id!r}, retry={self.retry!r})"


class SseStream:
    """Events added up front, then the items of ``source`` as it produces them.

    ``source`` may be an iterable, a generator, an async iterable or an async
    generator. ``ping_interval`` seconds without an event send a ``: ping``
    comment (``None`` disables).
    """

    def __init__(self, source: Any = None, *, ping_interval: float | None = 15.0) -> None:
        if ping_interval is not None and (isinstance(ping_interval, bool) or not ping_interval > 0):
            raise ValueError("ping_interval must be a positive number of seconds or None")
        if source is not None and not (hasattr(source, "__iter__") or hasattr(source, "__aiter__")):
            raise TypeError("SseStream source must be an iterable or an async iterable")
        self.source = source
        self.ping_interval = ping_interval
        self.events: list[SseEvent] = []

    def add(self, event: Any) -> SseStream:
        self.events.append(SseEvent.from_item(event))
        return self

    def add_data(self, data: Any) -> SseStream:
        return self.add(SseEvent(data))

    def add_event(self, event_type: str, data: Any) -> SseStream:
        return self.add(SseEvent(data, event=event_type))

    def len(self) -> int:
        return len(self.events)

    def is_empty(self) -> bool:
        return not self.events

    def __len__(self) -> int:
        return len(self.events)

    @classmethod
    def from_broadcast(
        cls,
        broadcast: Any,
        channel: str,
        event: str | None = None,
        *,
        ping_interval: float | None = 15.0,
    ) -> SseStream:
        """A stream of the messages published on ``channel`` from now on (SPEC §10).

        The subscription starts when the stream does and ends when the client leaves.
        ``event`` names the events' type; overflow markers are skipped, bytes are
        sent as UTF-8 text and dicts as JSON.
        """
        _check_field("event", event)
        if not hasattr(broadcast, "subscribe"):
            raise TypeError(
                f"SseStream.from_broadcast needs a Broadcast (set app.broadcast), not {broadcast!r}"
            )
        return cls(_broadcast_events(broadcast, channel, event), ping_interval=ping_interval)

    def __repr__(self) -> str:
        return f"<SseStream {len(self.events)} events, source={type(self.source).__name__}>"


async def _broadcast_events(broadcast: Any, channel: str, event: str | None) -> Any:
    from ..broadcast._overflow import BroadcastOverflow

    async with broadcast.subscribe(channel) as subscription:
        async for message in subscription:
            if isinstance(message, BroadcastOverflow):
                continue
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            yield SseEvent(message, event=event)
