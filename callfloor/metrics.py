"""Prometheus exposition of the floor: one custom collector over :class:`FloorProcessor`.

Clock contract
--------------
:class:`FloorCollector` reads the processor *at its current clock* (``proc.clock``)
and never ticks it: the caller (the service, before each scrape) calls
``proc.tick(now)`` first, exactly as for the replay document. Reading only moves
the queues' rolling-window cursors up to that clock (``snapshot._QueueView``, as
:func:`~callfloor.processors.snapshot.build_document` does), which changes nothing
the processor computes next. Until the clock is finite (no event and no tick yet),
the time-based families (windows, live values, per-agent times) are left out.
Collect on the thread that owns the processor: it takes no lock.

Families
--------
Labels: ``queue``, ``site``, ``window`` (the configured rolling labels such as
``15m`` and ``60m``, then ``interval`` and ``today``), ``state``, ``kind``,
``severity``, ``reason``, ``type``, ``outcome``, ``agent``; the service families
add ``handler`` and ``source``.

Per queue and window (gauges, ``{queue, window}``); the same with ``callfloor_site_``
and ``{site, window}`` for sites, whose values are the roll-up of the replay document
(counts added, rates formed with the site's formula):

- ``callfloor_queue_service_level_ratio``, ``callfloor_queue_abandon_ratio``,
  ``callfloor_queue_asa_seconds``, ``callfloor_queue_aht_seconds``,
  ``callfloor_queue_max_wait_seconds``: a sample is left out, not NaN, when its
  denominator is 0 (``null`` in the document).
- ``callfloor_queue_window_<count>_calls`` for every SPEC §3 count (``offered``,
  ``answered``, ``abandoned``, ``short_abandoned``, ``dequeued``, ``sl_offered``,
  ``answered_in_sl``, ``abandoned_in_sl``, ``handled``). One family per count rather
  than a ``count`` label, because summing different counts is meaningless.

Per queue, lifetime counters since start-up (``{queue}``; ``rate()`` works on them):
``callfloor_queue_<count>_total`` for the same nine counts,
``callfloor_queue_handle_seconds_total`` and ``callfloor_queue_answered_wait_seconds_total``.

Per queue, histogram ``callfloor_queue_wait_seconds{queue, outcome}`` (``answered``,
``abandoned`` -- short abandons are not in it) with the queue's own bounds, which
include its SL and short-abandon thresholds; both outcomes have ``_sum`` and ``_count``.

Per queue, live (``{queue}``): ``callfloor_queue_waiting_calls``,
``callfloor_queue_longest_wait_seconds``, ``callfloor_queue_agents{queue, state}``,
``callfloor_queue_occupancy_ratio``, ``callfloor_queue_arrival_rate_per_second``,
``callfloor_queue_required_agents``, ``callfloor_queue_projected_service_level_ratio``
(null values left out), and the configuration readers need to join against:
``callfloor_queue_info{queue, site, channel}`` (always 1),
``callfloor_queue_service_level_target_ratio``,
``callfloor_queue_service_level_threshold_seconds``. Per site, live:
``callfloor_site_waiting_calls``, ``callfloor_site_longest_wait_seconds``,
``callfloor_site_agents{site, state}``, ``callfloor_site_occupancy_ratio``,
``callfloor_site_arrival_rate_per_second``.

Violations: ``callfloor_violations_active{kind, severity}`` (zero for the kinds the
configuration can raise, so alerts see 0 rather than nothing).

Processor self-metrics: ``callfloor_events_total{type}`` (applied events by their
canonical type), ``callfloor_events_rejected_total{reason}``,
``callfloor_events_duplicate_total``, ``callfloor_events_orphaned_total``,
``callfloor_events_late_total``, ``callfloor_clock_seconds`` (event-time clock),
``callfloor_open_legs``, ``callfloor_timers_pending``.

Service self-metrics (only with a :class:`ServiceStats` provider):
``callfloor_http_requests_total{handler}``, ``callfloor_ingest_batch_seconds``
(summary: ``_count``, ``_sum``), ``callfloor_ingest_batch_seconds_max``,
``callfloor_ingest_events_total{source}``, ``callfloor_ingest_dropped_batches_total``,
``callfloor_ingest_dropped_events_total``.

Per agent (off by default for cardinality; ``[metrics] per_agent_series = true``),
agents that sent a valid ``agent_state`` only: ``callfloor_agent_state{agent, state}``
(1, for the current state only), ``callfloor_agent_state_seconds{agent}`` (time in the
current spell), ``callfloor_agent_not_ready_today_seconds{agent}``,
``callfloor_agent_answered_today{agent}``, ``callfloor_agent_missed_today{agent}``.

Rendering speed
---------------
A 500-queue floor has ~57,000 samples. ``prometheus_client.generate_latest`` costs
about 4 µs per sample (a ``Sample`` and a label dict each, then sorting and escaping
every label set on output): ~240 ms, far over the 100 ms budget. So one builder fills
either kind of family: :meth:`FloorCollector.collect` builds ordinary ``Metric``
objects (any registry works), while :meth:`FloorCollector.render_text` -- what
:func:`render` uses on a :class:`FloorRegistry` -- formats each sample line at once
from label strings escaped once per queue, site or agent and cached across scrapes.
The text is byte-identical to ``generate_latest`` on the same registry (tested). Lines
are strings, which the garbage collector does not track, so a scrape does not push
tens of thousands of short-lived tuples into a full collection of the processor's
large heap (that made the slowest scrapes 3x the median).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol, TypeVar, cast

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from callfloor.config import DAILY_SEVERITIES
from callfloor.events import AGENT_STATES, EVENT_TYPES
from callfloor.ingest.decode import REASONS
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.model import LIVE_STATES, QueueState
from callfloor.processors.snapshot import (
    QueueView,
    agent_today,
    queue_live,
    site_live,
    sum_windows,
    window_doc,
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

__all__ = [
    "CONTENT_TYPE",
    "FloorCollector",
    "FloorRegistry",
    "ServiceStats",
    "build_registry",
    "render",
    "render_service",
]

CONTENT_TYPE: Final[str] = CONTENT_TYPE_PLAIN_0_0_4
"""The ``Content-Type`` of :func:`render` output (Prometheus text format 0.0.4)."""


# --------------------------------------------------------------------------- service stats


class ServiceStats(Protocol):
    """Self-metrics of the service layer, read at every collect.

    Read-only attributes, so the service's own mutable stats object (e.g.
    ``callfloor.service.IngestStats``) satisfies it as it is, with no copying.
    """

    @property
    def http_requests_total(self) -> Mapping[str, int]:
        """HTTP requests by handler (route name)."""

    @property
    def batches_total(self) -> int:
        """Ingest batches applied."""

    @property
    def batch_seconds_sum(self) -> float:
        """Seconds spent applying those batches."""

    @property
    def batch_seconds_max(self) -> float:
        """The longest batch since start-up, seconds."""

    @property
    def by_source(self) -> Mapping[str, int]:
        """Events received by source."""

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""

    @property
    def changes_dropped_total(self) -> int:
        """Change sets a slow subscriber lost (drop-oldest)."""

    @property
    def dropped_batches_total(self) -> int:
        """Batches dropped because the ingest queue was full."""

    @property
    def dropped_events_total(self) -> int:
        """Events in those dropped batches."""


StatsProvider = Callable[[], ServiceStats]

# --------------------------------------------------------------------------- rows and labels

# A label set: (exposition text such as '{queue="q",window="15m"}', names, values).
# Names are sorted, as generate_latest sorts them, so both outputs are identical.
_Labels = tuple[str, tuple[str, ...], tuple[str, ...]]

_NO_LABELS: Final[_Labels] = ("", (), ())


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(**pairs: str) -> _Labels:
    names = tuple(sorted(pairs))
    values = tuple(pairs[n] for n in names)
    if not names:
        return _NO_LABELS
    text = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + text + "}", names, values


# prometheus_client's own number formatting (Go style: 1.0, +Inf, 1e+06), typed.
_go_float: Final[Callable[[float], str]] = floatToGoString
# Counts are small integers most of the time: format them once.
_FORMATTED: Final[dict[float, str]] = {i: _go_float(i) for i in range(4096)}


class _Spec(NamedTuple):
    name: str  # as exposed: counters end in _total
    kind: str  # gauge, counter, histogram, summary
    help: str

    def metric(self) -> Metric:
        """An empty prometheus_client ``Metric`` (counters are named without ``_total``)."""
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        return Metric(base, self.help, self.kind)

    def header(self) -> str:
        """HELP and TYPE lines, as generate_latest writes them."""
        help_text = self.help.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n"


class _Family:
    """One family being built; :meth:`add` is its only write."""

    __slots__ = ("spec",)

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec

    def add(self, sample: str, labels: _Labels, value: float) -> None:
        """Add one sample."""
        raise NotImplementedError


_F = TypeVar("_F", bound=_Family)


class _TextFamily(_Family):
    """Formats each sample line at once (see "Rendering speed" above)."""

    __slots__ = ("lines",)

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.lines = [spec.header()]

    def add(self, sample: str, labels: _Labels, value: float) -> None:
        """Add one sample line."""
        self.lines.append(f"{sample}{labels[0]} {_FORMATTED.get(value) or _go_float(value)}\n")


class _MetricFamily(_Family):
    """Builds a prometheus_client ``Metric`` with ``Sample`` objects."""

    __slots__ = ("metric",)

    def __init__(self, spec: _Spec) -> None:
        super().__init__(spec)
        self.metric = spec.metric()

    def add(self, sample: str, labels: _Labels, value: float) -> None:
        """Add one sample."""
        self.metric.samples.append(
            Sample(sample, dict(zip(labels[1], labels[2], strict=True)), value)
        )


# --------------------------------------------------------------------------- family specs

_G = "gauge"
_C = "counter"

# SPEC §3 counts: (document key, field index, what it counts).
_COUNTS: Final[tuple[tuple[str, int, str], ...]] = (
    ("offered", OFFERED, "legs started (call_queued)"),
    ("answered", ANSWERED, "legs answered"),
    ("abandoned", ABANDONED, "legs abandoned after the short-abandon threshold"),
    ("short_abandoned", SHORT_ABANDONED, "legs abandoned within the short-abandon threshold"),
    ("dequeued", DEQUEUED, "legs ended by call_dequeued or a requeue"),
    ("sl_offered", SL_OFFERED, "legs with a service-level event"),
    ("answered_in_sl", ANSWERED_IN_SL, "legs answered within the SL threshold"),
    ("abandoned_in_sl", ABANDONED_IN_SL, "legs abandoned within the SL threshold (not short)"),
    ("handled", HANDLED, "calls whose handling (talk and after-call work) completed"),
)
assert tuple(c[0] for c in _COUNTS) == COUNT_NAMES  # window_doc keys are these names

# Window rates: (document key, name suffix, help).
_RATES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "service_level",
        "service_level_ratio",
        "Service level over the window by the {scope}'s formula (0..1); "
        "absent when no leg had a service-level event.",
    ),
    (
        "abandon_rate",
        "abandon_ratio",
        "abandoned / (answered + abandoned) over the window (0..1); absent with neither.",
    ),
    (
        "asa_s",
        "asa_seconds",
        "Average speed of answer: mean wait of the legs answered in the window, seconds.",
    ),
    (
        "aht_s",
        "aht_seconds",
        "Average handle time of the calls handled in the window (talk + after-call work), seconds.",
    ),
    (
        "max_wait_s",
        "max_wait_seconds",
        "Longest wait of the legs answered or abandoned in the window, seconds.",
    ),
)


def _window_specs(scope: str) -> list[_Spec]:
    specs = [
        _Spec(f"callfloor_{scope}_{suffix}", _G, help_text.format(scope=scope))
        for _, suffix, help_text in _RATES
    ]
    specs += [
        _Spec(f"callfloor_{scope}_window_{key}_calls", _G, f"Count in the window: {what}.")
        for key, _, what in _COUNTS
    ]
    return specs


_QUEUE_SPECS: Final[tuple[_Spec, ...]] = (
    _Spec("callfloor_queue_info", _G, "Queue metadata (always 1): its site and channel."),
    _Spec("callfloor_queue_service_level_target_ratio", _G, "Service-level target of the queue."),
    _Spec(
        "callfloor_queue_service_level_threshold_seconds",
        _G,
        "Service-level threshold T of the queue, seconds.",
    ),
    *_window_specs("queue"),
    *(
        _Spec(f"callfloor_queue_{key}_total", _C, f"Lifetime count since start-up: {what}.")
        for key, _, what in _COUNTS
    ),
    _Spec(
        "callfloor_queue_handle_seconds_total",
        _C,
        "Lifetime sum of the handle times of handled calls, seconds.",
    ),
    _Spec(
        "callfloor_queue_answered_wait_seconds_total",
        _C,
        "Lifetime sum of the waits of answered legs, seconds.",
    ),
    _Spec(
        "callfloor_queue_wait_seconds",
        "histogram",
        "Waits of legs since start-up by outcome (abandoned excludes short abandons).",
    ),
    _Spec("callfloor_queue_waiting_calls", _G, "Calls waiting in the queue now."),
    _Spec(
        "callfloor_queue_longest_wait_seconds",
        _G,
        "Wait so far of the oldest waiting call, seconds (0 when none).",
    ),
    _Spec(
        "callfloor_queue_agents",
        _G,
        "Agents serving the queue by state (logged_out left out).",
    ),
    _Spec(
        "callfloor_queue_occupancy_ratio",
        _G,
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
    ),
    _Spec(
        "callfloor_queue_arrival_rate_per_second",
        _G,
        "Legs offered in the rolling 15 minutes / 900.",
    ),
    _Spec(
        "callfloor_queue_required_agents",
        _G,
        "Erlang C agents needed to reach the SL target; absent when nothing was offered "
        "in the rolling 15 minutes.",
    ),
    _Spec(
        "callfloor_queue_projected_service_level_ratio",
        _G,
        "Erlang C service level with the agents staffed now; absent when nothing was "
        "offered in the rolling 15 minutes.",
    ),
)

_SITE_SPECS: Final[tuple[_Spec, ...]] = (
    *_window_specs("site"),
    _Spec("callfloor_site_waiting_calls", _G, "Calls waiting in the site's queues now."),
    _Spec(
        "callfloor_site_longest_wait_seconds",
        _G,
        "Wait so far of the oldest call waiting in the site's queues, seconds (0 when none).",
    ),
    _Spec(
        "callfloor_site_agents",
        _G,
        "Agents of the site by state, each once (logged_out left out).",
    ),
    _Spec(
        "callfloor_site_occupancy_ratio",
        _G,
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
    ),
    _Spec(
        "callfloor_site_arrival_rate_per_second",
        _G,
        "Legs offered to the site's queues in the rolling 15 minutes / 900.",
    ),
)

_PROCESSOR_SPECS: Final[tuple[_Spec, ...]] = (
    _Spec("callfloor_violations_active", _G, "Idle-time violations active now."),
    _Spec(
        "callfloor_violations_started_total",
        _C,
        "Idle-time violations started since start-up (including later retracted ones).",
    ),
    _Spec(
        "callfloor_state_expired_total",
        _C,
        "Calls forgotten in live operation after the retention: conversations that never "
        "ended, handling never decided by a next agent_state.",
    ),
    _Spec(
        "callfloor_violations_retracted_total",
        _C,
        "Violations taken back because a late event showed they never happened.",
    ),
    _Spec("callfloor_events_total", _C, "Valid events applied, by type (not duplicates)."),
    _Spec("callfloor_events_rejected_total", _C, "Invalid events rejected, by reason."),
    _Spec("callfloor_events_duplicate_total", _C, "Duplicate events dropped."),
    _Spec(
        "callfloor_events_orphaned_total",
        _C,
        "Events for a call with no open leg or conversation (they change nothing else).",
    ),
    _Spec(
        "callfloor_events_late_total",
        _C,
        "Events older than the clock, applied at their own time.",
    ),
    _Spec(
        "callfloor_clock_seconds",
        _G,
        "The processor clock (event time), Unix seconds; absent before the first event.",
    ),
    _Spec("callfloor_open_legs", _G, "Calls waiting in any queue."),
    _Spec("callfloor_timers_pending", _G, "Deadlines in the timer heap (some may be stale)."),
)

_AGENT_SPECS: Final[tuple[_Spec, ...]] = (
    _Spec("callfloor_agent_state", _G, "1 for the agent's current state."),
    _Spec("callfloor_agent_state_seconds", _G, "Time in the agent's current spell, seconds."),
    _Spec(
        "callfloor_agent_not_ready_today_seconds",
        _G,
        "Non-exempt not-ready time since site-local midnight, seconds.",
    ),
    _Spec(
        "callfloor_agent_answered_today",
        _G,
        "Calls the agent answered since site-local midnight.",
    ),
    _Spec(
        "callfloor_agent_missed_today",
        _G,
        "Calls the agent missed (call_missed) since site-local midnight.",
    ),
)

_SERVICE_SPECS: Final[tuple[_Spec, ...]] = (
    _Spec("callfloor_http_requests_total", _C, "HTTP requests by handler."),
    _Spec("callfloor_ingest_batch_seconds", "summary", "Time spent applying ingest batches."),
    _Spec(
        "callfloor_ingest_batch_seconds_max",
        _G,
        "Longest time spent applying one ingest batch since start-up, seconds.",
    ),
    _Spec("callfloor_ingest_events_total", _C, "Events received, by source."),
    _Spec(
        "callfloor_ingest_dropped_batches_total",
        _C,
        "Ingest batches dropped because the ingest queue was full.",
    ),
    _Spec(
        "callfloor_ingest_dropped_events_total",
        _C,
        "Events in ingest batches dropped because the ingest queue was full.",
    ),
    _Spec(
        "callfloor_ingest_held_events",
        _G,
        "Events received ahead of the watermark (wall clock minus the delay), not applied yet.",
    ),
    _Spec(
        "callfloor_changes_dropped_total",
        _C,
        "Change sets a slow /api/v1/changes subscriber lost (oldest dropped first).",
    ),
)

# Every canonical type tag, so each has a series from the start (zero until seen).
_EVENT_TAGS: Final[tuple[str, ...]] = tuple(str(cls.__struct_config__.tag) for cls in EVENT_TYPES)


# --------------------------------------------------------------------------- label caches


class _QueueLabels:
    """Label sets of one queue, escaped once and kept across scrapes."""

    __slots__ = ("bounds", "channel", "hist", "info", "plain", "site", "states", "windows")

    def __init__(self, q: QueueState, window_labels: Sequence[str]) -> None:
        name = q.name
        self.site = q.site
        self.channel = q.channel
        self.bounds = q.bounds
        self.plain = _labels(queue=name)
        self.info = _labels(queue=name, site=q.site, channel=q.channel)
        self.windows = [_labels(queue=name, window=w) for w in window_labels]
        self.states = [_labels(queue=name, state=s) for s in LIVE_STATES]
        les = [_go_float(b) for b in q.bounds] + ["+Inf"]
        self.hist = {
            outcome: (
                [_labels(queue=name, outcome=outcome, le=le) for le in les],
                _labels(queue=name, outcome=outcome),
            )
            for outcome in ("answered", "abandoned")
        }

    def fits(self, q: QueueState) -> bool:
        """Still right for the queue (its site is set by its first call_queued)."""
        return self.site == q.site and self.channel == q.channel and self.bounds == q.bounds


class _SiteLabels:
    __slots__ = ("plain", "states", "windows")

    def __init__(self, name: str, window_labels: Sequence[str]) -> None:
        self.plain = _labels(site=name)
        self.windows = [_labels(site=name, window=w) for w in window_labels]
        self.states = [_labels(site=name, state=s) for s in LIVE_STATES]


class _AgentLabels:
    __slots__ = ("plain", "states")

    def __init__(self, name: str) -> None:
        self.plain = _labels(agent=name)
        self.states = {s: _labels(agent=name, state=s) for s in AGENT_STATES}


# --------------------------------------------------------------------------- collector


class _QueueRead(NamedTuple):
    """What the site roll-up takes from one queue read at the clock."""

    windows: list[tuple[list[int], int]]  # sums and max wait (µs), window label order
    view: QueueView


class FloorCollector(Collector):
    """Prometheus collector over a :class:`FloorProcessor`, read at ``proc.clock``.

    It never ticks the processor: call ``proc.tick(now)`` before collecting (the
    service does so on every scrape). ``stats`` returns the service layer's
    self-metrics; ``per_agent_series`` overrides ``config.metrics.per_agent_series``.
    """

    def __init__(
        self,
        proc: FloorProcessor,
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
        self._window_labels = [*proc.window_index, "interval", "today"]

    # ------------------------------------------------------------ public API

    def describe(self) -> Iterable[Metric]:
        """Every family this collector may emit, without samples (registry name checks)."""
        return [spec.metric() for spec in self._specs()]

    def collect(self) -> Iterable[Metric]:
        """The families at the processor's clock, as prometheus_client ``Metric`` objects."""
        return [family.metric for family in self._build(_MetricFamily)]

    def render_text(self) -> str:
        """The families at the processor's clock in text format 0.0.4 (the fast path).

        Byte-identical to ``generate_latest`` over :meth:`collect`.
        """
        return "".join([line for family in self._build(_TextFamily) for line in family.lines])

    # ------------------------------------------------------------ building

    def _per_agent(self) -> bool:
        if self.per_agent_series is not None:
            return self.per_agent_series
        return self.proc.config.metrics.per_agent_series

    def _specs(self) -> list[_Spec]:
        specs = [*_QUEUE_SPECS, *_SITE_SPECS, *_PROCESSOR_SPECS]
        if self._per_agent():
            specs += _AGENT_SPECS
        if self.stats is not None:
            specs += _SERVICE_SPECS
        return specs

    def _build(self, make: type[_F]) -> list[_F]:
        families = [make(spec) for spec in self._specs()]
        by_name: dict[str, _Family] = {f.spec.name: f for f in families}
        proc = self.proc
        timed = math.isfinite(proc.clock)
        reads = self._queues(by_name, timed)
        if timed:
            self._sites(by_name, reads)
        self._processor(by_name)
        if timed and self._per_agent():
            self._agents(by_name)
        if self.stats is not None:
            self._service(by_name, self.stats())
        return families

    def _queues(self, fam: dict[str, _Family], timed: bool) -> dict[str, _QueueRead]:
        """Queue families; returns what the site roll-ups need of each queue (when timed)."""
        proc = self.proc
        cache = self._queue_labels
        window_labels = self._window_labels
        rates = [
            (fam[f"callfloor_queue_{suffix}"].add, f"callfloor_queue_{suffix}", key)
            for key, suffix, _ in _RATES
        ]
        counts = [
            (
                fam[f"callfloor_queue_window_{key}_calls"].add,
                f"callfloor_queue_window_{key}_calls",
                key,
            )
            for key, _, _ in _COUNTS
        ]
        totals_adds = [
            (fam[f"callfloor_queue_{key}_total"].add, f"callfloor_queue_{key}_total", index)
            for key, index, _ in _COUNTS
        ]
        info = fam["callfloor_queue_info"].add
        target = fam["callfloor_queue_service_level_target_ratio"].add
        threshold = fam["callfloor_queue_service_level_threshold_seconds"].add
        handle_total = fam["callfloor_queue_handle_seconds_total"].add
        wait_total = fam["callfloor_queue_answered_wait_seconds_total"].add
        hist = fam["callfloor_queue_wait_seconds"].add
        waiting = fam["callfloor_queue_waiting_calls"].add
        longest = fam["callfloor_queue_longest_wait_seconds"].add
        agents = fam["callfloor_queue_agents"].add
        live_optional = [
            (
                fam["callfloor_queue_occupancy_ratio"].add,
                "callfloor_queue_occupancy_ratio",
                "occupancy",
            ),
            (
                fam["callfloor_queue_arrival_rate_per_second"].add,
                "callfloor_queue_arrival_rate_per_second",
                "arrival_rate_per_s",
            ),
            (
                fam["callfloor_queue_required_agents"].add,
                "callfloor_queue_required_agents",
                "required_agents",
            ),
            (
                fam["callfloor_queue_projected_service_level_ratio"].add,
                "callfloor_queue_projected_service_level_ratio",
                "projected_service_level",
            ),
        ]
        out: dict[str, _QueueRead] = {}
        for name in sorted(proc.queues):
            q = proc.queues[name]
            if not q.listed:
                continue  # the document leaves it out too
            ql = cache.get(name)
            if ql is None or not ql.fits(q):
                ql = cache[name] = _QueueLabels(q, window_labels)
            plain = ql.plain
            policy = q.policy
            info("callfloor_queue_info", ql.info, 1.0)
            target("callfloor_queue_service_level_target_ratio", plain, policy.sl_target)
            threshold(
                "callfloor_queue_service_level_threshold_seconds", plain, policy.sl_threshold_s
            )

            totals = q.totals
            for add, sample, index in totals_adds:
                add(sample, plain, totals[index])
            handle_total("callfloor_queue_handle_seconds_total", plain, totals[HANDLE_US] / 1e6)
            wait_sum = totals[WAIT_US] / 1e6
            wait_total("callfloor_queue_answered_wait_seconds_total", plain, wait_sum)
            # The processor keeps per-slot counts; Prometheus buckets are cumulative.
            for outcome, slots, total in (
                ("answered", q.hist_answered, wait_sum),
                ("abandoned", q.hist_abandoned, q.abandoned_wait_us / 1e6),
            ):
                bucket_labels, outcome_labels = ql.hist[outcome]
                acc = 0
                for lab, n in zip(bucket_labels, slots, strict=True):
                    acc += n
                    hist("callfloor_queue_wait_seconds_bucket", lab, acc)
                hist("callfloor_queue_wait_seconds_count", outcome_labels, acc)
                if total is not None:
                    hist("callfloor_queue_wait_seconds_sum", outcome_labels, total)

            if not timed:
                continue
            view = QueueView(proc, q)
            wins = [sm for _, sm in view.windows()]
            formula = policy.sl_formula
            for lab, (sums, max_us) in zip(ql.windows, wins, strict=True):
                doc = window_doc(sums, max_us, formula)
                for add, sample, key in rates:
                    value = doc[key]
                    if value is not None:  # null in the document: no sample, never NaN
                        add(sample, lab, cast(float, value))
                for add, sample, key in counts:
                    add(sample, lab, cast(float, doc[key]))
            live = queue_live(proc, q, view)
            wait_now = cast(float, live["longest_wait_s"])
            waiting("callfloor_queue_waiting_calls", plain, len(q.open))
            longest("callfloor_queue_longest_wait_seconds", plain, wait_now)
            by_state = cast(dict[str, int], live["agents"])
            for lab, state in zip(ql.states, LIVE_STATES, strict=True):
                agents("callfloor_queue_agents", lab, by_state[state])
            for add, sample, key in live_optional:
                value = live[key]
                if value is not None:
                    add(sample, plain, cast(float, value))
            out[name] = _QueueRead(wins, view)
        return out

    def _sites(
        self,
        fam: dict[str, _Family],
        queues: dict[str, _QueueRead],
    ) -> None:
        """Site roll-ups, grouped and summed as build_document does."""
        proc = self.proc
        site_queues: dict[str, list[str]] = {}
        for name in queues:
            site_queues.setdefault(proc.queues[name].site, []).append(name)
        agent_sites = {a.site for a in proc.agents.values() if a.known}
        rates = [
            (fam[f"callfloor_site_{suffix}"].add, f"callfloor_site_{suffix}", key)
            for key, suffix, _ in _RATES
        ]
        counts = [
            (
                fam[f"callfloor_site_window_{key}_calls"].add,
                f"callfloor_site_window_{key}_calls",
                key,
            )
            for key, _, _ in _COUNTS
        ]
        empty: tuple[list[int], int] = ([0] * NFIELDS, -1)
        for site_name in sorted(set(site_queues) | agent_sites):
            sl = self._site_labels.get(site_name)
            if sl is None:
                sl = self._site_labels[site_name] = _SiteLabels(site_name, self._window_labels)
            site = proc.site(site_name)
            formula = site.config.sl_formula
            names = site_queues.get(site_name, [])
            parts = [queues[n] for n in names]
            for k, lab in enumerate(sl.windows):
                sums, max_us = sum_windows([p.windows[k] for p in parts]) if parts else empty
                doc = window_doc(sums, max_us, formula)
                for add, sample, key in rates:
                    value = doc[key]
                    if value is not None:
                        add(sample, lab, cast(float, value))
                for add, sample, key in counts:
                    add(sample, lab, cast(float, doc[key]))
            live = site_live(proc, site_name, names, {n: queues[n].view for n in names})
            plain = sl.plain
            fam["callfloor_site_waiting_calls"].add(
                "callfloor_site_waiting_calls", plain, cast(float, live["waiting"])
            )
            fam["callfloor_site_longest_wait_seconds"].add(
                "callfloor_site_longest_wait_seconds", plain, cast(float, live["longest_wait_s"])
            )
            by_state = cast(dict[str, int], live["agents"])
            add = fam["callfloor_site_agents"].add
            for lab, state in zip(sl.states, LIVE_STATES, strict=True):
                add("callfloor_site_agents", lab, by_state[state])
            if live["occupancy"] is not None:
                fam["callfloor_site_occupancy_ratio"].add(
                    "callfloor_site_occupancy_ratio", plain, cast(float, live["occupancy"])
                )
            fam["callfloor_site_arrival_rate_per_second"].add(
                "callfloor_site_arrival_rate_per_second",
                plain,
                cast(float, live["arrival_rate_per_s"]),
            )

    def _processor(self, fam: dict[str, _Family]) -> None:
        """Violations and the processor's own counters."""
        proc = self.proc
        rules = proc.rules
        # Zero series for every kind and severity the configuration can raise.
        active: dict[tuple[str, str], int] = {
            ("not_ready_exceeded", "warning"): 0,
            ("wrap_up_exceeded", "warning"): 0,
            ("stale_agent", "warning"): 0,
        }
        if rules.missed_calls_max > 0:
            active["missed_calls_exceeded", "warning"] = 0
        for level in range(len(rules.daily_not_ready_s)):
            severity = DAILY_SEVERITIES[min(level, len(DAILY_SEVERITIES) - 1)]
            active["not_ready_daily_exceeded", severity] = 0
        now = proc.clock
        for v in proc.violations:
            if v.ended_at is None and v.started_at <= now:
                key = (v.kind, v.severity)
                active[key] = active.get(key, 0) + 1
        add = fam["callfloor_violations_active"].add
        for (kind, severity), n in sorted(active.items()):
            add("callfloor_violations_active", _labels(kind=kind, severity=severity), n)
        for name, lifetime in (
            ("callfloor_violations_started_total", proc.violations_started),
            ("callfloor_violations_retracted_total", proc.violations_retracted),
        ):
            add = fam[name].add
            for (kind, severity), n in sorted((dict.fromkeys(active, 0) | lifetime).items()):
                add(name, _labels(kind=kind, severity=severity), n)

        add = fam["callfloor_state_expired_total"].add
        for kind, n in sorted(proc.expired.items()):
            add("callfloor_state_expired_total", _labels(kind=kind), n)

        by_type = dict.fromkeys(_EVENT_TAGS, 0)
        by_type.update(proc.events_by_type)
        add = fam["callfloor_events_total"].add
        for tag, n in by_type.items():
            add("callfloor_events_total", _labels(type=tag), n)
        rejected = dict.fromkeys(REASONS, 0)
        rejected.update(proc.rejected_by_reason)
        add = fam["callfloor_events_rejected_total"].add
        for reason, n in rejected.items():
            add("callfloor_events_rejected_total", _labels(reason=reason), n)
        counters = proc.counters
        for counter, name in (
            ("duplicates", "callfloor_events_duplicate_total"),
            ("orphaned", "callfloor_events_orphaned_total"),
            ("late", "callfloor_events_late_total"),
        ):
            fam[name].add(name, _NO_LABELS, counters[counter])
        if math.isfinite(now):
            fam["callfloor_clock_seconds"].add("callfloor_clock_seconds", _NO_LABELS, now)
        fam["callfloor_open_legs"].add("callfloor_open_legs", _NO_LABELS, len(proc.calls))
        fam["callfloor_timers_pending"].add(
            "callfloor_timers_pending", _NO_LABELS, len(proc.timers)
        )

    def _agents(self, fam: dict[str, _Family]) -> None:
        """Per-agent series (only when enabled: 5+ series per agent)."""
        proc = self.proc
        now = proc.clock
        cache = self._agent_labels
        state_add = fam["callfloor_agent_state"].add
        seconds_add = fam["callfloor_agent_state_seconds"].add
        nr_add = fam["callfloor_agent_not_ready_today_seconds"].add
        answered_add = fam["callfloor_agent_answered_today"].add
        missed_add = fam["callfloor_agent_missed_today"].add
        for name in sorted(proc.agents):
            a = proc.agents[name]
            if not a.known or a.state is None:
                continue
            al = cache.get(name)
            if al is None:
                al = cache[name] = _AgentLabels(name)
            plain = al.plain
            state_add("callfloor_agent_state", al.states[a.state], 1.0)
            seconds_add("callfloor_agent_state_seconds", plain, max(0.0, now - a.since))
            today = agent_today(proc, a)  # the document's own rule for today's counters
            nr_add(
                "callfloor_agent_not_ready_today_seconds",
                plain,
                cast(float, today["not_ready_today_s"]),
            )
            answered_add(
                "callfloor_agent_answered_today", plain, cast(float, today["answered_today"])
            )
            missed_add("callfloor_agent_missed_today", plain, cast(float, today["missed_today"]))

    @staticmethod
    def _service(fam: dict[str, _Family], stats: ServiceStats) -> None:
        add = fam["callfloor_http_requests_total"].add
        for handler, n in sorted(stats.http_requests_total.items()):
            add("callfloor_http_requests_total", _labels(handler=handler), n)
        add = fam["callfloor_ingest_batch_seconds"].add
        add("callfloor_ingest_batch_seconds_count", _NO_LABELS, stats.batches_total)
        add("callfloor_ingest_batch_seconds_sum", _NO_LABELS, stats.batch_seconds_sum)
        fam["callfloor_ingest_batch_seconds_max"].add(
            "callfloor_ingest_batch_seconds_max", _NO_LABELS, stats.batch_seconds_max
        )
        add = fam["callfloor_ingest_events_total"].add
        for source, n in sorted(stats.by_source.items()):
            add("callfloor_ingest_events_total", _labels(source=source), n)
        for name, value in (
            ("callfloor_ingest_dropped_batches_total", stats.dropped_batches_total),
            ("callfloor_ingest_dropped_events_total", stats.dropped_events_total),
            ("callfloor_ingest_held_events", stats.held_events),
            ("callfloor_changes_dropped_total", stats.changes_dropped_total),
        ):
            fam[name].add(name, _NO_LABELS, value)


# --------------------------------------------------------------------------- registry and rendering


class FloorRegistry(CollectorRegistry):
    """A ``CollectorRegistry`` that :func:`render` writes quickly.

    It remembers its collectors in registration order, so :func:`render` can write
    each :class:`FloorCollector` straight from its rows and every other collector
    through ``generate_latest``; the result is byte-identical to
    ``generate_latest(registry)``, which also works on it (slowly).
    """

    def __init__(self, *, auto_describe: bool = False) -> None:
        super().__init__(auto_describe=auto_describe)
        self._ordered: list[Collector] = []
        self._ordered_lock = threading.Lock()

    def register(self, collector: Collector) -> None:
        """Add a collector (duplicate family names are refused, as by the base class)."""
        super().register(collector)
        with self._ordered_lock:
            self._ordered.append(collector)

    def unregister(self, collector: Collector) -> None:
        """Remove a collector."""
        super().unregister(collector)
        with self._ordered_lock:
            self._ordered.remove(collector)

    def render(self) -> bytes:
        """Text format 0.0.4 of every collector, FloorCollectors on the fast path."""
        if self.get_target_info():
            return generate_latest(self)  # target_info comes first: keep the library's order
        with self._ordered_lock:
            collectors = list(self._ordered)
        parts = [
            c.render_text() if isinstance(c, FloorCollector) else generate_latest(c).decode()
            for c in collectors
        ]
        return "".join(parts).encode("utf-8")


def build_registry(
    proc: FloorProcessor,
    *,
    stats: StatsProvider | None = None,
    per_agent_series: bool | None = None,
) -> FloorRegistry:
    """A fresh registry (not the global one) holding one :class:`FloorCollector`."""
    registry = FloorRegistry()
    registry.register(FloorCollector(proc, stats=stats, per_agent_series=per_agent_series))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The ``/metrics`` body (serve it with :data:`CONTENT_TYPE`).

    Same bytes as ``prometheus_client.generate_latest(registry)``; a
    :class:`FloorRegistry` takes the fast path. Tick the processor first.
    """
    if isinstance(registry, FloorRegistry):
        return registry.render()
    return generate_latest(registry)


class _Service(Protocol):
    """What :func:`render_service` needs of the live service."""

    @property
    def proc(self) -> FloorProcessor: ...

    @property
    def stats(self) -> ServiceStats: ...


# One registry per service, so label caches survive from scrape to scrape. The value
# must not reference the service (it would keep its own key alive).
_SERVICE_REGISTRIES: weakref.WeakKeyDictionary[Any, tuple[FloorRegistry, FloorCollector]] = (
    weakref.WeakKeyDictionary()
)


def render_service(service: _Service) -> bytes:
    """The ``/metrics`` body of a live service: its processor and its stats.

    The caller advances the processor first (``service.read()``). The registry is
    kept per service and rebuilt if the service's processor was replaced.
    """
    stats = service.stats

    def provider() -> ServiceStats:
        return stats

    entry = _SERVICE_REGISTRIES.get(service)
    if entry is None or entry[1].proc is not service.proc:
        collector = FloorCollector(service.proc, stats=provider)
        registry = FloorRegistry()
        registry.register(collector)
        entry = _SERVICE_REGISTRIES[service] = (registry, collector)
    entry[1].stats = provider  # the service may have swapped its stats object
    return entry[0].render()
