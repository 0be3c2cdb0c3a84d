# ruff: noqa: E501
"""SPEC §3: service-level events, counts, rates and live values per queue."""

from __future__ import annotations

import pytest
from spec_util import (
    COUNT_KEYS,
    T0,
    WINDOW_KEYS,
    abandoned,
    answered,
    approx,
    chrono,
    dequeued,
    ended,
    erlang_required,
    erlang_sl,
    live,
    nonzero,
    queued,
    state,
    win,
)

# default voice policy: T = 20 s, target 0.8, short abandon 5 s, AHT 180 s

# ---- service-level events ---------------------------------------------------------


def test_sl_met_at_answer(run):
    """A leg answered with wait <= T is a met SL event."""
    w = win(run([queued(T0, "c1"), answered(T0 + 10, "c1")]))
    assert (w["sl_offered"], w["answered_in_sl"], w["abandoned_in_sl"]) == (1, 1, 0)
    assert w["service_level"] == approx(1.0)


def test_sl_answered_exactly_at_threshold_is_met(run):
    """An answer with wait exactly T is met (wait <= T)."""
    w = win(run([queued(T0, "c1"), answered(T0 + 20, "c1")]))
    assert (w["sl_offered"], w["answered_in_sl"]) == (1, 1)
    assert w["service_level"] == approx(1.0)


def test_sl_answered_after_threshold_is_missed(run):
    """A leg answered with wait > T has a missed SL event."""
    w = win(run([queued(T0, "c1"), answered(T0 + 20.5, "c1")]))
    assert (w["sl_offered"], w["answered_in_sl"], w["answered"]) == (1, 0, 1)
    assert w["service_level"] == approx(0.0)


def test_sl_not_missed_at_exactly_threshold(run):
    """A leg still open at exactly queued+T has no SL event yet (missed is strictly after)."""
    w = win(run([queued(T0, "c1")], at=T0 + 20))
    assert w["sl_offered"] == 0
    assert w["service_level"] is None


def test_sl_missed_while_still_waiting(run):
    """A leg still waiting after queued+T shows as missed before it is answered."""
    events = [queued(T0, "c1"), answered(T0 + 45, "c1")]
    w = win(run(events, at=T0 + 30))
    assert (w["sl_offered"], w["answered_in_sl"], w["answered"]) == (1, 0, 0)
    assert w["service_level"] == approx(0.0)


def test_sl_missed_then_answered_counts_once(run):
    """A missed leg answered later still has exactly one (missed) SL event."""
    w = win(run([queued(T0, "c1"), answered(T0 + 45, "c1")]))
    assert (w["sl_offered"], w["answered_in_sl"], w["answered"]) == (1, 0, 1)


def test_sl_missed_event_attributed_at_queued_plus_t(run):
    """The missed SL event is attributed at queued+T (in the 15m window until queued+T+900)."""
    events = [queued(T0, "c1"), answered(T0 + 45, "c1")]
    assert win(run(events, at=T0 + 20 + 899.9))["sl_offered"] == 1
    w = win(run(events, at=T0 + 20 + 900))
    assert w["sl_offered"] == 0
    assert w["answered"] == 1  # the answer at T0+45 is still in the window


def test_abandoned_in_sl(run):
    """An abandon with short threshold < wait <= T is an abandoned-in-SL event at the abandon."""
    w = win(run([queued(T0, "c1"), abandoned(T0 + 10, "c1")]))
    assert (w["abandoned"], w["short_abandoned"], w["sl_offered"], w["abandoned_in_sl"]) == (
        1,
        0,
        1,
        1,
    )
    assert w["answered_in_sl"] == 0
    assert w["service_level"] == approx(0.0)
    assert w["abandon_rate"] == approx(1.0)


def test_abandoned_exactly_at_threshold_is_in_sl(run):
    """An abandon with wait exactly T is abandoned in SL."""
    w = win(run([queued(T0, "c1"), abandoned(T0 + 20, "c1")]))
    assert (w["sl_offered"], w["abandoned_in_sl"]) == (1, 1)


def test_abandoned_after_threshold_is_missed(run):
    """An abandon after T had a missed SL event; it is not abandoned in SL."""
    w = win(run([queued(T0, "c1"), abandoned(T0 + 30, "c1")]))
    assert (w["abandoned"], w["sl_offered"], w["abandoned_in_sl"], w["answered_in_sl"]) == (
        1,
        1,
        0,
        0,
    )


def test_short_abandon(run):
    """An abandon with wait <= short threshold is short: no SL event and not in abandoned."""
    w = win(run([queued(T0, "c1"), abandoned(T0 + 5, "c1")]))
    assert (w["short_abandoned"], w["abandoned"], w["sl_offered"], w["abandoned_in_sl"]) == (
        1,
        0,
        0,
        0,
    )
    assert w["abandon_rate"] is None
    assert w["service_level"] is None
    assert w["max_wait_s"] is None


def test_short_abandon_not_in_abandon_rate(run):
    """Short abandons are left out of abandon_rate."""
    events = [
        queued(T0, "c1"),
        answered(T0 + 3, "c1"),
        queued(T0, "c2"),
        abandoned(T0 + 2, "c2"),
    ]
    w = win(run(chrono(events)))
    assert w["abandon_rate"] == approx(0.0)


def test_short_abandon_threshold_zero_disables(run):
    """short_abandon_s = 0 disables short abandons: a 1 s abandon is a real abandon in SL."""
    toml = "[queues.sales]\nshort_abandon_s = 0\n"
    w = win(run([queued(T0, "c1"), abandoned(T0 + 1, "c1")], toml))
    assert (w["short_abandoned"], w["abandoned"], w["sl_offered"], w["abandoned_in_sl"]) == (
        0,
        1,
        1,
        1,
    )
    assert w["abandon_rate"] == approx(1.0)


def test_dequeued_within_threshold_no_sl_event(run):
    """A leg dequeued with wait <= T has no SL event."""
    w = win(run([queued(T0, "c1"), dequeued(T0 + 15, "c1", reason="overflow")]))
    assert (w["dequeued"], w["sl_offered"]) == (1, 0)
    assert w["service_level"] is None


def test_dequeued_after_threshold_is_missed(run):
    """A leg dequeued after T had a missed SL event."""
    w = win(run([queued(T0, "c1"), dequeued(T0 + 25, "c1", reason="timeout")]))
    assert (w["dequeued"], w["sl_offered"], w["answered_in_sl"]) == (1, 1, 0)
    assert w["service_level"] == approx(0.0)


def test_dequeued_wait_not_in_max_wait(run):
    """Dequeued legs are not part of max_wait_s."""
    w = win(run([queued(T0, "c1"), dequeued(T0 + 300, "c1")]))
    assert w["max_wait_s"] is None


# ---- formulas ---------------------------------------------------------------------


def _mixed(queue="sales"):
    """2 met, 1 abandoned in SL, 1 missed (answered late), 1 short abandon."""
    return chrono(
        [
            queued(T0, f"{queue}1", queue=queue),
            answered(T0 + 5, f"{queue}1"),
            queued(T0, f"{queue}2", queue=queue),
            answered(T0 + 15, f"{queue}2"),
            queued(T0, f"{queue}3", queue=queue),
            abandoned(T0 + 12, f"{queue}3"),
            queued(T0, f"{queue}4", queue=queue),
            answered(T0 + 50, f"{queue}4"),
            queued(T0, f"{queue}5", queue=queue),
            abandoned(T0 + 3, f"{queue}5"),
        ]
    )


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("abandoned_negative", 2 / 4),
        ("ignore_abandoned", 2 / 3),
        ("abandoned_positive", 3 / 4),
    ],
)
def test_sl_formulas(run, formula, expected):
    """Each sl_formula computes service_level from the SL counts as the SPEC defines."""
    toml = f'[queues.sales]\nsl_formula = "{formula}"\n'
    w = win(run(_mixed(), toml))
    assert (w["sl_offered"], w["answered_in_sl"], w["abandoned_in_sl"]) == (4, 2, 1)
    assert w["service_level"] == approx(expected)


def test_default_formula_is_abandoned_negative(run):
    """Without configuration the formula is abandoned_negative."""
    assert win(run(_mixed()))["service_level"] == approx(0.5)


def test_ignore_abandoned_null_when_only_abandons(run):
    """ignore_abandoned is null when every SL event is an abandon in SL (denominator 0)."""
    toml = '[queues.sales]\nsl_formula = "ignore_abandoned"\n'
    w = win(run([queued(T0, "c1"), abandoned(T0 + 10, "c1")], toml))
    assert (w["sl_offered"], w["abandoned_in_sl"]) == (1, 1)
    assert w["service_level"] is None


def test_formula_via_channel_defaults(run):
    """sl_formula set in [defaults.voice] applies to voice queues."""
    toml = '[defaults.voice]\nsl_formula = "abandoned_positive"\n'
    assert win(run(_mixed(), toml))["service_level"] == approx(0.75)


# ---- rates ------------------------------------------------------------------------


def test_abandon_rate(run):
    """abandon_rate = abandoned / (answered + abandoned)."""
    events = [
        queued(T0, "c1"),
        answered(T0 + 5, "c1"),
        queued(T0, "c2"),
        answered(T0 + 8, "c2"),
        queued(T0, "c3"),
        answered(T0 + 40, "c3"),
        queued(T0, "c4"),
        abandoned(T0 + 60, "c4"),
        queued(T0, "c5"),
        abandoned(T0 + 1, "c5"),  # short
    ]
    w = win(run(chrono(events)))
    assert (w["answered"], w["abandoned"], w["short_abandoned"]) == (3, 1, 1)
    assert w["abandon_rate"] == approx(0.25)


def test_asa_mean_wait_of_answered(run):
    """asa_s is the mean wait of the answered legs."""
    events = [
        queued(T0, "c1"),
        answered(T0 + 10, "c1"),
        queued(T0 + 2, "c2"),
        answered(T0 + 32, "c2"),
        queued(T0, "c3"),
        abandoned(T0 + 100, "c3"),
    ]
    assert win(run(chrono(events)))["asa_s"] == approx(20.0)


def test_max_wait_answered_or_abandoned_only(run):
    """max_wait_s is the largest wait of answered or abandoned legs (not short abandons, dequeues or open legs)."""
    events = [
        queued(T0, "c1"),
        answered(T0 + 10, "c1"),
        queued(T0, "c2"),
        abandoned(T0 + 40, "c2"),
        queued(T0, "c3"),
        dequeued(T0 + 90, "c3"),
        queued(T0 + 1, "c4"),
        abandoned(T0 + 4, "c4"),
        queued(T0 - 200, "c5"),  # still waiting
    ]
    w = win(run(chrono(events), at=T0 + 95))
    assert w["max_wait_s"] == approx(40.0)


def test_max_wait_from_answered(run):
    """max_wait_s takes answered legs into account."""
    events = [queued(T0, "c1"), answered(T0 + 70, "c1"), queued(T0, "c2"), abandoned(T0 + 30, "c2")]
    assert win(run(chrono(events)))["max_wait_s"] == approx(70.0)


def test_empty_queue_nulls_and_zeros(run):
    """A configured queue without legs has zero counts and null rates in every window."""
    doc = run([queued(T0, "c1", queue="other")], "[queues.sales]\n")
    for name, w in doc["queues"]["sales"]["windows"].items():
        assert set(w) == set(WINDOW_KEYS), name
        assert all(w[k] == 0 for k in COUNT_KEYS), name
        for k in ("service_level", "abandon_rate", "asa_s", "max_wait_s", "aht_s"):
            assert w[k] is None, (name, k)


def test_every_window_has_all_keys(run):
    """Every queue and site window object carries all 14 keys."""
    doc = run(_mixed())
    for q in doc["queues"].values():
        for w in q["windows"].values():
            assert set(w) == set(WINDOW_KEYS)
    for s in doc["sites"].values():
        for w in s["windows"].values():
            assert set(w) == set(WINDOW_KEYS)


def test_counts_attributed_by_their_own_times(run):
    """offered is attributed at call_queued.ts and answered at the answer ts."""
    events = [queued(T0, "c1"), answered(T0 + 600, "c1")]
    w = win(run(events, at=T0 + 1000))
    assert (w["offered"], w["answered"]) == (0, 1)
    assert w["asa_s"] == approx(600)


# ---- live ---------------------------------------------------------------------------


def test_live_waiting_and_longest_wait_grow_with_clock(run):
    """waiting and longest_wait_s follow the clock even when no event arrives."""
    events = [queued(T0, "c1"), queued(T0 + 10, "c2")]
    a = live(run(events, at=T0 + 60))
    b = live(run(events, at=T0 + 300))
    assert (a["waiting"], a["longest_wait_s"]) == (2, approx(60))
    assert (b["waiting"], b["longest_wait_s"]) == (2, approx(300))


def test_live_longest_wait_zero_when_none(run):
    """longest_wait_s is 0 when nobody waits."""
    lv = live(run([queued(T0, "c1"), answered(T0 + 5, "c1")], at=T0 + 50))
    assert (lv["waiting"], lv["longest_wait_s"]) == (0, 0)


def test_live_longest_wait_after_oldest_answered(run):
    """longest_wait_s is measured from the oldest open leg."""
    events = [queued(T0, "c1"), queued(T0 + 10, "c2"), answered(T0 + 15, "c1")]
    lv = live(run(events, at=T0 + 40))
    assert (lv["waiting"], lv["longest_wait_s"]) == (1, approx(30))


def test_live_agents_by_state(run):
    """Live agents counts the queue's agents by state, leaving out logged_out and other queues' agents."""
    events = [
        state(T0, "a1", "available", queues=["sales"]),
        state(T0, "a2", "not_ready", reason="break", queues=["sales", "support"]),
        state(T0, "a3", "logged_out", queues=["sales"]),
        state(T0, "a4", "on_call", queues=["support"]),
        state(T0, "a5", "on_call", queues=["sales"]),
        queued(T0, "c1"),
    ]
    ag = live(run(events), "sales")["agents"]
    assert nonzero(ag) == {"available": 1, "not_ready": 1, "on_call": 1}
    assert ag.get("logged_out", 0) == 0


def test_live_occupancy(run):
    """occupancy = (ringing + on_call + wrap_up) / (counted agents - not_ready)."""
    sts = ["available", "ringing", "on_call", "on_call", "wrap_up", "not_ready", "logged_out"]
    events = [state(T0, f"a{i}", s, queues=["sales"]) for i, s in enumerate(sts)] + [
        queued(T0, "c1")
    ]
    lv = live(run(events))
    assert lv["occupancy"] == approx(4 / 5)


def test_live_occupancy_null_when_all_not_ready(run):
    """occupancy is null when every counted agent is not_ready."""
    events = [state(T0, "a1", "not_ready", queues=["sales"]), queued(T0, "c1")]
    assert live(run(events))["occupancy"] is None


def test_live_arrival_rate(run):
    """arrival_rate_per_s = legs offered in the rolling 15 minutes / 900."""
    events = [queued(T0 - 901, "old")] + [queued(T0 + i, f"c{i}") for i in range(3)]
    lv = live(run(events, at=T0 + 5))
    assert lv["arrival_rate_per_s"] == approx(3 / 900)


def test_live_arrival_rate_without_15m_window_configured(run):
    """arrival_rate_per_s uses 15 minutes even when 15m is not a configured rolling window."""
    toml = '[windows]\nrolling = ["5m"]\n'
    events = [queued(T0 - 600, "old")] + [queued(T0 + i, f"c{i}") for i in range(2)]
    lv = live(run(events, toml, at=T0 + 5))
    assert lv["arrival_rate_per_s"] == approx(3 / 900)


def test_live_staffing_null_without_recent_offers(run):
    """required_agents and projected_service_level are null when nothing was offered in 15 min."""
    events = [
        state(T0, "a1", "available", queues=["sales"]),
        queued(T0, "c1"),
        answered(T0 + 5, "c1"),
    ]
    lv = live(run(events, at=T0 + 1000))
    assert lv["required_agents"] is None
    assert lv["projected_service_level"] is None
    assert lv["arrival_rate_per_s"] == approx(0.0)


def _load_case(n_calls: int, n_agents: int, agent_state: str = "available"):
    """n_calls legs offered (answered within T) in the last 15 min and n_agents serving."""
    events = [state(T0 - 3000, f"a{i}", agent_state, queues=["sales"]) for i in range(n_agents)]
    for i in range(n_calls):
        events += [queued(T0 + i * 10, f"c{i}"), answered(T0 + i * 10 + 2, f"c{i}", agent="x")]
    return events, T0 + (n_calls - 1) * 10 + 5


def test_live_required_agents_erlang_c(run):
    """required_agents is the least n > A (A = rate x default AHT) whose Erlang C SL reaches the target."""
    events, at = _load_case(45, 12)
    lv = live(run(events, at=at))
    a = 45 / 900 * 180.0
    expected = erlang_required(a, 20.0, 180.0, 0.8)
    assert expected == 12  # hand check of the independent formula
    assert lv["required_agents"] == expected
    assert lv["projected_service_level"] == approx(erlang_sl(12, a, 20.0, 180.0), rel=1e-6)


def test_live_projected_sl_counts_busy_states(run):
    """projected_service_level uses n = agents available + ringing + on_call + wrap_up (not not_ready)."""
    events, at = _load_case(45, 0)
    sts = ["available", "ringing", "on_call", "wrap_up"] * 3 + ["not_ready"] * 4
    events = [state(T0 - 3000, f"b{i}", s, queues=["sales"]) for i, s in enumerate(sts)] + events
    lv = live(run(events, at=at))
    a = 45 / 900 * 180.0
    assert lv["projected_service_level"] == approx(erlang_sl(12, a, 20.0, 180.0), rel=1e-6)


def test_live_projected_sl_zero_when_understaffed(run):
    """projected_service_level is 0 when n <= A."""
    events, at = _load_case(45, 9)  # A = 9
    lv = live(run(events, at=at))
    assert lv["projected_service_level"] == 0
    assert lv["required_agents"] == 12


def test_live_staffing_uses_queue_threshold_and_target(run):
    """Erlang C staffing uses the queue's own T, target and default AHT."""
    toml = "[queues.sales]\nsl_threshold_s = 60\nsl_target = 0.9\ndefault_aht_s = 300\n"
    events, at = _load_case(30, 13)
    lv = live(run(events, toml, at=at))
    a = 30 / 900 * 300.0
    assert lv["required_agents"] == erlang_required(a, 60.0, 300.0, 0.9)
    assert lv["projected_service_level"] == approx(erlang_sl(13, a, 60.0, 300.0), rel=1e-6)


def test_live_staffing_uses_rolling_60m_aht(run):
    """Erlang C uses aht_s over the rolling 60 minutes when calls were handled there."""
    events = [state(T0 - 3000, f"a{i}", "available", queues=["sales"]) for i in range(10)]
    events += [
        state(T0 - 3000, "h", "available", queues=["sales"]),
        queued(T0 - 1800, "h1"),
        answered(T0 - 1795, "h1", agent="h"),
        state(T0 - 1795, "h", "on_call"),
        ended(T0 - 1555, "h1", agent="h"),  # talk 240
        state(T0 - 1555, "h", "available"),  # no wrap-up: handle 240
    ]
    for i in range(30):
        events += [queued(T0 + i * 10, f"c{i}"), answered(T0 + i * 10 + 2, f"c{i}", agent="x")]
    at = T0 + 300
    doc = run(events, at=at)
    assert win(doc, window="60m")["aht_s"] == approx(240)
    lv = live(doc)
    a = 30 / 900 * 240.0  # 8 Erlang
    assert lv["required_agents"] == erlang_required(a, 20.0, 240.0, 0.8)
    n = 11  # 10 available + h available
    assert lv["projected_service_level"] == approx(erlang_sl(n, a, 20.0, 240.0), rel=1e-6)


def test_dequeued_exactly_at_threshold_no_sl_event(run):
    """A leg dequeued with wait exactly T has no SL event."""
    w = win(run([queued(T0, "c1"), dequeued(T0 + 20, "c1")], at=T0 + 30))
    assert (w["dequeued"], w["sl_offered"]) == (1, 0)


def test_abandon_just_above_short_threshold_is_in_sl(run):
    """An abandon just above the short-abandon threshold is a real abandon in SL."""
    w = win(run([queued(T0, "c1"), abandoned(T0 + 5.5, "c1")]))
    assert (w["abandoned"], w["short_abandoned"], w["abandoned_in_sl"]) == (1, 0, 1)


def test_missed_sl_event_in_next_interval(run):
    """A missed SL event is attributed to the interval containing queued+T, not the offer's."""
    toml = '[sites.default]\ntimezone = "UTC"\ninterval_minutes = 30\n'
    q = T0 + 1800 - 10  # 09:29:50 UTC; missed at 09:30:10
    w = win(run([queued(q, "c1")], toml, at=T0 + 1800 + 30), window="interval")
    assert (w["offered"], w["sl_offered"], w["answered_in_sl"]) == (0, 1, 0)


def test_missed_sl_event_on_next_day(run):
    """A leg offered just before local midnight and missed after it counts in the new day's sl_offered."""
    midnight = T0 + 15 * 3600  # 2026-11-24 00:00 UTC
    w = win(run([queued(midnight - 10, "c1")], at=midnight + 60), window="today")
    assert (w["offered"], w["sl_offered"]) == (0, 1)


def test_abandon_wait_in_max_wait_attributed_at_abandon(run):
    """max_wait_s of an abandoned leg belongs to the window of the abandon ts."""
    events = [queued(T0, "c1"), abandoned(T0 + 800, "c1")]
    w = win(run(events, at=T0 + 1000))
    assert (w["offered"], w["abandoned"], w["max_wait_s"]) == (0, 1, approx(800))


def test_handled_rolling_60m_feeds_aht_not_15m(run):
    """Erlang C AHT uses the rolling 60 minutes even when the 15m window has no handled call."""
    events = [state(T0 - 3000, f"a{i}", "available", queues=["sales"]) for i in range(3)]
    events += [
        queued(T0 - 2000, "h1"),
        answered(T0 - 1990, "h1", agent="a0"),
        ended(T0 - 1390, "h1", agent="a0"),  # talk 600
        state(T0 - 1389, "a0", "available"),
    ]
    events += [queued(T0, "c1")]
    doc = run(events, at=T0 + 10)
    assert win(doc)["aht_s"] is None
    lv = live(doc)
    a = 1 / 900 * 600.0
    assert lv["required_agents"] == erlang_required(a, 20.0, 600.0, 0.8)
    assert lv["projected_service_level"] == approx(erlang_sl(3, a, 20.0, 600.0), rel=1e-6)


def test_sl_missed_just_after_threshold(run):
    """The missed SL event is visible at any t strictly after queued+T (no tick granularity)."""
    w = win(run([queued(T0, "c1")], at=T0 + 20.001))
    assert w["sl_offered"] == 1
