"""Liveness and readiness endpoints that follow the server's life (SPEC_OPERATIONS §6).

``{path}/live`` answers while the process serves. ``{path}/ready`` is 503 while the
app starts (hooks, lifespan) or drains (a graceful stop began), and otherwise runs
the checks concurrently, each bounded by ``timeout``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.python.failure import Failure

from .. import _json
from .._validators import fail
from ..response import JSON_TYPE, Response

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..request import Request
    from ..server._lifecycle import Lifecycle

__all__ = ["Health", "HealthCheck"]

HealthCheck = Callable[[], "bool | None | Deferred[Any] | Awaitable[Any]"]
"""A readiness check: passes unless it raises, fails, or returns ``False``."""


class HealthApp(Protocol):
    """What health uses of an App (declared here: app.py sits above ops/)."""

    lifecycle: Lifecycle

    @property
    def clock(self) -> IReactorTime: ...


class Health:
    """``app.enable_health(...)``: the /live and /ready handlers and their settings."""

    def __init__(
        self,
        app: HealthApp,
        path: str = "/health",
        checks: Mapping[str, HealthCheck] | None = None,
        timeout: float = 2.0,
        drain_delay: float = 5.0,
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            fail(self, "path", path, "a path starting with '/'")
        checks = dict(checks or {})
        for name, check in checks.items():
            if not isinstance(name, str) or not name:
                fail(self, "checks", name, "non-empty str names")
            if not callable(check):
                fail(self, "checks", check, "callables taking no arguments")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            fail(self, "timeout", timeout, "a number of seconds > 0")
        if isinstance(drain_delay, bool) or not isinstance(drain_delay, (int, float)) or drain_delay < 0:
            fail(self, "drain_delay", drain_delay, "a number of seconds >= 0")
        self.app = app
        self.path = path.rstrip("/")
        self.checks = checks
        self.timeout = float(timeout)
        self.drain_delay = float(drain_delay)

    def routes(self) -> list[tuple[str, Callable[[Request], Any]]]:
        return [(self.path + "/live", self.live), (self.path + "/ready", self.ready)]

    def live(self, request: Request) -> Response:
        return _answer(200, {"status": "ok"})

    def ready(self, request: Request) -> Response | Deferred[Response]:
        state = self.app.lifecycle.state
        if state != "serving":  # "starting" or "draining"
            return _answer(503, {"status": "unavailable", "checks": {"server": state}})
        if not self.checks:
            return _answer(200, {"status": "ok", "checks": {}})
        names = list(self.checks)
        runs = [self._run(self.checks[name]) for name in names]
        return DeferredList(runs).addCallback(self._verdict, names)

    def _run(self, check: HealthCheck) -> Deferred[str]:
        d: Deferred[Any] = maybeDeferred(_call, check)
        d.addTimeout(self.timeout, self.app.clock)
        return d.addCallbacks(_passed, _failed)

    def _verdict(self, results: list[tuple[bool, str]], names: list[str]) -> Response:
        outcome = {name: text for name, (_ok, text) in zip(names, results, strict=True)}
        healthy = all(text == "ok" for text in outcome.values())
        if healthy:
            return _answer(200, {"status": "ok", "checks": outcome})
        return _answer(503, {"status": "unavailable", "checks": outcome})


def _call(check: HealthCheck) -> Any:
    value = check()
    if inspect.iscoroutine(value):
        return Deferred.fromCoroutine(value)
    if inspect.isawaitable(value) and not isinstance(value, Deferred):
        return Deferred.fromCoroutine(_await(value))
    return value


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _passed(value: Any) -> str:
    return "failed: returned False" if value is False else "ok"


def _failed(failure: Failure) -> str:
    from twisted.internet.defer import CancelledError, TimeoutError

    if failure.check(TimeoutError, CancelledError):
        return "timed out"
    exc = failure.value
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"failed: {reason[:200]}"


def _answer(status: int, body: dict[str, Any]) -> Response:
    resp = Response(_json.dumpb(body), status, None, JSON_TYPE)
    resp.headers.set("Cache-Control", "no-store")
    return resp
