"""Windowed counts of one queue: rolling windows, the current interval and today.

Every counted metric is a small integer vector (counts, and waits and handle times
in integer microseconds, so running sums never drift). A contribution is a *record*
``(attribution time, deltas)``.

- Rolling windows ``(t - W, t]`` share one time-ordered record list; each window
  keeps a cursor and running sums, and expiry moves the cursor: O(1) amortised per
  record and window, and exact at any ``t`` (no bucket granularity).
- The interval and today windows are running sums since their start, reset lazily
  when the site's period changes.
- ``max_wait`` is a sliding maximum: one monotonic list serves every rolling window,
  because its first element later than ``t - W`` is the maximum of ``(t - W, t]``.

Records normally arrive in time order and are appended. A record attributed to the
past (a late event, or handling completed at ``call_ended.ts`` once the next agent
state is known) is inserted at its place, so it still expires at the right moment.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import Any, Final

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
Record = tuple[float, Deltas]

_time = itemgetter(0)
_NO_MAX: Final = -1
_COMPACT_AT: Final = 2048


class _Period:
    """Running sums since ``start`` (the current interval or day)."""

    __slots__ = ("max_us", "start", "sums")

    def __init__(self, start: float = float("-inf")) -> None:
        self.start = start
        self.sums = [0] * NFIELDS
        self.max_us = _NO_MAX

    def add(self, start: float, x: float, deltas: Deltas, wait_us: int) -> None:
        if start > self.start:  # the site entered a new period: reset lazily
            self.start = start
            self.sums = [0] * NFIELDS
            self.max_us = _NO_MAX
        if x < start:
            return  # belongs to an earlier period
        sums = self.sums
        for f, v in deltas:
            sums[f] += v
        if wait_us > self.max_us:
            self.max_us = wait_us

    def read(self, start: float) -> tuple[list[int], int]:
        if start > self.start:
            return [0] * NFIELDS, _NO_MAX
        return self.sums, self.max_us

    def dump(self) -> list[object]:
        return [self.start, list(self.sums), self.max_us]

    @classmethod
    def load(cls, row: list[Any]) -> _Period:
        start, sums, max_us = row
        period = cls(float(start))
        period.sums = [int(x) for x in sums]
        period.max_us = int(max_us)
        return period


class QueueWindows:
    """Rolling, interval and today sums of one queue."""

    __slots__ = (
        "_day",
        "_interval",
        "lo",
        "max_lo",
        "maxq",
        "now",
        "records",
        "sums",
        "widest",
        "widths",
    )

    def __init__(self, widths: tuple[float, ...]) -> None:
        self.widths = widths
        self.widest = max(widths)
        self.records: list[Record] = []
        self.lo = [0] * len(widths)
        self.sums = [[0] * NFIELDS for _ in widths]
        self.maxq: list[tuple[float, int]] = []
        self.max_lo = 0
        self.now = float("-inf")
        self._interval = _Period()
        self._day = _Period()

    # ------------------------------------------------------------------ time

    def advance(self, now: float) -> None:
        """Expire rolling records that fell out of their windows at ``now``."""
        if now <= self.now:
            return
        self.now = now
        recs = self.records
        n = len(recs)
        los = self.lo
        for i, width in enumerate(self.widths):
            lo = los[i]
            cut = now - width
            if lo < n and recs[lo][0] <= cut:
                sums = self.sums[i]
                while lo < n and recs[lo][0] <= cut:
                    for f, v in recs[lo][1]:
                        sums[f] -= v
                    lo += 1
                los[i] = lo
        head = min(los)
        if head > _COMPACT_AT and head * 2 > n:
            del recs[:head]
            self.lo = [lo - head for lo in los]
        mq = self.maxq
        mlo = self.max_lo
        cut = now - self.widest
        while mlo < len(mq) and mq[mlo][0] <= cut:
            mlo += 1
        if mlo > _COMPACT_AT and mlo * 2 > len(mq):
            del mq[:mlo]
            mlo = 0
        self.max_lo = mlo

    # ------------------------------------------------------------------ writes

    def add(
        self,
        x: float,
        deltas: Deltas,
        interval_start: float,
        day_start: float,
        wait_us: int = _NO_MAX,
        now: float | None = None,
    ) -> None:
        """Count ``deltas`` at attribution time ``x`` (``x`` <= ``now``).

        ``now`` (default: the last ``advance`` time) advances the windows first.
        ``wait_us`` >= 0 also offers the wait to ``max_wait``. ``interval_start`` and
        ``day_start`` are the site's current period starts.
        """
        if now is not None and now > self.now:
            self.advance(now)
        now = self.now
        recs = self.records
        los = self.lo
        if not recs or x >= recs[-1][0]:
            pos = len(recs)
            recs.append((x, deltas))
        else:
            pos = bisect_right(recs, x, key=_time)
            if pos < min(los):
                pos = -1  # older than everything any window still holds
            else:
                recs.insert(pos, (x, deltas))
        if pos >= 0:
            for i, width in enumerate(self.widths):
                lo = los[i]
                if pos < lo:
                    los[i] = lo + 1  # inserted before the cursor: already expired here
                elif x <= now - width:
                    los[i] = pos + 1  # lands exactly at the cursor, already expired
                else:
                    sums = self.sums[i]
                    for f, v in deltas:
                        sums[f] += v
        if wait_us >= 0:
            self._offer_max(x, wait_us)
        self._interval.add(interval_start, x, deltas, wait_us)
        self._day.add(day_start, x, deltas, wait_us)

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

    def rolling(self, index: int) -> tuple[list[int], int]:
        """Sums and max wait (µs, -1 if none) of rolling window ``index`` at the last advance."""
        cut = self.now - self.widths[index]
        mq = self.maxq
        p = bisect_right(mq, cut, lo=self.max_lo, key=_time)
        return self.sums[index], (mq[p][1] if p < len(mq) else _NO_MAX)

    def interval(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of the interval that starts at ``start``."""
        return self._interval.read(start)

    def day(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of the day that starts at ``start``."""
        return self._day.read(start)

    # ------------------------------------------------------------------ state

    def dump(self) -> dict[str, object]:
        """Plain-data form for checkpoints (expired records are left out)."""
        head = min(self.lo)
        return {
            "now": self.now,
            "records": [[t, [list(d) for d in deltas]] for t, deltas in self.records[head:]],
            "lo": [lo - head for lo in self.lo],
            "sums": [list(s) for s in self.sums],
            "maxq": [list(m) for m in self.maxq[self.max_lo :]],
            "interval": self._interval.dump(),
            "day": self._day.dump(),
        }

    @classmethod
    def load(cls, widths: tuple[float, ...], data: dict[str, Any]) -> QueueWindows:
        """Rebuild from :meth:`dump` output."""
        w = cls(widths)
        w.now = float(data["now"])
        w.records = [
            (float(t), tuple((int(f), int(v)) for f, v in deltas)) for t, deltas in data["records"]
        ]
        w.lo = [int(x) for x in data["lo"]]
        w.sums = [[int(x) for x in s] for s in data["sums"]]
        w.maxq = [(float(t), int(v)) for t, v in data["maxq"]]
        w._interval = _Period.load(data["interval"])
        w._day = _Period.load(data["day"])
        return w
