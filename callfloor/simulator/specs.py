"""What shapes a simulated floor: sites, channel behaviour, not-ready habits, the spec.

Plain frozen dataclasses with their defaults, and the catalogue of real
contact-centre sites ``build_spec(sites=N)`` draws from. Nothing here draws a random
number: the roster (:mod:`callfloor.simulator.roster`) and the run loop
(:mod:`callfloor.simulator.run`) turn a spec into a floor and its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callfloor.simulator.profile import lognormal_mean

CHANNEL_NAMES: Final[tuple[str, ...]] = ("voice", "chat", "email")


@dataclass(frozen=True)
class SiteSpec:
    """A call floor with its IANA time zone and reporting interval length."""

    name: str
    timezone: str
    interval_minutes: int = 15

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"site name {self.name!r}: use letters, digits, '-' or '_'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"site {self.name!r}: unknown time zone {self.timezone!r}") from exc
        if self.interval_minutes not in (15, 30):
            raise ValueError(f"site {self.name!r}: interval_minutes must be 15 or 30")


@dataclass(frozen=True)
class ChannelSpec:
    """How contacts of one channel behave: handling, patience, exits and ringing.

    Durations are lognormal, given by median and shape ``sigma`` (the log-space
    standard deviation); lognormal fits talk, wrap-up and patience times on real
    floors far better than exponentials because of their long right tails.
    """

    talk_median_s: float
    talk_sigma: float
    wrap_median_s: float
    wrap_sigma: float
    patience_median_s: float | None  # None: the customer never hangs up (email)
    patience_sigma: float
    short_abandon_prob: float  # share of callers who hang up within a few seconds
    short_abandon_max_s: float
    max_wait_s: float | None  # the ACD dequeues with reason "timeout" after this
    callback_after_s: float | None  # when a callback is offered to waiting callers
    callback_accept_prob: float
    requeue_prob: float  # share of contacts moved to another queue while waiting
    requeue_after_s: tuple[float, float]
    no_answer_prob: float  # share of offers the agent lets ring out
    ring_timeout_s: float
    answer_median_s: float
    workload_weight: float  # relative share of a site's workload per queue of this channel

    def mean_handle_s(self) -> float:
        """Mean agent time per answered contact: ringing + talk + wrap-up."""
        return (
            self.answer_median_s
            + lognormal_mean(self.talk_median_s, self.talk_sigma)
            + lognormal_mean(self.wrap_median_s, self.wrap_sigma)
        )


VOICE: Final = ChannelSpec(
    talk_median_s=105.0,
    talk_sigma=0.65,
    wrap_median_s=12.0,
    wrap_sigma=1.0,
    patience_median_s=110.0,
    patience_sigma=1.0,
    short_abandon_prob=0.07,
    short_abandon_max_s=5.0,
    max_wait_s=600.0,
    callback_after_s=60.0,
    callback_accept_prob=0.25,
    requeue_prob=0.03,
    requeue_after_s=(20.0, 120.0),
    no_answer_prob=0.04,
    ring_timeout_s=15.0,
    answer_median_s=2.5,
    workload_weight=1.0,
)
CHAT: Final = ChannelSpec(
    talk_median_s=200.0,
    talk_sigma=0.6,
    wrap_median_s=15.0,
    wrap_sigma=0.9,
    patience_median_s=150.0,
    patience_sigma=0.9,
    short_abandon_prob=0.05,
    short_abandon_max_s=5.0,
    max_wait_s=300.0,
    callback_after_s=None,
    callback_accept_prob=0.0,
    requeue_prob=0.02,
    requeue_after_s=(30.0, 180.0),
    no_answer_prob=0.03,
    ring_timeout_s=20.0,
    answer_median_s=3.0,
    workload_weight=0.7,
)
EMAIL: Final = ChannelSpec(
    talk_median_s=200.0,
    talk_sigma=0.7,
    wrap_median_s=10.0,
    wrap_sigma=0.8,
    patience_median_s=None,
    patience_sigma=0.0,
    short_abandon_prob=0.0,
    short_abandon_max_s=0.0,
    max_wait_s=12 * 3600.0,
    callback_after_s=None,
    callback_accept_prob=0.0,
    requeue_prob=0.01,
    requeue_after_s=(300.0, 3600.0),
    no_answer_prob=0.02,
    ring_timeout_s=30.0,
    answer_median_s=4.0,
    workload_weight=0.5,
)


@dataclass(frozen=True)
class NotReadySpec:
    """One kind of not-ready spell an agent takes during a shift.

    With ``at_fraction`` set it is a planned break at that point of the shift
    (taken with probability ``per_shift``); otherwise it happens a Poisson number of
    times (mean ``per_shift``) at random moments of the shift.
    """

    reason: str
    median_s: float
    sigma: float
    per_shift: float
    at_fraction: float | None = None
    min_shift_hours: float = 0.0  # only in shifts at least this long...
    max_shift_hours: float = 24.0  # ...and shorter than this

    def applies(self, shift_s: float) -> bool:
        """Whether a shift of this length (seconds) includes this kind of spell."""
        return self.min_shift_hours * 3600.0 <= shift_s < self.max_shift_hours * 3600.0


DEFAULT_NOT_READY: Final[tuple[NotReadySpec, ...]] = (
    NotReadySpec("break", 780.0, 0.2, 0.95, at_fraction=0.24, min_shift_hours=7.0),
    NotReadySpec("lunch", 2100.0, 0.2, 0.97, at_fraction=0.5, min_shift_hours=6.5),
    NotReadySpec("break", 780.0, 0.2, 0.9, at_fraction=0.76, min_shift_hours=7.0),
    # Part-timers take one break mid-shift and no lunch.
    NotReadySpec("break", 780.0, 0.2, 0.9, 0.5, min_shift_hours=4.0, max_shift_hours=6.5),
    NotReadySpec("personal", 210.0, 0.8, 0.7),
    NotReadySpec("meeting", 1800.0, 0.3, 0.12),
    NotReadySpec("training", 2700.0, 0.25, 0.06),
)

# Sites for build_spec(sites=N): real contact-centre locations spread over the
# world so that their local peaks fall at different UTC hours.
SITE_CATALOGUE: Final[tuple[tuple[str, str, int], ...]] = (
    ("lon", "Europe/London", 15),
    ("sh", "Asia/Shanghai", 30),
    ("nyc", "America/New_York", 15),
    ("blr", "Asia/Kolkata", 30),
    ("syd", "Australia/Sydney", 15),
    ("mex", "America/Mexico_City", 30),
    ("jnb", "Africa/Johannesburg", 15),
    ("ber", "Europe/Berlin", 15),
    ("tyo", "Asia/Tokyo", 30),
    ("sao", "America/Sao_Paulo", 15),
    ("mnl", "Asia/Manila", 30),
    ("dub", "Europe/Dublin", 15),
)


def default_sites(n: int) -> tuple[SiteSpec, ...]:
    """``n`` sites from the catalogue (numbered copies once it runs out)."""
    if n < 1:
        raise ValueError("at least one site is needed")
    out: list[SiteSpec] = []
    for i in range(n):
        name, tz, interval = SITE_CATALOGUE[i % len(SITE_CATALOGUE)]
        if i >= len(SITE_CATALOGUE):
            name = f"{name}{i // len(SITE_CATALOGUE) + 1}"
        out.append(SiteSpec(name, tz, interval))
    return tuple(out)


DEFAULT_SITES: Final[tuple[SiteSpec, ...]] = default_sites(2)
"""London (Europe/London) and Shanghai (Asia/Shanghai): eight hours apart."""


@dataclass(frozen=True)
class SimulationSpec:
    """Everything that shapes the simulated floor; the defaults are a small demo floor."""

    seed: int = 1
    agents: int = 40
    queues: int = 6
    sites: tuple[SiteSpec, ...] = DEFAULT_SITES
    # Offered load relative to the forecast the shifts were planned for (1.0: the
    # forecast was right). Staffing never matches demand slot by slot, so peaks
    # still build queues and abandons, as on real floors.
    load: float = 1.0
    # Square-root staffing margin: agents = A + margin * sqrt(A), before shrinkage.
    staffing_margin: float = 0.8
    # Agents whose shift sees less than this mean demand (night, late evening) serve
    # every queue of their site.
    generalist_demand: float = 0.4
    # Channel of each site's queues in turn: about half voice, the rest chat and email.
    channel_pattern: tuple[str, ...] = (
        "voice",
        "chat",
        "email",
        "voice",
        "voice",
        "chat",
        "voice",
        "email",
        "voice",
        "chat",
    )
    voice: ChannelSpec = VOICE
    chat: ChannelSpec = CHAT
    email: ChannelSpec = EMAIL
    shift_hours: float = 9.0
    # Part-timers cover the morning ramp and the peaks that full shifts cannot follow.
    part_time_share: float = 0.2
    part_time_hours: float = 6.0
    not_ready: tuple[NotReadySpec, ...] = DEFAULT_NOT_READY
    # Share of not-ready spells that overrun (x1.5..x3): the idle-time violations.
    not_ready_overrun_prob: float = 0.06
    # After a ring-no-answer most ACDs put the agent in not-ready ("missed").
    missed_not_ready_prob: float = 0.7
    missed_not_ready_median_s: float = 25.0
    late_login_prob: float = 0.06
    late_login_max_s: float = 1500.0
    early_logout_prob: float = 0.03
    max_extra_skills: int = 2
    team_size: int = 12
    # Share of calls whose wrap_up state is reported before call_ended (half at the
    # same ts, half slightly earlier); the rest report it just after.
    wrap_before_end_prob: float = 0.3
    # Share of events sent twice with the same id, as an at-least-once transport does.
    duplicate_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError("agents must be at least 1")
        if not self.sites:
            raise ValueError("at least one site is needed")
        if self.queues < len(self.sites):
            raise ValueError("queues must be at least the number of sites (each site needs one)")
        if self.agents < len(self.sites):
            raise ValueError("agents must be at least the number of sites (each site needs one)")
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        if not self.channel_pattern or any(c not in CHANNEL_NAMES for c in self.channel_pattern):
            raise ValueError(f"channel_pattern may only name {', '.join(CHANNEL_NAMES)}")
        if not 0.0 <= self.duplicate_rate < 1.0:
            raise ValueError("duplicate_rate must be in [0, 1)")
        if self.load <= 0.0:
            raise ValueError("load must be positive")
        if not 1.0 <= self.shift_hours <= 16.0 or not 1.0 <= self.part_time_hours <= 16.0:
            raise ValueError("shift_hours and part_time_hours must be between 1 and 16")
        if not 0.0 <= self.part_time_share <= 1.0:
            raise ValueError("part_time_share must be in [0, 1]")
        if self.max_extra_skills < 0 or self.team_size < 1:
            raise ValueError("max_extra_skills must be >= 0 and team_size >= 1")

    def channel(self, name: str) -> ChannelSpec:
        """The behaviour of channel ``name`` (voice, chat or email)."""
        spec: ChannelSpec = getattr(self, name)
        return spec


def build_spec(
    *,
    agents: int = 40,
    queues: int = 6,
    sites: int = 2,
    seed: int = 1,
    load: float = 1.0,
    duplicate_rate: float = 0.0,
) -> SimulationSpec:
    """A floor of the given size with the default behaviour (used by benchmarks and the CLI)."""
    return SimulationSpec(
        seed=seed,
        agents=agents,
        queues=queues,
        sites=default_sites(sites),
        load=load,
        duplicate_rate=duplicate_rate,
    )
