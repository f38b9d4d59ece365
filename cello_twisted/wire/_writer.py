"""The single place that writes a Response to a Twisted request and finishes it."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.web.http import RESPONSES
from twisted.web.server import NOT_DONE_YET

from ..middleware._errors import internal_error
from ._headers import DIRECT_WRITES, set_content_type, set_encoded_headers, set_headers
from ..middleware._chain import is_deferred
from ..response import Response

_log = Logger(namespace="cello_twisted.writer")


def _reason(status: int) -> bytes:
    from ..errors import reason_phrase

    return reason_phrase(status).encode("ascii")


def _apply_headers(request: Any, resp: Response) -> None:
    twreq = request.raw
    for finalize in request.app._finalizers:
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
    headers = resp._headers
    if headers is not None and headers._items:
        set_headers(twreq.responseHeaders, headers._items.values())
    encoded = resp._encoded_headers
    if encoded is not None:
        if DIRECT_WRITES:  # a C-level merge, without a Python frame: rate-limited responses
            twreq.responseHeaders._rawHeaders.update(encoded)
        else:
            set_encoded_headers(twreq.responseHeaders, encoded)


def write_response(request: Any, result: Any) -> Any:
    """Write ``result`` now (returning the body bytes) or when its Deferred fires."""
    if is_deferred(result):
        twreq = request.raw
        twreq.notifyFinish().addErrback(_client_gone, request, result)
        result.addCallback(_write_later, request).addErrback(_write_failed, request)
        return NOT_DONE_YET
    streamer = result.streamer
    if streamer is not None and getattr(streamer, "takeover", False):
        # The connection changes protocol (WebSocket 101): no HTTP headers or body from us.
        for finalize in request.app._finalizers:
            finalize(request, result)
        streamer.prepare(request, result)
        return streamer.start(request.raw)
    try:
        _apply_headers(request, result)
    except Exception as exc:  # noqa: BLE001 - e.g. a header value with a newline
        result = internal_error(request, exc, request.app.debug)
        request.raw.responseHeaders.removeHeader(b"set-cookie")
        _apply_headers(request, result)
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


def _content_length(resp: Response) -> bytes:
    value = resp.headers.get("content-length")
    return value.encode("ascii") if value else b"0"


def _start_streamer(request: Any, resp: Response) -> None:
    streamer = resp.streamer
    request.raw.notifyFinish().addErrback(lambda _: streamer.stop())
    done = streamer.start(request.raw)
    if is_deferred(done):
        done.addErrback(_stream_failed, request)


def _stream_failed(failure: Any, request: Any) -> None:
    if not request.gone and not failure.check(CancelledError):
        _log.failure("streamed response failed; aborting the connection", failure=failure)
        _abort(request.raw)


def _client_gone(failure: Any, request: Any, pending: Deferred) -> None:
    request.gone = True
    pending.cancel()


def _write_later(resp: Response, request: Any) -> None:
    if request.gone:
        if resp.streamer is not None:
            resp.streamer.stop()
        return
    twreq = request.raw
    body = write_response(request, resp)
    if body is NOT_DONE_YET:
        return
    if twreq.method != b"HEAD" or not twreq.responseHeaders.hasHeader(b"content-length"):
        twreq.setHeader(b"content-length", b"%d" % len(body))
    if body:
        twreq.write(body)
    twreq.finish()


def _write_failed(failure: Any, request: Any) -> None:
    if request.gone or failure.check(CancelledError):
        return
    twreq = request.raw
    if twreq.startedWriting:
        _log.failure("error after the response started; aborting the connection", failure=failure)
        _abort(twreq)
        return
    _write_later(internal_error(request, failure.value, request.app.debug), request)


def _abort(twreq: Any) -> None:
    transport = getattr(twreq.channel, "transport", None)
    if transport is not None:
        abort = getattr(transport, "abortConnection", None) or transport.loseConnection
        abort()
