"""Erlang B, Erlang C and Erlang A staffing mathematics.

Pure, deterministic functions on floats: no I/O, no clocks, standard library only.
Units: rates are per second, times are seconds, loads are Erlangs (rate x AHT).

Models
------
* **Erlang C** (M/M/n): callers wait forever.  Closed forms from the Erlang B
  recursion; the queue is unstable when ``n <= load`` and the functions then
  return the limiting values (everyone waits, nobody is answered in time).
* **Erlang A** (M/M/n+M, Palm 1943; Garnett, Mandelbaum & Reiman 2002, "Designing a
  call center with impatient customers", MSOM 4(3)): callers abandon after an
  exponential patience with mean ``patience_s``.  Abandonment keeps the queue
  stable for every ``n``, so fewer agents than the offered load can still meet a
  (low) target.

Every Erlang A quantity here is an exact sum over the stationary distribution of
the birth-death chain (arrivals ``lambda``; departures ``min(k, n)*mu +
max(k - n, 0)*theta``), computed in log space with running ratios so that
thousands of agents neither overflow nor underflow.  The derivation of the
waiting-time terms is written next to the code in :func:`erlang_a`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

__all__ = [
    "ErlangAResult",
    "asa_c",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "least_agents_a",
    "least_agents_c",
    "required_agents_a",
    "required_agents_c",
    "scheduled_agents",
    "service_level_c",
]

DEFAULT_MAX_AGENTS: Final[int] = 100_000

# Queue states whose stationary weight is below exp(-40) ~ 4e-18 of the largest
# weight cannot move any result in the 15th significant digit, so the chain is
# truncated there.
_LOG_TOLERANCE: Final[float] = 40.0

# A guard, not a tuning knob: the chain has to be summed up to roughly
# (arrival rate - n*mu) / theta queue states.  Only absurd inputs (hours of
# patience on a floor overloaded by hundreds of Erlangs) get near this, and
# refusing is better than silently looping for minutes.
_MAX_QUEUE_STATES: Final[int] = 5_000_000

# scheduled_agents: ratios within this relative distance above an integer are
# float noise (e.g. 14 / (1 - 0.30000000000000004)), not a real fraction of an agent.
_SCHEDULE_REL_TOL: Final[float] = 1e-9


# --------------------------------------------------------------------------- checks


def _check_agents(n: int, name: str = "n") -> None:
    if n < 0:
        raise ValueError(f"{name} must be >= 0 (got {n})")


def _check_non_negative(value: float, name: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (got {value})")


def _check_positive(value: float, name: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (got {value})")


def _check_target(target: float) -> None:
    # A target of 0 is met by zero agents and is almost certainly a typo for a
    # percentage; above 1 can never be met.  Both are rejected rather than guessed.
    if not (0.0 < target <= 1.0):
        raise ValueError(f"target must be in (0, 1] (got {target})")


def _check_max_agents(max_agents: int) -> None:
    if max_agents < 1:
        raise ValueError(f"max_agents must be >= 1 (got {max_agents})")


# -------------------------------------------------------------------- Erlang B / C


def erlang_b(n: int, load: float) -> float:
    """Return the Erlang B blocking probability for ``n`` servers and ``load`` Erlangs.

    Uses the recursion ``B(0) = 1``, ``B(k) = A*B(k-1) / (k + A*B(k-1))``: every
    intermediate value is a probability, so it neither overflows nor needs
    factorials, and it is exact to rounding at thousands of servers.
    """
    _check_agents(n)
    _check_non_negative(load, "load")
    b = 1.0
    for k in range(1, n + 1):
        ab = load * b
        b = ab / (k + ab)
    return b


def _c_from_b(n: int, load: float, b: float) -> float:
    """Erlang C from Erlang B at the same ``n``; only valid for ``n > load``."""
    # C = n*B / (n - A*(1 - B)); the denominator is >= n - A > 0 for a stable queue.
    return min(1.0, n * b / (n - load * (1.0 - b)))


def _sl_from_c(n: int, load: float, c: float, threshold_s: float, aht_s: float) -> float:
    """Erlang C service level from the waiting probability; only for ``n > load``."""
    # Waits of delayed callers are exponential with rate (n - A)/AHT.
    sl = 1.0 - c * math.exp(-(n - load) * threshold_s / aht_s)
    return min(1.0, max(0.0, sl))


def erlang_c(n: int, load: float) -> float:
    """Return the Erlang C probability that an arriving caller has to wait.

    Computed from Erlang B as ``C = n*B / (n - A*(1 - B))``.  When ``n <= load``
    the M/M/n queue has no steady state (it grows without bound) and every caller
    eventually waits, so the limiting value 1.0 is returned; ``n = 0`` is a
    special case of that.
    """
    _check_agents(n)
    _check_non_negative(load, "load")
    if n <= load:
        return 1.0
    return _c_from_b(n, load, erlang_b(n, load))


def service_level_c(n: int, load: float, threshold_s: float, aht_s: float) -> float:
    """Return the Erlang C share of callers answered within ``threshold_s`` seconds.

    ``SL = 1 - C(n, A) * exp(-(n - A) * T / AHT)``.  Returns 0.0 when
    ``n <= load``: an unstable queue's waits grow without bound, so in the long
    run nobody is answered in time.
    """
    _check_agents(n)
    _check_non_negative(load, "load")
    _check_non_negative(threshold_s, "threshold_s")
    _check_positive(aht_s, "aht_s")
    if n <= load:
        return 0.0
    return _sl_from_c(n, load, erlang_c(n, load), threshold_s, aht_s)


def asa_c(n: int, load: float, aht_s: float) -> float:
    """Return the Erlang C mean wait in seconds, averaged over *all* arrivals.

    ``ASA = C * AHT / (n - A)`` (callers answered at once count as 0 s).  Returns
    ``math.inf`` when ``n <= load`` because the queue is unstable.
    """
    _check_agents(n)
    _check_non_negative(load, "load")
    _check_positive(aht_s, "aht_s")
    if n <= load:
        return math.inf
    return erlang_c(n, load) * aht_s / (n - load)


def least_agents_c(
    load: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> int | None:
    """Return the least ``n > load`` whose Erlang C service level is ``>= target``, or
    ``None`` when no ``n <= max_agents`` meets it (the search limit).

    One incremental pass: Erlang B is carried forward from ``n - 1`` to ``n``, so
    the cost is O(answer) rather than O(answer^2); this runs once per queue per
    second on a live floor.  A load of ``max_agents`` Erlangs or more needs more
    than ``max_agents`` agents, so that answer is immediate.

    With ``load == 0`` every ``n >= 1`` answers everyone at once, so the answer is
    1 (the least integer greater than the load; zero agents never "serve" an empty
    queue in this model).
    """
    _check_non_negative(load, "load")
    _check_positive(aht_s, "aht_s")
    _check_non_negative(threshold_s, "threshold_s")
    _check_target(target)
    _check_max_agents(max_agents)
    if load >= max_agents:
        return None
    b = 1.0  # B(0, A)
    for n in range(1, max_agents + 1):
        ab = load * b
        b = ab / (n + ab)  # B(n, A): same recursion and rounding as erlang_b
        if n > load:
            sl = _sl_from_c(n, load, _c_from_b(n, load, b), threshold_s, aht_s)
            if sl >= target:
                return n
    return None


def required_agents_c(
    load: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> int:
    """Return :func:`least_agents_c`, or ``max_agents`` when the target is not met there.

    The capped form cannot tell "exactly ``max_agents``" from "more than that";
    callers that show the number to people should use :func:`least_agents_c` and
    treat ``None`` as "beyond the search limit".
    """
    n = least_agents_c(load, aht_s, threshold_s, target, max_agents)
    return max_agents if n is None else n


# -------------------------------------------------------------------------- Erlang A


@dataclass(frozen=True, slots=True)
class ErlangAResult:
    """Steady-state Erlang A (M/M/n+M) measures for one staffing level.

    Attributes:
        p_wait: probability that an arriving caller finds every agent busy.
        p_abandon: probability that an arriving caller hangs up before an answer.
        asa_s: mean time in queue over *all* arrivals, in seconds: answered
            callers count their wait, abandoned callers their time until hanging
            up, callers answered at once 0 s.  Equals ``E[queue length] / rate``
            (Little), and tends to Erlang C's ASA as patience grows.
        service_level: ``P(answered and wait <= T)`` over *offered* calls;
            abandoned callers are never in SL, even if they hung up before T.
        occupancy: carried load per agent, ``A * (1 - p_abandon) / n`` (0.0 when
            ``n == 0``).
    """

    p_wait: float
    p_abandon: float
    asa_s: float
    service_level: float
    occupancy: float


def _log_inv_erlang_b(n: int, load: float) -> float:
    """Return ``log(1 / B(n, A))`` for ``load > 0`` without under- or overflow.

    ``1/B(k) = 1 + (k/A) / B(k-1)``; in logs that is a softplus step.  The plain
    recursion in :func:`erlang_b` underflows to 0 once B < 1e-308 (n far above A),
    and Erlang A needs the *ratio* of B to queue weights, so it works in logs.
    """
    y = 0.0
    log_load = math.log(load)
    for k in range(1, n + 1):
        z = math.log(k) - log_load + y
        y = z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    return y


def _log1mexp(y: float) -> float:
    """Return ``log(1 - exp(-y))`` for ``y > 0``, accurate for small and large ``y``."""
    # Maechler (2012): expm1 is exact near 0, log1p is exact for large y.
    return math.log(-math.expm1(-y)) if y < math.log(2.0) else math.log1p(-math.exp(-y))


def _negative_binomial_tails(b: float, theta_t: float, count: int) -> list[float]:
    """Return ``[P(J >= 1), ..., P(J >= count)]`` for the negative binomial ``J``.

    ``P(J = j) = G(j+b) / (j! G(b)) * x^j * (1-x)^b`` with ``x = 1 - exp(-theta_t)``
    and ``b >= 1``.  ``P(J = 0) = exp(-b*theta_t)`` can be far below 1e-308 and the
    log-pmf climbs back up by thousands, so the log is accumulated with Neumaier
    compensation (plain addition would leave relative errors near 1e-9 in the
    tails).  Tails near 1 come from the running CDF; once the CDF passes 1/2
    they are re-summed from the far end and renormalised, so that small tails keep
    their relative accuracy instead of being ``1 - (1 - tiny)``.
    """
    if count <= 0:
        return []
    if theta_t <= 0.0 or math.expm1(-theta_t) == 0.0:
        return [0.0] * count  # T == 0 (or underflows): nobody queued is answered in time
    log_x = _log1mexp(theta_t)
    log_p, comp = -b * theta_t, 0.0  # log P(J = 0) = b * log(1 - x), and its error term
    pmf: list[float] = []
    cdf = 0.0
    cdfs: list[float] = []
    j = 0
    while True:
        if j > 0:
            step = log_x + math.log(j - 1 + b) - math.log(j)  # log P(J=j)/P(J=j-1)
            total = log_p + step
            if abs(log_p) >= abs(step):
                comp += (log_p - total) + step
            else:
                comp += (step - total) + log_p
            log_p = total
        p = math.exp(log_p + comp)
        pmf.append(p)
        cdf += p
        j += 1
        if j <= count:
            cdfs.append(cdf)
            if j == count and cdf < 0.5:
                return [max(0.0, 1.0 - c) for c in cdfs]
        elif step < 0.0:
            # Past the mode the ratio P(J=j+1)/P(J=j) only falls (b >= 1), so the
            # mass beyond j is at most p*q/(1-q), q = exp(step).
            q = math.exp(step)
            if p * q / -math.expm1(step) < 1e-20 * cdf:
                break
        if j > count + _MAX_QUEUE_STATES:
            raise ValueError("service-level threshold too long to evaluate for this queue")
    suffix = 0.0
    tails_from: list[float] = [0.0] * (len(pmf) + 1)  # tails_from[j] ~ P(J >= j)
    for i in range(len(pmf) - 1, -1, -1):
        suffix += pmf[i]
        tails_from[i] = suffix
    norm = tails_from[0]
    return [min(1.0, tails_from[k] / norm) for k in range(1, count + 1)]


def erlang_a(
    n: int,
    rate_per_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
) -> ErlangAResult:
    """Return the exact Erlang A (M/M/n+M) measures for ``n`` agents.

    Callers arrive at ``rate_per_s`` (Poisson), talk for an exponential time with
    mean ``aht_s``, and hang up after an exponential patience with mean
    ``patience_s`` unless answered first; service is first come, first served.
    ``service_level`` counts callers answered within ``threshold_s`` over all
    offered callers, so abandoned callers are never in SL.  See
    :class:`ErlangAResult` for every field.  With ``rate_per_s == 0`` the limits
    as the rate tends to 0 are returned.

    Raises:
        ValueError: on invalid input, or if the queue is so long (enormous
            patience on a heavily overloaded floor) that the chain cannot be
            summed in reasonable time.
    """
    _check_agents(n)
    _check_non_negative(rate_per_s, "rate_per_s")
    _check_positive(aht_s, "aht_s")
    _check_positive(patience_s, "patience_s")
    _check_non_negative(threshold_s, "threshold_s")

    if n == 0:
        # No agents: every caller queues and leaves after its own patience, so the
        # mean time in queue is exactly the mean patience (also the limit as the
        # rate tends to 0).  Closed form, because the general sums would give
        # 1 - 1e-16 instead of exactly 1.
        return ErlangAResult(1.0, 1.0, patience_s, 0.0, 0.0)
    if rate_per_s == 0.0:
        # Limit as the rate tends to 0: the rare caller is answered at once.
        return ErlangAResult(0.0, 0.0, 0.0, 1.0, 0.0)

    lam = rate_per_s
    mu = 1.0 / aht_s
    theta = 1.0 / patience_s
    load = lam * aht_s
    n_mu = n * mu

    # Stationary weights relative to pi_n.  Below n the chain is Erlang's: the
    # states 0..n together weigh 1/B(n, A).  Above n, with k callers queued,
    # pi_{n+k} / pi_n = prod_{j=1..k} lam / (n*mu + j*theta).
    log_inv_b = _log_inv_erlang_b(n, load)
    log_lam = math.log(lam)
    log_r = [0.0]  # log(pi_{n+k} / pi_n) for k = 0, 1, ...
    peak = 0.0
    k = 0
    while True:
        k += 1
        step = log_lam - math.log(n_mu + k * theta)
        lr = log_r[-1] + step
        log_r.append(lr)
        peak = max(peak, lr)
        if step < 0.0:
            # Past the mode the ratios only shrink, so the tail (even weighted by
            # queue length, for E[Q]) is below r_k * (k+1) / (1-q)^2 with
            # q = exp(step).  Stop once that is negligible next to the total.
            log_tail = lr + math.log(k + 1) - 2.0 * math.log1p(-math.exp(step))
            if log_tail < max(peak, log_inv_b) - _LOG_TOLERANCE:
                break
        if k >= _MAX_QUEUE_STATES:
            raise ValueError(
                "Erlang A queue too long to evaluate "
                f"(n={n}, rate_per_s={rate_per_s}, patience_s={patience_s})"
            )

    # Normaliser Z = 1/B + sum_{k>=1} r_k, as a log-sum-exp.
    m = max(peak, log_inv_b)
    z = math.exp(log_inv_b - m) + math.fsum(math.exp(v - m) for v in log_r[1:])
    log_z = m + math.log(z)
    # P(k < n) = (1/B - 1) / Z, with 1/B - 1 written as e^y * (1 - e^-y).
    p_no_wait = math.exp(log_inv_b - log_z) * -math.expm1(-log_inv_b)

    # Waiting-time terms.  A caller who arrives when k callers are queued (PASTA:
    # with probability pi_{n+k}) has k callers ahead.  While m callers are ahead,
    # the queue ahead of it shrinks at rate n*mu + m*theta (an answer at the head,
    # or one of the m abandoning); callers behind it do not matter (FCFS).  So its
    # offered wait V is a sum of exponentials with rates n*mu + m*theta,
    # m = k..0, and it is answered iff its own patience tau ~ Exp(theta) exceeds V:
    #   P(answered | k)          = E[e^{-theta V}] = n*mu / (n*mu + (k+1)*theta)
    #                              (the product telescopes),
    #   P(answered, V <= T | k)  = E[e^{-theta V}; V <= T]
    #                            = n*mu / (n*mu + (k+1)*theta) * P(V' <= T),
    # where V' (the exponentially tilted V) is a sum of exponentials with rates
    # theta*(c + m), m = 1..k+1, c = n*mu/theta.  Such a sum is distributed as
    # -log(1 - X)/theta with X ~ Beta(k+1, c+1) (check the Laplace transforms), so
    #   P(V' <= T) = I_x(k+1, c+1) = P(J >= k+1),  x = 1 - e^{-theta*T},
    # where J is negative binomial: P(J = j) = G(j+b)/(j! G(b)) x^j (1-x)^b, b = c+1.
    # As theta -> 0, J tends to Poisson(n*mu*T) (answers within T) and every
    # term reduces to Erlang C's.  Checked against a discrete-event simulation.
    tails = _negative_binomial_tails(n_mu / theta + 1.0, theta * threshold_s, len(log_r))
    p_wait = 0.0
    queue_mean = 0.0
    p_abandon = 0.0
    sl_queued = 0.0
    for k, lr in enumerate(log_r):
        pk = math.exp(lr - log_z)  # pi_{n+k}: probability of arriving to k queued
        p_wait += pk
        queue_mean += k * pk
        aband = (k + 1) * theta
        p_abandon += pk * (aband / (n_mu + aband))
        sl_queued += pk * (n_mu / (n_mu + aband)) * tails[k]

    def unit(v: float) -> float:
        return min(1.0, max(0.0, v))

    if p_wait > 0.5:
        # A large p_wait is more accurate as the complement of the (then small)
        # no-wait share; a small one is more accurate as the direct sum.
        p_wait = 1.0 - p_no_wait
    return ErlangAResult(
        p_wait=unit(p_wait),
        p_abandon=unit(p_abandon),
        asa_s=queue_mean / lam,
        service_level=unit(p_no_wait + sl_queued),
        occupancy=unit(load * (1.0 - p_abandon) / n) if n > 0 else 0.0,
    )


def least_agents_a(
    rate_per_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    target: float,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> int | None:
    """Return the least ``n`` whose Erlang A service level is ``>= target``, or ``None``
    when no ``n <= max_agents`` meets it (the search limit).

    Unlike Erlang C the answer may be at or below the offered load, because
    abandonment keeps the queue stable.  The service level grows with ``n`` (a
    sample-path coupling argument; also property-tested), so this gallops upward
    from a proven lower bound and then bisects: O(log) calls to :func:`erlang_a`.
    """
    _check_non_negative(rate_per_s, "rate_per_s")
    _check_positive(aht_s, "aht_s")
    _check_positive(patience_s, "patience_s")
    _check_non_negative(threshold_s, "threshold_s")
    _check_target(target)
    _check_max_agents(max_agents)
    load = rate_per_s * aht_s

    def meets(n: int) -> bool:
        return erlang_a(n, rate_per_s, aht_s, patience_s, threshold_s).service_level >= target

    # Lower bound: answered traffic is the carried load, which is below n (agents
    # are sometimes idle), so SL < n/A and any n < target*A fails.  One agent of
    # slack keeps rounding from mattering.  This also keeps the search away from
    # badly overloaded n, where the chain is long.
    lo = max(0, math.floor(target * load) - 1)  # known to fail
    if lo >= max_agents:
        return None
    hi = min(max_agents, max(lo + 1, math.ceil(load)))
    step = max(1, math.isqrt(max(1, math.ceil(load))))
    while not meets(hi):
        if hi >= max_agents:
            return None
        lo = hi
        hi = min(max_agents, hi + step)
        step *= 2
    # Invariant: lo fails, hi meets.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi


def required_agents_a(
    rate_per_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    target: float,
    max_agents: int = DEFAULT_MAX_AGENTS,
) -> int:
    """Return :func:`least_agents_a`, or ``max_agents`` when the target is not met there."""
    n = least_agents_a(rate_per_s, aht_s, patience_s, threshold_s, target, max_agents)
    return max_agents if n is None else n


# ------------------------------------------------------------------------- shrinkage


def scheduled_agents(required: int, shrinkage: float) -> int:
    """Return ``ceil(required / (1 - shrinkage))``: agents to roster for ``required``.

    ``shrinkage`` (breaks, training, absence) must be in [0, 1).  The division is
    done in exact rational arithmetic on the shortest decimal form of
    ``shrinkage`` (what a person typed, e.g. ``0.3`` rather than its binary
    approximation), and a ratio within 1e-9 (relative) above an integer is taken
    as that integer, so ``scheduled_agents(14, 0.3) == 20``, not 21.
    """
    if required < 0:
        raise ValueError(f"required must be >= 0 (got {required})")
    if not (math.isfinite(shrinkage) and 0.0 <= shrinkage < 1.0):
        raise ValueError(f"shrinkage must be in [0, 1) (got {shrinkage})")
    ratio = Fraction(required) / (1 - Fraction(repr(shrinkage)))
    floor = math.floor(ratio)
    if ratio - floor <= ratio * Fraction(_SCHEDULE_REL_TOL):
        return floor
    return floor + 1
