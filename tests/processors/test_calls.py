"""Calls: the fold of one call's history into effects (legs, SL events, orphans, skew)."""

from __future__ import annotations

from collections import Counter

from helpers import config, decode, ev
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.config import QueuePolicy
from callfloor.processors.agents import CallEnd
from callfloor.processors.calls import (
    ABANDONED_EV,
    ANSWERED_EV,
    CLOCK_SKEW_S,
    DEQUEUED_EV,
    ENDED,
    MISSED,
    ON_EVENT,
    QUEUED,
    ROUTED,
    CallEvent,
    CallFold,
    CallTrack,
    Effects,
    Leg,
    us,
)
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.windows import COUNT_NAMES, Deltas

T0 = 1_795_300_000.0
POLICIES = {
    "q": QueuePolicy(sl_threshold_s=20.0, short_abandon_s=5.0),
    "r": QueuePolicy(sl_threshold_s=40.0, short_abandon_s=0.0),
}
FIELDS = (*COUNT_NAMES, "wait_us", "handle_us")


def named(deltas: Deltas) -> dict[str, int]:
    """Deltas by field name."""
    return {FIELDS[f]: v for f, v in deltas}


class Recorder(Effects):
    """Every effect of a fold, in order."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, dict[str, int], int, int, bool]] = []
        self.opened: list[tuple[str, float]] = []
        self.closed: list[tuple[str, float]] = []
        self.answers: list[tuple[str, float]] = []
        self.misses: list[tuple[str, float]] = []
        self.ends: list[tuple[str, CallEnd]] = []
        self.touched: list[str] = []
        self.offers: list[tuple[str, float]] = []
        self.carried: list[tuple[str, float, float]] = []
        self.orphans = 0
        self.dups = 0

    def record(
        self, queue: str, x: float, deltas: Deltas, wait_us: int, hist: int, lifetime: bool
    ) -> None:
        self.records.append((queue, x, named(deltas), wait_us, hist, lifetime))

    def leg_opened(self, call_id: str, leg: Leg) -> None:
        self.opened.append((leg.queue, leg.start))

    def leg_closed(self, call_id: str, leg: Leg) -> None:
        self.closed.append((leg.queue, leg.start))

    def answer(self, agent: str, t: float) -> None:
        self.answers.append((agent, t))

    def miss(self, agent: str, t: float) -> None:
        self.misses.append((agent, t))

    def end(self, agent: str, end: CallEnd) -> None:
        self.ends.append((agent, end))

    def touch(self, agent: str) -> None:
        self.touched.append(agent)

    def offer(self, agent: str, t: float) -> None:
        self.offers.append((agent, t))

    def carry(self, agent: str, offered_at: float, answered_at: float) -> None:
        self.carried.append((agent, offered_at, answered_at))

    def orphan(self, n: int) -> None:
        self.orphans += n

    def duplicate(self) -> None:
        self.dups += 1

    def totals(self, queue: str = "q") -> dict[str, int]:
        """Net window deltas of a queue, by field (zeros left out)."""
        out: Counter[str] = Counter()
        for q, _, deltas, _, _, _ in self.records:
            if q == queue:
                out.update(deltas)
        return {k: v for k, v in out.items() if v}

    def at(self, queue: str = "q") -> list[tuple[float, dict[str, int]]]:
        """Each record of a queue as (attribution time, deltas)."""
        return [(x, d) for q, x, d, _, _, _ in self.records if q == queue]


def policy_at(queue: str, seq: int) -> QueuePolicy:
    """The test queues' policies."""
    return POLICIES[queue]


def history(*events: tuple[float, int, str | None], has_id: bool = False) -> CallTrack:
    """A call whose events arrived in the given order (sorted into its history)."""
    call = CallTrack("c")
    for seq, (t, kind, name) in enumerate(events, start=1):
        call.insert((t, seq, kind, name, has_id))
    return call


def fold(*events: tuple[float, int, str | None]) -> tuple[Recorder, CallTrack]:
    """The effects of folding the call's history in time order, and the fold state."""
    fx = Recorder()
    folder = CallFold(fx, policy_at)
    source = history(*events)
    state = CallTrack("c")
    for entry in source.events:
        state.events.append(entry)  # the fold reads the history so far
        folder.step(state, entry)
    return fx, state


def queued(t: float, queue: str = "q") -> tuple[float, int, str | None]:
    """A call_queued."""
    return (t, QUEUED, queue)


def answered(t: float, agent: str = "a") -> tuple[float, int, str | None]:
    """A call_answered."""
    return (t, ANSWERED_EV, agent)


def abandoned(t: float) -> tuple[float, int, str | None]:
    """A call_abandoned."""
    return (t, ABANDONED_EV, None)


def dequeued(t: float) -> tuple[float, int, str | None]:
    """A call_dequeued."""
    return (t, DEQUEUED_EV, None)


def ended(t: float, agent: str | None = None) -> tuple[float, int, str | None]:
    """A call_ended."""
    return (t, ENDED, agent)


# ----------------------------------------------------------------------------- legs


def test_call_queued_opens_a_leg_offered_at_its_time() -> None:
    """A call_queued starts a leg, counted offered at its ts, and leaves it waiting."""
    fx, call = fold(queued(T0))
    assert fx.at() == [(T0, {"offered": 1})]
    assert call.leg is not None and (call.leg.queue, call.leg.start) == ("q", T0)


def test_answer_within_threshold_is_met_at_the_answer() -> None:
    """An answer with wait <= T is a met service-level event at the answer."""
    fx, call = fold(queued(T0), answered(T0 + 20))
    assert fx.at()[1] == (
        T0 + 20,
        {"answered": 1, "wait_us": 20_000_000, "answered_in_sl": 1, "sl_offered": 1},
    )
    assert call.leg is None and [c.agent for c in call.convs] == ["a"]
    assert fx.answers == [("a", T0 + 20)]


def test_answer_after_threshold_is_a_miss_at_queued_plus_t() -> None:
    """A leg still open past T counts a miss at queued + T, then the answer without SL."""
    fx, _ = fold(queued(T0), answered(T0 + 20.5))
    assert fx.at()[1:] == [
        (T0 + 20, {"sl_offered": 1}),
        (T0 + 20.5, {"answered": 1, "wait_us": 20_500_000}),
    ]


def test_short_abandon_has_no_service_level_event() -> None:
    """An abandon within the short-abandon threshold counts only as short_abandoned."""
    fx, _ = fold(queued(T0), abandoned(T0 + 5))
    assert fx.totals() == {"offered": 1, "short_abandoned": 1}


def test_abandon_within_threshold_is_abandoned_in_sl() -> None:
    """An abandon after the short threshold but within T is an abandoned-in-SL event."""
    fx, _ = fold(queued(T0), abandoned(T0 + 6))
    assert fx.totals() == {"offered": 1, "abandoned": 1, "abandoned_in_sl": 1, "sl_offered": 1}


def test_abandon_after_threshold_is_a_miss_and_an_abandon() -> None:
    """An abandon after T counts the miss at queued + T and the abandon at its time."""
    fx, _ = fold(queued(T0), abandoned(T0 + 30))
    assert fx.at()[1:] == [(T0 + 20, {"sl_offered": 1}), (T0 + 30, {"abandoned": 1})]


def test_zero_short_abandon_threshold_disables_short_abandons() -> None:
    """With short_abandon_s = 0 even a one-second abandon is a counted abandon."""
    fx, _ = fold(queued(T0, "r"), abandoned(T0 + 1))
    assert fx.totals("r") == {"offered": 1, "abandoned": 1, "abandoned_in_sl": 1, "sl_offered": 1}


def test_dequeue_within_threshold_has_no_service_level_event() -> None:
    """A leg dequeued within T counts dequeued only."""
    fx, _ = fold(queued(T0), dequeued(T0 + 10))
    assert fx.totals() == {"offered": 1, "dequeued": 1}


def test_dequeue_after_threshold_counts_the_miss() -> None:
    """A leg dequeued after T was missed at queued + T."""
    fx, _ = fold(queued(T0), dequeued(T0 + 25))
    assert fx.totals() == {"offered": 1, "sl_offered": 1, "dequeued": 1}


def test_wait_of_an_end_before_its_start_is_zero() -> None:
    """An end with a ts before its call_queued waits 0, never less."""
    fx, _ = fold(queued(T0), answered(T0 - 10))
    assert fx.records[-1][2]["wait_us"] == 0 and fx.records[-1][3] == 0


def test_requeue_ends_the_old_leg_as_dequeued_and_opens_a_new_one() -> None:
    """call_queued into another queue dequeues the old leg there and starts one here."""
    fx, call = fold(queued(T0), queued(T0 + 10, "r"))
    assert fx.totals("q") == {"offered": 1, "dequeued": 1}
    assert fx.totals("r") == {"offered": 1}
    assert call.leg is not None and call.leg.queue == "r" and call.leg.threshold == 40.0


def test_requeue_after_threshold_counts_the_old_legs_miss() -> None:
    """A leg requeued after its T was missed in its own queue."""
    fx, _ = fold(queued(T0), queued(T0 + 30, "r"))
    assert fx.totals("q") == {"offered": 1, "sl_offered": 1, "dequeued": 1}


def test_call_queued_in_the_same_queue_is_a_duplicate() -> None:
    """A call_queued for a call already waiting in that queue changes nothing."""
    fx, call = fold(queued(T0), queued(T0 + 10))
    assert fx.dups == 1 and fx.totals() == {"offered": 1}
    assert call.leg is not None and call.leg.start == T0


def test_a_second_leg_after_the_first_ended_is_a_new_leg() -> None:
    """A call_queued after the leg ended (same queue) starts a new leg."""
    fx, _ = fold(queued(T0), abandoned(T0 + 10), queued(T0 + 100))
    assert fx.totals()["offered"] == 2 and fx.dups == 0


def test_relapsed_miss_moves_to_the_real_service_level_event() -> None:
    """A leg marked missed by the clock but ended within T takes the miss back (windows
    only: lifetime totals counted it once) and counts the met event at the answer."""
    fx = Recorder()
    folder = CallFold(fx, policy_at)
    call = CallTrack("c")
    folder.step(call, (T0, 1, QUEUED, "q", False))
    assert call.leg is not None
    call.leg.missed = True  # what the engine's timer does once the clock passes queued + T
    folder.step(call, (T0 + 15, 2, ANSWERED_EV, "a", False))
    assert fx.totals() == {"offered": 1, "answered": 1, "wait_us": 15_000_000, "answered_in_sl": 1}
    assert [(x, d) for _, x, d, _, _, life in fx.records if not life] == [
        (T0 + 20, {"sl_offered": -1}),
        (T0 + 15, {"sl_offered": 1}),
    ]


# ----------------------------------------------------------------------------- orphans, skew


def test_end_without_an_open_leg_is_orphaned() -> None:
    """call_answered, call_abandoned and call_dequeued with no open leg are orphaned."""
    fx, _ = fold(answered(T0), abandoned(T0 + 1), dequeued(T0 + 2))
    assert (fx.orphans, fx.records, fx.answers) == (3, [], [])


def test_call_ended_without_a_conversation_is_orphaned() -> None:
    """call_ended for a call never answered is orphaned."""
    fx, _ = fold(queued(T0), ended(T0 + 10))
    assert fx.orphans == 1 and fx.ends == []


def test_second_call_ended_is_orphaned() -> None:
    """call_ended for a conversation already ended is orphaned."""
    fx, _ = fold(queued(T0), answered(T0 + 5), ended(T0 + 10), ended(T0 + 11))
    assert fx.orphans == 1 and len(fx.ends) == 1


def test_end_up_to_the_skew_before_its_start_is_claimed() -> None:
    """An orphaned end at most 60 s before a call_queued ends that leg at once (wait 0)."""
    fx, call = fold(abandoned(T0 - CLOCK_SKEW_S), queued(T0))
    assert fx.orphans == 0 and call.leg is None
    assert fx.totals() == {"offered": 1, "short_abandoned": 1}


def test_end_beyond_the_skew_stays_orphaned() -> None:
    """An end more than 60 s before the call_queued is an orphan; the leg stays open."""
    fx, call = fold(abandoned(T0 - CLOCK_SKEW_S - 0.001), queued(T0))
    assert fx.orphans == 1 and call.leg is not None


def test_claimed_answer_starts_the_conversation() -> None:
    """A call_answered claimed by a later call_queued answers the leg at wait 0."""
    fx, call = fold(answered(T0 - 30, "b"), queued(T0))
    assert fx.totals()["answered_in_sl"] == 1 and fx.answers == [("b", T0 - 30)]
    assert [c.agent for c in call.convs] == ["b"]


def test_call_ended_up_to_the_skew_before_the_answer_ends_that_conversation() -> None:
    """A call_ended at most 60 s before a call_answered ends the conversation it starts."""
    fx, call = fold(queued(T0 - 100), ended(T0 - 40, "a"), answered(T0 + 20, "a"))
    assert fx.orphans == 0 and call.convs == []
    [(agent, end)] = fx.ends
    assert (agent, end.answered_at, end.ended_at) == ("a", T0 + 20, T0 - 40)


def test_claim_takes_the_earliest_held_end() -> None:
    """With several held ends, the leg takes the earliest; the rest stay orphaned."""
    fx, _ = fold(abandoned(T0 - 30), dequeued(T0 - 20), queued(T0))
    assert fx.orphans == 1
    assert fx.totals() == {"offered": 1, "short_abandoned": 1}


# ----------------------------------------------------------------------------- agents


def test_call_missed_always_counts_for_its_agent() -> None:
    """call_missed counts for the agent with or without an open leg."""
    fx, _ = fold((T0, MISSED, "a"), queued(T0 + 1), (T0 + 2, MISSED, "b"))
    assert fx.misses == [("a", T0), ("b", T0 + 2)] and fx.orphans == 0


def test_call_routed_offers_the_call_to_its_agent_and_counts_nothing_in_the_queue() -> None:
    """call_routed is an offer to its agent (offered_today); the queue counts nothing."""
    fx, _ = fold(queued(T0), (T0 + 1, ROUTED, "a"))
    assert fx.offers == [("a", T0 + 1)] and fx.totals() == {"offered": 1}


def test_answer_takes_up_the_ring_before_it() -> None:
    """A ring then its answer is one offer (the ring), the answer carried from it."""
    fx, _ = fold(queued(T0), (T0 + 1, ROUTED, "a"), answered(T0 + 4, "a"))
    assert fx.offers == [("a", T0 + 1)] and fx.carried == [("a", T0 + 1, T0 + 4)]


def test_answer_without_a_ring_is_its_own_offer() -> None:
    """An answer with no ring, or after a missed ring, is an offer of its own."""
    fx, _ = fold(queued(T0), answered(T0 + 4, "a"))
    assert fx.offers == [("a", T0 + 4)] and fx.carried == []
    fx, _ = fold(queued(T0), (T0 + 1, ROUTED, "a"), (T0 + 9, MISSED, "a"), answered(T0 + 12, "a"))
    assert fx.offers == [("a", T0 + 1), ("a", T0 + 12)] and fx.carried == []


def test_ring_to_another_agent_is_not_taken_up() -> None:
    """A ring to agent b is b's offer; a's answer is its own."""
    fx, _ = fold(queued(T0), (T0 + 1, ROUTED, "b"), answered(T0 + 4, "a"))
    assert fx.offers == [("b", T0 + 1), ("a", T0 + 4)] and fx.carried == []


def test_call_ended_with_an_agent_ends_that_agents_conversation() -> None:
    """Two conversations on one call: call_ended naming an agent ends that agent's."""
    fx, call = fold(
        queued(T0), answered(T0 + 5, "a"), queued(T0 + 50, "r"), answered(T0 + 55, "b"),
        ended(T0 + 60, "a"),
    )  # fmt: skip
    assert [a for a, _ in fx.ends] == ["a"] and [c.agent for c in call.convs] == ["b"]


def test_call_ended_without_an_agent_ends_the_latest_conversation() -> None:
    """call_ended without agent (or naming none of them) ends the latest conversation."""
    fx, _ = fold(
        queued(T0), answered(T0 + 5, "a"), queued(T0 + 50, "r"), answered(T0 + 55, "b"),
        ended(T0 + 60), ended(T0 + 61, "zz"),
    )  # fmt: skip
    assert [a for a, _ in fx.ends] == ["b", "a"]


def test_call_end_carries_its_queue_and_talk_time() -> None:
    """A call end names the queue of the leg it was answered from and its times."""
    fx, _ = fold(queued(T0, "r"), answered(T0 + 5), ended(T0 + 65, "a"))
    [(_, end)] = fx.ends
    assert end.key() == ("c", "r", T0 + 5, T0 + 65)


# ----------------------------------------------------------------------------- the track


def test_history_is_sorted_by_time_with_arrival_order_breaking_ties() -> None:
    """Events are kept by ts; equal times stay in arrival order."""
    call = history(answered(T0 + 5), queued(T0), abandoned(T0 + 5))
    assert [(e[0], e[1]) for e in call.events] == [(T0, 2), (T0 + 5, 1), (T0 + 5, 3)]


def test_insert_reports_whether_the_event_went_at_the_end() -> None:
    """insert returns True for an event no earlier than the last, False for a late one."""
    call = CallTrack("c")
    assert call.insert((T0, 1, QUEUED, "q", False))
    assert call.insert((T0, 2, ABANDONED_EV, None, False))
    assert not call.insert((T0 - 1, 3, ANSWERED_EV, "a", False))


def test_id_less_duplicates_compare_type_time_and_agent() -> None:
    """Without ids, the same kind and ts (and agent, for events naming one) is a duplicate;
    a call_queued is one whatever its queue."""
    call = history(queued(T0), (T0 + 5, MISSED, "a"))
    assert call.has_duplicate(T0, QUEUED, "other-queue")
    assert call.has_duplicate(T0 + 5, MISSED, "a")
    assert not call.has_duplicate(T0 + 5, MISSED, "b")  # ring-all: another agent's miss
    assert not call.has_duplicate(T0 + 5, ANSWERED_EV, "a")


def test_events_with_ids_are_not_content_duplicates() -> None:
    """An event that carried an id is deduplicated by id only."""
    call = history(queued(T0), has_id=True)
    assert not call.has_duplicate(T0, QUEUED, "q")


def test_settled_means_nothing_open() -> None:
    """A call is settled with no waiting leg and no conversation."""
    assert not fold(queued(T0))[1].settled()
    assert not fold(queued(T0), answered(T0 + 1))[1].settled()
    assert fold(queued(T0), answered(T0 + 1), ended(T0 + 2))[1].settled()


def test_on_event_table_covers_every_kind() -> None:
    """The documented transition table names every call event kind."""
    assert set(ON_EVENT) == {QUEUED, ROUTED, MISSED, ANSWERED_EV, ABANDONED_EV, DEQUEUED_EV, ENDED}


def test_microseconds_round_to_the_nearest() -> None:
    """Seconds become integer microseconds, rounded (sums never drift)."""
    assert (us(0.1 + 0.2), us(20.0000004), us(0.0)) == (300_000, 20_000_000, 0)


# ----------------------------------------------------------------------------- properties


_call_events = st.lists(
    st.tuples(
        st.integers(0, 40).map(lambda k: T0 + 5.0 * k),
        st.sampled_from([QUEUED, QUEUED, ANSWERED_EV, ABANDONED_EV, DEQUEUED_EV, ENDED, MISSED]),
        st.sampled_from(["q", "r", "a", "b"]),
    ),
    max_size=12,
    unique_by=lambda e: e[0],
)


def _normalise(e: tuple[float, int, str]) -> tuple[float, int, str | None]:
    t, kind, name = e
    if kind == QUEUED:
        return (t, kind, "q" if name in ("q", "a") else "r")
    if kind in (ABANDONED_EV, DEQUEUED_EV):
        return (t, kind, None)
    return (t, kind, "a" if name in ("q", "a") else "b")


@settings(max_examples=200, deadline=None)
@given(_call_events, st.randoms(use_true_random=False))
def test_any_arrival_order_folds_to_the_same_effects(
    events: list[tuple[float, int, str]], rnd: object
) -> None:
    """A call's effects depend on its events, never on the order they were inserted."""
    items = [_normalise(e) for e in events]
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, _ = fold(*items)
    b, _ = fold(*shuffled)
    assert (a.records, a.answers, a.misses, a.orphans, a.dups) == (
        b.records,
        b.answers,
        b.misses,
        b.orphans,
        b.dups,
    )
    assert [e.key() for _, e in a.ends] == [e.key() for _, e in b.ends]


@settings(max_examples=200, deadline=None)
@given(_call_events)
def test_every_leg_has_at_most_one_service_level_event(
    events: list[tuple[float, int, str]],
) -> None:
    """Net sl_offered never exceeds legs offered, and each met or abandoned-in-SL event is
    one of them (SPEC §3: one service-level event per leg)."""
    fx, call = fold(*(_normalise(e) for e in events))
    for queue in ("q", "r"):
        t = fx.totals(queue)
        assert t.get("sl_offered", 0) <= t.get("offered", 0)
        assert t.get("answered_in_sl", 0) + t.get("abandoned_in_sl", 0) <= t.get("sl_offered", 0)
        ended_legs = sum(t.get(k, 0) for k in ("answered", "abandoned", "short_abandoned"))
        ended_legs += t.get("dequeued", 0)
        open_legs = 1 if call.leg is not None and call.leg.queue == queue else 0
        assert ended_legs + open_legs == t.get("offered", 0)


def test_call_event_tuple_shape() -> None:
    """A history entry is (ts, arrival seq, kind, name, had an id)."""
    entry: CallEvent = (T0, 1, QUEUED, "q", True)
    call = CallTrack("c")
    call.insert(entry)
    assert call.events == [entry] and call.last_ts == T0


# ----------------------------------------------------------------------------- the peek


def test_is_duplicate_agrees_with_what_apply_counts() -> None:
    """The duplicate peek answers True exactly for the events apply counts as duplicates."""
    proc = FloorProcessor(config())
    proc.apply(decode(ev("call_queued", T0, call_id="c", queue="q")))
    again = decode(ev("call_queued", T0 + 5, call_id="c", queue="q"))
    peek = proc.is_duplicate(again)
    proc.apply(again)
    assert proc.view.counters().duplicates == 1
    assert peek
