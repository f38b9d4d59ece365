"""WebSocket routes: the handler-facing socket and message, and the autobahn-backed server."""

from .._lazy import lazy_exports

_LAZY = {
    "WebSocket": "._socket",
    "WebSocketMessage": "._socket",
    "close_all": "._server",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
