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
from collections.abc import Sequence
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

    __slots__ = ("_cache", "agents", "config")

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

    def spans(self, agent: str, tz: ZoneInfo, lo: float, hi: float) -> list[Span]:
        """Shifts of ``agent`` that start on a local date from the day before ``lo``'s
        (a shift across midnight) through ``hi``'s, in start order."""
        if agent not in self.agents:
            return []
        first = datetime.fromtimestamp(lo, tz).date() - _DAY
        last = datetime.fromtimestamp(hi, tz).date()
        out: list[Span] = []
        day = first
        while day <= last:
            out += self._day_spans(agent, tz, day)
            day += _DAY
        return out

    def next_boundary(
        self, agent: str, tz: ZoneInfo, t: float, *, strict: bool = False
    ) -> float | None:
        """The first instant at or after ``t`` (after, if ``strict``) at which the
        agent's roster violations can start or end with the clock alone: a shift start
        plus the login grace, or a shift end."""
        if agent not in self.agents:
            return None
        grace = self.config.grace_login_s
        found: float | None = None
        for start, end in self.spans(agent, tz, t, t + _LOOKAHEAD_DAYS * 86400.0):
            for at in (start + grace, end):
                if (at > t if strict else at >= t) and (found is None or at < found):
                    found = at
        return found


def _local(day: date, minute: int, tz: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock time (fold=0: a time in a DST gap is read
    with the offset before the change, an ambiguous one as its first occurrence)."""
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz).timestamp()


def _logged_in(state: str | None) -> bool:
    return state is not None and state != "logged_out"


def roster_violations(
    spans: Sequence[Span],
    times: Sequence[float],
    states: Sequence[str],
    before: str | None,
    config: RosterConfig,
    t: float,
) -> list[Violation]:
    """The roster violations started by ``t``.

    ``times`` and ``states`` are the agent's ``agent_state`` history (ascending, ties in
    arrival order); ``before`` is its state before the first of them (None: unknown).
    """
    out: list[Violation] = []
    grace_in = config.grace_login_s
    grace_out = config.grace_logout_s
    severity = config.severity
    n = len(times)

    def state_at(x: float) -> str | None:
        i = bisect_right(times, x)
        return states[i - 1] if i else before

    def login_from(j: int) -> float | None:
        """The time of the first login at history index ``j`` or later."""
        while j < n:
            if _logged_in(states[j]):
                return times[j]
            j += 1
        return None

    for start, end in spans:
        due = start + grace_in
        if due < end and due <= t and not _logged_in(state_at(due)):
            back = login_from(bisect_right(times, due))
            stop = end if back is None or back > end else back
            ended = stop if stop <= t else None
            value = (stop if ended is not None else t) - due
            out.append(Violation(LATE_LOGIN, severity, due, ended, value))
        cutoff = end - grace_out
        if cutoff <= start:
            continue
        # Logouts in [start, cutoff): a logged-in agent whose state becomes logged_out.
        j = bisect_left(times, start)
        prev = states[j - 1] if j else before
        while j < n and times[j] < cutoff and times[j] <= t:
            state = states[j]
            if state == "logged_out" and _logged_in(prev):
                x = times[j]
                back = login_from(j + 1)
                stop = end if back is None or back > end else back
                if stop <= x:
                    prev = state
                    j += 1
                    continue  # logged back in at the same instant: no time was lost
                ended = stop if stop <= t else None
                value = (stop if ended is not None else t) - x
                out.append(Violation(EARLY_LOGOUT, severity, x, ended, value))
            prev = state
            j += 1
    return out
