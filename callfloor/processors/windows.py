"""Windowed counts of one queue: rolling windows, the current interval and today.

Every counted metric is a small integer vector (counts, and waits and handle times
in integer microseconds, so sums never drift). A contribution is a *record*:
an attribution time and the deltas it adds.

- Rolling windows ``(t - W, t]`` and the current interval ``[start, t]`` come from a
  :class:`~callfloor.processors.deltalog.DeltaLog` of the records: a window's sums are
  the difference of two cumulative vectors at its ends. Exact at any ``t`` and for any
  width within the retained span (:meth:`QueueWindows.window`), not only the
  configured ones at the processor's clock: no bucket granularity.
- ``max_wait`` comes from a :class:`~callfloor.processors.deltalog.MaxLog` of the
  waits (block maxima): the maximum over any range, whatever arrived late or was taken
  back.
- Today's sums are running sums since the site-local midnight, reset lazily.

Records normally arrive in time order and are appended (a copy of the last
cumulative row, as cheap as one flat array). A record attributed to the past (a late
event, or handling completed at ``call_ended.ts`` once the next agent state is known)
is inserted at its place in its block: what it costs does not depend on how many
records came after it (a day backfilled into a running service inserts many).

A late event can also show that a record counted earlier never happened (a leg that
ended otherwise than first thought): :meth:`QueueWindows.remove` takes it back
exactly, from the sums, today's sums and ``max_wait``.

Retention: the records of the last :attr:`QueueWindows.span` seconds are kept (by
default the widest rolling window; the processor may ask for more, e.g. for alert
rules that read longer windows back to the lateness horizon). Older ones are folded
into the log's base in whole blocks; the waits are kept back to today's start too,
for today's ``max_wait`` after a removal. A record costs about 120 bytes (its time and
cumulative vector, 96, and its share of its block), a wait 25.
"""

from __future__ import annotations

from typing import Final

from callfloor.processors.deltalog import DeltaLog, MaxLog

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

_NO_MAX: Final = -1
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
    """Rolling, interval and today sums of one queue, and any window within the span.

    ``log`` holds the records (:data:`NFIELDS` deltas each), ``waits`` the waits
    offered to ``max_wait`` (µs); ``now`` is the instant of the last
    :meth:`advance`, which the configured reads (:meth:`rolling`, :meth:`interval`)
    are at.
    """

    __slots__ = ("_day", "log", "now", "span", "waits", "widest", "widths")

    def __init__(self, widths: tuple[float, ...], span: float | None = None) -> None:
        """``span``: how far back records are kept (default and at least the widest
        width)."""
        self.widths = widths
        self.widest = max(widths)
        self.span = self.widest if span is None or span < self.widest else span
        self.log = DeltaLog(NFIELDS)
        self.waits = MaxLog(_NO_MAX)
        self.now = float("-inf")
        self._day = _Day()

    # ------------------------------------------------------------------ time

    def advance(self, now: float) -> None:
        """Move to ``now``; records older than the span are folded away in blocks."""
        if now <= self.now:
            return
        self.now = now
        cut = now - self.span
        self.log.forget(cut)
        day_start = self._day.start
        self.waits.forget(cut if cut < day_start else day_start)

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

        ``now`` lets the windows drop old records now and then; reads advance to their
        own time. ``wait_us`` >= 0 also offers the wait to ``max_wait``; ``day_start`` is
        the site's current local midnight.
        """
        if now is not None and now > self.now + _ADVANCE_EVERY_S:
            # Only to drop old records in batches: reads advance to their own time, and a
            # stale ``now`` here merely keeps a few more records than needed.
            self.advance(now)
        self.log.add(x, deltas)
        if wait_us >= 0:
            self.waits.add(x, wait_us)
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
        if now is not None and now > self.now + _ADVANCE_EVERY_S:
            self.advance(now)
        self.log.remove(x, deltas)
        day = self._day
        day.add(day_start, x, tuple((f, -v) for f, v in deltas), _NO_MAX)
        if wait_us < 0:
            return
        self.waits.remove(x, wait_us)
        day.max_us = self.waits.maximum(day.start, float("inf"), closed=True)

    # ------------------------------------------------------------------ reads

    def _since(self, start: float, closed: bool) -> tuple[list[int], int]:
        """Sums and max wait of every record after ``start`` (at or after, ``closed``)."""
        log = self.log
        top = log.total()
        low = log.prefix(start, inclusive=not closed)
        return [a - b for a, b in zip(top, low, strict=True)], self.waits.maximum(
            start, float("inf"), closed
        )

    def rolling(self, index: int) -> tuple[list[int], int]:
        """Sums and max wait (µs, -1 if none) of rolling window ``index`` at the last advance."""
        return self._since(self.now - self.widths[index], False)

    def interval(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of ``[start, now]`` (``start`` within the span)."""
        return self._since(start, True)

    def window(self, t: float, width: float) -> tuple[list[int], int]:
        """Sums and max wait of ``(t - width, t]``: any window within the span, at any
        instant (``t - width`` no earlier than the last advance minus :attr:`span`)."""
        a = t - width
        return self.log.between(a, t), self.waits.maximum(a, t)

    def between(self, a: float, b: float, closed: bool = False) -> tuple[list[int], int]:
        """Sums and max wait of ``(a, b]`` (``[a, b]`` if ``closed``) within the span."""
        return self.log.between(a, b, closed), self.waits.maximum(a, b, closed)

    def day(self, start: float) -> tuple[list[int], int]:
        """Sums and max wait of the day that starts at ``start``."""
        return self._day.read(start)
