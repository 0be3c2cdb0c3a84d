"""Plain state objects of the floor: sites, queues, legs, agents, violations.

They hold data and tiny helpers only; the rules that change them live in
:mod:`callfloor.processors.engine`. Every class has ``dump``/``load`` so the whole
processor state can be checkpointed and restored exactly.
"""

from __future__ import annotations

from typing import Any, Final

from callfloor.config import QueuePolicy, SiteConfig
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.windows import NFIELDS, QueueWindows

# States an agent is counted in for live queue and site values (logged_out is left out).
LIVE_STATES: Final[tuple[str, ...]] = ("available", "ringing", "on_call", "wrap_up", "not_ready")
BUSY_STATES: Final[frozenset[str]] = frozenset(("ringing", "on_call", "wrap_up"))
STAFFED_STATES: Final[tuple[str, ...]] = ("available", "ringing", "on_call", "wrap_up")

# Wait-time histogram bounds (seconds); each queue adds its own SL and short-abandon
# thresholds so `histogram_quantile` and SL-from-buckets line up with the contract.
STANDARD_WAIT_BUCKETS: Final[tuple[float, ...]] = (
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
    14400.0,
)


class SiteState:
    """One call floor: its calendar and how many of its agents are in each state."""

    __slots__ = ("agent_counts", "calendar", "config", "name")

    def __init__(self, config: SiteConfig) -> None:
        self.name = config.name
        self.config = config
        self.calendar = SiteCalendar(config.timezone, config.interval_minutes)
        self.agent_counts: dict[str, int] = {}

    def dump(self) -> dict[str, object]:
        return {"agent_counts": dict(self.agent_counts)}

    def load(self, data: dict[str, Any]) -> None:
        self.agent_counts = {str(k): int(v) for k, v in data["agent_counts"].items()}


class Leg:
    """An open queue leg: from ``call_queued`` until answer, abandon or dequeue."""

    __slots__ = ("call_id", "missed", "queue", "seq", "start")

    def __init__(
        self, call_id: str, queue: str, start: float, seq: int, missed: bool = False
    ) -> None:
        self.call_id = call_id
        self.queue = queue
        self.start = start
        self.seq = seq
        self.missed = missed  # its service-level miss was already counted

    def dump(self) -> list[object]:
        return [self.call_id, self.queue, self.start, self.seq, self.missed]

    @classmethod
    def load(cls, row: list[Any]) -> Leg:
        cid, queue, start, seq, missed = row
        return cls(str(cid), str(queue), float(start), int(seq), bool(missed))


class QueueState:
    """One queue: policy, open legs, windowed counts and lifetime totals."""

    __slots__ = (
        "abandoned_wait_us",
        "bounds",
        "channel",
        "hist_abandoned",
        "hist_answered",
        "last_start",
        "listed",
        "name",
        "open",
        "ordered",
        "policy",
        "site",
        "site_fixed",
        "totals",
        "windows",
    )

    def __init__(
        self,
        name: str,
        site: str,
        channel: str,
        policy: QueuePolicy,
        widths: tuple[float, ...],
        *,
        configured: bool,
        site_fixed: bool,
    ) -> None:
        self.name = name
        self.site = site
        self.site_fixed = site_fixed  # configured site, or set by the first call_queued
        self.channel = channel
        self.policy = policy
        self.listed = configured  # shown in documents: configured or named by a call_queued
        self.windows = QueueWindows(widths)
        self.open: dict[str, Leg] = {}
        self.ordered = True  # open legs are in start order (no late call_queued)
        self.last_start = float("-inf")
        self.totals = [0] * NFIELDS  # since start-up, for Prometheus counters
        self.bounds = tuple(
            sorted({*STANDARD_WAIT_BUCKETS, policy.sl_threshold_s, policy.short_abandon_s} - {0.0})
        )
        self.hist_answered = [0] * (len(self.bounds) + 1)
        self.hist_abandoned = [0] * (len(self.bounds) + 1)
        self.abandoned_wait_us = 0  # lifetime sum of the waits counted in hist_abandoned

    def oldest_start(self) -> float | None:
        """``call_queued.ts`` of the oldest open leg."""
        if not self.open:
            return None
        if self.ordered:
            return next(iter(self.open.values())).start
        return min(leg.start for leg in self.open.values())

    def dump(self) -> dict[str, object]:
        return {
            "site": self.site,
            "site_fixed": self.site_fixed,
            "channel": self.channel,
            "listed": self.listed,
            "windows": self.windows.dump(),
            "open": [leg.dump() for leg in self.open.values()],
            "ordered": self.ordered,
            "last_start": self.last_start,
            "totals": list(self.totals),
            "hist_answered": list(self.hist_answered),
            "hist_abandoned": list(self.hist_abandoned),
            "abandoned_wait_us": self.abandoned_wait_us,
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore from :meth:`dump` output (policy and windows widths come from config)."""
        self.site = str(data["site"])
        self.site_fixed = bool(data["site_fixed"])
        self.channel = str(data["channel"])
        self.listed = bool(data["listed"])
        self.windows = QueueWindows.load(self.windows.widths, data["windows"])
        self.open = {}
        for row in data["open"]:
            leg = Leg.load(row)
            self.open[leg.call_id] = leg
        self.ordered = bool(data["ordered"])
        self.last_start = float(data["last_start"])
        self.totals = [int(x) for x in data["totals"]]
        if len(data["hist_answered"]) == len(self.hist_answered):
            self.hist_answered = [int(x) for x in data["hist_answered"]]
            self.hist_abandoned = [int(x) for x in data["hist_abandoned"]]
        self.abandoned_wait_us = int(data["abandoned_wait_us"])


class Conversation:
    """An answered call not yet ended."""

    __slots__ = ("agent", "answered_at", "queue")

    def __init__(self, agent: str, queue: str, answered_at: float) -> None:
        self.agent = agent
        self.queue = queue
        self.answered_at = answered_at

    def dump(self) -> list[object]:
        return [self.agent, self.queue, self.answered_at]

    @classmethod
    def load(cls, row: list[Any]) -> Conversation:
        agent, queue, answered_at = row
        return cls(str(agent), str(queue), float(answered_at))


class PendingHandle:
    """An ended call whose after-call work is not yet known to be over."""

    __slots__ = ("attached", "ended_at", "queue", "talk_s")

    def __init__(self, queue: str, talk_s: float, ended_at: float, attached: bool) -> None:
        self.queue = queue
        self.talk_s = talk_s
        self.ended_at = ended_at
        # True: the agent's current wrap_up spell is this call's after-call work.
        # False: waiting for the agent's next agent_state to decide.
        self.attached = attached

    def dump(self) -> list[object]:
        return [self.queue, self.talk_s, self.ended_at, self.attached]

    @classmethod
    def load(cls, row: list[Any]) -> PendingHandle:
        queue, talk_s, ended_at, attached = row
        return cls(str(queue), float(talk_s), float(ended_at), bool(attached))


class Violation:
    """An idle-time violation (SPEC §4)."""

    __slots__ = (
        "agent",
        "anchor",
        "ended_at",
        "kind",
        "severity",
        "spell",
        "started_at",
        "uid",
        "value",
    )

    def __init__(
        self,
        uid: int,
        kind: str,
        agent: str,
        severity: str,
        started_at: float,
        *,
        anchor: float = 0.0,
        value: float = 0.0,
        spell: int = -1,
    ) -> None:
        self.uid = uid
        self.kind = kind
        self.agent = agent
        self.severity = severity
        self.started_at = started_at
        self.ended_at: float | None = None
        self.anchor = anchor  # value grows as t - anchor while active (spell and stale kinds)
        self.value = value  # final value once ended; peak count for missed calls
        self.spell = spell  # the agent spell that produced it, for retraction

    def dump(self) -> list[object]:
        return [
            self.uid,
            self.kind,
            self.agent,
            self.severity,
            self.started_at,
            self.ended_at,
            self.anchor,
            self.value,
            self.spell,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> Violation:
        uid, kind, agent, severity, started, ended, anchor, value, spell = row
        v = cls(
            int(uid),
            str(kind),
            str(agent),
            str(severity),
            float(started),
            anchor=float(anchor),
            value=float(value),
            spell=int(spell),
        )
        v.ended_at = None if ended is None else float(ended)
        return v


NEG_INF: Final = float("-inf")  # one shared object: saves 24 bytes per field per agent


class Agent:
    """One agent: current spell, today's counters, pending after-call work."""

    __slots__ = (
        "active",
        "answered_today",
        "count_from",
        "count_until",
        "daily_crossed",
        "day_timer_at",
        "display_name",
        "last_state_at",
        "missed_at",
        "missed_today",
        "name",
        "nr_closed_s",
        "nr_from",
        "nr_until",
        "pending",
        "queues",
        "reason",
        "since",
        "site",
        "spell",
        "state",
        "team",
    )

    def __init__(self, name: str, site: str) -> None:
        self.name = name
        self.site = site
        self.state: str | None = None
        self.reason: str | None = None
        self.since = 0.0  # start of the current spell
        self.spell = 0  # increments with every new spell (token for spell timers)
        self.last_state_at = NEG_INF
        self.queues: tuple[str, ...] = ()
        self.team: str | None = None
        self.display_name: str | None = None
        # The site-local day [from, until) the answered/missed counters belong to.
        self.count_from = NEG_INF
        self.count_until = NEG_INF
        self.answered_today = 0
        self.missed_today = 0
        # The day [from, until) that nr_closed_s and daily_crossed belong to.
        self.nr_from = NEG_INF
        self.nr_until = NEG_INF
        self.nr_closed_s = 0.0  # non-exempt not-ready time of closed spells that day
        self.daily_crossed = 0  # daily limits crossed that day
        self.day_timer_at = NEG_INF  # midnight of a pending day-rollover timer
        # Allocated on first use: most agents most of the time have none of these.
        self.pending: list[PendingHandle] | None = None
        self.missed_at: list[float] | None = None  # sorted call_missed times, recent ones
        self.active: dict[str, Violation] | None = None  # active violations by slot name

    @property
    def known(self) -> bool:
        """Whether the agent has sent a valid agent_state (only those are listed)."""
        return self.state is not None

    def dump(self) -> dict[str, object]:
        return {
            "site": self.site,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
            "spell": self.spell,
            "last_state_at": self.last_state_at,
            "queues": list(self.queues),
            "team": self.team,
            "display_name": self.display_name,
            "count_from": self.count_from,
            "count_until": self.count_until,
            "answered_today": self.answered_today,
            "missed_today": self.missed_today,
            "nr_from": self.nr_from,
            "nr_until": self.nr_until,
            "nr_closed_s": self.nr_closed_s,
            "daily_crossed": self.daily_crossed,
            "day_timer_at": self.day_timer_at,
            "pending": [p.dump() for p in self.pending or ()],
            "missed_at": None if self.missed_at is None else list(self.missed_at),
            "active": {slot: v.uid for slot, v in (self.active or {}).items()},
        }

    def load(self, data: dict[str, Any], violations: dict[int, Violation]) -> None:
        """Restore from :meth:`dump` output (``violations`` by uid, already loaded)."""
        self.site = str(data["site"])
        self.state = data["state"]
        self.reason = data["reason"]
        self.since = float(data["since"])
        self.spell = int(data["spell"])
        self.last_state_at = float(data["last_state_at"])
        self.queues = tuple(data["queues"])
        self.team = data["team"]
        self.display_name = data["display_name"]
        self.count_from = float(data["count_from"])
        self.count_until = float(data["count_until"])
        self.answered_today = int(data["answered_today"])
        self.missed_today = int(data["missed_today"])
        self.nr_from = float(data["nr_from"])
        self.nr_until = float(data["nr_until"])
        self.nr_closed_s = float(data["nr_closed_s"])
        self.daily_crossed = int(data["daily_crossed"])
        self.day_timer_at = float(data["day_timer_at"])
        self.pending = [PendingHandle.load(row) for row in data["pending"]] or None
        missed = data["missed_at"]
        self.missed_at = None if missed is None else [float(x) for x in missed]
        active = {str(slot): violations[int(uid)] for slot, uid in data["active"].items()}
        self.active = active or None
