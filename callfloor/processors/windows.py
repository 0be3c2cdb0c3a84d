"""Windowed counts of one queue: rolling windows, the current interval and today.

Every counted metric is a small integer vector (counts, and waits and handle times
in integer microseconds, so sums never drift). A contribution is a *record*:
an attribution time and the deltas it adds.

- Rolling windows ``(t - W, t]`` and the current interval ``[start, t]`` come from
  one time-ordered list of *prefix sums*: adding a record appends one cumulative
  vector (O(1), however many windows there are), and a window's sums are the
  difference of two cumulative vectors found by binary search when it is read.
  Exact at any ``t``: no bucket granularity. Records older than the widest
  rolling window (always at least an hour, so longer than any interval) are
  dropped from memory in batches.
- Today's sums are running sums since the site-local midnight, reset lazily.
- ``max_wait`` is a sliding maximum: one monotonic list serves every window,
  because its first element at or after a window's start is the window's maximum.

Records normally arrive in time order and are appended. A record attributed to the
past (a late event, or handling completed at ``call_ended.ts`` once the next agent
state is known) is inserted at its place; only the cumulative vectors after it are
updated, which are few because such records are only a little late.

A late event can also show that a record counted earlier never happened (a leg that
ended otherwise than first thought): :meth:`QueueWindows.remove` takes it back
exactly. Sums take the negated deltas; a removed wait leaves ``max_wait``, which is
rebuilt from the log of waits it keeps for that (removals are rare; adds stay O(1)).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Final

# Field indices of a count vector.
OFFERED: Final = 0
ANSWERED: Final = 1
ABANDONED: Final = 2
SHORT_ABANDONED: Final = 3
DEQUEUED: Final = 4
SL_OFFERED: Final = 5
ANSWERED_IN_SL: Final = 6
ABANDONED_IN_SL: Final = 7
HANDLED: Final = 8
WAIT_US: Final = 9  # sum of the waits of answered legs
HANDLE_US: Final = 10  # sum of handle times of handled calls
NFIELDS: Final = 11

COUNT_NAMES: Final[tuple[str, ...]] = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "dequeued",
    "sl_offered",
    "answered_in_sl",
    "abandoned_in_sl",
    "handled",
)

Deltas = tuple[tuple[int, int], ...]

_time = itemgetter(0)
_NO_MAX: Final = -1
_COMPACT_AT: Final = 4096
_ADVANCE_EVERY_S: Final = 60.0


class _Day:
    """Running sums since ``start`` (the current site-local day)."""

    __slots__ = ("max_us", "start", "sums")

    def __init__(self, start: float = float("-inf")) -> None:
        self.start = start
        self.sums = [0] * NFIELDS
        self.max_us = _NO_MAX

    def add(self, start: float, x: float, deltas: Deltas, wait_us: int) -> None:
        if start > self.start:  # the site entered a new day: reset lazily
            self.start = start
            self.sums = [0] * NFIELDS
            self.max_us = _NO_MAX
        if x < start:
            return  # belongs to an earlier day
        sums = self.sums
        for f, v in deltas:
            sums[f] += v
        if wait_us > self.max_us:
            self.max_us = wait_us

    def read(self, start: float) -> tuple[list[int], int]:
        if start > self.start:
            return [0] * NFIELDS, _NO_MAX
        return list(self.sums), self.max_us


class QueueWindows:
    """Rolling, interval and today sums of one queue."""

    __slots__ = (
        "_day",
        "base",
        "cums",
        "max_lo",
        "maxq",
        "now",
        "times",
        "waits",
        "widest",
        "widths",
    )

    def __init__(self, widths: tuple[float, ...]) -> None:
        self.widths = widths
        self.widest = max(widths)
        self.times: list[float] = []  # attribution times, ascending
        self.cums: list[list[int]] = []  # cumulative sums up to and including each record
        self.base = [0] * NFIELDS  # cumulative sums of the records already dropped
        self.maxq: list[tuple[float, int]] = []  # (time, wait µs), waits strictly decreasing
        self.max_lo = 0
        # Every (time, wait µs) offered to max_wait, ascending, back to the older of the
        # widest window and today's start: what a removal rebuilds the maxima from.
        self.waits: list[tuple[float, int]] = []
        self.now = float("-inf")
        self._day = _Day()

    # ------------------------------------------------------------------ time

    def advance(self, now: float) -> None:
        """Move to ``now``; records older than every window are dropped in batches."""
        if now <= self.now:
            return
        self.now = now
        cut = now - self.widest
        times = self.times
        if len(times) > _COMPACT_AT and times[_COMPACT_AT] <= cut:
            head = bisect_right(times, cut)
            self.base = self.cums[head - 1]
            del times[:head]
            del self.cums[:head]
        mq = self.maxq
        mlo = self.max_lo
        while mlo < len(mq) and mq[mlo][0] <= cut:
            mlo += 1
        if mlo > _COMPACT_AT and mlo * 2 > len(mq):
            del mq[:mlo]
            mlo = 0
        self.max_lo = mlo
        waits = self.waits
        if len(waits) > _COMPACT_AT:
            keep = min(cut, self._day.start)
            if waits[_COMPACT_AT][0] < keep:
                del waits[: bisect_left(waits, keep, key=_time)]

    # ------------------------------------------------------------------ writes

    def add(
        self,
        x: float,
        deltas: Deltas,
        day_start: float,
        wait_us: int = _NO_MAX,
        now: float | None = None,
    ) -> None:
        """Count ``deltas`` at attribution time ``x`` (``x`` <= ``now``).

        ``now`` (default: the last ``advance`` time) advances the windows first.
        ``wait_us`` >= 0 also offers the wait to ``max_wait``; ``day_start`` is the
        site's current local midnight.
        """
        if now is not None and now > self.now + _ADVANCE_EVERY_S:
            # Only to drop old records in batches: reads advance to their own time, and a
            # stale ``now`` here merely keeps a few more records than needed.
            self.advance(now)
        times = self.times
        cums = self.cums
        if not times or x >= times[-1]:
            cum = list(cums[-1]) if cums else list(self.base)
            for f, v in deltas:
                cum[f] += v
            times.append(x)
            cums.append(cum)
        elif x > self.now - self.widest:
            pos = bisect_right(times, x)
            cum = list(cums[pos - 1]) if pos else list(self.base)
            for f, v in deltas:
                cum[f] += v
            times.insert(pos, x)
            cums.insert(pos, cum)
            for later in cums[pos + 1 :]:
                for f, v in deltas:
                    later[f] += v
        if wait_us >= 0:
            waits = self.waits
            if not waits or x >= waits[-1][0]:
                waits.append((x, wait_us))
            else:
                waits.insert(bisect_right(waits, x, key=_time), (x, wait_us))
            self._offer_max(x, wait_us)
        self._day.add(day_start, x, deltas, wait_us)

    def remove(
        self,
        x: float,
        deltas: Deltas,
        day_start: float,
        wait_us: int = _NO_MAX,
        now: float | None = None,
    ) -> None:
        """Take back a record added earlier with the same arguments."""
        self.add(x, tuple((f, -v) for f, v in deltas), day_start, _NO_MAX, now)
        if wait_us < 0:
            return
        waits = self.waits
        i = bisect_left(waits, x, key=_time)
        while i < len(waits) and waits[i][0] == x:
            if waits[i][1] == wait_us:
                del waits[i]
                break
            i += 1
        self._rebuild_max()

    def _rebuild_max(self) -> None:
        """Both maxima again from the wait log (after a removal)."""
        cut = self.now - self.widest
        mq: list[tuple[float, int]] = []
        for x, v in self.waits:
            if x <= cut:
                continue
            while mq and mq[-1][1] <= v:
                mq.pop()
            mq.append((x, v))
        self.maxq = mq
        self.max_lo = 0
        day = self._day
        day.max_us = max((v for x, v in self.waits if x >= day.start), default=_NO_MAX)

    def _offer_max(self, x: float, v: int) -> None:
        mq = self.maxq
        mlo = self.max_lo
        if len(mq) == mlo or x >= mq[-1][0]:
            while len(mq) > mlo and mq[-1][1] <= v:
                mq.pop()
            mq.append((x, v))
            return
        if x <= self.now - self.widest:
            return
        p = bisect_right(mq, x, lo=mlo, key=_time)
        if p < len(mq) and mq[p][1] >= v:
            return  # a later, at least as long wait dominates it in every window
        j = p
        while j > mlo and mq[j - 1][1] <= v:
            j -= 1
        mq[j:p] = [(x, v)]

    # ------------------------------------------------------------------ reads

    def _since(self, index: int, first_max: int) -> tuple[list[int], int]:
        cums = self.cums
        if not cums:
            return [0] * NFIELDS, _NO_MAX
        top = cums[-1]
        low = cums[index - 1] if index else self.base
        mq = self.maxq
        return [a - b for a, b in zip(top, low, strict=True)], (
            mq[first_max][1] if first_max < len(mq) else _NO_MAX
        )

    def rolling(self, index: int) -> tuple[list[int], int]:
        """Sums and max wait (µs, -1 if none) of rolling window ``index`` at the last advance."""
        cut = self.now - self.widths[index]
        return self._since(
            bisect_right(self.times, cut), bisect_right(self.maxq, cut, lo=self.max_lo, key=_time)
        )

    def interval(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of ``[start, now]`` (``start`` within the widest window)."""
        return self._since(
            bisect_left(self.times, start), bisect_left(self.maxq, start, lo=self.max_lo, key=_time)
        )

    def day(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of the day that starts at ``start``."""
        return self._day.read(start)
