"""The Streamer contract: a body written to Twisted after the headers (files, SSE, upgrades).

It sits below ``response.py`` so that the streamers of files and SSE events never
import the Response they are attached to; they see it through ``ResponseHead``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twisted.web.server import Request as TwistedRequest

    from .._headers import Headers
    from ..request import Request


class ResponseHead(Protocol):
    """What a streamer may adjust before the headers go out: status, type and headers."""

    status: int
    content_type: str | None

    @property
    def headers(self) -> Headers: ...


class Streamer:
    """A body written after the headers (files, SSE).

    ``prepare`` may adjust status and headers (ranges, 304) before they are sent;
    ``start`` writes the body to the Twisted request and finishes it, returning a
    Deferred; ``stop`` is called when the client disconnects first.
    """

    buffered = False  # compression and similar whole-body transforms skip streamers
    takeover = False  # True: the connection changes protocol (WebSocket 101), no HTTP body from us

    def prepare(self, request: Request, response: ResponseHead) -> None:
        """Adjust ``response`` for ``request`` before headers go out."""

    def start(self, twreq: TwistedRequest) -> Any:
        """Write the body and finish; usually a Deferred that fires when done."""
        raise NotImplementedError

    def stop(self) -> None:
        """Release resources after a disconnect."""
