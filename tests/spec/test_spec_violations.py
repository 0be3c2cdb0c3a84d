# ruff: noqa: E501, RUF005
"""SPEC §4: idle-time violations, visible as the clock advances (§6)."""

from __future__ import annotations

from spec_util import T0, answered, approx, local, missed, queued, state, viols

S = T0
VIOLATION_KEYS = {"kind", "agent", "severity", "started_at", "ended_at", "value"}


def one(doc, kind, agent="a1"):
    found = viols(doc, kind, agent)
    assert len(found) == 1, doc["violations"]
    return found[0]


# ---- not_ready_exceeded -------------------------------------------------------------


def test_not_ready_exceeded_ended(run):
    """A not_ready spell longer than 10 min gives a warning started at start+600, ended with the spell, value = length."""
    doc = run([state(S, "a1", "not_ready", reason="break"), state(S + 700, "a1", "available")])
    v = one(doc, "not_ready_exceeded")
    assert set(v) == VIOLATION_KEYS
    assert v == {
        "kind": "not_ready_exceeded",
        "agent": "a1",
        "severity": "warning",
        "started_at": approx(S + 600),
        "ended_at": approx(S + 700),
        "value": approx(700),
    }


def test_not_ready_exceeded_active_by_clock_only(run):
    """With no further events, the violation appears once the clock passes start+limit and stays active."""
    doc = run([state(S, "a1", "not_ready", reason="break")], at=S + 650)
    v = one(doc, "not_ready_exceeded")
    assert v["started_at"] == approx(S + 600)
    assert v["ended_at"] is None
    assert v["value"] == approx(650)  # ASSUMPTION: active value = spell length so far


def test_not_ready_exceeded_not_at_exact_limit(run):
    """A spell lasting exactly the limit is not a violation (longer than the limit)."""
    assert viols(run([state(S, "a1", "not_ready")], at=S + 600), "not_ready_exceeded") == []
    doc = run([state(S, "a1", "not_ready"), state(S + 600, "a1", "available")], at=S + 900)
    assert viols(doc, "not_ready_exceeded") == []


def test_not_ready_exceeded_not_listed_before_start(run):
    """violations lists only violations started by as_of."""
    doc = run(
        [state(S, "a1", "not_ready", reason="break"), state(S + 700, "a1", "available")], at=S + 599
    )
    assert viols(doc, "not_ready_exceeded") == []


def test_not_ready_exceeded_per_reason_limit(run):
    """A per-reason limit replaces the default for that reason."""
    toml = '[agents]\nnot_ready_reason_max = { break = "15m" }\n'
    events = [state(S, "a1", "not_ready", reason="break")]
    assert viols(run(events, toml, at=S + 700), "not_ready_exceeded") == []
    v = one(run(events, toml, at=S + 1000), "not_ready_exceeded")
    assert (v["started_at"], v["ended_at"]) == (approx(S + 900), None)


def test_not_ready_exceeded_other_reason_uses_default(run):
    """A reason without its own limit uses not_ready_max."""
    toml = '[agents]\nnot_ready_max = "5m"\nnot_ready_reason_max = { lunch = "60m" }\n'
    v = one(
        run([state(S, "a1", "not_ready", reason="coffee")], toml, at=S + 400), "not_ready_exceeded"
    )
    assert v["started_at"] == approx(S + 300)


def test_not_ready_exceeded_exempt_never(run):
    """An exempt reason never gives not_ready_exceeded or daily violations."""
    toml = '[agents]\nexempt_reasons = ["training", "meeting"]\n'
    doc = run([state(S, "a1", "not_ready", reason="training")], toml, at=S + 3 * 3600)
    assert viols(doc, "not_ready_exceeded") == []
    assert viols(doc, "not_ready_daily_exceeded") == []


def test_not_ready_reason_change_restarts_spell_limit(run):
    """A reason change starts a new spell, so the limit counts from the change."""
    events = [
        state(S, "a1", "not_ready", reason="break"),
        state(S + 500, "a1", "not_ready", reason="lunch"),
    ]
    assert viols(run(events, at=S + 1000), "not_ready_exceeded") == []
    v = one(run(events, at=S + 1200), "not_ready_exceeded")
    assert v["started_at"] == approx(S + 1100)


def test_not_ready_repeat_does_not_restart_limit(run):
    """Repeating not_ready with the same reason does not restart the spell."""
    events = [
        state(S, "a1", "not_ready", reason="break"),
        state(S + 500, "a1", "not_ready", reason="break"),
    ]
    v = one(run(events, at=S + 700), "not_ready_exceeded")
    assert v["started_at"] == approx(S + 600)


# ---- wrap_up_exceeded ---------------------------------------------------------------


def test_wrap_up_exceeded_ended(run):
    """A wrap_up spell longer than 120 s gives a warning from start+120 to the spell's end, value = length."""
    doc = run([state(S, "a1", "wrap_up"), state(S + 150, "a1", "available")])
    v = one(doc, "wrap_up_exceeded")
    assert (v["severity"], v["started_at"], v["ended_at"], v["value"]) == (
        "warning",
        approx(S + 120),
        approx(S + 150),
        approx(150),
    )


def test_wrap_up_exceeded_active_by_clock_only(run):
    """wrap_up_exceeded appears with the clock alone and is active."""
    doc = run([state(S, "a1", "wrap_up")], at=S + 130)
    v = one(doc, "wrap_up_exceeded")
    assert (v["started_at"], v["ended_at"]) == (approx(S + 120), None)


def test_wrap_up_within_limit(run):
    """A wrap_up of exactly 120 s is no violation."""
    doc = run([state(S, "a1", "wrap_up"), state(S + 120, "a1", "available")], at=S + 500)
    assert viols(doc, "wrap_up_exceeded") == []


# ---- not_ready_daily_exceeded -------------------------------------------------------

TZ = "Asia/Kolkata"
KOLKATA = (
    '[agents]\nnot_ready_max = "8h"\n[sites.in]\ntimezone = "Asia/Kolkata"\ninterval_minutes = 30\n'
)


def L(h, m, s=0, d=23):
    return local(TZ, 2026, 11, d, h, m, s)


DAILY_EVENTS = [
    state(L(9, 0), "a1", "not_ready", reason="break", site="in"),
    state(L(9, 20), "a1", "available", site="in"),  # 1200 s
    state(L(10, 0), "a1", "not_ready", reason="break", site="in"),
    state(L(10, 30), "a1", "available", site="in"),  # +1800 s = 3000 s
]


def test_daily_minor_active_by_clock(run):
    """The 30-min daily limit gives a minor violation when crossed, active while the day lasts."""
    doc = run(DAILY_EVENTS[:3], KOLKATA, at=L(10, 11))
    v = one(doc, "not_ready_daily_exceeded")
    assert (v["severity"], v["started_at"], v["ended_at"]) == ("minor", approx(L(10, 10)), None)
    assert v["value"] == approx(1860)  # ASSUMPTION: active value = day's total so far
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(1860)


def test_daily_minor_and_major(run):
    """Each daily limit crossed gives one violation; both end at the next site-local midnight with the day's total."""
    doc = run(DAILY_EVENTS, KOLKATA, at=L(0, 30, d=24))
    found = sorted(viols(doc, "not_ready_daily_exceeded", "a1"), key=lambda v: v["started_at"])
    assert [(v["severity"], v["started_at"], v["ended_at"], v["value"]) for v in found] == [
        ("minor", approx(L(10, 10)), approx(L(0, 0, d=24)), approx(3000)),
        ("major", approx(L(10, 25)), approx(L(0, 0, d=24)), approx(3000)),
    ]


def test_daily_active_until_midnight(run):
    """Daily violations stay active (ended_at null) until site-local midnight."""
    doc = run(DAILY_EVENTS, KOLKATA, at=L(23, 59))
    found = viols(doc, "not_ready_daily_exceeded", "a1")
    assert len(found) == 2
    assert all(v["ended_at"] is None for v in found)


def test_daily_once_per_limit_per_day(run):
    """More not_ready later the same day does not start another violation for a limit already crossed."""
    events = DAILY_EVENTS + [
        state(L(11, 0), "a1", "not_ready", reason="break", site="in"),
        state(L(11, 10), "a1", "available", site="in"),
    ]
    doc = run(events, KOLKATA, at=L(0, 30, d=24))
    found = viols(doc, "not_ready_daily_exceeded", "a1")
    assert sorted(v["severity"] for v in found) == ["major", "minor"]
    assert all(v["value"] == approx(3600) for v in found)


def test_daily_below_limit_no_violation(run):
    """Exactly 30 min of not_ready in a day is not over the limit."""
    events = [
        state(L(9, 0), "a1", "not_ready", reason="break", site="in"),
        state(L(9, 30), "a1", "available", site="in"),
    ]
    assert viols(run(events, KOLKATA, at=L(12, 0)), "not_ready_daily_exceeded") == []


def test_daily_configured_limits(run):
    """daily_not_ready configures the limits (minor first, major second)."""
    toml = KOLKATA.replace("[agents]\n", '[agents]\ndaily_not_ready = ["10m", "15m"]\n')
    doc = run(DAILY_EVENTS[:2], toml, at=L(12, 0))
    found = sorted(viols(doc, "not_ready_daily_exceeded", "a1"), key=lambda v: v["started_at"])
    assert [(v["severity"], v["started_at"]) for v in found] == [
        ("minor", approx(L(9, 10))),
        ("major", approx(L(9, 15))),
    ]
    assert viols(doc, "not_ready_daily_exceeded")[0]["value"] == approx(1200)


# ---- missed_calls_exceeded ----------------------------------------------------------


def _misses(*offsets):
    return [state(S - 10, "a1", "available")] + [missed(S + o, f"m{o}") for o in offsets]


def test_missed_calls_exceeded_reaches_limit(run):
    """The 3rd call_missed within 60 min starts the violation; it ends when the count drops below 3."""
    doc = run(_misses(0, 600, 1200), at=S + 4000)
    v = one(doc, "missed_calls_exceeded")
    assert (v["severity"], v["started_at"], v["ended_at"], v["value"]) == (
        "warning",
        approx(S + 1200),
        approx(S + 3600),
        approx(3),
    )


def test_missed_calls_exceeded_active(run):
    """While 3 misses are within the rolling 60 min the violation is active."""
    v = one(run(_misses(0, 600, 1200), at=S + 3599), "missed_calls_exceeded")
    assert v["ended_at"] is None


def test_missed_calls_below_limit(run):
    """Two misses in 60 min (or three spread wider) are no violation."""
    assert viols(run(_misses(0, 600), at=S + 700), "missed_calls_exceeded") == []
    assert viols(run(_misses(0, 1800, 3600), at=S + 3700), "missed_calls_exceeded") == []


def test_missed_calls_value_is_highest_count(run):
    """value is the highest count reached; the end is when the count falls below the limit."""
    doc = run(_misses(0, 600, 1200, 1800), at=S + 6000)
    v = one(doc, "missed_calls_exceeded")
    assert (v["started_at"], v["ended_at"], v["value"]) == (
        approx(S + 1200),
        approx(S + 4200),
        approx(4),
    )


def test_missed_calls_configured_limit(run):
    """missed_calls_max configures the limit."""
    doc = run(_misses(0, 600), "[agents]\nmissed_calls_max = 2\n", at=S + 700)
    assert one(doc, "missed_calls_exceeded")["started_at"] == approx(S + 600)


# ---- stale_agent --------------------------------------------------------------------

H = 3600


def test_stale_agent_active_by_clock(run):
    """A logged-in agent silent longer than 4 h becomes stale at last agent_state + 4 h."""
    assert viols(run([state(S, "a1", "available")], at=S + 4 * H), "stale_agent") == []
    v = one(run([state(S, "a1", "available")], at=S + 4 * H + 1), "stale_agent")
    assert (v["severity"], v["started_at"], v["ended_at"]) == ("warning", approx(S + 4 * H), None)


def test_stale_agent_ends_at_next_agent_state(run):
    """stale_agent ends at the next agent_state; value = silence length."""
    doc = run([state(S, "a1", "on_call"), state(S + 5 * H, "a1", "available")])
    v = one(doc, "stale_agent")
    assert (v["started_at"], v["ended_at"], v["value"]) == (
        approx(S + 4 * H),
        approx(S + 5 * H),
        approx(5 * H),
    )


def test_stale_agent_reset_by_repeated_state(run):
    """Any agent_state, even one repeating the current state, resets the silence."""
    events = [state(S, "a1", "available"), state(S + 3 * H, "a1", "available")]
    assert viols(run(events, at=S + 4 * H + 60), "stale_agent") == []
    v = one(run(events, at=S + 7 * H + 60), "stale_agent")
    assert v["started_at"] == approx(S + 7 * H)


def test_stale_agent_not_reset_by_call_events(run):
    """Call events of the agent are not agent_state events and do not reset the silence."""
    events = [
        state(S, "a1", "available"),
        queued(S + 3 * H, "c1"),
        answered(S + 3 * H + 5, "c1"),
    ]
    v = one(run(events, at=S + 4 * H + 60), "stale_agent")
    assert v["started_at"] == approx(S + 4 * H)


def test_stale_agent_never_logged_out(run):
    """A logged_out agent is never stale."""
    assert viols(run([state(S, "a1", "logged_out")], at=S + 10 * H), "stale_agent") == []


def test_stale_after_configured(run):
    """stale_after configures the silence limit."""
    v = one(
        run([state(S, "a1", "available")], '[agents]\nstale_after = "2h"\n', at=S + 3 * H),
        "stale_agent",
    )
    assert v["started_at"] == approx(S + 2 * H)


def test_daily_ends_at_midnight_with_spell_running(run):
    """A not_ready spell running over midnight: daily violations end at midnight with that day's total, and the new day restarts at 0."""
    events = [
        state(L(22, 0), "a1", "not_ready", reason="break", site="in"),
        state(L(22, 20), "a1", "available", site="in"),  # 1200
        state(L(23, 30), "a1", "not_ready", reason="break", site="in"),  # +1800 by midnight
    ]
    doc = run(events, KOLKATA, at=L(0, 20, d=24))
    found = sorted(viols(doc, "not_ready_daily_exceeded", "a1"), key=lambda v: v["started_at"])
    assert [(v["severity"], v["started_at"], v["ended_at"], v["value"]) for v in found] == [
        ("minor", approx(L(23, 40)), approx(L(0, 0, d=24)), approx(3000)),
        ("major", approx(L(23, 55)), approx(L(0, 0, d=24)), approx(3000)),
    ]
    assert doc["agents"]["a1"]["not_ready_today_s"] == approx(1200)


def test_daily_new_day_new_violation(run):
    """The next day, crossing the limit again starts a new violation."""
    events = [
        state(L(23, 30), "a1", "not_ready", reason="break", site="in"),
    ]
    doc = run(events, KOLKATA, at=L(0, 40, d=24))
    found = sorted(viols(doc, "not_ready_daily_exceeded", "a1"), key=lambda v: v["started_at"])
    assert [(v["severity"], v["started_at"], v["ended_at"]) for v in found] == [
        ("minor", approx(L(0, 30, d=24)), None),
    ]
    assert found[0]["value"] == approx(2400)


def test_not_ready_exceeded_ends_on_logout(run):
    """not_ready_exceeded ends when the spell ends by logging out."""
    doc = run([state(S, "a1", "not_ready"), state(S + 1000, "a1", "logged_out")], at=S + 2000)
    v = one(doc, "not_ready_exceeded")
    assert (v["ended_at"], v["value"]) == (approx(S + 1000), approx(1000))


def test_violations_for_several_agents(run):
    """Each agent gets its own violations."""
    doc = run([state(S, "a1", "wrap_up"), state(S, "a2", "wrap_up")], at=S + 200)
    assert {v["agent"] for v in viols(doc, "wrap_up_exceeded")} == {"a1", "a2"}


def test_violation_started_before_as_of_still_listed_after_end(run):
    """Ended violations stay in the list (every violation started by as_of)."""
    doc = run([state(S, "a1", "wrap_up"), state(S + 130, "a1", "available")], at=S + 5000)
    assert len(viols(doc, "wrap_up_exceeded")) == 1


def test_missed_calls_second_violation_after_end(run):
    """After a missed_calls_exceeded ends, reaching the limit again starts a new violation."""
    doc = run(_misses(0, 600, 1200, 4000), at=S + 4100)
    found = sorted(viols(doc, "missed_calls_exceeded", "a1"), key=lambda v: v["started_at"])
    assert [(v["started_at"], v["ended_at"]) for v in found] == [
        (approx(S + 1200), approx(S + 3600)),
        (approx(S + 4000), None),
    ]


def test_not_ready_exceeded_just_after_limit(run):
    """The violation is visible as soon as the clock is past start + limit (exact moment, not tick)."""
    v = one(run([state(S, "a1", "not_ready")], at=S + 600.001), "not_ready_exceeded")
    assert v["started_at"] == approx(S + 600)


def test_daily_ends_at_next_midnight_across_dst(run):
    """On the New York fall-back day the daily violation ends at the next local midnight, 05:00 UTC (EST)."""
    from spec_util import utc

    toml = '[agents]\nnot_ready_max = "8h"\n[sites.ny]\ntimezone = "America/New_York"\ninterval_minutes = 30\n'
    events = [
        state(utc(2026, 11, 1, 15, 0), "a1", "not_ready", reason="break", site="ny"),
        state(utc(2026, 11, 1, 15, 40), "a1", "available", site="ny"),
    ]
    doc = run(events, toml, at=utc(2026, 11, 2, 6, 0))
    v = one(doc, "not_ready_daily_exceeded")
    assert (v["started_at"], v["ended_at"], v["value"]) == (
        approx(utc(2026, 11, 1, 15, 30)),
        approx(utc(2026, 11, 2, 5, 0)),
        approx(2400),
    )


def test_wrap_up_repeat_does_not_restart_limit(run):
    """A repeated wrap_up keeps the spell, so wrap_up_exceeded counts from the first."""
    v = one(
        run([state(S, "a1", "wrap_up"), state(S + 100, "a1", "wrap_up")], at=S + 130),
        "wrap_up_exceeded",
    )
    assert v["started_at"] == approx(S + 120)
