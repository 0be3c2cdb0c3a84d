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

from array import array
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
    """Rolling, interval and today sums of one queue.

    Storage is flat and typed: ``times`` holds the records' attribution times
    (``array('d')``) and ``cums`` their cumulative vectors back to back
    (``array('q')``, :data:`NFIELDS` per record), so a record costs 96 bytes, no
    Python objects, and a checkpoint copies bytes.
    """

    __slots__ = (
        "_day",
        "base",
        "cums",
        "max_lo",
        "maxq",
        "now",
        "times",
        "wait_us",
        "wait_x",
        "widest",
        "widths",
    )

    def __init__(self, widths: tuple[float, ...]) -> None:
        self.widths = widths
        self.widest = max(widths)
        self.times = array("d")  # attribution times, ascending
        self.cums = array("q")  # cumulative sums up to and including each record, flat
        self.base = [0] * NFIELDS  # cumulative sums of the records already dropped
        self.maxq: list[tuple[float, int]] = []  # (time, wait µs), waits strictly decreasing
        self.max_lo = 0
        # Every (time, wait µs) offered to max_wait, ascending, back to the older of the
        # widest window and today's start: what a removal rebuilds the maxima from.
        self.wait_x = array("d")
        self.wait_us = array("q")
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
            cums = self.cums
            self.base = cums[(head - 1) * NFIELDS : head * NFIELDS].tolist()
            del times[:head]
            del cums[: head * NFIELDS]
        mq = self.maxq
        mlo = self.max_lo
        while mlo < len(mq) and mq[mlo][0] <= cut:
            mlo += 1
        if mlo > _COMPACT_AT and mlo * 2 > len(mq):
            del mq[:mlo]
            mlo = 0
        self.max_lo = mlo
        wait_x = self.wait_x
        if len(wait_x) > _COMPACT_AT:
            keep = min(cut, self._day.start)
            if wait_x[_COMPACT_AT] < keep:
                drop = bisect_left(wait_x, keep)
                del wait_x[:drop]
                del self.wait_us[:drop]

    # ------------------------------------------------------------------ writes

    def _row(self, index: int) -> array[int]:
        """The cumulative vector before record ``index`` (a copy)."""
        if index <= 0:
            return array("q", self.base)
        return self.cums[(index - 1) * NFIELDS : index * NFIELDS]

    def add(
        self,
        x: float,
        deltas: Deltas,
        day_start: float,
        wait_us: int = _NO_MAX,
        now: float | None = None,
    ) -> None:
        """Count ``deltas`` at attribution time ``x`` (``x`` <= ``now``).

        ``now`` lets the windows drop old records now and then; reads advance to their
        own time. ``wait_us`` >= 0 also offers the wait to ``max_wait``; ``day_start`` is
        the site's current local midnight.
        """
        if now is not None and now > self.now + _ADVANCE_EVERY_S:
            # Only to drop old records in batches: reads advance to their own time, and a
            # stale ``now`` here merely keeps a few more records than needed.
            self.advance(now)
        times = self.times
        n = len(times)
        if not n or x >= times[n - 1]:
            row = self._row(n)
            for f, v in deltas:
                row[f] += v
            times.append(x)
            self.cums.extend(row)
        elif x > self.now - self.widest:
            pos = bisect_right(times, x)
            row = self._row(pos)
            for f, v in deltas:
                row[f] += v
            times.insert(pos, x)
            cums = self.cums
            at = pos * NFIELDS
            cums[at:at] = row
            for i in range(at + NFIELDS, len(cums), NFIELDS):
                for f, v in deltas:
                    cums[i + f] += v
        if wait_us >= 0:
            wait_x = self.wait_x
            if not wait_x or x >= wait_x[-1]:
                wait_x.append(x)
                self.wait_us.append(wait_us)
            else:
                i = bisect_right(wait_x, x)
                wait_x.insert(i, x)
                self.wait_us.insert(i, wait_us)
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
        wait_x = self.wait_x
        waits = self.wait_us
        i = bisect_left(wait_x, x)
        while i < len(wait_x) and wait_x[i] == x:
            if waits[i] == wait_us:
                del wait_x[i]
                del waits[i]
                break
            i += 1
        self._rebuild_max()

    def _rebuild_max(self) -> None:
        """Both maxima again from the wait log (after a removal)."""
        cut = self.now - self.widest
        mq: list[tuple[float, int]] = []
        day = self._day
        day_max = _NO_MAX
        for x, v in zip(self.wait_x, self.wait_us, strict=True):
            if x >= day.start and v > day_max:
                day_max = v
            if x <= cut:
                continue
            while mq and mq[-1][1] <= v:
                mq.pop()
            mq.append((x, v))
        self.maxq = mq
        self.max_lo = 0
        day.max_us = day_max

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
        top = cums[len(cums) - NFIELDS :]
        low = self._row(index)
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
