"""Benchmark: ``/metrics`` render time for a large synthetic floor.

Run with ``.venv/bin/python -m bench.bench_metrics`` (``--help`` for sizes). The
acceptance target is a render under 100 ms with 500 queues and 10,000 agents and
per-agent series off.

The floor is built by driving a real :class:`FloorProcessor` with synthetic events
(two hours of traffic, in time order), so every structure the collector reads
(rolling-window records, histograms, agent groups, timers, violations) has a
realistic size. The floor is built through the public API only (``apply``, ``tick``)
and described through ``proc.view``. A render is what the HTTP handler does per
scrape: the collector's reads of the typed read model plus text exposition, after the
clock was ticked.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import pstats
import random
import statistics
import sys
import time

from prometheus_client import generate_latest

from bench.common import machine
from callfloor.config import Config, SiteConfig
from callfloor.events import (
    AgentState,
    CallAbandoned,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallQueued,
    Event,
)
from callfloor.metrics import build_registry, render
from callfloor.processors.engine import FloorProcessor

T0 = 1_795_330_800.0  # 2026-11-23 01:00 UTC, a Monday morning in Asia
SITES = (
    ("sh", "Asia/Shanghai"),
    ("syd", "Australia/Sydney"),
    ("ber", "Europe/Berlin"),
    ("ny", "America/New_York"),
    ("sp", "America/Sao_Paulo"),
)


def build_floor(
    n_queues: int = 500,
    n_agents: int = 10_000,
    hours: float = 2.0,
    calls_per_queue_hour: float = 40.0,
    seed: int = 7,
) -> FloorProcessor:
    """A processor that has applied ``hours`` of synthetic traffic, ticked to the end.

    Each site has ``n_queues / len(SITES)`` queues; agents belong to teams of about
    25 that serve 3 to 6 of their site's queues (a few agents have a personal mix).
    Calls are answered by a free agent of the queue after a short wait, otherwise
    they abandon or are dequeued; answered calls get talk time and wrap-up. Some
    agents take long not-ready breaks, so violations exist too.
    """
    rng = random.Random(seed)
    config = Config(sites={name: SiteConfig(name=name, timezone=tz) for name, tz in SITES})
    site_of_queue = {f"q{i:04d}": SITES[i % len(SITES)][0] for i in range(n_queues)}
    queues_by_site: dict[str, list[str]] = {}
    for q, s in site_of_queue.items():
        queues_by_site.setdefault(s, []).append(q)

    events: list[tuple[float, int, Event]] = []
    seq = 0

    def emit(ev: Event) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (float(ev.ts), seq, ev))  # type: ignore[arg-type]

    # Agents: teams per site serving a few queues each.
    pool: dict[str, list[str]] = {q: [] for q in site_of_queue}
    agent_site: dict[str, str] = {}
    n_teams = max(1, n_agents // 25)
    team_queues: list[tuple[str, list[str]]] = []
    for team in range(n_teams):
        site = SITES[team % len(SITES)][0]
        qs = queues_by_site[site]
        team_queues.append((site, rng.sample(qs, min(len(qs), rng.randint(3, 6)))))
    for i in range(n_agents):
        name = f"a{i:05d}"
        site, qs = team_queues[i % n_teams]
        if rng.random() < 0.1:
            qs = rng.sample(queues_by_site[site], min(len(queues_by_site[site]), 4))
        agent_site[name] = site
        for q in qs:
            pool[q].append(name)
        emit(
            AgentState(
                ts=T0 + rng.random() * 60, agent=name, state="available", queues=qs, site=site
            )
        )

    free_at: dict[str, float] = dict.fromkeys(agent_site, T0 + 60.0)
    end = T0 + hours * 3600.0
    # Long breaks: agents unavailable for a while (feeds not-ready violations).
    for name in rng.sample(sorted(agent_site), n_agents // 10):
        start = T0 + 120 + rng.random() * (end - T0 - 600)
        length = rng.uniform(300, 1500)
        site = agent_site[name]
        emit(AgentState(ts=start, agent=name, state="not_ready", reason="break", site=site))
        emit(AgentState(ts=start + length, agent=name, state="available", site=site))
        free_at[name] = start + length

    n_calls = 0
    for q, site in site_of_queue.items():
        rate = calls_per_queue_hour / 3600.0
        t = T0 + 60.0 + rng.expovariate(rate)
        agents = pool[q]
        while t < end:
            n_calls += 1
            cid = f"c{n_calls}"
            emit(CallQueued(ts=t, call_id=cid, queue=q, site=site))
            wait = rng.expovariate(1 / 15.0)
            free = [a for a in rng.sample(agents, min(4, len(agents))) if free_at[a] <= t + wait]
            if t + wait >= end:
                pass  # still waiting at the end
            elif free:
                a = free[0]
                ans = t + wait
                talk = rng.uniform(60, 400)
                acw = rng.uniform(5, 60)
                free_at[a] = ans + talk + acw
                emit(CallAnswered(ts=ans, call_id=cid, agent=a, queue=q, site=site))
                emit(AgentState(ts=ans, agent=a, state="on_call", site=agent_site[a]))
                if ans + talk < end:
                    emit(CallEnded(ts=ans + talk, call_id=cid, agent=a, site=site))
                    emit(AgentState(ts=ans + talk, agent=a, state="wrap_up", site=agent_site[a]))
                if ans + talk + acw < end:
                    emit(
                        AgentState(
                            ts=ans + talk + acw, agent=a, state="available", site=agent_site[a]
                        )
                    )
            elif rng.random() < 0.8:
                emit(CallAbandoned(ts=t + wait * 2, call_id=cid, queue=q, site=site))
            else:
                emit(CallDequeued(ts=t + wait * 3, call_id=cid, queue=q, site=site))
            t += rng.expovariate(rate)

    proc = FloorProcessor(config)
    apply = proc.apply
    while events:
        _, _, ev = heapq.heappop(events)
        if float(ev.ts) <= end:  # type: ignore[arg-type]
            apply(ev)
    proc.tick(end)
    return proc


def _time_renders(
    proc: FloorProcessor, repeats: int, per_agent: bool
) -> tuple[list[float], int, int]:
    registry = build_registry(proc, per_agent_series=per_agent)
    body = render(registry)  # warm-up (first-use caches, imports)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        body = render(registry)
        times.append(time.perf_counter() - t)
    lines = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    return times, lines, len(body)


def main(argv: list[str] | None = None) -> int:
    """Build the floor, time ``render`` with per-agent series off and on, print a report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--profile", action="store_true", help="cProfile one render (off)")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    t = time.perf_counter()
    proc = build_floor(args.queues, args.agents)
    view = proc.view
    stats = view.stats()
    print(
        f"floor: {len(view.queue_names())} queues, {len(view.agent_names())} agents, "
        f"{view.counters().events} events, {stats.open_legs} waiting, "
        f"{len(view.violations(active=True))} active violations "
        f"(built in {time.perf_counter() - t:.1f} s)"
    )
    target_ms = 100.0
    for per_agent in (False, True):
        times, samples, size = _time_renders(proc, args.repeats, per_agent)
        med = statistics.median(times) * 1000
        verdict = "" if per_agent else (" OK" if med < target_ms else " OVER TARGET")
        print(
            f"per_agent_series={'on ' if per_agent else 'off'}: median {med:7.1f} ms "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, n={len(times)}); "
            f"{samples} samples, {size / 1e6:.2f} MB{verdict}"
        )
    # The share of a scrape that is the read model: the bulk reads the collector makes.
    for label, read in (
        ("view.queues() + view.sites() (off)", lambda: (view.queues(), view.sites())),
        ("view.agents() (on, in addition)", view.agents),
    ):
        reads = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            read()
            reads.append(time.perf_counter() - t)
        print(f"of which {label}: median {statistics.median(reads) * 1000:7.1f} ms")
    # Reference: the library's own exposition of the same registry (the slow path).
    registry = build_registry(proc, per_agent_series=False)
    slow = []
    for _ in range(3):
        t = time.perf_counter()
        generate_latest(registry)
        slow.append(time.perf_counter() - t)
    print(f"reference generate_latest (off): median {statistics.median(slow) * 1000:7.1f} ms")
    if args.profile:
        registry = build_registry(proc, per_agent_series=False)
        render(registry)  # label caches warm, as on a live service
        prof = cProfile.Profile()
        prof.runcall(render, registry)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
