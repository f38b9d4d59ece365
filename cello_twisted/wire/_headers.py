"""Fast writes into a Twisted request's response-header map.

``Headers.setRawHeaders`` re-validates and re-canonicalises the name and
sanitises every value on every call. Our header names repeat, so each one is
validated by Twisted once -- through ``setRawHeaders`` itself, on a scratch
``Headers`` -- and the key Twisted chose is remembered (``wire_name``). Values
get the same treatment Twisted gives them: UTF-8, with line breaks turned into
spaces so a value can never inject a header line.

If a Twisted release stops keeping headers in a ``_rawHeaders`` dict the way the
probe below expects, the probe fails at import and every write goes through the
public ``setRawHeaders`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from twisted.web.http_headers import Headers as _TwistedHeaders

_MAX_CACHED = 1024
_keys: dict[str, bytes] = {}


def _wire_key(name: str) -> bytes:
    """The key Twisted itself stores ``name`` under (raises InvalidHeaderName)."""
    key = _keys.get(name)
    if key is None:
        scratch = _TwistedHeaders()
        scratch.setRawHeaders(name, [b""])
        (key,) = scratch._rawHeaders
        if len(_keys) < _MAX_CACHED:
            _keys[name] = key
    return key


def _wire_value(value: str) -> bytes:
    # isprintable() is False for every line break (and other controls): the rare slow path.
    if value.isprintable():
        return value.encode()
    return b" ".join(value.encode().splitlines())


def _fast_set_all(headers: _TwistedHeaders, items: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Replace each named header's values: ``items`` is ``[(name, [str values]), ...]``."""
    raw = headers._rawHeaders
    keys = _keys
    for name, values in items:
        key = keys.get(name) or _wire_key(name)
        if len(values) == 1:  # the usual case, without a comprehension's frame
            value = values[0]
            raw[key] = [value.encode() if value.isprintable() else _wire_value(value)]
        else:
            raw[key] = [_wire_value(v) for v in values]


def _fast_set_encoded(headers: _TwistedHeaders, encoded: Mapping[bytes, list[bytes]]) -> None:
    """Replace headers from ``{wire_name(name): [header-safe bytes]}``: one C-level update."""
    headers._rawHeaders.update(encoded)


_content_types: dict[str, list[bytes]] = {}


def _fast_set_content_type(headers: _TwistedHeaders, value: str) -> None:
    """Replace Content-Type."""
    # A handful of content types cover nearly every response: encode each once.
    encoded = _content_types.get(value)
    if encoded is None:
        encoded = [_wire_value(value)]
        if len(_content_types) < _MAX_CACHED:
            _content_types[value] = encoded
    headers._rawHeaders[_CONTENT_TYPE] = encoded[:]


def _public_set_all(headers: _TwistedHeaders, items: Iterable[tuple[str, Sequence[str]]]) -> None:
    for name, values in items:
        headers.setRawHeaders(name, list(values))


def _public_set_encoded(headers: _TwistedHeaders, encoded: Mapping[bytes, list[bytes]]) -> None:
    for name, values in encoded.items():
        headers.setRawHeaders(name, list(values))


def _public_set_content_type(headers: _TwistedHeaders, value: str) -> None:
    headers.setRawHeaders("Content-Type", [value])


def _fast_path_works() -> bool:
    """Does a direct write read back exactly as ``setRawHeaders`` would have stored it?"""
    try:
        ours, theirs = _TwistedHeaders(), _TwistedHeaders()
        sample = [("X-Cello-Probe", ["a\r\nb"]), ("Content-Type", ["text/plain"]), ("X-Cello-Two", ["1", "2"])]
        _fast_set_all(ours, sample)
        _public_set_all(theirs, sample)
        _fast_set_content_type(ours, "text/plain")
        _fast_set_encoded(ours, {_wire_key("x-cello-THREE"): [b"3"]})
        theirs.setRawHeaders(b"X-Cello-Three", [b"3"])
        return (
            list(ours.getAllRawHeaders()) == list(theirs.getAllRawHeaders())
            and ours.getRawHeaders(b"x-cello-probe") == [b"a b"]
            and ours.getRawHeaders(b"content-type") == [b"text/plain"]
            and ours.getRawHeaders(b"x-cello-three") == [b"3"]
        )
    except Exception:  # noqa: BLE001 - any surprise means "use the public API"
        return False
    finally:
        _keys.clear()
        _content_types.clear()


try:
    _CONTENT_TYPE = _wire_key("Content-Type")
except Exception:  # noqa: BLE001 - the probe below will pick the public API
    _CONTENT_TYPE = b"Content-Type"
_FAST = _fast_path_works()
DIRECT_WRITES = _FAST
"""True when headers are written straight into Twisted's ``_rawHeaders`` dict."""

if _FAST:
    set_headers: Any = _fast_set_all
    set_content_type: Any = _fast_set_content_type
    set_encoded_headers: Any = _fast_set_encoded
else:  # pragma: no cover - depends on the Twisted release
    set_headers = _public_set_all
    set_content_type = _public_set_content_type
    set_encoded_headers = _public_set_encoded


def wire_name(name: str) -> bytes:
    """The bytes key to use for ``name`` in an encoded-headers dict (computed once, at start-up)."""
    return _wire_key(name) if _FAST else name.encode("latin-1")


def _fast_request_header(twreq: Any, key: bytes) -> list[bytes] | None:
    """The values of request header ``key`` (a ``wire_name``), or None: one dict lookup."""
    values: list[bytes] | None = twreq.requestHeaders._rawHeaders.get(key)
    return values


def _public_request_header(twreq: Any, key: bytes) -> list[bytes] | None:
    values = twreq.requestHeaders.getRawHeaders(key)
    return list(values) if values else None


if _FAST:
    request_header: Any = _fast_request_header
else:  # pragma: no cover - depends on the Twisted release
    request_header = _public_request_header


def header_relay(
    key: bytes,
    keep: Callable[[bytes], object] | None,
    make: Callable[[], bytes],
    refill: Callable[[], bytes] | None = None,
) -> Callable[[Any], bytes]:
    """A function of a Twisted request that answers with the request's own header ``key``.

    The function sends back the request's first ``key`` value when ``keep(value)`` is
    true (``keep`` None: never), and otherwise a header-safe value from ``make()``.
    The value goes into the response headers and is also returned. With ``refill``,
    ``make`` may be a C-level take from a supply (``list.pop``) that raises IndexError
    when the supply is empty; ``refill()`` restocks it and returns one value. Request
    IDs pay this on every request, so the fast form does it in one frame, with two dict
    operations.
    """
    if keep is None:
        keep = _never

    if not _FAST:  # pragma: no cover - depends on the Twisted release

        def made() -> bytes:
            try:
                return make()
            except IndexError:
                if refill is None:
                    raise
                return refill()

        def relay_public(twreq: Any) -> bytes:
            values = _public_request_header(twreq, key)
            value = values[0] if values and keep(values[0]) else made()
            twreq.responseHeaders.setRawHeaders(key, [value])
            return value

        return relay_public

    def relay(twreq: Any) -> bytes:
        values = twreq.requestHeaders._rawHeaders.get(key)
        if values and keep(values[0]):
            value: bytes = values[0]
        else:
            try:
                value = make()
            except IndexError:
                if refill is None:
                    raise
                value = refill()
        twreq.responseHeaders._rawHeaders[key] = [value]
        return value

    return relay


def _never(value: bytes) -> bool:
    return False
