# ruff: noqa: E501, RUF005
"""SPEC §1: event schema, timestamps, rejection, duplicates, legs, orphans, spells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from spec_util import (
    T0,
    abandoned,
    answered,
    approx,
    dequeued,
    ended,
    ev,
    live,
    missed,
    nonzero,
    queued,
    state,
    win,
)

# ---- timestamps -------------------------------------------------------------------


def test_ts_epoch_int(run):
    """An integer epoch ts is accepted and used as the event time."""
    doc = run([queued(T0, "c1")], at=T0 + 42)
    assert win(doc)["offered"] == 1
    assert live(doc)["longest_wait_s"] == approx(42)


def test_ts_epoch_float(run):
    """A fractional epoch ts keeps its fraction (asa is exact to the millisecond)."""
    doc = run([queued(T0 + 0.25, "c1"), answered(T0 + 10.75, "c1")])
    assert win(doc)["asa_s"] == approx(10.5)


def test_ts_rfc3339_with_offset(run):
    """An RFC 3339 ts with a numeric offset is the same instant as its epoch value."""
    text = "2026-11-23T17:00:03.250+08:00"  # = 09:00:03.25 UTC = T0 + 3.25
    doc = run([queued(text, "c1"), answered(T0 + 13.25, "c1")])
    assert win(doc)["answered"] == 1
    assert win(doc)["asa_s"] == approx(10.0)
    assert doc["as_of"] == approx(T0 + 13.25)


def test_ts_rfc3339_zulu(run):
    """An RFC 3339 ts with the 'Z' offset is accepted as UTC."""
    doc = run([queued("2026-11-23T09:00:00Z", "c1"), answered(T0 + 7, "c1")])
    assert doc["counters"]["rejected"] == 0
    assert win(doc)["asa_s"] == approx(7.0)


def test_ts_rfc3339_is_default_as_of(run):
    """The default as_of is the epoch value of the last event's RFC 3339 ts."""
    doc = run([queued(T0, "c1"), abandoned("2026-11-23T04:00:30-05:00", "c1")])
    assert doc["as_of"] == approx(T0 + 30)


# ---- rejection --------------------------------------------------------------------

INVALID = {
    "unknown_type": ev("call_teleported", T0 + 1, call_id="x"),
    "missing_ts": {"type": "call_queued", "call_id": "x", "queue": "sales"},
    "missing_call_id": ev("call_queued", T0 + 1, queue="sales"),
    "missing_queue": ev("call_queued", T0 + 1, call_id="x"),
    "missing_agent_on_answer": ev("call_answered", T0 + 1, call_id="x"),
    "missing_state": ev("agent_state", T0 + 1, agent="a9"),
    "mistyped_ts": ev("call_queued", [T0], call_id="x", queue="sales"),
    "mistyped_queues": ev("agent_state", T0 + 1, agent="a9", state="available", queues="sales"),
    "mistyped_state": ev("agent_state", T0 + 1, agent="a9", state=3),
    "mistyped_queue": ev("call_queued", T0 + 1, call_id="x", queue={"name": "sales"}),
    "unknown_state": ev("agent_state", T0 + 1, agent="a9", state="sleeping"),
    "unparsable_ts": ev("call_queued", "yesterday at noon", call_id="x", queue="sales"),
    "naive_rfc3339_ts": ev("call_queued", "2026-11-23T09:00:01", call_id="x", queue="sales"),
    "missing_type": {"ts": T0 + 1, "call_id": "x", "queue": "sales"},
}


@pytest.mark.parametrize("bad", list(INVALID), ids=list(INVALID))
def test_invalid_event_rejected_others_applied(run, bad):
    """An invalid event counts once in counters.rejected and the valid events around it still apply."""
    events = [
        state(T0, "a1", "available", queues=["sales"]),
        queued(T0, "c1"),
        INVALID[bad],
        answered(T0 + 5, "c1"),
    ]
    doc = run(events, at=T0 + 10)
    assert doc["counters"]["rejected"] == 1
    w = win(doc)
    assert (w["offered"], w["answered"]) == (1, 1)
    assert "a9" not in doc["agents"]
    assert live(doc)["waiting"] == 0


def test_several_invalid_events_each_counted(run):
    """Each invalid event of a batch is rejected one by one."""
    events = [queued(T0, "c1")] + list(INVALID.values())[:5]
    doc = run(events, at=T0 + 2)
    assert doc["counters"]["rejected"] == 5
    assert win(doc)["offered"] == 1


# ---- duplicates -------------------------------------------------------------------


def test_duplicate_by_id_identical(run):
    """A redelivered event with the same id counts as a duplicate and changes nothing."""
    events = [
        queued(T0, "c1", id="e1"),
        answered(T0 + 5, "c1", id="e2"),
        answered(T0 + 5, "c1", id="e2"),
    ]
    doc = run(events)
    assert doc["counters"]["duplicates"] == 1
    assert doc["counters"]["orphaned"] == 0
    assert win(doc)["answered"] == 1


def test_duplicate_by_id_different_content(run):
    """A second event with an id already seen is a duplicate even if its other fields differ."""
    events = [
        queued(T0, "c1", id="e1"),
        queued(T0 + 1, "c2", id="e1"),
    ]
    doc = run(events, at=T0 + 2)
    assert doc["counters"]["duplicates"] == 1
    assert win(doc)["offered"] == 1
    assert live(doc)["waiting"] == 1


def test_duplicate_without_id_call_event(run):
    """Without id, same type, call_id and ts is a duplicate (not an orphan) and changes nothing."""
    events = [queued(T0, "c1"), abandoned(T0 + 10, "c1"), abandoned(T0 + 10, "c1")]
    doc = run(events)
    c = doc["counters"]
    assert (c["duplicates"], c["orphaned"]) == (1, 0)
    assert win(doc)["abandoned"] == 1


def test_duplicate_without_id_agent_event(run):
    """Without id, same type, agent, state and ts is a duplicate."""
    events = [state(T0, "a1", "available"), state(T0, "a1", "available")]
    doc = run(events)
    assert doc["counters"]["duplicates"] == 1


def test_duplicate_without_id_ignores_other_fields(run):
    """Without id, the identity is (type, agent, state, ts): a differing reason is still a duplicate."""
    events = [
        state(T0, "a1", "not_ready", reason="break"),
        state(T0, "a1", "not_ready", reason="lunch"),
    ]
    doc = run(events, at=T0 + 5)
    assert doc["counters"]["duplicates"] == 1
    assert doc["agents"]["a1"]["reason"] == "break"


def test_same_call_event_different_ts_is_not_duplicate(run):
    """Two call_queued for different calls at the same ts are not duplicates."""
    doc = run([queued(T0, "c1"), queued(T0, "c2")])
    assert doc["counters"]["duplicates"] == 0
    assert win(doc)["offered"] == 2


def test_requeue_same_queue_is_duplicate(run):
    """call_queued for a call already waiting in the same queue is a duplicate and keeps the original start."""
    doc = run([queued(T0, "c1"), queued(T0 + 8, "c1")], at=T0 + 10)
    assert doc["counters"]["duplicates"] == 1
    assert win(doc)["offered"] == 1
    assert live(doc)["waiting"] == 1
    assert live(doc)["longest_wait_s"] == approx(10)


# ---- requeue ----------------------------------------------------------------------


def test_requeue_other_queue_ends_old_leg_as_dequeued(run):
    """call_queued into another queue ends the old leg as dequeued and starts a new leg there."""
    events = [queued(T0, "c1", queue="q1"), queued(T0 + 10, "c1", queue="q2")]
    doc = run(events, at=T0 + 12)
    w1, w2 = win(doc, "q1"), win(doc, "q2")
    assert (w1["offered"], w1["dequeued"], w1["sl_offered"]) == (1, 1, 0)
    assert (w2["offered"], w2["dequeued"]) == (1, 0)
    assert live(doc, "q1")["waiting"] == 0
    assert live(doc, "q2")["waiting"] == 1
    assert live(doc, "q2")["longest_wait_s"] == approx(2)


def test_requeue_after_threshold_old_leg_missed(run):
    """A leg requeued after T already had its missed SL event; the new leg's wait starts at the requeue."""
    events = [
        queued(T0, "c1", queue="q1"),
        queued(T0 + 30, "c1", queue="q2"),
        answered(T0 + 40, "c1"),
    ]
    doc = run(events)
    w1, w2 = win(doc, "q1"), win(doc, "q2")
    assert (w1["dequeued"], w1["sl_offered"], w1["answered_in_sl"], w1["answered"]) == (1, 1, 0, 0)
    assert (w2["answered"], w2["sl_offered"], w2["answered_in_sl"]) == (1, 1, 1)
    assert w2["asa_s"] == approx(10)


# ---- orphans ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "orphan",
    [
        answered(T0 + 5, "nope"),
        abandoned(T0 + 5, "nope"),
        dequeued(T0 + 5, "nope"),
        ended(T0 + 5, "nope"),
    ],
    ids=["answered", "abandoned", "dequeued", "ended"],
)
def test_orphan_without_leg(run, orphan):
    """Answer/abandon/dequeue without an open leg and end of a call never answered change only counters.orphaned."""
    doc = run([state(T0, "a1", "available", queues=["sales"]), queued(T0, "c1"), orphan], at=T0 + 6)
    assert doc["counters"]["orphaned"] == 1
    w = win(doc)
    assert [w[k] for k in ("offered", "answered", "abandoned", "dequeued", "handled")] == [
        1,
        0,
        0,
        0,
        0,
    ]
    assert live(doc)["waiting"] == 1
    assert doc["agents"]["a1"]["answered_today"] == 0


def test_answer_after_abandon_is_orphan(run):
    """A call_answered after the leg was abandoned is orphaned and does not count."""
    doc = run([queued(T0, "c1"), abandoned(T0 + 10, "c1"), answered(T0 + 12, "c1")])
    assert doc["counters"]["orphaned"] == 1
    assert (win(doc)["answered"], win(doc)["abandoned"]) == (0, 1)


def test_second_answer_is_orphan(run):
    """A second call_answered for the same call (different ts) has no open leg: orphaned."""
    doc = run([queued(T0, "c1"), answered(T0 + 5, "c1"), answered(T0 + 6, "c1", agent="a2")])
    assert doc["counters"]["orphaned"] == 1
    assert win(doc)["answered"] == 1
    assert win(doc)["asa_s"] == approx(5)


def test_call_ended_twice_is_orphan(run):
    """A second call_ended for a call already ended is orphaned; the call is handled once."""
    events = [
        state(T0, "a1", "on_call"),
        queued(T0, "c1"),
        answered(T0 + 5, "c1"),
        ended(T0 + 65, "c1"),
        ended(T0 + 70, "c1"),
        state(T0 + 71, "a1", "available"),
    ]
    doc = run(events)
    assert doc["counters"]["orphaned"] == 1
    assert win(doc)["handled"] == 1
    assert win(doc)["aht_s"] == approx(60)


def test_answered_today_excludes_orphans(run):
    """answered_today counts the agent's non-orphaned call_answered only."""
    events = [
        state(T0, "a1", "available"),
        queued(T0, "c1"),
        answered(T0 + 5, "c1"),
        answered(T0 + 6, "ghost"),
    ]
    doc = run(events)
    assert doc["agents"]["a1"]["answered_today"] == 1


def test_call_missed_always_counts(run):
    """call_missed counts for its agent even for a call with no leg, and is never orphaned."""
    events = [
        state(T0, "a1", "available"),
        missed(T0 + 5, "unknown-call"),
        missed(T0 + 6, "c2", reason="rejected"),
    ]
    doc = run(events)
    assert doc["agents"]["a1"]["missed_today"] == 2
    assert doc["counters"]["orphaned"] == 0


# ---- spells -----------------------------------------------------------------------


def test_repeat_state_keeps_spell(run):
    """An agent_state repeating the current state and reason keeps state_since."""
    doc = run([state(T0, "a1", "available"), state(T0 + 30, "a1", "available")], at=T0 + 40)
    assert doc["agents"]["a1"]["state_since"] == approx(T0)


def test_repeat_not_ready_same_reason_keeps_spell(run):
    """Repeating not_ready with the same reason keeps the spell."""
    doc = run(
        [
            state(T0, "a1", "not_ready", reason="break"),
            state(T0 + 30, "a1", "not_ready", reason="break"),
        ],
        at=T0 + 40,
    )
    a = doc["agents"]["a1"]
    assert (a["state"], a["reason"], a["state_since"]) == ("not_ready", "break", approx(T0))


def test_reason_change_starts_new_spell(run):
    """A new reason inside not_ready starts a new spell."""
    doc = run(
        [
            state(T0, "a1", "not_ready", reason="break"),
            state(T0 + 30, "a1", "not_ready", reason="lunch"),
        ],
        at=T0 + 40,
    )
    a = doc["agents"]["a1"]
    assert (a["state"], a["reason"], a["state_since"]) == ("not_ready", "lunch", approx(T0 + 30))


def test_state_change_starts_new_spell(run):
    """A new state starts a new spell."""
    doc = run([state(T0, "a1", "available"), state(T0 + 30, "a1", "on_call")], at=T0 + 40)
    assert doc["agents"]["a1"]["state_since"] == approx(T0 + 30)
    assert doc["agents"]["a1"]["state"] == "on_call"


def test_agent_site_is_last_agent_state_site(run):
    """The agent's site is the site of its last agent_state."""
    events = [
        state(T0, "a1", "available", site="north"),
        state(T0 + 10, "a1", "on_call", site="south"),
    ]
    doc = run(events)
    assert nonzero(doc["sites"]["south"]["live"]["agents"]) == {"on_call": 1}
    if "north" in doc["sites"]:
        assert nonzero(doc["sites"]["north"]["live"]["agents"]) == {}


def test_queues_list_replaces_previous(run):
    """An agent_state's queues list replaces the agent's previous list."""
    events = [
        state(T0, "a1", "available", queues=["q1", "q2"]),
        state(T0 + 10, "a1", "available", queues=["q2"]),
        queued(T0 + 11, "c1", queue="q1"),
        queued(T0 + 11, "c2", queue="q2"),
    ]
    doc = run(events)
    assert nonzero(live(doc, "q1")["agents"]) == {}
    assert nonzero(live(doc, "q2")["agents"]) == {"available": 1}


def test_agent_state_without_queues_keeps_list(run):
    """ASSUMPTION: an agent_state without `queues` leaves the served-queue list unchanged."""
    events = [
        state(T0, "a1", "available", queues=["sales"]),
        state(T0 + 10, "a1", "not_ready", reason="break"),
        queued(T0 + 11, "c1"),
    ]
    doc = run(events)
    assert nonzero(live(doc)["agents"]) == {"not_ready": 1}


def test_default_site_is_default(run):
    """An event without site belongs to site "default"."""
    doc = run([queued(T0, "c1"), state(T0, "a1", "available")])
    assert doc["queues"]["sales"]["site"] == "default"
    assert "default" in doc["sites"]


def test_ts_rfc3339_fraction_and_offset_matches_spec_example(run):
    """The SPEC's own example ts '2026-11-22T09:15:03.250+08:00' parses to the right instant."""
    text = "2026-11-22T09:15:03.250+08:00"
    expected = datetime(2026, 11, 22, 1, 15, 3, 250000, tzinfo=UTC).timestamp()
    doc = run([queued(text, "c1")])
    assert doc["as_of"] == approx(expected)


def test_bool_ts_rejected(run):
    """A boolean ts is mistyped (neither epoch number nor RFC 3339 string) and is rejected."""
    doc = run([queued(T0, "c1"), ev("call_queued", True, call_id="c2", queue="sales")], at=T0 + 1)
    assert doc["counters"]["rejected"] == 1
    assert win(doc)["offered"] == 1


def test_requeue_same_queue_after_leg_ended_is_new_leg(run):
    """call_queued for a call whose leg already ended (same queue) starts a new leg, not a duplicate."""
    events = [queued(T0, "c1"), abandoned(T0 + 10, "c1"), queued(T0 + 60, "c1")]
    doc = run(events, at=T0 + 70)
    assert doc["counters"]["duplicates"] == 0
    assert win(doc)["offered"] == 2
    assert live(doc)["waiting"] == 1


def test_queued_while_in_conversation_starts_new_leg(run):
    """call_queued for a call in conversation (e.g. a transfer) starts a new leg; the answered leg stays answered."""
    events = [
        queued(T0, "c1", queue="q1"),
        answered(T0 + 5, "c1"),
        queued(T0 + 60, "c1", queue="q2"),
    ]
    doc = run(events, at=T0 + 70)
    assert (win(doc, "q1")["answered"], win(doc, "q1")["dequeued"]) == (1, 0)
    assert win(doc, "q2")["offered"] == 1
    assert live(doc, "q2")["waiting"] == 1


def test_duplicate_without_id_other_queue_same_ts(run):
    """Without id, the identity is (type, call_id, ts): a call_queued differing only in queue is a duplicate."""
    doc = run([queued(T0, "c1", queue="q1"), queued(T0, "c1", queue="q2")], at=T0 + 1)
    assert doc["counters"]["duplicates"] == 1
    assert win(doc, "q1")["offered"] == 1
    assert live(doc, "q1")["waiting"] == 1
    assert "q2" not in doc["queues"] or win(doc, "q2")["offered"] == 0


def test_duplicate_agent_state_does_not_reset_stale_or_spell(run):
    """A duplicate agent_state (same id) changes nothing, not even the agent's site or queues."""
    events = [
        state(T0, "a1", "available", id="s1", queues=["sales"]),
        state(T0 + 5, "a1", "not_ready", id="s1", queues=["other"]),
        queued(T0 + 6, "c1"),
    ]
    doc = run(events)
    assert doc["agents"]["a1"]["state"] == "available"
    assert nonzero(live(doc)["agents"]) == {"available": 1}


def test_rejected_event_id_does_not_block_valid_one(run):
    """An event rejected as invalid does not register its id: a later valid event with that id applies."""
    events = [
        ev("call_queued", "not-a-time", call_id="c1", queue="sales", id="e1"),
        queued(T0, "c1", id="e1"),
    ]
    doc = run(events, at=T0 + 1)
    assert doc["counters"]["rejected"] == 1
    assert doc["counters"]["duplicates"] == 0
    assert win(doc)["offered"] == 1


def test_orphan_call_ended_changes_no_agent_state(run):
    """An orphaned call_ended does not complete anyone's handling."""
    events = [
        state(T0, "a1", "on_call", queues=["sales"]),
        queued(T0, "c1"),
        answered(T0 + 1, "c1"),
        ended(T0 + 30, "c2"),
        state(T0 + 31, "a1", "available"),
    ]
    doc = run(events)
    assert doc["counters"]["orphaned"] == 1
    assert win(doc)["handled"] == 0


def test_repeat_state_with_new_queues_keeps_spell_but_replaces_queues(run):
    """A repeated state with a new queues list keeps the spell and still replaces the served queues."""
    events = [
        state(T0, "a1", "available", queues=["q1"]),
        state(T0 + 30, "a1", "available", queues=["q2"]),
        queued(T0 + 31, "c1", queue="q1"),
        queued(T0 + 31, "c2", queue="q2"),
    ]
    doc = run(events)
    assert doc["agents"]["a1"]["state_since"] == approx(T0)
    assert nonzero(live(doc, "q1")["agents"]) == {}
    assert nonzero(live(doc, "q2")["agents"]) == {"available": 1}


def test_wait_never_below_zero(run):
    """A leg ended by an event whose ts precedes its call_queued has wait 0, not negative."""
    doc = run([queued(T0 + 10, "c1"), answered(T0 + 5, "c1")], at=T0 + 20)
    w = win(doc)
    assert w["answered"] == 1
    assert w["asa_s"] == approx(0.0)
    assert w["max_wait_s"] == approx(0.0)
