"""Server-Sent Events: the event values, and the streamer that writes them to a client."""

from .._lazy import lazy_exports

_LAZY = {
    "SseEvent": "._events",
    "SseStream": "._events",
    "sse_response": "..response",
    "close_streams": "._streamer",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
