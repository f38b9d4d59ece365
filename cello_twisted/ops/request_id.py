"""Request IDs: keep a valid incoming ID or make one, and send it back (SPEC_OPERATIONS §5).

Every request pays this, so the default generator's work is done as the request is
built: ``request_class`` gives AppResource a Request subclass that reads the incoming
header and places the response header in its constructor, before any chain runs (no
link, no helper frame). A custom generator may fail, and its error must become a 500
that passes the chain, so it runs as the outermost link instead, as it does when a
Twisted release stops the direct header writes. Either way every response that passes
a chain carries the header (401/403/404/405/429/500 and middleware errors included),
and ``request.id`` is set before anything else runs: error bodies, the 500 log line
and the access log read it.
"""

from __future__ import annotations

import binascii
import os
import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..request import Request
from ..wire._headers import DIRECT_WRITES, header_relay, wire_name

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.web.server import Request as TwistedRequest

    from .._types import AppContext, ErrorHandler, Link, RouteView
    from ..request import AppView
    from ..response import Response

__all__ = ["RequestId", "VALID_ID", "new_id", "new_id_bytes"]

VALID_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
"""What an incoming ID must be to be kept: 1-128 characters of a safe set."""
_VALID_BYTES = re.compile(VALID_ID.pattern.encode("ascii"))

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


_BATCH = 256
_ids: list[bytes] = []  # made IDs not handed out yet
_take = _ids.pop  # atomic: threads never share an ID
_split_batch = struct.Struct("32s" * _BATCH).unpack  # 32 hex digits each, in one C call

_VERSION_4 = bytes(b & 0x0F | 0x40 for b in range(256))  # byte 6: version 4
_RFC_4122 = bytes(b & 0x3F | 0x80 for b in range(256))  # byte 8: the RFC 4122 variant


def _refill_and_take() -> bytes:
    """``_BATCH`` new IDs from one ``os.urandom`` call, with no Python loop per ID.

    A system call per request costs more than its own time (measured: ~2 µs per
    request in-process, against ~0.8 µs for the call alone); one per 256 IDs does not.
    """
    raw = bytearray(os.urandom(16 * _BATCH))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122)
    _ids.extend(_split_batch(binascii.hexlify(raw)))
    return _take()


def _forget_ids() -> None:
    """A forked child must not hand out its parent's IDs."""
    _ids.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ids)


def new_id_bytes() -> bytes:
    """``new_id()`` as the ASCII bytes that go into the response header."""
    try:
        return _take()
    except IndexError:
        return _refill_and_take()


def new_id() -> str:
    """The default generator: 32 lower-case hex characters of a random (version 4) UUID.

    The same bits as ``uuid.uuid4().hex`` (16 random bytes from ``os.urandom``, version
    and variant set), drawn from a batch.
    """
    return new_id_bytes().decode("ascii")


class RequestId:
    """``app.enable_request_id(...)``: ``request.id`` and the response header on every response."""

    native = True
    singleton = True

    def __init__(
        self,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        generator: Callable[[], str] | None = None,
    ) -> None:
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise ConfigError("RequestId.header", header, "an HTTP header name")
        if generator is not None and not callable(generator):
            raise ConfigError("RequestId.generator", generator, "a callable returning a str, or None")
        self.header = header
        self.trust_incoming = bool(trust_incoming)
        self.generator = generator or new_id
        keep = _VALID_BYTES.fullmatch if self.trust_incoming else None
        if generator is None:  # the batch's C-level pop, refilled when it runs out
            self._relay = header_relay(wire_name(header), keep, _take, _refill_and_take)
        else:
            self._relay = header_relay(wire_name(header), keep, self._generated)

    def request_class(self) -> type[Request] | None:
        """The Request subclass that takes its ID as it is built (used in place of ``link``
        when this instance is app-level middleware); None for a custom generator, or when
        headers are written through Twisted's public API."""
        if self.generator is not new_id or not DIRECT_WRITES:
            return None
        return _identified_request(wire_name(self.header), _VALID_BYTES.fullmatch if self.trust_incoming else None)

    def assign(self, request: Request) -> str:
        """Set the request's ID -- the incoming one when trusted and valid, else a new one --
        and put it in the response headers at once, so whatever answers sends it."""
        request.id_bytes = made = self._relay(request.raw)
        return made.decode("ascii")

    def link(
        self, call_next: Link, on_error: ErrorHandler, context: AppContext, route: RouteView | None = None
    ) -> Link:
        """The outermost link: the ID, then the chain; nothing to do on the way back.

        (A handler that sets the same header on its own response replaces it.)
        """
        relay = self._relay

        def with_id(request: Request) -> Response | Deferred[Response]:
            try:
                request.id_bytes = relay(request.raw)
                return call_next(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a response
                return on_error(request, exc)

        return with_id

    def _generated(self) -> bytes:
        """A custom generator's ID, checked: it goes into a header and the logs."""
        made = self.generator()
        if not isinstance(made, str) or not VALID_ID.fullmatch(made):
            raise ValueError(f"request ID generator returned {made!r}; expected 1-128 characters of [A-Za-z0-9._:+/=-]")
        return made.encode("ascii")

    def __call__(self, request: Request, call_next: Link) -> Response | Deferred[Response]:
        self.assign(request)  # composed by hand
        return call_next(request)

    def __repr__(self) -> str:
        return f"RequestId(header={self.header!r}, trust_incoming={self.trust_incoming})"


def _identified_request(key: bytes, keep: Callable[[bytes], object] | None) -> type[Request]:
    """A Request subclass whose constructor does ``header_relay``'s work inline.

    Its ``__init__`` repeats Request's five assignments instead of calling it: a call is
    the cost this class exists to save (a test checks that both set the same attributes).
    Twisted's header maps are written directly, as ``wire._headers`` does once its probe
    passed (``DIRECT_WRITES``), which ``RequestId.request_class`` checks.
    """
    take, refill = _take, _refill_and_take

    class IdentifiedRequest(Request):
        def __init__(self, raw: TwistedRequest, app: AppView, method: str, path: str, root_path: str = "") -> None:
            self.raw = raw
            self.app = app
            self.method = method
            self.path = path
            self.root_path = root_path
            if keep is not None:
                values = raw.requestHeaders._rawHeaders.get(key)
                if values and keep(values[0]):
                    raw.responseHeaders._rawHeaders[key] = [values[0]]
                    self.id_bytes = values[0]
                    return
            try:
                made = take()
            except IndexError:  # the batch ran out
                made = refill()
            raw.responseHeaders._rawHeaders[key] = [made]
            self.id_bytes = made

    return IdentifiedRequest
