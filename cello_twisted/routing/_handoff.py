"""Hand a request to a twisted.web resource: mounts and handlers returning an ``IResource``.

The resource is reached through Twisted's own ``getChildForRequest`` and rendered
with the Twisted request's own ``render`` (HEAD, 405/501, ``NOT_DONE_YET``, framing
exactly as under a plain Site). What cello adds around it (SPEC_OPERATIONS §13):

- the headers the middleware chain put on the app's response (CORS, security
  headers, rate-limit counters, cookies) are copied onto the Twisted request
  before the resource renders, so they are on whatever the resource sends;
- ``prepath``/``postpath`` say which part of the path the mount or route took;
- a resource that raises, or reports a failure through
  ``request.processingFailed``, gives the app's JSON 500, never Twisted's HTML
  traceback page; after the response has started the connection is cut instead.

This module imports nothing that imports ``response.py``: ``to_response`` builds
the Response that carries a ``ResourceStreamer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import getChildForRequest
from twisted.web.server import NOT_DONE_YET

from .. import _json
from ..errors import internal_error_body
from ..wire._stream import Streamer
from ._pattern import parse_pattern

if TYPE_CHECKING:
    from twisted.web.resource import IResource
    from twisted.web.server import Request as TwistedRequest

    from ..request import Request
    from ..wire._stream import ResponseHead

_log = Logger(namespace="cello_twisted.resources")


def split_at(postpath: Sequence[bytes], segments: Sequence[bytes]) -> int | None:
    """Index in ``postpath`` just past ``segments``, or None if the path does not start with them.

    Empty segments (doubled or trailing slashes) are skipped while matching, as the
    router skips them; ``postpath`` holds Twisted's unquoted segments, so ``%2F``
    stays inside one segment and never matches a prefix boundary.
    """
    wanted = len(segments)
    if wanted == 0:
        return 0
    matched = 0
    for index, segment in enumerate(postpath):
        if not segment:
            continue
        if segment != segments[matched]:
            return None
        matched += 1
        if matched == wanted:
            return index + 1
    return None


@lru_cache(maxsize=1024)
def route_shape(path: str) -> tuple[int, bool]:
    """(segments a route pattern consumes before its wildcard, whether it has a wildcard)."""
    segments = parse_pattern(path)
    wild = bool(segments) and segments[-1].kind == "wild"
    return len(segments) - wild, wild


class ResourceStreamer(Streamer):
    """The body of a response handed to a twisted.web resource (a takeover: Twisted writes it).

    Args:
        resource: any ``IResource``.
        consumed: path segments (after the embedding prefix) the mount took; None for a
            handler's resource, where the matched route's pattern decides.
    """

    takeover = True

    def __init__(self, resource: IResource, consumed: int | None = None) -> None:
        self.resource = resource
        self.consumed = consumed
        self.request: Request | None = None
        self.keep_rest = True
        self.sent: list[tuple[bytes, list[bytes]]] = []
        self.closed = False

    def prepare(self, request: Request, response: ResponseHead) -> None:
        """Put the chain's headers on the Twisted request; work out what the path consumed."""
        self.request = request
        outgoing = request.raw.responseHeaders
        for name, values in response.headers.raw_items():
            outgoing.setRawHeaders(name, list(values))
        self.sent = [(name, list(values)) for name, values in outgoing.getAllRawHeaders()]
        if self.consumed is None:
            route = request.route
            if route is None:  # a resource returned by middleware on an unmatched path
                self.consumed = 0
            else:
                self.consumed, self.keep_rest = route_shape(route.path)

    def start(self, twreq: TwistedRequest) -> Any:
        """Traverse and render the resource; always ``NOT_DONE_YET`` (Twisted finishes it)."""
        twreq.notifyFinish().addBoth(self._closed)
        postpath: list[bytes] = list(twreq.postpath or ())
        split = _index_after(postpath, self.consumed or 0)
        prepath: list[bytes] = list(twreq.prepath or ())
        twreq.prepath = prepath + [s for s in postpath[:split] if s]
        twreq.postpath = postpath[split:] if self.keep_rest else []
        content = twreq.content
        if content is not None:
            content.seek(0)  # the chain may have read the body already
        # Resources report asynchronous failures here (DeferredResource does): answer
        # them as the app answers errors, not with Twisted's HTML page.
        twreq.processingFailed = self.failed  # type: ignore[method-assign]  # typing note: an instance override, for this request only
        try:
            child = getChildForRequest(self.resource, twreq)
            twreq.render(child)
        except Exception:  # noqa: BLE001 - a raising resource becomes the app's 500
            self.failed(Failure())
        return NOT_DONE_YET

    def failed(self, reason: Failure) -> None:
        """The resource failed: the app's JSON 500 if nothing was sent yet, else cut the connection."""
        request = self.request
        twreq = request.raw if request is not None else None
        _log.failure(
            "Unhandled error in the resource for {method} {path}",
            failure=reason,
            method=request.method if request is not None else "?",
            path=request.path if request is not None else "?",
        )
        if self.closed or twreq is None:
            return
        if twreq.startedWriting:
            twreq.loseConnection()
            return
        outgoing = twreq.responseHeaders
        for name, _values in list(outgoing.getAllRawHeaders()):
            outgoing.removeHeader(name)
        for name, values in self.sent:
            outgoing.setRawHeaders(name, values)
        debug = bool(request.app.debug) if request is not None else False
        exc = reason.value if reason.value is not None else RuntimeError("resource failed")
        request_id = request.id if request is not None else None
        body = _json.dumpb(internal_error_body(exc, debug, request_id))
        twreq.setResponseCode(500)
        outgoing.setRawHeaders(b"content-type", [b"application/json"])
        outgoing.setRawHeaders(b"content-length", [b"%d" % len(body)])
        if twreq.method != b"HEAD":
            twreq.write(body)
        twreq.finish()

    def _closed(self, _result: object) -> None:
        self.closed = True  # finished, or the client went away: nothing more to write

    def stop(self) -> None:
        """The client left before the resource started: there is nothing to release."""


def _index_after(postpath: Sequence[bytes], count: int) -> int:
    """Index in ``postpath`` just past its first ``count`` non-empty segments."""
    if count == 0:
        return 0
    seen = 0
    for index, segment in enumerate(postpath):
        if segment:
            seen += 1
            if seen == count:
                return index + 1
    return len(postpath)
