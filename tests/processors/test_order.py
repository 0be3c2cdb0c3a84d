"""The engine's numbers depend only on the events, never on their arrival order (SPEC §9).

Small random traces (calls and agents, see ``floorgen``) in any permutation give the
document of the sorted trace, ``counters.late`` aside; and each known hard case gets a
hand-made pair of arrival orders.
"""

from __future__ import annotations

import random
from typing import Any

from floorgen import (
    SH_MIDNIGHT,
    EventDict,
    comparable,
    document_at,
    floor_config,
    last_ts,
    processor_of,
    traces,
)
from helpers import config, decode, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callfloor.config import Config
from callfloor.processors import agents
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document

CFG = floor_config()
T = SH_MIDNIGHT - 100.0


def docs_in_both_orders(
    events: list[EventDict], arrival: list[EventDict], cfg: Config = CFG, at: float | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(document of the sorted events, document of the arrival order), both at ``at``."""
    at = at if at is not None else last_ts(events)
    ordered = sorted(events, key=lambda e: e["ts"])
    return (
        comparable(document_at(processor_of(ordered, cfg), at)),
        comparable(document_at(processor_of(arrival, cfg), at)),
    )


def assert_late_arrival_changes_nothing(
    events: list[EventDict], late: int, cfg: Config = CFG, at: float | None = None
) -> dict[str, Any]:
    """Moving ``events[late]`` to the end of the arrival order gives the same document."""
    arrival = events[:late] + events[late + 1 :] + [events[late]]
    expected, actual = docs_in_both_orders(events, arrival, cfg, at)
    assert actual == expected
    return expected


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(traces(), st.randoms(use_true_random=False))
def test_any_permutation_gives_the_sorted_document(
    events: list[EventDict], rnd: random.Random
) -> None:
    """A random trace in any arrival order gives the sorted trace's document (late aside),
    at its last event, after the limits pass and on the next site-local day."""
    arrival = list(events)
    rnd.shuffle(arrival)
    ordered = processor_of(events, CFG)
    shuffled = processor_of(arrival, CFG)
    for later in (0.0, 700.0, 86_400.0):
        at = last_ts(events) + later
        assert comparable(document_at(shuffled, at)) == comparable(document_at(ordered, at))


# ----------------------------------------------------------------------------- known cases


def test_end_within_the_skew_before_its_start_in_either_order() -> None:
    """An abandon 30 s before its call_queued is claimed whichever arrives first."""
    doc = assert_late_arrival_changes_nothing(
        [
            ev("call_abandoned", T - 30, call_id="c"),
            ev("call_queued", T, call_id="c", queue="q3"),
        ],
        0,
    )
    assert doc["counters"]["orphaned"] == 0


def test_end_beyond_the_skew_stays_orphaned_in_either_order() -> None:
    """An abandon 61 s before its call_queued is orphaned whichever arrives first."""
    doc = assert_late_arrival_changes_nothing(
        [
            ev("call_abandoned", T - 61, call_id="c"),
            ev("call_queued", T, call_id="c", queue="q3"),
        ],
        0,
    )
    assert doc["counters"]["orphaned"] == 1
    assert doc["queues"]["q3"]["live"]["waiting"] == 1


def test_call_ended_before_its_answer_in_either_order() -> None:
    """A call_ended 20 s before its call_answered ends that conversation in either order."""
    events = [
        ev("agent_state", T - 200, agent="a1", state="on_call"),
        ev("call_queued", T - 100, call_id="c", queue="q3"),
        ev("call_ended", T - 20, call_id="c", agent="a1"),
        ev("call_answered", T, call_id="c", agent="a1"),
        ev("agent_state", T + 10, agent="a1", state="available"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 2)
    assert doc["counters"]["orphaned"] == 0
    assert doc["queues"]["q3"]["windows"]["15m"]["handled"] == 1


def test_late_requeue_moves_the_leg() -> None:
    """A requeue arriving after the answer in the new queue gives the in-order legs."""
    events = [
        ev("call_queued", T, call_id="c", queue="q1"),
        ev("call_queued", T + 10, call_id="c", queue="q2"),
        ev("call_answered", T + 50, call_id="c", agent="a1"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 1)
    windows = {q: doc["queues"][q]["windows"]["15m"] for q in ("q1", "q2")}
    assert (windows["q1"]["dequeued"], windows["q2"]["answered"]) == (1, 1)


def test_late_ring_all_misses_make_the_same_runs() -> None:
    """Ring-all misses at one instant, one arriving late, give the same missed-call runs."""
    events = [
        ev("agent_state", T, agent="a1", state="available"),
        ev("agent_state", T, agent="a2", state="available"),
        ev("call_missed", T + 10, call_id="c1", agent="a1"),
        ev("call_missed", T + 10, call_id="c1", agent="a2"),
        ev("call_missed", T + 20, call_id="c2", agent="a1"),
        ev("call_missed", T + 20, call_id="c2", agent="a2"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 2)
    assert sorted(v["agent"] for v in doc["violations"]) == ["a1", "a2"]


def test_late_duplicates_without_ids_are_dropped() -> None:
    """An id-less exact repeat arriving late is a duplicate, for calls and agents."""
    events = [
        ev("agent_state", T, agent="a1", state="not_ready", reason="break"),
        ev("call_queued", T + 5, call_id="c", queue="q1"),
        ev("agent_state", T + 30, agent="a1", state="available"),
        ev("call_abandoned", T + 40, call_id="c"),
    ]
    arrival = [*events, dict(events[0]), dict(events[1])]
    expected, actual = docs_in_both_orders(events, arrival)
    assert actual["counters"]["duplicates"] == 2
    actual["counters"]["duplicates"] = 0
    assert actual == expected


def test_late_exempt_spell_changes_nothing_counted() -> None:
    """A late exempt not-ready spell splits a counted one without adding not-ready time."""
    events = [
        ev("agent_state", T, agent="a1", state="not_ready", site="sh"),
        ev("agent_state", T + 50, agent="a1", state="not_ready", reason="training", site="sh"),
        ev("agent_state", T + 400, agent="a1", state="available", site="sh"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 1)
    assert doc["agents"]["a1"]["not_ready_today_s"] == 0.0  # the counted 50 s were yesterday
    assert [v["kind"] for v in doc["violations"]] == []


def test_late_spell_end_across_a_non_utc_midnight() -> None:
    """A not-ready spell crossing Shanghai midnight, its end late, splits its time the same."""
    events = [
        ev("agent_state", SH_MIDNIGHT - 60, agent="a1", state="not_ready", site="sh"),
        ev("agent_state", SH_MIDNIGHT + 150, agent="a1", state="available", site="sh"),
        ev("agent_state", SH_MIDNIGHT + 300, agent="a2", state="available", site="sh"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 1)
    assert doc["agents"]["a1"]["not_ready_today_s"] == 150.0
    kinds = sorted((v["kind"], v["severity"]) for v in doc["violations"])
    assert kinds == [("not_ready_daily_exceeded", "minor"), ("not_ready_exceeded", "warning")]


def test_late_wrap_up_decides_the_handling_it_belongs_to() -> None:
    """A wrap_up reported late, after the agent's next state, still is the after-call work."""
    events = [
        ev("call_queued", T, call_id="c", queue="q3"),
        ev("call_answered", T + 5, call_id="c", agent="a1"),
        ev("call_ended", T + 65, call_id="c", agent="a1"),
        ev("agent_state", T + 66, agent="a1", state="wrap_up"),
        ev("agent_state", T + 90, agent="a1", state="available"),
    ]
    doc = assert_late_arrival_changes_nothing(events, 3)
    assert doc["queues"]["q3"]["windows"]["15m"]["aht_s"] == 85.0


def test_unconfigured_queue_keeps_the_site_of_the_first_call_queued_to_arrive() -> None:
    """A queue created by events is fixed when it is created: two call_queued naming it
    from two sites give it the site of the one that arrived first (a documented limit:
    configure queues whose events disagree)."""
    first = ev("call_queued", T + 10, call_id="c2", queue="new", site="default")
    later = ev("call_queued", T, call_id="c1", queue="new", site="sh")
    proc = FloorProcessor(config())
    for e in (first, later):
        proc.apply(decode(e))
    proc.tick(T + 20)
    assert build_document(proc)["queues"]["new"]["site"] == "default"


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(traces(), st.randoms(use_true_random=False))
def test_any_permutation_gives_the_sorted_document_with_marks_every_entry(
    events: list[EventDict], rnd: random.Random
) -> None:
    """With re-folds leaving a mark at every history entry (so late agent states fold
    from marks and splice where they converge, as long histories do), any arrival
    order still gives the sorted trace's document."""
    arrival = list(events)
    rnd.shuffle(arrival)
    saved = agents.MARK_EVERY
    agents.MARK_EVERY = 1
    try:
        ordered = processor_of(events, CFG)
        shuffled = processor_of(arrival, CFG)
    finally:
        agents.MARK_EVERY = saved
    for later in (0.0, 700.0, 86_400.0):
        at = last_ts(events) + later
        assert comparable(document_at(shuffled, at)) == comparable(document_at(ordered, at))
