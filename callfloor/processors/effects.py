"""The effects of a call's fold applied to the floor, and handling decisions.

:class:`FloorEffects` is the :class:`~callfloor.processors.calls.Effects` the processor
applies on its fast path (a late event's difference goes through the same methods):
window records, waiting legs, agents' answers and misses, call ends and the handling
their agents decide. ``FloorProcessor`` is a ``FloorEffects``; the state these methods
touch is its own, declared here.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from typing import Final

from callfloor.events import CallQueued
from callfloor.processors.agents import (
    AgentTrack,
    CallEnd,
    add_carried,
    decide_handling,
    ended_at_of,
)
from callfloor.processors.calls import HIST_ABANDONED, HIST_ANSWERED, HIST_NONE, Effects, Leg, us
from callfloor.processors.changes import ChangeTracker
from callfloor.processors.queues import QueueState
from callfloor.processors.timers import TimerHeap
from callfloor.processors.windows import HANDLE_US, HANDLED, Deltas

T_LEG_MISS: Final = 0


class FloorEffects(Effects):
    """Effects applied to the floor (the base of ``FloorProcessor``)."""

    clock: float
    changes: bool
    queues: dict[str, QueueState]
    agents: dict[str, AgentTrack]
    timers: TimerHeap
    tracker: ChangeTracker
    n_events: int
    n_duplicates: int
    n_orphaned: int
    _by_class: dict[type, int]
    n_waiting: int  # open legs in every queue ([limits] max_open_calls)
    # Event time of the last activity of each queue and agent (see forgetting.py).
    queue_seen: dict[str, float]
    agent_seen: dict[str, float]

    def _agent(self, name: str) -> AgentTrack:
        """The agent, created (unlisted, on site ``default``) on first mention."""
        track = self.agents.get(name)
        if track is None:
            track = AgentTrack(name, "default")
            self.agents[name] = track
        return track

    def record(
        self, queue: str, x: float, deltas: Deltas, wait_us: int, hist: int, lifetime: bool
    ) -> None:
        """Count ``deltas`` for ``queue`` at ``x`` in its windows (and lifetime totals)."""
        q = self.queues[queue]
        now = self.clock
        q.windows.add(x, deltas, q.calendar.day_start(now), wait_us, now)
        seen = self.queue_seen
        if x > seen.get(queue, x - 1.0):
            seen[queue] = x
        if lifetime:
            totals = q.totals
            for f, v in deltas:
                if v > 0:  # lifetime totals feed Prometheus counters: never decrease
                    totals[f] += v
            if hist == HIST_ANSWERED:
                q.histogram(q.hist_answered, wait_us / 1e6)
                q.answered_wait_us += wait_us
            elif hist == HIST_ABANDONED:
                q.histogram(q.hist_abandoned, wait_us / 1e6)
                q.abandoned_wait_us += wait_us
        if self.changes:
            self.tracker.queues.add(queue)  # its site follows when the change set is drained

    def _unrecord(self, queue: str, x: float, deltas: Deltas, wait_us: int) -> None:
        """Take back a record (lifetime totals keep it)."""
        q = self.queues[queue]
        now = self.clock
        q.windows.remove(x, deltas, q.calendar.day_start(now), wait_us, now)
        self.tracker.queues.add(queue)

    def leg_opened(self, call_id: str, leg: Leg) -> None:
        """A leg starts waiting: listed as waiting, its miss deadline set."""
        waiting = self.queues[leg.queue].open
        if call_id not in waiting:
            self.n_waiting += 1
        waiting[call_id] = leg
        seen = self.queue_seen
        if leg.start > seen.get(leg.queue, leg.start - 1.0):
            seen[leg.queue] = leg.start
        if not leg.missed:
            self.timers.schedule(
                leg.start + leg.threshold, T_LEG_MISS, call_id, leg.seq, strict=True
            )

    def leg_closed(self, call_id: str, leg: Leg) -> None:
        """A waiting leg ends."""
        if self.queues[leg.queue].open.pop(call_id, None) is not None:
            self.n_waiting -= 1

    def answer(self, agent: str, t: float) -> None:
        """Count an answer for the agent's ``answered_today``."""
        track = self._agent(agent)
        answers = track.answers
        if not answers or t >= answers[-1]:
            answers.append(t)
        else:
            insort(answers, t)
        if self.changes:
            self.tracker.dirty.add(agent)

    def miss(self, agent: str, t: float) -> None:
        """Count a missed call for the agent."""
        track = self._agent(agent)
        misses = track.misses
        if not misses or t >= misses[-1]:
            misses.append(t)
        else:
            insort(misses, t)
        if self.changes:
            self.tracker.dirty.add(agent)

    def offer(self, agent: str, t: float) -> None:
        """Count an offer for the agent's ``offered_today``."""
        track = self._agent(agent)
        offers = track.offers
        if not offers or t >= offers[-1]:
            offers.append(t)
        else:
            insort(offers, t)
        if self.changes:
            self.tracker.dirty.add(agent)

    def carry(self, agent: str, offered_at: float, answered_at: float) -> None:
        """Note an answer that took up an earlier ring (see ``AgentTrack.carried_at``)."""
        add_carried(self._agent(agent), answered_at, offered_at)

    def end(self, agent: str, end: CallEnd) -> None:
        """An agent's conversation ended: decide its handling from the agent's history."""
        track = self._agent(agent)
        seen = self.agent_seen
        if end.ended_at > seen.get(agent, end.ended_at - 1.0):
            seen[agent] = end.ended_at
        ends = track.ends
        if not ends or end.ended_at >= ends[-1].ended_at:
            ends.append(end)
        else:
            ends.insert(bisect_right(ends, end.ended_at, key=ended_at_of), end)
        self._decide(track, end)

    def touch(self, agent: str) -> None:
        """An event named the agent."""
        self._agent(agent)

    def orphan(self, n: int) -> None:
        """Events that change nothing but the orphaned counter."""
        self.n_orphaned += n

    def duplicate(self) -> None:
        """A ``call_queued`` for a call already waiting in that queue."""
        self.n_duplicates += 1
        self.n_events -= 1
        self._by_class[CallQueued] -= 1

    # ================================================================ handling

    def _decide(self, track: AgentTrack, end: CallEnd) -> None:
        done_at, attached = decide_handling(track, end.ended_at)
        end.attached = attached
        if done_at is None:
            if end not in track.pending:
                track.add_pending(end)
            return
        end.done_at = done_at
        self._handled(end, True)

    def _handled(self, end: CallEnd, add: bool) -> None:
        """Count (or take back) the handling record of a decided call end."""
        assert end.done_at is not None
        deltas: Deltas = ((HANDLED, 1), (HANDLE_US, us(end.handle_s())))
        if add:
            self.record(end.queue, end.done_at, deltas, -1, HIST_NONE, True)
        else:
            self._unrecord(end.queue, end.done_at, deltas, -1)

    def _redecide(self, track: AgentTrack, ends: Iterable[CallEnd]) -> None:
        """Decide these ends again after the agent's history changed; apply differences."""
        for end in ends:
            done_at, attached = decide_handling(track, end.ended_at, (end.done_at, end.attached))
            end.attached = attached
            if done_at == end.done_at:
                continue
            if end.done_at is not None:
                self._handled(end, False)
            end.done_at = done_at
            if done_at is None:
                if end not in track.pending:
                    track.add_pending(end)
            else:
                if end in track.pending:
                    track.pending.remove(end)
                self._handled(end, True)
