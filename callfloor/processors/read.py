"""The read API of the processor: typed views at its clock.

``FloorProcessor.view`` is a :class:`FloorReader`. Every method renders only what it
is asked for (one queue reads one queue's windows), at the processor's clock, and
never changes what the processor computes next (reading moves the windows' cursors
to the clock, which changes nothing later). Callers advance the clock first
(``proc.tick(now)``), so a read reflects every change up to exactly ``as_of``.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Final

from callfloor.processors.derive import (
    agent_handled_today,
    agent_not_ready_today,
    agent_offered_today,
    agent_today_counts,
    agent_violations,
    answer_rate,
    open_not_ready_since,
)
from callfloor.processors.erlang import least_agents_c, service_level_c
from callfloor.processors.views import (
    AgentDetail,
    AgentInfo,
    AgentLimits,
    AgentRow,
    AgentStateName,
    AgentView,
    AlertView,
    Band,
    Counters,
    Document,
    MetricBands,
    NamePolicy,
    ProcessorStats,
    QueueInfo,
    QueueLive,
    QueueTile,
    QueueTotals,
    QueueView,
    Severity,
    SiteClock,
    SiteLive,
    SiteTotals,
    SiteView,
    Staleness,
    SupervisorView,
    TileThresholds,
    ViolationCount,
    ViolationKind,
    ViolationView,
    WaitHistogram,
    WallboardView,
    WindowStats,
)
from callfloor.processors.windows import (
    ABANDONED,
    ABANDONED_IN_SL,
    ANSWERED,
    ANSWERED_IN_SL,
    COUNT_NAMES,
    DEQUEUED,
    HANDLE_US,
    HANDLED,
    NFIELDS,
    OFFERED,
    SHORT_ABANDONED,
    SL_OFFERED,
    WAIT_US,
)

if TYPE_CHECKING:
    from callfloor.config import QueuePolicy
    from callfloor.processors.agents import AgentTrack
    from callfloor.processors.engine import FloorProcessor
    from callfloor.processors.queues import QueueState

# States an agent is counted in for live values (logged_out is left out).
LIVE_STATES: Final[tuple[str, ...]] = ("available", "ringing", "on_call", "wrap_up", "not_ready")
BUSY_STATES: Final[tuple[str, ...]] = ("ringing", "on_call", "wrap_up")
STAFFED_STATES: Final[tuple[str, ...]] = ("available", "ringing", "on_call", "wrap_up")
ARRIVAL_WINDOW_S: Final = 900.0

Sums = tuple[list[int], int]  # window sums and max wait (µs, -1 when none)


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


def window_stats(sums: list[int], max_us: int, formula: str) -> WindowStats:
    """Counts and rates of one window."""
    answered = sums[ANSWERED]
    abandoned = sums[ABANDONED]
    handled = sums[HANDLED]
    return WindowStats(
        offered=sums[OFFERED],
        answered=answered,
        abandoned=abandoned,
        short_abandoned=sums[SHORT_ABANDONED],
        dequeued=sums[DEQUEUED],
        sl_offered=sums[SL_OFFERED],
        answered_in_sl=sums[ANSWERED_IN_SL],
        abandoned_in_sl=sums[ABANDONED_IN_SL],
        handled=handled,
        service_level=service_level(formula, sums),
        abandon_rate=_ratio(abandoned, answered + abandoned),
        asa_s=sums[WAIT_US] / answered / 1e6 if answered > 0 else None,
        max_wait_s=max_us / 1e6 if max_us >= 0 else None,
        aht_s=sums[HANDLE_US] / handled / 1e6 if handled > 0 else None,
    )


def staffing(
    policy: QueuePolicy, s15: list[int], s60: list[int], counts: dict[str, int]
) -> tuple[float, int | None, float | None]:
    """Arrival rate, Erlang C required agents and projected service level of a queue
    (SPEC §3) from its 15- and 60-minute sums and its agents by state."""
    offered_15m = s15[OFFERED]
    rate = offered_15m / ARRIVAL_WINDOW_S
    required: int | None = None
    projected: float | None = None
    if offered_15m > 0:
        aht = s60[HANDLE_US] / s60[HANDLED] / 1e6 if s60[HANDLED] > 0 else policy.default_aht_s
        staffed = sum(counts.get(s, 0) for s in STAFFED_STATES)
        if aht > 0:
            load = rate * aht
            # Beyond the search limit (100,000 agents) there is no answer to show:
            # null, never the limit itself.
            required = least_agents_c(load, aht, policy.sl_threshold_s, policy.sl_target)
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
    return rate, required, projected


def _occupancy(counts: dict[str, int]) -> float | None:
    busy = sum(counts.get(s, 0) for s in BUSY_STATES)
    staffed = busy + counts.get("available", 0)
    return busy / staffed if staffed > 0 else None


def _live_agents(counts: dict[str, int]) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in LIVE_STATES}


def _sum(parts: list[Sums]) -> Sums:
    total = [0] * NFIELDS
    max_us = -1
    for sums, mx in parts:
        for i in range(NFIELDS):
            total[i] += sums[i]
        if mx > max_us:
            max_us = mx
    return total, max_us


class _QueueRead:
    """One queue's window sums at the clock, read once per render."""

    __slots__ = ("day", "interval", "labelled", "rolling")

    def __init__(self, proc: FloorProcessor, q: QueueState) -> None:
        now = proc.clock
        cal = proc.sites[q.site].calendar
        windows = q.windows
        windows.advance(now)
        self.rolling = [windows.rolling(i) for i in range(len(proc.widths))]
        self.interval = windows.interval(cal.interval_start(now))
        self.day = windows.day(cal.day_start(now))
        rolling = self.rolling
        self.labelled: list[Sums] = [rolling[i] for i in proc.window_index.values()]
        self.labelled.append(self.interval)
        self.labelled.append(self.day)


class FloorReader:
    """Typed, per-entity reads of one processor (see the module docstring)."""

    __slots__ = ("_labels", "_proc")

    def __init__(self, proc: FloorProcessor) -> None:
        self._proc = proc
        self._labels = [*proc.window_index, "interval", "today"]

    # ------------------------------------------------------------------ time

    @property
    def as_of(self) -> float:
        """The instant every read describes (the processor clock)."""
        return self._proc.clock

    @property
    def version(self) -> int:
        """Grows whenever state changed (not when only the clock moved): a cache key part."""
        return self._proc.version

    @property
    def window_labels(self) -> list[str]:
        """Window labels in document order: the configured rolling ones, interval, today."""
        return list(self._labels)

    def _now(self) -> float:
        now = self._proc.clock
        if not math.isfinite(now):
            raise ValueError("the processor has no time yet: apply an event or tick() first")
        return now

    # ------------------------------------------------------------------ queues

    def queue_names(self) -> list[str]:
        """Listed queues (configured, or named by a valid ``call_queued``), sorted."""
        return sorted(n for n, q in self._proc.queues.items() if q.listed)

    def queue_names_by_arrival(self) -> list[str]:
        """Listed queues: the configured ones in configuration order, then the others in
        the order they were first named (stable across restarts)."""
        return [n for n, q in self._proc.queues.items() if q.listed]

    def _queue_agents(self, name: str) -> dict[str, int]:
        """Agents serving queue ``name`` by state (all queues at once, once per version)."""
        proc = self._proc
        cached = proc.read_cache.get("queue_agents")
        if cached is None or cached[0] != proc.version:
            by_queue: dict[str, dict[str, int]] = {}
            for group, group_counts in proc.groups.items():
                if not group_counts:
                    continue
                for queue in group:
                    counts = by_queue.get(queue)
                    if counts is None:
                        counts = by_queue[queue] = {}
                    for state, n in group_counts.items():
                        counts[state] = counts.get(state, 0) + n
            cached = (proc.version, by_queue)
            proc.read_cache["queue_agents"] = cached
        return cached[1].get(name, {})

    def _queue_view(self, q: QueueState, read: _QueueRead) -> QueueView:
        proc = self._proc
        now = proc.clock
        formula = q.policy.sl_formula
        windows = {
            label: window_stats(s, m, formula)
            for label, (s, m) in zip(self._labels, read.labelled, strict=True)
        }
        oldest = q.oldest_start()
        counts = self._queue_agents(q.name)
        rate, required, projected = staffing(
            q.policy, read.rolling[proc.idx_15m][0], read.rolling[proc.idx_60m][0], counts
        )
        live = QueueLive(
            waiting=len(q.open),
            longest_wait_s=max(0.0, now - oldest) if oldest is not None else 0.0,
            agents=_live_agents(counts),
            occupancy=_occupancy(counts),
            arrival_rate_per_s=rate,
            required_agents=required,
            projected_service_level=projected,
        )
        return QueueView(site=q.site, windows=windows, live=live)

    def queue(self, name: str) -> QueueView | None:
        """One queue as in the document, or None if it is not listed."""
        self._now()
        q = self._proc.queues.get(name)
        if q is None or not q.listed:
            return None
        return self._queue_view(q, _QueueRead(self._proc, q))

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
            configured=q.configured,
        )

    def queue_totals(self, name: str) -> QueueTotals | None:
        """A listed queue's lifetime totals and wait histograms (since start-up)."""
        q = self._proc.queues.get(name)
        if q is None or not q.listed:
            return None
        bounds = list(q.bounds)
        wait_s = q.totals[WAIT_US] / 1e6
        return QueueTotals(
            counts={n: q.totals[i] for i, n in enumerate(COUNT_NAMES)},
            handle_s=q.totals[HANDLE_US] / 1e6,
            answered_wait_s=wait_s,
            answered=WaitHistogram(
                bounds=bounds, counts=list(q.hist_answered), sum_s=q.answered_wait_us / 1e6
            ),
            abandoned=WaitHistogram(
                bounds=bounds, counts=list(q.hist_abandoned), sum_s=q.abandoned_wait_us / 1e6
            ),
        )

    # ------------------------------------------------------------------ sites

    def _agent_sites(self) -> set[str]:
        return {t.fold.site for t in self._proc.agents.values() if t.fold.known}

    def site_names(self) -> list[str]:
        """Sites of listed queues and of agents, sorted."""
        proc = self._proc
        names = {q.site for q in proc.queues.values() if q.listed}
        return sorted(names | self._agent_sites())

    def _site_view(self, name: str, reads: dict[str, tuple[QueueState, _QueueRead]]) -> SiteView:
        proc = self._proc
        now = proc.clock
        formula = proc.site(name).config.sl_formula
        mine = [(q, r) for q, r in reads.values() if q.site == name]
        windows: dict[str, WindowStats] = {}
        for k, label in enumerate(self._labels):
            sums, mx = _sum([r.labelled[k] for _, r in mine])
            windows[label] = window_stats(sums, mx, formula)
        longest = 0.0
        for q, _ in mine:
            oldest = q.oldest_start()
            if oldest is not None and now - oldest > longest:
                longest = now - oldest
        counts = proc.site_counts.get(name, {})
        offered_15m = sum(r.rolling[proc.idx_15m][0][OFFERED] for _, r in mine)
        live = SiteLive(
            waiting=sum(len(q.open) for q, _ in mine),
            longest_wait_s=longest,
            agents=_live_agents(counts),
            occupancy=_occupancy(counts),
            arrival_rate_per_s=offered_15m / ARRIVAL_WINDOW_S,
        )
        clock = self.site_clock(name)
        return SiteView(
            windows=windows,
            live=live,
            timezone=clock.timezone,
            local_date=clock.local_date,
            day_start=clock.day_start,
            interval_start=clock.interval_start,
            interval_minutes=clock.interval_minutes,
        )

    def site_clock(self, name: str) -> SiteClock:
        """A site's calendar at ``as_of``: time zone, local date, day and interval start."""
        now = self._now()
        site = self._proc.site(name)
        cal = site.calendar
        local = datetime.fromtimestamp(now, cal.tz)
        offset = local.utcoffset()
        return SiteClock(
            timezone=site.config.timezone,
            local_date=local.date().isoformat(),
            day_start=cal.day_start(now),
            interval_start=cal.interval_start(now),
            interval_minutes=site.config.interval_minutes,
            utc_offset_s=offset.total_seconds() if offset is not None else 0.0,
        )

    def _reads(self, site: str | None = None) -> dict[str, tuple[QueueState, _QueueRead]]:
        proc = self._proc
        return {
            name: (q, _QueueRead(proc, q))
            for name, q in sorted(proc.queues.items())
            if q.listed and (site is None or q.site == site)
        }

    def site(self, name: str) -> SiteView | None:
        """One site's roll-up, or None if it is not listed."""
        self._now()
        reads = self._reads(name)
        if not reads and name not in self._agent_sites():
            return None
        return self._site_view(name, reads)

    # ------------------------------------------------------------------ agents

    def agent_names(self) -> list[str]:
        """Agents that sent a valid ``agent_state``, sorted."""
        return sorted(n for n, t in self._proc.agents.items() if t.fold.known)

    def _agent_view(self, track: AgentTrack) -> AgentView:
        proc = self._proc
        now = proc.clock
        f = track.fold
        assert f.state is not None
        answered, missed = agent_today_counts(proc, track, now)
        handled, handle_s = agent_handled_today(proc, track, now)
        offered = agent_offered_today(proc, track, now)
        return AgentView(
            state=AgentStateName(f.state),
            reason=f.reason,
            state_since=f.since,
            not_ready_today_s=agent_not_ready_today(proc, track, now),
            answered_today=answered,
            missed_today=missed,
            handled_today=handled,
            aht_today_s=handle_s / handled if handled else None,
            offered_today=offered,
            answer_rate_today=answer_rate(answered, offered),
        )

    def agent(self, name: str) -> AgentView | None:
        """One agent as in the document, or None."""
        self._now()
        track = self._proc.agents.get(name)
        if track is None or not track.fold.known:
            return None
        return self._agent_view(track)

    def agent_info(self, name: str, *, names: NamePolicy) -> AgentInfo | None:
        """An agent's display name (withheld under ``NamePolicy.HIDE``), team, site and
        queues."""
        track = self._proc.agents.get(name)
        if track is None or not track.fold.known:
            return None
        f = track.fold
        return AgentInfo(
            name=name,
            display_name=f.display if names is NamePolicy.SHOW else None,
            team=f.team,
            site=f.site,
            queues=list(f.group),
        )

    def agent_detail(self, name: str, *, names: NamePolicy) -> AgentDetail | None:
        """One agent with its identity and its violations (for the HTTP API); the display
        name as ``names`` says."""
        view = self.agent(name)
        info = self.agent_info(name, names=names)
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
            handled_today=view.handled_today,
            aht_today_s=view.aht_today_s,
            offered_today=view.offered_today,
            answer_rate_today=view.answer_rate_today,
            violations=self.violations(agent=name),
        )

    def violations(
        self, *, agent: str | None = None, active: bool | None = None
    ) -> list[ViolationView]:
        """Violations started by ``as_of`` in document order; filter by agent or activity."""
        proc = self._proc
        now = proc.clock
        if not math.isfinite(now):
            return []  # nothing can have started before time began
        if agent is not None:
            track = proc.agents.get(agent)
            tracks = [] if track is None else [track]
        else:
            tracks = list(proc.agents.values())
        items: list[tuple[tuple[float, str, str, str], ViolationView]] = []
        for track in tracks:
            for v in agent_violations(proc, track, now):
                if active is not None and (v.ended_at is None) != active:
                    continue
                view = ViolationView(
                    kind=ViolationKind(v.kind),
                    agent=track.name,
                    severity=Severity(v.severity),
                    started_at=v.started_at,
                    ended_at=v.ended_at,
                    value=v.value,
                )
                items.append(((v.started_at, track.name, v.kind, v.severity), view))
        items.sort(key=lambda item: item[0])
        return [view for _, view in items]

    # ------------------------------------------------------------------ bulk

    def queues(self) -> dict[str, QueueView]:
        """Every listed queue, by name (sorted), as in the document."""
        self._now()
        return {name: self._queue_view(q, r) for name, (q, r) in self._reads().items()}

    def sites(self) -> dict[str, SiteView]:
        """Every listed site, by name (sorted), as in the document."""
        self._now()
        reads = self._reads()
        return {name: self._site_view(name, reads) for name in self.site_names()}

    def agents(self) -> dict[str, AgentView]:
        """Every listed agent, by name (sorted), as in the document."""
        self._now()
        proc = self._proc
        return {name: self._agent_view(proc.agents[name]) for name in self.agent_names()}

    def floor(
        self, *, agents: bool = False
    ) -> tuple[dict[str, QueueView], dict[str, SiteView], dict[str, AgentView]]:
        """Queues, sites and (with ``agents``) agents, reading each queue's windows once."""
        self._now()
        reads = self._reads()
        queues = {name: self._queue_view(q, r) for name, (q, r) in reads.items()}
        sites = {name: self._site_view(name, reads) for name in self.site_names()}
        return queues, sites, (self.agents() if agents else {})

    # ------------------------------------------------------------------ whole floor

    def counters(self) -> Counters:
        """The document's counters."""
        c = self._proc.counters
        return Counters(
            events=c["events"],
            rejected=c["rejected"],
            duplicates=c["duplicates"],
            orphaned=c["orphaned"],
            late=c["late"],
        )

    def stats(self) -> ProcessorStats:
        """The processor's self-metrics."""
        proc = self._proc
        tracker = proc.tracker
        clock = proc.clock
        finite = math.isfinite(clock)
        if finite and not proc.changes:
            # No change sets are drained from this processor (replay): bring the counts
            # to the clock here. With change sets the drain does it each tick, and a
            # read must not change what the next change set reports.
            tracker.update()

        def counts(table: dict[tuple[str, str], int]) -> list[ViolationCount]:
            return [
                ViolationCount(ViolationKind(k), Severity(s), n)
                for (k, s), n in sorted(table.items())
            ]

        active: dict[tuple[str, str], int] = {}
        for published in tracker.published.values():
            for v in published.values():
                if v.ended_at is None:
                    key = (v.kind, v.severity)
                    active[key] = active.get(key, 0) + 1
        return ProcessorStats(
            clock=clock if finite else None,
            events_by_type={k: v for k, v in sorted(proc.events_by_type.items()) if v},
            rejected_by_reason=dict(sorted(proc.rejected_by_reason.items())),
            violations_active=counts(active),
            violations_started=counts(tracker.started),
            violations_retracted=counts(tracker.retracted),
            expired=dict(proc.expired),
            open_legs=sum(len(q.open) for q in proc.queues.values()),
            timers_pending=len(proc.timers),
            history_events=self._history_events(),
        )

    def stale(self) -> dict[str, Staleness]:
        """Sites served as they last stood, by name: none for one processor's reads (a
        processor is applied; the service marks the partitions it stopped applying)."""
        return {}

    def _history_events(self) -> int:
        proc = self._proc
        cached = proc.read_cache.get("history")
        if cached is None or cached[0] != proc.version:
            n = sum(len(c.events) for c in proc.calls.values())
            n += sum(len(a.ts) for a in proc.agents.values())
            cached = (proc.version, n)
            proc.read_cache["history"] = cached
        return int(cached[1])

    def document(self) -> Document:
        """The SPEC §7 document at ``as_of``."""
        now = self._now()
        reads = self._reads()
        queues = {name: self._queue_view(q, r) for name, (q, r) in reads.items()}
        sites = {name: self._site_view(name, reads) for name in self.site_names()}
        proc = self._proc
        agents = {name: self._agent_view(proc.agents[name]) for name in self.agent_names()}
        return Document(
            as_of=float(now),
            queues=queues,
            sites=sites,
            agents=agents,
            violations=self.violations(),
            alerts=self.alerts(),
            counters=self.counters(),
        )

    def alerts(self) -> list[AlertView]:
        """The alerts of the document (SPEC §10): pending, firing, and resolved today.

        Filled by the alert driver observing the processor (``callfloor.alerts``); the
        document, the wallboards and the supervisor views all read it here.
        """
        source = self._proc.alert_source
        return [] if source is None else source()

    # ------------------------------------------------------------------ boards

    def board_window(self) -> str:
        """The window of the rates on boards: ``15m`` when configured (the default alert
        rules' window), else the first configured rolling window."""
        labels = self._labels[:-2]
        return "15m" if "15m" in labels else labels[0]

    def tile_thresholds(self, name: str) -> TileThresholds | None:
        """The colour bands of a queue's tile and where each threshold comes from.

        One source for tiles and alerts: the queue's policy (``sl_target``: below it the
        service level is amber; ``sl_threshold_s``: a caller waiting longer is already
        outside the service level) and, once the alert rules exist, the rules that watch
        the queue (their thresholds are the red bands). A tile never turns a colour
        without a threshold a supervisor can find here.
        """
        q = self._proc.queues.get(name)
        if q is None or not q.listed:
            return None
        p = q.policy
        origin = f"[queues.{name}]" if q.configured else f"the {q.channel} channel's default"
        window = self.board_window()
        red = self._rule_bands(name, p, window)
        # A rule at the target itself adds no band: below the target stays amber.
        sl_red = red.get("service_level")
        if sl_red is not None and sl_red.op == "<" and sl_red.value >= p.sl_target:
            del red["service_level"]
        return TileThresholds(
            queue=name,
            bands=[
                MetricBands(
                    metric="service_level",
                    window=window,
                    target=p.sl_target,
                    warn=Band(op="<", value=p.sl_target, source=f"sl_target of {origin}"),
                    red=red.get("service_level"),
                ),
                MetricBands(
                    metric="longest_wait_s",
                    window=None,
                    target=None,
                    warn=Band(op=">", value=p.sl_threshold_s, source=f"sl_threshold_s of {origin}"),
                    red=red.get("longest_wait_s"),
                ),
                MetricBands(
                    metric="abandon_rate",
                    window=window,
                    target=None,
                    warn=None,
                    red=red.get("abandon_rate"),
                ),
                MetricBands(
                    metric="waiting", window=None, target=None, warn=None, red=red.get("waiting")
                ),
            ],
        )

    def _rule_bands(self, queue: str, policy: QueuePolicy, window: str) -> dict[str, Band]:
        """The red band of each tile metric: the first alert rule over the queue whose
        first condition compares that metric (over the board's window, for rates) with a
        number or the queue's own policy (a threshold that moves with other values, such
        as twice the agents available, makes no fixed band)."""
        out: dict[str, Band] = {}
        for rule in self._proc.config.alerts.rules:
            if rule.scope_kind != "queue" or not rule.conditions or not rule.covers(queue):
                continue
            cond = rule.conditions[0]
            if cond.metric in out or cond.window not in (None, window):
                continue
            t = cond.threshold
            if t.ref is None and t.constant is not None:
                value = t.constant
            elif t.ref in ("sl_target", "sl_threshold_s", "short_abandon_s") and t.window is None:
                value = t.factor * float(getattr(policy, t.ref))
            else:
                continue
            kind = "default rule" if rule.default else "rule"
            out[cond.metric] = Band(op=cond.op, value=value, source=f"{kind} {rule.name}")
        return out

    def _tile(self, q: QueueState, read: _QueueRead, k: int) -> QueueTile:
        """One queue's tile from its window sums (``k``: the board window's index)."""
        now = self._proc.clock
        sums, max_us = read.labelled[k]
        p = q.policy
        stats = window_stats(sums, max_us, p.sl_formula)
        oldest = q.oldest_start()
        thresholds = self.tile_thresholds(q.name)
        assert thresholds is not None
        return QueueTile(
            name=q.name,
            channel=q.channel,
            window=self._labels[k],
            service_level=stats.service_level,
            sl_target=p.sl_target,
            sl_threshold_s=p.sl_threshold_s,
            sl_formula=p.sl_formula,
            sl_offered=stats.sl_offered,
            answered_in_sl=stats.answered_in_sl,
            abandoned_in_sl=stats.abandoned_in_sl,
            offered=stats.offered,
            answered=stats.answered,
            abandoned=stats.abandoned,
            abandon_rate=stats.abandon_rate,
            asa_s=stats.asa_s,
            waiting=len(q.open),
            longest_wait_s=max(0.0, now - oldest) if oldest is not None else 0.0,
            waiting_since=oldest,
            agents=_live_agents(self._queue_agents(q.name)),
            thresholds=thresholds.bands,
        )

    def _scoped(
        self, site: str, alerts: list[AlertView], agents: dict[str, str]
    ) -> list[AlertView]:
        """The alerts of one site: scoped to it, one of its queues or one of its agents."""
        queues = self._proc.queues
        out = []
        for alert in alerts:
            q = queues.get(alert.scope)
            if (
                alert.scope == site
                or (q is not None and q.site == site)
                or agents.get(alert.scope) == site
            ):
                out.append(alert)
        return out

    def _agent_site_map(self) -> dict[str, str]:
        return {n: t.fold.site for n, t in self._proc.agents.items() if t.fold.known}

    def wallboards(self, sites: Collection[str]) -> dict[str, WallboardView]:
        """The wallboard of each listed site of ``sites`` at ``as_of`` (see
        :class:`~callfloor.processors.views.WallboardView`); built for all of them at once,
        so the violations and alerts are read once."""
        now = self._now()
        wanted = [s for s in self.site_names() if s in sites]
        if not wanted:
            return {}
        k = self._labels.index(self.board_window())
        agent_sites = self._agent_site_map()
        active = self.violations(active=True)
        alerts = self.alerts()
        reads_all = self._reads()
        out: dict[str, WallboardView] = {}
        for site in wanted:
            reads = {n: qr for n, qr in reads_all.items() if qr[0].site == site}
            order = [n for n in self.queue_names_by_arrival() if n in reads]
            tiles = [self._tile(*reads[n], k) for n in order]
            view = self._site_view(site, reads)
            stats = view.windows[self._labels[k]]
            oldest = min(
                (o for q, _ in reads.values() if (o := q.oldest_start()) is not None),
                default=None,
            )
            totals = SiteTotals(
                window=self._labels[k],
                service_level=stats.service_level,
                sl_formula=self._proc.site(site).config.sl_formula,
                offered=stats.offered,
                answered=stats.answered,
                abandoned=stats.abandoned,
                abandon_rate=stats.abandon_rate,
                asa_s=stats.asa_s,
                waiting=view.live.waiting,
                longest_wait_s=view.live.longest_wait_s,
                waiting_since=oldest,
                agents=view.live.agents,
            )
            out[site] = WallboardView(
                site=site,
                as_of=float(now),
                clock=self.site_clock(site),
                tiles=tiles,
                totals=totals,
                violations=[v for v in active if agent_sites.get(v.agent) == site],
                alerts=self._scoped(site, alerts, agent_sites),
            )
        return out

    def agent_limits(self) -> AgentLimits:
        """The idle-time limits of ``[agents]``."""
        rules = self._proc.rules
        return AgentLimits(
            not_ready_max_s=rules.not_ready_max_s,
            not_ready_reason_max_s=dict(sorted(rules.not_ready_reason_max_s.items())),
            exempt_reasons=sorted(rules.exempt_reasons),
            daily_not_ready_s=list(rules.daily_not_ready_s),
            wrap_up_max_s=rules.wrap_up_max_s,
            missed_calls_max=rules.missed_calls_max,
        )

    def supervisor(self, sites: Collection[str], *, names: NamePolicy) -> dict[str, SupervisorView]:
        """The supervisor view of each listed site of ``sites`` at ``as_of``: every agent
        of the site (not logged out, or with a violation) as a row, display names as
        ``names`` says (see :class:`~callfloor.processors.views.SupervisorView`)."""
        now = self._now()
        wanted = [s for s in self.site_names() if s in sites]
        if not wanted:
            return {}
        proc = self._proc
        agent_sites = self._agent_site_map()
        active = self.violations(active=True)
        kinds: dict[str, list[ViolationKind]] = {}
        for v in active:
            kinds.setdefault(v.agent, []).append(v.kind)
        alerts = self.alerts()
        limits = self.agent_limits()
        rows: dict[str, list[AgentRow]] = {site: [] for site in wanted}
        show = names is NamePolicy.SHOW
        for name in self.agent_names():
            site = agent_sites[name]
            table = rows.get(site)
            if table is None:
                continue
            track = proc.agents[name]
            f = track.fold
            assert f.state is not None
            if f.state == "logged_out" and name not in kinds:
                continue
            answered, missed = agent_today_counts(proc, track, now)
            handled, handle_s = agent_handled_today(proc, track, now)
            table.append(
                AgentRow(
                    agent=name,
                    display_name=f.display if show else None,
                    team=f.team,
                    queues=list(f.group),
                    state=AgentStateName(f.state),
                    reason=f.reason,
                    state_since=f.since,
                    not_ready_today_s=agent_not_ready_today(proc, track, now),
                    not_ready_counting=open_not_ready_since(proc, track) is not None,
                    answered_today=answered,
                    missed_today=missed,
                    handled_today=handled,
                    aht_today_s=handle_s / handled if handled else None,
                    violations=kinds.get(name, []),
                )
            )
        return {
            site: SupervisorView(
                site=site,
                as_of=float(now),
                clock=self.site_clock(site),
                limits=limits,
                agents=rows[site],
                violations=[v for v in active if agent_sites.get(v.agent) == site],
                alerts=self._scoped(site, alerts, agent_sites),
            )
            for site in wanted
        }
