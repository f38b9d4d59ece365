"""Mounts: any twisted.web resource under a path prefix, behind the app's chain (SPEC_OPERATIONS §13).

``app.mount("/legacy", resource)`` registers a ``MountSpec``. When the routes are
compiled each mount gets its own chain (the app's and enclosing blueprints'
middleware, guards, the mount's ``guards=``) ending in a ``ResourceStreamer``,
and ``MountDispatch`` stands where a 404 would otherwise be produced: a path that
matches a route never reaches it (r2), so routes pay nothing for mounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.web.resource import IResource

from ..response import Response
from ._handoff import ResourceStreamer, split_at
from ._pattern import split_path

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from .._types import Link
    from ..guards import GuardLike
    from ..request import Request


def mount_path(prefixes: Sequence[str], path: str) -> str:
    """The full, normalised prefix of a mount: ``("/api", "/v1/")`` → ``/api/v1``."""
    segments = [s for p in (*prefixes, path) for s in split_path(p)]
    return "/" + "/".join(segments)


class MountSpec:
    """One ``mount(path, resource, guards=)`` registration on an App or Blueprint."""

    __slots__ = ("path", "resource", "guards")

    def __init__(self, path: str, resource: Any, guards: Sequence[GuardLike] | None = None) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"mount path must start with '/': {path!r}")
        if "{" in path or "}" in path:
            raise ValueError(f"mount path cannot hold parameters: {path!r}")
        if not IResource.providedBy(resource):
            raise TypeError(f"mount() needs a twisted.web IResource, not {type(resource).__name__}")
        self.path = mount_path((), path)
        self.resource: IResource = resource
        self.guards: list[GuardLike] = list(guards or ())
        for guard in self.guards:
            if not callable(guard):
                raise TypeError("a guard must be callable as guard(request)")

    def __repr__(self) -> str:
        return f"<Mount {self.path} -> {self.resource!r}>"


class MountRoute:
    """A mount as served: its full prefix, enclosing blueprints and compiled chain.

    It is ``request.route`` for requests it serves, and what middleware hooks
    (``applies_to``: which rate limiter applies) see as the route.
    """

    __slots__ = ("spec", "path", "segments", "blueprints", "chain")

    method = "MOUNT"
    rate_limit = None
    feature_path = False  # mounts are the user's resources, never a feature's path
    param_names: list[str] = []  # noqa: RUF012 - read-only, shared by every mount

    def __init__(self, spec: MountSpec, path: str, blueprints: tuple[Any, ...]) -> None:
        self.spec = spec
        self.path = path
        self.segments = tuple(s.encode("utf-8") for s in split_path(path))
        self.blueprints = blueprints
        self.chain: Link = _unset

    @property
    def name(self) -> str | None:
        return f"mount:{self.path}"

    def endpoint(self, request: Request) -> Response:
        """The innermost step: a response whose body the resource renders."""
        resp = Response(b"", 200)
        resp.streamer = ResourceStreamer(self.spec.resource, len(self.segments))
        return resp

    def __repr__(self) -> str:
        return f"<Mount {self.path}>"


def _unset(request: Request) -> Response:
    raise RuntimeError("mount chain used before compilation finished")


class MountDispatch:
    """Where no route matched: the longest mount at or above the path, else ``fallback`` (the 404 chain).

    ``enable_static_files`` directories take part in "longest prefix wins": a path
    under a static directory mounted deeper than a resource goes to ``fallback``,
    which serves static files. At an equal prefix the mount wins.
    """

    __slots__ = ("entries", "fallback")

    def __init__(self, mounts: Sequence[MountRoute], static_prefixes: Sequence[str], fallback: Link) -> None:
        entries: list[tuple[tuple[bytes, ...], MountRoute | None]] = [(m.segments, m) for m in mounts]
        for prefix in static_prefixes:
            entries.append((tuple(s.encode("utf-8") for s in split_path(prefix)), None))
        entries.sort(key=lambda entry: -len(entry[0]))  # stable: mounts before static at equal length
        self.entries = tuple(entries)
        self.fallback = fallback

    def __call__(self, request: Request) -> Response | Deferred[Response]:
        postpath: list[bytes] = request.raw.postpath or []
        for segments, mount in self.entries:
            if split_at(postpath, segments) is not None:
                if mount is None:
                    break
                request.route = mount
                return mount.chain(request)
        return self.fallback(request)
