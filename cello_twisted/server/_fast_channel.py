"""FastChannel: CelloChannel's HTTP/1.1 rules on llhttp (httptools), with less Python work per request.

Profiling a keep-alive hello request on Twisted's ``HTTPChannel`` put ~70% of the Python work in
line parsing, header maps and ``Request`` construction, and ~25% in the deferred write path.
This channel keeps the same ``twisted.web.server.Request`` objects, the same Resource tree and
every rule of ``CelloChannel`` (it subclasses it: timers, 400/408/413/414/431/503, graceful stop,
the H1/H2 switch), and changes only how bytes come in and go out:

- llhttp parses (C); its callbacks write header values straight into the request's header map;
- everything written while one read is handled (head + body, and the answers to pipelined
  requests) leaves in one send, and a send with nothing queued goes straight to the socket
  (no reactor write round, no ``epoll_ctl`` pair);
- the transport is paused only when pipelined bytes pile up behind a request in progress;
- the peer and host addresses are read once per connection (no ``getsockname`` per request).

Pipelining: llhttp parses every request in a read. While a request is with the application,
the parser's events for the requests behind it are recorded and replayed, in order, when it
finishes -- the same head-of-line order as Twisted, which buffers the raw bytes instead.

Twisted internals used (pinned by the tests, as in ``_channel``): ``Headers._rawHeaders``
(probed; ``addRawHeader`` otherwise), ``tcp.Server.writeSomeData`` and its write-buffer fields
``dataBuffer``/``_tempDataLen``/``_writeDisconnected``, ``HTTPChannel._networkProducer``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes as unquote

import httptools
from twisted.internet import tcp
from twisted.python.failure import Failure
from twisted.web.error import UnsupportedMethod
from twisted.web.http import NO_BODY_CODES, NO_CONTENT, NOT_MODIFIED, datetimeToString, parse_qs
from twisted.web.http import Request as _HttpRequest
from twisted.web.http_headers import Headers
from twisted.web.resource import _IEncodingResource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.server import version as _SERVER

from ._channel import BODY, BUSY, DONE, HEADERS, IDLE, REFUSED, CelloChannel
from ._limits import ConnectionLimits
from ._refusals import raw_response

_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
_WS = (0x20, 0x09)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MAX_CACHED = 1024


class _Halt(Exception):
    """Raised from a parser callback to stop llhttp: the connection is closing."""


def _canonical_key(name: bytes) -> bytes:
    """The key Twisted's ``Headers`` stores ``name`` under (Twisted canonicalises it)."""
    scratch = Headers()
    scratch.addRawHeader(name, b"")
    return next(iter(scratch.getAllRawHeaders()))[0]


_keys: dict[bytes, bytes] = {}


def _key(name: bytes) -> bytes:
    key = _keys.get(name)
    if key is None:
        key = _canonical_key(name)
        if len(_keys) < _MAX_CACHED:
            _keys[name] = key
    return key


def _direct_headers_work() -> bool:
    """Does a write into ``_rawHeaders`` read back as ``addRawHeader`` would have stored it,
    and does the map hold the names as they go on the wire?"""
    try:
        ours, theirs = Headers(), Headers()
        raw: Any = ours._rawHeaders
        for name, value in ((b"content-TYPE", b"a"), (b"X-Two", b"1"), (b"x-two", b"2")):
            raw.setdefault(_key(name), []).append(value)
            theirs.addRawHeader(name, value)
        return (
            list(ours.getAllRawHeaders()) == list(theirs.getAllRawHeaders())
            and list(theirs._rawHeaders.items()) == list(theirs.getAllRawHeaders())  # respond() serialises the map
            and ours.getRawHeaders(b"x-two") == [b"1", b"2"]
        )
    except Exception:  # noqa: BLE001 - any surprise means "use the public API"
        return False
    finally:
        _keys.clear()


_DIRECT = _direct_headers_work()
_SERVER_KEY = _key(b"server")
_DATE_KEY = _key(b"date")
_CT_KEY = _key(b"content-type")
_CL_KEY = _key(b"content-length")
_TE_KEY = _key(b"transfer-encoding")
_CONNECTION_KEY = _key(b"connection")
_COOKIE_KEY = _key(b"cookie")
_HOST_KEY = _key(b"host")
_EXPECT_KEY = _key(b"expect")

#: Parse errors whose cause has a clearer name than "Malformed request".
_DETAILS = (
    ("whitespace after header value", "Obsolete header line folding is not accepted"),
    ("Missing expected CR", "Lines must end with CRLF"),
    ("Expected CRLF", "Lines must end with CRLF"),
    ("Expected LF after CR", "Lines must end with CRLF"),
    ("Transfer-Encoding", "Unsupported Transfer-Encoding"),
    ("Content-Length", "Invalid Content-Length"),
)


def _detail(error: Exception) -> str:
    text = str(error)
    for needle, detail in _DETAILS:
        if needle in text:
            return detail
    return "Malformed request"


Event = tuple[Callable[..., None], tuple[Any, ...]]
_NOTHING_HELD: deque[Event] | None = None


def _sanitized(pairs: Any) -> Headers:
    headers = Headers()
    for name, value in pairs:
        headers.addRawHeader(name, value)
    return headers


class FastChannel(CelloChannel):
    """HTTP/1.1 on llhttp with CelloChannel's timeouts, limits and strictness.

    Per-site subclasses (``fast_channel_class``) carry ``limits`` and ``clock``.
    """

    _parser: Any = None
    _cork: list[bytes] | None = None  # bytes written while a read is being handled
    _held: deque[Event] | None = None  # parser events behind a request in progress
    _held_bytes = 0
    _reading_paused = False
    _replaying = False
    _broken = False  # no more parsing: the connection is closing or was taken over
    _handed_over = False  # Twisted's parser serves the rest of this connection
    _direct_send = False
    _url = b""
    _raw: dict[bytes, list[bytes]] | None = None
    _head_size = 0
    _header_count = 0
    _head_bytes = 0
    _in_line = True
    _clean_start = False  # no request was in progress when the current read started
    _begins = 0  # requests begun in the current read
    _peer: Any = None
    _host: Any = None

    # -- connection ----------------------------------------------------------------------

    def connectionMade(self) -> None:
        transport: Any = self.transport
        self._peer = transport.getPeer()
        self._host = transport.getHost()
        super().connectionMade()
        self._parser = httptools.HttpRequestParser(self)
        # Plain TCP: a write with nothing queued may go straight to the socket.
        self._direct_send = type(transport) is tcp.Server

    def getPeer(self) -> Any:
        return self._peer

    def getHost(self) -> Any:
        return self._host

    def loseConnection(self) -> Any:
        self._flush()
        return super().loseConnection()

    # -- writing -------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        transport: Any = self.transport
        if transport is None:
            return
        if (
            self._direct_send
            and not transport._tempDataLen
            and not transport.dataBuffer
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
        ):
            try:
                sent = transport.socket.send(data)
            except OSError:  # would block, or an error the reactor's write path will report
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)

    def _out(self, data: bytes) -> None:
        cork = self._cork
        if cork is not None:
            cork.append(data)
        else:
            self._send(data)

    def _flush(self) -> None:
        cork = self._cork
        if cork:
            self._cork = []
            self._send(b"".join(cork))

    def _emit(self, data: bytes) -> None:
        self._out(data)
        self._flush()

    def cork(self) -> bool:
        """Collect writes until ``uncork`` (True if this call started collecting)."""
        if self._cork is None:
            self._cork = []
            return True
        return False

    def uncork(self) -> None:
        cork, self._cork = self._cork, None
        if cork:
            self._send(b"".join(cork))

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if not isinstance(headers, Headers):  # Twisted's own backwards-compatible path
            headers = _sanitized(headers)
        parts = [version, b" ", code, b" ", reason]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (b"\r\n", name, b": ", value)
        parts.append(b"\r\n\r\n")
        self._out(b"".join(parts))

    def respond(self, version: bytes, code: bytes, reason: bytes, headers: Headers, body: bytes) -> None:
        """``writeHeaders`` and ``write(body)`` as one piece of bytes (FastRequest's whole responses)."""
        parts = [version, b" ", code, b" ", reason]  # joined once: no intermediate bytes per line
        try:
            # Nearly every header has one value: unpacking it skips an inner loop per line
            # (about a quarter of this method's cost per header).
            for name, (value,) in headers._rawHeaders.items():
                parts += (b"\r\n", name, b": ", value)
        except ValueError:  # a header with several values (or none): every value, in order
            parts = [version, b" ", code, b" ", reason]
            for name, values in headers.getAllRawHeaders():
                for value in values:
                    parts += (b"\r\n", name, b": ", value)
        parts += (b"\r\n\r\n", body)
        self._out(b"".join(parts))

    def write(self, data: bytes) -> None:
        self._out(data)

    def writeSequence(self, iovec: Any) -> None:
        self._out(b"".join(iovec))

    def _send100Continue(self) -> None:
        self._out(_CONTINUE)

    # -- reading -------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        phase = self._phase
        if phase == DONE or self._broken:
            if self._handed_over:
                CelloChannel.dataReceived(self, data)
            return
        if phase != BUSY:
            now = self._last = self.clock.seconds()
            if phase == IDLE:
                self._phase = HEADERS
                self._mark = now
                self._received = True
        if self._held is not None:  # a request is with the app: parse ahead, act later
            self._held_bytes += len(data)
            if self._held_bytes > self._optimisticEagerReadSize and not self._reading_paused:
                self._reading_paused = True
                self._networkProducer.pauseProducing()
        owner = self._cork is None
        if owner:
            self._cork = []
        try:
            self._feed(data)
            if self._held is not None and not self._handlingRequest and not self._replaying:
                self._replay()
        finally:
            if owner:
                self.uncork()
        if self._phase == HEADERS and not self._broken:
            self._head_bytes += len(data)
            limits = self.limits
            if self._head_bytes > limits.max_header_bytes + 2 * limits.max_header_count + 4:
                self._head_too_large()

    def _feed(self, data: bytes) -> None:
        self._clean_start = not self.requests
        self._begins = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.transport is None:  # taken over (WebSocket): the new protocol owns the connection
                self._broken = True
                return
            rest = data[upgrade.args[0] :]
            if rest:
                self._feed(rest)
        except httptools.HttpParserError as error:
            if self._broken or self._phase == DONE:
                return
            if isinstance(error, httptools.HttpParserInvalidMethodError) and self._can_hand_over():
                self._to_twisted_parser(data)
                return
            self._broken = True
            if self._held is not None:
                self._held.append((FastChannel._parse_failed, (error,)))
            else:
                self._parse_failed(error)

    def _can_hand_over(self) -> bool:
        """Did the request llhttp refused start this read, with nothing before it pending?"""
        return (
            self._clean_start
            and self._begins == 1
            and len(self.requests) == 1
            and self._held is None
            and not self._handlingRequest
        )

    def _to_twisted_parser(self, data: bytes) -> None:
        """A method llhttp does not know (``BREW``, lower case): Twisted's parser takes the
        connection over from here, so the app answers it (405) as it does on the stock layer."""
        self.requests.pop()  # created when llhttp saw the request start; Twisted makes its own
        self._raw = None
        self._parser = None
        self._handed_over = True
        self._broken = True  # the llhttp path is done: dataReceived forwards to Twisted's parser
        CelloChannel.dataReceived(self, data.lstrip(b"\r\n"))

    def _parse_failed(self, error: Exception) -> None:
        if self._in_line and self._url and len(self._url) > self.limits.max_header_bytes:
            self._close(raw_response(414, f"Request line exceeds {self.limits.max_header_bytes} bytes"))
        else:
            self._close(raw_response(400, _detail(error)))

    def _head_too_large(self) -> None:
        self._broken = True
        limit = self.limits.max_header_bytes
        if self._in_line:
            self._close(raw_response(414, f"Request line exceeds {limit} bytes"))
        else:
            self._close(raw_response(431, f"Request headers exceed {limit} bytes"))

    def _halt(self) -> None:
        self._broken = True
        raise _Halt()

    # -- llhttp callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_message_begin, ()))
            return
        if not self.persistent:  # bytes after a request that closes the connection are dropped
            self._halt()
        if self._phase == IDLE:
            self._phase = HEADERS
            self._mark = self._last
        self._url = b""
        self._begins += 1
        self._head_size = self._header_count = self._head_bytes = 0
        self._in_line = True
        request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)
        self._raw = request.requestHeaders._rawHeaders if _DIRECT else None

    def on_url(self, url: bytes) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_url, (url,)))
            return
        if self._url:
            url = self._url + url
        self._url = url
        if len(url) > self.limits.max_header_bytes:
            self._close(raw_response(414, f"Request line exceeds {self.limits.max_header_bytes} bytes"))
            self._halt()

    def on_header(self, name: bytes, value: bytes) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_header, (name, value)))
            return
        if self._in_line:
            self._in_line = False
            self._head_size = len(self._url) + 16
        if value and value[-1] in _WS:
            value = value.rstrip(b" \t")
        size = self._head_size = self._head_size + len(name) + len(value) + 2
        count = self._header_count = self._header_count + 1
        if count > self.maxHeaders:
            self._close(raw_response(431, f"More than {self.maxHeaders} request headers"))
            self._halt()
        if size > self.totalHeadersSize:
            self._close(raw_response(431, f"Request headers exceed {self.totalHeadersSize} bytes"))
            self._halt()
        raw = self._raw
        if raw is not None:
            key = _keys.get(name) or _key(name)
            values = raw.get(key)
            if values is None:
                raw[key] = [value]
            else:
                values.append(value)
        else:
            self.requests[-1].requestHeaders.addRawHeader(name, value)

    def on_headers_complete(self) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_headers_complete, ()))
            return
        self._in_line = False
        self._head_bytes = 0
        parser = self._parser
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            self._close(raw_response(400, "Unsupported HTTP version"))
            self._halt()
        self._command = parser.get_method()
        self._path = self._url
        self._version = version  # type: ignore[assignment]  # typing note: checked just above
        raw = self._raw
        if raw is not None:
            lengths = raw.get(_CL_KEY)
            coded = _TE_KEY in raw
        else:
            headers = self.requests[-1].requestHeaders
            lengths = headers.getRawHeaders(b"content-length")
            coded = headers.hasHeader(b"transfer-encoding")
        if lengths is not None:
            self.length = int(lengths[0])  # llhttp accepts digits only, and one value
        elif coded:
            self.length = None
        else:
            self.length = 0
        self.allHeadersReceived()
        if self._phase == DONE:
            self._halt()

    def on_body(self, body: bytes) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_body, (body,)))
            return
        self.requests[-1].handleContentChunk(body)

    def on_message_complete(self) -> None:
        held = self._held
        if held is not None:
            held.append((FastChannel.on_message_complete, ()))
            return
        phase = self._phase
        if phase != BODY:
            if phase == REFUSED:  # the refused body has been read to its end
                self._close(None)
            self._halt()
        if self._cork and self._parser.should_upgrade():
            self._flush()  # a protocol switch writes to the transport itself: answers before it go first
        self._phase = BUSY
        self._handlingRequest = True
        self.length = 0
        self.requests[-1].requestReceived(self._command, self._path, self._version)
        if self._handlingRequest:
            if self.transport is None:  # taken over (WebSocket after 101)
                self._halt()
            self._held = deque()

    def allHeadersReceived(self) -> None:
        """CelloChannel's strictness checks and Twisted's end-of-headers steps, on the parsed
        header dict (one lookup per rule instead of a header-map call)."""
        raw = self._raw
        if raw is None:
            return super().allHeadersReceived()
        hosts = raw.get(_HOST_KEY)
        if hosts is None or len(hosts) != 1 or self._path[:1] != b"/":
            problem = self._host_or_target_problem(hosts)
            if problem is not None:
                self._close(raw_response(400, problem))
                return None
        codings = raw.get(_TE_KEY)
        if codings is not None and (len(codings) > 1 or codings[0].lower() != b"chunked" or _CL_KEY in raw):
            self._close(raw_response(400, "Unsupported Transfer-Encoding"))
            return None
        self._phase = BODY
        request = self.requests[-1]
        request.parseCookies()
        self.persistent = self.checkPersistence(request, self._version)
        request.gotLength(self.length)
        expect = raw.get(_EXPECT_KEY)  # read after gotLength: a refusal removes it
        if expect and expect[0].lower() == b"100-continue" and self._version == b"HTTP/1.1":
            self._send100Continue()
        return None

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        """Twisted's keep-alive rule (HTTP/1.1 unless ``Connection: close``), one dict lookup."""
        raw = self._raw if self._parser is not None else None
        connection = raw.get(_CONNECTION_KEY) if raw is not None else request.requestHeaders.getRawHeaders(b"connection")
        if version != b"HTTP/1.1":
            return False
        if connection and b"close" in [t.lower() for t in connection[0].split(b" ")]:
            request.responseHeaders.setRawHeaders(b"Connection", [b"close"])
            return False
        return True

    # -- between requests ----------------------------------------------------------------

    def requestDone(self, request: Any) -> None:
        if self._handed_over:
            CelloChannel.requestDone(self, request)
            return
        self._phase = IDLE
        self._served = True
        self._mark = self.clock.seconds()
        if self._timer is None and self.persistent:
            self._timer = self.callLater(self._period, self._tick)
        requests = self.requests
        if requests[0] is not request:
            raise TypeError(request)
        del requests[0]
        if self._reading_paused and not self._waitingForTransport:
            self._reading_paused = False
            self._networkProducer.resumeProducing()
        if not self.persistent:
            self.loseConnection()
            return
        self._handlingRequest = False
        if self._held is not None and not self._replaying and self._cork is None:
            self._replay()

    def _replay(self) -> None:
        """Act on the parser events recorded behind the request that just finished."""
        held = self._held
        self._held = _NOTHING_HELD
        self._held_bytes = 0
        if not held:
            return
        self._replaying = True
        owner = self.cork()
        try:
            while held:
                method, args = held.popleft()
                method(self, *args)
                if self._held is not None:  # that one went to the app: the rest waits again
                    self._held = held
                    break
        except _Halt:
            self._held = None
        finally:
            self._replaying = False
            if owner:
                self.uncork()

    def connectionLost(self, reason: Any = None) -> None:
        self._cork = None
        self._held = None
        super().connectionLost(reason)


def fast_channel_class(limits: ConnectionLimits, clock: Any) -> type[FastChannel]:
    """A FastChannel subclass carrying one site's limits and clock."""
    attrs = {
        "limits": limits,
        "clock": clock,
        "_period": limits.shortest_timeout,
        "maxHeaders": limits.max_header_count,
        "totalHeadersSize": limits.max_header_bytes,
    }
    return type("CelloFastChannel", (FastChannel,), attrs)


_dates: list[Any] = [0, b""]


def _date() -> bytes:
    """Twisted's ``datetimeToString()`` for now, formatted once per second."""
    now = int(time.time())
    if now != _dates[0]:
        _dates[0] = now
        _dates[1] = datetimeToString(now)
    value: bytes = _dates[1]
    return value


_NO_CONTENT_TYPE = (NOT_MODIFIED, NO_CONTENT)


class _Rendered:
    """A body already rendered, handed to Twisted's render for its uncommon outcomes."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def render(self, request: Any) -> Any:
        return self.body


#: The attributes Twisted's Request.__init__ (26.x) sets; FastRequest.__init__ sets exactly these.
_INIT_ATTRIBUTES = frozenset(
    (
        "notifications",
        "channel",
        "client",
        "host",
        "requestHeaders",
        "received_cookies",
        "responseHeaders",
        "cookies",
        "transport",
        "queued",
        "_parsePOSTFormSubmission",
        "_adapterCache",
    )
)


def _twisted_init_attributes() -> frozenset[str]:
    """What Twisted's own constructor sets on a request (checked once at import)."""
    from twisted.web.server import Request

    class _Probe:
        transport = None
        site = None

        def getPeer(self) -> None:
            return None

        def getHost(self) -> None:
            return None

    try:
        return frozenset(vars(Request(_Probe(), parsePOSTFormSubmission=False)))
    except Exception:  # noqa: BLE001 - a changed constructor: use it as it is
        return frozenset()


_FLAT_INIT = _twisted_init_attributes() == _INIT_ATTRIBUTES

_http_write: Callable[[Any, bytes], None] = _HttpRequest.write
_SITE_LOOKUP = Site.getResourceFor


class FastRequest:
    """Request mixin for FastChannel's requests: Twisted's steps with fewer header-map calls.

    ``process`` writes ``Server`` and a once-per-second ``Date`` straight into the header map;
    the first ``write`` sends the head and the body in one call (the channel collects both).
    Over HTTP/2 (the same Site's requests) everything is Twisted's.
    """

    startedWriting: int
    channel: Any
    responseHeaders: Headers
    code: int
    defaultContentType: bytes | None
    _inFakeHead: bool
    site: Any
    path: bytes
    prepath: list[bytes]
    postpath: list[bytes]
    _encoder: Any
    _handleStar: Callable[[], None]
    _refused: bool
    _parsePOSTFormSubmission: bool
    content: Any
    method: bytes
    uri: bytes
    clientproto: bytes
    args: dict[bytes, list[bytes]]
    requestHeaders: Headers
    notifications: list[Any]
    client: Any
    host: Any
    received_cookies: dict[bytes, bytes]
    cookies: list[bytes]
    transport: Any
    queued: object
    _adapterCache: dict[Any, Any]
    finish: Callable[[], Any]
    sitepath: list[bytes]
    finished: int
    _disconnected: bool
    lastModified: Any
    etag: bytes | None
    code_message: bytes
    sentLength: int

    processingFailed: Callable[[Failure], Any]

    def __init__(self, channel: Any, queued: object = False, **kwargs: Any) -> None:
        # CelloRequest -> server.Request -> http.Request -> Componentized, in one frame: the
        # same attributes (a test compares them with Twisted's), for the channel's own call.
        if kwargs or not _FLAT_INIT:
            super().__init__(channel, queued, **kwargs)  # type: ignore[call-arg]
            return
        self.notifications = []
        self.channel = channel
        self.client = channel.getPeer()
        self.host = channel.getHost()
        self.requestHeaders = Headers()
        self.received_cookies = {}
        self.responseHeaders = Headers()
        self.cookies = []
        self.transport = channel.transport
        self.queued = queued
        self._parsePOSTFormSubmission = False
        self._adapterCache = {}

    def process(self) -> None:
        if _DIRECT:
            raw = self.responseHeaders._rawHeaders
            raw[_SERVER_KEY] = [_SERVER]
            raw[_DATE_KEY] = [_date()]
            # The rest is Twisted's Request.process.
            site = self.site = self.channel.site
            path = self.path
            self.prepath = []
            # unquote is the identity on a segment without "%": skip its call per segment.
            self.postpath = list(map(unquote, path[1:].split(b"/"))) if b"%" in path else path[1:].split(b"/")
            if path == b"*":
                self._handleStar()
                return
            try:
                root = site.resource
                if root.isLeaf and type(site).getResourceFor is _SITE_LOOKUP:
                    # Site.getResourceFor's outcome when the root is a leaf, without two calls.
                    self.sitepath = []
                    resrc = root
                else:
                    resrc = site.getResourceFor(self)
                if _IEncodingResource.providedBy(resrc):
                    encoder = resrc.getEncoder(self)
                    if encoder is not None:
                        self._encoder = encoder
                self.render(resrc)
            except BaseException:
                self.processingFailed(Failure())
        else:  # pragma: no cover - depends on the Twisted release
            super().process()  # type: ignore[misc]

    def render(self, resrc: Any) -> None:
        # Twisted's Request.render; a bytes body for a non-HEAD request gets its Content-Length
        # with one dict write. Every other outcome goes through Twisted's own code.
        if not _DIRECT:  # pragma: no cover - depends on the Twisted release
            return super().render(resrc)  # type: ignore[misc,no-any-return]
        try:
            body = resrc.render(self)
        except UnsupportedMethod:
            return super().render(resrc)  # type: ignore[misc,no-any-return]  # Twisted's 405/501 (and HEAD via GET)
        if body is NOT_DONE_YET:
            return None
        if type(body) is not bytes or self.method == b"HEAD":
            return super().render(_Rendered(body))  # type: ignore[misc,no-any-return]
        raw = self.responseHeaders._rawHeaders
        raw[_CL_KEY] = [b"%d" % len(body)]
        respond = getattr(self.channel, "respond", None)
        if (
            respond is None  # an HTTP/2 stream
            or self.startedWriting
            or self._encoder
            or self._inFakeHead
            or self.finished
            or self._disconnected
            or self.lastModified is not None
            or self.etag is not None
            or self.cookies
            or self.code in NO_BODY_CODES
        ):
            self.write(body)
        else:
            # Request.write's first call for this case (a Content-Length, no chunking, no
            # cookies or validators to add), with head and body handed over as one piece.
            self.startedWriting = 1
            if body and self.code not in _NO_CONTENT_TYPE and _CT_KEY not in raw and self.defaultContentType is not None:
                raw[_CT_KEY] = [self.defaultContentType]
            respond(self.clientproto, b"%d" % self.code, self.code_message, self.responseHeaders, body)
            self.sentLength += len(body)
        self.finish()
        return None

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # Twisted's requestReceived without form parsing (off for every cello request) and
        # without its Content-Type lookup, which only form parsing needs.
        if self._refused or self._parsePOSTFormSubmission:
            return super().requestReceived(command, path, version)  # type: ignore[misc,no-any-return]
        content = self.content
        if content is not None:
            content.seek(0, 0)
        self.method, self.uri = command, path
        self.clientproto = version
        target, mark, query = path.partition(b"?")
        self.path = target
        self.args = parse_qs(query, 1) if mark else {}
        self.process()

    def parseCookies(self) -> None:
        if _DIRECT and _COOKIE_KEY not in self.requestHeaders._rawHeaders:
            return
        super().parseCookies()  # type: ignore[misc]

    def write(self, data: bytes) -> None:
        if self.startedWriting:
            return super().write(data)  # type: ignore[misc,no-any-return]
        channel = self.channel
        cork = getattr(channel, "cork", None)
        if cork is None or not _DIRECT or self._inFakeHead:  # HTTP/2 streams; faked HEAD
            return super().write(data)  # type: ignore[misc,no-any-return]
        # server.Request.write's default Content-Type, with dict lookups; then http.Request.write.
        raw = self.responseHeaders._rawHeaders
        if self.code not in _NO_CONTENT_TYPE and _CT_KEY not in raw and self.defaultContentType is not None:
            length = raw.get(_CL_KEY)
            if not (length and length[0] == b"0"):
                raw[_CT_KEY] = [self.defaultContentType]
        if self._encoder:
            data = self._encoder.encode(data)
        if not cork():
            _http_write(self, data)
            return None
        try:
            _http_write(self, data)
        finally:
            channel.uncork()
        return None
