"""Events ahead of the server clock, bounded per source (``[limits] max_future_events``).

An event whose ``ts`` is ahead of the watermark is held until the watermark passes it,
and held events count against ``[limits] max_pending_events`` with everything else.
Events up to 300 s ahead are valid (``ts_in_future`` beyond), so one producer with a
clock a few minutes fast, or a writer stamping a flood ``now + 290 s``, could fill
the whole backlog for five minutes and lock every producer out (503). This gate gives
each source its own, much smaller, allowance of events ahead of the server clock: an
event beyond it is refused (:data:`FUTURE_FULL`, counted, listed in the HTTP answer,
dead-lettered over MQTT), and the other sources, and the same source's events that
are not ahead, are not touched.

An admitted event occupies its source's allowance until the wall clock passes its
``ts`` (then it is an ordinary event held for at most the watermark delay). Sources
call :meth:`FutureGate.split` right after decoding, before the events are offered:
what it refuses never reaches the store, like ``ts_in_future``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Final

from callfloor.events import Event
from callfloor.processors.limits import TOO_MANY_FUTURE_EVENTS, Refusal


def future_refusal(limit: int) -> Refusal:
    """The refusal of an event beyond its source's allowance of events ahead of the clock."""
    return Refusal(
        TOO_MANY_FUTURE_EVENTS,
        "ts",
        f"`ts`: ahead of the server clock, and this source already has {limit} such events "
        "waiting ([limits] max_future_events); fix the producer's clock",
    )


class FutureGate:
    """Per-source counts of admitted events whose ``ts`` the wall clock has not reached."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._clock = clock
        self._ahead: dict[str, list[float]] = {}  # per source: a heap of admitted ts
        self.refusal: Final = future_refusal(capacity)

    def ahead(self, source: str) -> int:
        """Events of ``source`` admitted and still ahead of the clock."""
        heap = self._ahead.get(source)
        if not heap:
            return 0
        self._expire(heap, self._clock())
        return len(heap)

    @staticmethod
    def _expire(heap: list[float], now: float) -> None:
        while heap and heap[0] <= now:
            heapq.heappop(heap)

    def split(self, source: str, events: Sequence[Event]) -> tuple[list[int], list[float]]:
        """Which of ``events`` of ``source`` fit: (positions refused, in order; the ``ts``
        of those admitted ahead of the clock, for :meth:`commit`). Events not ahead of
        the clock always fit. Nothing is counted until :meth:`commit`."""
        now = self._clock()
        refused: list[int] = []
        ahead: list[float] = []
        room = -1
        for pos, event in enumerate(events):
            ts: float = event.ts  # type: ignore[assignment]  # a float once decoded
            if ts <= now:
                continue
            if room < 0:
                heap = self._ahead.get(source)
                if heap:
                    self._expire(heap, now)
                room = self.capacity - (len(heap) if heap else 0)
            if len(ahead) < room:
                ahead.append(ts)
            else:
                refused.append(pos)
        return refused, ahead

    def commit(self, source: str, ahead: Sequence[float]) -> None:
        """Count events :meth:`split` admitted ahead of the clock (they were taken)."""
        if not ahead:
            return
        heap = self._ahead.setdefault(source, [])
        for ts in ahead:
            heapq.heappush(heap, ts)

    def take(self, source: str, events: Sequence[Event]) -> list[int]:
        """:meth:`split` and :meth:`commit` at once; the positions refused."""
        refused, ahead = self.split(source, events)
        self.commit(source, ahead)
        return refused
