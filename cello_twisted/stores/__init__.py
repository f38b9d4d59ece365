"""State shared by middleware: in-memory defaults (per process) and Redis (shared)."""

from .._lazy import lazy_exports

_LAZY = {
    "MemoryTokenBlacklist": ".tokens",
    "MemorySessionStore": ".sessions",
    "MemoryRateLimitStore": ".ratelimit",
    "RateLimitResult": ".ratelimit",
    "RedisTokenBlacklist": ".redis",
    "RedisSessionStore": ".redis",
    "RedisRateLimitStore": ".redis",
    "SharedStoreUnavailable": ".redis",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
