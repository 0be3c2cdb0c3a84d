"""The read API of the processor: typed views at its clock.

``FloorProcessor.view`` is a :class:`FloorReader`. Every method renders only
what it is asked for (one queue reads one queue's windows), at the processor's
clock, and never changes what the processor computes next. Callers advance the
clock first (``proc.tick(now)``), so a read reflects every change up to exactly
``as_of``.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import msgspec

from callfloor.processors.views import (
    AgentDetail,
    AgentInfo,
    AgentView,
    Counters,
    Document,
    ProcessorStats,
    QueueInfo,
    QueueTotals,
    QueueView,
    Severity,
    SiteView,
    ViolationCount,
    ViolationKind,
    ViolationView,
    WaitHistogram,
)

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor


def _s() -> ModuleType:
    # snapshot imports the engine, which imports this module.
    from callfloor.processors import snapshot

    return snapshot


class FloorReader:
    """Typed, per-entity reads of one processor (see the module docstring)."""

    __slots__ = ("_proc",)

    def __init__(self, proc: FloorProcessor) -> None:
        self._proc = proc

    # ------------------------------------------------------------------ time

    @property
    def as_of(self) -> float:
        """The instant every read describes (the processor clock)."""
        return self._proc.clock

    @property
    def version(self) -> int:
        """Grows whenever state changed (not when only the clock moved): a cache key part."""
        return self._proc.version

    # ------------------------------------------------------------------ queues and sites

    def queue_names(self) -> list[str]:
        """Listed queues (configured, or named by a valid ``call_queued``), sorted."""
        return sorted(n for n, q in self._proc.queues.items() if q.listed)

    def queue(self, name: str) -> QueueView | None:
        """One queue as in the document, or None if it is not listed."""
        proc = self._proc
        q = proc.queues.get(name)
        if q is None or not q.listed:
            return None
        view = _s().QueueView(proc, q)
        return msgspec.convert(
            {
                "site": q.site,
                "windows": {
                    label: _s().window_doc(s, m, q.policy.sl_formula)
                    for label, (s, m) in view.windows()
                },
                "live": _s().queue_live(proc, q, view),
            },
            QueueView,
        )

    def queue_info(self, name: str) -> QueueInfo | None:
        """A listed queue's site, channel and policy."""
        q = self._proc.queues.get(name)
        if q is None or not q.listed:
            return None
        p = q.policy
        return QueueInfo(
            name=name,
            site=q.site,
            channel=q.channel,
            sl_threshold_s=p.sl_threshold_s,
            sl_target=p.sl_target,
            short_abandon_s=p.short_abandon_s,
            sl_formula=p.sl_formula,
            default_aht_s=p.default_aht_s,
            configured=name in self._proc.config.queues,
        )

    def queue_totals(self, name: str) -> QueueTotals | None:
        """A listed queue's lifetime totals and wait histograms."""
        from callfloor.processors.windows import COUNT_NAMES, HANDLE_US, WAIT_US

        q = self._proc.queues.get(name)
        if q is None or not q.listed:
            return None
        bounds = list(q.bounds)
        wait_s = q.totals[WAIT_US] / 1e6
        return QueueTotals(
            counts={n: q.totals[i] for i, n in enumerate(COUNT_NAMES)},
            handle_s=q.totals[HANDLE_US] / 1e6,
            answered_wait_s=wait_s,
            answered=WaitHistogram(bounds=bounds, counts=list(q.hist_answered), sum_s=wait_s),
            abandoned=WaitHistogram(
                bounds=bounds, counts=list(q.hist_abandoned), sum_s=q.abandoned_wait_us / 1e6
            ),
        )

    def site_names(self) -> list[str]:
        """Sites of listed queues and of agents, sorted."""
        return sorted(self.document().sites)

    def site(self, name: str) -> SiteView | None:
        """One site's roll-up, or None if it is not listed."""
        return self.document().sites.get(name)

    # ------------------------------------------------------------------ agents

    def agent_names(self) -> list[str]:
        """Agents that sent a valid ``agent_state``, sorted."""
        return sorted(n for n, a in self._proc.agents.items() if a.known)

    def agent(self, name: str) -> AgentView | None:
        """One agent as in the document, or None."""
        a = self._proc.agents.get(name)
        if a is None or not a.known:
            return None
        return msgspec.convert(_s().agent_today(self._proc, a), AgentView)

    def agent_info(self, name: str) -> AgentInfo | None:
        """An agent's display name, team, site and queues."""
        a = self._proc.agents.get(name)
        if a is None or not a.known:
            return None
        return AgentInfo(
            name=name,
            display_name=a.display_name,
            team=a.team,
            site=a.site,
            queues=list(a.queues),
        )

    def agent_detail(self, name: str) -> AgentDetail | None:
        """One agent with its identity and its violations (for the HTTP API)."""
        view = self.agent(name)
        info = self.agent_info(name)
        if view is None or info is None:
            return None
        return AgentDetail(
            name=info.name,
            display_name=info.display_name,
            team=info.team,
            site=info.site,
            queues=info.queues,
            state=view.state,
            reason=view.reason,
            state_since=view.state_since,
            not_ready_today_s=view.not_ready_today_s,
            answered_today=view.answered_today,
            missed_today=view.missed_today,
            violations=self.violations(agent=name),
        )

    def violations(
        self, *, agent: str | None = None, active: bool | None = None
    ) -> list[ViolationView]:
        """Violations started by ``as_of`` in document order; filter by agent or activity."""
        proc = self._proc
        now = proc.clock
        chosen = sorted(
            (
                v
                for v in proc.violations
                if v.started_at <= now and (agent is None or v.agent == agent)
            ),
            key=lambda v: (v.started_at, v.agent, v.kind, v.uid),
        )
        items = [msgspec.convert(_s().violation_doc(proc, v), ViolationView) for v in chosen]
        if active is None:
            return items
        return [v for v in items if (v.ended_at is None) == active]

    # ------------------------------------------------------------------ bulk

    def queues(self) -> dict[str, QueueView]:
        """Every listed queue, by name (sorted), as in the document."""
        return self.document().queues

    def sites(self) -> dict[str, SiteView]:
        """Every listed site, by name (sorted), as in the document."""
        return self.document().sites

    def agents(self) -> dict[str, AgentView]:
        """Every listed agent, by name (sorted), as in the document."""
        return self.document().agents

    # ------------------------------------------------------------------ whole floor

    def counters(self) -> Counters:
        """The document's counters."""
        return msgspec.convert(dict(self._proc.counters), Counters)

    def stats(self) -> ProcessorStats:
        """The processor's self-metrics."""
        proc = self._proc

        def counts(table: dict[tuple[str, str], int]) -> list[ViolationCount]:
            return [
                ViolationCount(ViolationKind(k), Severity(s), n)
                for (k, s), n in sorted(table.items())
            ]

        active: dict[tuple[str, str], int] = {}
        for v in proc.violations:
            if v.ended_at is None and v.started_at <= proc.clock:
                active[(v.kind, v.severity)] = active.get((v.kind, v.severity), 0) + 1
        clock = proc.clock
        return ProcessorStats(
            clock=clock if clock != float("-inf") else None,
            events_by_type=proc.events_by_type,
            rejected_by_reason=dict(proc.rejected_by_reason),
            violations_active=counts(active),
            violations_started=counts(proc.violations_started),
            violations_retracted=counts(proc.violations_retracted),
            expired=dict(proc.expired),
            open_legs=len(proc.calls),
            timers_pending=len(proc.timers),
            history_events=0,
        )

    def document(self) -> Document:
        """The SPEC §7 document at ``as_of``."""
        return msgspec.convert(_s().build_document(self._proc), Document)
