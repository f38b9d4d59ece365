"""CelloSite: a twisted.web Site without the per-request access log, with an early body limit."""

from __future__ import annotations

from typing import Any

from twisted.web import http, server

from .. import _json


class _Discard:
    """A body sink after a refusal: the rest of an oversized upload goes nowhere."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> int:
        return 0

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


#: How long a refused upload may keep sending (discarded) before the connection closes.
_LINGER_SECONDS = 2.0


def _refusal(limit: int) -> bytes:
    body = _json.dumpb(
        {"error": "Content Too Large", "status": 413, "detail": f"Request body exceeds the limit of {limit} bytes"}
    )
    return (
        b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


class CelloRequest(server.Request):
    """Refuses bodies over the limit before reading them (SPEC §2.17 r3).

    Also turns off Twisted's eager form parsing of every POST (TWISTED_NOTES §9):
    ``request.form()`` parses lazily, only when a handler asks.
    """

    max_body_size: int | None = None  # set per Site by a subclass
    body_limit_enforced = True  # AppResource skips its own (late) check
    _refused = False
    _received = 0
    _linger: Any = None

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(channel, *args, **kwargs)

    def gotLength(self, length: int | None) -> None:
        limit = self.max_body_size
        if limit is not None and length is not None and length > limit:
            self._refuse(limit)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        limit = self.max_body_size
        if limit is not None:
            self._received += len(data)
            if self._received > limit:
                self._refuse(limit)
                return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        super().requestReceived(command, path, version)

    def _refuse(self, limit: int) -> None:
        self._refused = True
        old = getattr(self, "content", None)
        if old is not None and not isinstance(old, _Discard):
            old.close()
        self.content = _Discard()
        # The channel answers "Expect: 100-continue" right after gotLength; a refused
        # upload must not be invited.
        self.requestHeaders.removeHeader(b"expect")
        channel = self.channel
        transport = channel.transport
        if transport is None:  # the connection is already gone: nothing to answer
            return
        transport.write(_refusal(limit))
        # Lingering close: closing with unread upload bytes in the socket makes the kernel
        # send a RST that can destroy the 413 before the client reads it. Half-close
        # instead (FIN after the 413), keep reading and discarding, and close fully soon.
        half_close = getattr(transport, "loseWriteConnection", None)
        if half_close is None:
            channel.loseConnection()
            return
        half_close()
        self._linger = channel.callLater(_LINGER_SECONDS, channel.loseConnection)

    def connectionLost(self, reason: Any) -> None:
        linger = self._linger
        if linger is not None and linger.active():
            linger.cancel()
        super().connectionLost(reason)


class CelloSite(server.Site):
    """A Site whose request factory enforces the app's body limit; no access log."""

    def __init__(self, resource: Any, max_body_size: int | None = None, **kwargs: Any) -> None:
        limit = max_body_size
        factory = type("CelloRequestWithLimit", (CelloRequest,), {"max_body_size": limit})
        kwargs.setdefault("requestFactory", factory)
        super().__init__(resource, **kwargs)
        self.displayTracebacks = False

    def log(self, request: http.Request) -> None:
        """Twisted's access log is the largest per-request cost; RequestLogging replaces it."""
