"""The single place that writes a Response to a Twisted request and finishes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import RESPONSES
from twisted.web.server import NOT_DONE_YET

from .._defer import is_deferred
from ..middleware._errors import internal_error
from ..response import Response
from ._headers import DIRECT_WRITES, set_content_type, set_encoded_headers, set_headers

if TYPE_CHECKING:
    from twisted.web.server import Request as TwistedRequest

    from .._types import Finalizer
    from ..request import Request

_log = Logger(namespace="cello_twisted.writer")

Body = bytes | int
"""What ``render`` returns: the body bytes, or ``NOT_DONE_YET`` when the write happens later."""


def _reason(status: int) -> bytes:
    from ..errors import reason_phrase

    return reason_phrase(status).encode("ascii")


class ResponseWriter:
    """Writes an app's responses; ``finalizers`` is the app's live list (security headers)."""

    __slots__ = ("finalizers",)

    def __init__(self, finalizers: Sequence[Finalizer]) -> None:
        self.finalizers = finalizers

    def _apply_headers(self, request: Request, resp: Response) -> None:
        twreq = request.raw
        for finalize in self.finalizers:
            finalize(request, resp)
        if resp.streamer is not None:
            resp.streamer.prepare(request, resp)
        status = resp.status
        if status != 200:  # Twisted's default; skipping the call is measurable
            # Twisted's reason table lacks some codes (426, 429 on old versions): supply ours.
            twreq.setResponseCode(status, None if status in RESPONSES else _reason(status))
        if resp.content_type is not None:
            set_content_type(twreq.responseHeaders, resp.content_type)
        else:
            twreq.defaultContentType = None
        headers = resp.header_map
        if headers is not None and headers.entries:
            set_headers(twreq.responseHeaders, headers.entries.values())
        encoded = resp.encoded_headers
        if encoded is not None:
            if DIRECT_WRITES:  # a C-level merge, without a Python frame: rate-limited responses
                twreq.responseHeaders._rawHeaders.update(encoded)
            else:
                set_encoded_headers(twreq.responseHeaders, encoded)

    def write(self, request: Request, result: Response | Deferred[Response]) -> Body:
        """Write ``result`` now (returning the body bytes) or when its Deferred fires."""
        if is_deferred(result):
            twreq = request.raw
            twreq.notifyFinish().addErrback(_client_gone, request, result)
            result.addCallback(self._write_later, request).addErrback(self._write_failed, request)
            return NOT_DONE_YET
        streamer = result.streamer
        if streamer is not None and streamer.takeover:
            # The connection changes protocol (WebSocket 101): no HTTP headers or body from us.
            for finalize in self.finalizers:
                finalize(request, result)
            streamer.prepare(request, result)
            started: Body = streamer.start(request.raw)  # autobahn's render: NOT_DONE_YET
            return started
        try:
            self._apply_headers(request, result)
        except Exception as exc:  # noqa: BLE001 - e.g. a header value with a newline
            result = internal_error(request, exc, request.app.debug)
            request.raw.responseHeaders.removeHeader(b"set-cookie")
            self._apply_headers(request, result)
        if result.streamer is not None:
            if request.method == "HEAD":
                request.raw.setHeader(b"content-length", _content_length(result))
                return b""
            _start_streamer(request, result)
            return NOT_DONE_YET
        if request.method == "HEAD":
            if result.body:
                request.raw.setHeader(b"content-length", b"%d" % len(result.body))
            return b""
        return result.body

    def _write_later(self, resp: Response, request: Request) -> None:
        if request.gone:
            if resp.streamer is not None:
                resp.streamer.stop()
            return
        twreq = request.raw
        body = self.write(request, resp)
        if body is NOT_DONE_YET or isinstance(body, int):
            return
        if twreq.method != b"HEAD" or not twreq.responseHeaders.hasHeader(b"content-length"):
            twreq.setHeader(b"content-length", b"%d" % len(body))
        if body:
            twreq.write(body)
        twreq.finish()

    def _write_failed(self, failure: Failure, request: Request) -> None:
        if request.gone or failure.check(CancelledError):
            return
        twreq = request.raw
        if twreq.startedWriting:
            _log.failure("error after the response started; aborting the connection", failure=failure)
            _abort(twreq)
            return
        self._write_later(internal_error(request, cast(BaseException, failure.value), request.app.debug), request)


def _content_length(resp: Response) -> bytes:
    value = resp.headers.get("content-length")
    return value.encode("ascii") if value else b"0"


def _start_streamer(request: Request, resp: Response) -> None:
    streamer = resp.streamer
    assert streamer is not None
    request.raw.notifyFinish().addErrback(lambda _: streamer.stop())
    done = streamer.start(request.raw)
    if is_deferred(done):
        done.addErrback(_stream_failed, request)


def _stream_failed(failure: Failure, request: Request) -> None:
    if not request.gone and not failure.check(CancelledError):
        _log.failure("streamed response failed; aborting the connection", failure=failure)
        _abort(request.raw)


def _client_gone(failure: Failure, request: Request, pending: Deferred[Response]) -> None:
    request.gone = True
    pending.cancel()


def _abort(twreq: TwistedRequest) -> None:
    transport = getattr(twreq.channel, "transport", None)
    if transport is not None:
        abort = getattr(transport, "abortConnection", None) or transport.loseConnection
        abort()
