"""Site-local calendar: interval and day boundaries as epoch seconds, DST-correct.

Boundaries are computed from local wall-clock time with :mod:`zoneinfo` only when the
clock leaves the cached period, so the per-event path does a float comparison, not a
time-zone conversion.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


class SiteCalendar:
    """Interval (15 or 30 min) and day boundaries in one IANA time zone."""

    __slots__ = ("_day", "_interval", "_prev_day", "interval_s", "tz")

    def __init__(self, timezone: str, interval_minutes: int) -> None:
        self.tz = ZoneInfo(timezone)
        self.interval_s = interval_minutes * 60
        # Cached [start, end) of the most recently asked period.
        self._interval = (1.0, 0.0)
        self._day = (1.0, 0.0)
        # The day before the cached one: at midnight every agent asks about the day
        # that just ended, and it must not push today out of the cache.
        self._prev_day = (1.0, 0.0)

    def interval_start(self, t: float) -> float:
        """Start of the site-local interval that contains ``t`` (e.g. 09:30:00 local)."""
        start, end = self._interval
        if start <= t < end:
            return start
        local = datetime.fromtimestamp(t, self.tz)
        minutes = self.interval_s // 60
        floored = local.replace(
            minute=local.minute - local.minute % minutes, second=0, microsecond=0
        )
        start = floored.timestamp()
        if start > t:  # defensive: a zone whose offset is not a multiple of the interval
            start = t - (t - start) % self.interval_s
        self._interval = (start, start + self.interval_s)
        return start

    def day_start(self, t: float) -> float:
        """The last site-local midnight at or before ``t`` (the first instant of the local day)."""
        start, end = self._day
        if start <= t < end:
            return start
        start, end = self._prev_day
        if start <= t < end:
            return start
        day = datetime.fromtimestamp(t, self.tz).date()
        start = self._midnight(day)
        end = self._midnight(day + timedelta(days=1))
        if start > t:  # cannot happen for real zones; keep the invariant start <= t anyway
            start = t
        if start >= self._day[1]:
            self._prev_day = self._day
        self._day = (start, end)
        return start

    def next_day_start(self, t: float) -> float:
        """The first site-local midnight strictly after ``t``."""
        start = self.day_start(t)
        return self._day[1] if self._day[0] == start else self._prev_day[1]

    def _midnight(self, day: date) -> float:
        # fold=0 maps a non-existent local midnight (DST starting at 00:00, as in
        # America/Santiago) to the transition instant, which is the first instant of
        # that local day; an ambiguous one resolves to its first occurrence.
        ts = datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()
        if datetime.fromtimestamp(ts, self.tz).date() < day:
            ts += 3600.0  # pragma: no cover - guard for exotic zone data
        return ts
