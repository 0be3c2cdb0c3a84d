"""Values of one agent at an instant, derived from its fold and the clock.

Shared by the read API (documents, metrics, HTTP) and the change tracker, so what a
reader sees and what a change set reports are the same computation.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from callfloor.processors.agents import AgentTrack, CallEnd, count_between
from callfloor.processors.roster import Episode, Span, at_clock, span_episodes
from callfloor.processors.violations import (
    Violation,
    counts_not_ready,
    daily_violations,
    missed_violations,
    not_ready_today,
    open_spell_violation,
    open_stale_violation,
    spell_limit,
)

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor


def open_not_ready_since(proc: FloorProcessor, track: AgentTrack) -> float | None:
    """Start of the agent's current spell if it is non-exempt not-ready time."""
    f = track.fold
    return f.since if counts_not_ready(proc.rules, f.state, f.reason) else None


def agent_not_ready_today(proc: FloorProcessor, track: AgentTrack, t: float) -> float:
    """``not_ready_today_s`` at ``t`` on the agent's (current) site calendar."""
    f = track.fold
    return not_ready_today(f.nr_days, proc.calendar(f.site), open_not_ready_since(proc, track), t)


def agent_today_counts(proc: FloorProcessor, track: AgentTrack, t: float) -> tuple[int, int]:
    """``answered_today`` and ``missed_today`` at ``t`` (site-local day of its current site)."""
    day = proc.calendar(track.fold.site).day_start(t)
    return count_between(track.answers, day, t), count_between(track.misses, day, t)


def agent_offered_today(proc: FloorProcessor, track: AgentTrack, t: float) -> int:
    """``offered_today`` at ``t``: calls routed to or answered by the agent since the
    site-local midnight (of its current site).

    An offer is a ``call_routed`` to the agent, or a non-orphaned ``call_answered`` by
    it that took up no ring; an answer that took up a ring before midnight is an offer
    of the new day too, so ``answered_today`` never exceeds ``offered_today``.
    """
    day = proc.calendar(track.fold.site).day_start(t)
    n = count_between(track.offers, day, t)
    at = track.carried_at
    if at:
        came_from = track.carried_from
        # Only answers within the longest ring-to-answer gap after midnight can have
        # rung before it.
        hi = bisect_right(at, min(t, day + track.carried_gap))
        for i in range(bisect_left(at, day), hi):
            if came_from[i] < day:
                n += 1
    return n


def answer_rate(answered: int, offered: int) -> float | None:
    """``answer_rate_today``: answered / offered, None when nothing was offered."""
    return answered / offered if offered else None


def _ended_at(end: CallEnd) -> float:
    return end.ended_at


def agent_handled_today(proc: FloorProcessor, track: AgentTrack, t: float) -> tuple[int, float]:
    """Calls the agent handled today (site-local day of its current site) whose handling
    completed by ``t``, and their handle time in seconds (talk plus after-call work).

    A call counts on the day it ended (``call_ended.ts``), like a queue's ``handled``.
    """
    day = proc.calendar(track.fold.site).day_start(t)
    ends = track.ends
    # ends are ordered by ended_at: the day's start at a bisection.
    lo = bisect_left(ends, day, key=_ended_at)
    times: list[float] = []
    for end in ends[lo:]:
        if end.ended_at > t:
            break
        done = end.done_at
        if done is not None and done <= t:
            times.append(end.handle_s())
    at = track.handled_at
    if at:
        # Ends live retention settled (completed before its horizon, so before ``t``).
        times += track.handled_s[bisect_left(at, day) : bisect_right(at, t)]
    # fsum: the same total whichever ends retention moved (exactly rounded).
    return len(times), math.fsum(times)


def agent_violations(proc: FloorProcessor, track: AgentTrack, t: float) -> list[Violation]:
    """Every violation of the agent started by ``t``, values as of ``t``."""
    rules = proc.rules
    f = track.fold
    out = [v for v in f.closed if v.started_at <= t]
    if f.known:
        spell = open_spell_violation(rules, f.state, f.reason, f.since, t)
        if spell is not None:
            out.append(spell)
        stale = open_stale_violation(rules, f.state, f.last_ts, t)
        if stale is not None:
            out.append(stale)
    open_since = open_not_ready_since(proc, track)
    if f.nr_days or open_since is not None:
        limits = rules.daily_not_ready_s
        out += daily_violations(f.nr_days, proc.calendar(f.site), limits, open_since, t)
    misses = track.misses
    if len(misses) >= rules.missed_calls_max > 0:
        out += missed_violations(misses, rules.missed_calls_max, rules.missed_calls_window_s, t)
    if proc.roster:
        out += agent_roster_violations(proc, track, t)
    return out


def next_transition(proc: FloorProcessor, track: AgentTrack, t: float) -> float | None:
    """The next instant after ``t`` at which the agent's violations may change with the
    clock alone (a limit passed, a day ending, a missed call leaving the window)."""
    rules = proc.rules
    f = track.fold
    candidates: list[float] = []
    if f.known and f.state is not None:
        limit = spell_limit(rules, f.state, f.reason)
        if limit is not None and f.since + limit >= t:
            candidates.append(f.since + limit)
        if f.state != "logged_out" and f.last_ts + rules.stale_after_s >= t:
            candidates.append(f.last_ts + rules.stale_after_s)
    cal = proc.calendar(f.site)
    open_since = open_not_ready_since(proc, track)
    if open_since is not None or any(d.crossings for d in f.nr_days if d.end > t):
        candidates.append(cal.next_day_start(t))
    if open_since is not None:
        total = not_ready_today(f.nr_days, cal, open_since, t)
        for limit_s in rules.daily_not_ready_s:
            if limit_s >= total:
                candidates.append(t + (limit_s - total))
                break
    misses = track.misses
    if rules.missed_calls_max > 0 and misses:
        window = rules.missed_calls_window_s
        # The oldest miss still counted leaves the window then.
        i = bisect_right(misses, t - window)
        if i < len(misses):
            candidates.append(misses[i] + window)
    if proc.roster and track.fold.known:
        # A shift's start + grace, or its end (see roster.py).
        boundary = proc.roster.next_boundary(track.name, cal.tz, t, strict=True)
        if boundary is not None:
            candidates.append(boundary)
    return min(candidates) if candidates else None


def agent_roster_violations(proc: FloorProcessor, track: AgentTrack, t: float) -> list[Violation]:
    """The agent's ``late_login`` and ``early_logout`` started by ``t`` (see roster.py).

    Shifts are looked at from the site-local day of the agent's first retained
    ``agent_state`` (what came before it is not known), in its current site's zone.
    """
    roster = proc.roster
    name = track.name
    if not roster.has(name):
        return []
    base = track.base
    ts = track.ts
    if base.known:
        lo = base.last_ts
        before = base.state
    elif ts:
        lo = ts[0]
        before = None
    else:
        return []
    if t < lo:
        return []
    cal = proc.calendar(track.fold.site)
    today = cal.day_start(t)
    config = roster.config
    # Each shift's episodes change only with the history from some instant on (the
    # engine notes the earliest entry added since, ``roster_changed``): reads in
    # between (every scrape, every change set) reuse them, and a read after an appended
    # event looks only at what came since.
    where = (cal.tz.key, lo)
    changed = track.roster_changed
    track.roster_changed = float("inf")
    cached = track.roster_cache
    known: dict[Span, list[Episode]]
    if cached is not None and cached[0] == where:
        known = cached[2]
        if cached[1] == today and changed == float("inf"):
            out: list[Violation] = []
            for episodes in known.values():
                out += at_clock(episodes, config.severity, t)
            return out
    else:
        known = {}
        changed = float("-inf")
    first_day = cal.day_start(lo)
    grace = config.grace_login_s
    out = []
    fresh: dict[Span, list[Episode]] = {}
    for span in roster.spans(name, cal.tz, lo, t):
        if span[1] <= lo or span[0] + grace < first_day:
            continue  # before what the history tells
        old = known.get(span)
        if old is None or changed < span[1]:
            old = span_episodes(span, ts, track.state_at, before, config, old, changed)
        fresh[span] = old
        out += at_clock(old, config.severity, t)
    track.roster_cache = (where, today, fresh)
    return out
