"""Violations as pure functions of closed spells, day totals, misses and the clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.config import DAILY_SEVERITIES, AgentRules
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.violations import (
    NRDay,
    Violation,
    add_not_ready,
    counts_not_ready,
    daily_violations,
    missed_violations,
    not_ready_today,
    open_spell_violation,
    open_stale_violation,
    spell_kind,
    spell_limit,
)

RULES = AgentRules(
    not_ready_max_s=600.0,
    not_ready_reason_max_s={"lunch": 3600.0},
    exempt_reasons=frozenset({"training"}),
    daily_not_ready_s=(100.0, 200.0),
    wrap_up_max_s=120.0,
    stale_after_s=300.0,
)
SH = SiteCalendar("Asia/Shanghai", 30)
MIDNIGHT = 1_795_276_800.0  # 2026-11-22T00:00:00+08:00
DAY = 86_400.0
LIMITS = (100.0, 200.0)


def days_of(spells: list[tuple[float, float]], limits: tuple[float, ...] = LIMITS) -> list[NRDay]:
    """Day totals of closed non-exempt not-ready spells (in time order)."""
    days: list[NRDay] = []
    for start, end in spells:
        add_not_ready(days, SH, limits, start, end)
    return days


def v(kind: str, severity: str, started: float, ended: float | None, value: float) -> Violation:
    """A violation."""
    return Violation(kind, severity, started, ended, value)


# ----------------------------------------------------------------------------- spells


def test_not_ready_limit_is_per_reason_with_a_general_default() -> None:
    """A not-ready spell's limit is its reason's, else not_ready_max; exempt has none."""
    assert spell_limit(RULES, "not_ready", "lunch") == 3600.0
    assert spell_limit(RULES, "not_ready", "break") == 600.0
    assert spell_limit(RULES, "not_ready", None) == 600.0
    assert spell_limit(RULES, "not_ready", "training") is None


def test_only_not_ready_and_wrap_up_spells_have_limits() -> None:
    """wrap_up has wrap_up_max; other states have no spell limit."""
    assert spell_limit(RULES, "wrap_up", None) == 120.0
    assert [spell_limit(RULES, s, None) for s in ("available", "on_call", "logged_out")] == [
        None,
        None,
        None,
    ]


def test_spell_kinds() -> None:
    """An over-long spell's kind follows its state."""
    assert (spell_kind("not_ready"), spell_kind("wrap_up")) == (
        "not_ready_exceeded",
        "wrap_up_exceeded",
    )


def test_only_non_exempt_not_ready_counts() -> None:
    """Non-exempt not_ready spells count as not-ready time; nothing else does."""
    assert counts_not_ready(RULES, "not_ready", None)
    assert counts_not_ready(RULES, "not_ready", "lunch")
    assert not counts_not_ready(RULES, "not_ready", "training")
    assert not counts_not_ready(RULES, "wrap_up", None)


def test_open_spell_violation_needs_strictly_more_than_the_limit() -> None:
    """The current spell is a violation only once it lasts longer than its limit."""
    assert open_spell_violation(RULES, "wrap_up", None, MIDNIGHT, MIDNIGHT + 120) is None
    assert open_spell_violation(RULES, "wrap_up", None, MIDNIGHT, MIDNIGHT + 121) == v(
        "wrap_up_exceeded", "warning", MIDNIGHT + 120, None, 121.0
    )


def test_open_exempt_or_unlimited_spell_is_never_a_violation() -> None:
    """An exempt not-ready spell or an available spell never exceeds anything."""
    assert open_spell_violation(RULES, "not_ready", "training", 0.0, 1e6) is None
    assert open_spell_violation(RULES, "available", None, 0.0, 1e6) is None
    assert open_spell_violation(RULES, None, None, 0.0, 1e6) is None


def test_open_silence_is_stale_after_the_limit_unless_logged_out() -> None:
    """A logged-in agent silent longer than stale_after is stale from last event + limit."""
    assert open_stale_violation(RULES, "available", MIDNIGHT, MIDNIGHT + 300) is None
    assert open_stale_violation(RULES, "available", MIDNIGHT, MIDNIGHT + 301) == v(
        "stale_agent", "warning", MIDNIGHT + 300, None, 301.0
    )
    assert open_stale_violation(RULES, "logged_out", MIDNIGHT, MIDNIGHT + 9999) is None


def test_violation_identity_is_start_kind_and_severity() -> None:
    """Two violations with the same start, kind and severity are the same one (its key)."""
    a = v("stale_agent", "warning", 1.0, None, 5.0)
    b = v("stale_agent", "warning", 1.0, 9.0, 8.0)
    assert a.key() == b.key() and a != b and hash(a) == hash(b)


# ----------------------------------------------------------------------------- daily totals


def test_spell_across_a_site_local_midnight_splits_into_two_days() -> None:
    """Closed not-ready time is cut at the site's local midnight (Asia/Shanghai)."""
    days = days_of([(MIDNIGHT - 30, MIDNIGHT + 70)])
    assert [(d.start, d.end, d.closed_s) for d in days] == [
        (MIDNIGHT - DAY, MIDNIGHT, 30.0),
        (MIDNIGHT, MIDNIGHT + DAY, 70.0),
    ]


def test_crossing_instant_is_exact_and_strict() -> None:
    """A day's total crosses a limit at the instant it reaches it, and only if it goes past."""
    assert days_of([(MIDNIGHT, MIDNIGHT + 100)])[0].crossings == []
    assert days_of([(MIDNIGHT, MIDNIGHT + 60), (MIDNIGHT + 70, MIDNIGHT + 150)])[0].crossings == [
        MIDNIGHT + 110
    ]


def test_total_resting_at_a_limit_crosses_it_when_it_goes_past() -> None:
    """A total that reaches a limit, pauses, then grows crosses it when it grows again."""
    days = days_of([(MIDNIGHT, MIDNIGHT + 100), (MIDNIGHT + 110, MIDNIGHT + 120)])
    assert days[0].crossings == [MIDNIGHT + 110]


def test_not_ready_today_adds_the_open_spell_from_midnight() -> None:
    """Today's not-ready seconds are the closed ones of today plus the open spell since
    the later of its start and midnight."""
    days = days_of([(MIDNIGHT - 50, MIDNIGHT - 10)])
    assert not_ready_today(days, SH, MIDNIGHT - 5, MIDNIGHT + 20) == 20.0
    assert not_ready_today(days, SH, None, MIDNIGHT - 1) == 40.0
    assert not_ready_today(days, SH, None, MIDNIGHT + 1) == 0.0


def test_daily_violations_have_severities_and_end_at_the_next_midnight() -> None:
    """Each daily limit crossed is one violation (minor, then major), ending at midnight."""
    days = days_of([(MIDNIGHT + 10, MIDNIGHT + 260)])
    found = daily_violations(days, SH, LIMITS, None, MIDNIGHT + 300)
    assert found == [
        v("not_ready_daily_exceeded", "minor", MIDNIGHT + 110, None, 250.0),
        v("not_ready_daily_exceeded", "major", MIDNIGHT + 210, None, 250.0),
    ]
    ended = daily_violations(days, SH, LIMITS, None, MIDNIGHT + DAY)
    assert [x.ended_at for x in ended] == [MIDNIGHT + DAY] * 2


def test_open_spell_crosses_a_daily_limit_by_the_clock_alone() -> None:
    """An open not-ready spell is derived at read time: its crossing is exact."""
    assert daily_violations([], SH, LIMITS, MIDNIGHT, MIDNIGHT + 100) == []
    assert daily_violations([], SH, LIMITS, MIDNIGHT, MIDNIGHT + 150) == [
        v("not_ready_daily_exceeded", "minor", MIDNIGHT + 100, None, 150.0)
    ]


def test_no_daily_limits_means_no_daily_violations() -> None:
    """An empty daily_not_ready list disables the kind."""
    assert daily_violations(days_of([(0.0, 1e5)], ()), SH, (), 1e5, 2e5) == []


_spells = st.lists(
    st.tuples(st.integers(0, 12), st.integers(1, 12), st.booleans()), min_size=1, max_size=8
)


def _brute_daily(
    spells: list[tuple[float, float | None]], t: float, limits: tuple[float, ...]
) -> list[tuple[str, float, float | None, float]]:
    """Daily violations by scanning every day touched in 10 s steps."""
    starts: set[float] = set()
    for s, e in spells:
        day = SH.day_start(s)
        while day < min(e if e is not None else t, t):
            starts.add(day)
            day = SH.next_day_start(day)
    out: list[tuple[str, float, float | None, float]] = []
    for day in sorted(starts):
        end = SH.next_day_start(day)
        stop = min(t, end)

        def total(x: float, day: float = day, end: float = end) -> float:
            return sum(
                max(0.0, min(e if e is not None else x, x, end) - max(s, day)) for s, e in spells
            )

        value = total(stop)
        for k, limit in enumerate(limits):
            if value <= limit:
                break
            # The limit is crossed where the total goes past it (it may rest at it first).
            # Spells start and end on a 10 s grid, so the total is linear within each step.
            x = day
            while not total(x) <= limit < total(x + 10.0):
                x += 10.0
            crossed = x + (limit - total(x))
            out.append((DAILY_SEVERITIES[k], crossed, end if t >= end else None, value))
    return out


@settings(max_examples=150, deadline=None)
@given(_spells, st.integers(0, 400))
def test_daily_violations_equal_a_scan_over_time(
    drawn: list[tuple[int, int, bool]], after: int
) -> None:
    """Daily violations from closed spells and an open one match a scan of the day totals,
    across a site-local midnight."""
    spells: list[tuple[float, float | None]] = []
    t = MIDNIGHT - 150.0
    for gap, length, _ in drawn:
        start = t + gap * 10
        t = start + length * 10
        spells.append((start, t))
    open_last = drawn[-1][2]
    last_start = spells[-1][0]
    now = t + after if not open_last else last_start + after + 1
    closed = spells[:-1] if open_last else spells
    if open_last:
        spells[-1] = (last_start, None)
    days = days_of([(s, e) for s, e in closed if e is not None])
    found = daily_violations(days, SH, LIMITS, last_start if open_last else None, now)
    got = [(x.severity, x.started_at, x.ended_at, x.value) for x in found]
    assert got == _brute_daily([(s, e) for s, e in spells], now, LIMITS)


# ----------------------------------------------------------------------------- missed calls


def test_missed_run_starts_at_the_limit_and_ends_when_the_count_drops() -> None:
    """The third miss within an hour starts a run; it ends when the first leaves the window."""
    misses = [0.0, 100.0, 200.0]
    assert missed_violations(misses, 3, 3600.0, 200.0) == [
        v("missed_calls_exceeded", "warning", 200.0, None, 3.0)
    ]
    assert missed_violations(misses, 3, 3600.0, 3600.0) == [
        v("missed_calls_exceeded", "warning", 200.0, 3600.0, 3.0)
    ]


def test_missed_window_excludes_its_start() -> None:
    """The rolling window is (x - W, x]: a miss exactly W earlier no longer counts."""
    assert missed_violations([0.0, 3600.0], 2, 3600.0, 3600.0) == []


def test_missed_run_value_is_the_highest_count() -> None:
    """A run's value is its highest rolling count so far."""
    [run] = missed_violations([0.0, 1.0, 2.0, 3.0], 2, 3600.0, 10.0)
    assert (run.started_at, run.value, run.ended_at) == (1.0, 4.0, None)


def test_zero_limit_disables_missed_violations() -> None:
    """missed_calls_max = 0 disables the kind."""
    assert missed_violations([0.0, 1.0, 2.0], 0, 3600.0, 10.0) == []


def _brute_missed(misses: list[float], limit: int, window: float, t: float) -> list[Violation]:
    """Runs found by counting (x - W, x] at every instant the count can change."""
    instants = sorted(
        {m for m in misses if m <= t} | {m + window for m in misses if m + window <= t}
    )
    out: list[Violation] = []
    active: Violation | None = None
    for x in instants:
        count = sum(1 for m in misses if x - window < m <= x)
        if active is None and count >= limit:
            active = v("missed_calls_exceeded", "warning", x, None, float(count))
            out.append(active)
        elif active is not None and count < limit:
            active.ended_at = x
            active = None
        elif active is not None:
            active.value = max(active.value, float(count))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 40).map(lambda k: k * 5.0), max_size=14),
    st.integers(1, 4),
    st.integers(0, 300),
)
def test_missed_violations_equal_a_brute_force_scan(
    misses: list[float], limit: int, t: int
) -> None:
    """missed_violations equals a brute-force scan over time, equal times included."""
    misses.sort()
    assert missed_violations(misses, limit, 60.0, float(t)) == _brute_missed(
        misses, limit, 60.0, float(t)
    )
