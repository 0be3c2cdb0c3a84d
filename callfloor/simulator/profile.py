"""Daily demand profile, shift planning and the random distributions the floor uses.

Everything here is pure and deterministic: randomness always comes from a
``random.Random`` instance passed in by the caller, never from the global module.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SLOT_S = 900
"""Length of one piecewise-constant rate slot (15 minutes).

Every real time zone's UTC offset is a multiple of 15 minutes, so slots aligned to
UTC are also aligned to site-local quarter hours.
"""

SLOTS_PER_DAY = 86_400 // SLOT_S

# The profile is a sum of Gaussian bumps over a small night-time floor: a morning
# peak, a slightly lower and wider afternoon peak and an evening tail, with a dip
# over lunch between them. Gaussians keep the curve smooth, so neighbouring 15-minute
# slots differ only a little, as they do on a real floor.
_NIGHT_LEVEL = 0.03
_BUMPS: tuple[tuple[float, float, float], ...] = (
    # (centre hour, width in hours, height)
    (10.75, 1.8, 0.95),
    (14.75, 1.9, 0.85),
    (19.5, 1.6, 0.22),
)


def _raw_intensity(local_hour: float) -> float:
    value = _NIGHT_LEVEL
    for centre, width, height in _BUMPS:
        # Measure the distance around the clock so the curve is continuous at midnight.
        d = abs(local_hour - centre)
        d = min(d, 24.0 - d)
        value += height * math.exp(-0.5 * (d / width) ** 2)
    return value


_PEAK = max(_raw_intensity(i / 60.0) for i in range(24 * 60))


def demand_intensity(local_hour: float) -> float:
    """Relative contact demand at a site-local hour of day (0..24); 1.0 at the daily peak."""
    return _raw_intensity(local_hour % 24.0) / _PEAK


@functools.cache
def slot_profile() -> tuple[float, ...]:
    """Relative demand for each 15-minute slot of a local day, sampled at slot midpoints."""
    return tuple(demand_intensity((i + 0.5) * SLOT_S / 3600.0) for i in range(SLOTS_PER_DAY))


class SiteClock:
    """Maps epoch time to a site's local 15-minute slot, caching the zone look-ups."""

    __slots__ = ("_cache", "_profile", "zone")

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._profile = slot_profile()
        self._cache: dict[int, float] = {}

    def factor(self, utc_slot: int) -> float:
        """Relative demand (0..1] during the UTC-aligned slot ``utc_slot`` (= ts // 900)."""
        cached = self._cache.get(utc_slot)
        if cached is None:
            local = datetime.fromtimestamp(utc_slot * SLOT_S, UTC).astimezone(self.zone)
            local_slot = (local.hour * 3600 + local.minute * 60) // SLOT_S
            cached = self._profile[local_slot]
            self._cache[utc_slot] = cached
        return cached


def lognormal_mu(median: float) -> float:
    """The ``mu`` parameter of a lognormal distribution with this median."""
    return math.log(median)


def lognormal_mean(median: float, sigma: float) -> float:
    """Mean of a lognormal distribution given by its median and shape ``sigma``."""
    return median * math.exp(0.5 * sigma * sigma)


def required_staff(erlangs: float, margin: float, shrinkage: float) -> float:
    """Agents to schedule for an offered load, by the square-root staffing rule.

    ``erlangs + margin * sqrt(erlangs)`` agents keep the wait short (margin ~1 gives
    about 80 % in 20 s for a few tens of agents); a share ``shrinkage`` of scheduled
    time goes to breaks and other not-ready time, so more agents are scheduled.
    """
    return (erlangs + margin * math.sqrt(erlangs)) / (1.0 - shrinkage)


def peak_erlangs(agent_slots: float, margin: float, shrinkage: float) -> float:
    """Offered load at the daily peak that ``agent_slots`` scheduled 15-minute slots serve.

    Solves sum over the day's slots of required_staff(peak * profile) = agent_slots
    (bisection; the left side grows with the peak load).
    """
    profile = slot_profile()
    lo, hi = 0.0, max(1.0, agent_slots)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        need = sum(required_staff(mid * p, margin, shrinkage) for p in profile)
        if need < agent_slots:
            lo = mid
        else:
            hi = mid
    return lo


def plan_shifts(
    shift_types: Sequence[tuple[float, int]],
    peak: float,
    margin: float,
    shrinkage: float,
    *,
    step_s: int = 1800,
    max_moves: int = 4000,
) -> list[tuple[int, float]]:
    """Shifts ``(start, length)`` in seconds (start after site-local midnight).

    ``shift_types`` lists (shift length in seconds, number of agents). A small
    workforce-management plan: the target per 15-minute slot is
    :func:`required_staff` for the demand then (``peak`` Erlangs at the daily peak).
    The plan minimises the *relative* squared error sum((staffed - target)^2 / target),
    so that a thin evening is covered as carefully as the busy morning. It starts
    greedily (each agent takes the start that lowers the error most) and then moves
    single agents to another start time, keeping their shift length, while that
    still helps. Shorter (part-time) shifts are what lets a plan follow the sharp
    morning ramp.
    """
    profile = slot_profile()
    n_slots = SLOTS_PER_DAY
    target = [required_staff(peak * p, margin, shrinkage) for p in profile]
    weight = [1.0 / max(t, 0.5) for t in target]
    staffed = [0.0] * n_slots
    starts = list(range(0, n_slots, max(1, step_s // SLOT_S)))
    # Options are (shift type, start); moves stay within one shift type.
    windows: list[list[int]] = []
    opt_type: list[int] = []
    opt_start: list[int] = []
    for ti, (length_s, _) in enumerate(shift_types):
        length = max(1, min(n_slots, round(length_s / SLOT_S)))
        for st in starts:
            windows.append([(st + k) % n_slots for k in range(length)])
            opt_type.append(ti)
            opt_start.append(st)
    n_opt = len(windows)
    same_type = [[j for j in range(n_opt) if opt_type[j] == opt_type[i]] for i in range(n_opt)]
    # Static weight of the slots two shifts share, for the exact cost of a move.
    overlap: dict[tuple[int, int], float] = {}
    for i in range(n_opt):
        wi = set(windows[i])
        for j in same_type[i]:
            overlap[i, j] = sum(2.0 * weight[x] for x in wi.intersection(windows[j]))
    counts = [0] * n_opt

    def add_cost(i: int) -> float:
        # Change of the objective when one more agent works option i.
        return sum(weight[x] * (2.0 * (staffed[x] - target[x]) + 1.0) for x in windows[i])

    for ti, (_, n) in enumerate(shift_types):
        options = [i for i in range(n_opt) if opt_type[i] == ti]
        for _ in range(n):
            best = min(options, key=add_cost)
            counts[best] += 1
            for x in windows[best]:
                staffed[x] += 1.0

    for _ in range(max_moves):
        add = [add_cost(i) for i in range(n_opt)]
        remove = [
            sum(weight[x] * (1.0 - 2.0 * (staffed[x] - target[x])) for x in windows[i])
            for i in range(n_opt)
        ]
        best_delta = -1e-9
        move: tuple[int, int] | None = None
        for i, c in enumerate(counts):
            if not c:
                continue
            for j in same_type[i]:
                if j != i:
                    delta = remove[i] + add[j] - overlap[i, j]
                    if delta < best_delta:
                        best_delta = delta
                        move = (i, j)
        if move is None:
            break
        i, j = move
        counts[i] -= 1
        counts[j] += 1
        for x in windows[i]:
            staffed[x] -= 1.0
        for x in windows[j]:
            staffed[x] += 1.0

    return [
        (opt_start[i] * SLOT_S, shift_types[opt_type[i]][0])
        for i, c in enumerate(counts)
        for _ in range(c)
    ]


def shift_demand(start_s: int, shift_s: float) -> float:
    """Mean relative demand over a shift starting ``start_s`` after local midnight."""
    profile = slot_profile()
    first = start_s // SLOT_S
    n = max(1, round(shift_s / SLOT_S))
    return sum(profile[(first + k) % SLOTS_PER_DAY] for k in range(n)) / n


def weighted_pick(rng: random.Random, weights: Sequence[float]) -> int:
    """Index drawn with probability proportional to ``weights``."""
    total = sum(weights)
    x = rng.random() * total
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if x < acc:
            return i
    return len(weights) - 1
