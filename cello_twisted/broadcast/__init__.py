"""Broadcast: publish a message once, every subscriber in every worker and machine receives it."""

from .._lazy import lazy_exports

_LAZY = {
    "Broadcast": "._broadcast",
    "BroadcastOverflow": "._overflow",
    "Subscription": "._subscription",
}
__getattr__ = lazy_exports(__name__, _LAZY)
__all__ = sorted(_LAZY)
