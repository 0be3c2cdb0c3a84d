"""The SPEC §7 document: the processor's state rendered as plain JSON-ready data.

Rendering is a read: it never changes what the processor will compute next. The
caller advances the clock first (``FloorProcessor.tick``) so the document reflects
every change up to exactly its ``as_of``.
"""

from __future__ import annotations

import math
from typing import Final

from callfloor.processors.engine import Changes, FloorProcessor
from callfloor.processors.erlang import required_agents_c, service_level_c
from callfloor.processors.model import (
    BUSY_STATES,
    LIVE_STATES,
    STAFFED_STATES,
    Agent,
    QueueState,
    Violation,
)
from callfloor.processors.windows import (
    ABANDONED,
    ABANDONED_IN_SL,
    ANSWERED,
    ANSWERED_IN_SL,
    COUNT_NAMES,
    HANDLE_US,
    HANDLED,
    NFIELDS,
    OFFERED,
    SL_OFFERED,
    WAIT_US,
)

Doc = dict[str, object]

ARRIVAL_WINDOW_S: Final = 900.0


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def service_level(formula: str, sums: list[int]) -> float | None:
    """Service level by the queue's or site's formula (SPEC §3); None without a denominator."""
    in_sl = sums[ANSWERED_IN_SL]
    offered = sums[SL_OFFERED]
    if formula == "ignore_abandoned":
        return _ratio(in_sl, offered - sums[ABANDONED_IN_SL])
    if formula == "abandoned_positive":
        return _ratio(in_sl + sums[ABANDONED_IN_SL], offered)
    return _ratio(in_sl, offered)


def window_doc(sums: list[int], max_us: int, formula: str) -> Doc:
    """Counts and rates of one window."""
    doc: Doc = {name: sums[i] for i, name in enumerate(COUNT_NAMES)}
    answered = sums[ANSWERED]
    abandoned = sums[ABANDONED]
    doc["service_level"] = service_level(formula, sums)
    doc["abandon_rate"] = _ratio(abandoned, answered + abandoned)
    doc["asa_s"] = sums[WAIT_US] / answered / 1e6 if answered > 0 else None
    doc["max_wait_s"] = max_us / 1e6 if max_us >= 0 else None
    handled = sums[HANDLED]
    doc["aht_s"] = sums[HANDLE_US] / handled / 1e6 if handled > 0 else None
    return doc


def occupancy(counts: dict[str, int]) -> float | None:
    busy = sum(counts.get(s, 0) for s in BUSY_STATES)
    staffed = sum(counts.get(s, 0) for s in STAFFED_STATES)
    return busy / staffed if staffed > 0 else None


def live_agents(counts: dict[str, int]) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in LIVE_STATES}


class QueueView:
    """Window sums of one queue at the processor's clock, computed once per render.

    Reading moves the queue's window cursors to the clock, which changes nothing
    that is computed next.
    """

    __slots__ = ("by_label", "day", "interval", "rolling")

    def __init__(self, proc: FloorProcessor, q: QueueState) -> None:
        now = proc.clock
        cal = proc.site(q.site).calendar
        q.windows.advance(now)
        self.rolling = [q.windows.rolling(i) for i in range(len(proc.widths))]
        self.interval = q.windows.interval(cal.interval_start(now))
        self.day = q.windows.day(cal.day_start(now))
        self.by_label = {label: self.rolling[i] for label, i in proc.window_index.items()}

    def windows(self) -> list[tuple[str, tuple[list[int], int]]]:
        return [*self.by_label.items(), ("interval", self.interval), ("today", self.day)]


def queue_agent_counts(proc: FloorProcessor, name: str) -> dict[str, int]:
    """Agents serving queue ``name`` by state (logged_out included; callers drop it)."""
    counts: dict[str, int] = {}
    for group in proc.groups_by_queue.get(name, ()):
        for state, n in proc.groups[group].items():
            counts[state] = counts.get(state, 0) + n
    return counts


def queue_live(proc: FloorProcessor, q: QueueState, view: QueueView) -> Doc:
    """Live values of one queue at the clock (SPEC §3)."""
    now = proc.clock
    oldest = q.oldest_start()
    counts = queue_agent_counts(proc, q.name)
    offered_15m = view.rolling[proc.idx_15m][0][OFFERED]
    rate = offered_15m / ARRIVAL_WINDOW_S
    required: int | None = None
    projected: float | None = None
    if offered_15m > 0:
        s60 = view.rolling[proc.idx_60m][0]
        policy = q.policy
        aht = s60[HANDLE_US] / s60[HANDLED] / 1e6 if s60[HANDLED] > 0 else policy.default_aht_s
        staffed = sum(counts.get(s, 0) for s in STAFFED_STATES)
        if aht > 0:
            load = rate * aht
            required = required_agents_c(load, aht, policy.sl_threshold_s, policy.sl_target)
            projected = (
                service_level_c(staffed, load, policy.sl_threshold_s, aht)
                if staffed > load
                else 0.0
            )
        else:
            # Calls handled in zero time (1 s timestamps) offer no load: the Erlang C
            # limit as AHT -> 0 is one agent, and any staffed agent meets every target.
            required = 1
            projected = 1.0 if staffed > 0 else 0.0
    return {
        "waiting": len(q.open),
        "longest_wait_s": max(0.0, now - oldest) if oldest is not None else 0.0,
        "agents": live_agents(counts),
        "occupancy": occupancy(counts),
        "arrival_rate_per_s": rate,
        "required_agents": required,
        "projected_service_level": projected,
    }


def site_live(
    proc: FloorProcessor, site_name: str, names: list[str], views: dict[str, QueueView]
) -> Doc:
    """Live values of a site from its queues (``names``) and its agents (SPEC §3)."""
    now = proc.clock
    longest = 0.0
    for n in names:
        oldest = proc.queues[n].oldest_start()
        if oldest is not None and now - oldest > longest:
            longest = now - oldest
    offered_15m = sum(views[n].rolling[proc.idx_15m][0][OFFERED] for n in names)
    counts = proc.site(site_name).agent_counts
    return {
        "waiting": sum(len(proc.queues[n].open) for n in names),
        "longest_wait_s": longest,
        "agents": live_agents(counts),
        "occupancy": occupancy(counts),
        "arrival_rate_per_s": offered_15m / ARRIVAL_WINDOW_S,
    }


def agent_today(proc: FloorProcessor, a: Agent) -> Doc:
    """An agent's document entry at the processor's clock (SPEC §4)."""
    now = proc.clock
    fresh = now < a.count_until  # the counters belong to [count_from, count_until)
    return {
        "state": a.state,
        "reason": a.reason,
        "state_since": a.since,
        "not_ready_today_s": proc.not_ready_today(a, now),
        "answered_today": a.answered_today if fresh else 0,
        "missed_today": a.missed_today if fresh else 0,
    }


def violation_doc(proc: FloorProcessor, v: Violation) -> Doc:
    """One violation as in the document, its value at the processor's clock."""
    return {
        "kind": v.kind,
        "agent": v.agent,
        "severity": v.severity,
        "started_at": v.started_at,
        "ended_at": v.ended_at,
        "value": proc.violation_value(v, proc.clock),
    }


def changes_doc(proc: FloorProcessor, changes: Changes) -> Doc:
    """A change set as plain data: names that changed, and violations as of the clock.

    A violation that a late event took back is listed with ``"retracted": true``.
    """
    return {
        "as_of": float(proc.clock),
        "queues": sorted(n for n in changes.queues if n in proc.queues and proc.queues[n].listed),
        "sites": sorted(changes.sites),
        "agents": sorted(n for n in changes.agents if n in proc.agents and proc.agents[n].known),
        "violations": [
            {**violation_doc(proc, v), "retracted": v.uid not in proc.violation_by_uid}
            for v in {v.uid: v for v in changes.violations}.values()
        ],
    }


def sum_windows(parts: list[tuple[list[int], int]]) -> tuple[list[int], int]:
    total = [0] * NFIELDS
    max_us = -1
    for sums, mx in parts:
        for i in range(NFIELDS):
            total[i] += sums[i]
        if mx > max_us:
            max_us = mx
    return total, max_us


def build_document(proc: FloorProcessor) -> Doc:
    """The SPEC §7 document at the processor's clock (tick it first)."""
    now = proc.clock
    if not math.isfinite(now):
        raise ValueError("the processor has no time yet: apply an event or tick() first")
    queues_doc: Doc = {}
    views: dict[str, QueueView] = {}
    site_queues: dict[str, list[str]] = {}
    for name in sorted(proc.queues):
        q = proc.queues[name]
        if not q.listed:
            continue
        view = QueueView(proc, q)
        views[name] = view
        site_queues.setdefault(q.site, []).append(name)
        formula = q.policy.sl_formula
        live = queue_live(proc, q, view)
        queues_doc[name] = {
            "site": q.site,
            "windows": {label: window_doc(s, m, formula) for label, (s, m) in view.windows()},
            "live": live,
        }

    agent_sites = {a.site for a in proc.agents.values() if a.known}
    sites_doc: Doc = {}
    for site_name in sorted(set(site_queues) | agent_sites):
        formula = proc.site(site_name).config.sl_formula
        names = site_queues.get(site_name, [])
        windows: Doc = {}
        if names:
            labels = [label for label, _ in views[names[0]].windows()]
            for k, label in enumerate(labels):
                sums, mx = sum_windows([views[n].windows()[k][1] for n in names])
                windows[label] = window_doc(sums, mx, formula)
        else:
            empty = ([0] * NFIELDS, -1)
            for label in [*proc.window_index, "interval", "today"]:
                windows[label] = window_doc(*empty, formula)
        sites_doc[site_name] = {
            "windows": windows,
            "live": site_live(proc, site_name, names, views),
        }

    agents_doc: Doc = {
        name: agent_today(proc, proc.agents[name])
        for name in sorted(proc.agents)
        if proc.agents[name].known
    }

    violations = sorted(
        (v for v in proc.violations if v.started_at <= now),
        key=lambda v: (v.started_at, v.agent, v.kind, v.uid),
    )
    return {
        "as_of": float(now),
        "queues": queues_doc,
        "sites": sites_doc,
        "agents": agents_doc,
        "violations": [violation_doc(proc, v) for v in violations],
        "alerts": [],
        "counters": dict(proc.counters),
    }
