"""The call-floor model: a deterministic discrete-event simulation of an ACD.

The floor has sites (each with an IANA time zone), queues that belong to a site and
carry one channel (voice, chat, email), and agents with skills (the queues of their
site they serve) and a daily shift in site-local time. Contacts arrive per queue as
a Poisson process whose rate follows a daily profile in the site's local time; the
ACD offers a waiting contact to the longest-idle available agent with the skill, and
the agent may not answer (ring-no-answer), answers, talks, wraps up and goes back to
available or takes a not-ready break. Callers run out of patience and abandon (a few
almost at once), time out, accept a callback or are requeued to another queue.

Everything is driven by one ``heapq`` of timers. Timers are plain int tuples
``(time, seq, kind, a, b)``; instead of deleting a timer that no longer applies, the
handler checks a token (the agent's state-change counter, the call's leg number)
and ignores stale timers. ``seq`` makes the order of simultaneous timers the order
they were scheduled in, which keeps the output byte-for-byte deterministic.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callfloor.simulator.profile import (
    SLOT_S,
    SiteClock,
    lognormal_mean,
    peak_erlangs,
    plan_shifts,
    shift_demand,
    weighted_pick,
)

Event = dict[str, object]

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


# Names for the `name` field at login; combined they give 900 distinct names.
_FIRST_TEXT: Final = (
    "Aisha Ben Carmen Dmitri Elena Farid Grace Hiro Ines Jamal Kofi Lena Mateo Nadia Omar "
    "Priya Quinn Rosa Sanjay Tara Umar Vera Wei Ximena Yusuf Zoe Liam Mei Noah Sofia"
)
_LAST_TEXT: Final = (
    "Adams Bauer Chen Diaz Evans Fischer Garcia Haddad Ito Jensen Kim Lopez Mensah Novak "
    "Okafor Patel Quist Rossi Silva Tan Ueda Varga Wong Xu Yilmaz Zhang Murphy Singh Li Moreau"
)
_PRODUCTS_TEXT: Final = (
    "sales service billing tech retention claims orders returns accounts loyalty "
    "onboarding collections fraud travel premium general"
)
_FIRST: Final = tuple(_FIRST_TEXT.split())
_LAST: Final = tuple(_LAST_TEXT.split())
_PRODUCTS: Final = tuple(_PRODUCTS_TEXT.split())


@dataclass(frozen=True)
class QueueInfo:
    """A queue of the built floor."""

    name: str
    site: int
    channel: str
    rate_per_s: float  # arrival rate at the daily peak (profile factor 1.0)


@dataclass(frozen=True)
class AgentInfo:
    """An agent of the built floor."""

    id: str
    name: str
    team: str
    site: int
    skills: tuple[int, ...]
    shift_start_s: int  # seconds after site-local midnight
    shift_s: float  # shift length


# Agent states, as ints for speed.
_LOGGED_OUT, _AVAILABLE, _RINGING, _ON_CALL, _WRAP_UP, _NOT_READY = range(6)

# Call states.
_WAITING, _OFFERED, _TALKING = range(3)

# How a waiting contact leaves its queue if no agent answers it first.
_EXIT_ABANDON, _EXIT_TIMEOUT, _EXIT_CALLBACK, _EXIT_REQUEUE = range(4)

# Timer kinds (index into the handler table in _Run.run).
(
    _K_ARRIVAL,
    _K_EXIT,
    _K_ANSWER,
    _K_MISS,
    _K_WRAP_EARLY,
    _K_TALK_END,
    _K_WRAP_END,
    _K_NR_END,
    _K_BREAK,
    _K_LOGIN,
    _K_LOGOUT,
) = range(11)

# An agent serving several channels takes voice before chat before email: email is
# deferrable, and serving strictly oldest-first would starve voice behind a night's
# worth of email.
_CHANNEL_RANK: Final = {"voice": 0, "chat": 1, "email": 2}


class FloorSimulation:
    """A simulated call floor built from a :class:`SimulationSpec`.

    Building the floor (queues, skills, shifts, arrival rates) uses its own
    ``random.Random`` so that it depends on the spec only; each :meth:`events` call
    replays the day with a fresh generator, so the same spec, start and duration give
    the same events every time.
    """

    def __init__(self, spec: SimulationSpec) -> None:
        self.spec = spec
        # String seeds are hashed (SHA-512) by random.Random: stable across runs and
        # platforms, and independent streams for building and for running the floor.
        rng = random.Random(f"callfloor-floor-{spec.seed}")
        n_sites = len(spec.sites)

        # Queues go round-robin over the sites; each site takes channels from the
        # pattern in turn, so even a 3-queue site has voice, chat and email.
        site_queue_count = [0] * n_sites
        q_site: list[int] = []
        q_channel: list[str] = []
        q_name: list[str] = []
        for i in range(spec.queues):
            s = i % n_sites
            j = site_queue_count[s]
            site_queue_count[s] += 1
            channel = spec.channel_pattern[j % len(spec.channel_pattern)]
            product = _PRODUCTS[j % len(_PRODUCTS)]
            if j >= len(_PRODUCTS):
                product += str(j // len(_PRODUCTS) + 1)
            q_site.append(s)
            q_channel.append(channel)
            q_name.append(f"{spec.sites[s].name}-{product}-{channel}")
        # Relative workload per queue: channel weight times a lognormal size factor,
        # so some queues are busy and others small, as on real floors.
        q_weight = [
            spec.channel(q_channel[i]).workload_weight * rng.lognormvariate(0.0, 0.5)
            for i in range(spec.queues)
        ]

        full_s = spec.shift_hours * 3600.0
        part_s = spec.part_time_hours * 3600.0
        site_agents: list[list[int]] = [[] for _ in range(n_sites)]
        for a in range(spec.agents):
            site_agents[a % n_sites].append(a)
        agent_rows: dict[int, AgentInfo] = {}
        queues: list[QueueInfo] = []
        q_rate = [0.0] * spec.queues
        for s in range(n_sites):
            members = site_agents[s]
            site_queues = [q for q in range(spec.queues) if q_site[q] == s]
            weights = [q_weight[q] for q in site_queues]
            # Plan like a workforce-management team: the load the site's agents can
            # serve at the peak, then shifts that follow the demand over the day.
            n_part = round(len(members) * spec.part_time_share)
            n_full = len(members) - n_part
            agent_s = n_full * full_s + n_part * part_s
            # Shrinkage: the share of scheduled time spent not ready (breaks, lunch...).
            nr_s = n_full * self._expected_not_ready_s(full_s)
            nr_s += n_part * self._expected_not_ready_s(part_s)
            shrinkage = min(0.5, nr_s / max(agent_s, 1.0))
            margin = spec.staffing_margin
            peak = peak_erlangs(agent_s / SLOT_S, margin, shrinkage)
            shifts = plan_shifts([(full_s, n_full), (part_s, n_part)], peak, margin, shrinkage)
            rng.shuffle(shifts)  # agent numbers are not ordered by shift
            # Agents on quiet (night, late evening) shifts serve every queue of the
            # site: a handful of specialists could not cover twenty queues.
            generalist = [shift_demand(st, ln) < spec.generalist_demand for st, ln in shifts]
            skills = self._assign_skills(
                rng, site_queues, weights, spec.max_extra_skills, generalist
            )
            # Teams are formed from agents with the same primary skill, as a
            # supervisor usually leads one line of business.
            order = sorted(range(len(members)), key=lambda k: (skills[k][0], k))
            team_of = [0] * len(members)
            for pos, k in enumerate(order):
                team_of[k] = pos // max(1, spec.team_size) + 1
            site_name = spec.sites[s].name
            for k, a in enumerate(members):
                agent_rows[a] = AgentInfo(
                    id=f"{site_name}-a{k + 1:04d}",
                    name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                    team=f"{site_name}-t{team_of[k]:02d}",
                    site=s,
                    skills=skills[k],
                    shift_start_s=shifts[k][0],
                    shift_s=shifts[k][1],
                )
            # Arrival rates at the daily peak: the site's peak load (times `load`,
            # the demand relative to that forecast) shared among its queues by
            # weight and turned into contacts per second by each channel's handle time.
            total_w = sum(weights)
            for q in site_queues:
                erlangs = spec.load * peak * q_weight[q] / total_w
                q_rate[q] = erlangs / spec.channel(q_channel[q]).mean_handle_s()
        for q in range(spec.queues):
            queues.append(QueueInfo(q_name[q], q_site[q], q_channel[q], q_rate[q]))
        agents = [agent_rows[a] for a in range(spec.agents)]

        self.queues: tuple[QueueInfo, ...] = tuple(queues)
        self.agents: tuple[AgentInfo, ...] = tuple(agents)

    @staticmethod
    def _assign_skills(
        rng: random.Random,
        site_queues: list[int],
        weights: list[float],
        max_extra: int,
        generalist: list[bool],
    ) -> list[tuple[int, ...]]:
        """Skills of a site's agents: a primary queue first, then further queues.

        Primary skills are shared out by largest remainder so each queue gets agents in
        proportion to its workload; specialists get a few extra skills (weighted by
        workload) so busy queues can borrow idle agents; generalists serve every queue.
        Every queue ends up with at least one skilled agent.
        """
        n = len(generalist)
        nq = len(site_queues)
        total_w = sum(weights)
        counts = [0] * nq
        skills: list[list[int]] = []
        for k in range(n):
            # The queue furthest below its fair share of agents so far.
            best = max(range(nq), key=lambda j: (weights[j] / total_w) * (k + 1) - counts[j])
            counts[best] += 1
            skills.append([best])
        for k in range(n):
            if generalist[k]:
                skills[k] += [j for j in range(nq) if j != skills[k][0]]
                continue
            for _ in range(rng.randint(0, min(max_extra, nq - 1))):
                others = [j for j in range(nq) if j not in skills[k]]
                skills[k].append(others[weighted_pick(rng, [weights[j] for j in others])])
        covered = {j for sk in skills for j in sk}
        for j in range(nq):
            if j not in covered and n:
                skills[j % n].append(j)
        return [tuple(site_queues[j] for j in sk) for sk in skills]

    def _expected_not_ready_s(self, shift_s: float) -> float:
        """Mean not-ready time in one shift of this length."""
        spec = self.spec
        overrun = 1.0 + spec.not_ready_overrun_prob * 1.25  # mean of U(1.5, 3) is 2.25
        return sum(
            nr.per_shift * lognormal_mean(nr.median_s, nr.sigma) * overrun
            for nr in spec.not_ready
            if nr.applies(shift_s)
        )

    def events(self, start_ts: float, duration_s: float) -> Iterator[Event]:
        """Canonical SPEC §1 events (plain dicts ready for JSON), ts non-decreasing,
        deterministic for a seed.

        Agents on shift at ``start_ts`` log in at ``start_ts``; events are produced
        for ``start_ts <= ts < start_ts + duration_s``. A shorter run is a prefix of a
        longer one with the same start.
        """
        if duration_s < 0 or not math.isfinite(duration_s):
            raise ValueError("duration_s must be a finite, non-negative number of seconds")
        if start_ts < 0 or not math.isfinite(start_ts):
            raise ValueError("start_ts must be a finite, non-negative epoch time")
        return _Run(self, float(start_ts), float(start_ts) + float(duration_s)).run()

    def config_toml(self) -> str:
        """A callfloor configuration (SPEC §8 TOML) describing this floor's sites and queues."""
        spec = self.spec
        lines = [
            f"# callfloor configuration for a simulated floor: seed {spec.seed}, "
            f"{spec.agents} agents, {spec.queues} queues, {len(spec.sites)} sites.",
            "# Written by `callfloor simulate --write-config`.",
            "",
        ]
        for site in spec.sites:
            lines += [
                f"[sites.{_toml_key(site.name)}]",
                f"timezone = {_toml_str(site.timezone)}",
                f"interval_minutes = {site.interval_minutes}",
                "",
            ]
        for q in self.queues:
            aht = round(spec.channel(q.channel).mean_handle_s())
            lines += [
                f"[queues.{_toml_key(q.name)}]",
                f"site = {_toml_str(spec.sites[q.site].name)}",
                f"channel = {_toml_str(q.channel)}",
                f"default_aht_s = {aht}",
                "",
            ]
        # The floor's break policy: two ~13-minute breaks and a ~35-minute lunch per
        # full shift, so ~70 minutes of not-ready is normal and only overruns (breaks
        # over 15 min, lunches over 45, long personal time) should be flagged.
        # Meetings and training are planned work, exempt from idle-time limits.
        lines += [
            "[agents]",
            'not_ready_reason_max = { break = "15m", lunch = "45m" }',
            'exempt_reasons = ["training", "meeting"]',
            'daily_not_ready = ["75m", "90m"]',
            "",
        ]
        return "\n".join(lines)


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML for the characters we emit)."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return _toml_str(key)


class _Call:
    """A contact from arrival until its leg ends or its conversation ends."""

    __slots__ = (
        "agent",
        "cid",
        "enq",
        "exit_due",
        "exit_kind",
        "leg",
        "num",
        "patience_end",
        "queue",
        "state",
        "wrap_mode",
    )

    def __init__(self, num: int, cid: str, queue: int, enq: float) -> None:
        self.num = num
        self.cid = cid
        self.queue = queue
        self.enq = enq  # call_queued time of the current leg
        self.state = _WAITING
        self.leg = 0  # bumped by a requeue: invalidates the old leg's timers
        self.patience_end = math.inf
        self.exit_kind = _EXIT_ABANDON
        self.exit_due = False  # the exit timer fired while the call was ringing
        self.wrap_mode = 0
        self.agent = -1  # the agent it is offered to while ringing


class _Agent:
    """Mutable per-run state of one agent."""

    __slots__ = (
        "call",
        "day",
        "idx",
        "pending_break",
        "pending_logout",
        "reason",
        "shift_id",
        "state",
        "token",
    )

    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.state = _LOGGED_OUT
        self.reason: str | None = None
        # Bumped on every state change; timers and idle-list entries carry the
        # token they were made with and are ignored once it no longer matches.
        self.token = 0
        self.call = -1  # number of the call offered to / talking with this agent
        self.pending_break: tuple[str, float] | None = None
        self.pending_logout = False
        self.shift_id = 0
        self.day = 0  # local date ordinal of the current / next shift


class _Run:
    """One pass of the simulation over [start, end)."""

    def __init__(self, sim: FloorSimulation, start: float, end: float) -> None:
        spec = sim.spec
        self.spec = spec
        self.sim = sim
        self.start = start
        self.end = end
        # Separate from the floor-building generator: the run's draws depend only
        # on the seed and the order of simulated events.
        self.rng = random.Random(f"callfloor-run-{spec.seed}")
        # Duplicates have their own stream so that turning them on changes nothing else.
        self.dup_rng = random.Random(f"callfloor-dup-{spec.seed}")
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.out: list[Event] = []
        self.n_events = 0
        self.id_prefix = f"{spec.seed}-"
        self.call_prefix = f"c{spec.seed}-"
        self.n_calls = 0
        self.calls: dict[int, _Call] = {}
        self.plans: dict[int, tuple[str, float, int]] = {}
        self.n_plans = 0

        self.site_names = [s.name for s in spec.sites]
        self.zones = [ZoneInfo(s.timezone) for s in spec.sites]
        self.clocks = [SiteClock(s.timezone) for s in spec.sites]
        self.queues = sim.queues
        self.q_names = [q.name for q in sim.queues]
        self.q_site_names = [self.site_names[q.site] for q in sim.queues]
        self.q_channels = [spec.channel(q.channel) for q in sim.queues]
        self.q_rank = [_CHANNEL_RANK[q.channel] for q in sim.queues]
        # Other queues of the same site a contact can be requeued to, same channel first.
        self.requeue_targets: list[list[int]] = []
        for i, q in enumerate(sim.queues):
            same_site = [j for j, o in enumerate(sim.queues) if o.site == q.site and j != i]
            same_channel = [j for j in same_site if sim.queues[j].channel == q.channel]
            self.requeue_targets.append(same_channel or same_site)
        # Per queue: waiting contacts (rank is per queue, so entries sort by call_queued
        # time then call number) and idle agents (longest idle first).
        self.waiting: list[list[tuple[float, int, int]]] = [[] for _ in sim.queues]
        self.idle: list[list[tuple[float, int, int]]] = [[] for _ in sim.queues]

        self.infos = sim.agents
        self.agents = [_Agent(i) for i in range(len(sim.agents))]
        self.a_ids = [a.id for a in sim.agents]
        self.a_sites = [self.site_names[a.site] for a in sim.agents]

        self.mu_missed = math.log(spec.missed_not_ready_median_s)

    # -- scheduling helpers ------------------------------------------------------------

    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _nid(self) -> str:
        self.n_events += 1
        return f"{self.id_prefix}{self.n_events}"

    def _shift_start(self, agent: int, day: int) -> float:
        """Epoch time of the agent's shift start on local date ordinal ``day``.

        Wall-clock arithmetic in the site's zone, so shifts keep their local start
        across daylight-saving changes.
        """
        info = self.infos[agent]
        h, rem = divmod(info.shift_start_s, 3600)
        local = time(h, rem // 60)
        return datetime.combine(
            date.fromordinal(day), local, tzinfo=self.zones[info.site]
        ).timestamp()

    def _schedule_login(self, agent: int, day: int, earliest: float) -> None:
        """Schedule the login for the shift of local day ``day`` (maybe late)."""
        t = self._shift_start(agent, day)
        if self.rng.random() < self.spec.late_login_prob:
            t += self.rng.uniform(180.0, self.spec.late_login_max_s)
        t = max(t, earliest)
        ag = self.agents[agent]
        ag.day = day
        if t < self.end:
            self._push(t, _K_LOGIN, agent, day)

    def _schedule_arrival(self, q: int, t: float) -> None:
        """Schedule queue ``q``'s next arrival after ``t`` (rate constant within a slot).

        Inter-arrival times are memoryless, so a gap that overshoots the slot end is
        discarded and a wake-up at the slot end (``b`` = 0) draws again with the next
        slot's rate. Drawing only when the clock reaches the slot keeps the random
        stream in time order, so a shorter run is an exact prefix of a longer one.
        """
        rate = self.queues[q].rate_per_s
        if rate <= 0.0:
            return
        slot = int(t // SLOT_S)
        slot_end = (slot + 1) * float(SLOT_S)
        t2 = t + self.rng.expovariate(rate * self.clocks[self.queues[q].site].factor(slot))
        if t2 < slot_end:
            self._push(t2, _K_ARRIVAL, q, 1)
        else:
            self._push(slot_end, _K_ARRIVAL, q, 0)

    # -- the event loop -------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Yield the events of the run in time order."""
        for q in range(len(self.queues)):
            self._schedule_arrival(q, self.start)
        for a in range(len(self.agents)):
            self._schedule_first_shift(a)

        handlers = (
            self._on_arrival,
            self._on_exit,
            self._on_answer,
            self._on_miss,
            self._on_wrap_early,
            self._on_talk_end,
            self._on_wrap_end,
            self._on_nr_end,
            self._on_break,
            self._on_login,
            self._on_logout,
        )
        heap = self.heap
        out = self.out
        end = self.end
        pop = heapq.heappop
        dup = self.spec.duplicate_rate
        dup_draw = self.dup_rng.random
        while heap and heap[0][0] < end:
            t, _, kind, a, b = pop(heap)
            handlers[kind](t, a, b)
            if out:
                if dup:
                    for ev in out:
                        yield ev
                        if dup_draw() < dup:
                            yield dict(ev)
                else:
                    yield from out
                out.clear()

    def _schedule_first_shift(self, agent: int) -> None:
        info = self.infos[agent]
        zone = self.zones[info.site]
        day = datetime.fromtimestamp(self.start, zone).date().toordinal() - 1
        # The first shift that has not ended by the start of the run.
        while self._shift_start(agent, day) + info.shift_s <= self.start:
            day += 1
        if self._shift_start(agent, day) <= self.start:
            # On shift already: the stream opens with the agent's current login.
            self.agents[agent].day = day
            self._push(self.start, _K_LOGIN, agent, day)
        else:
            self._schedule_login(agent, day, self.start)

    # -- contacts -------------------------------------------------------------------------

    def _on_arrival(self, t: float, q: int, arrives: int) -> None:
        if not arrives:  # a slot boundary: draw again with the new slot's rate
            self._schedule_arrival(q, t)
            return
        self.n_calls += 1
        num = self.n_calls
        call = _Call(num, f"{self.call_prefix}{num}", q, t)
        self.calls[num] = call
        self.out.append(
            {
                "type": "call_queued",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "queue": self.q_names[q],
                "channel": self.queues[q].channel,
            }
        )
        self._plan_exit(call, t, first=True)
        self._offer(call, t)
        self._schedule_arrival(q, t)

    def _plan_exit(self, call: _Call, t: float, *, first: bool) -> None:
        """Draw how the contact leaves the queue unless an agent answers it first."""
        ch = self.q_channels[call.queue]
        rng = self.rng
        if first:
            if ch.short_abandon_prob and rng.random() < ch.short_abandon_prob:
                # Misdials and "I'll call back later" callers: gone within seconds.
                call.patience_end = t + rng.uniform(0.5, ch.short_abandon_max_s)
            elif ch.patience_median_s is not None:
                call.patience_end = t + rng.lognormvariate(
                    math.log(ch.patience_median_s), ch.patience_sigma
                )
        # After a requeue the caller's patience keeps running from the first arrival.
        at = call.patience_end
        kind = _EXIT_ABANDON
        if ch.max_wait_s is not None and t + ch.max_wait_s < at:
            at, kind = t + ch.max_wait_s, _EXIT_TIMEOUT
        if first:
            if ch.callback_after_s is not None and rng.random() < ch.callback_accept_prob:
                # The offer is repeated every 30 s or so after the first announcement.
                cb = t + ch.callback_after_s + rng.uniform(0.0, 30.0)
                if cb < at:
                    at, kind = cb, _EXIT_CALLBACK
            if self.requeue_targets[call.queue] and rng.random() < ch.requeue_prob:
                rq = t + rng.uniform(*ch.requeue_after_s)
                if rq < at:
                    at, kind = rq, _EXIT_REQUEUE
        call.exit_kind = kind
        # A requeue carried out late (the call was ringing when it was due) may find
        # the caller's patience already spent: then the caller leaves at once.
        at = max(at, t)
        if at < self.end:
            self._push(at, _K_EXIT, call.num, call.leg)

    def _offer(self, call: _Call, t: float) -> None:
        """Offer a waiting contact to the longest-idle skilled agent, or let it wait."""
        idle = self.idle[call.queue]
        agents = self.agents
        while idle:
            _, a, token = heapq.heappop(idle)
            ag = agents[a]
            if ag.state == _AVAILABLE and ag.token == token:
                self._route(call, ag, t)
                return
        call.state = _WAITING
        heapq.heappush(self.waiting[call.queue], (call.enq, call.num, call.leg))

    def _route(self, call: _Call, ag: _Agent, t: float) -> None:
        call.state = _OFFERED
        call.agent = ag.idx
        ag.state = _RINGING
        ag.token += 1
        ag.call = call.num
        ts = round(t, 3)
        q = call.queue
        agent_id = self.a_ids[ag.idx]
        self.out.append(
            {
                "type": "call_routed",
                "ts": ts,
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": agent_id,
                "queue": self.q_names[q],
            }
        )
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[ag.idx],
                "agent": agent_id,
                "state": "ringing",
            }
        )
        ch = self.q_channels[q]
        rng = self.rng
        if rng.random() < ch.no_answer_prob:
            self._push(t + ch.ring_timeout_s, _K_MISS, ag.idx, ag.token)
        else:
            delay = rng.lognormvariate(math.log(ch.answer_median_s), 0.5)
            delay = max(0.0, min(delay, ch.ring_timeout_s - 0.5))
            self._push(t + delay, _K_ANSWER, ag.idx, ag.token)

    def _on_exit(self, t: float, num: int, leg: int) -> None:
        call = self.calls.get(num)
        if call is None or call.leg != leg or call.state == _TALKING:
            return
        if call.state == _WAITING:
            self._exit(call, t)
        elif call.exit_kind == _EXIT_ABANDON:
            # The caller hangs up while the agent's phone rings: the offer is withdrawn.
            ag = self.agents[call.agent]
            self._abandon(call, t)
            ag.call = -1
            self._free(ag, t, missed=False)
        else:
            # The ACD does not time out or move a contact that is being offered; it
            # acts if the offer fails.
            call.exit_due = True

    def _abandon(self, call: _Call, t: float) -> None:
        q = call.queue
        self.out.append(
            {
                "type": "call_abandoned",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "queue": self.q_names[q],
            }
        )
        del self.calls[call.num]

    def _exit(self, call: _Call, t: float) -> None:
        """The waiting contact leaves its queue by its planned exit."""
        kind = call.exit_kind
        q = call.queue
        if kind == _EXIT_ABANDON:
            self._abandon(call, t)
        elif kind == _EXIT_REQUEUE:
            targets = self.requeue_targets[q]
            new_q = targets[self.rng.randrange(len(targets))]
            call.queue = new_q
            call.leg += 1
            call.enq = t
            call.exit_due = False
            self.out.append(
                {
                    "type": "call_queued",
                    "ts": round(t, 3),
                    "id": self._nid(),
                    "site": self.q_site_names[new_q],
                    "call_id": call.cid,
                    "queue": self.q_names[new_q],
                    "channel": self.queues[new_q].channel,
                }
            )
            self._plan_exit(call, t, first=False)
            self._offer(call, t)
        else:
            self.out.append(
                {
                    "type": "call_dequeued",
                    "ts": round(t, 3),
                    "id": self._nid(),
                    "site": self.q_site_names[q],
                    "call_id": call.cid,
                    "queue": self.q_names[q],
                    "reason": "timeout" if kind == _EXIT_TIMEOUT else "callback",
                }
            )
            del self.calls[call.num]

    def _on_answer(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls[ag.call]
        call.state = _TALKING
        ag.state = _ON_CALL
        ag.token += 1
        ts = round(t, 3)
        q = call.queue
        agent_id = self.a_ids[a]
        self.out.append(
            {
                "type": "call_answered",
                "ts": ts,
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": agent_id,
                "queue": self.q_names[q],
            }
        )
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": agent_id,
                "state": "on_call",
            }
        )
        ch = self.q_channels[q]
        rng = self.rng
        end = t + rng.lognormvariate(math.log(ch.talk_median_s), ch.talk_sigma)
        x = rng.random()
        before = self.spec.wrap_before_end_prob
        if x < before * 0.5:
            # Some ACDs report after-call work a moment before the call-end record.
            call.wrap_mode = 2
            self._push(max(t, end - rng.uniform(0.05, 1.0)), _K_WRAP_EARLY, a, ag.token)
        elif x < before:
            call.wrap_mode = 1  # wrap_up first, same ts
        else:
            call.wrap_mode = 0  # call_ended first
        self._push(end, _K_TALK_END, a, ag.token)

    def _on_miss(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls[ag.call]
        q = call.queue
        self.out.append(
            {
                "type": "call_missed",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": self.a_ids[a],
                "queue": self.q_names[q],
                "reason": "no_answer",
            }
        )
        ag.call = -1
        self._free(ag, t, missed=True)
        # Ring-no-answer keeps the contact in its queue (no new call_queued) with its
        # original place in line; it is offered again at once if someone is idle.
        call.state = _WAITING
        if call.exit_due:
            call.exit_due = False
            self._exit(call, t)
        else:
            self._offer(call, t)

    def _emit_state(self, a: int, ts: float, state: str) -> None:
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": self.a_ids[a],
                "state": state,
            }
        )

    def _on_wrap_early(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        # The token is left alone so the pending call-end timer still applies.
        ag.state = _WRAP_UP
        self._emit_state(a, round(t, 3), "wrap_up")

    def _on_talk_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls.pop(ag.call)
        ts = round(t, 3)
        ended: Event = {
            "type": "call_ended",
            "ts": ts,
            "id": "",
            "site": self.q_site_names[call.queue],
            "call_id": call.cid,
            "agent": self.a_ids[a],
        }
        if call.wrap_mode == 1:
            self._emit_state(a, ts, "wrap_up")
            ended["id"] = self._nid()
            self.out.append(ended)
        elif call.wrap_mode == 2:
            ended["id"] = self._nid()
            self.out.append(ended)
        else:
            ended["id"] = self._nid()
            self.out.append(ended)
            self._emit_state(a, ts, "wrap_up")
        ag.call = -1
        ag.state = _WRAP_UP
        ag.token += 1
        ch = self.q_channels[call.queue]
        wrap = self.rng.lognormvariate(math.log(ch.wrap_median_s), ch.wrap_sigma)
        self._push(t + wrap, _K_WRAP_END, a, ag.token)

    # -- agents ---------------------------------------------------------------------------

    def _on_wrap_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token == token:
            self._free(ag, t, missed=False)

    def _on_nr_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token == token:
            self._free(ag, t, missed=False)

    def _free(self, ag: _Agent, t: float, *, missed: bool) -> None:
        """The agent has no contact any more: log out, take a break or become available."""
        if ag.pending_logout:
            self._logout(ag, t)
        elif missed and self.rng.random() < self.spec.missed_not_ready_prob:
            dur = self.rng.lognormvariate(self.mu_missed, 0.6)
            self._not_ready(ag, t, "missed", dur)
        elif ag.pending_break is not None:
            reason, dur = ag.pending_break
            ag.pending_break = None
            self._not_ready(ag, t, reason, dur)
        else:
            self._available(ag, t, login=False)

    def _not_ready(self, ag: _Agent, t: float, reason: str, dur: float) -> None:
        ag.state = _NOT_READY
        ag.reason = reason
        ag.token += 1
        a = ag.idx
        self.out.append(
            {
                "type": "agent_state",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": self.a_ids[a],
                "state": "not_ready",
                "reason": reason,
            }
        )
        self._push(t + dur, _K_NR_END, a, ag.token)

    def _available(self, ag: _Agent, t: float, *, login: bool) -> None:
        ag.state = _AVAILABLE
        ag.reason = None
        ag.token += 1
        a = ag.idx
        ev: Event = {
            "type": "agent_state",
            "ts": round(t, 3),
            "id": self._nid(),
            "site": self.a_sites[a],
            "agent": self.a_ids[a],
            "state": "available",
        }
        info = self.infos[a]
        if login:
            ev["queues"] = [self.q_names[q] for q in info.skills]
            ev["team"] = info.team
            ev["name"] = info.name
        self.out.append(ev)

        # Take the best waiting contact over all skills: voice before chat before
        # email, then the one that has waited longest.
        best_q = -1
        best_key: tuple[int, float, int] | None = None
        calls = self.calls
        for q in info.skills:
            wq = self.waiting[q]
            while wq:
                _, num, leg = wq[0]
                c = calls.get(num)
                if c is not None and c.state == _WAITING and c.leg == leg and c.queue == q:
                    break
                heapq.heappop(wq)  # stale: answered elsewhere, abandoned or requeued
            if wq:
                key = (self.q_rank[q], wq[0][0], wq[0][1])
                if best_key is None or key < best_key:
                    best_key = key
                    best_q = q
        if best_q >= 0:
            _, num, _ = heapq.heappop(self.waiting[best_q])
            self._route(calls[num], ag, t)
            return
        entry = (t, a, ag.token)
        for q in info.skills:
            heapq.heappush(self.idle[q], entry)

    def _on_break(self, t: float, a: int, plan: int) -> None:
        reason, dur, shift_id = self.plans.pop(plan)
        ag = self.agents[a]
        if ag.shift_id != shift_id or ag.pending_logout:
            return
        state = ag.state
        if state == _AVAILABLE or (state == _NOT_READY and ag.reason == "missed"):
            self._not_ready(ag, t, reason, dur)
        elif state in (_RINGING, _ON_CALL, _WRAP_UP) and ag.pending_break is None:
            # Real agents finish the contact first; the break starts after wrap-up.
            ag.pending_break = (reason, dur)
        # Already on another break (or logged out): this one is skipped.

    def _on_login(self, t: float, a: int, day: int) -> None:
        ag = self.agents[a]
        if ag.state != _LOGGED_OUT:
            return
        spec = self.spec
        rng = self.rng
        shift_start = self._shift_start(a, day)
        shift_s = self.infos[a].shift_s
        ag.shift_id += 1
        ag.day = day
        ag.pending_break = None
        ag.pending_logout = False
        logout_at = shift_start + shift_s
        if rng.random() < spec.early_logout_prob:
            logout_at -= rng.uniform(300.0, 1200.0)
        logout_at = max(logout_at, t + 60.0)
        self._push(logout_at, _K_LOGOUT, a, ag.shift_id)

        overrun = spec.not_ready_overrun_prob
        for nr in spec.not_ready:
            if not nr.applies(shift_s):
                continue  # e.g. no lunch break in a short part-time shift
            if nr.at_fraction is not None:
                times = (
                    [shift_start + nr.at_fraction * shift_s + rng.uniform(-900.0, 900.0)]
                    if rng.random() < nr.per_shift
                    else []
                )
            else:
                times = [
                    shift_start + rng.uniform(0.05, 0.95) * shift_s
                    for _ in range(_poisson(rng, nr.per_shift))
                ]
            for at in times:
                dur = rng.lognormvariate(math.log(nr.median_s), nr.sigma)
                if rng.random() < overrun:
                    dur *= rng.uniform(1.5, 3.0)
                # Skip breaks already past at login and ones that would start in the
                # last minutes of the shift.
                if t < at < min(logout_at - 600.0, self.end):
                    self.n_plans += 1
                    self.plans[self.n_plans] = (nr.reason, dur, ag.shift_id)
                    self._push(at, _K_BREAK, a, self.n_plans)
        self._available(ag, t, login=True)

    def _on_logout(self, t: float, a: int, shift_id: int) -> None:
        ag = self.agents[a]
        if ag.shift_id != shift_id or ag.state == _LOGGED_OUT:
            return
        if ag.state in (_AVAILABLE, _NOT_READY):
            self._logout(ag, t)
        else:
            # Agents finish the contact in hand (and its wrap-up) before leaving.
            ag.pending_logout = True

    def _logout(self, ag: _Agent, t: float) -> None:
        ag.state = _LOGGED_OUT
        ag.reason = None
        ag.token += 1
        ag.pending_logout = False
        ag.pending_break = None
        self._emit_state(ag.idx, round(t, 3), "logged_out")
        self._schedule_login(ag.idx, ag.day + 1, t + 60.0)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by Knuth's method (fine for the small means used here)."""
    if mean <= 0.0:
        return 0
    limit = math.exp(-mean)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
