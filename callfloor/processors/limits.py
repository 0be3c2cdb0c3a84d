"""SPEC §9 limits on what one event may add to the floor.

A faulty or hostile producer must not be able to grow the floor without bound: a
1 MB queue name makes every scrape enormous, 20,000 invented queues make
``/metrics`` hundreds of megabytes. Each event is checked before it is applied;
one beyond a limit is refused with a reason, counted, and never applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from callfloor.config import LimitsConfig
from callfloor.events import AgentState, CallQueued, Event

# Reasons, as counted in ``rejected_by_reason`` and listed in HTTP answers.
NAME_TOO_LONG: Final = "name_too_long"
TOO_MANY_QUEUES: Final = "too_many_queues"
TOO_MANY_SITES: Final = "too_many_sites"
TOO_MANY_AGENTS: Final = "too_many_agents"
TS_TOO_OLD: Final = "ts_too_old"
TOO_MANY_CALLS: Final = "too_many_calls"
# Decided by the sources as they decode (callfloor.ingest.future), not here: listed so
# every reason is counted from 0.
TOO_MANY_FUTURE_EVENTS: Final = "too_many_future_events"

LIMIT_REASONS: Final[tuple[str, ...]] = (
    NAME_TOO_LONG,
    TOO_MANY_QUEUES,
    TOO_MANY_SITES,
    TOO_MANY_AGENTS,
    TS_TOO_OLD,
    TOO_MANY_CALLS,
    TOO_MANY_FUTURE_EVENTS,
)

# The text fields of an event that are names (SPEC §9 lists them; ``name`` is the
# agent's display name, which reaches the API and metric labels just the same).
_NAME_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "site",
    "call_id",
    "queue",
    "agent",
    "team",
    "reason",
    "name",
)


class Refusal(msgspec.Struct, frozen=True):
    """Why an otherwise valid event is not applied."""

    reason: str
    field: str
    message: str


def name_refusal(event: Event, limits: LimitsConfig) -> Refusal | None:
    """A refusal if one of the event's names is longer than ``max_name_length``."""
    limit = limits.max_name_length
    for field in _NAME_FIELDS:
        value = getattr(event, field, None)
        if isinstance(value, str) and len(value) > limit:
            return Refusal(
                NAME_TOO_LONG,
                field,
                f"`{field}`: {len(value)} characters, the limit is {limit} "
                "([limits] max_name_length)",
            )
    if isinstance(event, AgentState) and event.queues is not None:
        if len(event.queues) > limits.max_queues:
            return Refusal(
                TOO_MANY_QUEUES,
                "queues",
                f"`queues`: {len(event.queues)} queues, the limit is {limits.max_queues} "
                "([limits] max_queues)",
            )
        for i, queue in enumerate(event.queues):
            if len(queue) > limit:
                return Refusal(
                    NAME_TOO_LONG,
                    f"queues[{i}]",
                    f"`queues[{i}]`: {len(queue)} characters, the limit is {limit} "
                    "([limits] max_name_length)",
                )
    return None


def cardinality_refusal(
    event: Event,
    limits: LimitsConfig,
    *,
    queues: int,
    has_queue: bool,
    sites: int,
    has_site: bool,
    agents: int,
    has_agent: bool,
) -> Refusal | None:
    """A refusal if the event would add a queue, site or agent beyond the caps.

    The caller says how many of each exist and whether the event's own are known.
    """
    if not has_site and sites >= limits.max_sites:
        return Refusal(
            TOO_MANY_SITES,
            "site",
            f"`site`: {event.site!r} would be site number {sites + 1}, the limit is "
            f"{limits.max_sites} ([limits] max_sites)",
        )
    if isinstance(event, CallQueued) and not has_queue and queues >= limits.max_queues:
        return Refusal(
            TOO_MANY_QUEUES,
            "queue",
            f"`queue`: {event.queue!r} would be queue number {queues + 1}, the limit is "
            f"{limits.max_queues} ([limits] max_queues)",
        )
    if not has_agent and agents >= limits.max_agents:
        return Refusal(
            TOO_MANY_AGENTS,
            "agent",
            f"`agent`: would be agent number {agents + 1}, the limit is "
            f"{limits.max_agents} ([limits] max_agents)",
        )
    return None


def open_calls_refusal(event: CallQueued, limits: LimitsConfig, *, waiting: int) -> Refusal | None:
    """A refusal if ``event`` would start one more waiting call than ``max_open_calls``.

    Only a ``call_queued`` for a call that is not waiting already counts: a requeue
    moves a waiting call, and a repeat in the same queue is a duplicate.
    """
    if waiting < limits.max_open_calls:
        return None
    return Refusal(
        TOO_MANY_CALLS,
        "call_id",
        f"`call_id`: {event.call_id!r} would be waiting call number {waiting + 1}, "
        f"the limit is {limits.max_open_calls} ([limits] max_open_calls)",
    )


def too_old_refusal(ts: float, horizon: float, max_lateness_s: float) -> Refusal:
    """The refusal of an event older than the live horizon (clock minus max lateness).

    The message says how old, and what to do: a file of past events (a simulated day
    starts on a fixed date) is for ``callfloor replay``, not for the live service.
    """
    clock = horizon + max_lateness_s
    return Refusal(
        TS_TOO_OLD,
        "ts",
        f"`ts`: {ts} ({_utc(ts)}) is {_span(clock - ts)} before the service clock "
        f"({_utc(clock)}); the live service takes events at most {_span(max_lateness_s)} "
        "late ([limits] max_lateness). Replay past events with `callfloor replay`; "
        "`callfloor simulate --realtime` makes events from now",
    )


def _utc(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "out of range"


def _span(seconds: float) -> str:
    """A duration in its largest whole unit: "14 d", "3 h", "90 s"."""
    value, unit = seconds, "s"
    for name, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            value, unit = seconds / size, name
            break
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"
