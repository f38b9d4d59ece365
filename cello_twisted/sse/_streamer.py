"""The SSE body writer: pulls events one by one, pings when idle, cleans up on disconnect."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._signals import stream_changed
from ..wire._stream import ResponseHead, Streamer
from ._events import SseEvent, SseStream

if TYPE_CHECKING:
    from twisted.web.server import Request as TwistedRequest

    from ..request import AppView, Request

_log = Logger(namespace="cello_twisted.sse")
_END = object()
PING = b": ping\n\n"
EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = (("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"))
BURST = 64  # items pulled back to back before yielding a reactor turn


class _Puller:
    """Gets the next item of a source: inline for sequences, a pool thread for sync
    iterators (they may block), the reactor for async iterators."""

    def __init__(self, source: Any, run_blocking: Callable[..., Deferred[Any]]) -> None:
        self.run_blocking = run_blocking
        self.lock = threading.Lock()
        self.busy = False  # a thread is inside next()
        self.stopped = False
        self.closed = False
        self.is_async = hasattr(source, "__aiter__")
        if self.is_async:
            self.source = source
            self.it = source.__aiter__()
        else:
            self.source = source
            self.it = iter(source)
        self.inline = isinstance(source, (list, tuple, str, bytes, dict, set, frozenset))

    def next(self) -> Any:
        if self.is_async:
            return Deferred.fromCoroutine(_anext(self.it))
        if self.inline:
            return next(self.it, _END)
        with self.lock:
            self.busy = True
        return self.run_blocking(self._next_in_thread)

    def _next_in_thread(self) -> Any:
        with self.lock:
            late = self.stopped
        if late:
            self.busy = False
            self.close()  # the client left before this pull ran: close instead of pulling
            return _END
        try:
            item = next(self.it, _END)
        finally:
            with self.lock:
                self.busy = False
                late = self.stopped
        if late:
            self.close()  # the stream ended while next() ran: close here, after it returned
        return item

    def stop(self) -> None:
        """No more pulls; close now, or from the pulling thread once its next() returns."""
        with self.lock:
            self.stopped = True
            busy = self.busy
        if not busy:
            self.close()

    def close(self) -> None:
        """Close the source so its ``finally`` runs (``aclose()``/``close()``)."""
        if self.closed:
            return
        if self.is_async:
            aclose = getattr(self.it, "aclose", None)
            if aclose is None:
                self.closed = True
                return
            self.closed = True
            Deferred.fromCoroutine(_await(aclose())).addErrback(self._close_failed)
            return
        self.closed = True
        close = getattr(self.it, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - a source's finally failing must not break cleanup
                _log.failure("closing the SSE source failed")

    def _close_failed(self, failure: Failure) -> None:
        if failure.check(RuntimeError) and "already running" in str(failure.value):
            self.closed = False  # still inside a pull: closed again when that pull settles
        elif not failure.check(CancelledError):
            _log.failure("closing the SSE source failed", failure=failure)


async def _anext(it: Any) -> Any:
    try:
        return await it.__anext__()
    except StopAsyncIteration:
        return _END


async def _await(awaitable: Any) -> Any:
    return await awaitable


live_streams: WeakSet[SseStreamer] = WeakSet()


@implementer(IPushProducer)
class SseStreamer(Streamer):
    """Writes the stream's events to a Twisted request as they come; never buffered."""

    buffered = False

    def __init__(self, stream: SseStream) -> None:
        self.stream = stream
        self.app: AppView | None = None
        self.twreq: Any = None  # the Twisted request, once started
        self.done: Deferred[Any] | None = None
        self.puller: _Puller | None = None
        self.pending: Deferred[Any] | None = None
        self.ping_call: Any = None
        self.paused = False
        self.stopped = False
        self.finished = False
        self.pulling = False
        self.out: list[bytes] = []
        self.turn_call: Any = None

    # -- Streamer ----------------------------------------------------------------

    @classmethod
    def of(cls, stream: SseStream | Any) -> SseStreamer:
        """A streamer for an SseStream, or for any event source (wrapped in one)."""
        return cls(stream if isinstance(stream, SseStream) else SseStream(stream))

    def prepare(self, request: Request, response: ResponseHead) -> None:
        self.app = request.app
        if request.raw.clientproto == b"HTTP/1.1":
            response.headers.set("Connection", "keep-alive")

    def start(self, twreq: TwistedRequest) -> Deferred[None]:
        self.twreq = twreq
        done: Deferred[None] = Deferred()
        self.done = done
        live_streams.add(self)
        stream_changed("sse", 1)
        twreq.registerProducer(self, True)
        twreq.write(b"".join(e.encode() for e in self.stream.events) or b"")  # headers go out now
        source = self.stream.source
        if source is None:
            self.finish()
            return done
        self.puller = _Puller(source, self._the_app().run_blocking)
        self._arm_ping()
        self.pull()
        return done

    def _the_app(self) -> AppView:
        app = self.app
        if app is None:
            raise RuntimeError("SseStreamer.start() before prepare()")
        return app

    def stop(self) -> None:
        """The client left: pull nothing more, close the source, cancel what is pending."""
        if self.stopped:
            return
        self.stopped = True
        self._release()
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.cancel()
        if self.puller is not None:
            self.puller.stop()
        self._settle()

    # -- IPushProducer (back-pressure from a slow reader) --------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            if self.pending is None and not self.stopped and not self.finished:
                self.pull()

    def stopProducing(self) -> None:
        self.stop()

    # -- the pull loop -------------------------------------------------------------

    def pull(self) -> None:
        """Pull items until the source is pending, paused, ended or gone, then write them.

        Items a source produces back to back are written together when it goes
        pending; after ``BURST`` such items the loop yields one reactor turn so a
        source that never waits cannot starve other connections.
        """
        if self.pulling:
            return
        self.pulling = True
        budget = BURST
        try:
            while not (self.stopped or self.finished or self.paused):
                if budget == 0 and self._yield_turn():
                    return
                budget -= 1
                try:
                    result = self.puller.next()  # type: ignore[union-attr]  # typing note: set by start() before any pull
                except Exception as exc:  # noqa: BLE001 - a failing source ends the stream
                    self._source_failed(Failure(exc))
                    return
                if isinstance(result, Deferred):
                    now: list[Any] = []
                    sync = [True]

                    def arrive(
                        value: Any,
                        now: list[Any] = now,
                        sync: list[bool] = sync,
                        d: Deferred[Any] = result,
                    ) -> None:
                        if sync[0]:
                            now.append(value)
                        else:
                            self._arrived(d, value)

                    result.addBoth(arrive)
                    sync[0] = False
                    if not now:
                        self.pending = result
                        return
                    result = now[0]
                if not self._handle(result):
                    return
        finally:
            self.pulling = False
            self._flush()

    def _yield_turn(self) -> bool:
        """Continue on the next reactor turn (the in-memory test client runs streams inline)."""
        self.turn_call = self._the_app().threads.call_next_turn(self._next_turn)
        return self.turn_call is not None

    def _next_turn(self) -> None:
        self.turn_call = None
        if not (self.stopped or self.finished or self.paused):
            self.pull()

    def _arrived(self, d: Deferred[Any], value: Any) -> None:
        if self.pending is d:
            self.pending = None
        if self.stopped or self.finished:
            if self.puller is not None:
                self.puller.stop()
            if isinstance(value, Failure) and not value.check(CancelledError):
                _log.failure("SSE source failed after the stream ended", failure=value)
            return
        if self._handle(value):
            self.pull()
        else:
            self._flush()

    def _handle(self, value: Any) -> bool:
        """Encode one item for the next write; False when the stream must not continue."""
        if self.stopped or self.finished:
            return False
        if isinstance(value, Failure):
            if value.check(CancelledError):
                self.finish()
            else:
                self._source_failed(value)
            return False
        if value is _END:
            self.finish()
            return False
        try:
            self.out.append(SseEvent.from_item(value).encode())
        except (TypeError, ValueError) as exc:
            self._source_failed(Failure(exc))
            return False
        return True

    def _flush(self) -> None:
        """Write what was produced since the last write; an event restarts the ping interval."""
        if not self.out or self.stopped:
            self.out.clear()
            return
        data = b"".join(self.out)
        self.out.clear()
        self.twreq.write(data)
        if self.ping_call is not None and self.ping_call.active():
            self.ping_call.reset(self.stream.ping_interval)

    def _source_failed(self, failure: Failure) -> None:
        _log.failure("SSE source failed; ending the stream", failure=failure)
        self.finish()

    # -- pings, finishing, cleanup ---------------------------------------------------

    def _arm_ping(self) -> None:
        interval = self.stream.ping_interval
        if interval is not None:
            self.ping_call = self._the_app().clock.callLater(interval, self._ping)

    def _ping(self) -> None:
        self.ping_call = None
        if self.stopped or self.finished:
            return
        self.twreq.write(PING)
        self._arm_ping()

    def finish(self) -> None:
        """The source ended (or failed): end the response and close the source."""
        if self.finished or self.stopped:
            return
        self._flush()
        self.finished = True
        self._release()
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.cancel()  # ended from outside (shutdown) while the source was waiting
        if self.puller is not None:
            self.puller.stop()
        twreq = self.twreq
        twreq.unregisterProducer()
        twreq.finish()
        self._settle()

    def _release(self) -> None:
        if self in live_streams:
            live_streams.discard(self)
            stream_changed("sse", -1)
        turn, self.turn_call = self.turn_call, None
        if turn is not None and turn.active():
            turn.cancel()
        call, self.ping_call = self.ping_call, None
        if call is not None and call.active():
            call.cancel()

    def _settle(self) -> None:
        done, self.done = self.done, None
        if done is not None:
            done.callback(None)


def close_streams(app: object | None = None) -> int:
    """End every live SSE stream (of ``app`` if given); returns how many were ended."""
    count = 0
    for streamer in list(live_streams):
        if app is None or streamer.app is app:
            streamer.finish()
            count += 1
    return count
