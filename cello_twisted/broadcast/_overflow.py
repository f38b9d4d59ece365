"""The marker a subscriber receives where its queue overflowed (SPEC §10 r2)."""

from __future__ import annotations


class BroadcastOverflow:
    """``dropped`` messages (the oldest) were lost here because this subscriber fell behind.

    Received once, just before the first message after the gap.
    """

    __slots__ = ("dropped",)

    def __init__(self, dropped: int) -> None:
        self.dropped = dropped

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BroadcastOverflow) and other.dropped == self.dropped

    def __hash__(self) -> int:
        return hash((BroadcastOverflow, self.dropped))

    def __repr__(self) -> str:
        return f"BroadcastOverflow(dropped={self.dropped})"
