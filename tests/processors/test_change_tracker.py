"""Change sets: what changed since the last drain, and violations started, ended or
retracted, including those started by the clock alone (the tracker's watch heap).

(Named test_change_tracker.py: tests/web/test_changes.py already uses the shorter name
and test modules share one namespace.)
"""

from __future__ import annotations

import random

from floorgen import EventDict, floor_config, last_ts, traces
from helpers import T0, decode, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callfloor.processors.engine import FloorProcessor
from callfloor.processors.views import ViolationChange

CFG = floor_config()  # not_ready 60 s (break 90 s), wrap_up 30 s, daily 100/200 s, 2 misses

Key = tuple[str, str, str, float]


def proc_with(*events: EventDict) -> FloorProcessor:
    """A processor that applied the events, with its first change set drained."""
    proc = FloorProcessor(CFG)
    for e in events:
        proc.apply(decode(e))
    proc.drain_changes()
    return proc


def changes(proc: FloorProcessor) -> list[tuple[str, float, float | None, float, bool]]:
    """The violation changes of the next change set, briefly."""
    return [
        (c.kind, c.started_at, c.ended_at, c.value, c.retracted)
        for c in proc.drain_changes().violations
    ]


def test_violation_started_by_the_clock_is_reported_with_its_exact_start() -> None:
    """A wrap-up passing its limit while nothing arrives is reported after a coarse tick,
    started at the spell's start plus the limit."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="wrap_up"))
    proc.tick(T0 + 30)
    assert changes(proc) == []
    proc.tick(T0 + 95)
    assert changes(proc) == [("wrap_up_exceeded", T0 + 30, None, 95.0, False)]


def test_started_violation_is_reported_once() -> None:
    """A violation still active at later drains is not reported again."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="wrap_up"))
    proc.tick(T0 + 40)
    assert len(changes(proc)) == 1
    proc.tick(T0 + 50)
    assert changes(proc) == []


def test_closing_the_spell_reports_the_end() -> None:
    """The agent_state that ends an over-long spell reports the violation's end."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="wrap_up"))
    proc.tick(T0 + 40)
    proc.drain_changes()
    proc.apply(decode(ev("agent_state", T0 + 45, agent="a", state="available")))
    assert changes(proc) == [("wrap_up_exceeded", T0 + 30, T0 + 45, 45.0, False)]


def test_late_event_retracts_a_violation_that_never_happened() -> None:
    """A late spell end within the limit retracts the reported violation, counted."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="wrap_up"))
    proc.tick(T0 + 40)
    proc.drain_changes()
    proc.apply(decode(ev("agent_state", T0 + 20, agent="a", state="available")))
    assert changes(proc) == [("wrap_up_exceeded", T0 + 30, T0 + 30, 40.0, True)]
    [retracted] = proc.view.stats().violations_retracted
    assert (retracted.kind, retracted.count) == ("wrap_up_exceeded", 1)


def test_missed_run_reports_its_growing_value() -> None:
    """A missed-calls run reports its start, then each higher count."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="available"))
    for k in range(2):
        proc.apply(decode(ev("call_missed", T0 + 10 + k, call_id=f"c{k}", agent="a")))
    assert changes(proc) == [("missed_calls_exceeded", T0 + 11, None, 2.0, False)]
    proc.apply(decode(ev("call_missed", T0 + 20, call_id="c9", agent="a")))
    assert changes(proc) == [("missed_calls_exceeded", T0 + 11, None, 3.0, False)]


def test_missed_run_ends_by_the_clock_when_misses_leave_the_hour() -> None:
    """A missed-calls run ends when its misses leave the rolling hour, with no event."""
    proc = proc_with(
        ev("agent_state", T0, agent="a", state="logged_out"),  # never stale
        ev("call_missed", T0 + 10, call_id="c1", agent="a"),
        ev("call_missed", T0 + 11, call_id="c2", agent="a"),
    )
    proc.tick(T0 + 3700)
    assert changes(proc) == [("missed_calls_exceeded", T0 + 11, T0 + 3610, 2.0, False)]


def test_daily_limit_crossed_by_the_clock_is_reported() -> None:
    """An open exempt-free not-ready spell crosses the daily limits by the clock alone."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="not_ready", reason="lunch"))
    proc.tick(T0 + 150)
    kinds = [(k, s) for k, s, _, _, _ in changes(proc)]
    assert kinds == [("not_ready_exceeded", T0 + 60), ("not_ready_daily_exceeded", T0 + 100)]


def test_stale_agent_is_reported_by_the_clock() -> None:
    """A silent logged-in agent becomes stale with no event at all."""
    proc = proc_with(ev("agent_state", T0, agent="a", state="available"))
    proc.tick(T0 + 601)
    assert changes(proc) == [("stale_agent", T0 + 600, None, 601.0, False)]


def test_change_set_lists_touched_queues_sites_and_agents_once() -> None:
    """A change set names what events touched (a queue brings its site); the next is empty."""
    proc = proc_with()
    proc.apply(decode(ev("agent_state", T0, agent="a", state="available", queues=["q2"])))
    proc.apply(decode(ev("call_queued", T0 + 1, call_id="c", queue="q1")))
    first = proc.drain_changes()
    assert (first.as_of, first.queues, first.agents) == (T0 + 1, ["q1", "q2"], ["a"])
    assert "sh" in first.sites
    second = proc.drain_changes()
    assert (second.queues, second.sites, second.agents, second.violations) == ([], [], [], [])


def test_agent_named_only_by_call_events_is_not_listed() -> None:
    """An agent known only from call events (no agent_state) is not in a change set."""
    proc = proc_with()
    proc.apply(decode(ev("call_missed", T0, call_id="c", agent="ghost")))
    assert proc.drain_changes().agents == []


def _key(c: ViolationChange) -> Key:
    return (c.agent, c.kind, c.severity, c.started_at)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    traces(),
    st.randoms(use_true_random=False),
    st.integers(1, 5),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_a_subscriber_following_change_sets_sees_the_read_model(
    events: list[EventDict], rnd: random.Random, every: int, ticks: list[int]
) -> None:
    """Applying each change set (start, end, retraction) to a copy of the violations gives
    exactly the violations the read model lists, whatever the arrival order and ticks."""
    arrival = list(events)
    rnd.shuffle(arrival)
    proc = FloorProcessor(CFG)
    seen: dict[Key, float | None] = {}

    def follow() -> None:
        for c in proc.drain_changes().violations:
            key = _key(c)
            if c.retracted:
                assert key in seen, f"retracted a violation never reported: {c}"
                del seen[key]
            else:
                seen[key] = c.ended_at

    for n, e in enumerate(arrival):
        proc.apply(decode(e))
        if n % every == 0:
            follow()
    for extra in [*sorted(ticks), 0]:
        proc.tick(last_ts(events) + 10.0 * extra)
        follow()
        listed = {
            (v.agent, v.kind, v.severity, v.started_at): v.ended_at for v in proc.view.violations()
        }
        assert seen == listed
        active = sum(c.count for c in proc.view.stats().violations_active)
        assert active == sum(1 for ended in listed.values() if ended is None)
