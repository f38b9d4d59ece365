"""``memory://``: delivery within this process only (tests, a single worker)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed

from ._codec import decode


class MemoryHub:
    """Channel -> subscriptions; publishing hands each subscriber its own copy at once."""

    def __init__(self) -> None:
        self.channels: dict[str, list[Any]] = {}

    def attach(self, sub: Any) -> Deferred[Any]:
        self.channels.setdefault(sub.channel, []).append(sub)
        return succeed(None)

    def detach(self, sub: Any) -> None:
        subs = self.channels.get(sub.channel)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self.channels[sub.channel]

    def publish(self, channel: str, payload: bytes) -> Deferred[Any]:
        for sub in list(self.channels.get(channel, ())):
            sub.deliver(decode(payload))
        return succeed(None)

    def subscribed(self, channel: str) -> int:
        return len(self.channels.get(channel, ()))

    def health_check(self) -> Any:
        return True

    def close(self) -> None:
        for subs in list(self.channels.values()):
            for sub in list(subs):
                sub.close()
        self.channels.clear()
