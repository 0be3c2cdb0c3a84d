"""Deadlines in a heap: a waiting leg passing its service-level threshold, a rostered
agent's shift boundary.

Entries are plain tuples ``(at, strict, seq, kind, key, token)`` rather than callbacks
or objects, so the heap is serialisable with the rest of the processor state and
building one costs no Python-level constructor. Cancellation is lazy: the owner changes
its token and a stale entry is ignored when it comes due, which keeps scheduling
O(log n) and avoids searching the heap. ``strict`` entries are due once time is *past*
``at``, the others at ``at``; at equal times inclusive entries come first.
"""

from __future__ import annotations

import heapq
from typing import Final

# (at, strict, seq, kind, key, token)
Timer = tuple[float, int, int, int, str, float]
AT: Final = 0
KIND: Final = 3
KEY: Final = 4
TOKEN: Final = 5

# Kinds (the engine dispatches a due timer by its kind). 0 is a waiting leg passing its
# service-level threshold (``effects.T_LEG_MISS``).
T_SHIFT: Final = 1  # a rostered agent's shift boundary (key: the agent)


class TimerHeap:
    """A min-heap of :data:`Timer` entries ordered by time, then inclusive before strict."""

    __slots__ = ("_seq", "heap")

    def __init__(self) -> None:
        # Public so the per-event path can peek at the earliest deadline inline.
        self.heap: list[Timer] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self.heap)

    def schedule(self, at: float, kind: int, key: str, token: float, *, strict: bool) -> None:
        """Add a deadline."""
        self._seq += 1
        heapq.heappush(self.heap, (at, 1 if strict else 0, self._seq, kind, key, token))

    def pop_due(self, now: float) -> Timer | None:
        """Remove and return the earliest timer due at ``now``, or ``None``."""
        heap = self.heap
        if not heap:
            return None
        top = heap[0]
        at = top[0]
        if at < now or (at == now and not top[1]):
            return heapq.heappop(heap)
        return None

    def next_at(self) -> float | None:
        """When the earliest timer is set for (for live clocks that sleep until then)."""
        return self.heap[0][0] if self.heap else None

    def restore(self, entries: list[Timer]) -> None:
        """Take the entries of a checkpoint."""
        heap = list(entries)
        heapq.heapify(heap)
        self.heap = heap
        self._seq = max((t[2] for t in heap), default=0)
