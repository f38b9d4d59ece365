"""Route guards: callables that allow or refuse a request before its handler runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger

from ._defer import is_deferred
from .errors import ForbiddenError, GuardError, UnauthorizedError

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from .request import Request

__all__ = [
    "Guard",
    "Role",
    "Permission",
    "RoleGuard",
    "PermissionGuard",
    "Authenticated",
    "And",
    "Or",
    "Not",
    "GuardError",
    "ForbiddenError",
    "UnauthorizedError",
    "verify_guards",
]

_log = Logger(namespace="cello_twisted.guards")

GuardLike = Callable[["Request"], Any]
"""A guard: ``guard(request)`` returns True/None to pass, False or a str to refuse, or a Deferred."""


class Guard:
    """Base class: implement ``__call__(request)`` returning True/None, False, a str or raising."""

    def __call__(self, request: Request) -> Any:
        raise NotImplementedError


def _verdict(guard: GuardLike, value: object) -> None:
    """Turn a guard's (awaited) return value into pass or a raised GuardError."""
    if value is None or value is True:
        return
    if value is False:
        raise ForbiddenError("Access denied")
    if isinstance(value, str):
        raise ForbiddenError(value)
    if value:  # other truthy values pass
        return
    raise ForbiddenError("Access denied")


class _GuardCrashed(ForbiddenError):
    """403 for a guard that raised something other than GuardError (fail closed).

    Kept distinct so ``Not`` never turns a crashing guard into a pass.
    """


def _fail_closed(guard: GuardLike, exc: BaseException, failure: Failure | None = None) -> GuardError:
    if isinstance(exc, GuardError):
        return exc
    if failure is None:
        from twisted.python.failure import Failure

        failure = Failure(exc, type(exc), exc.__traceback__)
    _log.failure("guard {guard!r} raised; refusing the request", failure=failure, guard=guard)
    return _GuardCrashed("Access denied")


def check_guard(guard: GuardLike, request: Request) -> Deferred[None] | None:
    """Run one guard: None if it passed synchronously, a Deferred if it is async.

    Raises GuardError synchronously when a sync guard refuses.
    """
    try:
        value = guard(request)
    except Exception as exc:  # noqa: BLE001 - fail closed
        raise _fail_closed(guard, exc) from None
    if inspect.iscoroutine(value):
        value = Deferred.fromCoroutine(value)
    if is_deferred(value):

        def failed(failure: Failure) -> Failure:
            if failure.check(CancelledError):
                return failure  # a disconnect or the handler timeout, not a refusal
            raise _fail_closed(guard, cast(BaseException, failure.value), failure)

        return value.addCallbacks(lambda v: _verdict(guard, v), failed)
    _verdict(guard, value)
    return None


def run_guards(guards: Sequence[GuardLike], request: Request, index: int = 0) -> Deferred[None] | None:
    """Run guards in order, stopping at the first failure (SPEC §2.11 r2)."""
    for i in range(index, len(guards)):
        try:
            pending = check_guard(guards[i], request)
        except GuardError:
            request.refused_by = "guard"  # counted by metrics as kind="guard"
            raise
        if pending is not None:
            return pending.addCallbacks(_run_rest, _refused, (guards, request, i + 1), {}, (request,))
    return None


def _refused(failure: Failure, request: Request) -> Failure:
    if failure.check(GuardError):
        request.refused_by = "guard"
    return failure


def _run_rest(_: object, guards: Sequence[GuardLike], request: Request, index: int) -> Deferred[None] | None:
    return run_guards(guards, request, index)


def verify_guards(guards: Iterable[GuardLike], request: Request) -> Deferred[None] | None:
    """Public helper: raise GuardError (or return a Deferred failing with it) on refusal."""
    return run_guards(list(guards), request)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _user(request: Request, user_key: str) -> Any:
    user = request.context.get(user_key)
    if not user:
        raise UnauthorizedError()
    return user


class Authenticated(Guard):
    """Passes when ``request.context[user_key]`` is set and truthy; else 401."""

    def __init__(self, user_key: str = "user") -> None:
        self.user_key = user_key

    def __call__(self, request: Request) -> bool:
        _user(request, self.user_key)
        return True


class _Membership(Guard):
    noun = "roles"
    default_all = False

    def __init__(self, values: Iterable[str], require_all: bool, user_key: str, key: str) -> None:
        self.values = _as_list(values)
        if not self.values:
            raise ValueError(f"{type(self).__name__} needs at least one of {self.noun}")
        self.require_all = require_all
        self.user_key = user_key
        self.key = key

    def _held(self, user: Any) -> list[str]:
        getter = user.get if isinstance(user, dict) else lambda k, d=None: getattr(user, k, d)
        held = getter(self.key)
        if held is None and self.key == "roles":
            held = getter("role")
        return _as_list(held)

    def __call__(self, request: Request) -> bool:
        held = set(self._held(_user(request, self.user_key)))
        if self.require_all:
            missing = [v for v in self.values if v not in held]
            if missing:
                raise ForbiddenError(f"Missing required {self.noun}: {', '.join(missing)}")
        elif not held.intersection(self.values):
            raise ForbiddenError(f"Requires one of {self.noun}: {', '.join(self.values)}")
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.values!r}, require_all={self.require_all})"


class Role(_Membership):
    """The user needs any of ``roles`` (all of them with ``require_all=True``)."""

    noun = "roles"

    def __init__(
        self, roles: Iterable[str], require_all: bool = False, user_key: str = "user", role_key: str = "roles"
    ) -> None:
        super().__init__(roles, require_all, user_key, role_key)


class Permission(_Membership):
    """The user needs all of ``permissions`` (any of them with ``require_all=False``)."""

    noun = "permissions"

    def __init__(
        self,
        permissions: Iterable[str],
        require_all: bool = True,
        user_key: str = "user",
        perm_key: str = "permissions",
    ) -> None:
        super().__init__(permissions, require_all, user_key, perm_key)


RoleGuard = Role
PermissionGuard = Permission


def _members(guards: tuple[Any, ...]) -> list[Any]:
    if len(guards) == 1 and isinstance(guards[0], (list, tuple)):
        return list(guards[0])
    return list(guards)


class And(Guard):
    """All members pass; fails with the first failing member's error."""

    def __init__(self, *guards: Any) -> None:
        self.guards = _members(guards)
        if not self.guards:
            raise ValueError("And() needs at least one guard")  # an empty And would pass everything

    def __call__(self, request: Request) -> Any:
        return run_guards(self.guards, request)


class Or(Guard):
    """Passes when one member passes; otherwise raises the last member's error."""

    def __init__(self, *guards: Any) -> None:
        self.guards = _members(guards)
        if not self.guards:
            raise ValueError("Or() needs at least one guard")

    def __call__(self, request: Request, index: int = 0, last: GuardError | None = None) -> Any:
        for i in range(index, len(self.guards)):
            try:
                pending = check_guard(self.guards[i], request)
            except GuardError as exc:
                last = exc
                continue
            if pending is None:
                return True

            def failed(failure: Failure, nxt: int = i + 1) -> Any:
                failure.trap(GuardError)
                return self(request, nxt, cast(GuardError, failure.value))

            return pending.addCallbacks(lambda _: True, failed)
        raise last or ForbiddenError("Access denied")


class Not(Guard):
    """Passes iff the wrapped guard fails; else 403."""

    def __init__(self, guard: Callable[[Any], Any]) -> None:
        if not callable(guard):
            raise TypeError("Not() needs a callable guard")
        self.guard = guard

    def __call__(self, request: Request) -> Any:
        try:
            pending = check_guard(self.guard, request)
        except _GuardCrashed:
            raise
        except GuardError:
            return True
        if pending is None:
            raise ForbiddenError("Access denied")

        def passed(_: Any) -> None:
            raise ForbiddenError("Access denied")

        def failed(failure: Failure) -> Failure | bool:
            failure.trap(GuardError)
            if failure.check(_GuardCrashed):
                return failure  # a crash stays a refusal (fail closed)
            return True

        return pending.addCallbacks(passed, failed)
