"""Helpers (no tests) for the processor property tests: small random call-floor traces.

A trace is a list of canonical event dicts around a site-local midnight of a non-UTC
site, built so that the SPEC §9 claim applies to it: its numbers depend only on its
events. So within one call (and within one agent) no two distinct events share a
``ts`` (arrival order breaks such ties, by design), ids are unique per distinct event,
and repeats are exact copies (a duplicate, with or without its id).

The traces mix what the order-independent core must get right: requeues, orphans,
ends up to and beyond the 60 s clock-skew rule, duplicates with and without ids,
ring-all misses, exempt and limited not-ready reasons, wrap-up after call end, and
midnight in Asia/Shanghai.
"""

from __future__ import annotations

from typing import Any

import msgspec
from helpers import config, decode
from hypothesis import strategies as st

from callfloor.config import Config
from callfloor.events import Event
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document

Doc = dict[str, Any]
EventDict = dict[str, Any]

# 2026-11-22T00:00:00+08:00: midnight in Asia/Shanghai (16:00 UTC the day before).
SH_MIDNIGHT = 1_795_276_800.0
# Traces start a little before that midnight; times are multiples of STEP seconds.
START = SH_MIDNIGHT - 240.0
STEP = 5.0

CALLS = ("c1", "c2", "c3", "c4")
AGENTS = ("a1", "a2", "a3")
QUEUES = ("q1", "q2", "q3")
REASONS = (None, "break", "training", "lunch")

# Tight limits, so that a few minutes of events cross every kind of limit.
TOML: dict[str, Any] = {
    "sites": {"sh": {"timezone": "Asia/Shanghai", "interval_minutes": 15}},
    "queues": {
        "q1": {"site": "sh", "sl_threshold_s": 20, "short_abandon_s": 5},
        "q2": {"site": "sh", "sl_threshold_s": 30, "short_abandon_s": 0},
        "q3": {"sl_threshold_s": 15, "short_abandon_s": 5},
    },
    "agents": {
        "not_ready_max": "60s",
        "not_ready_reason_max": {"break": "90s"},
        "exempt_reasons": ["training"],
        "daily_not_ready": ["100s", "200s"],
        "wrap_up_max": "30s",
        "missed_calls_max": 2,
        "stale_after": "10m",
    },
}


def floor_config(**limits: Any) -> Config:
    """The traces' configuration, with optional ``[limits]`` keys."""
    data = dict(TOML)
    if limits:
        data["limits"] = limits
    return config(data)


# One drawn step: (kind, entity index, other index, time slot, variant).
_steps = st.tuples(
    st.sampled_from(
        (
            "queued",
            "queued",
            "queued",
            "answered",
            "answered",
            "abandoned",
            "dequeued",
            "ended",
            "ended",
            "missed",
            "routed",
            "state",
            "state",
            "state",
            "state",
        )
    ),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 120),
    st.integers(0, 7),
)


def _event(kind: str, i: int, j: int, t: float, v: int) -> EventDict:
    call = CALLS[i % len(CALLS)]
    agent = AGENTS[j % len(AGENTS)]
    if kind == "queued":
        return {"type": "call_queued", "ts": t, "call_id": call, "queue": QUEUES[j % 3]}
    if kind == "answered":
        return {"type": "call_answered", "ts": t, "call_id": call, "agent": agent}
    if kind == "abandoned":
        return {"type": "call_abandoned", "ts": t, "call_id": call}
    if kind == "dequeued":
        return {"type": "call_dequeued", "ts": t, "call_id": call, "reason": "timeout"}
    if kind == "ended":
        e: EventDict = {"type": "call_ended", "ts": t, "call_id": call}
        if v % 3:
            e["agent"] = agent
        return e
    if kind == "missed":
        return {"type": "call_missed", "ts": t, "call_id": call, "agent": agent}
    if kind == "routed":
        return {"type": "call_routed", "ts": t, "call_id": call, "agent": agent}
    agent = AGENTS[i % len(AGENTS)]
    states = ("available", "on_call", "wrap_up", "not_ready", "not_ready", "wrap_up")
    state = states[j % len(states)] if v < 6 else ("logged_out" if v == 6 else "ringing")
    e = {"type": "agent_state", "ts": t, "agent": agent, "state": state}
    if state == "not_ready":
        reason = REASONS[v % len(REASONS)]
        if reason is not None:
            e["reason"] = reason
    if v % 4 == 0:
        e["queues"] = list(QUEUES[: 1 + j % 3])
    e["site"] = "sh" if (i + v) % 5 else "default"
    return e


def _entity(e: EventDict) -> str:
    return "call:" + e["call_id"] if "call_id" in e else "agent:" + e["agent"]


_call_scripts = st.tuples(
    st.integers(0, 2),  # queue
    st.integers(0, 100),  # queued at slot
    st.sampled_from(("answer", "answer", "answer", "abandon", "dequeue", "none")),
    st.integers(-20, 12),  # wait in slots (negative: the end carries an earlier ts)
    st.integers(0, 2),  # answering agent
    st.integers(1, 12),  # talk in slots
    st.sampled_from(("before", "at", "after", "after", "none")),  # wrap_up vs call_ended
    st.integers(0, 12),  # after-call work in slots
    st.integers(0, 3),  # variant: requeue, ring-all misses, ids, unnamed end
)


def _script(
    call: str, drawn: tuple[int, int, str, int, int, int, str, int, int]
) -> list[EventDict]:
    queue, slot, outcome, wait, agent_i, talk, wrap, acw, v = drawn
    t0 = START + slot * STEP
    queue_name = QUEUES[queue]
    out: list[EventDict] = [{"type": "call_queued", "ts": t0, "call_id": call, "queue": queue_name}]
    if v == 1:  # requeued into the next queue a little later
        out.append(
            {
                "type": "call_queued",
                "ts": t0 + 2 * STEP,
                "call_id": call,
                "queue": QUEUES[(queue + 1) % 3],
            }
        )
    te = t0 + wait * STEP + (3 * STEP if v == 1 else 0.0)
    agent = AGENTS[agent_i]
    if v == 2:  # ring-all: every other agent misses the call first
        for k, other in enumerate(a for a in AGENTS if a != agent):
            out.append({"type": "call_missed", "ts": te - 1 - k, "call_id": call, "agent": other})
    if outcome == "abandon":
        out.append({"type": "call_abandoned", "ts": te, "call_id": call})
    elif outcome == "dequeue":
        out.append({"type": "call_dequeued", "ts": te, "call_id": call, "reason": "overflow"})
    elif outcome == "answer":
        out.append({"type": "call_answered", "ts": te, "call_id": call, "agent": agent})
        tend = te + talk * STEP
        ended: EventDict = {"type": "call_ended", "ts": tend, "call_id": call}
        if v != 3:
            ended["agent"] = agent
        out.append(ended)
        shift = {"before": -STEP, "at": 0.0, "after": 1.0, "none": None}[wrap]
        if shift is not None:
            tw = tend + shift
            out.append({"type": "agent_state", "ts": tw, "agent": agent, "state": "wrap_up"})
            out.append(
                {
                    "type": "agent_state",
                    "ts": tw + acw * STEP + 1.5,
                    "agent": agent,
                    "state": "available",
                }
            )
    return out


@st.composite
def traces(draw: st.DrawFn, max_size: int = 30) -> list[EventDict]:
    """A small trace in ``ts`` order (see the module docstring)."""
    scripts = draw(st.lists(_call_scripts, max_size=len(CALLS)))
    candidates: list[EventDict] = []
    for n, drawn in enumerate(scripts):
        candidates += _script(CALLS[n], drawn)
    noise = draw(st.lists(_steps, min_size=1, max_size=max_size))
    candidates += [_event(kind, i, j, START + slot * STEP, v) for kind, i, j, slot, v in noise]
    variants = draw(st.lists(st.integers(0, 7), min_size=len(candidates), max_size=len(candidates)))
    used: set[tuple[str, float]] = set()
    out: list[EventDict] = []
    for n, (e, v) in enumerate(zip(candidates, variants, strict=True)):
        key = (_entity(e), e["ts"])
        if key in used:
            continue  # one event per call (or agent) and instant
        used.add(key)
        if v in (2, 7):
            e["id"] = f"e{n}"
        out.append(e)
        if v == 5:
            out.append(dict(e))  # redelivered: an exact duplicate (with its id, if any)
    out.sort(key=lambda e: e["ts"])
    return out


def processor_of(events: list[EventDict], cfg: Config, *, live: bool = False) -> FloorProcessor:
    """A processor that has applied ``events`` (through the real decoder) in this order."""
    proc = FloorProcessor(cfg, live=live)
    for e in events:
        proc.apply(decode(e))
    return proc


def decoded(events: list[EventDict]) -> list[Event]:
    """The events decoded by the real decoder."""
    return [decode(e) for e in events]


def document_at(proc: FloorProcessor, at: float) -> Doc:
    """The SPEC §7 document at ``at`` (the processor is ticked there first)."""
    proc.tick(at)
    return build_document(proc)


def comparable(doc: Doc) -> Doc:
    """``doc`` with ``counters.late`` aside and violations in a canonical order."""
    out = dict(doc)
    counters = dict(out["counters"])
    counters.pop("late")
    out["counters"] = counters
    out["violations"] = sorted(out["violations"], key=lambda v: msgspec.json.encode(v))
    return out


def last_ts(events: list[EventDict]) -> float:
    """The latest ``ts`` of the events."""
    return max(float(e["ts"]) for e in events)
