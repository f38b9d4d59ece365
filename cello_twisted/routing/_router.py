"""Segment-trie matcher: literal > constrained > plain > wildcard, with backtracking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._pattern import Segment

if TYPE_CHECKING:
    from .._types import Link


class ServedRoute(Protocol):
    """A compiled route as the matcher's entries hold it (``_compile.CompiledRoute``)."""

    path: str
    method: str
    param_names: list[str]
    chain: Link

    @property
    def name(self) -> str | None: ...

    @property
    def feature_path(self) -> bool: ...

#: SPEC §2.1 r7: the order methods are listed in ``Allow``.
ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class PathEntry:
    """Everything registered at one path shape: compiled handlers by method."""

    __slots__ = ("shape", "methods", "allow", "owner", "websocket", "options_chain", "not_allowed_chain")

    def __init__(self, shape: str) -> None:
        self.shape = shape
        self.methods: dict[str, ServedRoute] = {}
        self.allow = ""
        self.owner: ServedRoute | None = None  # the first route registered here (its middleware serves 405/OPTIONS)
        self.websocket: ServedRoute | None = None
        self.options_chain: Link = _unfinished
        self.not_allowed_chain: Link = _unfinished

    def finish(self) -> None:
        """Compute the ``Allow`` header once all routes are in."""
        present = set(self.methods)
        if "GET" in present:
            present.add("HEAD")
        present.add("OPTIONS")
        ordered = [m for m in ALLOW_ORDER if m in present]
        ordered += sorted(m for m in present if m not in ALLOW_ORDER)
        self.allow = ", ".join(ordered)


def _unfinished(request: object) -> Any:
    raise RuntimeError("path entry used before compilation finished")


class _Node:
    __slots__ = ("static", "params", "wild", "entry")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.params: list[tuple[Any, _Node]] = []  # (constraint or None, child), best first
        self.wild: PathEntry | None = None
        self.entry: PathEntry | None = None


class Router:
    """Maps decoded path segments to a PathEntry and the captured parameter values."""

    def __init__(self) -> None:
        self._root = _Node()
        self._static: dict[tuple[str, ...], PathEntry] = {}
        self._entries: dict[str, PathEntry] = {}

    def entry_for(self, segments: list[Segment]) -> PathEntry:
        """The PathEntry for a pattern, created on first use."""
        shape = "/" + "/".join(s.shape() for s in segments)
        entry = self._entries.get(shape)
        if entry is not None:
            return entry
        entry = self._entries[shape] = PathEntry(shape)
        if all(s.kind == "lit" for s in segments):
            self._static[tuple(s.value for s in segments)] = entry
        node = self._root
        for seg in segments:
            if seg.kind == "lit":
                node = node.static.setdefault(seg.value, _Node())
            elif seg.kind == "wild":
                node.wild = entry
                return entry
            else:
                key = seg.constraint.key() if seg.constraint else None
                for constraint, child in node.params:
                    if (constraint.key() if constraint else None) == key:
                        node = child
                        break
                else:
                    child = _Node()
                    node.params.append((seg.constraint, child))
                    # constrained before plain; stable otherwise (registration order)
                    node.params.sort(key=lambda pair: pair[0] is None)
                    node = child
        node.entry = entry
        return entry

    def static_items(self) -> list[tuple[tuple[str, ...], PathEntry]]:
        """Literal-only routes: (segments, entry)."""
        return list(self._static.items())

    def entries(self) -> list[PathEntry]:
        return list(self._entries.values())

    def match(self, segments: list[str]) -> tuple[PathEntry, list[str]] | None:
        # The first path of the depth-first search, without recursion: at each segment the
        # literal child, else the first parameter that accepts it. Where that reaches an
        # entry, the search would have returned the same one; otherwise the full search runs.
        node = self._root
        values: list[str] = []
        for seg in segments:
            child = node.static.get(seg)
            if child is None:
                for constraint, param_child in node.params:
                    if constraint is None or constraint.matches(seg):
                        values.append(seg)
                        child = param_child
                        break
                else:
                    break
            node = child
        else:
            if node.entry is not None:
                return node.entry, values
        values = []
        found = _walk(self._root, segments, 0, values)
        if found is None:
            return None
        return found, values


def _walk(node: _Node, segments: list[str], index: int, values: list[str]) -> PathEntry | None:
    if index == len(segments):
        return node.entry
    seg = segments[index]
    child = node.static.get(seg)
    if child is not None:
        found = _walk(child, segments, index + 1, values)
        if found is not None:
            return found
    for constraint, child in node.params:
        if constraint is None or constraint.matches(seg):
            values.append(seg)
            found = _walk(child, segments, index + 1, values)
            if found is not None:
                return found
            values.pop()
    if node.wild is not None:
        values.append("/".join(segments[index:]))
        return node.wild
    return None
