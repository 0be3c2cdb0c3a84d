# ruff: noqa: E501
"""SPEC §3 site roll-ups and §7 `sites` membership."""

from __future__ import annotations

from spec_util import T0, abandoned, answered, approx, chrono, nonzero, queued, state, swin

TWO_QUEUES = """
[sites.s]
timezone = "UTC"
interval_minutes = 30
[queues.q1]
site = "s"
[queues.q2]
site = "s"
"""


def test_site_counts_are_sums(run):
    """Site window counts are the sums over the site's queues."""
    events = chrono(
        [queued(T0 + i, f"a{i}", queue="q1") for i in range(2)]
        + [queued(T0 + i, f"b{i}", queue="q2") for i in range(3)]
        + [answered(T0 + 10, "a0"), abandoned(T0 + 11, "b0"), abandoned(T0 + 12, "b1")]
    )
    w = swin(run(events, TWO_QUEUES), "s")
    assert (w["offered"], w["answered"], w["abandoned"]) == (5, 1, 2)


def test_site_rates_from_sums_not_averages(run):
    """Site service_level is formed from summed counts, never the average of queue percentages."""
    events = chrono(
        [queued(T0, "a0", queue="q1"), answered(T0 + 5, "a0")]
        + [queued(T0 + i, f"b{i}", queue="q2") for i in range(3)]
        + [answered(T0 + 6, "b0"), answered(T0 + 40, "b1"), answered(T0 + 41, "b2")]
    )
    doc = run(events, TWO_QUEUES)
    assert doc["queues"]["q1"]["windows"]["15m"]["service_level"] == approx(1.0)
    assert doc["queues"]["q2"]["windows"]["15m"]["service_level"] == approx(1 / 3)
    w = swin(doc, "s")
    assert (w["sl_offered"], w["answered_in_sl"]) == (4, 2)
    assert w["service_level"] == approx(0.5)
    assert w["asa_s"] == approx((5 + 6 + 39 + 39) / 4)
    assert w["max_wait_s"] == approx(39)


def test_site_each_leg_against_own_queue_threshold(run):
    """Each leg in a site roll-up is measured against its own queue's T."""
    toml = TWO_QUEUES.replace(
        '[queues.q1]\nsite = "s"',
        '[queues.q1]\nsite = "s"\nsl_threshold_s = 10\nshort_abandon_s = 2',
    )
    toml = toml.replace('[queues.q2]\nsite = "s"', '[queues.q2]\nsite = "s"\nsl_threshold_s = 60')
    events = [
        queued(T0, "a", queue="q1"),
        queued(T0, "b", queue="q2"),
        answered(T0 + 30, "a"),
        answered(T0 + 30, "b", agent="a2"),
    ]
    w = swin(run(events, toml), "s")
    assert (w["sl_offered"], w["answered_in_sl"]) == (2, 1)
    assert w["service_level"] == approx(0.5)


def test_site_uses_site_formula(run):
    """The site roll-up uses the site's sl_formula, not the queues'."""
    toml = TWO_QUEUES.replace(
        "interval_minutes = 30", 'interval_minutes = 30\nsl_formula = "ignore_abandoned"'
    )
    events = [
        queued(T0, "a", queue="q1"),
        queued(T0, "b", queue="q2"),
        queued(T0, "c", queue="q2"),
        answered(T0 + 5, "a"),
        abandoned(T0 + 10, "b"),
        answered(T0 + 30, "c", agent="a2"),
    ]
    doc = run(events, toml)
    assert doc["queues"]["q2"]["windows"]["15m"]["service_level"] == approx(
        0.0
    )  # queue default formula
    w = swin(doc, "s")
    assert (w["sl_offered"], w["answered_in_sl"], w["abandoned_in_sl"]) == (3, 1, 1)
    assert w["service_level"] == approx(1 / 2)


def test_site_default_formula_is_abandoned_negative(run):
    """The site formula defaults to abandoned_negative even when its queues use another formula."""
    toml = TWO_QUEUES.replace(
        '[queues.q1]\nsite = "s"', '[queues.q1]\nsite = "s"\nsl_formula = "abandoned_positive"'
    )
    events = [queued(T0, "a", queue="q1"), abandoned(T0 + 10, "a")]
    doc = run(events, toml)
    assert doc["queues"]["q1"]["windows"]["15m"]["service_level"] == approx(1.0)
    assert swin(doc, "s")["service_level"] == approx(0.0)


def test_site_abandon_rate_from_sums(run):
    """Site abandon_rate is summed abandoned / (summed answered + abandoned)."""
    events = chrono(
        [queued(T0, "a0", queue="q1"), abandoned(T0 + 30, "a0")]
        + [queued(T0 + i, f"b{i}", queue="q2") for i in range(3)]
        + [answered(T0 + 6, "b0"), answered(T0 + 7, "b1"), answered(T0 + 8, "b2")]
    )
    assert swin(run(events, TWO_QUEUES), "s")["abandon_rate"] == approx(0.25)


def test_site_live_agents_counted_once(run):
    """Site live agents count each agent of the site once, by its state."""
    events = [
        state(T0, "x1", "available", site="s", queues=["q1", "q2"]),
        state(T0, "x2", "on_call", site="s", queues=["q1"]),
        state(T0, "x3", "logged_out", site="s", queues=["q1"]),
        queued(T0, "c1", queue="q1"),
    ]
    doc = run(events, TWO_QUEUES)
    assert nonzero(doc["sites"]["s"]["live"]["agents"]) == {"available": 1, "on_call": 1}
    assert doc["sites"]["s"]["live"]["occupancy"] == approx(0.5)


def test_site_live_waiting_and_arrival_rate(run):
    """Site live waiting, longest wait and arrival rate cover all its queues."""
    events = [
        queued(T0, "a", queue="q1"),
        queued(T0 + 10, "b", queue="q2"),
        queued(T0 + 20, "c", queue="q2"),
    ]
    lv = run(events, TWO_QUEUES, at=T0 + 30)["sites"]["s"]["live"]
    assert lv["waiting"] == 3
    assert lv["longest_wait_s"] == approx(30)
    assert lv["arrival_rate_per_s"] == approx(3 / 900)
    for key in ("waiting", "longest_wait_s", "agents", "occupancy", "arrival_rate_per_s"):
        assert key in lv


def test_sites_include_agent_sites(run):
    """`sites` has the site of an agent even when no queue belongs to it."""
    doc = run([queued(T0, "c1"), state(T0, "a1", "available", site="backoffice")])
    assert "backoffice" in doc["sites"]
    assert nonzero(doc["sites"]["backoffice"]["live"]["agents"]) == {"available": 1}
    assert doc["sites"]["backoffice"]["live"]["waiting"] == 0


def test_sites_of_queues_from_events(run):
    """`sites` has the site of every queue, taken from the first call_queued."""
    doc = run([queued(T0, "c1", queue="q9", site="far")])
    assert doc["queues"]["q9"]["site"] == "far"
    assert swin(doc, "far")["offered"] == 1


def test_site_today_uses_site_timezone(run):
    """A site's today window starts at that site's local midnight."""
    toml = '[sites.in]\ntimezone = "Asia/Kolkata"\ninterval_minutes = 30\n'
    events = [
        queued(T0 - 3 * 3600, "c1", queue="qin", site="in"),
        queued(T0 - 3 * 3600, "c2", queue="qutc"),
    ]
    # T0 = 09:00 UTC = 14:30 IST; 06:00 UTC = 11:30 IST: same day at both sites
    doc = run(events, toml, at=T0 + 60)
    assert swin(doc, "in", "today")["offered"] == 1
    events = [
        queued(T0 - 9 * 3600, "c1", queue="qin", site="in"),
        queued(T0 - 9 * 3600, "c2", queue="qutc"),
    ]
    # 00:00 UTC = 05:30 IST 23 Nov for both; at 19:00 UTC (00:30 IST 24 Nov) only UTC's today keeps it
    doc = run(events, toml, at=T0 + 10 * 3600)
    assert swin(doc, "in", "today")["offered"] == 0
    assert swin(doc, "default", "today")["offered"] == 1


def test_site_live_agents_by_agent_site_not_queue_site(run):
    """Site live agents are the agents whose site is that site, even if they serve another site's queues."""
    events = [
        state(T0, "x1", "available", site="s", queues=["q1"]),
        state(T0, "x2", "available", site="remote", queues=["q1"]),
        queued(T0, "c1", queue="q1"),
    ]
    doc = run(events, TWO_QUEUES)
    assert nonzero(doc["sites"]["s"]["live"]["agents"]) == {"available": 1}
    assert nonzero(doc["sites"]["remote"]["live"]["agents"]) == {"available": 1}
    assert nonzero(doc["queues"]["q1"]["live"]["agents"]) == {"available": 2}
