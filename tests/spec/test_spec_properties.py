# ruff: noqa: E501
"""Property tests over random small event streams (SPEC §2, §3, §7 invariants)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_util import COUNT_KEYS, T0, ev, replay

CALLS = [f"c{i}" for i in range(5)]
AGENTS = ["a1", "a2", "a3"]
QUEUES = ["q1", "q2"]
STATES = ["logged_out", "available", "ringing", "on_call", "wrap_up", "not_ready"]
TOML = """
[sites.default]
timezone = "UTC"
interval_minutes = 15
[queues.q2]
sl_threshold_s = 40
short_abandon_s = 10
sl_formula = "ignore_abandoned"
"""


@st.composite
def event_streams(draw):
    n = draw(st.integers(min_value=1, max_value=25))
    ts = float(T0)  # 09:00 UTC; streams stay within the same UTC day
    out = []
    for _ in range(n):
        ts += draw(st.sampled_from([0, 0.5, 1, 5, 15, 20, 21, 60, 300, 900]))
        kind = draw(
            st.sampled_from(
                [
                    "call_queued",
                    "call_queued",
                    "call_answered",
                    "call_abandoned",
                    "call_dequeued",
                    "call_ended",
                    "call_missed",
                    "agent_state",
                    "agent_state",
                ]
            )
        )
        call = draw(st.sampled_from(CALLS))
        agent = draw(st.sampled_from(AGENTS))
        if kind == "call_queued":
            out.append(ev(kind, ts, call_id=call, queue=draw(st.sampled_from(QUEUES))))
        elif kind in ("call_answered", "call_missed"):
            out.append(ev(kind, ts, call_id=call, agent=agent))
        elif kind in ("call_abandoned", "call_dequeued", "call_ended"):
            out.append(ev(kind, ts, call_id=call))
        else:
            st_ = draw(st.sampled_from(STATES))
            extra = (
                {"reason": draw(st.sampled_from(["break", "lunch"]))} if st_ == "not_ready" else {}
            )
            queues = draw(st.sampled_from([None, ["q1"], ["q2"], ["q1", "q2"]]))
            out.append(ev(kind, ts, agent=agent, state=st_, queues=queues, **extra))
    at = ts + draw(st.sampled_from([0, 10, 25, 400, 1000]))
    return out, at


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _windows(doc):
    for q in doc["queues"].values():
        yield q["windows"]
    for s in doc["sites"].values():
        yield s["windows"]


@SETTINGS
@given(event_streams())
def test_rates_are_fractions_or_null(stream):
    """service_level, abandon_rate, occupancy and projected SL are in [0, 1] or null."""
    events, at = stream
    doc = replay(events, TOML, at)
    for windows in _windows(doc):
        for w in windows.values():
            for k in ("service_level", "abandon_rate"):
                assert w[k] is None or 0.0 <= w[k] <= 1.0
    for q in doc["queues"].values():
        for k in ("occupancy", "projected_service_level"):
            v = q["live"][k]
            assert v is None or 0.0 <= v <= 1.0


@SETTINGS
@given(event_streams())
def test_sl_counts_consistent(stream):
    """answered_in_sl + abandoned_in_sl <= sl_offered; counts are non-negative; asa <= max_wait."""
    events, at = stream
    doc = replay(events, TOML, at)
    for windows in _windows(doc):
        for w in windows.values():
            assert all(w[k] >= 0 for k in COUNT_KEYS)
            assert w["answered_in_sl"] <= w["sl_offered"]
            assert w["answered_in_sl"] + w["abandoned_in_sl"] <= w["sl_offered"]
            assert w["abandoned_in_sl"] <= w["abandoned"]
            assert w["answered_in_sl"] <= w["answered"]
            if w["asa_s"] is not None:
                assert w["max_wait_s"] is not None and w["asa_s"] <= w["max_wait_s"] + 1e-9
            assert (w["asa_s"] is None) == (w["answered"] == 0)
            assert (w["aht_s"] is None) == (w["handled"] == 0)


@SETTINGS
@given(event_streams())
def test_today_dominates_other_windows(stream):
    """Within one local day, today's counts are >= the interval's and every rolling window's."""
    events, at = stream
    doc = replay(events, TOML, at)
    for windows in _windows(doc):
        today = windows["today"]
        for name, w in windows.items():
            for k in COUNT_KEYS:
                assert today[k] >= w[k], (name, k)
        assert windows["60m"]["offered"] >= windows["15m"]["offered"]


@SETTINGS
@given(event_streams())
def test_site_counts_sum_queue_counts(stream):
    """With a single site, its counts equal the sums over its queues."""
    events, at = stream
    doc = replay(events, TOML, at)
    site = doc["sites"]["default"]["windows"]
    for name, w in site.items():
        for k in COUNT_KEYS:
            assert w[k] == sum(q["windows"][name][k] for q in doc["queues"].values()), (name, k)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams())
def test_replay_deterministic(stream):
    """Replaying the same stream twice gives identical JSON."""
    events, at = stream
    assert json.dumps(replay(events, TOML, at)) == json.dumps(replay(events, TOML, at))


@SETTINGS
@given(event_streams())
def test_live_waiting_matches_open_legs(stream):
    """Site live waiting equals the sum of queue waiting, and longest wait is 0 iff nobody waits."""
    events, at = stream
    doc = replay(events, TOML, at)
    total = sum(q["live"]["waiting"] for q in doc["queues"].values())
    assert doc["sites"]["default"]["live"]["waiting"] == total
    for q in doc["queues"].values():
        if q["live"]["waiting"] == 0:
            assert q["live"]["longest_wait_s"] == 0
        else:
            assert q["live"]["longest_wait_s"] >= 0


@SETTINGS
@given(event_streams())
def test_staffing_values_well_formed(stream):
    """required_agents is null or a positive integer and null together with projected SL iff nothing offered in 15m."""
    events, at = stream
    doc = replay(events, TOML, at)
    for q in doc["queues"].values():
        lv = q["live"]
        nothing = q["windows"]["15m"]["offered"] == 0 if "15m" in q["windows"] else None
        if nothing:
            assert lv["required_agents"] is None and lv["projected_service_level"] is None
        elif nothing is False:
            assert isinstance(lv["required_agents"], int) and lv["required_agents"] >= 1
            assert lv["projected_service_level"] is not None
        assert abs(lv["arrival_rate_per_s"] * 900 - q["windows"]["15m"]["offered"]) < 1e-9
