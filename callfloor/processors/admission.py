"""Admission: whether an event may be applied (SPEC §9 limits) or is a duplicate.

Every event passes :func:`admit` before it changes anything. It is cheap for the
common case: the names of known queues, agents, sites and calls passed the full
:func:`check` when they were first seen, so only new names, free-text fields and (live)
the event time are checked again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callfloor.events import (
    AgentState,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    CallRouted,
    Event,
)
from callfloor.processors.calls import KIND_OF
from callfloor.processors.limits import (
    Refusal,
    cardinality_refusal,
    name_refusal,
    too_old_refusal,
)

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor


def is_duplicate(proc: FloorProcessor, event: Event) -> bool:
    """Whether ``event`` would be dropped as a duplicate (a peek: nothing is recorded)."""
    if event.id is not None:
        return proc.ids.known(event.id)
    if isinstance(event, AgentState):
        track = proc.agents.get(event.agent)
        return track is not None and track.has_duplicate(event.ts, event.state)  # type: ignore[arg-type]
    call = proc.calls.get(event.call_id)
    if (
        isinstance(event, CallQueued)
        and call is not None
        and call.leg is not None
        and call.leg.queue == event.queue
        and event.ts >= call.last_ts  # type: ignore[operator]
    ):
        return True  # already waiting in this queue
    return call is not None and call.has_duplicate(
        event.ts,  # type: ignore[arg-type]
        KIND_OF[type(event)],
        getattr(event, "agent", None),
    )


def check(proc: FloorProcessor, event: Event) -> Refusal | None:
    """Why ``event`` would be refused by the SPEC §9 limits, or None if it is admitted."""
    limits = proc.limits
    refusal = name_refusal(event, limits)
    if refusal is not None:
        return refusal
    agent = getattr(event, "agent", None)
    creates_site = isinstance(event, AgentState) or (
        isinstance(event, CallQueued) and event.queue not in proc.queues
    )
    refusal = cardinality_refusal(
        event,
        limits,
        queues=len(proc.queues),
        has_queue=getattr(event, "queue", None) in proc.queues,
        sites=len(proc.sites),
        has_site=not creates_site or event.site in proc.sites,
        agents=len(proc.agents),
        has_agent=agent is None or agent in proc.agents,
    )
    if refusal is not None:
        return refusal
    if proc.live:
        horizon = proc.clock - limits.max_lateness_s
        ts: float = event.ts  # type: ignore[assignment]
        if ts < horizon:
            return too_old_refusal(ts, horizon, limits.max_lateness_s)
    return None


def admit(proc: FloorProcessor, event: Event) -> Refusal | None:
    """:meth:`check`, cheaply for the common case: names of known queues, agents,
    sites and calls passed it when they were first seen.

    Dispatches on the event's class, so each field is read directly (compiled, a
    generic attribute lookup per field cost a sixth of a replay).
    """
    limits = proc.limits
    limit = limits.max_name_length
    key = event.id
    if key is not None and len(key) > limit:
        return check(proc, event)
    if proc.live:
        ts: float = event.ts  # type: ignore[assignment]
        if ts < proc.clock - limits.max_lateness_s:
            return check(proc, event)
    if isinstance(event, AgentState):
        reason = event.reason
        team = event.team
        name = event.name
        if (
            event.agent in proc.agents
            and event.site in proc.sites
            and event.queues is None
            and (reason is None or len(reason) <= limit)
            and (team is None or len(team) <= limit)
            and (name is None or len(name) <= limit)
        ):
            return None
        return check(proc, event)
    if event.call_id not in proc.calls and (len(event.call_id) > limit or len(event.site) > limit):
        return check(proc, event)
    if isinstance(event, CallQueued):
        if event.queue not in proc.queues:
            return check(proc, event)
        return None
    if isinstance(event, CallEnded):
        if event.agent is not None and event.agent not in proc.agents:
            return check(proc, event)
        return None
    # The other call events may name their queue; unused here, but still a name.
    queue = event.queue
    if queue is not None and len(queue) > limit:
        return check(proc, event)
    if isinstance(event, CallAnswered | CallRouted | CallMissed):
        if event.agent not in proc.agents:
            return check(proc, event)
        if isinstance(event, CallMissed) and event.reason is not None and len(event.reason) > limit:
            return check(proc, event)
    elif isinstance(event, CallDequeued) and event.reason is not None and len(event.reason) > limit:
        return check(proc, event)
    return None
