"""What changed since the last drain, and the violations readers have been told about.

Events mark the queues, sites, queue lists and agents they touch. Violations are
derived (see :mod:`~callfloor.processors.violations`), so the tracker keeps, per
agent, the violations last reported and compares: a new one *started*, one whose end
appeared *ended*, one that a late event shows never happened is *retracted*. Time
alone also changes violations (a limit passes while nothing arrives): after looking
at an agent the tracker notes the next instant that can happen, and looks again then.
That is also where the lifetime started/retracted counts for Prometheus come from.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from callfloor.processors.derive import agent_violations, next_transition
from callfloor.processors.retention import VIOLATION_RETENTION_S
from callfloor.processors.views import ChangeSet, Severity, ViolationChange, ViolationKind
from callfloor.processors.violations import MISSED_CALLS_EXCEEDED, Violation

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor

Key = tuple[float, str, str]


def _change(agent: str, v: Violation, retracted: bool) -> ViolationChange:
    return ViolationChange(
        kind=ViolationKind(v.kind),
        agent=agent,
        severity=Severity(v.severity),
        started_at=v.started_at,
        ended_at=v.started_at if retracted else v.ended_at,
        value=v.value,
        retracted=retracted,
    )


class ChangeTracker:
    """Marks and violation bookkeeping of one processor (pure, no I/O)."""

    def __init__(self, proc: FloorProcessor) -> None:
        self.proc = proc
        self.queues: set[str] = set()
        self.sites: set[str] = set()
        self.groups: set[tuple[str, ...]] = set()
        self.agents: set[str] = set()
        self.published: dict[str, dict[Key, Violation]] = {}
        # When each agent is to be looked at again, and a heap of those instants (an entry
        # whose instant is no longer the agent's is skipped when it comes due).
        self.due: dict[str, float] = {}
        self.watch: list[tuple[float, str]] = []
        self.pending: list[ViolationChange] = []
        self.started: dict[tuple[str, str], int] = {}
        self.retracted: dict[tuple[str, str], int] = {}
        self.dirty: set[str] = set()
        # Each agent's queue list and site when last looked at: an agent that moved
        # changed the live counts of the queues and sites it left and joined.
        self.placed: dict[str, tuple[tuple[str, ...], str]] = {}

    def agent(self, name: str) -> None:
        """Mark an agent changed (its violations are compared at the next update)."""
        self.dirty.add(name)

    def update(self) -> None:
        """Compare the violations of every changed or due agent with what was published."""
        proc = self.proc
        now = proc.clock
        watch = self.watch
        dirty = self.dirty
        if not proc.changes:
            dirty.update(proc.agents)  # no marks were kept: look at every agent
        due = self.due
        while watch and watch[0][0] <= now:
            at, name = heapq.heappop(watch)
            if due.get(name) == at:
                del due[name]
                dirty.add(name)
        if not dirty:
            return
        keep_from = now - VIOLATION_RETENTION_S if proc.live else float("-inf")
        self.agents |= dirty
        placed = self.placed
        groups = self.groups
        sites = self.sites
        for name in sorted(dirty):
            track = proc.agents.get(name)
            if track is None:
                continue
            f = track.fold
            if f.known:
                here = (f.group, f.site)
                left = placed.get(name)
                if left is not None:
                    groups.add(left[0])
                    sites.add(left[1])
                groups.add(here[0])
                sites.add(here[1])
                placed[name] = here
            current = {v.key(): v for v in agent_violations(proc, track, now)}
            before = self.published.get(name, {})
            for key, v in current.items():
                old = before.get(key)
                if old is None:
                    k = (v.kind, v.severity)
                    self.started[k] = self.started.get(k, 0) + 1
                    self.pending.append(_change(name, v, False))
                    self.agents.add(name)
                elif old.ended_at != v.ended_at or (
                    v.kind == MISSED_CALLS_EXCEEDED and old.value != v.value
                ):
                    self.pending.append(_change(name, v, False))
                    self.agents.add(name)
            for key, old in before.items():
                if key in current:
                    continue
                if old.ended_at is not None and old.ended_at < keep_from:
                    continue  # forgotten by live retention, not taken back
                k = (old.kind, old.severity)
                self.retracted[k] = self.retracted.get(k, 0) + 1
                self.pending.append(_change(name, old, True))
                self.agents.add(name)
            if current:
                self.published[name] = current
            else:
                self.published.pop(name, None)
            upcoming = next_transition(proc, track, now)
            if upcoming is not None:
                # Only an earlier instant needs an entry: the one scheduled looks again.
                scheduled = due.get(name)
                if scheduled is None or upcoming < scheduled:
                    due[name] = upcoming
                    heapq.heappush(watch, (upcoming, name))
        dirty.clear()

    def drain(self) -> ChangeSet:
        """The change set since the previous drain; a new one starts."""
        self.update()
        proc = self.proc
        queues = self.queues
        sites = self.sites
        listed = proc.queues
        for name in queues:
            q = listed.get(name)
            if q is not None:
                sites.add(q.site)
        for group in self.groups:
            queues.update(group)
        agents = proc.agents
        changes = ChangeSet(
            as_of=proc.clock,
            queues=sorted(n for n in queues if n in listed and listed[n].listed),
            sites=sorted(sites),
            agents=sorted(n for n in self.agents if n in agents and agents[n].fold.known),
            violations=self.pending,
        )
        self.queues = set()
        self.sites = set()
        self.groups = set()
        self.agents = set()
        self.pending = []
        return changes
