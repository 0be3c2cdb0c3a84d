"""The typed read model: what the processor shows the world, as msgspec Structs.

Every reader (the SPEC §7 document, the Prometheus collector, the HTTP API, the
change bus, later the wallboard and alert rules) reads these types and nothing
else of the processor. Field order is the order of the document's keys, so
``msgspec.json.encode`` of a :class:`Document` is the replay output as it stands.

States, violation kinds and severities are enums (``StrEnum``: they encode as
their values), so a typo is an ``AttributeError``, not a silently wrong string.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class AgentStateName(StrEnum):
    """An agent's state (SPEC §1)."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"


class ViolationKind(StrEnum):
    """Kinds of idle-time violation (SPEC §4)."""

    NOT_READY_EXCEEDED = "not_ready_exceeded"
    WRAP_UP_EXCEEDED = "wrap_up_exceeded"
    NOT_READY_DAILY_EXCEEDED = "not_ready_daily_exceeded"
    MISSED_CALLS_EXCEEDED = "missed_calls_exceeded"
    STALE_AGENT = "stale_agent"
    LATE_LOGIN = "late_login"
    EARLY_LOGOUT = "early_logout"


class Severity(StrEnum):
    """How urgent a violation or an alert is, least first."""

    INFO = "info"
    WARNING = "warning"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """Lifecycle of an alert (SPEC §5)."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class NamePolicy(StrEnum):
    """Whether a read shows agents' display names (the person's name an ``agent_state``
    carried) or withholds them (``None``).

    A parameter of every read that could carry one, without a default: whoever adds a
    route, a stream or a sink decides, and cannot leak names by forgetting to.
    """

    SHOW = "show"
    HIDE = "hide"


# ----------------------------------------------------------------------------- document parts


class WindowStats(msgspec.Struct, kw_only=True):
    """Counts and rates of one queue or site over one window (SPEC §3)."""

    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    dequeued: int
    sl_offered: int
    answered_in_sl: int
    abandoned_in_sl: int
    handled: int
    service_level: float | None
    abandon_rate: float | None
    asa_s: float | None
    max_wait_s: float | None
    aht_s: float | None


class QueueLive(msgspec.Struct, kw_only=True):
    """Live values of one queue at ``as_of`` (SPEC §3)."""

    waiting: int
    longest_wait_s: float
    agents: dict[str, int]
    occupancy: float | None
    arrival_rate_per_s: float
    required_agents: int | None
    projected_service_level: float | None


class QueueView(msgspec.Struct, kw_only=True):
    """One queue as in the document: its site, windows by label, live values."""

    site: str
    windows: dict[str, WindowStats]
    live: QueueLive


class SiteLive(msgspec.Struct, kw_only=True):
    """Live values of one site at ``as_of``: each agent counted once."""

    waiting: int
    longest_wait_s: float
    agents: dict[str, int]
    occupancy: float | None
    arrival_rate_per_s: float


class SiteView(msgspec.Struct, kw_only=True):
    """One site as in the document: roll-up windows and live values, then (additions to
    SPEC §7, so a board can say which day "today" is) the site's calendar at ``as_of``:
    its IANA time zone, the site-local date, the first instant of that day and of the
    current interval (epoch seconds), and the interval's length."""

    windows: dict[str, WindowStats]
    live: SiteLive
    timezone: str
    local_date: str  # ISO 8601, e.g. "2026-11-30": the site-local day at as_of
    day_start: float
    interval_start: float
    interval_minutes: int


class AgentView(msgspec.Struct, kw_only=True):
    """One agent as in the document (SPEC §4)."""

    state: AgentStateName
    reason: str | None
    state_since: float
    not_ready_today_s: float
    answered_today: int
    missed_today: int
    # After SPEC §7's six: handling and offers since the site-local midnight.
    handled_today: int
    aht_today_s: float | None  # mean handle time of handled_today; None when 0
    offered_today: int  # calls routed to or answered by the agent
    answer_rate_today: float | None  # answered_today / offered_today; None when 0


class ViolationView(msgspec.Struct, kw_only=True):
    """One idle-time violation; ``value`` is as of the read while it is active."""

    kind: ViolationKind
    agent: str
    severity: Severity
    started_at: float
    ended_at: float | None
    value: float


class AlertView(msgspec.Struct, kw_only=True):
    """One alert as in the document (SPEC §10)."""

    rule: str
    scope: str
    severity: Severity
    state: AlertState
    since: float
    fired_at: float | None
    ended_at: float | None
    value: float | None
    fingerprint: str


class Counters(msgspec.Struct, kw_only=True):
    """Event counters of the document (SPEC §7)."""

    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    orphaned: int = 0
    late: int = 0


class Document(msgspec.Struct, kw_only=True):
    """The SPEC §7 document."""

    as_of: float
    queues: dict[str, QueueView]
    sites: dict[str, SiteView]
    agents: dict[str, AgentView]
    violations: list[ViolationView]
    alerts: list[AlertView]
    counters: Counters


# ----------------------------------------------------------------------------- API-only reads


class QueueInfo(msgspec.Struct, kw_only=True):
    """A queue's identity and policy (for the API, metrics labels and dashboards)."""

    name: str
    site: str
    channel: str
    sl_threshold_s: float
    sl_target: float
    short_abandon_s: float
    sl_formula: str
    default_aht_s: float
    configured: bool


class AgentInfo(msgspec.Struct, kw_only=True):
    """What an agent's ``agent_state`` events said about it beyond its state."""

    name: str
    display_name: str | None
    team: str | None
    site: str
    queues: list[str]


class AgentDetail(msgspec.Struct, kw_only=True):
    """One agent for ``/api/v1/agents/{name}``: the document entry, identity, violations."""

    name: str
    display_name: str | None
    team: str | None
    site: str
    queues: list[str]
    state: AgentStateName
    reason: str | None
    state_since: float
    not_ready_today_s: float
    answered_today: int
    missed_today: int
    # After SPEC §7's six: handling and offers since the site-local midnight.
    handled_today: int
    aht_today_s: float | None  # mean handle time of handled_today; None when 0
    offered_today: int  # calls routed to or answered by the agent
    answer_rate_today: float | None  # answered_today / offered_today; None when 0
    violations: list[ViolationView]


class Staleness(msgspec.Struct, kw_only=True):
    """A site whose values are served as they last stood: its partition is not applied
    by this process any more (its lease could not be renewed, e.g. Redis unreachable).

    Not part of the SPEC §7 document: the service reports it beside it.
    """

    partition: str  # the partition the site belongs to
    since: float  # when this process stopped applying it (epoch seconds, wall clock)
    as_of: float  # the instant its values describe (its last processor clock)


class WaitHistogram(msgspec.Struct, kw_only=True):
    """Lifetime waits of one queue by outcome: cumulative-free bucket counts.

    ``counts[i]`` counts waits in ``(bounds[i-1], bounds[i]]``; the last entry is the
    ``+Inf`` bucket. ``sum_s`` is the sum of the counted waits.
    """

    bounds: list[float]
    counts: list[int]
    sum_s: float


class QueueTotals(msgspec.Struct, kw_only=True):
    """Lifetime totals of one queue since start-up (Prometheus counters: never decrease)."""

    counts: dict[str, int]  # the nine SPEC §3 counts by name
    handle_s: float
    answered_wait_s: float
    answered: WaitHistogram
    abandoned: WaitHistogram


class ViolationCount(msgspec.Struct, frozen=True):
    """How many violations of one kind and severity."""

    kind: ViolationKind
    severity: Severity
    count: int


class ProcessorStats(msgspec.Struct, kw_only=True):
    """The processor's own numbers for self-metrics."""

    clock: float | None
    events_by_type: dict[str, int]
    rejected_by_reason: dict[str, int]
    violations_active: list[ViolationCount]
    violations_started: list[ViolationCount]
    violations_retracted: list[ViolationCount]
    expired: dict[str, int]
    open_legs: int
    timers_pending: int
    history_events: int


class ViolationChange(msgspec.Struct, kw_only=True):
    """A violation that started, changed, ended or was taken back since the last change set."""

    kind: ViolationKind
    agent: str
    severity: Severity
    started_at: float
    ended_at: float | None
    value: float
    retracted: bool


class ChangeSet(msgspec.Struct, kw_only=True):
    """What changed since the previous drain: names to re-read, and violations."""

    as_of: float
    queues: list[str]
    sites: list[str]
    agents: list[str]
    violations: list[ViolationChange]

    def __bool__(self) -> bool:
        return bool(self.queues or self.sites or self.agents or self.violations)


# ----------------------------------------------------------------------------- boards


class SiteClock(msgspec.Struct, kw_only=True):
    """A site's calendar at ``as_of``: what a board labels "today" and "this interval" by."""

    timezone: str
    local_date: str  # ISO 8601 site-local date
    day_start: float  # epoch seconds of the site-local midnight that began it
    interval_start: float
    interval_minutes: int
    utc_offset_s: float  # the zone's offset from UTC at as_of (DST included)


class Band(msgspec.Struct, kw_only=True):
    """One colour band of a tile: the number is in it when ``value op threshold`` holds.

    ``source`` says where the threshold comes from (the queue's ``sl_target``, an alert
    rule by name), so a supervisor can find why a tile turned amber or red.
    """

    op: str  # "<", "<=", ">", ">="
    value: float
    source: str


class MetricBands(msgspec.Struct, kw_only=True):
    """The colour bands of one number of a tile: the metric, its window, the target it
    is measured against (if any), and the amber (``warn``) and red bands."""

    metric: str  # service_level, abandon_rate, longest_wait_s, waiting
    window: str | None  # the window label, None for live values
    target: float | None
    warn: Band | None
    red: Band | None


class TileThresholds(msgspec.Struct, kw_only=True):
    """Every colour band of one queue's tile (one source for tiles and alert rules)."""

    queue: str
    bands: list[MetricBands]


class QueueTile(msgspec.Struct, kw_only=True):
    """One queue on a wallboard: the numbers of its tile and the rules behind their colours.

    ``waiting_since`` is when the longest-waiting caller started waiting (epoch seconds,
    None with nobody waiting): a browser counts the longest wait up from it every second
    between pushes. ``window`` is the window of the rates (service level, abandon rate,
    ASA); ``sl_formula`` and ``sl_threshold_s`` say how the service level is computed.
    """

    name: str
    channel: str
    window: str
    service_level: float | None
    sl_target: float
    sl_threshold_s: float
    sl_formula: str
    sl_offered: int
    answered_in_sl: int
    abandoned_in_sl: int
    offered: int
    answered: int
    abandoned: int
    abandon_rate: float | None
    asa_s: float | None
    waiting: int
    longest_wait_s: float
    waiting_since: float | None
    agents: dict[str, int]
    thresholds: list[MetricBands]


class SiteTotals(msgspec.Struct, kw_only=True):
    """A site's roll-up on a wallboard (each agent counted once)."""

    window: str
    service_level: float | None
    sl_formula: str
    offered: int
    answered: int
    abandoned: int
    abandon_rate: float | None
    asa_s: float | None
    waiting: int
    longest_wait_s: float
    waiting_since: float | None
    agents: dict[str, int]


class WallboardView(msgspec.Struct, kw_only=True):
    """One site's wallboard at ``as_of``: a tile per queue, the site's totals, agents by
    state, its active violations and its alerts; ``stale`` while the site is served as it
    last stood (its partition not applied here)."""

    site: str
    as_of: float
    clock: SiteClock
    tiles: list[QueueTile]
    totals: SiteTotals
    violations: list[ViolationView]
    alerts: list[AlertView]
    stale: Staleness | None = None


class AgentLimits(msgspec.Struct, kw_only=True):
    """The idle-time limits (``[agents]``) a supervisor reads an agent's numbers against."""

    not_ready_max_s: float
    not_ready_reason_max_s: dict[str, float]
    exempt_reasons: list[str]
    daily_not_ready_s: list[float]
    wrap_up_max_s: float
    missed_calls_max: int


class AgentRow(msgspec.Struct, kw_only=True):
    """One agent in the supervisor's table.

    ``not_ready_today_s`` is as of ``as_of``; while ``not_ready_counting`` it grows with
    the clock (a browser adds the time since). ``handled_today`` and ``aht_today_s`` are
    the agent's calls whose handling (talk plus after-call work) completed today.
    ``violations`` are the kinds of its active violations.
    """

    agent: str
    display_name: str | None
    team: str | None
    queues: list[str]
    state: AgentStateName
    reason: str | None
    state_since: float
    not_ready_today_s: float
    not_ready_counting: bool
    answered_today: int
    missed_today: int
    handled_today: int
    aht_today_s: float | None
    violations: list[ViolationKind]


class SupervisorView(msgspec.Struct, kw_only=True):
    """One site's agents for a supervisor at ``as_of``, with the limits, the active
    violations and the alerts; ``stale`` as for :class:`WallboardView`."""

    site: str
    as_of: float
    clock: SiteClock
    limits: AgentLimits
    agents: list[AgentRow]
    violations: list[ViolationView]
    alerts: list[AlertView]
    stale: Staleness | None = None
