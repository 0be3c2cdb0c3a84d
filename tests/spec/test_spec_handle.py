# ruff: noqa: E501, RUF005
"""SPEC §1 handle time and §3 `handled` / `aht_s`."""

from __future__ import annotations

from spec_util import T0, abandoned, answered, approx, ended, queued, state, win


def _answered_call(call="c1", agent="a1", q_ts=T0, a_ts=T0 + 10, queue="sales"):
    return [
        state(q_ts - 60, agent, "available", queues=[queue]),
        queued(q_ts, call, queue=queue),
        answered(a_ts, call, agent=agent),
        state(a_ts, agent, "on_call"),
    ]


def test_wrap_up_reported_before_call_ended(run):
    """A wrap_up spell current at call_ended is the after-call work, counted from call_ended.ts to its end."""
    events = _answered_call() + [
        state(T0 + 108, "a1", "wrap_up"),
        ended(T0 + 110, "c1"),
        state(T0 + 140, "a1", "available"),
    ]
    doc = run(events)
    w = win(doc)
    assert w["handled"] == 1
    assert w["aht_s"] == approx(100 + 30)


def test_wrap_up_reported_after_call_ended(run):
    """A wrap_up started by the agent's next agent_state after call_ended is the after-call work."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 112, "a1", "wrap_up"),
        state(T0 + 150, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(100 + 40)


def test_handling_not_complete_during_wrap_up(run):
    """While the after-call wrap_up spell lasts, the call is not yet handled."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 112, "a1", "wrap_up"),
        state(T0 + 150, "a1", "available"),
    ]
    doc = run(events, at=T0 + 140)
    assert win(doc)["handled"] == 0
    assert win(doc)["aht_s"] is None


def test_no_wrap_up_complete_at_call_ended(run):
    """When the next agent_state is not wrap_up, handling completes at call_ended.ts with talk time only."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 115, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(100)


def test_no_wrap_up_handled_attributed_at_call_ended(run):
    """Handling without wrap-up is attributed at call_ended.ts (it leaves the 15m window 900 s later)."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 115, "a1", "available"),
    ]
    assert win(run(events, at=T0 + 110 + 899.5))["handled"] == 1
    assert win(run(events, at=T0 + 110 + 900.5))["handled"] == 0


def test_wrap_up_handled_attributed_at_end_of_spell(run):
    """Handling with wrap-up is attributed at the end of the wrap_up spell."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 112, "a1", "wrap_up"),
        state(T0 + 150, "a1", "available"),
    ]
    assert win(run(events, at=T0 + 150 + 899.5))["handled"] == 1
    assert win(run(events, at=T0 + 150 + 900.5))["handled"] == 0


def test_handled_in_queue_answered_from_after_requeue(run):
    """A requeued call's handling counts in the queue of the leg it was answered from."""
    events = [
        state(T0 - 60, "a1", "available", queues=["q1", "q2"]),
        queued(T0, "c1", queue="q1"),
        queued(T0 + 5, "c1", queue="q2"),
        answered(T0 + 10, "c1"),
        state(T0 + 10, "a1", "on_call"),
        ended(T0 + 70, "c1"),
        state(T0 + 70, "a1", "wrap_up"),
        state(T0 + 90, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc, "q1")["handled"] == 0
    assert win(doc, "q1")["aht_s"] is None
    assert win(doc, "q2")["handled"] == 1
    assert win(doc, "q2")["aht_s"] == approx(80)


def test_aht_is_mean_of_handle_times(run):
    """aht_s is the exact mean handle time of the handled calls."""
    events = [
        state(T0 - 60, "a1", "available", queues=["sales"]),
        state(T0 - 60, "a2", "available", queues=["sales"]),
        queued(T0, "c1"),
        queued(T0, "c2"),
        answered(T0 + 5, "c1", agent="a1"),
        state(T0 + 5, "a1", "on_call"),
        answered(T0 + 7, "c2", agent="a2"),
        state(T0 + 7, "a2", "on_call"),
        ended(T0 + 65, "c1", agent="a1"),  # talk 60
        state(T0 + 65, "a1", "wrap_up"),
        state(T0 + 105, "a1", "available"),  # wrap-up 40 -> handle 100
        ended(T0 + 157, "c2", agent="a2"),  # talk 150
        state(T0 + 157, "a2", "available"),  # no wrap-up -> handle 150
    ]
    doc = run(events)
    w = win(doc)
    assert w["handled"] == 2
    assert w["aht_s"] == approx((100 + 150) / 2)


def test_unanswered_call_never_handled(run):
    """An abandoned call is never handled."""
    doc = run([queued(T0, "c1"), abandoned(T0 + 30, "c1")])
    assert win(doc)["handled"] == 0
    assert win(doc)["aht_s"] is None


def test_call_ended_without_agent_uses_answering_agent(run):
    """call_ended without `agent` uses the answering agent's wrap-up."""
    events = _answered_call() + [
        ended(T0 + 110, "c1", agent=None),
        state(T0 + 111, "a1", "wrap_up"),
        state(T0 + 130, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(100 + 20)


def test_other_agents_wrap_up_not_used(run):
    """Only the answering agent's wrap_up counts as after-call work."""
    events = _answered_call() + [
        state(T0 - 60, "a2", "available"),
        ended(T0 + 110, "c1"),
        state(T0 + 111, "a2", "wrap_up"),
        state(T0 + 112, "a1", "available"),
        state(T0 + 200, "a2", "available"),
    ]
    events = sorted(events, key=lambda e: e["ts"])
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(100)


def test_wrap_up_then_not_ready_ends_acw(run):
    """After-call work ends when the wrap_up spell ends, whatever the next state is."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 110, "a1", "wrap_up"),
        state(T0 + 125, "a1", "not_ready", reason="break"),
    ]
    doc = run(events, at=T0 + 200)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(115)


def test_two_calls_same_agent_each_handled(run):
    """Consecutive calls of one agent are each handled with their own after-call work."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 110, "a1", "wrap_up"),
        state(T0 + 120, "a1", "available"),
        queued(T0 + 130, "c2"),
        answered(T0 + 135, "c2"),
        state(T0 + 135, "a1", "on_call"),
        ended(T0 + 235, "c2"),
        state(T0 + 236, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 2
    assert win(doc)["aht_s"] == approx((110 + 100) / 2)


def test_next_state_repeat_on_call_means_no_acw(run):
    """If the agent's next agent_state after call_ended is not wrap_up (even a repeat), handling completes at call_ended."""
    events = _answered_call() + [
        ended(T0 + 110, "c1"),
        state(T0 + 112, "a1", "on_call"),
        state(T0 + 115, "a1", "wrap_up"),
        state(T0 + 140, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(100)


def test_wrap_up_repeat_extends_acw(run):
    """A repeated wrap_up does not end the after-call work spell; it lasts until the state changes."""
    events = _answered_call() + [
        state(T0 + 110, "a1", "wrap_up"),
        ended(T0 + 110, "c1"),
        state(T0 + 130, "a1", "wrap_up"),
        state(T0 + 160, "a1", "available"),
    ]
    doc = run(events)
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(150)
