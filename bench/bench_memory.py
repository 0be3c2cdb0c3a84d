"""Memory per agent and per queue of the processor state (tracemalloc).

Agents: 10,000 agents log in (three queues each, team, name) and go through a
not-ready, wrap-up and available spell; the bytes allocated by the processor
divided by the agents. Queues: 500 queues each with an hour of traffic (one call a
minute: queued, answered, ended, so records sit in the rolling windows), divided
by the queues; an idle configured queue is reported too, and the busy figure per call
(each call's history is kept for ``[limits] max_lateness`` live, and for the whole
replay, so late events apply exactly). Events carry no ``id``; the memory per
remembered ``id`` (duplicate detection) is measured separately.

    python -m bench.bench_memory
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Literal

from bench.common import machine
from callfloor.config import parse_config
from callfloor.events import AgentState, CallAnswered, CallEnded, CallQueued
from callfloor.processors.engine import FloorProcessor

T0 = 1_795_392_000.0


def _measure(build: object) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep = build()  # type: ignore[operator]
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del keep
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


def agents(n: int = 10_000, ids: bool = False) -> FloorProcessor:
    proc = FloorProcessor(parse_config({}, "<bench>"))
    seq = iter(range(10**9))

    def id_() -> str | None:
        return f"evt-{next(seq):09d}" if ids else None

    for i in range(n):
        name = f"agent-{i:05d}"
        queues = [f"q{i % 50}", f"q{(i + 7) % 50}", f"q{(i + 19) % 50}"]
        proc.apply(
            AgentState(
                ts=T0 + i * 0.01,
                agent=name,
                state="available",
                queues=queues,
                team=f"team-{i % 80}",
                name=f"Agent {i}",
                site="lon",
                id=id_(),
            )
        )
    states: tuple[Literal["not_ready", "wrap_up", "available"], ...] = (
        "not_ready",
        "wrap_up",
        "available",
    )
    for step, state in enumerate(states):
        for i in range(n):
            proc.apply(
                AgentState(
                    ts=T0 + 200 + step * 200 + i * 0.01,
                    agent=f"agent-{i:05d}",
                    state=state,
                    reason="break" if state == "not_ready" else None,
                    site="lon",
                    id=id_(),
                )
            )
    return proc


def queues(n: int = 500, traffic: bool = True) -> FloorProcessor:
    config = {
        "queues": {f"q{i}": {"site": "lon"} for i in range(n)},
    }
    proc = FloorProcessor(parse_config(config, "<bench>"))
    if traffic:
        events: list[CallQueued | CallAnswered | CallEnded] = []
        for minute in range(60):
            for i in range(n):
                t = T0 + minute * 60 + i * 0.001
                cid = f"c{minute}-{i}"
                events.append(CallQueued(ts=t, call_id=cid, queue=f"q{i}", site="lon"))
                events.append(CallAnswered(ts=t + 5, call_id=cid, agent=f"a{i}"))
                events.append(CallEnded(ts=t + 50, call_id=cid, agent=f"a{i}"))
        events.sort(key=lambda e: e.ts)
        for event in events:
            proc.apply(event)
    return proc


def main() -> None:
    print(f"machine: {machine()}")
    n = 10_000
    per_agent = _measure(lambda: agents(n)) / n
    print(
        f"per agent: {per_agent:,.0f} bytes ({n:,} agents, 4 spells each; "
        "pending spell timers included)"
    )
    with_ids = _measure(lambda: agents(n, ids=True)) / n
    print(
        f"duplicate memory: {(with_ids - per_agent) / 4:,.0f} bytes per remembered event id "
        "(bounded by [ingest] dedup_window / [limits] max_lateness and dedup_max_entries; "
        "events without id are compared with their call's or agent's history)"
    )
    q = 500
    idle = _measure(lambda: queues(q, traffic=False)) / q
    busy = _measure(lambda: queues(q, traffic=True)) / q
    print(
        f"per queue: {idle:,.0f} bytes idle; "
        f"{busy:,.0f} bytes with an hour of traffic at 1 call/min"
    )
    print(
        f"per call (queued, answered, ended; history, window records, call end): "
        f"{(busy - idle) / 60:,.0f} bytes"
    )


if __name__ == "__main__":
    main()
