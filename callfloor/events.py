"""Canonical event schema, version 1 (SPEC §1), as msgspec structs.

Decoding validates and converts in one pass: a tagged union on ``type`` picks the
struct, ``ts`` may be epoch seconds or RFC 3339 with an offset and is normalised to
epoch seconds (a float) before any processor sees it. Unknown extra fields are
ignored, so producers may add fields without breaking older callfloor versions.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

AgentStateName = Literal["logged_out", "available", "ringing", "on_call", "wrap_up", "not_ready"]
Channel = Literal["voice", "chat", "email", "callback", "other"]

AGENT_STATES: Final[tuple[str, ...]] = (
    "logged_out",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "not_ready",
)
CHANNELS: Final[tuple[str, ...]] = ("voice", "chat", "email", "callback", "other")

# Event times outside [0, MAX_TS] are rejected at decode (``invalid_ts``): year 3000 is
# far beyond any real feed, and every calendar computation stays representable.
MAX_TS: Final[float] = 32_503_680_000.0  # 3000-01-01T00:00:00Z

# Identifiers must be non-empty: an empty call_id or agent would silently merge
# unrelated calls or agents.
Name = Annotated[str, msgspec.Meta(min_length=1)]


class EventError(ValueError):
    """An event failed validation; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"`{field}`: {problem}")
        self.field = field
        self.problem = problem


class _Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Fields every event carries. ``ts`` is a float once decoding has finished."""

    ts: float | datetime
    id: str | None = None
    site: Name = "default"

    def __post_init__(self) -> None:
        ts = self.ts
        if ts.__class__ is float and 0.0 <= ts <= MAX_TS:  # the usual case, checked first
            return
        if isinstance(ts, datetime):
            if ts.tzinfo is None:
                raise ValueError("`ts`: RFC 3339 time needs an offset (Z or +hh:mm)")
            ts = self.ts = ts.timestamp()
            if not 0.0 <= ts <= MAX_TS:
                raise ValueError("`ts`: must be between 1970-01-01T00:00:00Z and the year 3000")
        elif not math.isfinite(ts) or not 0.0 <= ts <= MAX_TS:
            # Milliseconds (JavaScript's Date.now()) are the usual mistake: say so.
            hint = (
                "; this looks like milliseconds: send a number of seconds"
                if math.isfinite(ts) and MAX_TS < ts <= MAX_TS * 1000.0
                else ""
            )
            raise ValueError(
                f"`ts`: must be a finite epoch time between 0 and {MAX_TS:.0f} (the year 3000)"
                + hint
            )


class CallQueued(_Event, tag="call_queued"):
    """A caller entered a queue: a queue leg starts."""

    call_id: Name
    queue: Name
    channel: Channel = "voice"
    priority: int | None = None


class CallRouted(_Event, tag="call_routed"):
    """A waiting call is offered (ringing) to an agent."""

    call_id: Name
    agent: Name
    queue: Name | None = None


class CallMissed(_Event, tag="call_missed"):
    """An agent did not answer a call offered to it."""

    call_id: Name
    agent: Name
    queue: Name | None = None
    reason: str | None = None


class CallAnswered(_Event, tag="call_answered"):
    """An agent answered a waiting call: the leg ends, the conversation starts."""

    call_id: Name
    agent: Name
    queue: Name | None = None


class CallAbandoned(_Event, tag="call_abandoned"):
    """The caller hung up while waiting."""

    call_id: Name
    queue: Name | None = None


class CallDequeued(_Event, tag="call_dequeued"):
    """The call left the queue other than by answer or abandon."""

    call_id: Name
    queue: Name | None = None
    reason: str | None = None


class CallEnded(_Event, tag="call_ended"):
    """The conversation is over; after-call work may follow."""

    call_id: Name
    agent: Name | None = None


class AgentState(_Event, tag="agent_state"):
    """An agent's state (and optionally its queues, team, name) changed or was repeated."""

    agent: Name
    state: AgentStateName
    reason: str | None = None
    queues: list[Name] | None = None
    team: str | None = None
    name: str | None = None


Event = (
    CallQueued
    | CallRouted
    | CallMissed
    | CallAnswered
    | CallAbandoned
    | CallDequeued
    | CallEnded
    | AgentState
)

EVENT_TYPES: Final[tuple[type[_Event], ...]] = (
    CallQueued,
    CallRouted,
    CallMissed,
    CallAnswered,
    CallAbandoned,
    CallDequeued,
    CallEnded,
    AgentState,
)


def dedup_key(event: Event) -> str | tuple[object, ...]:
    """The identity used to drop redelivered events (SPEC §1).

    With an ``id`` the id alone; without one, ``type`` plus ``call_id`` (or ``agent``),
    ``state`` and ``ts``. A call event that names an agent also keys on the agent:
    with ring-all routing several agents miss the same call at the same instant, and
    each miss counts for its own agent.
    """
    if event.id is not None:
        return event.id
    if isinstance(event, AgentState):
        return ("agent_state", event.agent, event.state, event.ts)
    agent = getattr(event, "agent", None)
    tag = type(event).__struct_config__.tag
    if agent is None:
        return (tag, event.call_id, event.ts)
    return (tag, event.call_id, agent, event.ts)


def to_builtins(event: Event) -> dict[str, object]:
    """The event as a plain JSON-ready dict (with its ``type`` tag)."""
    out = msgspec.to_builtins(event)
    assert isinstance(out, dict)
    return out
