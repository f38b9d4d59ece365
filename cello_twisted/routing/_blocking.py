"""Spot plain handlers that hold the reactor (SPEC_OPERATIONS §11 r9).

A plain ``def`` handler runs on the reactor thread: while it runs, every other
request of the worker waits. The compiled endpoint reads ``perf_counter`` around the
call (two cheap clock reads, no allocation) and hands the elapsed time here; a route
that takes longer than ``BLOCKING_THRESHOLD`` is logged once, with its path and the
advice to use ``threaded=True``.
"""

from __future__ import annotations

import inspect
from time import perf_counter
from typing import Any

from twisted.logger import Logger

_log = Logger(namespace="cello_twisted.blocking")

BLOCKING_THRESHOLD = 1.0  # seconds a plain handler may hold the reactor before we say so

class BlockingWatch:
    """Per route: log the first call that held the reactor too long, then stay quiet."""

    __slots__ = ("method", "path", "name", "warned")

    def __init__(self, method: str, path: str, name: str | None) -> None:
        self.method = method
        self.path = path
        self.name = name or "handler"
        self.warned = False

    def held(self, seconds: float) -> None:
        """Called with the duration of a call that exceeded the threshold."""
        if self.warned:
            return
        self.warned = True
        _log.warn(
            "{method} {path}: handler {name!r} held the reactor for {seconds:.1f} s; every other request of "
            "this process waited meanwhile. Run blocking work with threaded=True (or make the handler async). "
            "Logged once per route.",
            method=self.method,
            path=self.path,
            name=self.name,
            seconds=seconds,
        )


def watch_for(spec: Any, path: str) -> BlockingWatch | None:
    """A watch for plain (not threaded, not async) handlers; None for the others."""
    if spec.threaded or inspect.iscoroutinefunction(spec.handler):
        return None
    return BlockingWatch(spec.method, path, spec.name)


def timed_call(call: Any, watch: BlockingWatch) -> Any:
    """``call`` measured, for the guarded endpoint (the unguarded one inlines this)."""

    def measured(request: Any) -> Any:
        start = perf_counter()
        try:
            return call(request)
        finally:
            elapsed = perf_counter() - start
            if elapsed > BLOCKING_THRESHOLD:
                watch.held(elapsed)

    return measured
