"""Agents: the fold over an agent's history, re-folds, handling decisions, duplicates."""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.config import AgentRules
from callfloor.processors import agents
from callfloor.processors.agents import (
    CLOSE_SPELL,
    AgentFold,
    AgentTrack,
    CallEnd,
    Payload,
    advance_pending,
    count_between,
    decide_handling,
    ends_near,
    refold,
    refold_late,
    step,
)
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.violations import Violation

RULES = AgentRules(
    not_ready_max_s=60.0,
    not_ready_reason_max_s={"break": 90.0},
    exempt_reasons=frozenset({"training"}),
    daily_not_ready_s=(100.0, 200.0),
    wrap_up_max_s=30.0,
    missed_calls_max=2,
    stale_after_s=300.0,
)
CALENDARS = {"default": SiteCalendar("UTC", 15), "sh": SiteCalendar("Asia/Shanghai", 30)}
SH_MIDNIGHT = 1_795_276_800.0  # 2026-11-22T00:00:00+08:00
T0 = SH_MIDNIGHT - 3600.0


def calendar(site: str) -> SiteCalendar:
    """The calendar of a test site."""
    return CALENDARS[site]


def payload(
    state: str,
    reason: str | None = None,
    *,
    site: str = "default",
    queues: tuple[str, ...] | None = None,
    team: str | None = None,
) -> Payload:
    """What one agent_state says."""
    return (state, reason, site, queues, team, None)


def fold_of(*history: tuple[float, Payload]) -> AgentFold:
    """The fold of a history given in time order, one step at a time."""
    f = AgentFold("default")
    for t, p in history:
        step(f, t, p, RULES, calendar)
    return f


def track_of(*history: tuple[float, Payload], has_id: bool = False) -> AgentTrack:
    """A track holding the history (in the given arrival order) and its re-fold."""
    track = AgentTrack("a", "default")
    for t, p in history:
        track.insert(t, track.code(p, has_id))
    track.fold = refold(track, RULES, calendar)
    return track


def fold_fields(f: AgentFold) -> tuple[object, ...]:
    """Everything a fold holds, comparable."""
    days = [(d.start, d.end, d.closed_s, tuple(d.crossings)) for d in f.nr_days]
    return (
        f.known,
        f.state,
        f.reason,
        f.since,
        f.last_ts,
        f.site,
        f.group,
        f.team,
        f.display,
        list(f.closed),
        days,
    )


# ----------------------------------------------------------------------------- the fold


def test_first_agent_state_starts_the_first_spell() -> None:
    """The first agent_state makes the agent known, in that state since its time."""
    f = fold_of((T0, payload("available")))
    assert (f.known, f.state, f.reason, f.since, f.last_ts) == (True, "available", None, T0, T0)


def test_repeating_state_and_reason_starts_no_spell() -> None:
    """An agent_state that repeats the current state and reason keeps the spell's start."""
    f = fold_of((T0, payload("not_ready", "break")), (T0 + 50, payload("not_ready", "break")))
    assert (f.since, f.last_ts) == (T0, T0 + 50)


def test_new_reason_starts_a_new_spell() -> None:
    """A new not-ready reason is a new spell, closing the old one."""
    f = fold_of((T0, payload("not_ready", "break")), (T0 + 50, payload("not_ready", "lunch")))
    assert (f.reason, f.since) == ("lunch", T0 + 50)


def test_over_long_not_ready_spell_is_materialised_with_exact_instants() -> None:
    """A closed not-ready spell past its reason's limit is a violation from start + limit."""
    f = fold_of((T0, payload("not_ready", "break")), (T0 + 100, payload("available")))
    assert f.closed == [Violation("not_ready_exceeded", "warning", T0 + 90, T0 + 100, 100.0)]


def test_spell_exactly_at_its_limit_is_no_violation() -> None:
    """A spell must last longer than its limit: exactly the limit is not a violation."""
    f = fold_of((T0, payload("wrap_up")), (T0 + 30, payload("available")))
    assert f.closed == []


def test_over_long_wrap_up_spell_is_materialised() -> None:
    """A closed wrap-up spell past wrap_up_max is a wrap_up_exceeded violation."""
    f = fold_of((T0, payload("wrap_up")), (T0 + 45, payload("available")))
    assert f.closed == [Violation("wrap_up_exceeded", "warning", T0 + 30, T0 + 45, 45.0)]


def test_exempt_reason_has_no_limit_and_no_daily_time() -> None:
    """An exempt not-ready reason is neither limited nor counted as not-ready time."""
    f = fold_of((T0, payload("not_ready", "training")), (T0 + 250, payload("available")))
    assert (f.closed, f.nr_days) == ([], [])


def test_closed_not_ready_time_is_added_to_its_days() -> None:
    """A non-exempt spell across a site-local midnight adds to both days."""
    start = SH_MIDNIGHT - 40
    f = fold_of(
        (start, payload("not_ready", "training", site="sh")),
        (start + 1, payload("not_ready", site="sh")),
        (start + 61, payload("available", site="sh")),
    )
    assert [(d.start, d.closed_s) for d in f.nr_days] == [
        (SH_MIDNIGHT - 86400, 39.0),
        (SH_MIDNIGHT, 21.0),
    ]


def test_silence_past_stale_after_is_materialised_at_the_next_state() -> None:
    """A logged-in agent silent past stale_after has a stale violation ended by its next event."""
    f = fold_of((T0, payload("available")), (T0 + 400, payload("available")))
    assert f.closed == [Violation("stale_agent", "warning", T0 + 300, T0 + 400, 400.0)]


def test_logged_out_agent_is_never_stale() -> None:
    """Silence while logged out is no stale violation."""
    f = fold_of((T0, payload("logged_out")), (T0 + 4000, payload("available")))
    assert f.closed == []


def test_queue_list_team_and_site_follow_the_latest_event() -> None:
    """A queue list replaces the previous one; None keeps it; the site is the last event's."""
    f = fold_of(
        (T0, payload("available", queues=("q1", "q2"), team="red")),
        (T0 + 1, payload("on_call", site="sh")),
    )
    assert (f.group, f.team, f.site) == (("q1", "q2"), "red", "sh")


def test_close_spell_table_lists_only_limited_states() -> None:
    """Only not_ready and wrap_up spells contribute anything when they close."""
    assert set(CLOSE_SPELL) == {"not_ready", "wrap_up"}


def test_fold_copy_is_independent() -> None:
    """Changing a copy of a fold leaves the original as it was."""
    f = fold_of((T0, payload("not_ready")), (T0 + 100, payload("available")))
    g = f.copy()
    step(g, T0 + 200, payload("not_ready"), RULES, calendar)
    step(g, T0 + 300, payload("available"), RULES, calendar)
    assert len(f.closed) == 1 and f.nr_days[0].closed_s == 100.0
    assert len(g.closed) == 2 and g.nr_days[0].closed_s == 200.0


# ----------------------------------------------------------------------------- the track


def test_insert_reports_whether_the_event_went_at_the_end() -> None:
    """An event no earlier than the last is appended; an earlier one is inserted in place."""
    track = AgentTrack("a", "default")
    code = track.code(payload("available"), False)
    assert track.insert(T0, code) and track.insert(T0 + 10, code) and track.insert(T0 + 10, code)
    assert not track.insert(T0 + 5, code)
    assert list(track.ts) == [T0, T0 + 5, T0 + 10, T0 + 10]


def test_equal_times_keep_arrival_order() -> None:
    """A late event with the same time as others goes after them (arrival breaks ties)."""
    track = AgentTrack("a", "default")
    first = track.code(payload("available"), False)
    second = track.code(payload("not_ready"), False)
    track.insert(T0 + 10, first)
    track.insert(T0 + 20, first)
    track.insert(T0 + 10, second)
    assert [track.state_at(i) for i in range(3)] == ["available", "not_ready", "available"]


def test_payloads_are_interned_per_agent() -> None:
    """The same payload gets the same code; an id only flips the low bit."""
    track = AgentTrack("a", "default")
    a = track.code(payload("available"), False)
    assert track.code(payload("available"), False) == a
    assert track.code(payload("available"), True) == a + 1
    assert track.code(payload("on_call"), False) == a + 2


def test_id_less_repeat_of_state_and_time_is_a_duplicate() -> None:
    """An id-less agent_state with the time and state of an id-less one is a duplicate."""
    track = track_of((T0, payload("available")))
    assert track.has_duplicate(T0, "available")
    assert not track.has_duplicate(T0, "on_call")
    assert not track.has_duplicate(T0 + 1, "available")


def test_events_with_ids_are_not_content_duplicates() -> None:
    """Events that carried an id are deduplicated by id, never by content."""
    track = track_of((T0, payload("available")), has_id=True)
    assert not track.has_duplicate(T0, "available")


def test_count_between_is_inclusive_at_both_ends() -> None:
    """count_between counts times in [start, end]."""
    times = array("d", [1.0, 2.0, 2.0, 3.0, 4.0])
    assert count_between(times, 2.0, 3.0) == 3
    assert count_between(times, 4.5, 9.0) == 0


# ----------------------------------------------------------------------------- refold


_states = st.sampled_from(
    [
        payload("available"),
        payload("on_call"),
        payload("wrap_up"),
        payload("not_ready"),
        payload("not_ready", "break"),
        payload("not_ready", "training"),
        payload("logged_out"),
        payload("available", site="sh", queues=("q1",)),
        payload("not_ready", site="sh", team="blue"),
    ]
)
_histories = st.lists(
    st.tuples(st.integers(0, 200).map(lambda k: SH_MIDNIGHT - 600 + k * 7.0), _states),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_histories)
def test_refold_equals_the_step_by_step_fold_of_the_sorted_history(
    history: list[tuple[float, Payload]],
) -> None:
    """Inserting events in any order and re-folding gives the in-order fold."""
    track = track_of(*history)
    in_order = sorted(enumerate(history), key=lambda item: (item[1][0], item[0]))
    expected = fold_of(*(h for _, h in in_order))
    assert fold_fields(refold(track, RULES, calendar)) == fold_fields(expected)


@settings(max_examples=100, deadline=None)
@given(_histories, st.integers(0, 30))
def test_refold_from_a_base_equals_the_fold_of_the_whole_history(
    history: list[tuple[float, Payload]], cut: int
) -> None:
    """Folding a prefix into the base and re-folding the rest gives the whole fold."""
    history = sorted(history, key=lambda h: h[0])
    k = cut % (len(history) + 1)
    track = track_of(*history[k:])
    track.base = fold_of(*history[:k])
    assert fold_fields(refold(track, RULES, calendar)) == fold_fields(fold_of(*history))


# ----------------------------------------------------------------------------- handling


def test_wrap_up_current_at_the_end_is_the_after_call_work() -> None:
    """A wrap-up spell current at call_ended is its after-call work, until the spell ends."""
    track = track_of(
        (T0, payload("on_call")), (T0 + 50, payload("wrap_up")), (T0 + 90, payload("available"))
    )
    assert decide_handling(track, T0 + 60) == (T0 + 90, True)


def test_wrap_up_started_by_the_next_state_is_the_after_call_work() -> None:
    """A wrap-up spell started by the agent's next agent_state after call_ended counts."""
    track = track_of(
        (T0, payload("on_call")), (T0 + 65, payload("wrap_up")), (T0 + 90, payload("available"))
    )
    assert decide_handling(track, T0 + 60) == (T0 + 90, True)


def test_state_at_the_same_instant_as_the_end_is_the_next_state() -> None:
    """At equal times the call event comes first: a wrap_up at call_ended.ts follows it."""
    track = track_of(
        (T0, payload("on_call")), (T0 + 60, payload("wrap_up")), (T0 + 90, payload("available"))
    )
    assert decide_handling(track, T0 + 60) == (T0 + 90, True)


def test_next_state_not_wrap_up_completes_handling_at_the_end() -> None:
    """When the next agent_state is not wrap_up, handling completes at call_ended.ts."""
    track = track_of((T0, payload("on_call")), (T0 + 70, payload("available")))
    assert decide_handling(track, T0 + 60) == (T0 + 60, False)


def test_handling_is_undecided_until_the_next_state() -> None:
    """Without an agent_state at or after the end, nothing is decided yet."""
    track = track_of((T0, payload("on_call")))
    assert decide_handling(track, T0 + 60) == (None, False)


def test_open_wrap_up_leaves_handling_pending_but_attached() -> None:
    """A wrap-up spell still open at the end of the history keeps handling undecided."""
    track = track_of((T0, payload("on_call")), (T0 + 60, payload("wrap_up")))
    assert decide_handling(track, T0 + 60) == (None, True)


def test_repeated_wrap_up_continues_the_spell() -> None:
    """A repeated wrap_up (a heartbeat) does not end the after-call work."""
    track = track_of(
        (T0, payload("wrap_up")), (T0 + 70, payload("wrap_up")), (T0 + 80, payload("not_ready"))
    )
    assert decide_handling(track, T0 + 60) == (T0 + 80, True)


def test_handle_time_clamps_negative_parts() -> None:
    """Talk time and after-call work never count below zero (disagreeing clocks)."""
    end = CallEnd("c", "q", answered_at=T0 + 10, ended_at=T0)
    end.done_at = T0 - 5
    assert end.handle_s() == 0.0


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("state"), st.integers(0, 3), st.sampled_from(["wrap_up", "available"])),
        st.tuples(st.just("state"), st.integers(0, 3), st.sampled_from(["on_call", "not_ready"])),
        st.tuples(st.just("end"), st.integers(-4, 6), st.just("")),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_advance_pending_decides_like_decide_handling(ops: list[tuple[str, int, str]]) -> None:
    """The O(1) in-order update gives every call end the decision decide_handling gives it
    on the final history, for ends placed anywhere relative to the states."""
    track = AgentTrack("a", "default")
    ends: list[CallEnd] = []
    now = T0
    for n, (kind, k, state) in enumerate(ops):
        if kind == "state":
            now += k  # 0: an equal time, appended after the others
            track.insert(now, track.code(payload(state), False))
            for end in advance_pending(track, now, state):
                assert end.done_at is not None
        else:
            end = CallEnd(f"c{n}", "q", now - 100, now + k)  # may end before or after `now`
            end.done_at, end.attached = decide_handling(track, end.ended_at)
            if end.done_at is None:
                track.add_pending(end)
            ends.append(end)
    for end in ends:
        assert (end.done_at, end.attached) == decide_handling(track, end.ended_at), end.key()
    assert all(end.done_at is None for end in track.pending)


# ----------------------------------------------------------------------------- late re-folds


@contextmanager
def marks_every(n: int) -> Iterator[None]:
    """Re-folds leave a mark every ``n`` entries (small: marks and splices in short
    histories)."""
    saved = agents.MARK_EVERY
    agents.MARK_EVERY = n
    try:
        yield
    finally:
        agents.MARK_EVERY = saved


def arrive(track: AgentTrack, t: float, p: Payload) -> None:
    """Add one agent_state as the engine does: appended and stepped, or late and
    re-folded from the marks."""
    ts = track.ts
    code = track.code(p, False)
    if not ts or t >= ts[-1]:
        ts.append(t)
        track.codes.append(code)
        step(track.fold, t, p, RULES, calendar)
    else:
        at = bisect_right(ts, t)
        track.insert(t, code)
        track.fold = refold_late(track, at, RULES, calendar)


_long_histories = st.lists(
    st.tuples(st.integers(0, 400).map(lambda k: SH_MIDNIGHT - 1500 + k * 7.0), _states),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(_long_histories, st.sampled_from([1, 2, 3, 8]), st.randoms(use_true_random=False))
def test_late_refold_from_marks_equals_the_fold_of_the_sorted_history(
    history: list[tuple[float, Payload]], every: int, rnd: random.Random
) -> None:
    """Events arriving in any order, each late one re-folded from the marks and spliced
    where the fold converges, leave after every arrival the fold of the sorted history
    so far (violations, day totals and crossings included)."""
    arrival = list(enumerate(history))
    rnd.shuffle(arrival)
    track = AgentTrack("a", "default")
    seen: list[tuple[int, tuple[float, Payload]]] = []
    with marks_every(every):
        for order, (t, p) in arrival:
            arrive(track, t, p)
            seen.append((order, (t, p)))
            # Equal times keep their arrival order, as the history does.
            in_order = sorted(enumerate(seen), key=lambda item: (item[1][1][0], item[0]))
            expected = fold_of(*(h for _, (_, h) in in_order))
            assert fold_fields(track.fold) == fold_fields(expected)


def test_a_late_agent_state_folds_its_surroundings_not_the_history_after_it() -> None:
    """In a history of 4,000 agent states, 50 late ones in the middle step the fold at
    most a few marks' worth each (before: the whole history each time, 200,000 steps)."""
    cycle = ("available", "on_call", "wrap_up")
    history = [(T0 + 10.0 * i, payload(cycle[i % 3])) for i in range(4_000)]
    track = AgentTrack("a", "default")
    for t, p in history:
        arrive(track, t, p)
    counted = 0
    real_step = agents.step

    def counting_step(*args: Any) -> None:
        nonlocal counted
        counted += 1
        real_step(*args)

    agents.step = counting_step  # type: ignore[assignment]
    try:
        for k in range(50):
            arrive(track, T0 + 10.0 * (1_000 + 40 * k) + 5.0, payload("not_ready", "break"))
    finally:
        agents.step = real_step
    first = len(history)  # the first late event folds everything once, leaving marks
    assert counted <= first + 50 * 3 * agents.MARK_EVERY, counted
    expected = fold_of(
        *sorted(
            [
                *history,
                *(
                    (T0 + 10.0 * (1_000 + 40 * k) + 5.0, payload("not_ready", "break"))
                    for k in range(50)
                ),
            ],
            key=lambda h: h[0],
        )
    )
    assert fold_fields(track.fold) == fold_fields(expected)


_handling_states = st.sampled_from(
    [
        payload("available"),
        payload("on_call"),
        payload("wrap_up"),
        payload("wrap_up"),
        payload("not_ready"),
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), _handling_states), min_size=1, max_size=12),
    st.integers(0, 3),
    st.lists(st.integers(0, 20), max_size=12),
    st.tuples(st.integers(0, 20), _handling_states),
)
def test_ends_outside_ends_near_keep_their_handling(
    history: list[tuple[int, Payload]],
    pruned: int,
    ends_at: list[int],
    late: tuple[int, Payload],
) -> None:
    """After an agent state is inserted, every call end that ends_near leaves out is
    decided exactly as before (so deciding only those it lists again is enough)."""
    history = sorted(history, key=lambda h: h[0])
    cut = min(pruned, len(history) - 1)
    track = AgentTrack("a", "default")
    track.base = fold_of(*((T0 + 10.0 * k, p) for k, p in history[:cut])) if cut else track.base
    for k, p in history[cut:]:
        track.insert(T0 + 10.0 * k, track.code(p, False))
    ends = [CallEnd(f"c{i}", "q", T0, T0 + 10.0 * k + 5.0 * (i % 2)) for i, k in enumerate(ends_at)]
    ends.sort(key=lambda e: e.ended_at)
    track.ends = ends
    for end in ends:
        end.done_at, end.attached = decide_handling(track, end.ended_at)
    t = T0 + 10.0 * late[0] + 5.0 * (late[0] % 3 == 0)
    at = bisect_right(track.ts, t)
    track.insert(t, track.code(late[1], False))
    near = {id(e) for e in ends_near(track, at)}
    for end in ends:
        if id(end) not in near:
            before = (end.done_at, end.attached)
            assert decide_handling(track, end.ended_at, before) == before
