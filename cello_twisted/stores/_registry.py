"""The shared-state objects (Redis stores, broadcasts) open in this process, for a graceful stop.

Stores register themselves when built, so the server can close each one exactly once
after in-flight requests have finished (SPEC §12 r6) without knowing where the app
keeps them.
"""

from __future__ import annotations

import weakref
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.logger import Logger

_log = Logger(namespace="cello_twisted.stores")
_open: weakref.WeakSet[Any] = weakref.WeakSet()


def track(resource: Any) -> None:
    """Remember ``resource`` (anything with ``close()``) until it is closed or collected."""
    _open.add(resource)


def close_all() -> Deferred[Any]:
    """Call ``close()`` once on every tracked resource; fires when all have finished."""
    resources = list(_open)
    _open.clear()
    calls = [maybeDeferred(r.close).addErrback(_log_failure, r) for r in resources]
    return DeferredList(calls)


def _log_failure(failure: Any, resource: Any) -> None:
    _log.failure("closing {resource!r} failed", failure, resource=resource)
