"""The verified-token cache, bounded by entries and by bytes of token text (SPEC_OPERATIONS §11 r6)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

MAX_ENTRIES = 10_000
MAX_BYTES = 8 * 1024 * 1024  # token text held at most (default of JwtConfig.cache_max_bytes)
MAX_CACHED_TOKEN = 8 * 1024  # longer tokens are verified every time, never cached

Entry = TypeVar("Entry")


class VerifiedCache(Generic[Entry]):
    """Token -> verified entry; the oldest entries go first when either bound is reached.

    Keys are token text, or (bytes) the exact header value a token arrived in, so the
    middleware's hot path skips decoding it; both count against the same bounds.
    """

    __slots__ = ("_entries", "_bytes", "max_entries", "max_bytes", "get")

    def __init__(self, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: dict[str | bytes, Entry] = {}
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.get = self._entries.get  # the hot path: one dict lookup

    def put(self, token: str | bytes, entry: Entry) -> None:
        size = len(token)
        if size > MAX_CACHED_TOKEN or size > self.max_bytes or token in self._entries:
            return
        entries = self._entries
        while entries and (len(entries) >= self.max_entries or self._bytes + size > self.max_bytes):
            oldest = next(iter(entries))
            del entries[oldest]
            self._bytes -= len(oldest)
        entries[token] = entry
        self._bytes += size

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str | bytes]:
        return iter(self._entries)
