"""Calls: each call's history of call events and the fold over it (SPEC §1, §3).

A call's effect on the floor (its queue legs and their window records, its
conversations, the answers and misses it gives agents, the call ends whose handling
the agents decide, its orphans and duplicates) is a function of its events sorted by
time, arrival order breaking ties. Each call keeps that history; an event no earlier
than the call's last is folded in one step (the fast path), an earlier one makes the
engine fold the whole history again and apply only the difference.

The fold talks to the floor through :class:`Effects`. The engine implements it
twice: applying each effect at once (the fast path), or collecting them so two folds
(before and after a late event) can be compared.

Leg outcomes, as data (h11's way: transitions readable in one screen). A leg is
open from its ``call_queued``; each event that names the call does what
:data:`ON_EVENT` says, and an event for a call with no open leg (or, for
``call_ended``, no conversation) is *orphaned*.

Producer clocks disagree. SPEC §1 says a leg's wait is never below 0, i.e. an event
that ends a leg may carry a time before its ``call_queued``. So an orphaned end is
held for :data:`CLOCK_SKEW_S`: a ``call_queued`` at most that much later starts a leg
that this end ends at once (wait 0), and a ``call_ended`` at most that much before a
``call_answered`` ends the conversation it starts. Both arrival orders of such a pair
give the same numbers.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from operator import itemgetter
from typing import Final

from callfloor.config import QueuePolicy
from callfloor.events import (
    CallAbandoned,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    CallRouted,
)
from callfloor.processors.agents import CallEnd
from callfloor.processors.windows import (
    ABANDONED,
    ABANDONED_IN_SL,
    ANSWERED,
    ANSWERED_IN_SL,
    DEQUEUED,
    OFFERED,
    SHORT_ABANDONED,
    SL_OFFERED,
    WAIT_US,
    Deltas,
)

# Event kinds in a call's history.
QUEUED: Final = 0
ROUTED: Final = 1
MISSED: Final = 2
ANSWERED_EV: Final = 3
ABANDONED_EV: Final = 4
DEQUEUED_EV: Final = 5
ENDED: Final = 6

# The kind of each canonical call event class.
KIND_OF: Final[dict[type, int]] = {
    CallQueued: QUEUED,
    CallRouted: ROUTED,
    CallMissed: MISSED,
    CallAnswered: ANSWERED_EV,
    CallAbandoned: ABANDONED_EV,
    CallDequeued: DEQUEUED_EV,
    CallEnded: ENDED,
}

# How a leg ended.
END_ANSWER: Final = 0
END_ABANDON: Final = 1
END_DEQUEUE: Final = 2  # call_dequeued, or requeued into another queue

# How far an end may precede its start and still belong to it (disagreeing clocks).
CLOCK_SKEW_S: Final = 60.0

# Histogram a wait goes to.
HIST_NONE: Final = 0
HIST_ANSWERED: Final = 1
HIST_ABANDONED: Final = 2

D_OFFERED: Final[Deltas] = ((OFFERED, 1),)
D_MISS: Final[Deltas] = ((SL_OFFERED, 1),)
D_UNMISS: Final[Deltas] = ((SL_OFFERED, -1),)
D_SHORT: Final[Deltas] = ((SHORT_ABANDONED, 1),)
D_DEQUEUED: Final[Deltas] = ((DEQUEUED, 1),)

# A history entry: (ts, arrival seq, kind, name, had an id). ``name`` is the queue of a
# call_queued, the agent of the events that name one, else None.
CallEvent = tuple[float, int, int, str | None, bool]

_ts: Final = itemgetter(0)


def us(seconds: float) -> int:
    """Seconds as integer microseconds (window sums never drift)."""
    return round(seconds * 1_000_000)


class Leg:
    """An open queue leg (fold state). ``missed``: its service-level miss is counted."""

    __slots__ = ("missed", "queue", "seq", "short", "start", "threshold")

    def __init__(self, queue: str, start: float, seq: int, threshold: float, short: float) -> None:
        self.queue = queue
        self.start = start
        self.seq = seq  # the arrival seq of its call_queued: identity and timer token
        self.threshold = threshold
        self.short = short
        self.missed = False


class Conversation:
    """An answered call not yet ended."""

    __slots__ = ("agent", "answered_at", "queue")

    def __init__(self, agent: str, queue: str, answered_at: float) -> None:
        self.agent = agent
        self.queue = queue
        self.answered_at = answered_at


_NO_CONVERSATIONS: Final[list[Conversation]] = []
_NOTHING_HELD: Final[list[tuple[float, int, str | None]]] = []


class CallTrack:
    """One call: its history and the fold state after the last event."""

    __slots__ = ("call_id", "convs", "early", "events", "leg")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.events: list[CallEvent] = []
        self.leg: Leg | None = None
        # Most calls never hold more than one of these at a time, and many none: the
        # lists are made on first use (these shared empty ones are never mutated).
        self.convs: list[Conversation] = _NO_CONVERSATIONS
        # Orphaned ends that a start a little later may still claim (clock skew):
        # (ts, kind, agent).
        self.early: list[tuple[float, int, str | None]] = _NOTHING_HELD

    @property
    def last_ts(self) -> float:
        """Time of the latest event (-inf without events)."""
        return self.events[-1][0] if self.events else float("-inf")

    def has_duplicate(self, t: float, kind: int, agent: str | None) -> bool:
        """Whether an id-less event of this kind, time (and agent) is already here."""
        events = self.events
        i = bisect_right(events, t, key=_ts) - 1
        while i >= 0 and events[i][0] == t:
            _, _, k, name, had_id = events[i]
            if k == kind and not had_id and (kind == QUEUED or name == agent):
                return True
            i -= 1
        return False

    def insert(self, event: CallEvent) -> bool:
        """Add an event to the history; True if it went at the end (in order)."""
        events = self.events
        if not events or event[0] >= events[-1][0]:
            events.append(event)
            return True
        events.insert(bisect_right(events, event[0], key=_ts), event)
        return False

    def settled(self) -> bool:
        """Nothing open: no waiting leg, no conversation."""
        return self.leg is None and not self.convs


class Effects:
    """What a call's fold does to the floor (see the module docstring)."""

    def record(
        self, queue: str, x: float, deltas: Deltas, wait_us: int, hist: int, lifetime: bool
    ) -> None:
        """Count ``deltas`` for ``queue`` at attribution time ``x``."""
        raise NotImplementedError

    def leg_opened(self, call_id: str, leg: Leg) -> None:
        """A leg starts waiting."""
        raise NotImplementedError

    def leg_closed(self, call_id: str, leg: Leg) -> None:
        """A waiting leg ends."""
        raise NotImplementedError

    def answer(self, agent: str, t: float) -> None:
        """An agent answered (for its ``answered_today``)."""
        raise NotImplementedError

    def miss(self, agent: str, t: float) -> None:
        """An agent missed a call offered to it."""
        raise NotImplementedError

    def offer(self, agent: str, t: float) -> None:
        """A call was offered to an agent (for its ``offered_today``)."""
        raise NotImplementedError

    def carry(self, agent: str, offered_at: float, answered_at: float) -> None:
        """An agent answered a call rung to it earlier (its offer is the ring)."""
        raise NotImplementedError

    def end(self, agent: str, end: CallEnd) -> None:
        """An agent's conversation ended: its handling is to be decided."""
        raise NotImplementedError

    def touch(self, agent: str) -> None:
        """An event named an agent (it exists from now on)."""
        raise NotImplementedError

    def orphan(self, n: int) -> None:
        """``n`` more events that change nothing but the orphaned counter (-1: one
        held as orphaned turned out to belong to a leg after all)."""
        raise NotImplementedError

    def duplicate(self) -> None:
        """A ``call_queued`` for a call already waiting in that queue."""
        raise NotImplementedError


PolicyAt = Callable[[str, int], QueuePolicy]


_AGENT_KINDS: Final = frozenset((ROUTED, MISSED, ANSWERED_EV))


def _ring_before(call: CallTrack, t: float, agent: str) -> float | None:
    """The time of the ring (``call_routed``) an answer at ``t`` by ``agent`` takes up:
    the agent's latest event on this call before the answer, if that is a ring (a miss
    or another answer in between means the ring was not this answer's). The answer is
    in the history already (in time order, arrival order breaking ties); events after
    it are not consulted."""
    events = call.events
    i = len(events) - 1
    while i >= 0 and events[i][0] > t:  # the answer is usually the last entry
        i -= 1
    skipped = False
    while i >= 0:
        et, _, kind, name, _ = events[i]
        i -= 1
        if name != agent or kind not in _AGENT_KINDS:
            continue
        if kind == ANSWERED_EV and et == t and not skipped:
            skipped = True  # the answer itself
            continue
        return et if kind == ROUTED else None
    return None


class CallFold:
    """Folds a call's events into :class:`Effects` (the rules of SPEC §1 and §3)."""

    __slots__ = ("fx", "policy_at")

    def __init__(self, fx: Effects, policy_at: PolicyAt) -> None:
        self.fx = fx
        self.policy_at = policy_at

    def step(self, call: CallTrack, ev: CallEvent) -> None:
        """Fold one event (no earlier than the call's other folded events)."""
        t, seq, kind, name, _ = ev
        if kind == QUEUED:
            assert name is not None
            self._queued(call, t, seq, name)
        elif kind == ANSWERED_EV:
            assert name is not None
            self._answered(call, t, name)
        elif kind == ENDED:
            self._ended(call, t, name)
        elif kind == ABANDONED_EV:
            self._leaves(call, t, END_ABANDON)
        elif kind == DEQUEUED_EV:
            self._leaves(call, t, END_DEQUEUE)
        elif kind == MISSED:
            assert name is not None
            self.fx.miss(name, t)
        else:  # ROUTED: offered to an agent (its offered_today)
            assert name is not None
            self.fx.offer(name, t)

    # ------------------------------------------------------------------ leg transitions

    def _queued(self, call: CallTrack, t: float, seq: int, queue: str) -> None:
        leg = call.leg
        if leg is not None:
            if leg.queue == queue:
                self.fx.duplicate()  # already waiting in this queue
                return
            self.close(call, leg, t, END_DEQUEUE)  # requeued into another queue
        policy = self.policy_at(queue, seq)
        leg = Leg(queue, t, seq, policy.sl_threshold_s, policy.short_abandon_s)
        call.leg = leg
        self.fx.record(queue, t, D_OFFERED, -1, HIST_NONE, True)
        self.fx.leg_opened(call.call_id, leg)
        early = self._claim(call, t, _LEG_ENDS)
        if early is not None:
            self.fx.orphan(-1)
            end_t, kind, name = early
            if kind == ANSWERED_EV:
                assert name is not None
                self._answered(call, end_t, name)
            else:
                self.close(call, leg, end_t, END_ABANDON if kind == ABANDONED_EV else END_DEQUEUE)

    @staticmethod
    def _hold(call: CallTrack, entry: tuple[float, int, str | None]) -> None:
        """Keep an orphaned end for a start within the skew to claim."""
        if call.early:
            call.early.append(entry)
        else:
            call.early = [entry]

    @staticmethod
    def _claim(
        call: CallTrack, t: float, kinds: frozenset[int]
    ) -> tuple[float, int, str | None] | None:
        """The earliest held orphaned end of these kinds within the skew before ``t``."""
        early = call.early
        if not early:
            return None
        early[:] = [e for e in early if t - e[0] <= CLOCK_SKEW_S]
        for i, e in enumerate(early):
            if e[1] in kinds:
                del early[i]
                return e
        return None

    def _answered(self, call: CallTrack, t: float, agent: str) -> None:
        leg = call.leg
        if leg is None:
            self.fx.orphan(1)
            self._hold(call, (t, ANSWERED_EV, agent))
            return
        self.close(call, leg, t, END_ANSWER)
        conv = Conversation(agent, leg.queue, t)
        if call.convs:
            call.convs.append(conv)
        else:
            call.convs = [conv]
        self.fx.answer(agent, t)
        rung = _ring_before(call, t, agent)
        if rung is None:
            self.fx.offer(agent, t)  # answered with no ring: the answer is the offer
        elif rung < t:
            self.fx.carry(agent, rung, t)
        early = self._claim(call, t, _CONVERSATION_ENDS)
        if early is not None:
            self.fx.orphan(-1)
            self._ended(call, early[0], early[2])

    def _leaves(self, call: CallTrack, t: float, how: int) -> None:
        leg = call.leg
        if leg is None:
            self.fx.orphan(1)
            self._hold(call, (t, ABANDONED_EV if how == END_ABANDON else DEQUEUED_EV, None))
            return
        self.close(call, leg, t, how)

    def _ended(self, call: CallTrack, t: float, agent: str | None) -> None:
        convs = call.convs
        if not convs:
            self.fx.orphan(1)
            self._hold(call, (t, ENDED, agent))
            return
        conv = convs[-1]
        if agent is not None:
            # The named agent's conversation; without a match, the latest one.
            for candidate in reversed(convs):
                if candidate.agent == agent:
                    conv = candidate
                    break
        convs.remove(conv)
        self.fx.end(conv.agent, CallEnd(call.call_id, conv.queue, conv.answered_at, t))

    def close(self, call: CallTrack, leg: Leg, t: float, how: int) -> None:
        """End an open leg at ``t`` with outcome ``how`` (its records, SPEC §3)."""
        fx = self.fx
        call.leg = None
        fx.leg_closed(call.call_id, leg)
        queue = leg.queue
        wait = t - leg.start
        if wait < 0:
            wait = 0.0
        threshold = leg.threshold
        within = wait <= threshold
        sl_at = leg.start + threshold
        # The miss was counted while the caller waited, but the leg ended within T after
        # all (a late event): the miss never happened. Lifetime totals keep it.
        relapse = within and leg.missed
        if relapse:
            fx.record(queue, sl_at, D_UNMISS, -1, HIST_NONE, False)
        elif not within and not leg.missed:
            # Still open past T: the miss is its service-level event (a re-fold does not
            # run the clock's timers, so it counts the miss here).
            leg.missed = True
            fx.record(queue, sl_at, D_MISS, -1, HIST_NONE, True)
        wait_us = us(wait)
        if how == END_ANSWER:
            if not within:
                deltas: Deltas = ((ANSWERED, 1), (WAIT_US, wait_us))
            elif relapse:
                deltas = ((ANSWERED, 1), (WAIT_US, wait_us), (ANSWERED_IN_SL, 1))
            else:
                deltas = ((ANSWERED, 1), (WAIT_US, wait_us), (ANSWERED_IN_SL, 1), (SL_OFFERED, 1))
            fx.record(queue, t, deltas, wait_us, HIST_ANSWERED, True)
        elif how == END_ABANDON:
            short = leg.short
            if short > 0 and wait <= short:
                fx.record(queue, t, D_SHORT, -1, HIST_NONE, True)
                return
            if not within:
                deltas = ((ABANDONED, 1),)
            elif relapse:
                deltas = ((ABANDONED, 1), (ABANDONED_IN_SL, 1))
            else:
                deltas = ((ABANDONED, 1), (ABANDONED_IN_SL, 1), (SL_OFFERED, 1))
            fx.record(queue, t, deltas, wait_us, HIST_ABANDONED, True)
        else:
            fx.record(queue, t, D_DEQUEUED, -1, HIST_NONE, True)
            return
        if relapse:
            # The leg's service-level event moves from the miss to this event; lifetime
            # totals counted it once already.
            fx.record(queue, t, D_MISS, -1, HIST_NONE, False)


_LEG_ENDS: Final = frozenset((ANSWERED_EV, ABANDONED_EV, DEQUEUED_EV))
_CONVERSATION_ENDS: Final = frozenset((ENDED,))

# The leg transitions of ON_EVENT, for documentation and tests: (event kind) -> what it
# does to a call with an open leg / with none.
ON_EVENT: Final[dict[int, tuple[str, str]]] = {
    QUEUED: ("same queue: duplicate; other queue: requeue (dequeued) and a new leg", "new leg"),
    ANSWERED_EV: ("leg answered; a conversation starts", "orphaned"),
    ABANDONED_EV: ("leg abandoned (short within the short-abandon threshold)", "orphaned"),
    DEQUEUED_EV: ("leg dequeued", "orphaned"),
    ENDED: ("conversation ends (not the leg)", "orphaned without a conversation"),
    MISSED: ("counts for the agent", "counts for the agent"),
    ROUTED: ("an offer to the agent", "an offer to the agent"),
}
