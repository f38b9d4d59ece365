"""Framework middleware. Each is ``mw(request, call_next)``; order = registration order.

The first registered sees the request first and the response last. A middleware
that returns without calling ``call_next`` short-circuits; its value is converted
like a handler's. Exceptions become error responses before outer middleware sees
them, so outer layers (CORS, security headers, logging) always get a Response.
"""

from .._lazy import lazy_exports

_LAZY = {
    "JwtAuth": ".jwt",
    "JwtConfig": ".jwt",
    "RateLimit": ".ratelimit",
    "RateLimitConfig": ".ratelimit",
    "Sessions": ".session",
    "SessionConfig": ".session",
    "SecurityHeaders": ".security_headers",
    "SecurityHeadersConfig": ".security_headers",
    "CSP": ".security_headers",
    "Cors": ".cors",
    "CorsConfig": ".cors",
    "Compression": ".compression",
    "RequestLogging": ".logging",
    "Csrf": ".csrf",
    "CsrfConfig": ".csrf",
    "StaticFilesConfig": "..static._mount",
    "TlsConfig": "..server._tls",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
