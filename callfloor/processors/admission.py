"""Admission: whether an event may be applied (SPEC §9 limits) or is a duplicate.

Every event is checked before it changes anything. ``FloorProcessor.apply`` does it
cheaply for the common case (the names of known queues, agents, sites and calls passed
the full :func:`check` when they were first seen, so only new names, free-text fields
and, live, the event time are measured again) and calls :func:`check` when in doubt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callfloor.events import (
    AgentState,
    CallQueued,
    Event,
)
from callfloor.processors.calls import KIND_OF
from callfloor.processors.limits import (
    Refusal,
    cardinality_refusal,
    name_refusal,
    open_calls_refusal,
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
    if isinstance(event, CallQueued) and proc.n_waiting >= limits.max_open_calls:
        call = proc.calls.get(event.call_id)
        if call is None or call.leg is None:
            refusal = open_calls_refusal(event, limits, waiting=proc.n_waiting)
            if refusal is not None:
                return refusal
    if proc.live:
        horizon = proc.clock - limits.max_lateness_s
        ts: float = event.ts  # type: ignore[assignment]
        if ts < horizon:
            return too_old_refusal(ts, horizon, limits.max_lateness_s)
    return None
