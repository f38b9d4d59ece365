"""A small case-insensitive multi-value header map used by Request and Response."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Headers:
    """Case-insensitive headers keeping the first spelling of each name.

    ``get`` joins repeated values with ``", "``; ``get_all`` returns them as a list.
    Iteration yields lower-case names.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._items: dict[str, tuple[str, list[str]]] = {}
        if items:
            pairs = items.items() if isinstance(items, Mapping) else items
            for name, value in pairs:
                self.add(name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        entry = self._items.get(name.lower())
        if entry is None:
            return default
        return ", ".join(entry[1])

    def get_all(self, name: str) -> list[str]:
        entry = self._items.get(name.lower())
        return list(entry[1]) if entry else []

    def set(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, [str(value)])

    def add(self, name: str, value: str) -> None:
        key = name.lower()
        entry = self._items.get(key)
        if entry is None:
            self._items[key] = (name, [str(value)])
        else:
            entry[1].append(str(value))

    def setdefault(self, name: str, value: str) -> None:
        if name.lower() not in self._items:
            self._items[name.lower()] = (name, [str(value)])

    def delete(self, name: str) -> None:
        self._items.pop(name.lower(), None)

    def raw_items(self) -> Iterator[tuple[str, list[str]]]:
        """(original name, values) pairs, for writing to the wire."""
        return iter(self._items.values())

    def items(self) -> list[tuple[str, str]]:
        return [(k, ", ".join(v[1])) for k, v in self._items.items()]

    def keys(self) -> list[str]:
        return list(self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name.lower() not in self._items:
            raise KeyError(name)
        del self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"
