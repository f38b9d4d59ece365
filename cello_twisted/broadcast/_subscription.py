"""One subscriber's view of a channel: a bounded queue read with ``async for``.

A subscriber that stops reading never slows the publisher or other subscribers: when
its queue is full the oldest message is dropped, and it later receives one
BroadcastOverflow (with the count) before the first message after the gap (SPEC §10 r2).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred

from ._overflow import BroadcastOverflow

DEFAULT_QUEUE_SIZE = 1000


class Subscription:
    """``async with broadcast.subscribe(channel) as sub: async for message in sub: ...``.

    Entering returns once the subscription is live (for Redis: once Redis confirmed the
    SUBSCRIBE); leaving releases it. Iteration ends when the broadcast is closed.
    """

    def __init__(self, hub: Any, channel: str, queue_size: int) -> None:
        self.hub = hub
        self.channel = channel
        self.queue_size = queue_size
        self._queue: deque[Any] = deque()
        self._dropped = 0
        self._waiter: Deferred[Any] | None = None
        self._entered = False
        self._closed = False

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once")
        self._entered = True
        await self.hub.attach(self)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Leave the channel (idempotent); a pending read ends the iteration."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        if self._entered:
            self.hub.detach(self)
        self._end()

    def _end(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.errback(StopAsyncIteration())

    @property
    def pending(self) -> int:
        """Messages received but not yet read."""
        return len(self._queue)

    def deliver(self, message: Any) -> None:
        """Called by the hub for each message on the channel (never blocks)."""
        if self._closed:
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.callback(message)
            return
        queue = self._queue
        if len(queue) >= self.queue_size:
            queue.popleft()
            self._dropped += 1
        queue.append(message)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return BroadcastOverflow(dropped)
        if self._queue:
            return self._queue.popleft()
        if self._closed:
            raise StopAsyncIteration
        if self._waiter is not None:
            raise RuntimeError("a Subscription is read by one reader at a time")
        waiter: Deferred[Any] = Deferred(self._cancelled)
        self._waiter = waiter
        return await waiter

    def _cancelled(self, waiter: Deferred[Any]) -> None:
        if self._waiter is waiter:
            self._waiter = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._queue)} queued"
        return f"<Subscription {self.channel!r} {state}>"
