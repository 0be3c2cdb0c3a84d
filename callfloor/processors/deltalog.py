"""Time-indexed logs that take late records cheaply: sums and maxima at any instant.

Two small structures the windows (and the alerts, for other time series) are built on:

- :class:`DeltaLog`: a time-ordered log of integer delta vectors (a fixed width). It
  answers the cumulative vector at any instant, :meth:`DeltaLog.prefix`, and so the
  sums over any ``(a, b]`` or ``[a, b]``, :meth:`DeltaLog.between`, exactly (integers:
  nothing drifts).
- :class:`MaxLog`: a time-ordered multiset of ``(time, value)`` that answers the
  largest value over any ``(a, b]`` or ``[a, b]``, :meth:`MaxLog.maximum`, and takes
  an entry back exactly.

Both keep their records in *blocks* of consecutive times (at most :data:`SPLIT`
records each, split in two when a late record would make one longer), found by
binary search over the blocks' first times, so what a late record costs does not
depend on how many records come after it:

- An in-order record (no earlier than every other) is appended to the last block:
  a copy of the last cumulative row plus the deltas, as cheap as one flat array.
- A late record is inserted into its block: the block's arrays shift (``memmove``,
  at most :data:`SPLIT` rows), and the rows on the shorter side of it (before or after;
  at most :data:`SPLIT` / 2) take the deltas. Whole blocks never move: each block's
  rows are cumulative *within the block*, and where each block starts (the sum of
  every block before it, :attr:`DeltaLog._offs`) is recomputed lazily, from the first
  block a write touched, by the next read that needs it.
- Taking a record back (:meth:`DeltaLog.remove`, :meth:`MaxLog.remove`) deletes it
  from its block the same way; a block's maximum is recomputed from its own values.

So a late insert or a removal costs O(log n + SPLIT); a read costs O(log n), plus, the
first time after a late write, one vector addition per block between the write and the
read, or between the read and the end (the total is kept up to date), whichever is
fewer: a read moving forward in time after one late write pays only for the blocks it
passes, and a read near the end little. :data:`SPLIT` is a constant, so the cost per
record does not grow with the log.

Retention: :meth:`DeltaLog.forget` drops whole blocks older than an instant ``t``
into a base vector (records at or after ``t`` stay exact; later records before ``t``
are folded into the base at once), and :meth:`MaxLog.forget` drops them outright.
Memory: a record costs ``8 * (width + 1)`` bytes (time and cumulative row) plus its
share of its block's overhead: 122 bytes a record in all for width 11 (measured,
in-order blocks of :data:`BLOCK`); an entry of a :class:`MaxLog` 25 bytes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Final

BLOCK: Final = 32  # records an in-order block fills to (and each half of a split)
SPLIT: Final = 2 * BLOCK  # a block longer than this is split in two

Deltas = Sequence[tuple[int, int]]  # (field index, value) pairs: a sparse vector


class DeltaLog:
    """A time-ordered log of integer delta vectors of a fixed ``width``.

    ``add(x, deltas)`` counts a record at time ``x``; ``remove(x, deltas)`` takes one
    back exactly; ``prefix(t)`` is the sum of every record at or before ``t`` (before,
    with ``inclusive=False``); ``between(a, b)`` the sums over ``(a, b]`` (``[a, b]``
    with ``closed=True``). Records at equal times keep their arrival order (it changes
    no sum). Reads are exact at any instant no earlier than :attr:`retained_from`.

    Inside, block ``j`` holds ``_times[j]`` (ascending) and ``_rows[j]`` (``width``
    integers per record, flat): the true cumulative vector after record ``r`` of block
    ``j`` is ``_base + _offs[j] + _rows[j][r] - _bases[j]`` (each term a vector).
    ``_bases[j]`` is the row value "before the block" (what an empty prefix of the
    block reads); ``_offs[j]`` the sum of the blocks before ``j``, valid for
    ``j < _valid`` (``_offs[0]`` always: the blocks dropped before it).
    """

    __slots__ = (
        "_base",
        "_bases",
        "_block",
        "_firsts",
        "_offs",
        "_rows",
        "_times",
        "_total",
        "_valid",
        "retained_from",
        "width",
    )

    def __init__(self, width: int, block: int = BLOCK) -> None:
        """``block``: records an in-order block fills to (a split makes halves of
        ``2 * block``); small values only for tests."""
        self.width = width
        self._block = block
        self._times: list[array[float]] = []
        self._rows: list[array[int]] = []
        self._bases: list[array[int]] = []
        self._offs: list[array[int]] = []
        self._firsts: list[float] = []
        self._valid = 0
        self._base = [0] * width  # records folded in before retained_from (and dropped)
        self._total = [0] * width  # the sum of every record (kept, folded or dropped)
        self.retained_from = float("-inf")

    # ------------------------------------------------------------------ size

    def __len__(self) -> int:
        """How many records are kept (not folded into the base)."""
        return sum(len(ts) for ts in self._times)

    @property
    def blocks(self) -> int:
        """How many blocks hold the records."""
        return len(self._times)

    # ------------------------------------------------------------------ writes

    def add(self, x: float, deltas: Deltas) -> None:
        """Count a record of ``deltas`` at time ``x``."""
        times = self._times
        if times:
            ts = times[-1]
            if x >= ts[-1]:
                w = self.width
                rows = self._rows[-1]
                row = rows[len(rows) - w :]
                total = self._total
                for f, v in deltas:
                    row[f] += v
                    total[f] += v
                if len(ts) < self._block:
                    ts.append(x)
                    rows.extend(row)
                else:
                    self._new_block(x, row, rows)
                return
        total = self._total
        for f, v in deltas:
            total[f] += v
        if x < self.retained_from:
            base = self._base
            for f, v in deltas:
                base[f] += v
            return
        self._insert(x, deltas)

    def _new_block(self, x: float, row: array[int], prev_rows: array[int]) -> None:
        """Start a block at the end with one record (``row``, numbered as the last block)."""
        w = self.width
        j = len(self._times) - 1
        before = prev_rows[len(prev_rows) - w :]
        if self._valid > j:
            # Numbered like the block before it: its offset is that block's end.
            off = self._offs[j]
            start = self._bases[j]
            self._offs.append(
                array("q", [o + e - s for o, e, s in zip(off, before, start, strict=True)])
            )
            self._valid = j + 2
        else:
            self._offs.append(array("q", bytes(8 * w)))  # recomputed when read
        self._times.append(array("d", (x,)))
        self._rows.append(row)
        self._bases.append(before)
        self._firsts.append(x)

    def _insert(self, x: float, deltas: Deltas) -> None:
        """A record earlier than the last one (or into an empty log)."""
        w = self.width
        times = self._times
        if not times:
            self._times.append(array("d", (x,)))
            row = array("q", bytes(8 * w))
            for f, v in deltas:
                row[f] += v
            self._rows.append(row)
            self._bases.append(array("q", bytes(8 * w)))
            self._offs.append(array("q", bytes(8 * w)))
            self._firsts.append(x)
            self._valid = 1
            return
        firsts = self._firsts
        j = bisect_right(firsts, x) - 1
        if j < 0:
            j = 0
            firsts[0] = x
        ts = times[j]
        rows = self._rows[j]
        base = self._bases[j]
        i = bisect_right(ts, x)
        n = len(ts)
        if 2 * i >= n:
            # Fewer rows after it: they take the deltas.
            row = rows[(i - 1) * w : i * w] if i else array("q", base)
            for f, v in deltas:
                row[f] += v
                for k in range(i * w + f, n * w, w):
                    rows[k] += v
        else:
            # Fewer rows before it: they and the block's base give the deltas up, which
            # leaves the rows after it the deltas ahead; the new row reads as the one
            # before it did.
            row = rows[(i - 1) * w : i * w] if i else array("q", base)
            for f, v in deltas:
                base[f] -= v
                for k in range(f, i * w, w):
                    rows[k] -= v
        ts.insert(i, x)
        at = i * w
        rows[at:at] = row
        if self._valid > j + 1:
            self._valid = j + 1
        if n >= 2 * self._block:
            self._split(j)

    def _split(self, j: int) -> None:
        """Split block ``j`` in two halves (no row is rewritten)."""
        w = self.width
        ts = self._times[j]
        rows = self._rows[j]
        mid = len(ts) // 2
        tail_ts = ts[mid:]
        tail_rows = rows[mid * w :]
        tail_base = rows[(mid - 1) * w : mid * w]
        del ts[mid:]
        del rows[mid * w :]
        self._times.insert(j + 1, tail_ts)
        self._rows.insert(j + 1, tail_rows)
        self._bases.insert(j + 1, tail_base)
        self._offs.insert(j + 1, array("q", bytes(8 * w)))
        self._firsts.insert(j + 1, tail_ts[0])
        if self._valid > j + 1:
            self._valid = j + 1

    def remove(self, x: float, deltas: Deltas) -> None:
        """Take back a record of ``deltas`` at ``x`` counted before (exact for every sum).

        The kept record at ``x`` with exactly these deltas is deleted; if there is none
        (it was folded into the base), the negated deltas are counted at ``x``.
        """
        w = self.width
        vec = [0] * w
        for f, v in deltas:
            vec[f] += v
        found = self._find(x, vec)
        if found is None:
            self.add(x, [(f, -v) for f, v in deltas])
            return
        j, i = found
        total = self._total
        for f, v in deltas:
            total[f] -= v
        ts = self._times[j]
        rows = self._rows[j]
        base = self._bases[j]
        n = len(ts)
        if 2 * i >= n:
            for f, v in deltas:
                for k in range((i + 1) * w + f, n * w, w):
                    rows[k] -= v
        else:
            for f, v in deltas:
                base[f] += v
                for k in range(f, i * w, w):
                    rows[k] += v
        del ts[i]
        del rows[i * w : (i + 1) * w]
        if self._valid > j + 1:
            self._valid = j + 1
        if not ts:
            self._drop_block(j)
        elif i == 0:
            self._firsts[j] = ts[0]

    def _find(self, x: float, vec: list[int]) -> tuple[int, int] | None:
        """Block and index of a kept record at ``x`` whose deltas are ``vec``."""
        w = self.width
        firsts = self._firsts
        times = self._times
        j = max(bisect_left(firsts, x) - 1, 0)
        while j < len(times) and firsts[j] <= x:
            ts = times[j]
            rows = self._rows[j]
            i = bisect_left(ts, x)
            while i < len(ts) and ts[i] == x:
                row = rows[i * w : (i + 1) * w]
                prev = rows[(i - 1) * w : i * w] if i else self._bases[j]
                if all(r - p == d for r, p, d in zip(row, prev, vec, strict=True)):
                    return j, i
                i += 1
            j += 1
        return None

    def _drop_block(self, j: int) -> None:
        """Remove block ``j``, emptied by removals (its records sum to nothing)."""
        offs = self._offs
        if len(offs) == 1:
            # The last block: what was dropped before it stays counted, in the base.
            self._base = [b + o for b, o in zip(self._base, offs[0], strict=True)]
            del offs[0]
        elif j == 0:
            del offs[1]  # the anchor stays: the next block starts where this one did
        else:
            del offs[j]
        del self._times[j]
        del self._rows[j]
        del self._bases[j]
        del self._firsts[j]
        if self._valid > j:
            self._valid = max(j, 1) if self._times else 0

    def forget(self, t: float) -> None:
        """Keep exact reads from ``t`` on only: blocks entirely before ``t`` are folded
        into the base, and records added before ``t`` from now on are folded at once."""
        if t <= self.retained_from:
            return
        self.retained_from = t
        times = self._times
        drop = 0
        while drop + 1 < len(times) and times[drop][-1] < t:
            drop += 1
        if drop == 0:
            return
        self._ensure(drop)
        anchor = self._offs[drop]
        del times[:drop]
        del self._rows[:drop]
        del self._bases[:drop]
        del self._firsts[:drop]
        del self._offs[:drop]
        self._offs[0] = anchor
        self._valid = max(self._valid - drop, 1)

    # ------------------------------------------------------------------ reads

    def _ensure(self, j: int) -> None:
        """Make ``_offs[j]`` valid (each block after the last valid one: one vector sum)."""
        valid = self._valid
        if valid > j:
            return
        offs = self._offs
        rows_of = self._rows
        bases = self._bases
        w = self.width
        for k in range(valid - 1, j):
            rows = rows_of[k]
            offs[k + 1] = array(
                "q",
                [
                    o + e - s
                    for o, e, s in zip(offs[k], rows[len(rows) - w :], bases[k], strict=True)
                ],
            )
        self._valid = j + 1

    def total(self) -> list[int]:
        """The sum of every record."""
        return list(self._total)

    def prefix(self, t: float, inclusive: bool = True) -> list[int]:
        """The sum of every record at or before ``t`` (strictly before unless
        ``inclusive``); exact for ``t`` no earlier than :attr:`retained_from`."""
        firsts = self._firsts
        j = (bisect_right(firsts, t) if inclusive else bisect_left(firsts, t)) - 1
        if j < 0:
            if not firsts:
                return list(self._base)
            return [b + o for b, o in zip(self._base, self._offs[0], strict=True)]
        ts = self._times[j]
        i = bisect_right(ts, t) if inclusive else bisect_left(ts, t)
        w = self.width
        rows = self._rows[j]
        row = rows[(i - 1) * w : i * w]
        last = len(firsts) - 1
        if j >= self._valid and last - j < j - self._valid:
            # Nearer the end than the offsets known: the total less what follows.
            after = [r - e for r, e in zip(row, rows[len(rows) - w :], strict=True)]
            rows_of = self._rows
            bases = self._bases
            for k in range(j + 1, last + 1):
                later = rows_of[k]
                after = [
                    a - e + s
                    for a, e, s in zip(after, later[len(later) - w :], bases[k], strict=True)
                ]
            return [whole + a for whole, a in zip(self._total, after, strict=True)]
        self._ensure(j)
        return [
            b + o + r - s
            for b, o, r, s in zip(self._base, self._offs[j], row, self._bases[j], strict=True)
        ]

    def next_after(self, t: float) -> float | None:
        """The time of the first kept record after ``t``, or None."""
        firsts = self._firsts
        j = bisect_right(firsts, t) - 1
        if j >= 0:
            ts = self._times[j]
            i = bisect_right(ts, t)
            if i < len(ts):
                return ts[i]
        if j + 1 < len(firsts):
            return firsts[j + 1]
        return None

    def between(self, a: float, b: float, closed: bool = False) -> list[int]:
        """The sums over ``(a, b]`` (``[a, b]`` if ``closed``)."""
        hi = self.prefix(b)
        lo = self.prefix(a, inclusive=not closed)
        return [h - low for h, low in zip(hi, lo, strict=True)]

    # ------------------------------------------------------------------ checkpoint form

    def dump(self) -> tuple[array[float], array[int], list[int]]:
        """``(times, cums, base)``: every kept record's time and its cumulative vector
        (``width`` per record, flat), and the cumulative vector before the first."""
        w = self.width
        times: array[float] = array("d")
        cums: array[int] = array("q")
        nblocks = len(self._times)
        if nblocks:
            self._ensure(nblocks - 1)
        base = self._base
        for j in range(nblocks):
            rows = self._rows[j]
            adjust = [
                b + o - s for b, o, s in zip(base, self._offs[j], self._bases[j], strict=True)
            ]
            if any(adjust):
                # Numbered relative to its block (a late write shifted it): renumber it
                # in place, so the next dump copies it as it is.
                for f in range(w):
                    d = adjust[f]
                    if d:
                        for k in range(f, len(rows), w):
                            rows[k] += d
                self._bases[j] = array(
                    "q", [s + d for s, d in zip(self._bases[j], adjust, strict=True)]
                )
            times.extend(self._times[j])
            cums.extend(rows)
        start = [b + o for b, o in zip(base, self._offs[0], strict=True)] if nblocks else list(base)
        return times, cums, start

    @classmethod
    def load(
        cls,
        width: int,
        times: array[float],
        cums: array[int],
        base: Sequence[int],
        block: int = BLOCK,
    ) -> DeltaLog:
        """A log from its :meth:`dump` form (``cums`` cumulative, ``base`` before them)."""
        log = cls(width, block)
        n = len(times)
        if len(cums) != n * width or len(base) != width:
            raise ValueError(
                f"a delta log of width {width} needs {n * width} cumulative values for "
                f"{n} times and a base of {width}, got {len(cums)} and {len(base)}"
            )
        if not n:
            log._base = list(base)
            log._total = list(base)
            return log
        prev = array("q", base)
        for start in range(0, n, block):
            stop = min(start + block, n)
            ts = times[start:stop]
            rows = cums[start * width : stop * width]
            log._times.append(ts)
            log._rows.append(rows)
            log._bases.append(prev)
            log._offs.append(array("q", prev))
            log._firsts.append(ts[0])
            prev = rows[len(rows) - width :]
        log._valid = len(log._times)
        log._total = list(prev)
        return log


class MaxLog:
    """A time-ordered multiset of ``(time, value)`` with the maximum over any range.

    ``add(x, v)``, ``remove(x, v)`` (one equal entry, exactly), ``maximum(a, b)`` over
    ``(a, b]`` (``[a, b]`` with ``closed=True``), ``empty`` when none. Blocks as in
    :class:`DeltaLog`, each with its maximum, so a range reads two partial blocks and
    the maxima between them.
    """

    __slots__ = ("_block", "_firsts", "_maxes", "_times", "_vals", "empty", "retained_from")

    def __init__(self, empty: int = -1, block: int = BLOCK) -> None:
        """``empty``: what :meth:`maximum` answers for a range with no entry."""
        self.empty = empty
        self._block = block
        self._times: list[array[float]] = []
        self._vals: list[array[int]] = []
        self._maxes: list[int] = []
        self._firsts: list[float] = []
        self.retained_from = float("-inf")

    def __len__(self) -> int:
        """How many entries are kept."""
        return sum(len(ts) for ts in self._times)

    def add(self, x: float, v: int) -> None:
        """Add the entry ``(x, v)`` (ignored before :attr:`retained_from`)."""
        times = self._times
        if times:
            ts = times[-1]
            if x >= ts[-1]:
                if len(ts) < self._block:
                    ts.append(x)
                    self._vals[-1].append(v)
                    if v > self._maxes[-1]:
                        self._maxes[-1] = v
                else:
                    times.append(array("d", (x,)))
                    self._vals.append(array("q", (v,)))
                    self._maxes.append(v)
                    self._firsts.append(x)
                return
        if x < self.retained_from:
            return
        if not times:
            times.append(array("d", (x,)))
            self._vals.append(array("q", (v,)))
            self._maxes.append(v)
            self._firsts.append(x)
            return
        firsts = self._firsts
        j = bisect_right(firsts, x) - 1
        if j < 0:
            j = 0
            firsts[0] = x
        ts = times[j]
        vals = self._vals[j]
        i = bisect_right(ts, x)
        ts.insert(i, x)
        vals.insert(i, v)
        if v > self._maxes[j]:
            self._maxes[j] = v
        if len(ts) > 2 * self._block:
            mid = len(ts) // 2
            tail_ts = ts[mid:]
            tail_vals = vals[mid:]
            del ts[mid:]
            del vals[mid:]
            times.insert(j + 1, tail_ts)
            self._vals.insert(j + 1, tail_vals)
            self._maxes[j] = max(vals)
            self._maxes.insert(j + 1, max(tail_vals))
            firsts.insert(j + 1, tail_ts[0])

    def remove(self, x: float, v: int) -> bool:
        """Take back one entry ``(x, v)``; False if none is kept."""
        firsts = self._firsts
        times = self._times
        j = max(bisect_left(firsts, x) - 1, 0)
        while j < len(times) and firsts[j] <= x:
            ts = times[j]
            vals = self._vals[j]
            i = bisect_left(ts, x)
            while i < len(ts) and ts[i] == x:
                if vals[i] == v:
                    del ts[i]
                    del vals[i]
                    if not ts:
                        del times[j]
                        del self._vals[j]
                        del self._maxes[j]
                        del firsts[j]
                    else:
                        if i == 0:
                            firsts[j] = ts[0]
                        if v == self._maxes[j]:
                            self._maxes[j] = max(vals)
                    return True
                i += 1
            j += 1
        return False

    def maximum(self, a: float, b: float, closed: bool = False) -> int:
        """The largest value over ``(a, b]`` (``[a, b]`` if ``closed``), or ``empty``."""
        firsts = self._firsts
        times = self._times
        # The first entry inside: block j1, index i1.
        j1 = (bisect_left(firsts, a) if closed else bisect_right(firsts, a)) - 1
        if j1 < 0:
            j1, i1 = 0, 0
        else:
            ts = times[j1]
            i1 = bisect_left(ts, a) if closed else bisect_right(ts, a)
            if i1 == len(ts):
                j1, i1 = j1 + 1, 0
        # The last entry inside: block j2, end index i2 (exclusive).
        j2 = bisect_right(firsts, b) - 1
        if j2 < j1:
            return self.empty
        i2 = bisect_right(times[j2], b)
        vals_of = self._vals
        maxes = self._maxes
        if j1 == j2:
            if i1 >= i2:
                return self.empty
            if i1 == 0 and i2 == len(times[j1]):
                return maxes[j1]
            return max(vals_of[j1][i1:i2])
        best = maxes[j1] if i1 == 0 else max(vals_of[j1][i1:])
        if j2 > j1 + 1:
            inner = max(maxes[j1 + 1 : j2])
            if inner > best:
                best = inner
        last = maxes[j2] if i2 == len(times[j2]) else max(vals_of[j2][:i2])
        return last if last > best else best

    def forget(self, t: float) -> None:
        """Keep entries from ``t`` on only (whole blocks before ``t`` go; entries added
        before ``t`` from now on are ignored)."""
        if t <= self.retained_from:
            return
        self.retained_from = t
        times = self._times
        drop = 0
        while drop < len(times) and times[drop][-1] < t:
            drop += 1
        if drop:
            del times[:drop]
            del self._vals[:drop]
            del self._maxes[:drop]
            del self._firsts[:drop]

    def dump(self) -> tuple[array[float], array[int]]:
        """``(times, values)`` of every kept entry, ascending by time."""
        times: array[float] = array("d")
        vals: array[int] = array("q")
        for ts, vs in zip(self._times, self._vals, strict=True):
            times.extend(ts)
            vals.extend(vs)
        return times, vals

    def entries_after(self, a: float) -> list[tuple[float, int]]:
        """Every kept entry later than ``a``, ascending (for the checkpoint form)."""
        out: list[tuple[float, int]] = []
        for ts, vs in zip(self._times, self._vals, strict=True):
            if ts[-1] <= a:
                continue
            i = bisect_right(ts, a)
            out.extend(zip(ts[i:], vs[i:], strict=True))
        return out

    @classmethod
    def load(
        cls, times: array[float], vals: array[int], empty: int = -1, block: int = BLOCK
    ) -> MaxLog:
        """A log from its :meth:`dump` form."""
        if len(times) != len(vals):
            raise ValueError(f"{len(times)} times but {len(vals)} values")
        log = cls(empty, block)
        for start in range(0, len(times), block):
            ts = times[start : start + block]
            vs = vals[start : start + block]
            log._times.append(ts)
            log._vals.append(vs)
            log._maxes.append(max(vs))
            log._firsts.append(ts[0])
        return log
