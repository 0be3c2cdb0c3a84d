"""Per-agent day figures: handled_today, aht_today_s, offered_today, answer_rate_today."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from helpers import config, decode, ev, run
from hypothesis import given, settings
from hypothesis import strategies as st

from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import decode_checkpoint, encode_checkpoint

SH = ZoneInfo("Asia/Shanghai")
T = datetime(2026, 11, 23, 10, tzinfo=SH).timestamp()
MIDNIGHT = datetime(2026, 11, 24, tzinfo=SH).timestamp()
CFG = config({"sites": {"s": {"timezone": "Asia/Shanghai"}}, "queues": {"q": {"site": "s"}}})
TODAY = ("handled_today", "aht_today_s", "offered_today", "answer_rate_today")


def st_(ts: float, state: str, agent: str = "a1") -> dict[str, Any]:
    """An agent_state at site s."""
    return ev("agent_state", ts, agent=agent, state=state, site="s", queues=["q"])


def call(kind: str, ts: float, cid: str, **fields: Any) -> dict[str, Any]:
    """A call event at site s."""
    return ev(kind, ts, call_id=cid, site="s", **fields)


def today(doc: dict[str, Any], agent: str = "a1") -> tuple[Any, ...]:
    """The four day figures of an agent, with answered and missed."""
    a = doc["agents"][agent]
    return (a["answered_today"], a["missed_today"], *(a[k] for k in TODAY))


def test_hand_worked_day() -> None:
    """A rung and answered call, a rung and missed call, an unrung answer: 3 offered,
    2 answered (2/3), 1 missed; handled 2 with handle times 75 s and 40 s (57.5 s)."""
    events = [
        st_(T, "available"),
        call("call_queued", T + 1, "c1", queue="q"),
        call("call_routed", T + 2, "c1", agent="a1", queue="q"),
        call("call_answered", T + 5, "c1", agent="a1", queue="q"),
        st_(T + 5, "on_call"),
        call("call_ended", T + 65, "c1", agent="a1"),
        st_(T + 65, "wrap_up"),  # 15 s after-call work: 60 + 15 = 75
        st_(T + 80, "available"),
        call("call_queued", T + 100, "c2", queue="q"),
        call("call_routed", T + 101, "c2", agent="a1", queue="q"),
        call("call_missed", T + 111, "c2", agent="a1", queue="q"),
        call("call_abandoned", T + 130, "c2", queue="q"),
        call("call_queued", T + 200, "c3", queue="q"),
        call("call_answered", T + 210, "c3", agent="a1", queue="q"),
        st_(T + 210, "on_call"),
        call("call_ended", T + 250, "c3", agent="a1"),
        st_(T + 250, "available"),  # no after-call work: 40 s
    ]
    doc = run(events, CFG, at=T + 300)
    assert today(doc) == (2, 1, 2, 57.5, 3, 2 / 3)


def test_nothing_offered_gives_a_null_rate() -> None:
    """An agent offered nothing today: offered 0, answer_rate_today null, aht null."""
    doc = run([st_(T, "available")], CFG, at=T + 60)
    assert today(doc) == (0, 0, 0, None, 0, None)


def test_ring_before_midnight_answered_after_counts_on_both_days() -> None:
    """Rung at 23:59:58 and answered at 00:00:03: offered 1 (answered 0) before midnight,
    offered 1 and answered 1 after, so the rate never passes 1."""
    events = [
        st_(MIDNIGHT - 600, "available"),
        call("call_queued", MIDNIGHT - 5, "c1", queue="q"),
        call("call_routed", MIDNIGHT - 2, "c1", agent="a1", queue="q"),
        call("call_answered", MIDNIGHT + 3, "c1", agent="a1", queue="q"),
    ]
    before = run(events[:3], CFG, at=MIDNIGHT - 1)
    assert today(before)[:1] + today(before)[4:] == (0, 1, 0.0)
    after = run(events, CFG, at=MIDNIGHT + 10)
    assert today(after)[:1] + today(after)[4:] == (1, 1, 1.0)


def test_day_figures_restart_at_site_local_midnight() -> None:
    """Yesterday's offers and handling do not count today."""
    events = [
        st_(T, "available"),
        call("call_queued", T + 1, "c1", queue="q"),
        call("call_answered", T + 5, "c1", agent="a1", queue="q"),
        call("call_ended", T + 65, "c1", agent="a1"),
        st_(T + 65, "available"),
    ]
    assert today(run(events, CFG, at=T + 100)) == (1, 0, 1, 60.0, 1, 1.0)
    assert today(run(events, CFG, at=MIDNIGHT + 1)) == (0, 0, 0, None, 0, None)


def test_day_figures_survive_a_checkpoint() -> None:
    """Offers, carried answers and handling round-trip through the checkpoint."""
    events = [
        st_(MIDNIGHT - 600, "available"),
        call("call_queued", MIDNIGHT - 5, "c1", queue="q"),
        call("call_routed", MIDNIGHT - 2, "c1", agent="a1", queue="q"),
        call("call_answered", MIDNIGHT + 3, "c1", agent="a1", queue="q"),
        call("call_ended", MIDNIGHT + 33, "c1", agent="a1"),
        st_(MIDNIGHT + 33, "available"),
    ]
    proc = FloorProcessor(CFG)
    for e in events:
        proc.apply(decode(e))
    restored = decode_checkpoint(CFG, encode_checkpoint(proc)).processor
    proc.tick(MIDNIGHT + 60)
    restored.tick(MIDNIGHT + 60)
    assert today(build_document(restored)) == today(build_document(proc)) == (
        1, 0, 1, 30.0, 1, 1.0,
    )  # fmt: skip


AGENTS = ("a1", "a2")


@st.composite
def floors(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Calls queued around midnight, rung, missed and answered by two agents."""
    events: list[dict[str, Any]] = [st_(MIDNIGHT - 7200, "available", a) for a in AGENTS]
    n = draw(st.integers(1, 8))
    for i in range(n):
        cid = f"c{i}"
        t = MIDNIGHT + draw(st.integers(-600, 600))
        events.append(call("call_queued", t, cid, queue="q"))
        for _ in range(draw(st.integers(0, 3))):
            agent = draw(st.sampled_from(AGENTS))
            # Distinct times within a call: at equal times arrival order decides (SPEC §1).
            t += draw(st.integers(1, 20))
            kind = draw(st.sampled_from(("call_routed", "call_missed", "call_answered")))
            events.append(call(kind, t, cid, agent=agent, queue="q"))
    return events


@settings(max_examples=150, deadline=None)
@given(floors(), st.randoms(use_true_random=False), st.integers(-700, 700))
def test_answer_rate_is_a_fraction_and_order_independent(
    events: list[dict[str, Any]], rng: Any, read_at: int
) -> None:
    """In any arrival order the day figures are the same, and 0 <= answer_rate <= 1."""
    at = max(MIDNIGHT + read_at, max(e["ts"] for e in events))
    expected = run(events, CFG, at=at)
    shuffled = list(events)
    rng.shuffle(shuffled)
    got = run(shuffled, CFG, at=at)
    for agent in AGENTS:
        assert today(got, agent) == today(expected, agent)
        a = expected["agents"][agent]
        assert a["answered_today"] <= a["offered_today"]
        rate = a["answer_rate_today"]
        assert rate is None or 0.0 <= rate <= 1.0
