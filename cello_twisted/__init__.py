"""cello_twisted: the Cello web framework's Python API on Twisted.

Importing this package never imports (and so never installs) the reactor.
"""

from ._lazy import lazy_exports
from .app import App
from .blueprint import Blueprint
from .errors import (
    BadRequestError,
    ConfigError,
    ForbiddenError,
    GuardError,
    HTTPError,
    InsecureSecretWarning,
    InvalidTokenError,
    SessionTooLargeError,
    UnauthorizedError,
    WebSocketClosed,
)
from .guards import And, Authenticated, Guard, Not, Or, PermissionGuard, RoleGuard
from .request import Request
from .response import Response

__version__ = "0.4.0"

_LAZY = {
    "JwtConfig": ".middleware.jwt",
    "RateLimitConfig": ".middleware.ratelimit",
    "SessionConfig": ".middleware.session",
    "SecurityHeadersConfig": ".middleware.security_headers",
    "CSP": ".middleware.security_headers",
    "CsrfConfig": ".middleware.csrf",
    "CorsConfig": ".middleware.cors",
    "TlsConfig": ".server._tls",
    "StaticFilesConfig": ".static._mount",
    "SseEvent": ".sse._events",
    "SseStream": ".sse._events",
    "WebSocket": ".websocket._socket",
    "WebSocketMessage": ".websocket._socket",
    "UploadedFile": ".forms",
    "FormData": ".forms",
    "Broadcast": ".broadcast._broadcast",
    "BroadcastOverflow": ".broadcast._overflow",
}
__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "App",
    "Blueprint",
    "Request",
    "Response",
    "JwtConfig",
    "RateLimitConfig",
    "SessionConfig",
    "SecurityHeadersConfig",
    "CSP",
    "TlsConfig",
    "CsrfConfig",
    "CorsConfig",
    "StaticFilesConfig",
    "SseEvent",
    "SseStream",
    "WebSocket",
    "WebSocketMessage",
    "UploadedFile",
    "FormData",
    "Broadcast",
    "BroadcastOverflow",
    "HTTPError",
    "BadRequestError",
    "InvalidTokenError",
    "InsecureSecretWarning",
    "SessionTooLargeError",
    "WebSocketClosed",
    "Guard",
    "RoleGuard",
    "PermissionGuard",
    "Authenticated",
    "And",
    "Or",
    "Not",
    "GuardError",
    "ForbiddenError",
    "UnauthorizedError",
    "ConfigError",
    "__version__",
]
