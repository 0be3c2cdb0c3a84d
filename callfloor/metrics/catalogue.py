"""Every Prometheus family callfloor exposes, as data: the one source of truth.

The collector builds its families from :data:`CATALOGUE`, ``docs/metrics.md`` is
generated from it (:mod:`callfloor.metrics.docs`), and a dashboard generator can read
it the same way. A family's name, type and labels are a public interface (alert rules
and dashboards query them): add families and labels, never rename one.

Conventions: names are ``callfloor_`` plus snake case, in base units (seconds,
ratios 0..1); counters and only counters end in ``_total``; a histogram's labels are
listed without ``le``. A sample whose value is undefined (a rate over nothing) is left
out, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class MetricType(StrEnum):
    """Prometheus family type, as written on the ``# TYPE`` line."""

    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


class Unit(StrEnum):
    """What a sample's value measures (for docs and dashboard axes)."""

    NONE = ""  # a count, a flag or an info series' constant 1
    SECONDS = "seconds"
    RATIO = "ratio"  # 0..1
    PER_SECOND = "per_second"
    UNIX_SECONDS = "unix_seconds"  # a point in time


class Group(StrEnum):
    """Which part of the floor a family describes; it decides when the family is exposed."""

    QUEUE = "queue"
    SITE = "site"
    PROCESSOR = "processor"
    AGENT = "agent"  # only with [metrics] per_agent_series = true
    SERVICE = "service"  # only when a service provides its ServiceStats


class Aggregation(StrEnum):
    """How a dashboard combines one family's series across callfloor processes.

    Several processes may expose the same family (one per partition with a shared
    store, or a second process kept for takeover): counts add up, while a ratio or a
    duration takes the worst series rather than a meaningless sum.
    """

    SUM = "sum"
    MAX = "max"
    MIN = "min"


class PanelKind(StrEnum):
    """The Grafana panel that shows a family."""

    STAT = "stat"  # one big number per series, coloured by the thresholds
    TIMESERIES = "timeseries"  # a line per series (counters as a per-second rate)
    BAR_GAUGE = "bargauge"  # one bar per series: agents by state, the top agents
    NONE = "none"  # not drawn (info series are joined into other queries)


class Board(StrEnum):
    """The generated Grafana board a family is drawn on (``callfloor dashboards``)."""

    FLOOR = "floor"  # "Call floor": queues and sites, for the supervisors' wall
    AGENTS = "agents"  # "Agents": by state, violations, per agent
    ALERTS = "alerts"  # "Alerts": written once a family asks for it
    OPERATIONS = "operations"  # "Operations": ingest, rejections, store, sinks
    NONE = "none"  # on no board


class Thresholds(StrEnum):
    """Where a panel's colour thresholds come from."""

    NONE = "none"
    SL_TARGET = "sl_target"  # the queue's configured target: red below, amber within 5 points
    SL_THRESHOLD = "sl_threshold"  # a wait: amber from half the queue's threshold T, red from T
    HEALTH = "health"  # a 1/0 flag: red at 0, green at 1
    ZERO = "zero"  # green at 0, red above: something that should not happen


@dataclass(frozen=True, slots=True)
class Hints:
    """What a dashboard generator needs to draw a family; every field is optional.

    ``None`` (or an empty ``section``) means the default that :class:`Family` derives
    from its type, unit and group, so a family added without hints is still drawn
    sensibly (service and processor families on the Operations board, in the
    "Other" row) and never breaks the generator.
    """

    board: Board | None = None
    section: str = ""  # the row of its board, e.g. "Ingest"
    panel: PanelKind | None = None
    aggregation: Aggregation | None = None
    thresholds: Thresholds = Thresholds.NONE
    title: str = ""  # the panel title (default: from the name)


NO_HINTS: Final = Hints()


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family.

    ``labels`` are the label names in the order the docs list them (the exposition
    sorts them). ``agent_labels``, when set, replaces ``labels`` while per-agent
    series are on.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    unit: Unit
    group: Group
    agent_labels: tuple[str, ...] | None = None
    hints: Hints = NO_HINTS

    def label_names(self, per_agent: bool) -> tuple[str, ...]:
        """The label names with per-agent series on or off."""
        if per_agent and self.agent_labels is not None:
            return self.agent_labels
        return self.labels

    @property
    def board(self) -> Board:
        """Its board: the hint, else Operations for service and processor families."""
        if self.hints.board is not None:
            return self.hints.board
        if self.group in (Group.SERVICE, Group.PROCESSOR):
            return Board.OPERATIONS
        return Board.NONE

    @property
    def section(self) -> str:
        """The row of its board ("Other" without a hint)."""
        return self.hints.section or "Other"

    @property
    def panel(self) -> PanelKind:
        """Its panel kind: the hint, else none for info series and a time series otherwise."""
        if self.hints.panel is not None:
            return self.hints.panel
        return PanelKind.NONE if self.name.endswith("_info") else PanelKind.TIMESERIES

    @property
    def aggregation(self) -> Aggregation:
        """How its series combine across processes: the hint, else counts add up, a
        point in time takes the oldest (the largest age), other durations and ratios
        the largest."""
        if self.hints.aggregation is not None:
            return self.hints.aggregation
        if self.type is not MetricType.GAUGE:
            return Aggregation.SUM
        if self.unit is Unit.UNIX_SECONDS:
            return Aggregation.MIN
        if self.unit in (Unit.SECONDS, Unit.RATIO):
            return Aggregation.MAX
        return Aggregation.SUM

    @property
    def title(self) -> str:
        """The panel title: the hint, else the name without prefix and unit suffix."""
        if self.hints.title:
            return self.hints.title
        words = self.name.removeprefix("callfloor_")
        for suffix in ("_total", "_seconds", "_ratio", "_per_second"):
            words = words.removesuffix(suffix)
        words = words.replace("_", " ")
        return words[:1].upper() + words[1:]


# What every label means (docs/metrics.md lists them; a test checks each is described).
LABELS: Final[Mapping[str, str]] = {
    "queue": "Queue name, as in the events and the configuration.",
    "site": "Site (call floor) name; `default` for queues and agents without one.",
    "channel": "The queue's channel: voice, chat, email, callback or other.",
    "window": "The configured rolling windows (`15m`, `60m` by default), then `interval` "
    "(the site's current interval) and `today` (since site-local midnight).",
    "state": "Agent state: available, ringing, on_call, wrap_up, not_ready "
    "(logged_out agents are not counted); for callfloor_alerts the alert's state: pending, "
    "firing or resolved (resolved: fired earlier that site-local day).",
    "rule": "Alert rule name: a default rule (sl_low, abandon_rate_high, ..., one per "
    "violation kind) or a [[alerts.rules]] name.",
    "outcome": "How a leg's wait ended: `answered` or `abandoned` (short abandons excluded); "
    "for alert re-derivations `done` or `skipped` (the late event was older than the oldest "
    "alert snapshot).",
    "le": "Histogram bucket upper bound in seconds; the queue's bounds include its SL and "
    "short-abandon thresholds; alert deliveries have fixed bounds from 5 ms to 300 s.",
    "kind": "Violation kind: not_ready_exceeded, wrap_up_exceeded, not_ready_daily_exceeded, "
    "missed_calls_exceeded, stale_agent, late_login, early_logout; for "
    "callfloor_state_expired_total what expired (open_legs, conversations, "
    "pending_handling, agents) or was forgotten (forgotten_queues, forgotten_sites, "
    "forgotten_agents).",
    "severity": "Violation or alert severity: info, warning, minor, major, critical (the "
    "daily not-ready limits are minor/major/critical in the order configured; roster "
    "violations: [roster] severity).",
    "type": "Canonical event type, e.g. call_queued or agent_state.",
    "reason": "Why an event was rejected: a decode reason (invalid_json, missing_field, "
    "wrong_type, invalid_value, invalid_ts, ...) or a limit (name_too_long, too_many_queues, "
    "too_many_sites, too_many_agents, ts_too_old, too_many_calls, too_many_future_events); "
    "for MQTT dead letters also why a whole "
    "message was not taken (message_too_large, too_many_events, empty_message); for alert "
    "notifications why one was dropped (queue_full: the oldest waiting, for a newer one; "
    "deadline; retries_exhausted; rejected: refused for good by the receiver; unknown_sink) "
    "or skipped (silenced: only the log records silenced alerts; duplicate: its "
    "idempotency key was already waiting for that sink); for checkpoint fallbacks what was "
    "wrong with the checkpoint (checksum, format, damaged).",
    "agent": "Agent id, as in the events.",
    "name": "The agent's display name from its latest agent_state (empty when none was sent).",
    "team": "The agent's team from its latest agent_state (empty when none was sent).",
    "handler": "HTTP route name, e.g. metrics, snapshot, events.",
    "code": "HTTP status code of an error answer, e.g. 400, 413, 503.",
    "problem": "What was wrong with a malformed HTTP request: bad_chunked, length_and_chunked, "
    "bad_length, line_too_long, bad_header, bad_target, bad_method, bad_request_line, "
    "unsupported_encoding or malformed.",
    "source": "Event source name, e.g. http or simulated.",
    "subscriber": "Kind of change-stream subscriber, e.g. sse.",
    "op": "Store operation, e.g. read (following the log), renew (leases), load, save.",
    "partition": "Partition of the floor (`[store] partitions`), named after its first "
    "site; `all` with one partition.",
    "sink": "Alert sink name, as configured in [alerts.sinks.NAME] (`alertmanager` for "
    "[alerts] alertmanager_url).",
}

# SPEC §3 counts: (window field, what it counts). The field names are those of the
# document's window objects, so the collector reads them by these names.
WINDOW_COUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("offered", "legs started (call_queued)"),
    ("answered", "legs answered"),
    ("abandoned", "legs abandoned after the short-abandon threshold"),
    ("short_abandoned", "legs abandoned within the short-abandon threshold"),
    ("dequeued", "legs ended by call_dequeued or a requeue"),
    ("sl_offered", "legs with a service-level event"),
    ("answered_in_sl", "legs answered within the SL threshold"),
    ("abandoned_in_sl", "legs abandoned within the SL threshold (not short)"),
    ("handled", "calls whose handling (talk and after-call work) completed"),
)

# Window rates: (window field, name suffix, unit, help with {scope}).
WINDOW_RATES: Final[tuple[tuple[str, str, Unit, str], ...]] = (
    (
        "service_level",
        "service_level_ratio",
        Unit.RATIO,
        "Service level over the window by the {scope}'s formula (0..1); "
        "absent when no leg had a service-level event.",
    ),
    (
        "abandon_rate",
        "abandon_ratio",
        Unit.RATIO,
        "abandoned / (answered + abandoned) over the window (0..1); absent with neither.",
    ),
    (
        "asa_s",
        "asa_seconds",
        Unit.SECONDS,
        "Average speed of answer: mean wait of the legs answered in the window, seconds.",
    ),
    (
        "aht_s",
        "aht_seconds",
        Unit.SECONDS,
        "Average handle time of the calls handled in the window (talk + after-call work), seconds.",
    ),
    (
        "max_wait_s",
        "max_wait_seconds",
        Unit.SECONDS,
        "Longest wait of the legs answered or abandoned in the window, seconds.",
    ),
)


def rate_family(scope: str, field: str) -> str:
    """The family name of a window rate (``scope`` is ``queue`` or ``site``)."""
    for key, suffix, _, _ in WINDOW_RATES:
        if key == field:
            return f"callfloor_{scope}_{suffix}"
    raise KeyError(field)


def window_count_family(scope: str, field: str) -> str:
    """The family name of a windowed count (``scope`` is ``queue`` or ``site``)."""
    return f"callfloor_{scope}_window_{field}_calls"


def total_family(field: str) -> str:
    """The family name of a queue's lifetime count."""
    return f"callfloor_queue_{field}_total"


_G = MetricType.GAUGE
_C = MetricType.COUNTER
_N = Unit.NONE
_S = Unit.SECONDS
_R = Unit.RATIO


def _on_floor(title: str, thresholds: Thresholds = Thresholds.NONE) -> Hints:
    """A stat on the "Call floor" board (per queue, or per site for site families)."""
    return Hints(Board.FLOOR, panel=PanelKind.STAT, thresholds=thresholds, title=title)


# Dashboard hints of the window families, by window field (families not named here are
# on no board: the floor shows what a supervisor reads at a glance).
_WINDOW_HINTS: Final[Mapping[str, Hints]] = {
    "service_level": _on_floor("Service level", Thresholds.SL_TARGET),
    "abandon_rate": _on_floor("Abandoned"),
    "asa_s": _on_floor("ASA", Thresholds.SL_THRESHOLD),
    "aht_s": _on_floor("AHT"),
    "offered": _on_floor("Offered"),
    "answered": _on_floor("Answered"),
}
_OFF_BOARD: Final = Hints(Board.NONE)


# Rows of the Operations board that several families share.
_REJECTED: Final = "Rejections and lateness"
_STORE: Final = "Store and checkpoints"
_PARTITIONS: Final = "Partitions"
_SINKS: Final = "Sources and sinks"


def _ops(
    title: str,
    *,
    section: str,
    board: Board = Board.OPERATIONS,
    thresholds: Thresholds = Thresholds.NONE,
) -> Hints:
    """A time series on the Operations board (or another board's row)."""
    return Hints(board, section, PanelKind.TIMESERIES, thresholds=thresholds, title=title)


def _health(title: str) -> Hints:
    """A 1/0 flag in the Operations board's "Health" row: down anywhere shows 0."""
    return Hints(
        Board.OPERATIONS, "Health", PanelKind.STAT, Aggregation.MIN, Thresholds.HEALTH, title
    )


def _window_families(scope: str, group: Group) -> list[Family]:
    labels = (scope, "window")
    out = [
        Family(
            f"callfloor_{scope}_{suffix}",
            _G,
            text.format(scope=scope),
            labels,
            unit,
            group,
            hints=_WINDOW_HINTS.get(key, _OFF_BOARD),
        )
        for key, suffix, unit, text in WINDOW_RATES
    ]
    out += [
        Family(
            window_count_family(scope, key),
            _G,
            f"Count in the window: {what}.",
            labels,
            _N,
            group,
            hints=_WINDOW_HINTS.get(key, _OFF_BOARD),
        )
        for key, what in WINDOW_COUNTS
    ]
    return out


def _queue(
    name: str,
    kind: MetricType,
    help_text: str,
    labels: tuple[str, ...],
    unit: Unit,
    hints: Hints = NO_HINTS,
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.QUEUE, hints=hints)


_Q = ("queue",)

QUEUE_FAMILIES: Final[tuple[Family, ...]] = (
    _queue(
        "callfloor_queue_info",
        _G,
        "Queue metadata (always 1): its site and channel.",
        ("queue", "site", "channel"),
        _N,
    ),
    _queue(
        "callfloor_queue_service_level_target_ratio",
        _G,
        "Service-level target of the queue.",
        _Q,
        _R,
    ),
    _queue(
        "callfloor_queue_service_level_threshold_seconds",
        _G,
        "Service-level threshold T of the queue, seconds.",
        _Q,
        _S,
    ),
    *_window_families("queue", Group.QUEUE),
    *(
        _queue(total_family(key), _C, f"Lifetime count since start-up: {what}.", _Q, _N)
        for key, what in WINDOW_COUNTS
    ),
    _queue(
        "callfloor_queue_handle_seconds_total",
        _C,
        "Lifetime sum of the handle times of handled calls, seconds.",
        _Q,
        _S,
    ),
    _queue(
        "callfloor_queue_answered_wait_seconds_total",
        _C,
        "Lifetime sum of the waits of answered legs, seconds.",
        _Q,
        _S,
    ),
    _queue(
        "callfloor_queue_wait_seconds",
        MetricType.HISTOGRAM,
        "Waits of legs since start-up by outcome (abandoned excludes short abandons).",
        ("queue", "outcome"),
        _S,
    ),
    _queue(
        "callfloor_queue_waiting_calls",
        _G,
        "Calls waiting in the queue now.",
        _Q,
        _N,
        hints=_on_floor("Waiting"),
    ),
    _queue(
        "callfloor_queue_longest_wait_seconds",
        _G,
        "Wait so far of the oldest waiting call, seconds (0 when none).",
        _Q,
        _S,
        hints=_on_floor("Longest wait", Thresholds.SL_THRESHOLD),
    ),
    _queue(
        "callfloor_queue_agents",
        _G,
        "Agents serving the queue by state (logged_out left out).",
        ("queue", "state"),
        _N,
        hints=Hints(
            Board.AGENTS, "By state", PanelKind.BAR_GAUGE, title="Agents by state, per queue"
        ),
    ),
    _queue(
        "callfloor_queue_occupancy_ratio",
        _G,
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
        _Q,
        _R,
        hints=_on_floor("Occupancy"),
    ),
    _queue(
        "callfloor_queue_arrival_rate_per_second",
        _G,
        "Legs offered in the rolling 15 minutes / 900.",
        _Q,
        Unit.PER_SECOND,
    ),
    _queue(
        "callfloor_queue_required_agents",
        _G,
        "Erlang C agents needed to reach the SL target; absent when nothing was offered "
        "in the rolling 15 minutes.",
        _Q,
        _N,
        hints=_on_floor("Required agents (Erlang C)"),
    ),
    _queue(
        "callfloor_queue_projected_service_level_ratio",
        _G,
        "Erlang C service level with the agents staffed now; absent when nothing was "
        "offered in the rolling 15 minutes.",
        _Q,
        _R,
        hints=_on_floor("Projected SL (Erlang C)", Thresholds.SL_TARGET),
    ),
)


def _site(
    name: str, help_text: str, labels: tuple[str, ...], unit: Unit, hints: Hints = NO_HINTS
) -> Family:
    return Family(name, _G, help_text, labels, unit, Group.SITE, hints=hints)


SITE_FAMILIES: Final[tuple[Family, ...]] = (
    *_window_families("site", Group.SITE),
    _site(
        "callfloor_site_waiting_calls",
        "Calls waiting in the site's queues now.",
        ("site",),
        _N,
        hints=_on_floor("Waiting"),
    ),
    _site(
        "callfloor_site_longest_wait_seconds",
        "Wait so far of the oldest call waiting in the site's queues, seconds (0 when none).",
        ("site",),
        _S,
        hints=_on_floor("Longest wait", Thresholds.SL_THRESHOLD),
    ),
    _site(
        "callfloor_site_agents",
        "Agents of the site by state, each once (logged_out left out).",
        ("site", "state"),
        _N,
        hints=Hints(
            Board.AGENTS, "By state", PanelKind.BAR_GAUGE, title="Agents by state, per site"
        ),
    ),
    _site(
        "callfloor_site_occupancy_ratio",
        "(ringing + on_call + wrap_up) / agents not in not_ready; absent when none.",
        ("site",),
        _R,
        hints=_on_floor("Occupancy"),
    ),
    _site(
        "callfloor_site_arrival_rate_per_second",
        "Legs offered to the site's queues in the rolling 15 minutes / 900.",
        ("site",),
        Unit.PER_SECOND,
    ),
)


def _proc(
    name: str,
    kind: MetricType,
    help_text: str,
    labels: tuple[str, ...] = (),
    unit: Unit = _N,
    agent_labels: tuple[str, ...] | None = None,
    hints: Hints = NO_HINTS,
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.PROCESSOR, agent_labels, hints)


_KS = ("kind", "severity")

PROCESSOR_FAMILIES: Final[tuple[Family, ...]] = (
    _proc(
        "callfloor_violations_active",
        _G,
        "Idle-time violations active now. Without per-agent series: by kind and severity, "
        "0 for each the configuration can raise; with them: one series per agent, kind and "
        "severity that has an active violation.",
        _KS,
        agent_labels=("agent", "kind", "severity"),
        hints=Hints(
            Board.AGENTS,
            "Violations",
            PanelKind.BAR_GAUGE,
            Aggregation.SUM,
            Thresholds.ZERO,
            "Violations active",
        ),
    ),
    _proc(
        "callfloor_violations_started_total",
        _C,
        "Idle-time violations started since start-up (including later retracted ones).",
        _KS,
        hints=_ops("Violations started", board=Board.AGENTS, section="Violations"),
    ),
    _proc(
        "callfloor_state_expired_total",
        _C,
        "Calls forgotten in live operation after the retention: conversations that never "
        "ended, handling never decided by a next agent_state; and queues, sites and agents "
        "events created, forgotten once quiet for [limits] forget_after.",
        ("kind",),
        hints=_ops("Calls expired unfinished", section="Processing"),
    ),
    _proc(
        "callfloor_violations_retracted_total",
        _C,
        "Violations taken back because a late event showed they never happened.",
        _KS,
        hints=_ops("Violations retracted", board=Board.AGENTS, section="Violations"),
    ),
    _proc(
        "callfloor_events_total",
        _C,
        "Valid events applied, by type (not duplicates).",
        ("type",),
        hints=_ops("Events applied by type", section="Ingest"),
    ),
    _proc(
        "callfloor_events_rejected_total",
        _C,
        "Invalid or refused events, by reason.",
        ("reason",),
        hints=_ops("Events rejected by reason", section=_REJECTED),
    ),
    _proc(
        "callfloor_events_duplicate_total",
        _C,
        "Duplicate events dropped.",
        hints=_ops("Duplicate events", section=_REJECTED),
    ),
    _proc(
        "callfloor_events_orphaned_total",
        _C,
        "Events for a call with no open leg or conversation (they change nothing else).",
        hints=_ops("Orphaned events", section=_REJECTED),
    ),
    _proc(
        "callfloor_events_late_total",
        _C,
        "Events older than the clock, applied at their own time.",
        hints=_ops("Late events (applied at their time)", section=_REJECTED),
    ),
    _proc(
        "callfloor_clock_seconds",
        _G,
        "The processor clock (event time), Unix seconds; absent before the first event.",
        unit=Unit.UNIX_SECONDS,
        hints=_ops("Processor clock behind the wall clock", section=_REJECTED),
    ),
    _proc(
        "callfloor_open_legs",
        _G,
        "Calls waiting in any queue.",
        hints=_ops("Calls waiting, all queues", section="Processing"),
    ),
    _proc(
        "callfloor_metrics_queues_omitted",
        _G,
        "Queues created by events alone that have no per-queue series here, beyond "
        "[metrics] max_unconfigured_queues (they still count in their site's series).",
        hints=_ops("Queues without series", section="Processing", thresholds=Thresholds.ZERO),
    ),
    _proc(
        "callfloor_timers_pending",
        _G,
        "Deadlines in the timer heap (some may be stale).",
        hints=_ops("Timers pending", section="Processing"),
    ),
)

_AT = ("agent", "team")


def _per_agent(title: str) -> Hints:
    """A bar per agent (the top 20) in the Agents board's "Per agent" row."""
    return Hints(Board.AGENTS, "Per agent", PanelKind.BAR_GAUGE, title=title)


_PER_AGENT: Final = _per_agent("")


def _agent(
    name: str,
    help_text: str,
    labels: tuple[str, ...] = _AT,
    unit: Unit = _N,
    hints: Hints = _PER_AGENT,
) -> Family:
    return Family(name, _G, help_text, labels, unit, Group.AGENT, hints=hints)


AGENT_FAMILIES: Final[tuple[Family, ...]] = (
    _agent(
        "callfloor_agent_info",
        "Agent metadata (always 1): display name, team and site from its latest agent_state.",
        ("agent", "name", "team", "site"),
        hints=_OFF_BOARD,
    ),
    _agent(
        "callfloor_agent_state",
        "1 for the agent's current state.",
        ("agent", "team", "state"),
        hints=_OFF_BOARD,
    ),
    _agent(
        "callfloor_agent_state_seconds",
        "Time in the agent's current spell, seconds.",
        unit=_S,
        hints=_per_agent("Time in current state (top 20)"),
    ),
    _agent(
        "callfloor_agent_not_ready_today_seconds",
        "Non-exempt not-ready time since site-local midnight, seconds.",
        unit=_S,
        hints=_per_agent("Not ready today (top 20)"),
    ),
    _agent(
        "callfloor_agent_answered_today",
        "Calls the agent answered since site-local midnight.",
        hints=_per_agent("Answered today (top 20)"),
    ),
    _agent(
        "callfloor_agent_missed_today",
        "Calls the agent missed (call_missed) since site-local midnight.",
        hints=_per_agent("Missed today (top 20)"),
    ),
    _agent(
        "callfloor_agent_handled_today",
        "Calls whose handling the agent completed, ended since site-local midnight.",
        hints=_per_agent("Handled today (top 20)"),
    ),
    _agent(
        "callfloor_agent_aht_today_seconds",
        "Mean handle time (talk plus after-call work) of the agent's calls handled "
        "today, seconds; absent while none was handled.",
        unit=_S,
        hints=_per_agent("AHT today (top 20)"),
    ),
    _agent(
        "callfloor_agent_offered_today",
        "Calls routed to or answered by the agent since site-local midnight.",
        hints=_per_agent("Offered today (top 20)"),
    ),
    _agent(
        "callfloor_agent_answer_today_ratio",
        "Answered today / offered today (0 to 1); absent while nothing was offered.",
        unit=_R,
        hints=_OFF_BOARD,
    ),
)


_SK: Final = ("source", "kind")


def _svc(
    name: str,
    kind: MetricType,
    help_text: str,
    labels: tuple[str, ...] = (),
    unit: Unit = _N,
    hints: Hints = NO_HINTS,
) -> Family:
    return Family(name, kind, help_text, labels, unit, Group.SERVICE, hints=hints)


SERVICE_FAMILIES: Final[tuple[Family, ...]] = (
    _svc(
        "callfloor_http_requests_total",
        _C,
        "HTTP requests by handler.",
        ("handler",),
        hints=_ops("HTTP requests by handler", section="Ingest"),
    ),
    _svc(
        "callfloor_http_errors_total",
        _C,
        "HTTP answers with an error status (4xx, 5xx), by status code.",
        ("code",),
        hints=_ops("HTTP errors by status", section=_REJECTED),
    ),
    _svc(
        "callfloor_http_malformed_total",
        _C,
        "Requests that were not well-formed HTTP (answered 400 or 415 by the server before "
        "any route, and counted in callfloor_http_errors_total too), by problem.",
        ("problem",),
    ),
    _svc(
        "callfloor_http_body_bytes_in_flight",
        _G,
        "Bytes of request bodies being read or decoded now (bounded by [limits] "
        "max_inflight_body).",
    ),
    _svc(
        "callfloor_http_bodies_refused_total",
        _C,
        "Request bodies refused with 503 before they were read, because [limits] "
        "max_inflight_body was reached.",
    ),
    _svc(
        "callfloor_ingest_batch_seconds",
        MetricType.SUMMARY,
        "Time spent applying ingest batches.",
        unit=_S,
        hints=_ops("Mean ingest batch time", section="Processing"),
    ),
    _svc(
        "callfloor_ingest_batch_seconds_max",
        _G,
        "Longest time spent applying one ingest batch since start-up, seconds.",
        unit=_S,
        hints=_ops("Longest ingest batch", section="Processing"),
    ),
    _svc(
        "callfloor_ingest_events_total",
        _C,
        "Events received, by source.",
        ("source",),
        hints=_ops("Events received by source", section="Ingest"),
    ),
    _svc(
        "callfloor_ingest_resent_events_total",
        _C,
        "Events recognised as resends of what the service already had (a client's retry of "
        "a whole body, a broker's redelivery): acknowledged, not applied, not counted as "
        "duplicates in the document. By source.",
        ("source",),
        hints=_ops("Resent events recognised, by source", section="Ingest"),
    ),
    _svc(
        "callfloor_ingest_dropped_batches_total",
        _C,
        "Ingest batches refused by back-pressure (too many events pending).",
        hints=_ops("Batches refused (back-pressure)", section="Ingest", thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_ingest_dropped_events_total",
        _C,
        "Events in the ingest batches refused by back-pressure.",
        hints=_ops("Events refused (back-pressure)", section="Ingest", thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_ingest_held_events",
        _G,
        "Events received ahead of the watermark (wall clock minus the delay), not applied yet.",
        hints=_ops("Events held for the watermark", section="Ingest"),
    ),
    _svc(
        "callfloor_ingest_pending_events",
        _G,
        "Events accepted but not applied yet: queued for the next ingest round plus held "
        "ahead of the watermark (back-pressure starts at [limits] max_pending_events).",
        hints=_ops("Events pending", section="Ingest"),
    ),
    _svc(
        "callfloor_ingest_errors_total",
        _C,
        "Unexpected errors caught in ingest rounds (the event that caused one is rejected; "
        "the service goes on).",
        hints=_ops("Ingest errors", section="Processing", thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_changes_dropped_total",
        _C,
        "Change sets a slow change-stream subscriber lost (oldest dropped first), by "
        "subscriber kind.",
        ("subscriber",),
        hints=_ops("Change subscribers dropped", section=_SINKS),
    ),
    _svc(
        "callfloor_source_up",
        _G,
        "1 while the event source is running, 0 while it is down (restarting with backoff).",
        ("source",),
        hints=_health("Sources up"),
    ),
    _svc(
        "callfloor_source_restarts_total",
        _C,
        "Restarts of the event source after it failed or ended.",
        ("source",),
        hints=_ops("Source restarts", section=_SINKS),
    ),
    _svc(
        "callfloor_source_received_total",
        _C,
        "Records a feed source read (queue_log lines, AMI messages, Connect records).",
        _SK,
        hints=_ops("Feed records read", section="Ingest"),
    ),
    _svc(
        "callfloor_source_events_total",
        _C,
        "Canonical events a feed source's records mapped to.",
        _SK,
        hints=_ops("Feed events mapped", section="Ingest"),
    ),
    _svc(
        "callfloor_source_rejected_total",
        _C,
        "Feed records that could not be mapped (dead-lettered), by reason.",
        (*_SK, "reason"),
        hints=_ops("Feed records rejected", section=_REJECTED, thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_source_skipped_total",
        _C,
        "Feed records that carry nothing for callfloor (verbs such as DID, CONFIGRELOAD).",
        _SK,
    ),
    _svc(
        "callfloor_source_deadletters_total",
        _C,
        "Dead letters a feed source wrote (the record, its reason), by reason.",
        (*_SK, "reason"),
        hints=_ops("Feed dead letters", section=_REJECTED),
    ),
    _svc(
        "callfloor_source_reconnects_total",
        _C,
        "Times a feed source connected again (AMI) or opened its file again (rotation, "
        "a file that went missing).",
        _SK,
        hints=_ops("Feed reconnects", section=_SINKS),
    ),
    _svc(
        "callfloor_source_deadletters_suppressed_total",
        _C,
        "Dead letters of a feed source left unwritten because it had more than 100 a "
        "second to write (bursts of 1,000 are written whole), by reason; each record is "
        "still counted as a rejection (callfloor_source_rejected_total) or a refusal.",
        (*_SK, "reason"),
        hints=_ops("Feed dead letters suppressed", section=_SINKS),
    ),
    _svc(
        "callfloor_source_rotations_total",
        _C,
        "Rotations of a file source's file, by how they were found: renamed (another "
        "file at the path, or the file read before found under another name after a "
        "restart), truncated (shorter than what was read) or rewritten (its first bytes "
        "differ from those read: a copy-truncate that grew back past the position).",
        (*_SK, "reason"),
        hints=_ops("Feed file rotations", section=_SINKS),
    ),
    _svc(
        "callfloor_source_gap_seconds_total",
        _C,
        "Seconds a feed source was disconnected after it had been connected (AMI: the "
        "events of the gap are lost; queue state is re-synced on reconnect).",
        _SK,
        _S,
        hints=_ops("Feed gaps", section=_SINKS),
    ),
    _svc(
        "callfloor_source_position",
        _G,
        "Where a feed source reads: the byte offset in its file (0 for AMI).",
        _SK,
    ),
    _svc(
        "callfloor_source_lag_seconds",
        _G,
        "Receipt time less the newest event time of the last batch a feed source read.",
        _SK,
        _S,
        hints=_ops("Feed lag", section=_SINKS),
    ),
    _svc(
        "callfloor_mqtt_messages_total",
        _C,
        "MQTT messages received, by source.",
        ("source",),
        hints=_ops("MQTT messages by source", section="Ingest"),
    ),
    _svc(
        "callfloor_mqtt_redelivered_total",
        _C,
        "MQTT messages the broker sent again (DUP flag: not acknowledged before a reconnect).",
        ("source",),
        hints=_ops("MQTT messages redelivered", section=_SINKS),
    ),
    _svc(
        "callfloor_mqtt_acks_lost_total",
        _C,
        "MQTT messages whose PUBACK was not sent because the connection closed first (the "
        "broker delivers them again; the floor drops them as duplicates).",
        ("source",),
        hints=_ops("MQTT acknowledgements lost", section=_SINKS),
    ),
    _svc(
        "callfloor_mqtt_deadletters_total",
        _C,
        "MQTT dead letters published on callfloor/<site>/deadletter: malformed messages, "
        "invalid items, events refused by a limit, by reason.",
        ("source", "reason"),
        hints=_ops("MQTT dead letters by reason", section=_REJECTED),
    ),
    _svc(
        "callfloor_store_up",
        _G,
        "1 while the store makes events durable, 0 while appends fail (nothing is "
        "acknowledged then: HTTP answers 503, MQTT messages wait at the broker).",
        hints=_health("Store up"),
    ),
    _svc(
        "callfloor_store_append_errors_total",
        _C,
        "Appends to the store that failed (each is retried until it succeeds).",
        hints=_ops("Store append errors", section=_STORE, thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_store_errors_total",
        _C,
        "Other store operations that failed and were retried, by operation.",
        ("op",),
        hints=_ops("Store errors by operation", section=_STORE),
    ),
    _svc(
        "callfloor_store_reconnects_total",
        _C,
        "Connections to the store made again.",
        hints=_ops("Store reconnects", section=_STORE),
    ),
    _svc(
        "callfloor_checkpoints_total",
        _C,
        "Checkpoints written (one per partition each time).",
        hints=_ops("Checkpoints written", section=_STORE),
    ),
    _svc(
        "callfloor_checkpoint_errors_total",
        _C,
        "Checkpoints that could not be written.",
        hints=_ops("Checkpoint errors", section=_STORE, thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_checkpoint_seconds",
        _G,
        "Time the last checkpoint took (encode and save), seconds.",
        unit=_S,
        hints=_ops("Checkpoint time", section=_STORE),
    ),
    _svc(
        "callfloor_checkpoint_last_success_timestamp_seconds",
        _G,
        "When the last checkpoint was written, Unix seconds; absent before the first. "
        "time() minus it is the checkpoint's age: what a restart would replay.",
        unit=Unit.UNIX_SECONDS,
        hints=_ops("Checkpoint age", section=_STORE),
    ),
    _svc(
        "callfloor_checkpoint_fallbacks_total",
        _C,
        "Kept checkpoints recovery could not restore, by reason (checksum: changed after "
        "it was written; format: unreadable by this version; damaged: anything else): it "
        "used the one before and the longer log instead (logged at ERROR, set aside).",
        ("reason",),
    ),
    _svc(
        "callfloor_recovered_events_total",
        _C,
        "Events replayed from the store's log at start or when a partition was adopted.",
        hints=_ops("Events recovered from the log", section=_STORE),
    ),
    _svc(
        "callfloor_partitions_owned",
        _G,
        "Partitions of the floor this process applies (with a shared store, those whose "
        "lease it holds).",
        hints=_ops("Partitions owned", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_partition_stale_since_seconds",
        _G,
        "When this process stopped applying the partition because its lease could not be "
        "renewed (Redis unreachable), epoch seconds: its API reads are served as they last "
        "stood, marked stale, and its queue and site series are not exported here. One "
        "series per partition while it is stale.",
        ("partition",),
        unit=Unit.UNIX_SECONDS,
    ),
    _svc(
        "callfloor_partition_adoptions_total",
        _C,
        "Partitions taken on (restored from their checkpoint and log).",
        hints=_ops("Partitions adopted", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_partition_drops_total",
        _C,
        "Partitions given up (handed over, or their lease lost).",
        hints=_ops("Partitions dropped", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_leases_lost_total",
        _C,
        "Partitions whose lease was lost: found held by another process, or not renewed "
        "within 0.4 x lease_ttl (Redis unreachable); each is stopped at once.",
        hints=_ops("Leases lost", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_store_stale_entries_total",
        _C,
        "Followed log entries not applied because they were not contiguous with the "
        "partition (read before a hand-over or while it was adopted, or read twice; their "
        "events come from the replay instead).",
        hints=_ops("Stale log entries skipped", section=_STORE),
    ),
    _svc(
        "callfloor_store_bad_entries_total",
        _C,
        "Log entries that could not be decoded (not written by callfloor): skipped, "
        "logged with their stream and id.",
        hints=_ops("Undecodable log entries", section=_STORE, thresholds=Thresholds.ZERO),
    ),
    _svc(
        "callfloor_store_torn_records_total",
        _C,
        "Partial last records cut off the file log at start (a crash mid-append: never "
        "acknowledged); logged at ERROR with their size.",
    ),
    _svc(
        "callfloor_store_append_retries_found_total",
        _C,
        "Appends retried after the store's answer was lost that the store turned out to "
        "have done (not logged twice).",
        hints=_ops("Retried appends found done", section=_STORE),
    ),
    _svc(
        "callfloor_partition_adoption_errors_total",
        _C,
        "Partitions whose adoption failed (lease released, tried again later).",
        hints=_ops("Partition adoption errors", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_partition_handovers_total",
        _C,
        "Partitions handed over to the process wanted for them (last checkpoint, lease released).",
        hints=_ops("Partitions handed over", section=_PARTITIONS),
    ),
    _svc(
        "callfloor_follow_rewinds_total",
        _C,
        "Times the follower read a stream again from where the partition stands (after "
        "an adoption, or entries it delivered were not taken).",
        hints=_ops("Log follower rewinds", section=_STORE),
    ),
    _svc(
        "callfloor_redis_floor_up",
        _G,
        "1 while the live floor in Redis is written, 0 while its writes fail (only with "
        "a redis:// store).",
        hints=_health("Live floor in Redis up"),
    ),
    _svc(
        "callfloor_redis_floor_errors_total",
        _C,
        "Failed Redis calls of the live floor (each retried with back-off).",
        hints=_ops("Live floor write errors", section=_SINKS),
    ),
    _svc(
        "callfloor_redis_floor_resyncs_total",
        _C,
        "Whole rewrites of the live floor in Redis (after a failure, a drop or a change "
        "of partitions).",
        hints=_ops("Live floor rewrites", section=_SINKS),
    ),
    _svc(
        "callfloor_alerts",
        _G,
        "Alerts by rule, severity and state (pending, firing; resolved today): the live "
        "equivalent of Prometheus' ALERTS.",
        ("rule", "severity", "state"),
        hints=_ops("Alerts by rule and state", section="Alerts", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_evaluations_total",
        _C,
        "Rule evaluations of a scope at an instant its inputs changed (events, windows, timers).",
        hints=_ops("Rule evaluations", section="Evaluation", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_evaluation_seconds_total",
        _C,
        "Time spent evaluating alert rules (the writer's, in seconds): its rate is the "
        "share of a core the rules take.",
        (),
        _S,
        hints=_ops("Rule evaluation time", section="Evaluation", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_rederivations_total",
        _C,
        "Alert timelines derived again after late events, by outcome (done; skipped: "
        "the event was older than the oldest snapshot, its instants are the clock's; "
        "failed: an error, logged as alerts_rederive_error).",
        ("outcome",),
        hints=_ops("Timelines derived again", section="Evaluation", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_notifications_withheld_total",
        _C,
        "Notifications of a backfill's old history (resolved before notify_backfill) "
        "not sent to anyone: they are in the alert list.",
        hints=_ops("Backfill history withheld", section="Evaluation", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_notifications_sent_total",
        _C,
        "Alert notifications delivered, by sink.",
        ("sink",),
        hints=_ops("Notifications sent", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_notifications_retried_total",
        _C,
        "Delivery attempts of alert notifications that failed and were tried again "
        "(capped exponential backoff with full jitter), by sink.",
        ("sink",),
        hints=_ops("Notifications retried", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_notifications_dropped_total",
        _C,
        "Alert notifications a sink will never deliver, by sink and reason.",
        ("sink", "reason"),
        hints=_ops("Notifications dropped", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_notifications_skipped_total",
        _C,
        "Alert notifications a sink did not take (not failures), by sink and reason.",
        ("sink", "reason"),
        hints=_ops("Notifications skipped", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_sink_queue_depth",
        _G,
        "Alert notifications waiting for a sink, the one in flight included (its queue "
        "holds max_queue at most).",
        ("sink",),
        hints=_ops("Sink queue depth", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_delivery_seconds",
        MetricType.HISTOGRAM,
        "Time from a notification's queueing to its delivery (retries included), by sink.",
        ("sink",),
        _S,
        hints=_ops("Delivery time", section="Delivery", board=Board.ALERTS),
    ),
    _svc(
        "callfloor_alert_sink_refresh_errors_total",
        _C,
        "Failed re-posts of firing alerts that keep them alive in Alertmanager (tried "
        "again the next period), by sink.",
        ("sink",),
        hints=_ops("Alertmanager refresh errors", section="Delivery", board=Board.ALERTS),
    ),
)

CATALOGUE: Final[tuple[Family, ...]] = (
    *QUEUE_FAMILIES,
    *SITE_FAMILIES,
    *PROCESSOR_FAMILIES,
    *AGENT_FAMILIES,
    *SERVICE_FAMILIES,
)
"""Every family, in exposition order."""

BY_NAME: Final[Mapping[str, Family]] = {f.name: f for f in CATALOGUE}
"""Families by name."""


def families(groups: tuple[Group, ...]) -> list[Family]:
    """The families of these groups, in exposition order."""
    return [f for f in CATALOGUE if f.group in groups]
