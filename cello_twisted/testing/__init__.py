"""The in-memory test client: real HTTP bytes through the app, no sockets."""

from .._lazy import lazy_exports

_LAZY = {
    "TestClient": "._client",
    "TestResponse": "._response",
    "ResponseNotReady": "..errors",  # v0.4 exported it here; docs/testing.md names it
    "StreamingTestResponse": "._sse",
    "TestWebSocket": "._websocket",
    "WebSocketRejected": "._websocket",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
