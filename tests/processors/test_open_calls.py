"""``[limits] max_open_calls``: calls waiting at once are bounded (``too_many_calls``).

1,000,000 invented waiting calls once took the live service from 42 MB to 1,169 MB:
nothing capped them, and they expire only after max_lateness (24 h).
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import T0, config, decode, ev

from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import decode_checkpoint, encode_checkpoint


def _cfg(cap: int = 3, **limits: Any) -> Config:
    return config({"limits": {"max_open_calls": cap, **limits}})


def _queued(i: int, t: float = T0, queue: str = "q") -> dict[str, Any]:
    return ev("call_queued", t + i, call_id=f"c{i}", queue=queue)


def _fed(events: list[dict[str, Any]], cfg: Config, *, live: bool = False) -> FloorProcessor:
    proc = FloorProcessor(cfg, live=live)
    for event in events:
        proc.apply(decode(event))
    return proc


@pytest.mark.parametrize("live", [False, True])
def test_a_call_beyond_max_open_calls_is_refused_and_counted(live: bool) -> None:
    """With three calls waiting, a fourth call_queued is refused (too_many_calls), counted
    as rejected, and changes nothing; live and replay alike."""
    proc = _fed([_queued(i) for i in range(3)], _cfg(), live=live)
    refusal = proc.apply(decode(_queued(3)))
    assert refusal is not None and (refusal.reason, refusal.field) == ("too_many_calls", "call_id")
    assert "[limits] max_open_calls" in refusal.message
    assert proc.check(decode(_queued(3))) == refusal
    assert proc.view.queue("q").live.waiting == 3  # type: ignore[union-attr]
    assert proc.rejected_by_reason == {"too_many_calls": 1}
    assert "c3" not in proc.calls


def test_moving_or_repeating_a_waiting_call_is_not_refused_at_the_cap() -> None:
    """At the cap a waiting call may still move to another queue, and a repeat in its own
    queue is a duplicate, not a refusal."""
    proc = _fed([_queued(i) for i in range(3)], _cfg())
    assert proc.apply(decode(ev("call_queued", T0 + 10, call_id="c0", queue="other"))) is None
    assert proc.apply(decode(ev("call_queued", T0 + 11, call_id="c1", queue="q"))) is None
    assert proc.counters["duplicates"] == 1 and proc.counters["rejected"] == 0
    assert proc.n_waiting == 3


def test_a_call_that_stops_waiting_frees_its_place() -> None:
    """Answered, abandoned or dequeued: the place is free for the next call."""
    proc = _fed([_queued(i) for i in range(3)], _cfg())
    proc.apply(decode(ev("call_answered", T0 + 10, call_id="c0", agent="a")))
    assert proc.apply(decode(_queued(3, T0 + 10))) is None
    refusal = proc.apply(decode(_queued(4, T0 + 10)))
    assert refusal is not None and refusal.reason == "too_many_calls"


def test_a_late_answer_that_frees_a_place_keeps_the_count_exact() -> None:
    """A late event that ends a leg (a refold) frees its place like an in-order one."""
    proc = _fed([_queued(i) for i in range(3)], _cfg())
    proc.apply(decode(ev("agent_state", T0 + 60, agent="a", state="available")))
    proc.apply(decode(ev("call_abandoned", T0 + 5, call_id="c1")))  # late: before the clock
    assert proc.n_waiting == 2 == proc.view.stats().open_legs


def test_legs_that_expire_free_their_places_live() -> None:
    """Live, legs waiting longer than max_lateness expire and their places are free."""
    proc = _fed([_queued(i) for i in range(3)], _cfg(max_lateness="2m"), live=True)
    proc.tick(T0 + 600)
    assert proc.n_waiting == 0
    assert proc.apply(decode(_queued(5, T0 + 600))) is None


def test_a_checkpoint_restores_the_count_of_waiting_calls() -> None:
    """A restored processor refuses exactly where the one it was taken from does."""
    cfg = _cfg()
    proc = _fed([_queued(i) for i in range(3)], cfg, live=True)
    restored = decode_checkpoint(cfg, encode_checkpoint(proc), live=True).processor
    assert restored.n_waiting == 3
    refusal = restored.apply(decode(_queued(3)))
    assert refusal is not None and refusal.reason == "too_many_calls"


def test_replay_and_live_refuse_the_same_calls() -> None:
    """The same events give the same document live and in replay, refusals included."""
    events = [_queued(i) for i in range(6)] + [
        ev("call_abandoned", T0 + 10, call_id="c1"),
        _queued(7, T0 + 10),
        _queued(8, T0 + 10),
    ]
    live = _fed(events, _cfg(), live=True)
    replay = _fed(events, _cfg())
    assert build_document(live) == build_document(replay)
    assert live.rejected_by_reason == {"too_many_calls": 4}
