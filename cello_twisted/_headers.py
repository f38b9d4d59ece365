"""A small case-insensitive multi-value header map used by Request and Response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Headers:
    """Case-insensitive headers keeping the first spelling of each name.

    ``get`` joins repeated values with ``", "``; ``get_all`` returns them as a list.
    Iteration yields lower-case names.
    """

    __slots__ = ("entries",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        # Public for the writer's hot path: lower-case name -> (first spelling, values).
        self.entries: dict[str, tuple[str, list[str]]] = {}
        if items:
            pairs = items.items() if isinstance(items, Mapping) else items
            for name, value in pairs:
                self.add(name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        entry = self.entries.get(name.lower())
        if entry is None:
            return default
        return ", ".join(entry[1])

    def get_all(self, name: str) -> list[str]:
        entry = self.entries.get(name.lower())
        return list(entry[1]) if entry else []

    def set(self, name: str, value: str) -> None:
        self.entries[name.lower()] = (name, [str(value)])

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        entry = self.entries.get(key)
        if entry is None:
            self.entries[key] = (name, [str(value)])
        else:
            entry[1].append(str(value))

    def setdefault(self, name: str, value: str) -> None:
        if name.lower() not in self.entries:
            self.entries[name.lower()] = (name, [str(value)])

    def delete(self, name: str) -> None:
        self.entries.pop(name.lower(), None)

    def raw_items(self) -> Iterator[tuple[str, list[str]]]:
        """(original name, values) pairs, for writing to the wire."""
        return iter(self.entries.values())

    def items(self) -> list[tuple[str, str]]:
        return [(k, ", ".join(v[1])) for k, v in self.entries.items()]

    def keys(self) -> list[str]:
        return list(self.entries)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name.lower() not in self.entries:
            raise KeyError(name)
        del self.entries[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


# The one SameSite table: lower-case spelling -> the canonical attribute value.
SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def same_site_value(value: object) -> str | None:
    """The canonical ``SameSite`` spelling of ``value`` (any case), or None if it is not one."""
    return SAME_SITE.get(str(value).lower())


def add_vary(headers: Headers, token: str) -> None:
    """Add ``token`` to ``Vary`` unless it is already listed (any case)."""
    current = headers.get("Vary")
    if not current:
        headers.set("Vary", token)
    elif token.lower() not in {t.strip().lower() for t in current.split(",")}:
        headers.set("Vary", f"{current}, {token}")


def accepts(accept_encoding: str, coding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows ``coding`` (q > 0; ``*`` counts if not named)."""
    star = False
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if name != coding and name != "*":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if name == coding:
            return q > 0
        star = q > 0
    return star
