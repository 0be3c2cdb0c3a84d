"""SPEC §4: per-agent fields."""

from __future__ import annotations

from spec_util import T0, answered, approx, local, missed, queued, state

AGENT_KEYS = [
    "state",
    "reason",
    "state_since",
    "not_ready_today_s",
    "answered_today",
    "missed_today",
]
# Added after the six by issue 11 (handling and offers today).
EXTRA_KEYS = ["handled_today", "aht_today_s", "offered_today", "answer_rate_today"]
KOLKATA = '[sites.in]\ntimezone = "Asia/Kolkata"\ninterval_minutes = 30\n'


def test_agent_fields(run):
    """Each agent carries the six SPEC fields first, with the right values, then the
    four added after them."""
    doc = run([state(T0, "a1", "available", queues=["sales"])], at=T0 + 30)
    a = doc["agents"]["a1"]
    assert list(a) == AGENT_KEYS + EXTRA_KEYS
    assert {k: a[k] for k in AGENT_KEYS} == {
        "state": "available",
        "reason": None,
        "state_since": approx(T0),
        "not_ready_today_s": approx(0.0),
        "answered_today": 0,
        "missed_today": 0,
    }


def test_agent_reason_only_when_not_ready(run):
    """reason is null unless the state is not_ready."""
    doc = run([state(T0, "a1", "available", reason="break")])
    assert doc["agents"]["a1"]["reason"] is None
    doc = run([state(T0, "a1", "not_ready", reason="break")])
    assert doc["agents"]["a1"]["reason"] == "break"


def test_agent_not_ready_without_reason(run):
    """A not_ready state without a reason has reason null."""
    doc = run([state(T0, "a1", "not_ready")])
    assert doc["agents"]["a1"]["state"] == "not_ready"
    assert doc["agents"]["a1"]["reason"] is None


def test_not_ready_today_closed_and_open_spells(run):
    """not_ready_today_s sums closed not_ready spells and the current one up to t."""
    events = [
        state(T0, "a1", "not_ready", reason="break"),
        state(T0 + 300, "a1", "available"),
        state(T0 + 1000, "a1", "not_ready", reason="lunch"),
    ]
    doc = run(events, at=T0 + 1100)
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(400)


def test_not_ready_today_excludes_exempt(run):
    """Exempt not_ready reasons do not count in not_ready_today_s."""
    toml = '[agents]\nexempt_reasons = ["training"]\n'
    events = [
        state(T0, "a1", "not_ready", reason="training"),
        state(T0 + 1200, "a1", "not_ready", reason="break"),
        state(T0 + 1300, "a1", "available"),
    ]
    doc = run(events, toml, at=T0 + 2000)
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(100)


def test_not_ready_today_since_local_midnight(run):
    """A not_ready spell spanning site-local midnight counts only its part since midnight."""
    tz = "Asia/Kolkata"
    events = [state(local(tz, 2026, 11, 22, 23, 50), "a1", "not_ready", reason="break", site="in")]
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 0, 10))
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(600)
    assert doc["agents"]["a1"]["state_since"] == approx(local(tz, 2026, 11, 22, 23, 50))


def test_not_ready_today_resets_at_local_midnight(run):
    """not_ready_today_s from yesterday (site-local) is gone after midnight."""
    tz = "Asia/Kolkata"
    events = [
        state(local(tz, 2026, 11, 22, 22, 0), "a1", "not_ready", reason="break", site="in"),
        state(local(tz, 2026, 11, 22, 22, 30), "a1", "available", site="in"),
    ]
    doc = run(events, KOLKATA, at=local(tz, 2026, 11, 23, 0, 5))
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(0)


def test_answered_and_missed_today(run):
    """answered_today and missed_today count the agent's answers and misses since local midnight."""
    tz = "Asia/Kolkata"
    y = (2026, 11, 22)
    d = (2026, 11, 23)
    events = [
        state(local(tz, *y, 23, 0), "a1", "available", site="in"),
        queued(local(tz, *y, 23, 50), "c1", site="in"),
        missed(local(tz, *y, 23, 50, 5), "c1", site="in"),
        answered(local(tz, *y, 23, 50, 10), "c1", site="in"),
        queued(local(tz, *d, 0, 5), "c2", site="in"),
        missed(local(tz, *d, 0, 5, 5), "c2", site="in"),
        answered(local(tz, *d, 0, 5, 10), "c2", site="in"),
        queued(local(tz, *d, 0, 6), "c3", site="in"),
        answered(local(tz, *d, 0, 6, 10), "c3", agent="a2", site="in"),
    ]
    a = run(events, KOLKATA, at=local(tz, *d, 0, 10))["agents"]["a1"]
    assert (a["answered_today"], a["missed_today"]) == (1, 1)


def test_agent_listed_after_agent_state(run):
    """Every agent that sent a valid agent_state is listed, including logged_out ones."""
    doc = run([state(T0, "a1", "logged_out"), state(T0, "a2", "wrap_up")])
    assert set(doc["agents"]) >= {"a1", "a2"}
    assert doc["agents"]["a1"]["state"] == "logged_out"
    assert doc["agents"]["a2"]["state"] == "wrap_up"
