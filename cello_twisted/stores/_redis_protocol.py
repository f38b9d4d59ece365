"""One Redis connection on the reactor: commands pipelined in order, replies parsed by hiredis.

No thread and no per-command timer: Redis answers commands in the order sent, so each
reply fires the oldest waiting Deferred[Any], and one watchdog per connection drops the
connection when the oldest command has waited longer than the timeout (every waiter
then fails with RedisConnectionError).

Twisted runs timed calls before reading sockets in each reactor iteration, so a busy
reactor can reach the deadline with the reply already waiting in the socket (or with the
command still unsent in the transport's buffer). An overdue command therefore gets a
short grace (a tenth of the timeout, at most 0.1 s, and at least one I/O pass) and the
connection is dropped only if no reply at all was read during it: a reply that is merely
unread is not an outage, a silent server still fails within ``timeout`` plus the grace.
A server that keeps answering, but too slowly, fails a command at twice the timeout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

_GRACE_MAX = 0.1  # seconds: the longest extra wait for a reply already overdue


class RedisReplyError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-MOVED ...``, ``-NOSCRIPT ...``)."""

    @property
    def code(self) -> str:
        text = str(self)
        return text.split(" ", 1)[0] if text else ""


class RedisConnectionError(ConnectionError):
    """No answer from Redis: connection refused, lost, or the reply overdue."""


class RedisProtocol(Protocol):
    """Pipelined commands; in subscriber mode every reply goes to ``on_push`` instead."""

    transport: Any = None

    def __init__(self, clock: Any, timeout: float) -> None:
        self._clock = clock
        self._timeout = timeout
        self._grace = min(timeout / 10, _GRACE_MAX)
        self._reader = hiredis.Reader(replyError=RedisReplyError)
        self._pending: deque[tuple[Deferred[Any], float]] = deque()
        self._watch: Any = None
        self._overdue = False
        self._replies = 0  # replies read so far: progress seen by the watchdog
        self._mark: int | None = None  # ``_replies`` when the grace for an overdue command began
        self.connected_ = False
        self.on_push: Callable[[Any], None] | None = None
        self.on_lost: Callable[[RedisProtocol], None] | None = None
        self.made: Deferred[Any] = Deferred()

    def connectionMade(self) -> None:
        self.connected_ = True
        made, self.made = self.made, Deferred()
        made.callback(self)

    def execute(self, args: Sequence[Any]) -> Deferred[Any]:
        """Send one command; a Deferred firing with its reply (errback RedisReplyError)."""
        if not self.connected_:
            return fail(RedisConnectionError("connection closed"))
        d: Deferred[Any] = Deferred()
        self._pending.append((d, self._clock.seconds() + self._timeout))
        self.transport.write(hiredis.pack_command(tuple(args)))
        if self._watch is None:
            self._watch = self._clock.callLater(self._timeout, self._check)
        return d

    def send(self, args: Sequence[Any]) -> None:
        """Send a command whose answer arrives through ``on_push`` (subscriber mode)."""
        if self.connected_:
            self.transport.write(hiredis.pack_command(tuple(args)))

    def _check(self) -> None:
        self._watch = None
        if not self._pending:
            self._mark = None
            return
        now = self._clock.seconds()
        deadline = self._pending[0][1]
        if now < deadline:
            self._mark = None
            self._watch = self._clock.callLater(deadline - now, self._check)
            return
        if self._mark != self._replies and now < deadline + self._timeout:
            # Overdue, but replies may be unread in the socket: look again after the grace
            # (a timed call scheduled now runs only after the reactor has read its sockets).
            self._mark = self._replies
            self._watch = self._clock.callLater(self._grace, self._check)
            return
        self._overdue = True
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        pending = self._pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError:
                self.transport.abortConnection()
                return
            if reply is False:
                return
            if self.on_push is not None and not pending:
                self.on_push(reply)
                continue
            if not pending:  # an answer nobody asked for: the stream is out of step
                self.transport.abortConnection()
                return
            self._replies += 1
            d = pending.popleft()[0]
            if type(reply) is RedisReplyError:
                d.errback(Failure(reply))
            else:
                d.callback(reply)

    def drop(self) -> None:
        """Close at once (every waiter fails); used on READONLY, timeouts and close()."""
        if self.transport is not None and self.connected_:
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected_ = False
        if self._watch is not None and self._watch.active():
            self._watch.cancel()
        self._watch = None
        why = "no reply in time" if self._overdue else _why(reason)
        pending, self._pending = self._pending, deque()
        for d, _ in pending:
            d.errback(Failure(RedisConnectionError(why)))
        if self.on_lost is not None:
            self.on_lost(self)


def _why(reason: Failure | None) -> str:
    """``connection lost``, with the cause when it is more than a plain close (e.g. TLS)."""
    from twisted.internet.error import ConnectionDone, ConnectionLost

    if reason is None or reason.check(ConnectionDone, ConnectionLost):
        return "connection lost"
    return f"connection lost: {type(reason.value).__name__}: {reason.getErrorMessage()}"[:200]
