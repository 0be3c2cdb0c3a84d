"""Deadlines in a heap: a leg passing T, a spell passing its limit, a day ending.

Entries are plain data (kind, key, token) rather than callbacks, so the heap is
serialisable with the rest of the processor state. Cancellation is lazy: the owner
changes its token and a stale entry is ignored when it comes due, which keeps
scheduling O(log n) and avoids searching the heap.
"""

from __future__ import annotations

import heapq
from typing import Any, NamedTuple


class Timer(NamedTuple):
    """A deadline. ``strict`` timers are due once time is *past* ``at``; others at ``at``."""

    at: float
    strict: int
    seq: int
    kind: int
    key: str
    token: float


class TimerHeap:
    """A min-heap of :class:`Timer` ordered by time, then inclusive before strict."""

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
        heapq.heappush(self.heap, Timer(at, 1 if strict else 0, self._seq, kind, key, token))

    def pop_due(self, now: float) -> Timer | None:
        """Remove and return the earliest timer due at ``now``, or ``None``."""
        heap = self.heap
        if not heap:
            return None
        top = heap[0]
        if top.at < now or (top.at == now and not top.strict):
            return heapq.heappop(heap)
        return None

    def next_at(self) -> float | None:
        """When the earliest timer is set for (for live clocks that sleep until then)."""
        return self.heap[0].at if self.heap else None

    def dump(self) -> list[list[object]]:
        """Plain-data form for checkpoints."""
        return [list(t) for t in sorted(self.heap)]

    @classmethod
    def load(cls, rows: list[list[Any]]) -> TimerHeap:
        """Rebuild from :meth:`dump` output."""
        heap = cls()
        timers = [
            Timer(float(at), int(strict), int(seq), int(kind), str(key), float(token))
            for at, strict, seq, kind, key, token in rows
        ]
        heapq.heapify(timers)
        heap.heap = timers
        heap._seq = max((t.seq for t in timers), default=0)
        return heap
