"""Live retention: what a long-running process forgets, and what expires.

Live operation refuses events older than the horizon (the clock minus
``[limits] max_lateness``), so nothing before it can change any more: histories
before it are folded into each agent's base and dropped, and calls with nothing
open and no event since the horizon are forgotten. What never finished expires once
older than the horizon, each counted in ``expired`` (Prometheus
``callfloor_state_expired_total{kind}``): a leg still waiting, a conversation never
ended, handling that no ``agent_state`` decided, an agent silent that long (shown
logged out from the horizon on, its open spell and silence ended there). Ended
violations are kept for a day.

Replay folds the same way between the chunks it reads but expires nothing
(``prune(..., expire=False)``, :meth:`FloorProcessor.fold_history`); it gives up
folding when its input is further out of order than that, so it stays exact for any
order of its input.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Final

from callfloor.processors.agents import EMPTY_BASE, AgentTrack, Payload, step
from callfloor.processors.calls import _AGENT_KINDS, CLOCK_SKEW_S, ROUTED, CallTrack

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor

# Ended violations, not-ready day totals and misses stay this long after they end.
VIOLATION_RETENTION_S: Final = 24 * 3600.0
# answered_today / missed_today need the times since the last site-local midnight.
DAY_S: Final = 26 * 3600.0


def prune(proc: FloorProcessor, horizon: float, *, expire: bool = True) -> None:
    """Forget and expire what lies before ``horizon`` (see the module docstring).

    ``expire=False`` (replay's bounded memory, :meth:`FloorProcessor.fold_history`)
    only folds and forgets what no event at or after ``horizon`` can change: what never
    finished stays as it is, as replay keeps it (no leg, conversation, handling or
    agent expires).
    """
    if expire:
        _expire_legs(proc, horizon)
    _forget_calls(proc, horizon, expire)
    now = proc.clock
    keep_from = min(horizon, now - DAY_S)
    violations_from = now - VIOLATION_RETENTION_S
    for track in proc.agents.values():
        _prune_agent(proc, track, horizon, keep_from, violations_from, expire)
        _compact_payloads(track)
    _forget_groups(proc)


def _compact_payloads(track: AgentTrack) -> None:
    """Drop interned payloads no retained history entry uses (a producer that varies
    reasons or queue lists must not grow an agent's table for ever)."""
    payloads = track.payloads
    if len(payloads) <= 16 or len(payloads) <= 2 * len(track.ts):
        return
    used = sorted({code >> 1 for code in track.codes})
    remap = {old: new for new, old in enumerate(used)}
    track.set_payloads([payloads[i] for i in used])
    track.codes = array("q", (remap[c >> 1] * 2 + (c & 1) for c in track.codes))


def _forget_groups(proc: FloorProcessor) -> None:
    """Forget queue lists no agent serves now or names in its retained history."""
    groups = proc.groups
    if len(groups) <= 64:
        return
    used: set[tuple[str, ...]] = set()
    for track in proc.agents.values():
        used.add(track.fold.group)
        used.add(track.base.group)
        for payload in track.payloads:
            if payload[3] is not None:
                used.add(payload[3])
    used.update(proc.tracker.groups)
    used.update(group for group, _ in proc.tracker.placed.values())
    unused = [g for g, counts in groups.items() if g not in used and not any(counts.values())]
    if len(unused) * 2 < len(groups):
        return  # not worth a pass over every queue's list yet
    for group in unused:
        del groups[group]
    drop = set(unused)
    by_queue = proc.groups_by_queue
    for queue in {q for g in unused for q in g}:
        kept = [g for g in by_queue.get(queue, ()) if g not in drop]
        if kept:
            by_queue[queue] = kept
        else:
            by_queue.pop(queue, None)


def _expire_legs(proc: FloorProcessor, horizon: float) -> None:
    """A leg waiting since before the horizon expires, and its call is forgotten with it:
    a later event for that call starts afresh (an orphan), so nothing of the expired leg
    is counted twice."""
    for q in proc.queues.values():
        old = [cid for cid, leg in q.open.items() if leg.start < horizon]
        for cid in old:
            del q.open[cid]
            proc.n_waiting -= 1
            call = proc.calls.pop(cid, None)
            if call is not None and call.convs:
                proc.expired["conversations"] += len(call.convs)
            proc.expired["open_legs"] += 1
            proc.tracker.queues.add(q.name)


def _forget_calls(proc: FloorProcessor, horizon: float, expire: bool = True) -> None:
    calls = proc.calls
    # An orphaned end is held for CLOCK_SKEW_S for a call_queued to claim it: a call is
    # forgotten only once no event that can still arrive could claim anything of it.
    cut = horizon - CLOCK_SKEW_S
    for cid in [c for c, call in calls.items() if call.last_ts < cut]:
        call = calls[cid]
        if call.convs and expire:
            fresh = [c for c in call.convs if c.answered_at >= horizon]
            proc.expired["conversations"] += len(call.convs) - len(fresh)
            call.convs = fresh
        if call.settled() and (expire or not _rings_pending(call)):
            del calls[cid]


def _rings_pending(call: CallTrack) -> bool:
    """Whether an agent's latest event on the call is a ring: a later answer by that
    agent takes it up (``carried``, one offer), so replay, which must count as keeping
    everything, keeps the call (until forgetting drops it)."""
    last: dict[str, int] = {}
    for _, _, kind, name, _ in call.events:
        if name is not None and kind in _AGENT_KINDS:
            last[name] = kind
    return ROUTED in last.values()


def _prune_agent(
    proc: FloorProcessor,
    track: AgentTrack,
    horizon: float,
    keep_from: float,
    violations_from: float,
    expire: bool = True,
) -> None:
    ts = track.ts
    cut = bisect_left(ts, horizon)
    if not expire and proc.roster.has(track.name):
        # Roster violations are derived from the history at read time, from the first
        # entry on (derive.agent_roster_violations): replay, which lists every one of
        # them, keeps a rostered agent's history whole.
        cut = 0
    track.marks = None  # indices move and the folds' lists are pruned below
    if cut:
        # The base absorbs the history before the horizon.
        base = track.base.copy()
        for i in range(cut):
            step(base, ts[i], track.payload(i), proc.rules, proc.calendar)
        track.base = base
        del ts[:cut]
        del track.codes[:cut]
    f = track.fold
    if expire and f.known and f.state != "logged_out" and f.last_ts < horizon:
        _expire_agent(proc, track, f.last_ts + proc.limits.max_lateness_s)
    # A call end's handling can move while an event can still arrive between its end and
    # its completion: keep it until it completed before the horizon. One still undecided
    # after ending before the horizon expires.
    if track.ends:
        kept = []
        for end in track.ends:
            if end.done_at is not None:
                if end.done_at >= horizon:
                    kept.append(end)
                elif end.ended_at >= keep_from:
                    # Settled for good: only handled_today still reads it.
                    i = bisect_right(track.handled_at, end.ended_at)
                    track.handled_at.insert(i, end.ended_at)
                    track.handled_s.insert(i, end.handle_s())
            elif end.ended_at >= horizon or not expire:
                kept.append(end)
            else:
                proc.expired["pending_handling"] += 1
                if end in track.pending:
                    track.pending.remove(end)
        track.ends = kept
    # Replay lists every violation started by its document time (SPEC §7): the
    # misses behind missed-call violations, the closed violations and the not-ready
    # days stay when nothing expires.
    for times in (
        (track.answers, track.misses, track.offers)
        if expire
        else (
            track.answers,
            track.offers,
        )
    ):
        k = bisect_left(times, keep_from)
        if k:
            del times[:k]
    k = bisect_left(track.handled_at, keep_from)
    if k:
        del track.handled_at[:k]
        del track.handled_s[:k]
    k = bisect_left(track.carried_at, keep_from)
    if k:
        del track.carried_at[:k]
        del track.carried_from[:k]
    for fold in (track.base, track.fold):
        if fold is EMPTY_BASE:
            continue
        if fold.keeps_spells:
            # No marks are left to splice onto: the day totals need their spells no more.
            fold.keeps_spells = False
            for day in fold.nr_days:
                day.spells = None
        if expire:
            fold.closed = [
                v for v in fold.closed if v.ended_at is None or v.ended_at >= violations_from
            ]
            fold.nr_days = [d for d in fold.nr_days if d.end >= violations_from]


def _expire_agent(proc: FloorProcessor, track: AgentTrack, at: float) -> None:
    """An agent silent past the horizon is logged out as of ``at`` (counted)."""
    f = track.fold
    before = (f.known, f.state, f.group, f.site)
    payload: Payload = ("logged_out", None, f.site, None, None, None)
    # History before the horizon is in the base, and this agent has none after it.
    step(f, at, payload, proc.rules, proc.calendar)
    track.base = f.copy()
    track.ts = array("d")
    track.codes = array("q")
    proc.expired["agents"] += 1
    proc._agent_moved(track, before)
    proc.tracker.agent(track.name)
