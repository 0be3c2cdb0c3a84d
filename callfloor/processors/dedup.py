"""Duplicate detection with bounded memory.

At-least-once transports redeliver. An event identity is remembered for a window of
event time and up to a maximum count; the oldest identities are forgotten first, so
memory stays bounded however long the process runs. A redelivery that arrives after
its identity was forgotten is not detected (the window is configurable).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class Deduplicator:
    """Remembers event identities for ``window_s`` of event time, at most ``max_entries``."""

    __slots__ = ("_inserts", "_seen", "max_entries", "window_s")

    # Forgetting by age runs once per this many new identities (amortised O(1)).
    EVICT_EVERY = 1024

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str | tuple[object, ...], float] = OrderedDict()
        self._inserts = 0

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: str | tuple[object, ...], ts: float, clock: float) -> bool:
        """True if ``key`` was seen before; otherwise remember it and return False."""
        seen = self._seen
        if key in seen:
            return True
        seen[key] = ts
        if len(seen) > self.max_entries:
            seen.popitem(last=False)
        self._inserts += 1
        if self._inserts >= self.EVICT_EVERY:
            self._inserts = 0
            self._forget_before(clock - self.window_s)
        return False

    def _forget_before(self, horizon: float) -> None:
        # Insertion order is close to time order; forgetting from the front is O(1).
        seen = self._seen
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= horizon:
                break
            seen.popitem(last=False)

    def dump(self) -> list[list[object]]:
        """Plain-data form for checkpoints."""
        return [[k if isinstance(k, str) else list(k), ts] for k, ts in self._seen.items()]

    def load(self, rows: list[list[Any]]) -> None:
        """Restore from :meth:`dump` output."""
        self._seen = OrderedDict(
            ((k if isinstance(k, str) else tuple(k)), float(ts)) for k, ts in rows
        )
