"""CelloSite: a twisted.web Site with the connection rules, an early body limit, no access log."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from io import BytesIO
from typing import IO, Any

from twisted.web import http, server

from ._channel import CelloChannel, CelloProtocol, channel_class
from ._limits import DEFAULT_LIMITS, ConnectionLimits
from ._refusals import Header, RequestGate


class _Discard:
    """A body sink after a refusal: the rest of an oversized upload goes nowhere."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


class CelloRequest(server.Request):
    """Refuses bodies over the limit before reading them (SPEC §2.17 r3).

    Also turns off Twisted's eager form parsing of every POST (TWISTED_NOTES §9):
    ``request.form()`` parses lazily, only when a handler asks.
    """

    max_body_size: int | None = None  # set per Site by a subclass
    body_limit_enforced = True  # AppResource skips its own (late) check
    _refused = False
    _received = 0

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)

    def gotLength(self, length: int | None) -> None:
        limit = self.max_body_size
        if limit is not None and length is not None and length > limit:
            self._refuse_too_large(limit)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        limit = self.max_body_size
        if limit is not None:
            self._received += len(data)
            if self._received > limit:
                self._refuse_too_large(limit)
                return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        super().requestReceived(command, path, version)

    def _refuse_too_large(self, limit: int) -> None:
        self.refuse(413, f"Request body exceeds the limit of {limit} bytes")

    def refuse(self, status: int, detail: str, headers: Sequence[Header] = ()) -> None:
        """Answer before routing; the channel (HTTP/1.1 connection or HTTP/2 stream) delivers it."""
        self._refused = True
        old = getattr(self, "content", None)
        if old is not None and not isinstance(old, _Discard):
            old.close()
        self.content = _Discard()
        # The channel answers "Expect: 100-continue" right after gotLength; a refused
        # upload must not be invited.
        self.requestHeaders.removeHeader(b"expect")
        channel: Any = self.channel  # a CelloChannel or a CelloH2Stream
        channel.refuse_request(self, status, detail, headers)


class GatedRequest(CelloRequest):
    """Load shedding (SPEC_OPERATIONS §4 r6): a slot from end of headers to finish or disconnect."""

    gate: RequestGate  # set per Site by a subclass
    _holds_slot = False

    def gotLength(self, length: int | None) -> None:
        if not self.gate.try_enter():
            self.refuse(503, "Server is at capacity; retry shortly", ((b"Retry-After", b"1"),))
            return
        self._holds_slot = True
        super().gotLength(length)

    def _leave(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self.gate.leave()

    def finish(self) -> Any:
        self._leave()
        return super().finish()

    def connectionLost(self, reason: Any) -> None:
        self._leave()
        super().connectionLost(reason)


class CelloSite(server.Site):
    """A Site whose channels enforce SPEC_OPERATIONS §4 and whose requests enforce the body limit.

    Args:
        resource: the root resource (usually ``app.resource()``).
        max_body_size: request bodies above this many bytes get 413 before being read.
        limits: connection timeouts and header limits; ``limits.backlog`` is read by whoever listens.
        max_concurrent_requests: requests in progress above this get 503 (None: no shedding).
        clock: ``IReactorTime`` for the connection timers (``app.clock``).
    """

    def __init__(
        self,
        resource: Any,
        max_body_size: int | None = None,
        *,
        limits: ConnectionLimits = DEFAULT_LIMITS,
        max_concurrent_requests: int | None = None,
        clock: Any = None,
        **kwargs: Any,
    ) -> None:
        attrs: dict[str, Any] = {"max_body_size": max_body_size}
        base: type[CelloRequest] = CelloRequest
        self.gate: RequestGate | None = None
        if max_concurrent_requests is not None:
            self.gate = attrs["gate"] = RequestGate(max_concurrent_requests)
            base = GatedRequest
        fast = limits.http_parser == "httptools"
        bases: tuple[type, ...] = (base,)
        if fast:
            from ._fast_channel import FastRequest

            bases = (FastRequest, base)
        kwargs.setdefault("requestFactory", type("CelloSiteRequest", bases, attrs))
        kwargs.setdefault("timeout", limits.keep_alive_timeout)  # HTTP/2's idle timer
        super().__init__(resource, **kwargs)
        self._clock: Any = clock if clock is not None else self.reactor
        self.limits = limits
        self.backlog = limits.backlog
        self.displayTracebacks = False
        self._channel_class: type[CelloChannel] = channel_class(limits, self._clock)
        if fast:  # llhttp through httptools (_fast_channel); "twisted" keeps Twisted's parser
            from ._fast_channel import fast_channel_class

            self._channel_class = fast_channel_class(limits, self._clock)

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.callLater = self._clock.callLater  # connection timers follow app.clock
        return protocol

    def protocol(self) -> CelloProtocol:
        """Twisted's factory hook: each connection gets a CelloChannel behind the H1/H2 switch."""
        return CelloProtocol(self._channel_class())

    def getContentFile(self, length: int | None) -> IO[bytes]:
        """Twisted's hook for a request's body file, with Twisted's own choice (memory below
        100 kB, else a temporary file). Without it, ``server.Request.gotLength`` finds no hook by
        catching an AttributeError on every request."""
        if length is not None and length < 100_000:
            return BytesIO()
        return tempfile.TemporaryFile()

    def log(self, request: http.Request) -> None:
        """Twisted's access log is the largest per-request cost; RequestLogging replaces it."""
