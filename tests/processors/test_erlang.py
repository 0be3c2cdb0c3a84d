"""Tests for callfloor.processors.erlang: Erlang B/C/A staffing mathematics."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.processors.erlang import (
    ErlangAResult,
    asa_c,
    erlang_a,
    erlang_b,
    erlang_c,
    least_agents_a,
    least_agents_c,
    required_agents_a,
    required_agents_c,
    scheduled_agents,
    service_level_c,
)

# The worked example: 100 calls per 30 minutes, AHT 180 s -> 10 Erlangs.
RATE = 100 / 1800
AHT = 180.0
LOAD = RATE * AHT

loads = st.floats(min_value=0.0, max_value=300.0, allow_nan=False)
ahts = st.floats(min_value=5.0, max_value=1200.0)
thresholds = st.floats(min_value=0.0, max_value=300.0)
targets = st.floats(min_value=0.05, max_value=0.99)
patiences = st.floats(min_value=5.0, max_value=3000.0)

FAST = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------ references
# Independent textbook formulas, only usable for small n (factorials overflow).


def textbook_erlang_b(n: int, load: float) -> float:
    terms = [load**k / math.factorial(k) for k in range(n + 1)]
    return terms[-1] / math.fsum(terms)


def textbook_erlang_c(n: int, load: float) -> float:
    top = load**n / math.factorial(n) * n / (n - load)
    return top / (math.fsum(load**k / math.factorial(k) for k in range(n)) + top)


def reference_erlang_a(
    n: int, rate: float, aht: float, patience: float, threshold: float, k_max: int = 150
) -> tuple[float, float, float]:
    """(p_wait, p_abandon, service_level) by brute force, sharing no code with erlang_a.

    Stationary weights from plain products over a truncated chain; the chance that a
    caller arriving to k queued is answered within T comes from uniformising the
    small absorbing chain "callers ahead of me" instead of the incomplete-beta form.
    """
    mu, theta = 1.0 / aht, 1.0 / patience
    weights = [1.0]
    for k in range(1, n + k_max + 1):
        weights.append(weights[-1] * rate / (min(k, n) * mu + max(k - n, 0) * theta))
    total = math.fsum(weights)
    pi = [w / total for w in weights]
    p_wait = math.fsum(pi[n:])
    p_abandon = math.fsum(
        pi[n + k] * (k + 1) * theta / (n * mu + (k + 1) * theta) for k in range(k_max)
    )
    sl = math.fsum(pi[:n])
    for k in range(k_max):
        if pi[n + k] < 1e-15:
            continue
        uni = n * mu + (k + 1) * theta  # uniformisation rate >= every exit rate
        # state m = callers ahead (k..0); index k+1 = answered; abandoned is dropped.
        dist = [0.0] * (k + 2)
        dist[k] = 1.0
        poisson = math.exp(-uni * threshold)
        answered = 0.0
        j = 0
        while True:
            answered += poisson * dist[k + 1]
            j += 1
            if j > uni * threshold + 20 * math.sqrt(uni * threshold + 1) + 20:
                break
            poisson *= uni * threshold / j
            new = [0.0] * (k + 2)
            new[k + 1] = dist[k + 1]
            for m in range(k + 1):
                advance = (n * mu + m * theta) / uni
                stay = 1.0 - advance - theta / uni
                new[m] += dist[m] * stay
                new[m - 1 if m > 0 else k + 1] += dist[m] * advance
            dist = new
        sl += pi[n + k] * answered
    return p_wait, p_abandon, sl


# -------------------------------------------------------------------- Erlang B


@FAST
@given(n=st.integers(0, 60), load=st.floats(0.0, 80.0))
def test_erlang_b_matches_textbook_formula(n: int, load: float) -> None:
    """The stable recursion agrees with the factorial formula where that one works."""
    assert erlang_b(n, load) == pytest.approx(textbook_erlang_b(n, load), rel=1e-9, abs=1e-300)


def test_erlang_b_zero_servers_blocks_everyone() -> None:
    """With no servers every call is blocked."""
    assert erlang_b(0, 3.5) == 1.0


def test_erlang_b_zero_load_blocks_nobody() -> None:
    """With no traffic nothing is blocked once there is a server."""
    assert erlang_b(5, 0.0) == 0.0


def test_erlang_b_is_finite_at_thousands_of_servers() -> None:
    """n = 5000 neither overflows nor returns NaN."""
    b = erlang_b(5000, 4800.0)
    assert 0.0 < b < 1.0


def test_erlang_b_rejects_negative_servers() -> None:
    """A negative server count is a caller bug and raises ValueError."""
    with pytest.raises(ValueError, match="n must be >= 0"):
        erlang_b(-1, 1.0)


# -------------------------------------------------------------------- Erlang C


def test_erlang_c_worked_example() -> None:
    """14 agents at 10 Erlangs wait with probability 0.1741."""
    assert round(erlang_c(14, LOAD), 4) == 0.1741


@FAST
@given(n=st.integers(1, 60), frac=st.floats(0.0, 0.999))
def test_erlang_c_matches_textbook_formula(n: int, frac: float) -> None:
    """C from B agrees with the factorial form of Erlang C for stable queues."""
    load = n * frac
    assert erlang_c(n, load) == pytest.approx(textbook_erlang_c(n, load), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n", "load"), [(0, 0.0), (0, 2.0), (5, 5.0), (5, 7.5)])
def test_erlang_c_unstable_queue_always_waits(n: int, load: float) -> None:
    """n <= load (including n = 0) gives probability of waiting 1.0."""
    assert erlang_c(n, load) == 1.0


@FAST
@given(n=st.integers(0, 400), load=loads)
def test_erlang_c_is_a_probability(n: int, load: float) -> None:
    """Erlang C stays within [0, 1] and is at least Erlang B."""
    c = erlang_c(n, load)
    assert 0.0 <= c <= 1.0
    assert c >= erlang_b(n, load) - 1e-15


# -------------------------------------------------------------- service level C


def test_service_level_c_worked_example() -> None:
    """14 agents at 10 Erlangs answer 88.84% within 20 s."""
    assert round(service_level_c(14, LOAD, 20.0, AHT), 4) == 0.8884


def test_service_level_c_unstable_is_zero() -> None:
    """n <= load gives service level 0.0."""
    assert service_level_c(10, 10.0, 20.0, AHT) == 0.0


def test_service_level_c_zero_threshold_is_no_wait_share() -> None:
    """With T = 0 the service level is the share answered at once, 1 - C."""
    assert service_level_c(14, LOAD, 0.0, AHT) == pytest.approx(1.0 - erlang_c(14, LOAD))


@FAST
@given(n=st.integers(0, 400), load=loads, threshold=thresholds, aht=ahts)
def test_service_level_c_is_a_probability(
    n: int, load: float, threshold: float, aht: float
) -> None:
    """Service level stays within [0, 1]."""
    assert 0.0 <= service_level_c(n, load, threshold, aht) <= 1.0


@FAST
@given(n=st.integers(0, 400), load=loads, threshold=thresholds, aht=ahts)
def test_service_level_c_non_decreasing_in_agents(
    n: int, load: float, threshold: float, aht: float
) -> None:
    """Adding an agent never lowers the Erlang C service level."""
    assert service_level_c(n + 1, load, threshold, aht) >= service_level_c(n, load, threshold, aht)


# ----------------------------------------------------------------------- ASA C


def test_asa_c_worked_example() -> None:
    """14 agents at 10 Erlangs have a mean wait over all calls of 7.836 s."""
    assert round(asa_c(14, LOAD, AHT), 3) == 7.836


def test_asa_c_unstable_is_infinite() -> None:
    """n <= load gives an infinite mean wait."""
    assert asa_c(9, LOAD, AHT) == math.inf


# ----------------------------------------------------------- required agents C


def test_required_agents_c_worked_example() -> None:
    """10 Erlangs, 80% in 20 s with AHT 180 s needs 14 agents."""
    assert required_agents_c(LOAD, AHT, 20.0, 0.8) == 14


@FAST
@given(load=loads, aht=ahts, threshold=thresholds, target=targets)
def test_required_agents_c_is_minimal(
    load: float, aht: float, threshold: float, target: float
) -> None:
    """The answer exceeds the load and meets the target, and one agent fewer does not."""
    n = required_agents_c(load, aht, threshold, target)
    assert n > load
    assert service_level_c(n, load, threshold, aht) >= target
    assert n - 1 <= load or service_level_c(n - 1, load, threshold, aht) < target


def test_required_agents_c_zero_load_needs_one_agent() -> None:
    """With no traffic the least agent count above the load is 1."""
    assert required_agents_c(0.0, AHT, 20.0, 0.99) == 1


def test_required_agents_c_unreachable_target_returns_cap() -> None:
    """A target not met by max_agents returns max_agents."""
    assert required_agents_c(LOAD, AHT, 20.0, 1.0, max_agents=30) == 30


def test_required_agents_c_handles_two_thousand_agents() -> None:
    """1,900 Erlangs staff to a finite count just above the load."""
    n = required_agents_c(1900.0, AHT, 20.0, 0.8)
    assert 1900 < n < 2000
    assert 0.8 <= service_level_c(n, 1900.0, 20.0, AHT) <= 1.0


@pytest.mark.parametrize("target", [0.0, -0.1, 1.01, math.nan])
def test_required_agents_c_rejects_bad_target(target: float) -> None:
    """Targets outside (0, 1] raise ValueError."""
    with pytest.raises(ValueError, match="target"):
        required_agents_c(LOAD, AHT, 20.0, target)


def test_required_agents_c_rejects_negative_load() -> None:
    """A negative load is a caller bug and raises ValueError."""
    with pytest.raises(ValueError, match="load"):
        required_agents_c(-1.0, AHT, 20.0, 0.8)


# -------------------------------------------------------------------- Erlang A


@pytest.mark.parametrize(
    ("n", "rate", "aht", "patience", "threshold"),
    [
        (14, RATE, AHT, 120.0, 20.0),
        (8, RATE, AHT, 120.0, 20.0),
        (3, 0.05, 100.0, 200.0, 10.0),
        (0, 0.02, 100.0, 50.0, 10.0),
    ],
)
def test_erlang_a_matches_brute_force_reference(
    n: int, rate: float, aht: float, patience: float, threshold: float
) -> None:
    """p_wait, p_abandon and service level agree with a brute-force chain solution."""
    res = erlang_a(n, rate, aht, patience, threshold)
    p_wait, p_abandon, sl = reference_erlang_a(n, rate, aht, patience, threshold)
    assert res.p_wait == pytest.approx(p_wait, abs=1e-9)
    assert res.p_abandon == pytest.approx(p_abandon, abs=1e-9)
    assert res.service_level == pytest.approx(sl, abs=1e-9)


@pytest.mark.parametrize(("n", "threshold"), [(11, 20.0), (14, 20.0), (14, 0.0), (20, 60.0)])
def test_erlang_a_converges_to_erlang_c_without_abandonment(n: int, threshold: float) -> None:
    """With patience 1e12 s Erlang A reproduces Erlang C's wait, ASA and service level."""
    # The model difference shrinks linearly with 1/patience (about 4e-9 relative here).
    res = erlang_a(n, RATE, AHT, 1e12, threshold)
    assert res.p_wait == pytest.approx(erlang_c(n, LOAD), rel=1e-8)
    assert res.asa_s == pytest.approx(asa_c(n, LOAD, AHT), rel=1e-7)
    assert res.service_level == pytest.approx(service_level_c(n, LOAD, threshold, AHT), rel=1e-8)
    assert res.p_abandon < 1e-9


@FAST
@given(n=st.integers(0, 60), rate=st.floats(0.001, 0.5), aht=ahts, patience=patiences)
def test_erlang_a_abandonment_obeys_little(
    n: int, rate: float, aht: float, patience: float
) -> None:
    """p_abandon equals theta * E[queue] / lambda, i.e. asa_s / patience."""
    res = erlang_a(n, rate, aht, patience, 20.0)
    assert res.p_abandon == pytest.approx(res.asa_s / patience, rel=1e-9, abs=1e-15)


@FAST
@given(
    n=st.integers(0, 80),
    rate=st.floats(0.0, 0.5),
    aht=ahts,
    patience=patiences,
    threshold=thresholds,
)
def test_erlang_a_measures_are_consistent_probabilities(
    n: int, rate: float, aht: float, patience: float, threshold: float
) -> None:
    """All probabilities lie in [0, 1], abandons need a wait, and abandoners are never in SL."""
    res = erlang_a(n, rate, aht, patience, threshold)
    for p in (res.p_wait, res.p_abandon, res.service_level, res.occupancy):
        assert 0.0 <= p <= 1.0
    assert res.p_abandon <= res.p_wait + 1e-12
    assert res.service_level <= 1.0 - res.p_abandon + 1e-12
    assert math.isfinite(res.asa_s) and res.asa_s >= 0.0


@FAST
@given(n=st.integers(1, 60), rate=st.floats(0.001, 0.5), aht=ahts, patience=patiences)
def test_erlang_a_zero_threshold_is_no_wait_share(
    n: int, rate: float, aht: float, patience: float
) -> None:
    """With T = 0 the service level is the share answered at once, 1 - p_wait."""
    res = erlang_a(n, rate, aht, patience, 0.0)
    assert res.service_level == pytest.approx(1.0 - res.p_wait, abs=1e-12)


@FAST
@given(
    n=st.integers(0, 60),
    rate=st.floats(0.001, 0.5),
    aht=ahts,
    patience=patiences,
    threshold=thresholds,
)
def test_erlang_a_service_level_non_decreasing_in_agents(
    n: int, rate: float, aht: float, patience: float, threshold: float
) -> None:
    """Adding an agent never lowers the Erlang A service level."""
    low = erlang_a(n, rate, aht, patience, threshold).service_level
    high = erlang_a(n + 1, rate, aht, patience, threshold).service_level
    assert high >= low - 1e-12


def test_erlang_a_no_agents_means_everyone_abandons() -> None:
    """With zero agents every caller waits, abandons, and waits one patience on average."""
    res = erlang_a(0, RATE, AHT, 90.0, 20.0)
    assert (res.p_wait, res.p_abandon, res.service_level, res.occupancy) == (1.0, 1.0, 0.0, 0.0)
    assert res.asa_s == pytest.approx(90.0)


def test_erlang_a_zero_rate_returns_empty_floor_limits() -> None:
    """With no arrivals an agent answers the rare caller at once."""
    assert erlang_a(3, 0.0, AHT, 90.0, 20.0) == ErlangAResult(0.0, 0.0, 0.0, 1.0, 0.0)


def test_erlang_a_handles_two_thousand_agents() -> None:
    """2,000 agents at 1,900 Erlangs give finite measures within [0, 1]."""
    res = erlang_a(2000, 1900.0 / AHT, AHT, 300.0, 20.0)
    for p in (res.p_wait, res.p_abandon, res.service_level, res.occupancy):
        assert 0.0 <= p <= 1.0
    assert 0.0 <= res.asa_s < AHT


def test_erlang_a_heavily_overloaded_floor_is_stable() -> None:
    """A floor at half the agents it needs still has a finite queue thanks to abandons."""
    res = erlang_a(1000, 1900.0 / AHT, AHT, 300.0, 20.0)
    assert res.p_abandon == pytest.approx(0.9 / 1.9, rel=0.02)  # fluid limit: excess abandons
    assert res.occupancy == pytest.approx(1.0, abs=1e-6)


def test_erlang_a_rejects_non_positive_patience() -> None:
    """Patience must be > 0."""
    with pytest.raises(ValueError, match="patience_s"):
        erlang_a(5, RATE, AHT, 0.0, 20.0)


def test_least_agents_c_is_none_when_the_target_is_not_met_by_the_limit() -> None:
    """A target not met by max_agents agents gives None, not the limit as an answer."""
    assert least_agents_c(LOAD, AHT, 20.0, 1.0, max_agents=30) is None


def test_least_agents_c_is_none_for_a_load_beyond_the_limit() -> None:
    """A load of max_agents Erlangs or more cannot be staffed within the limit."""
    assert least_agents_c(100.0, AHT, 20.0, 0.8, max_agents=100) is None
    assert least_agents_c(1e12, AHT, 20.0, 0.8) is None


def test_least_agents_c_finds_an_answer_just_inside_the_limit() -> None:
    """An answer equal to max_agents is returned as an answer."""
    n = least_agents_c(LOAD, AHT, 20.0, 0.8)
    assert n == 14
    assert least_agents_c(LOAD, AHT, 20.0, 0.8, max_agents=14) == 14
    assert least_agents_c(LOAD, AHT, 20.0, 0.8, max_agents=13) is None


@FAST
@given(load=loads, aht=ahts, threshold=thresholds, target=targets)
def test_required_agents_c_is_least_agents_c_within_the_limit(
    load: float, aht: float, threshold: float, target: float
) -> None:
    """Within the limit the capped and the strict search give the same answer."""
    assert least_agents_c(load, aht, threshold, target) == required_agents_c(
        load, aht, threshold, target
    )


# ----------------------------------------------------------- required agents A


def test_required_agents_a_worked_example_with_patience() -> None:
    """Two-minute patience cuts the worked example from 14 to 12 agents."""
    assert required_agents_a(RATE, AHT, 120.0, 20.0, 0.8) == 12


def test_required_agents_a_may_be_below_the_load() -> None:
    """With abandonment a large floor can meet 80% with fewer agents than Erlangs."""
    assert required_agents_a(1900.0 / AHT, AHT, 300.0, 20.0, 0.8) < 1900


@FAST
@given(
    rate=st.floats(0.0, 0.3),
    aht=st.floats(20.0, 600.0),
    patience=patiences,
    threshold=thresholds,
    target=targets,
)
def test_required_agents_a_is_minimal(
    rate: float, aht: float, patience: float, threshold: float, target: float
) -> None:
    """The answer meets the target and one agent fewer does not."""
    n = required_agents_a(rate, aht, patience, threshold, target)
    assert erlang_a(n, rate, aht, patience, threshold).service_level >= target
    assert n == 0 or erlang_a(n - 1, rate, aht, patience, threshold).service_level < target


def test_required_agents_a_unreachable_target_returns_cap() -> None:
    """A target of 1.0 is never met with finite patience, so max_agents comes back."""
    assert required_agents_a(RATE, AHT, 120.0, 20.0, 1.0, max_agents=25) == 25


def test_least_agents_a_is_none_when_the_target_is_not_met_by_the_limit() -> None:
    """A target of 1.0 is never met with finite patience: None, not the limit."""
    assert least_agents_a(RATE, AHT, 120.0, 20.0, 1.0, max_agents=25) is None


def test_least_agents_a_is_none_for_a_load_beyond_the_limit() -> None:
    """A load whose proven lower bound is past max_agents gives None without a search."""
    assert least_agents_a(1e9, AHT, 120.0, 20.0, 0.8) is None


def test_least_agents_a_matches_required_agents_a_within_the_limit() -> None:
    """Within the limit the strict search returns the capped search's answer."""
    assert least_agents_a(RATE, AHT, 120.0, 20.0, 0.8) == required_agents_a(
        RATE, AHT, 120.0, 20.0, 0.8
    )


# ----------------------------------------------------------------- shrinkage


def test_scheduled_agents_worked_example() -> None:
    """14 required agents at 30% shrinkage roster 20, not 21."""
    assert scheduled_agents(14, 0.3) == 20


def test_scheduled_agents_ignores_float_noise_in_shrinkage() -> None:
    """A shrinkage computed as 1 - 0.7 still gives 20 for 14 agents."""
    assert scheduled_agents(14, 1 - 0.7) == 20


@FAST
@given(required=st.integers(0, 5000), percent=st.integers(0, 99))
def test_scheduled_agents_is_exact_ceiling(required: int, percent: int) -> None:
    """Whole-percent shrinkage gives exactly ceil(required / (1 - shrinkage))."""
    expected = math.ceil(Fraction(required * 100, 100 - percent))
    assert scheduled_agents(required, percent / 100) == expected


@pytest.mark.parametrize("shrinkage", [-0.01, 1.0, 1.5, math.nan])
def test_scheduled_agents_rejects_bad_shrinkage(shrinkage: float) -> None:
    """Shrinkage outside [0, 1) raises ValueError."""
    with pytest.raises(ValueError, match="shrinkage"):
        scheduled_agents(14, shrinkage)
