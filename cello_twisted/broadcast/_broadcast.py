"""Broadcast: one API over in-process delivery (``memory://``) and Redis Pub/Sub (SPEC §10)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from ..stores._redis_url import safe_url
from ._codec import encode
from ._subscription import DEFAULT_QUEUE_SIZE, Subscription

_MAX_CHANNEL = 1024


def _check_channel(channel: Any) -> str:
    if not isinstance(channel, str) or not channel:
        raise TypeError("a broadcast channel is a non-empty str")
    if len(channel) > _MAX_CHANNEL:
        raise ValueError(f"a broadcast channel name is at most {_MAX_CHANNEL} characters")
    return channel


def _check_queue_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"queue_size must be a positive int, not {size!r}")
    return size


class Broadcast:
    """Publish to a channel; every subscriber of that channel receives the message.

    ``url``: ``memory://`` (this process only) or ``redis://``, ``rediss://``,
    ``unix://``, ``redis+sentinel://``, ``redis+cluster://`` (every process sharing the
    Redis). ``queue_size``: messages each subscriber may fall behind before the oldest
    are dropped. ``timeout``: bound on publishing and on confirming a SUBSCRIBE (0.5 s, so
    an outage fails a publish well within the 1 s of SPEC §10 r4).
    ``prefix``: prepended to channel names in Redis.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout: float = 0.5,
        prefix: str = "cello:broadcast:",
        reactor: Any = None,
    ) -> None:
        if not isinstance(url, str):
            raise ValueError("Broadcast url must be a str")
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a str")
        self.url = url
        self.queue_size = _check_queue_size(queue_size)
        self.hub: Any
        if url.rstrip("/") in ("memory:", "memory:/"):
            from ._memory import MemoryHub

            self.hub = MemoryHub()
        else:
            from ._redis import RedisHub

            self.hub = RedisHub(url, timeout, prefix, reactor)

    def publish(self, channel: str, message: str | bytes | dict[str, Any]) -> Deferred[Any]:
        """Send ``message`` to the channel's subscribers; ``await`` it (SharedStoreUnavailable on outage)."""
        published: Deferred[Any] = self.hub.publish(_check_channel(channel), encode(message))
        return published

    def subscribe(self, channel: str, *, queue_size: int | None = None) -> Subscription:
        """A subscription to use as ``async with broadcast.subscribe(channel) as sub``."""
        size = self.queue_size if queue_size is None else _check_queue_size(queue_size)
        return Subscription(self.hub, _check_channel(channel), size)

    def subscribers(self, channel: str) -> int:
        """How many subscriptions this process holds on ``channel``."""
        return int(self.hub.subscribed(_check_channel(channel)))

    def health_check(self) -> Any:
        """True when the backend answers (``PING`` for Redis), usable as a health check."""
        return self.hub.health_check()

    def close(self) -> None:
        """End every subscription and close connections; called once at a graceful stop."""
        self.hub.close()

    def __repr__(self) -> str:
        return f"Broadcast({safe_url(self.url)!r})"
