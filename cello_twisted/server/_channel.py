"""CelloChannel: the seam where the connection's rules live (SPEC_OPERATIONS §4 r1-r4, r10-r12).

Twisted's ``HTTPChannel`` parses HTTP/1.1 and ``H2Connection`` HTTP/2. What a server facing
the internet needs on top lives here and nowhere else:

- one timer per connection, in phases: *idle* (no request yet, or between keep-alive
  requests), *headers* (first byte seen; a deadline from that byte, trickling does not
  extend it), *body* (a gap limit between bytes), *busy* (a request in progress: never timed
  out here). The timer never sleeps longer than the shortest timeout and checks deadlines
  when it wakes, so reading bytes never touches it (Twisted's idle timer is re-armed on
  every read);
- header limits (431, 414) and HTTP/1.1 strictness (400) answered with the standard body;
- answers given before routing (413, 503) that always reach the client, over plain
  HTTP/1.1, TLS and HTTP/2 (per stream, then ``RST_STREAM(NO_ERROR)``);
- the H1/H2 switch that puts these classes behind Twisted's ALPN negotiation.

Twisted internals used (pinned by the tests): ``HTTPChannel._respondToBadRequestAndDisconnect``,
``_receivedHeaderCount``/``_receivedHeaderSize``, ``_version``/``_path``/``_command``,
``LineReceiver._buffer``; ``_GenericHTTPChannelProtocol``'s private fields for the H2 switch;
``H2Connection._requestReceived``/``_requestDone``/``_tryToWriteControlData`` and friends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol
from twisted.web.http_headers import Headers

from ._limits import ConnectionLimits
from ._refusals import Header, error_body, raw_response

try:
    from h2.errors import ErrorCodes
    from h2.exceptions import StreamClosedError
    from twisted.web._http2 import H2Connection, H2Stream
except ImportError:  # pragma: no cover - h2 not installed: HTTP/1.1 only
    H2Connection = H2Stream = None  # type: ignore[assignment,misc]

# Connection phases.
IDLE = 0  # no request bytes yet (fresh, or between keep-alive requests)
HEADERS = 1  # request line / headers arriving
BODY = 2  # headers complete, body arriving
BUSY = 3  # the request is with the application
REFUSED = 4  # answered before routing (413/503); the rest of the body is read and dropped
DONE = 5  # closing: everything further is ignored

#: After a timeout or refusal, a peer that does not read our answer is cut off this much later.
ABORT_AFTER = 5.0
#: How long a refused upload may keep sending (discarded) before the connection closes.
LINGER_SECONDS = 2.0

_FOLD = b" \t"
_data_received = LineReceiver.dataReceived
_all_headers_received = HTTPChannel.allHeadersReceived
_all_content_received = HTTPChannel.allContentReceived
_request_done = HTTPChannel.requestDone
_line_received = HTTPChannel.lineReceived


def _stored_key(name: bytes) -> bytes | None:
    """The key Twisted's ``Headers`` keeps ``name`` under, if it still keeps a plain dict."""
    scratch = Headers()
    scratch.setRawHeaders(name, [b"x"])
    raw = getattr(scratch, "_rawHeaders", None)
    return next(iter(raw)) if isinstance(raw, dict) and len(raw) == 1 else None


_HOST_KEY = _stored_key(b"host")
_TE_KEY = _stored_key(b"transfer-encoding")
_DIRECT = _HOST_KEY is not None and _TE_KEY is not None


class CelloChannel(HTTPChannel):
    """HTTP/1.1 with SPEC_OPERATIONS §4's timeouts, limits and strictness.

    Per-site subclasses (``channel_class``) carry ``limits`` and ``clock``.
    """

    limits: ConnectionLimits = ConnectionLimits()
    clock: Any = None
    _period = 10.0

    _phase = IDLE
    _mark = 0.0  # when the current phase's deadline started counting
    _last = 0.0  # when the last bytes arrived
    _served = False  # a request completed on this connection (idle → keep-alive rules)
    _received = False  # any byte at all arrived
    _timer: Any = None
    _abort_call: Any = None

    # -- the connection timer -----------------------------------------------------------

    def connectionMade(self) -> None:
        self.timeOut = None  # Twisted's idle timer (re-armed on every read) is replaced by ours
        super().connectionMade()
        self._mark = self._last = self.clock.seconds()
        self._timer = self.callLater(self._period, self._tick)

    def _tick(self) -> None:
        self._timer = None
        phase = self._phase
        if phase >= BUSY:
            return  # busy: requestDone re-arms; refused/closing connections have their own deadline
        limits = self.limits
        if phase == IDLE:
            deadline = self._mark + (limits.keep_alive_timeout if self._served else limits.header_timeout)
        elif phase == HEADERS:
            deadline = self._mark + limits.header_timeout
        else:
            deadline = self._last + limits.body_timeout
        remaining = deadline - self.clock.seconds()
        if remaining > 0:
            self._timer = self.callLater(min(remaining, self._period), self._tick)
        elif phase == IDLE:
            self._close(None)
        elif phase == HEADERS:
            self._close(raw_response(408, f"Request headers not received within {limits.header_timeout:g} s"))
        else:
            self._close(raw_response(408, f"Request body stalled for more than {limits.body_timeout:g} s"))

    def _close(self, answer: bytes | None) -> None:
        """Answer (or not) and close, once; a peer that will not read is aborted a little later."""
        if self._phase == DONE:
            return
        self._phase = DONE
        transport: Any = self.transport
        if transport is None:
            return
        if answer is not None:
            self._emit(answer)
        self.loseConnection()
        if self._abort_call is None:
            self._abort_call = self.callLater(ABORT_AFTER, self._abort)

    def _emit(self, data: bytes) -> None:
        """Connection-level bytes (answers before routing); subclasses keep them in order."""
        transport: Any = self.transport
        transport.write(data)

    def _abort(self) -> None:
        self._abort_call = None
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def retire(self) -> None:
        """Stop the timer: the connection has been handed to another protocol (HTTP/2)."""
        self._phase = DONE
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._phase = DONE
        for call in (self._timer, self._abort_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._abort_call = None
        super().connectionLost(reason)

    # -- reading -------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        phase = self._phase
        if phase != BUSY:
            if phase == DONE:
                return
            now = self._last = self.clock.seconds()
            if phase <= HEADERS:
                if phase == IDLE:
                    self._phase = HEADERS
                    self._mark = now
                    self._received = True
                # obs-fold (a line starting with SP/HT) is rare: scan the bytes, and check
                # line by line only on connections where it may occur.
                if (b"\n " in data or b"\n\t" in data or (data[0] in _FOLD and not self._buffer)) and (
                    "lineReceived" not in self.__dict__
                ):
                    self.lineReceived = self._line_checking_folds  # type: ignore[method-assign]
        _data_received(self, data)
        # A nested call (a pipelined request replayed from requestDone inside the outer read)
        # only appends to the buffer: the outer call parses it, and checks it afterwards.
        if self._buffer and self.line_mode and self._phase <= HEADERS and not self._busyReceiving:
            if self._phase == IDLE:
                self._phase = HEADERS  # a partial pipelined request waits in the buffer
                self._mark = self._last
            if b"\n" in self._buffer:  # a bare LF would wait for a CRLF that never comes
                self._close(raw_response(400, "Lines must end with CRLF"))

    def _line_checking_folds(self, line: bytes) -> Any:
        if line and line[0] in _FOLD and self.requests:
            self._close(raw_response(400, "Obsolete header line folding is not accepted"))
            return None
        return _line_received(self, line)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self.requests:
            self._close(raw_response(431, f"Request headers exceed {self.limits.max_header_bytes} bytes"))
        else:
            self._close(raw_response(414, f"Request line exceeds {self.limits.max_header_bytes} bytes"))

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Twisted's parser errors, answered with the standard body (431 for its header limits)."""
        if self._receivedHeaderCount > self.maxHeaders:
            answer = raw_response(431, f"More than {self.maxHeaders} request headers")
        elif self._receivedHeaderSize > self.totalHeadersSize:
            answer = raw_response(431, f"Request headers exceed {self.totalHeadersSize} bytes")
        else:
            answer = raw_response(400, "Malformed request")
        self._close(answer)

    def allHeadersReceived(self) -> None:
        # RFC 9112 rules Twisted is lenient about (SPEC_OPERATIONS §4 r12), then Twisted's own
        # handling, where the request's gotLength may refuse it (413, 503).
        headers = self.requests[-1].requestHeaders
        if _DIRECT:  # two dict lookups on the hot path
            raw = headers._rawHeaders
            hosts = raw.get(_HOST_KEY)
            coded = raw.get(_TE_KEY) is not None
        else:
            hosts = headers.getRawHeaders(b"host")
            coded = headers.hasHeader(b"transfer-encoding")
        if hosts is None or len(hosts) != 1 or self._path[:1] != b"/":
            problem = self._host_or_target_problem(hosts)
            if problem is not None:
                self._close(raw_response(400, problem))
                return
        if coded:
            codings = headers.getRawHeaders(b"transfer-encoding")
            if len(codings) > 1 or codings[0].lower() != b"chunked" or headers.hasHeader(b"content-length"):
                self._close(raw_response(400, "Unsupported Transfer-Encoding"))
                return
        self._phase = BODY
        _all_headers_received(self)

    def _host_or_target_problem(self, hosts: Any) -> str | None:
        if hosts is None:
            if self._version == b"HTTP/1.1":
                return "Missing Host header"
        elif len(hosts) > 1:
            return "More than one Host header"
        target = self._path
        if target[:1] != b"/":
            if target == b"*" and self._command == b"OPTIONS":
                return None
            origin = _origin_form(target)
            if origin is None:
                return "Invalid request target"
            self._path = origin  # absolute-form routes on its path and query
        return None

    def allContentReceived(self) -> None:
        phase = self._phase
        if phase >= BUSY:
            if phase == REFUSED:  # the refused body has been read to its end: nothing unread remains
                self._close(None)
            return
        self._phase = BUSY  # the timer, when it next wakes, sleeps until requestDone re-arms it
        _all_content_received(self)

    def requestDone(self, request: Any) -> None:
        self._phase = IDLE
        self._served = True
        self._mark = self.clock.seconds()
        if self._timer is None and self.persistent:
            self._timer = self.callLater(self._period, self._tick)
        _request_done(self, request)

    # -- answers before routing ------------------------------------------------------------

    def refuse_request(self, request: Any, status: int, detail: str, headers: Sequence[Header] = ()) -> None:
        """Answer ``request`` now (413, 503) without reading its body into the app; then close.

        The rest of the body is read and dropped, so closing leaves nothing unread (unread
        bytes make the kernel send a RST that can destroy the answer). Over plain TCP a
        half-close tells the client at once that the answer is complete; over TLS a
        half-close would end the TLS session under the client, so there is none.
        """
        transport: Any = self.transport
        if transport is None or self._phase == DONE:
            return
        self._phase = REFUSED
        self.persistent = False
        self._emit(raw_response(status, detail, headers))
        if not ISSLTransport.providedBy(transport):
            half_close = getattr(transport, "loseWriteConnection", None)
            if half_close is not None:
                half_close()
        if self._abort_call is None:
            self._abort_call = self.callLater(LINGER_SECONDS, self._linger_over)

    def _linger_over(self) -> None:
        self._abort_call = None
        if self.transport is None:
            return
        if self._phase == DONE:  # closed already (body read to its end): abort if it still hangs on
            self._abort_call = self.callLater(ABORT_AFTER, self._abort)
        else:
            self._close(None)

    # -- for the graceful stop (SPEC_OPERATIONS §4 r10) -------------------------------------

    def connection_state(self) -> str:
        """``"fresh"`` (no byte yet), ``"idle"`` (no request, or a partial request line/headers)
        or ``"busy"`` (a request whose headers are complete)."""
        phase = self._phase
        if phase in (BODY, BUSY, REFUSED):
            return "busy"
        return "idle" if self._received else "fresh"

    def close_after_response(self) -> None:
        """Keep-alive ends with the response in progress (which says ``Connection: close``)."""
        self.persistent = False
        for request in self.requests:
            if not request.startedWriting:
                request.responseHeaders.setRawHeaders(b"connection", [b"close"])


def _origin_form(target: bytes) -> bytes | None:
    """``http://host/p?q`` → ``/p?q`` (RFC 9112 §3.2.2); None when it is no absolute URI."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme.lower() not in (b"http", b"https") or not parts.netloc:
        return None
    path = parts.path or b"/"
    return path + b"?" + parts.query if parts.query else path


def channel_class(limits: ConnectionLimits, clock: Any) -> type[CelloChannel]:
    """A CelloChannel subclass carrying one site's limits and clock."""
    attrs = {
        "limits": limits,
        "clock": clock,
        "_period": limits.shortest_timeout,
        "MAX_LENGTH": limits.max_header_bytes,
        "maxHeaders": limits.max_header_count,
        "totalHeadersSize": limits.max_header_bytes,
    }
    return type("CelloSiteChannel", (CelloChannel,), attrs)


# -- HTTP/2 --------------------------------------------------------------------------------

if H2Connection is not None:

    class CelloH2Stream(H2Stream):
        """A stream that can be refused (413, 503) while its request is being built."""

        _registered = False
        _pending: tuple[int, str, Sequence[Header]] | None = None

        def refuse_request(self, request: Any, status: int, detail: str, headers: Sequence[Header] = ()) -> None:
            if not self._registered:  # called from our own constructor (gotLength)
                self._pending = (status, detail, headers)
                return
            self._conn.refuse_stream(self.streamID, status, detail, headers)

    class CelloH2Connection(H2Connection):
        """HTTP/2 whose idle timer spares connections with streams open, and whose
        refusals end only their own stream."""

        def _requestReceived(self, event: Any) -> None:
            # Twisted's body, building our stream class.
            from collections import deque

            import priority  # type: ignore[import-untyped]
            from twisted.internet.defer import Deferred

            stream = CelloH2Stream(
                event.stream_id,
                self,
                event.headers,
                self.requestFactory,  # type: ignore[attr-defined]
                self.site,
                self.factory,
            )
            self.streams[event.stream_id] = stream
            self._streamCleanupCallbacks[event.stream_id] = Deferred()
            self._outboundStreamQueues[event.stream_id] = deque()
            try:
                self.priority.insert_stream(event.stream_id)
            except priority.DuplicateStreamError:
                pass
            else:
                self.priority.block(event.stream_id)
            stream._registered = True
            if stream._pending is not None:
                status, detail, headers = stream._pending
                self.refuse_stream(event.stream_id, status, detail, headers)

        def refuse_stream(self, stream_id: int, status: int, detail: str, headers: Sequence[Header]) -> None:
            """Answer on this stream only; reset it if the client is still uploading."""
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            body = error_body(status, detail)
            fields = [
                (b":status", b"%d" % status),
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ]
            try:
                if self.conn.local_flow_control_window(stream_id) >= len(body):
                    self.conn.send_headers(stream_id, fields)
                    self.conn.send_data(stream_id, body, end_stream=True)
                else:
                    self.conn.send_headers(stream_id, fields, end_stream=True)
            except StreamClosedError:
                pass
            try:
                self.conn.reset_stream(stream_id, error_code=ErrorCodes.NO_ERROR)
            except StreamClosedError:
                pass  # the upload had ended: the answer closed the stream
            if self._tryToWriteControlData():
                stream.connectionLost(Failure(ConnectionLost("request refused before routing")))
                self._requestDone(stream_id)

        # Events for a stream refused earlier in the same batch are dropped.
        def _requestDataReceived(self, event: Any) -> None:
            if event.stream_id in self.streams:
                super()._requestDataReceived(event)
            else:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

        def _requestEnded(self, event: Any) -> None:
            if event.stream_id in self.streams:
                super()._requestEnded(event)

        def _requestAborted(self, event: Any) -> None:
            if event.stream_id in self.streams:
                super()._requestAborted(event)

        def timeoutConnection(self) -> None:
            if self.streams:  # a request in progress (SSE included) is never timed out here
                self.setTimeout(self.timeOut)
                return
            super().timeoutConnection()

        def connection_state(self) -> str:
            return "busy" if self.streams else "idle"

        def close_after_response(self) -> None:
            pass

else:  # pragma: no cover
    CelloH2Connection = None  # type: ignore[assignment,misc]


class CelloProtocol(_GenericHTTPChannelProtocol):
    """Twisted's H1/H2 switch, switching to CelloH2Connection when ALPN picks ``h2``."""

    def dataReceived(self, data: bytes) -> Any:
        if self._negotiatedProtocol is None:
            channel: Any = self._channel  # a CelloChannel until the switch
            if getattr(channel.transport, "negotiatedProtocol", None) == b"h2" and CelloH2Connection is not None:
                self._switch_to_h2(channel)
            else:
                self._negotiatedProtocol = b"http/1.1"  # type: ignore[assignment]
                # From now on the transport hands bytes straight to the HTTP/1.1 channel.
                self.dataReceived = channel.dataReceived  # type: ignore[method-assign]
        return self._channel.dataReceived(data)

    def _switch_to_h2(self, old: CelloChannel) -> None:
        # Twisted's own switch, with our connection class and the old channel's timer stopped.
        producer: Any = old._networkProducer  # the transport, registered as a streaming producer
        producer.unregisterProducer()
        old.retire()
        transport = old.transport
        # The send loop runs on the Site's reactor; the idle timer on app.clock (callLater below).
        h2 = CelloH2Connection(reactor=getattr(self._site, "reactor", None))
        h2.requestFactory = self._requestFactory  # type: ignore[attr-defined]
        h2.site = self._site
        h2.factory = self._factory
        h2.timeOut = self._timeOut
        h2.callLater = self._callLater  # type: ignore[method-assign,assignment]
        self._channel = h2
        h2.makeConnection(transport)
        producer.registerProducer(h2, True)
        self._negotiatedProtocol = b"h2"  # type: ignore[assignment]

    def connection_state(self) -> str:
        channel: CelloChannel | CelloH2Connection = self._channel  # type: ignore[assignment]  # ours, per protocol()
        return channel.connection_state()

    def close_after_response(self) -> None:
        channel: CelloChannel | CelloH2Connection = self._channel  # type: ignore[assignment]  # ours, per protocol()
        channel.close_after_response()
