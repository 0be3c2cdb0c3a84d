"""The built floor: queues with their arrival rates, agents with skills, shifts and teams.

:func:`build_roster` plans a floor from a :class:`~callfloor.simulator.specs.SimulationSpec`
the way a workforce-management team would: the load each site's agents can serve at
the peak, shifts that follow the daily demand, primary skills shared out by workload
with a few extra skills, teams by primary skill. It draws from its own
``random.Random`` seeded from the spec, so the roster depends on the spec only.
:func:`config_toml` describes the built floor as a callfloor configuration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from callfloor.simulator.profile import (
    SLOT_S,
    lognormal_mean,
    peak_erlangs,
    plan_shifts,
    shift_demand,
    weighted_pick,
)
from callfloor.simulator.specs import SimulationSpec

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


@dataclass(frozen=True)
class Roster:
    """The queues and agents of a built floor, in index order."""

    queues: tuple[QueueInfo, ...]
    agents: tuple[AgentInfo, ...]


def build_roster(spec: SimulationSpec) -> Roster:
    """Plan the floor of ``spec``: queues, their peak rates, agents, skills, shifts, teams."""
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
        nr_s = n_full * expected_not_ready_s(spec, full_s)
        nr_s += n_part * expected_not_ready_s(spec, part_s)
        shrinkage = min(0.5, nr_s / max(agent_s, 1.0))
        margin = spec.staffing_margin
        peak = peak_erlangs(agent_s / SLOT_S, margin, shrinkage)
        shifts = plan_shifts([(full_s, n_full), (part_s, n_part)], peak, margin, shrinkage)
        rng.shuffle(shifts)  # agent numbers are not ordered by shift
        # Agents on quiet (night, late evening) shifts serve every queue of the
        # site: a handful of specialists could not cover twenty queues.
        generalist = [shift_demand(st, ln) < spec.generalist_demand for st, ln in shifts]
        skills = assign_skills(rng, site_queues, weights, spec.max_extra_skills, generalist)
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
    return Roster(tuple(queues), tuple(agents))


def assign_skills(
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


def expected_not_ready_s(spec: SimulationSpec, shift_s: float) -> float:
    """Mean not-ready time in one shift of this length."""
    overrun = 1.0 + spec.not_ready_overrun_prob * 1.25  # mean of U(1.5, 3) is 2.25
    return sum(
        nr.per_shift * lognormal_mean(nr.median_s, nr.sigma) * overrun
        for nr in spec.not_ready
        if nr.applies(shift_s)
    )


def config_toml(spec: SimulationSpec, queues: tuple[QueueInfo, ...]) -> str:
    """A callfloor configuration (SPEC §8 TOML) describing this floor's sites and queues."""
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
    for q in queues:
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
