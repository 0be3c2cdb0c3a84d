"""Roster adherence (SPEC §4): ``late_login`` and ``early_logout`` from shifts.

A shift is an agent's site-local start and end on a date (a dated row) or on every such
weekday; an end at or before the start is on the next day. Its instants are worked out
in the time zone of the agent's site with :mod:`zoneinfo`, so a shift at 08:00 is at
08:00 local on both sides of a DST change (a start inside a spring-forward gap is
read with the offset before the change, as ``fold=0`` does).

Like the other violations (see :mod:`~callfloor.processors.violations`), these are
derived from the agent's ``agent_state`` history and the clock, never kept: a late
event that changes the history changes them, and the instants are exact:

- ``late_login``: the agent is not logged in (its state is unknown or ``logged_out``)
  at shift start + ``grace_login``; it starts exactly then and ends at the agent's
  first login after it, or at the shift's end if it never logs in; the value is the
  seconds late (so far, while active).
- ``early_logout``: the agent goes from logged in to ``logged_out`` at an instant in
  [shift start, shift end - ``grace_logout``); it starts at that instant and ends when
  the agent logs back in or at the shift's end; the value is the seconds logged out
  (so far, while active).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from callfloor.config import RosterConfig, Shift
from callfloor.processors.violations import Violation

LATE_LOGIN: Final = "late_login"
EARLY_LOGOUT: Final = "early_logout"

_DAY: Final = timedelta(days=1)
# How far ahead a next shift boundary is looked for (a week covers every weekday row).
_LOOKAHEAD_DAYS: Final = 8


class AgentShifts:
    """One agent's roster rows: by date (override) and by weekday."""

    __slots__ = ("dated", "weekly")

    def __init__(self) -> None:
        self.dated: dict[date, list[Shift]] = {}
        self.weekly: list[list[Shift]] = [[] for _ in range(7)]

    def on(self, day: date) -> list[Shift]:
        """The shifts starting on a local date: its dated rows if any (an ``off`` row
        leaves none), else the weekday's."""
        dated = self.dated.get(day)
        if dated is not None:
            return [s for s in dated if not s.off]
        return self.weekly[day.weekday()]


Span = tuple[float, float]  # a shift's start and end, epoch seconds


class Roster:
    """The configured shifts, turned into instants per agent and zone (cached)."""

    __slots__ = ("_cache", "_days", "_next", "agents", "config")

    def __init__(self, config: RosterConfig) -> None:
        self.config = config
        self.agents: dict[str, AgentShifts] = {}
        for s in config.shifts:
            rows = self.agents.setdefault(s.agent, AgentShifts())
            if s.date is not None:
                rows.dated.setdefault(date.fromisoformat(s.date), []).append(s)
            else:
                assert s.weekday is not None
                rows.weekly[s.weekday].append(s)
        # (agent, zone key, local date) -> spans of the shifts starting that date.
        self._cache: dict[tuple[str, str, date], list[Span]] = {}
        # Per zone: recent local days as (first instant, next day's first instant, date).
        self._days: dict[str, list[tuple[float, float, date]]] = {}
        # (agent, zone, strict) -> (asked at, next boundary found then).
        self._next: dict[tuple[str, str, bool], tuple[float, float | None]] = {}

    def __bool__(self) -> bool:
        return bool(self.agents)

    def has(self, agent: str) -> bool:
        """Whether the agent has roster rows."""
        return agent in self.agents

    def _day_spans(self, agent: str, tz: ZoneInfo, day: date) -> list[Span]:
        key = (agent, tz.key, day)
        found = self._cache.get(key)
        if found is not None:
            return found
        spans: list[Span] = []
        for s in self.agents[agent].on(day):
            start = _local(day, s.start_min, tz)
            end_day = day + _DAY if s.end_min <= s.start_min else day
            spans.append((start, _local(end_day, s.end_min, tz)))
        spans.sort()
        if len(self._cache) > 200_000:
            self._cache.clear()  # bounded: rebuilt from the rows on demand
        self._cache[key] = spans
        return spans

    def _date(self, tz: ZoneInfo, t: float) -> date:
        """The local date of ``t`` (the last few local days are remembered per zone)."""
        days = self._days.get(tz.key)
        if days is None:
            days = self._days[tz.key] = []
        for lo, hi, day in days:
            if lo <= t < hi:
                return day
        day = datetime.fromtimestamp(t, tz).date()
        lo = _local(day, 0, tz)
        hi = _local(day + _DAY, 0, tz)
        if not lo <= t < hi:
            return day  # a midnight in a DST gap: not remembered
        days.insert(0, (lo, hi, day))
        del days[4:]
        return day

    def spans(self, agent: str, tz: ZoneInfo, lo: float, hi: float) -> list[Span]:
        """Shifts of ``agent`` that start on a local date from the day before ``lo``'s
        (a shift across midnight) through ``hi``'s, in start order."""
        if agent not in self.agents:
            return []
        day = self._date(tz, lo) - _DAY
        last = self._date(tz, hi)
        if day == last - _DAY:
            return self._day_spans(agent, tz, day) + self._day_spans(agent, tz, last)
        out: list[Span] = []
        while day <= last:
            out += self._day_spans(agent, tz, day)
            day += _DAY
        return out

    def next_boundary(
        self, agent: str, tz: ZoneInfo, t: float, *, strict: bool = False
    ) -> float | None:
        """The first instant at or after ``t`` (after, if ``strict``) at which the
        agent's roster violations can start or end with the clock alone: a shift start
        plus the login grace, or a shift end (looked for up to a week ahead)."""
        if agent not in self.agents:
            return None
        key = (agent, tz.key, strict)
        memo = self._next.get(key)
        # What was found from an earlier instant holds until it is reached (none found:
        # for a day, the look-ahead staying over a week).
        if (
            memo is not None
            and memo[0] <= t
            and (
                (memo[1] is None and t < memo[0] + 86400.0)
                or (memo[1] is not None and (t < memo[1] if strict else t <= memo[1]))
            )
        ):
            return memo[1]
        found = self._next_boundary(agent, tz, t, strict)
        if len(self._next) > 100_000:
            self._next.clear()
        self._next[key] = (t, found)
        return found

    def _next_boundary(self, agent: str, tz: ZoneInfo, t: float, strict: bool) -> float | None:
        grace = self.config.grace_login_s
        found: float | None = None
        day = self._date(tz, t) - _DAY
        for _ in range(_LOOKAHEAD_DAYS + 1):
            spans = self._day_spans(agent, tz, day)
            if found is not None and spans and spans[0][0] > found:
                break  # later days' shifts start after what was found
            for start, end in spans:
                for at in (start + grace, end):
                    if (at > t if strict else at >= t) and (found is None or at < found):
                        found = at
            day += _DAY
        return found


def _local(day: date, minute: int, tz: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock time (fold=0: a time in a DST gap is read
    with the offset before the change, an ambiguous one as its first occurrence)."""
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz).timestamp()


def _logged_in(state: str | None) -> bool:
    return state is not None and state != "logged_out"


# A roster violation as the history decides it, whatever the clock: kind, start and the
# instant it ends unless the history grows (the next login, else the shift's end).
Episode = tuple[str, float, float]


def span_episodes(
    span: Span,
    times: Sequence[float],
    state_of: Callable[[int], str],
    before: str | None,
    config: RosterConfig,
    old: Sequence[Episode] | None = None,
    changed_from: float = float("-inf"),
) -> list[Episode]:
    """The roster violations of one shift as far as the history tells.

    ``times`` is the agent's ``agent_state`` history (ascending, ties in arrival order)
    and ``state_of(i)`` the state of entry ``i``; ``before`` is the state before the
    first entry (None: unknown). Nothing is later than the clock, so an episode whose
    end is past the clock is active then (see :func:`at_clock`).

    ``old`` is what this returned before entries at or after ``changed_from`` were added:
    what started before that instant is kept (only an end after it is looked up again)
    and the history is scanned from there, so a read after an appended event costs the
    entries since, not the whole shift's.
    """
    start, end = span
    n = len(times)
    due = start + config.grace_login_s
    cutoff = end - config.grace_logout_s

    def login_from(j: int) -> float:
        """The first login at history index ``j`` or later, the shift's end at the latest."""
        while j < n and times[j] < end:
            if _logged_in(state_of(j)):
                return times[j]
            j += 1
        return end

    out: list[Episode] = []
    if old is not None and changed_from > start:
        for kind, at, stop in old:
            if at >= changed_from:
                continue
            if stop > changed_from:
                if kind == LATE_LOGIN:
                    stop = login_from(bisect_right(times, at))
                else:
                    j = bisect_left(times, at)
                    while j < n and state_of(j) != "logged_out":
                        j += 1
                    stop = login_from(j + 1)
            out.append((kind, at, stop))
        scan_from = changed_from
    else:
        scan_from = start
    if due < end and due >= scan_from:
        i = bisect_right(times, due)
        if not _logged_in(state_of(i - 1) if i else before):
            out.append((LATE_LOGIN, due, login_from(i)))
    if cutoff > start:
        # Logouts in [start, cutoff): a logged-in agent whose state becomes logged_out.
        j = bisect_left(times, scan_from)
        prev = state_of(j - 1) if j else before
        while j < n and times[j] < cutoff:
            state = state_of(j)
            if state == "logged_out" and _logged_in(prev):
                x = times[j]
                stop = login_from(j + 1)
                if stop > x:  # logged back in at the same instant: no time was lost
                    out.append((EARLY_LOGOUT, x, stop))
            prev = state
            j += 1
    out.sort(key=_episode_start)
    return out


def _episode_start(e: Episode) -> float:
    return e[1]


def at_clock(episodes: Sequence[Episode], severity: str, t: float) -> list[Violation]:
    """The episodes started by ``t`` as violations at ``t`` (active: value so far)."""
    out: list[Violation] = []
    for kind, start, stop in episodes:
        if start > t:
            continue
        if stop <= t:
            out.append(Violation(kind, severity, start, stop, stop - start))
        else:
            out.append(Violation(kind, severity, start, None, t - start))
    return out
