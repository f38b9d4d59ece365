"""``redis://`` / ``rediss://``: Redis Pub/Sub, one subscriber connection per process.

Every subscription in the process shares one reactor-native connection in subscriber
mode; a channel is SUBSCRIBEd when its first local subscriber enters and UNSUBSCRIBEd
when its last one leaves (SPEC §10 r3, r5). Publishing goes over the command
connection, in order. When the subscriber connection is lost it is reopened with
back-off (0.1 s doubling to 1 s) and every channel is subscribed again; a PING every
5 s notices a connection that silently stopped answering.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..stores._redis_client import RedisBackend, SharedStoreUnavailable
from ..stores._redis_url import safe_url
from ._codec import decode

_log = Logger(namespace="cello_twisted.broadcast")
_RETRY_FIRST = 0.1
_RETRY_MAX = 1.0
PING_INTERVAL = 5.0


class RedisHub:
    """Subscriber connection, channel bookkeeping and publishing for one Broadcast."""

    def __init__(self, url: str, timeout: float, prefix: str, reactor: Any = None) -> None:
        self.url = url
        self.backend = RedisBackend("Broadcast", url, None, timeout, reactor)
        self.reactor = self.backend.reactor
        self.timeout = self.backend.timeout
        self.prefix = prefix.encode()
        self.channels: dict[bytes, list[Any]] = {}
        self.confirmed: set[bytes] = set()
        self.waiting: dict[bytes, list[Deferred[Any]]] = {}
        self.proto: Any = None
        self.connecting = False
        self.closed = False
        self.down_since_logged = False
        self.retry_delay = 0.0
        self._retry_call: Any = None
        self._ping_call: Any = None
        self._pong_due = False

    def key(self, channel: str) -> bytes:
        return self.prefix + channel.encode("utf-8")

    # -- subscriptions ---------------------------------------------------------------------

    def attach(self, sub: Any) -> Deferred[Any]:
        """Fires once Redis confirmed the channel's SUBSCRIBE (at once if it already had)."""
        if self.closed:
            raise RuntimeError("the Broadcast is closed")
        key = self.key(sub.channel)
        subs = self.channels.setdefault(key, [])
        subs.append(sub)
        if key in self.confirmed:
            return succeed(None)
        d: Deferred[Any] = Deferred()
        self.waiting.setdefault(key, []).append(d)
        if len(subs) == 1 and self.proto is not None:
            self.proto.send(["SUBSCRIBE", key])
        self._ensure_connected()
        d.addTimeout(self.timeout, self.reactor)
        d.addErrback(self._not_confirmed, sub, key, d)
        return d

    def _not_confirmed(self, failure: Failure, sub: Any, key: bytes, d: Deferred[Any]) -> None:
        waiters = self.waiting.get(key)
        if waiters and d in waiters:
            waiters.remove(d)
        self.detach(sub)
        raise SharedStoreUnavailable("Broadcast", f"SUBSCRIBE not confirmed within {self.timeout:g} s")

    def detach(self, sub: Any) -> None:
        key = self.key(sub.channel)
        subs = self.channels.get(key)
        if not subs or sub not in subs:
            return
        subs.remove(sub)
        if subs:
            return
        del self.channels[key]
        self.confirmed.discard(key)
        if self.proto is not None:
            self.proto.send(["UNSUBSCRIBE", key])

    def _push(self, reply: Any) -> None:
        kind = reply[0]
        if kind == b"message":
            subs = self.channels.get(reply[1])
            if subs:
                payload = reply[2]
                for sub in tuple(subs):
                    sub.deliver(decode(payload))
        elif kind == b"subscribe":
            key = reply[1]
            if key in self.channels:
                self.confirmed.add(key)
                for d in self.waiting.pop(key, ()):
                    d.callback(None)
        elif kind == b"pong":
            self._pong_due = False

    # -- the subscriber connection ---------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self.proto is not None or self.connecting or self.closed:
            return
        if self._retry_call is not None and self._retry_call.active():
            return
        self.connecting = True
        connector = self.backend.connector
        d = connector.subscriber_address()
        d.addCallback(lambda address: connector.dialer.open(address, db=None))
        d.addCallbacks(self._connected, self._connect_failed)

    def _connected(self, proto: Any) -> None:
        self.connecting = False
        if self.closed:
            proto.drop()
            return
        self.proto = proto
        proto.on_push = self._push
        proto.on_lost = self._lost
        self.retry_delay = 0.0
        if self.down_since_logged:
            self.down_since_logged = False
            _log.info("Broadcast: Redis at {url} reachable again; subscriptions restored", url=safe_url(self.url))
        if self.channels:
            proto.send(["SUBSCRIBE", *self.channels])
        self._pong_due = False
        self._arm_ping()

    def _connect_failed(self, failure: Failure) -> None:
        self.connecting = False
        self._schedule_retry(failure.getErrorMessage())

    def _lost(self, proto: Any) -> None:
        if self.proto is not proto:
            return
        self.proto = None
        self.confirmed.clear()
        self._cancel(self._ping_call)
        self._schedule_retry("subscriber connection lost")

    def _schedule_retry(self, reason: str) -> None:
        if self.closed or not (self.channels or self.waiting):
            return
        if not self.down_since_logged:
            self.down_since_logged = True
            _log.warn(
                "Broadcast: Redis at {url} unavailable ({reason}); resubscribing with back-off",
                url=safe_url(self.url),
                reason=reason,
            )
        self.retry_delay = min(self.retry_delay * 2, _RETRY_MAX) if self.retry_delay else _RETRY_FIRST
        self._retry_call = self.reactor.callLater(self.retry_delay, self._retry)

    def _retry(self) -> None:
        self._retry_call = None
        self._ensure_connected()

    def _arm_ping(self) -> None:
        self._ping_call = self.reactor.callLater(PING_INTERVAL, self._ping)

    def _ping(self) -> None:
        proto = self.proto
        if proto is None:
            return
        if self._pong_due:  # the last PING was never answered: the connection is dead
            proto.drop()
            return
        self._pong_due = True
        proto.send(["PING"])
        self._arm_ping()

    @staticmethod
    def _cancel(call: Any) -> None:
        if call is not None and call.active():
            call.cancel()

    # -- publishing ------------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> Deferred[Any]:
        key = self.key(channel)
        result = self.backend.command(key, "PUBLISH", key, payload)
        if isinstance(result, Deferred):
            return result.addCallback(lambda _: None)
        return succeed(None)

    def subscribed(self, channel: str) -> int:
        return len(self.channels.get(self.key(channel), ()))

    def health_check(self) -> Any:
        return self.backend.health_check()

    def close(self) -> None:
        self.closed = True
        self._cancel(self._retry_call)
        self._cancel(self._ping_call)
        for subs in list(self.channels.values()):
            for sub in list(subs):
                sub.close()
        self.channels.clear()
        proto, self.proto = self.proto, None
        if proto is not None:
            proto.on_lost = None
            proto.drop()
        self.backend.close()
