"""Idle-time violations (SPEC §4) as functions of an agent's history and the clock.

Nothing here keeps timers. A violation whose fate is decided by an event (a spell
that closed after its limit, a silence that an ``agent_state`` ended) is
*materialised* when the agent's fold reaches that event, as a
:class:`Violation` with both ends. What is still open (the current spell, the
current silence, the not-ready total of the current day, a run of missed calls) is
*derived* at read time from the fold and the clock. So a late event that changes an
agent's history changes its violations by re-folding, and the clock changes them
by being read: the instants recorded are always the exact ones (a spell's start
plus its limit), whenever they are noticed.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Final

from callfloor.config import DAILY_SEVERITIES, AgentRules
from callfloor.processors.calendar import SiteCalendar

NOT_READY_EXCEEDED: Final = "not_ready_exceeded"
WRAP_UP_EXCEEDED: Final = "wrap_up_exceeded"
NOT_READY_DAILY_EXCEEDED: Final = "not_ready_daily_exceeded"
MISSED_CALLS_EXCEEDED: Final = "missed_calls_exceeded"
STALE_AGENT: Final = "stale_agent"

WARNING: Final = "warning"


class Violation:
    """One violation of one agent; ``ended_at`` None while active."""

    __slots__ = ("ended_at", "kind", "severity", "started_at", "value")

    def __init__(
        self, kind: str, severity: str, started_at: float, ended_at: float | None, value: float
    ) -> None:
        self.kind = kind
        self.severity = severity
        self.started_at = started_at
        self.ended_at = ended_at
        self.value = value

    def key(self) -> tuple[float, str, str]:
        """Identity within one agent: when, what, how severe."""
        return (self.started_at, self.kind, self.severity)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Violation):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.severity == other.severity
            and self.started_at == other.started_at
            and self.ended_at == other.ended_at
            and self.value == other.value
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.severity, self.started_at))

    def __repr__(self) -> str:
        return (
            f"Violation({self.kind}, {self.severity}, {self.started_at}, "
            f"{self.ended_at}, {self.value})"
        )


# ----------------------------------------------------------------------------- spells


def spell_limit(rules: AgentRules, state: str, reason: str | None) -> float | None:
    """The limit of a spell, or None when the spell has none (or is exempt)."""
    if state == "not_ready":
        if reason is not None and reason in rules.exempt_reasons:
            return None
        return rules.not_ready_limit(reason)
    if state == "wrap_up":
        return rules.wrap_up_max_s
    return None


def spell_kind(state: str) -> str:
    """The violation kind of an over-long spell in ``state``."""
    return NOT_READY_EXCEEDED if state == "not_ready" else WRAP_UP_EXCEEDED


def counts_not_ready(rules: AgentRules, state: str | None, reason: str | None) -> bool:
    """Whether a spell is non-exempt not-ready time."""
    return state == "not_ready" and (reason is None or reason not in rules.exempt_reasons)


# ----------------------------------------------------------------------------- daily totals


class NRDay:
    """Non-exempt not-ready time of one site-local day from closed spells.

    ``crossings[k]`` is the instant the day's total reached daily limit ``k`` (only
    limits the total went strictly past are listed).

    ``spells`` is set while the agent's fold keeps its spells (a late event re-folds it
    from marks, see ``agents.refold_late``): the day's ``(closed_s, crossings)`` before
    them and the spells added since (``[a, b)`` pairs, flat, in fold order), from which
    :func:`respell` computes both again, so another fold's later spells can be spliced
    on.
    """

    __slots__ = ("closed_s", "crossings", "end", "spells", "start")

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.closed_s = 0.0
        self.crossings: list[float] = []
        self.spells: tuple[float, list[float], array[float]] | None = None

    def copy(self) -> NRDay:
        """An independent copy."""
        day = NRDay(self.start, self.end)
        day.closed_s = self.closed_s
        day.crossings = list(self.crossings)
        if self.spells is not None:
            closed, crossings, spells = self.spells
            day.spells = (closed, crossings, array("d", spells))
        return day

    def keep_spells(self) -> None:
        """Start keeping the spells added from now on."""
        if self.spells is None:
            self.spells = (self.closed_s, list(self.crossings), array("d"))


def respell(day: NRDay, limits: Sequence[float]) -> None:
    """A day's total and crossings again from its kept spells (the same sums, in the
    same order, as adding them one by one)."""
    assert day.spells is not None
    closed, before, spells = day.spells
    crossings = list(before)
    for k in range(0, len(spells), 2):
        a = spells[k]
        b = spells[k + 1]
        crossings += _crossings(limits, len(crossings), closed, a, b)
        closed += b - a
    day.closed_s = closed
    day.crossings = crossings


def _day_segments(cal: SiteCalendar, start: float, end: float) -> list[tuple[float, float, float]]:
    """``[start, end)`` cut at site-local midnights: (day start, from, to) per day."""
    out: list[tuple[float, float, float]] = []
    a = start
    while a < end:
        day = cal.day_start(a)
        b = cal.next_day_start(a)
        if b > end:
            b = end
        out.append((day, a, b))
        if b <= a:  # defensive: a calendar that does not advance
            break
        a = b
    return out


def _crossings(
    limits: Sequence[float], crossed: int, before: float, a: float, b: float
) -> list[float]:
    """Instants in ``[a, b)`` at which a running total of ``before`` at ``a`` reaches the
    next limits, counting only limits it goes strictly past by ``b``."""
    out: list[float] = []
    after = before + (b - a)
    k = crossed
    while k < len(limits) and after > limits[k]:
        out.append(a + (limits[k] - before) if limits[k] > before else a)
        k += 1
    return out


def add_not_ready(
    days: list[NRDay],
    cal: SiteCalendar,
    limits: Sequence[float],
    start: float,
    end: float,
    keep_spells: bool = False,
) -> None:
    """Add a closed non-exempt not-ready spell ``[start, end)`` to the day totals
    (``keep_spells``: a new day keeps its spells, see :class:`NRDay`)."""
    for day_start, a, b in _day_segments(cal, start, end):
        day = days[-1] if days and days[-1].start == day_start else None
        if day is None:
            day = next((d for d in days if d.start == day_start), None)
            if day is None:
                day = NRDay(day_start, cal.next_day_start(day_start))
                if keep_spells:
                    day.keep_spells()
                days.append(day)
                days.sort(key=lambda d: d.start)
        day.crossings += _crossings(limits, len(day.crossings), day.closed_s, a, b)
        day.closed_s += b - a
        spells = day.spells
        if spells is not None:
            spells[2].append(a)
            spells[2].append(b)


def not_ready_today(
    days: Sequence[NRDay],
    cal: SiteCalendar,
    open_since: float | None,
    t: float,
) -> float:
    """Non-exempt not-ready seconds since the site-local midnight before ``t``.

    ``open_since`` is the start of the current spell when it is non-exempt not-ready.
    """
    day = cal.day_start(t)
    total = 0.0
    for d in reversed(days):
        if d.start == day:
            total = d.closed_s
            break
        if d.start < day:
            break
    if open_since is not None:
        start = open_since if open_since > day else day
        if t > start:
            total += t - start
    return total


def daily_violations(
    days: Sequence[NRDay],
    cal: SiteCalendar,
    limits: Sequence[float],
    open_since: float | None,
    t: float,
) -> list[Violation]:
    """Daily not-ready violations started by ``t``: from closed spells and the open one."""
    if not limits:
        return []
    by_start: dict[float, tuple[float, float, list[float]]] = {
        d.start: (d.end, d.closed_s, list(d.crossings)) for d in days if d.start <= t
    }
    if open_since is not None and t > open_since:
        for day_start, a, b in _day_segments(cal, open_since, t):
            end, closed, crossings = by_start.get(day_start, (cal.next_day_start(a), 0.0, []))
            crossings = crossings + _crossings(limits, len(crossings), closed, a, b)
            by_start[day_start] = (end, closed + (b - a), crossings)
    out: list[Violation] = []
    for _start, (end, total, crossings) in sorted(by_start.items()):
        ended = end if t >= end else None
        for level, at in enumerate(crossings):
            if at > t:
                break
            severity = DAILY_SEVERITIES[min(level, len(DAILY_SEVERITIES) - 1)]
            out.append(Violation(NOT_READY_DAILY_EXCEEDED, severity, at, ended, total))
    return out


# ----------------------------------------------------------------------------- missed calls


def missed_violations(
    misses: Sequence[float], limit: int, window: float, t: float
) -> list[Violation]:
    """Runs of missed calls (SPEC §4): the rolling count over ``(x - window, x]``
    reaches ``limit`` at a miss and the run ends when it drops below; the value is the
    highest count of the run (so far, while active)."""
    if limit <= 0:
        return []
    end_i = bisect_right(misses, t)
    if end_i < limit:
        return []
    out: list[Violation] = []
    i = 0  # next arrival
    j = 0  # oldest miss still counted
    count = 0
    active: Violation | None = None
    while True:
        arrive = misses[i] if i < end_i else None
        leave = misses[j] + window if j < i else None
        if arrive is None and (leave is None or leave > t):
            break
        if leave is not None and (arrive is None or leave <= arrive):
            # At the same instant a miss leaves before one arrives: (x - W, x].
            x = leave
            while j < i and misses[j] + window <= x:
                j += 1
                count -= 1
            while i < end_i and misses[i] == x:
                i += 1
                count += 1
        else:
            assert arrive is not None
            x = arrive
            while i < end_i and misses[i] == x:
                i += 1
                count += 1
        if active is None:
            if count >= limit:
                active = Violation(MISSED_CALLS_EXCEEDED, WARNING, x, None, float(count))
                out.append(active)
        elif count < limit:
            active.ended_at = x
            active = None
        elif count > active.value:
            active.value = float(count)
    return out


# ----------------------------------------------------------------------------- open items


def open_spell_violation(
    rules: AgentRules, state: str | None, reason: str | None, since: float, t: float
) -> Violation | None:
    """The violation of the current spell at ``t``, if it is already past its limit."""
    if state is None:
        return None
    limit = spell_limit(rules, state, reason)
    if limit is None or t - since <= limit:
        return None
    return Violation(spell_kind(state), WARNING, since + limit, None, t - since)


def open_stale_violation(
    rules: AgentRules, state: str | None, last_ts: float, t: float
) -> Violation | None:
    """The silence violation at ``t`` of a logged-in agent, if it is already stale."""
    if state is None or state == "logged_out":
        return None
    if t - last_ts <= rules.stale_after_s:
        return None
    return Violation(STALE_AGENT, WARNING, last_ts + rules.stale_after_s, None, t - last_ts)


CalendarOf = Callable[[str], SiteCalendar]
