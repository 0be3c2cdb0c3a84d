"""The floor collector: Prometheus families from the processor's typed read model.

Clock contract
--------------
:class:`FloorCollector` reads the processor at its current clock (``proc.view.as_of``)
and never ticks it: the caller (the service, before each scrape) calls
``proc.tick(now)`` first, exactly as for the replay document. Until the clock is
finite (no event and no tick yet) the time-based families (windows, live values,
sites, per-agent series) are left out. Collect on the thread that owns the processor:
it takes no lock.

What it reads
-------------
Only ``proc.view`` (the :class:`~callfloor.processors.read.FloorReader`) and
``proc.config``: ``queue_names``/``queue_info``/``queue_totals`` per queue, the
windows and live values from the bulk ``queues()`` and ``sites()`` (and ``agents()``
with per-agent series; see :func:`_read_floor`), ``agent_info`` per agent,
``violations(active=True)`` (per agent) or the active counts of ``stats()``,
``counters()`` and ``stats()``. The families and their help texts are
:mod:`callfloor.metrics.catalogue`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Final, NamedTuple, Protocol, TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from callfloor.config import DAILY_SEVERITIES, Config
from callfloor.events import EVENT_TYPES
from callfloor.ingest.decode import REASONS
from callfloor.metrics.catalogue import (
    WINDOW_COUNTS,
    WINDOW_RATES,
    Family,
    Group,
    families,
    rate_family,
    total_family,
    window_count_family,
)
from callfloor.metrics.render import (
    NO_LABELS,
    BuiltFamily,
    F,
    LabelSet,
    MetricFamily,
    TextFamily,
    format_value,
    label_set,
    to_metric,
)
from callfloor.metrics.stats import StatsProvider, add_service_samples
from callfloor.processors.limits import LIMIT_REASONS
from callfloor.processors.read import FloorReader
from callfloor.processors.views import (
    AgentInfo,
    AgentView,
    NamePolicy,
    QueueInfo,
    QueueTotals,
    QueueView,
    Severity,
    SiteView,
    ViolationKind,
    WindowStats,
)

__all__ = ["FloorCollector"]

_Fams = Mapping[str, BuiltFamily]
_L = TypeVar("_L")
# (a family's add, the sample name) pairs, one per field read.
_Adds = Sequence[tuple[Callable[[str, LabelSet, float], None], str]]

# Every canonical type tag and rejection reason, so each has a series from the start.
_EVENT_TAGS: Final[tuple[str, ...]] = tuple(str(cls.__struct_config__.tag) for cls in EVENT_TYPES)
_REJECT_REASONS: Final[tuple[str, ...]] = (*REASONS, *LIMIT_REASONS)

_COUNT_FIELDS: Final[tuple[str, ...]] = tuple(key for key, _ in WINDOW_COUNTS)
_RATE_FIELDS: Final[tuple[str, ...]] = tuple(key for key, _, _, _ in WINDOW_RATES)
# One call reads all nine counts (or all five rates) of a window, by field name.
_get_counts: Final = attrgetter(*_COUNT_FIELDS)
_get_rates: Final = attrgetter(*_RATE_FIELDS)
_get_totals: Final = itemgetter(*_COUNT_FIELDS)


# --------------------------------------------------------------------------- label caches


class _QueueLabels:
    """Label sets of one queue, escaped once and kept across scrapes."""

    __slots__ = ("bounds", "channel", "hist", "info", "plain", "site", "states", "windows")

    def __init__(self, info: QueueInfo, bounds: list[float]) -> None:
        name = info.name
        self.site = info.site
        self.channel = info.channel
        self.bounds = bounds
        self.plain = label_set(queue=name)
        self.info = label_set(queue=name, site=info.site, channel=info.channel)
        self.windows: dict[str, LabelSet] = {}
        self.states: dict[str, LabelSet] = {}
        les = [format_value(b) for b in bounds] + ["+Inf"]
        self.hist = {
            outcome: (
                [label_set(queue=name, outcome=outcome, le=le) for le in les],
                label_set(queue=name, outcome=outcome),
            )
            for outcome in ("answered", "abandoned")
        }

    def fits(self, info: QueueInfo, bounds: list[float]) -> bool:
        """Still right for the queue (its site is set by its first call_queued)."""
        return self.site == info.site and self.channel == info.channel and self.bounds == bounds

    def window(self, label: str) -> LabelSet:
        """The {queue, window} label set."""
        found = self.windows.get(label)
        if found is None:
            found = self.windows[label] = label_set(queue=self.plain[2][0], window=label)
        return found

    def state(self, state: str) -> LabelSet:
        """The {queue, state} label set."""
        found = self.states.get(state)
        if found is None:
            found = self.states[state] = label_set(queue=self.plain[2][0], state=state)
        return found


class _SiteLabels:
    __slots__ = ("name", "plain", "states", "windows")

    def __init__(self, name: str) -> None:
        self.name = name
        self.plain = label_set(site=name)
        self.windows: dict[str, LabelSet] = {}
        self.states: dict[str, LabelSet] = {}

    def window(self, label: str) -> LabelSet:
        found = self.windows.get(label)
        if found is None:
            found = self.windows[label] = label_set(site=self.name, window=label)
        return found

    def state(self, state: str) -> LabelSet:
        found = self.states.get(state)
        if found is None:
            found = self.states[state] = label_set(site=self.name, state=state)
        return found


class _AgentLabels:
    """An agent's label sets; rebuilt when its team, display name or site changes."""

    __slots__ = ("identity", "info", "plain", "states")

    def __init__(self, info: AgentInfo) -> None:
        team = info.team or ""
        self.identity = (info.team, info.display_name, info.site)
        self.plain = label_set(agent=info.name, team=team)
        self.info = label_set(
            agent=info.name, name=info.display_name or "", team=team, site=info.site
        )
        self.states: dict[str, LabelSet] = {}

    def state(self, agent: str, state: str) -> LabelSet:
        found = self.states.get(state)
        if found is None:
            found = self.states[state] = label_set(agent=agent, team=self.plain[2][1], state=state)
        return found


# --------------------------------------------------------------------------- reads


class _Floor(NamedTuple):
    """The time-based reads of one scrape, all at the same clock."""

    queues: Mapping[str, QueueView]
    sites: Mapping[str, SiteView]
    agents: Mapping[str, AgentView]


def _read_floor(view: FloorReader, agents: bool) -> _Floor:
    """Queues, sites and (per-agent series on) agents at ``view.as_of``, in bulk reads.

    Bulk reads, because per-queue ``queue(name)`` reads cost the same per queue and a
    site roll-up reads its queues again; ``document()`` would also render every agent
    and every violation, which the per-agent-off scrape does not need.
    """
    return _Floor(*view.floor(agents=agents))


_WARNING: Final = Severity.WARNING.value


def _configured_violations(config: Config) -> list[tuple[str, str]]:
    """(kind, severity) pairs the configuration can raise: they get zero series."""
    rules = config.agents
    keys = [
        (ViolationKind.NOT_READY_EXCEEDED.value, _WARNING),
        (ViolationKind.WRAP_UP_EXCEEDED.value, _WARNING),
        (ViolationKind.STALE_AGENT.value, _WARNING),
    ]
    if rules.missed_calls_max > 0:
        keys.append((ViolationKind.MISSED_CALLS_EXCEEDED.value, _WARNING))
    for level in range(len(rules.daily_not_ready_s)):
        severity = DAILY_SEVERITIES[min(level, len(DAILY_SEVERITIES) - 1)]
        keys.append((ViolationKind.NOT_READY_DAILY_EXCEEDED.value, severity))
    if config.roster.shifts:
        roster = config.roster.severity
        keys.append((ViolationKind.LATE_LOGIN.value, roster))
        keys.append((ViolationKind.EARLY_LOGOUT.value, roster))
    return keys


# --------------------------------------------------------------------------- collector


class Floor(Protocol):
    """What the collector reads: a :class:`~callfloor.processors.engine.FloorProcessor`,
    or :class:`~callfloor.processors.merged.MergedFloor` over several partitions."""

    @property
    def view(self) -> FloorReader:
        """Typed reads at the floor's clock."""
        ...

    @property
    def config(self) -> Config:
        """The configuration (labels, per-agent series, queue limits)."""
        ...


class FloorCollector(Collector):
    """Prometheus collector over a floor (a processor, or several merged), read at its clock.

    It never ticks the processor: call ``proc.tick(now)`` before collecting (the
    service does so on every scrape). ``stats`` returns the service layer's
    self-metrics; ``per_agent_series`` overrides ``config.metrics.per_agent_series``.
    """

    def __init__(
        self,
        proc: Floor,
        *,
        stats: StatsProvider | None = None,
        per_agent_series: bool | None = None,
    ) -> None:
        self.proc = proc
        self.stats = stats
        self.per_agent_series = per_agent_series
        self._queue_labels: dict[str, _QueueLabels] = {}
        self._site_labels: dict[str, _SiteLabels] = {}
        self._agent_labels: dict[str, _AgentLabels] = {}
        self._omitted = 0  # listed queues not exposed per queue at the last build

    # ------------------------------------------------------------ public API

    def describe(self) -> Iterable[Metric]:
        """Every family this collector may emit, without samples (registry name checks)."""
        return [to_metric(family) for family in self.families()]

    def collect(self) -> Iterable[Metric]:
        """The families at the processor's clock, as prometheus_client ``Metric`` objects."""
        return [built.metric for built in self._build(MetricFamily)]

    def render_text(self) -> str:
        """The families at the processor's clock in text format 0.0.4 (the fast path).

        Byte-identical to ``generate_latest`` over :meth:`collect`.
        """
        return "".join([line for built in self._build(TextFamily) for line in built.lines])

    def per_agent(self) -> bool:
        """Whether per-agent series are on (the override, else the configuration)."""
        if self.per_agent_series is not None:
            return self.per_agent_series
        return self.proc.config.metrics.per_agent_series

    def families(self) -> list[Family]:
        """The catalogue families this collector exposes, in order."""
        groups = [Group.QUEUE, Group.SITE, Group.PROCESSOR]
        if self.per_agent():
            groups.append(Group.AGENT)
        if self.stats is not None:
            groups.append(Group.SERVICE)
        return families(tuple(groups))

    # ------------------------------------------------------------ building

    def _build(self, make: type[F]) -> list[F]:
        built = [make(family) for family in self.families()]
        fam: dict[str, BuiltFamily] = {b.family.name: b for b in built}
        view = self.proc.view
        per_agent = self.per_agent()
        floor = _read_floor(view, per_agent) if math.isfinite(view.as_of) else None
        self._queues(fam, view, floor)
        if floor is not None:
            self._sites(fam, floor)
        self._processor(fam, view, per_agent)
        if floor is not None and per_agent:
            self._agents(fam, view, floor)
        if self.stats is not None:
            add_service_samples(fam, self.stats())
        return built

    def _queue_label_sets(self, info: QueueInfo, totals: QueueTotals) -> _QueueLabels:
        bounds = totals.answered.bounds
        ql = self._queue_labels.get(info.name)
        if ql is None or not ql.fits(info, bounds):
            ql = self._queue_labels[info.name] = _QueueLabels(info, bounds)
        return ql

    def _exposed_queues(self, view: FloorReader) -> set[str]:
        """Every configured queue, and the first ``max_unconfigured_queues`` queues that
        events alone created (the others still count in their site's roll-up)."""
        limit = self.proc.config.metrics.max_unconfigured_queues
        configured = self.proc.config.queues
        exposed: set[str] = set()
        unconfigured = 0
        for name in view.queue_names_by_arrival():
            if name in configured:
                exposed.add(name)
            elif unconfigured < limit:
                exposed.add(name)
                unconfigured += 1
        self._omitted = len(view.queue_names()) - len(exposed)
        return exposed

    def _queues(self, fam: _Fams, view: FloorReader, floor: _Floor | None) -> None:
        """Queue families: configuration, lifetime totals, then windows and live values."""
        info_add = fam["callfloor_queue_info"].add
        target_add = fam["callfloor_queue_service_level_target_ratio"].add
        threshold_add = fam["callfloor_queue_service_level_threshold_seconds"].add
        totals_adds = [(fam[total_family(key)].add, total_family(key)) for key in _COUNT_FIELDS]
        handle_add = fam["callfloor_queue_handle_seconds_total"].add
        wait_add = fam["callfloor_queue_answered_wait_seconds_total"].add
        hist_add = fam["callfloor_queue_wait_seconds"].add
        queue_views = floor.queues if floor is not None else {}
        windowed: list[tuple[_QueueLabels, QueueView]] = []
        exposed = self._exposed_queues(view)
        names = [name for name in view.queue_names() if name in exposed]
        for name in names:
            info = view.queue_info(name)
            totals = view.queue_totals(name)
            if info is None or totals is None:  # listed above, so never at one clock
                continue
            ql = self._queue_label_sets(info, totals)
            plain = ql.plain
            info_add("callfloor_queue_info", ql.info, 1.0)
            target_add("callfloor_queue_service_level_target_ratio", plain, info.sl_target)
            threshold_add(
                "callfloor_queue_service_level_threshold_seconds", plain, info.sl_threshold_s
            )
            for (add, sample), n in zip(totals_adds, _get_totals(totals.counts), strict=True):
                add(sample, plain, n)
            handle_add("callfloor_queue_handle_seconds_total", plain, totals.handle_s)
            wait_add("callfloor_queue_answered_wait_seconds_total", plain, totals.answered_wait_s)
            # The read model has per-bucket counts; Prometheus buckets are cumulative.
            for outcome, hist in (("answered", totals.answered), ("abandoned", totals.abandoned)):
                bucket_labels, outcome_labels = ql.hist[outcome]
                acc = 0
                for lab, n in zip(bucket_labels, hist.counts, strict=True):
                    acc += n
                    hist_add("callfloor_queue_wait_seconds_bucket", lab, acc)
                hist_add("callfloor_queue_wait_seconds_count", outcome_labels, acc)
                hist_add("callfloor_queue_wait_seconds_sum", outcome_labels, hist.sum_s)
            qv = queue_views.get(name)
            if qv is not None:
                windowed.append((ql, qv))
        _forget_missing(self._queue_labels, names)
        if floor is not None:
            self._queue_windows(fam, windowed)

    @staticmethod
    def _queue_windows(fam: _Fams, queues: list[tuple[_QueueLabels, QueueView]]) -> None:
        """Windows and live values of each queue."""
        rate_adds = [
            (fam[rate_family("queue", k)].add, rate_family("queue", k)) for k in _RATE_FIELDS
        ]
        count_adds = [
            (fam[window_count_family("queue", k)].add, window_count_family("queue", k))
            for k in _COUNT_FIELDS
        ]
        waiting_add = fam["callfloor_queue_waiting_calls"].add
        longest_add = fam["callfloor_queue_longest_wait_seconds"].add
        agents_add = fam["callfloor_queue_agents"].add
        occupancy_add = fam["callfloor_queue_occupancy_ratio"].add
        arrival_add = fam["callfloor_queue_arrival_rate_per_second"].add
        required_add = fam["callfloor_queue_required_agents"].add
        projected_add = fam["callfloor_queue_projected_service_level_ratio"].add
        for ql, qv in queues:
            for label, w in qv.windows.items():
                _add_window(ql.window(label), w, rate_adds, count_adds)
            live = qv.live
            plain = ql.plain
            waiting_add("callfloor_queue_waiting_calls", plain, live.waiting)
            longest_add("callfloor_queue_longest_wait_seconds", plain, live.longest_wait_s)
            for state, n in live.agents.items():
                agents_add("callfloor_queue_agents", ql.state(state), n)
            # null in the document: no sample, never NaN
            if live.occupancy is not None:
                occupancy_add("callfloor_queue_occupancy_ratio", plain, live.occupancy)
            arrival_add("callfloor_queue_arrival_rate_per_second", plain, live.arrival_rate_per_s)
            if live.required_agents is not None:
                required_add("callfloor_queue_required_agents", plain, live.required_agents)
            if live.projected_service_level is not None:
                projected_add(
                    "callfloor_queue_projected_service_level_ratio",
                    plain,
                    live.projected_service_level,
                )

    def _sites(self, fam: _Fams, floor: _Floor) -> None:
        """Site roll-ups, as the document has them."""
        rate_adds = [
            (fam[rate_family("site", k)].add, rate_family("site", k)) for k in _RATE_FIELDS
        ]
        count_adds = [
            (fam[window_count_family("site", k)].add, window_count_family("site", k))
            for k in _COUNT_FIELDS
        ]
        waiting_add = fam["callfloor_site_waiting_calls"].add
        longest_add = fam["callfloor_site_longest_wait_seconds"].add
        agents_add = fam["callfloor_site_agents"].add
        occupancy_add = fam["callfloor_site_occupancy_ratio"].add
        arrival_add = fam["callfloor_site_arrival_rate_per_second"].add
        cache = self._site_labels
        for name, sv in floor.sites.items():
            sl = cache.get(name)
            if sl is None:
                sl = cache[name] = _SiteLabels(name)
            for label, w in sv.windows.items():
                _add_window(sl.window(label), w, rate_adds, count_adds)
            live = sv.live
            plain = sl.plain
            waiting_add("callfloor_site_waiting_calls", plain, live.waiting)
            longest_add("callfloor_site_longest_wait_seconds", plain, live.longest_wait_s)
            for state, n in live.agents.items():
                agents_add("callfloor_site_agents", sl.state(state), n)
            if live.occupancy is not None:
                occupancy_add("callfloor_site_occupancy_ratio", plain, live.occupancy)
            arrival_add("callfloor_site_arrival_rate_per_second", plain, live.arrival_rate_per_s)
        _forget_missing(cache, floor.sites)

    def _processor(self, fam: _Fams, view: FloorReader, per_agent: bool) -> None:
        """Violations and the processor's own counters."""
        stats = view.stats()
        configured = _configured_violations(self.proc.config)
        active_fam = fam["callfloor_violations_active"]
        if per_agent:
            by_agent: dict[tuple[str, str, str], int] = {}
            for v in view.violations(active=True):
                key = (v.agent, v.kind.value, v.severity.value)
                by_agent[key] = by_agent.get(key, 0) + 1
            for (agent, kind, severity), n in sorted(by_agent.items()):
                active_fam.add(
                    "callfloor_violations_active",
                    label_set(agent=agent, kind=kind, severity=severity),
                    n,
                )
        else:
            # Zero series for what the configuration can raise: alerts see 0, not nothing.
            # stats() has the active counts already: cheaper than reading each violation.
            active = dict.fromkeys(configured, 0)
            for c in stats.violations_active:
                active[(c.kind.value, c.severity.value)] = c.count
            for (kind, severity), n in sorted(active.items()):
                active_fam.add(
                    "callfloor_violations_active", label_set(kind=kind, severity=severity), n
                )
        for name, counts in (
            ("callfloor_violations_started_total", stats.violations_started),
            ("callfloor_violations_retracted_total", stats.violations_retracted),
        ):
            lifetime = dict.fromkeys(configured, 0)
            for c in counts:
                lifetime[(c.kind.value, c.severity.value)] = c.count
            add = fam[name].add
            for (kind, severity), n in sorted(lifetime.items()):
                add(name, label_set(kind=kind, severity=severity), n)

        add = fam["callfloor_state_expired_total"].add
        for kind, n in sorted(stats.expired.items()):
            add("callfloor_state_expired_total", label_set(kind=kind), n)
        by_type = dict.fromkeys(_EVENT_TAGS, 0)
        by_type.update(stats.events_by_type)
        add = fam["callfloor_events_total"].add
        for tag, n in by_type.items():
            add("callfloor_events_total", label_set(type=tag), n)
        rejected = dict.fromkeys(_REJECT_REASONS, 0)
        rejected.update(stats.rejected_by_reason)
        add = fam["callfloor_events_rejected_total"].add
        for reason, n in rejected.items():
            add("callfloor_events_rejected_total", label_set(reason=reason), n)
        counters = view.counters()
        for name, value in (
            ("callfloor_events_duplicate_total", counters.duplicates),
            ("callfloor_events_orphaned_total", counters.orphaned),
            ("callfloor_events_late_total", counters.late),
        ):
            fam[name].add(name, NO_LABELS, value)
        if stats.clock is not None and math.isfinite(stats.clock):
            fam["callfloor_clock_seconds"].add("callfloor_clock_seconds", NO_LABELS, stats.clock)
        fam["callfloor_open_legs"].add("callfloor_open_legs", NO_LABELS, stats.open_legs)
        fam["callfloor_metrics_queues_omitted"].add(
            "callfloor_metrics_queues_omitted", NO_LABELS, self._omitted
        )
        fam["callfloor_timers_pending"].add(
            "callfloor_timers_pending", NO_LABELS, stats.timers_pending
        )

    def _agents(self, fam: _Fams, view: FloorReader, floor: _Floor) -> None:
        """Per-agent series (only when enabled: 10+ series per agent)."""
        now = view.as_of
        cache = self._agent_labels
        info_add = fam["callfloor_agent_info"].add
        state_add = fam["callfloor_agent_state"].add
        seconds_add = fam["callfloor_agent_state_seconds"].add
        nr_add = fam["callfloor_agent_not_ready_today_seconds"].add
        answered_add = fam["callfloor_agent_answered_today"].add
        missed_add = fam["callfloor_agent_missed_today"].add
        handled_add = fam["callfloor_agent_handled_today"].add
        aht_add = fam["callfloor_agent_aht_today_seconds"].add
        offered_add = fam["callfloor_agent_offered_today"].add
        rate_add = fam["callfloor_agent_answer_today_ratio"].add
        for name, a in floor.agents.items():
            info = view.agent_info(name, names=NamePolicy.SHOW)
            if info is None:  # listed in the document, so never at one clock
                continue
            al = cache.get(name)
            if al is None or al.identity != (info.team, info.display_name, info.site):
                al = cache[name] = _AgentLabels(info)
            plain = al.plain
            info_add("callfloor_agent_info", al.info, 1.0)
            state_add("callfloor_agent_state", al.state(name, a.state.value), 1.0)
            seconds_add("callfloor_agent_state_seconds", plain, max(0.0, now - a.state_since))
            nr_add("callfloor_agent_not_ready_today_seconds", plain, a.not_ready_today_s)
            answered_add("callfloor_agent_answered_today", plain, a.answered_today)
            missed_add("callfloor_agent_missed_today", plain, a.missed_today)
            handled_add("callfloor_agent_handled_today", plain, a.handled_today)
            offered_add("callfloor_agent_offered_today", plain, a.offered_today)
            # Null figures are left out (never NaN), like window rates.
            if a.aht_today_s is not None:
                aht_add("callfloor_agent_aht_today_seconds", plain, a.aht_today_s)
            if a.answer_rate_today is not None:
                rate_add("callfloor_agent_answer_today_ratio", plain, a.answer_rate_today)
        _forget_missing(cache, floor.agents)


def _forget_missing(cache: dict[str, _L], listed: Collection[str]) -> None:
    """Drop the label sets of names no longer listed (the cache never outgrows the floor)."""
    if len(cache) > len(listed):
        keep = set(listed)
        for name in [n for n in cache if n not in keep]:
            del cache[name]


def _add_window(lab: LabelSet, w: WindowStats, rate_adds: _Adds, count_adds: _Adds) -> None:
    """One window's rates (left out when null: never NaN) and counts."""
    for (add, sample), value in zip(rate_adds, _get_rates(w), strict=True):
        if value is not None:
            add(sample, lab, value)
    for (add, sample), n in zip(count_adds, _get_counts(w), strict=True):
        add(sample, lab, n)
