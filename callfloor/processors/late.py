"""Late events: the difference between two folds of one call's history.

When an event arrives that is earlier than its call's latest, the call is folded twice
(its history without the event, as it was applied; and with it) into collected
effects, and only the difference is applied to the floor: window records that no
longer happen are taken back, new ones counted; the waiting leg, the answers and
misses of agents, the call ends whose handling agents decide, and the counters follow.
The old fold uses the policies its legs were counted with (see
``FloorProcessor.policy_at``) and the miss flag of the leg that is actually open, so
what it regenerates is exactly what the floor holds.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from typing import TYPE_CHECKING

from callfloor.events import CallQueued
from callfloor.processors.agents import CallEnd, ended_at_of, take_carried
from callfloor.processors.calls import (
    D_MISS,
    HIST_NONE,
    CallEvent,
    CallFold,
    CallTrack,
    Effects,
    Leg,
)
from callfloor.processors.windows import Deltas

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor

Record = tuple[str, float, Deltas, int, int]  # queue, x, deltas, wait µs, histogram


class Collect(Effects):
    """Effects collected instead of applied: one side of a late event's difference."""

    __slots__ = (
        "answers",
        "carried",
        "dups",
        "ends",
        "misses",
        "offers",
        "orphans",
        "records",
        "touched",
    )

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.answers: list[tuple[str, float]] = []
        self.misses: list[tuple[str, float]] = []
        self.offers: list[tuple[str, float]] = []
        self.carried: list[tuple[str, float, float]] = []
        self.ends: list[tuple[str, CallEnd]] = []
        self.touched: list[str] = []
        self.orphans = 0
        self.dups = 0

    def record(
        self, queue: str, x: float, deltas: Deltas, wait_us: int, hist: int, lifetime: bool
    ) -> None:
        self.records.append((queue, x, deltas, wait_us, hist))

    def leg_opened(self, call_id: str, leg: Leg) -> None:
        pass

    def leg_closed(self, call_id: str, leg: Leg) -> None:
        pass

    def answer(self, agent: str, t: float) -> None:
        self.answers.append((agent, t))

    def miss(self, agent: str, t: float) -> None:
        self.misses.append((agent, t))

    def offer(self, agent: str, t: float) -> None:
        self.offers.append((agent, t))

    def carry(self, agent: str, offered_at: float, answered_at: float) -> None:
        self.carried.append((agent, offered_at, answered_at))

    def end(self, agent: str, end: CallEnd) -> None:
        self.ends.append((agent, end))

    def touch(self, agent: str) -> None:
        self.touched.append(agent)

    def orphan(self, n: int) -> None:
        self.orphans += n

    def duplicate(self) -> None:
        self.dups += 1


def fold_collect(
    proc: FloorProcessor, call_id: str, events: list[CallEvent]
) -> tuple[Collect, CallTrack]:
    fx = Collect()
    fold = CallFold(fx, proc.policy_at)
    tmp = CallTrack(call_id)
    for ev in events:
        # The fold reads the history so far (an answer looks back for its ring), as the
        # per-event path does.
        tmp.events.append(ev)
        fold.step(tmp, ev)
    return fx, tmp


def refold_call(proc: FloorProcessor, call: CallTrack, old_events: list[CallEvent]) -> None:
    """A late event changed the call's history: apply the difference of two folds."""
    cid = call.call_id
    old, was = fold_collect(proc, cid, old_events)
    actual = call.leg
    if was.leg is not None and actual is not None and actual.missed:
        old.record(was.leg.queue, was.leg.start + was.leg.threshold, D_MISS, -1, HIST_NONE, True)
    new, now = fold_collect(proc, cid, call.events)
    leg = now.leg
    if leg is not None and proc.clock > leg.start + leg.threshold:
        leg.missed = True
        new.record(leg.queue, leg.start + leg.threshold, D_MISS, -1, HIST_NONE, True)

    # Window records: take back what no longer happens, count what now does.
    if old.records != new.records:
        before = Counter(old.records)
        after = Counter(new.records)
        for (queue, x, deltas, wait_us, _hist), n in (before - after).items():
            for _ in range(n):
                proc._unrecord(queue, x, deltas, wait_us)
        for (queue, x, deltas, wait_us, hist), n in (after - before).items():
            for _ in range(n):
                proc.record(queue, x, deltas, wait_us, hist, True)
    # The waiting leg.
    if actual is not None:
        proc.leg_closed(cid, actual)
    call.leg = leg
    call.convs = now.convs
    call.early = now.early
    if leg is not None:
        proc.leg_opened(cid, leg)
    # Answers and misses of agents. In live operation what lies before the horizon was
    # pruned and can change no more: both folds agree about it, so it is left alone.
    horizon = proc.clock - proc.limits.max_lateness_s if proc.live else float("-inf")
    if old.answers != new.answers:
        for (agent, t), n in (Counter(old.answers) - Counter(new.answers)).items():
            _take(proc.agents[agent].answers, t, n)
            proc.tracker.dirty.add(agent)
        for (agent, t), n in (Counter(new.answers) - Counter(old.answers)).items():
            for _ in range(n):
                proc.answer(agent, t)
    if old.misses != new.misses:
        for (agent, t), n in (Counter(old.misses) - Counter(new.misses)).items():
            _take(proc.agents[agent].misses, t, n)
            proc.tracker.dirty.add(agent)
        for (agent, t), n in (Counter(new.misses) - Counter(old.misses)).items():
            for _ in range(n):
                proc.miss(agent, t)
    if old.offers != new.offers:
        for (agent, t), n in (Counter(old.offers) - Counter(new.offers)).items():
            _take(proc.agents[agent].offers, t, n)
            proc.tracker.dirty.add(agent)
        for (agent, t), n in (Counter(new.offers) - Counter(old.offers)).items():
            for _ in range(n):
                proc.offer(agent, t)
    if old.carried != new.carried:
        for (agent, o, a), n in (Counter(old.carried) - Counter(new.carried)).items():
            for _ in range(n):
                take_carried(proc.agents[agent], a, o)
            proc.tracker.dirty.add(agent)
        for (agent, o, a), n in (Counter(new.carried) - Counter(old.carried)).items():
            for _ in range(n):
                proc.carry(agent, o, a)
    for agent in new.touched:
        proc._agent(agent)
    # Call ends (their handling is the agents').
    old_ends = {(a, e.key()) for a, e in old.ends}
    new_ends = {(a, e.key()) for a, e in new.ends}
    for agent, end in old.ends:
        if (agent, end.key()) not in new_ends:
            remove_end(proc, agent, end.key())
    for agent, end in new.ends:
        if (agent, end.key()) not in old_ends and end.ended_at >= horizon:
            proc.end(agent, end)
    # Counters.
    proc.n_orphaned += new.orphans - old.orphans
    dups = new.dups - old.dups
    proc.n_duplicates += dups
    proc.n_events -= dups
    proc._by_class[CallQueued] = proc._by_class.get(CallQueued, 0) - dups


def _take(times: array[float], t: float, n: int) -> None:
    """Remove ``n`` occurrences of ``t`` from ascending ``times`` (those still kept)."""
    for _ in range(n):
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            del times[i]


def remove_end(proc: FloorProcessor, agent: str, key: tuple[str, str, float, float]) -> None:
    track = proc.agents[agent]
    ends = track.ends
    ended_at = key[3]
    i = bisect_left(ends, ended_at, key=ended_at_of)
    while i < len(ends) and ends[i].ended_at == ended_at:
        end = ends[i]
        if end.key() == key:
            del ends[i]
            if end.done_at is not None:
                proc._handled(end, False)
            if end in track.pending:
                track.pending.remove(end)
            return
        i += 1
