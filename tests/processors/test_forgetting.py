"""Forgetting: queues, sites and agents events created are forgotten once quiet and empty.

200 junk sites from one writer once made every new site fail with ``too_many_sites``
for good: names were never forgotten. Now a name with no activity and no state left for
``[limits] forget_after`` is forgotten on event time, in live operation and replay alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from floorgen import comparable
from helpers import T0, config, decode, ev
from traces import shuffle_within

from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import decode_checkpoint, encode_checkpoint

HOUR = 3600.0
LIMITS = {"forget_after": "2h", "max_lateness": "1h"}
LATER = T0 + 4 * HOUR  # two forget_after past T0: every boundary in between has passed


def _cfg(**extra: Any) -> Config:
    data: dict[str, Any] = {"limits": {**LIMITS, **extra.pop("limits", {})}, **extra}
    return config(data)


def _fed(events: list[dict[str, Any]], cfg: Config, *, live: bool) -> FloorProcessor:
    proc = FloorProcessor(cfg, live=live)
    for event in events:
        proc.apply(decode(event))
    return proc


def _call(cid: str, queue: str, t: float, site: str = "default") -> list[dict[str, Any]]:
    """A call queued and abandoned at once: activity at t, nothing left open."""
    return [
        ev("call_queued", t, call_id=cid, queue=queue, site=site),
        ev("call_abandoned", t + 5, call_id=cid),
    ]


def _junk_sites(n: int, t: float) -> list[dict[str, Any]]:
    """One writer logging n invented agents in and out, each on an invented site."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append(ev("agent_state", t, agent=f"junk{i}", state="available", site=f"junk{i}"))
        out.append(ev("agent_state", t + 1, agent=f"junk{i}", state="logged_out", site=f"junk{i}"))
    return out


@pytest.mark.parametrize("live", [False, True])
def test_junk_sites_are_forgotten_and_a_new_site_is_taken_again(live: bool) -> None:
    """200 junk sites fill max_sites; forget_after later they are forgotten (counted) and a
    legitimate agent on a new site is taken."""
    cfg = _cfg(limits={"max_sites": 200})
    proc = _fed(_junk_sites(200, T0), cfg, live=live)
    legit = decode(ev("agent_state", T0 + 60, agent="alice", state="available", site="lon"))
    refusal = proc.apply(legit)
    assert refusal is not None and refusal.reason == "too_many_sites"
    proc.tick(LATER)
    later = decode(ev("agent_state", LATER + 1, agent="alice", state="available", site="lon"))
    assert proc.apply(later) is None
    assert proc.view.agent("alice") is not None and sorted(proc.sites) == ["lon"]
    expired = proc.view.stats().expired
    assert (expired["forgotten_sites"], expired["forgotten_agents"]) == (200, 200)


@pytest.mark.parametrize("live", [False, True])
def test_a_quiet_queue_is_forgotten_and_its_slot_is_free(live: bool) -> None:
    """Queues whose calls ended are forgotten after forget_after; a new queue fits again."""
    cfg = _cfg(limits={"max_queues": 2})
    proc = _fed([*_call("c1", "q1", T0), *_call("c2", "q2", T0)], cfg, live=live)
    refusal = proc.apply(decode(ev("call_queued", T0 + 60, call_id="c3", queue="q3")))
    assert refusal is not None and refusal.reason == "too_many_queues"
    proc.tick(LATER)
    assert proc.apply(decode(ev("call_queued", LATER + 1, call_id="c3", queue="q3"))) is None
    assert sorted(proc.queues) == ["q3"]
    assert proc.view.stats().expired["forgotten_queues"] == 2


def test_a_queue_active_within_forget_after_is_kept() -> None:
    """A queue with a call less than forget_after ago stays, whatever the boundaries."""
    proc = _fed([*_call("c1", "q1", T0), *_call("c2", "q1", T0 + 3 * HOUR)], _cfg(), live=True)
    proc.tick(T0 + 4.5 * HOUR)
    assert "q1" in proc.queues


def test_a_queue_with_a_waiting_caller_is_kept_in_replay() -> None:
    """Replay keeps a leg that never ended (SPEC): its queue is not empty, so it stays."""
    proc = _fed([ev("call_queued", T0, call_id="c1", queue="q1")], _cfg(), live=False)
    proc.tick(LATER)
    assert proc.view.queue("q1").live.waiting == 1  # type: ignore[union-attr]


def test_live_expiry_then_forgetting_frees_a_queue_a_caller_never_left() -> None:
    """Live, a leg waiting longer than max_lateness expires; forget_after after the call
    arrived, the queue is forgotten too."""
    proc = _fed([ev("call_queued", T0, call_id="c1", queue="q1")], _cfg(), live=True)
    proc.tick(LATER)
    assert "q1" not in proc.queues and proc.n_waiting == 0


def test_a_queue_a_logged_in_agent_serves_is_kept() -> None:
    """A queue is not forgotten while a logged-in agent serves it (it shows that agent)."""
    events = [
        *_call("c1", "q1", T0),
        ev("agent_state", T0, agent="a", state="available", queues=["q1"]),
    ]
    proc = _fed(events, _cfg(), live=False)
    proc.tick(LATER)
    assert "q1" in proc.queues and "a" in proc.agents


def test_configured_queues_and_sites_are_never_forgotten() -> None:
    """A configured queue and a configured site stay, however quiet."""
    cfg = _cfg(queues={"sales": {"site": "sh"}}, sites={"bj": {"timezone": "Asia/Shanghai"}})
    events = [
        *_call("c1", "sales", T0, site="sh"),
        ev("agent_state", T0, agent="a", state="available", site="bj"),
        ev("agent_state", T0 + 1, agent="a", state="logged_out", site="bj"),
    ]
    proc = _fed(events, cfg, live=True)
    proc.tick(LATER)
    assert "sales" in proc.queues and {"sh", "bj"} <= set(proc.sites)
    assert "a" not in proc.agents  # the agent is forgotten; its configured site is not


def test_an_agent_is_kept_while_logged_in_and_forgotten_once_logged_out_and_quiet() -> None:
    """Replay: a logged-in agent stays; once logged out for forget_after it is forgotten."""
    proc = _fed([ev("agent_state", T0, agent="a", state="available")], _cfg(), live=False)
    proc.tick(LATER)
    assert "a" in proc.agents
    proc.apply(decode(ev("agent_state", LATER + 1, agent="a", state="logged_out")))
    proc.tick(LATER + 3 * HOUR)
    assert "a" not in proc.agents and proc.view.agent("a") is None


def test_a_forgotten_queue_named_again_starts_afresh() -> None:
    """A call_queued naming a forgotten queue creates it again, with this event's site."""
    proc = _fed(_call("c1", "q1", T0, site="sh"), _cfg(), live=True)
    proc.tick(LATER)
    proc.apply(decode(ev("call_queued", LATER + 1, call_id="c2", queue="q1", site="bj")))
    q = proc.view.queue("q1")
    assert q is not None and q.site == "bj" and q.live.waiting == 1


def test_a_very_late_event_of_a_forgotten_call_is_an_orphan_in_replay() -> None:
    """Replay: the calls of a forgotten queue go with it; an event for one of them that
    arrives later still is an orphan (as after live retention), never an error."""
    proc = _fed(_call("c1", "q1", T0), _cfg(), live=False)
    proc.tick(LATER)
    assert proc.apply(decode(ev("call_answered", T0 + 2, call_id="c1", agent="a"))) is None
    assert proc.counters["orphaned"] == 1 and "q1" not in proc.queues


def test_a_checkpoint_keeps_what_forgetting_needs() -> None:
    """Restored from a checkpoint mid-way, a processor forgets exactly what one that ran
    through forgets."""
    cfg = _cfg(limits={"max_queues": 2})
    events = [*_call("c1", "q1", T0), *_call("c2", "q2", T0 + HOUR)]
    through = _fed(events, cfg, live=True)
    restored = decode_checkpoint(cfg, encode_checkpoint(_fed(events, cfg, live=True)), live=True)
    after = restored.processor
    for proc in (through, after):
        proc.tick(T0 + 2.9 * HOUR)
    assert sorted(through.queues) == sorted(after.queues) == ["q2"]
    for proc in (through, after):
        proc.tick(LATER)
    assert through.queues == after.queues == {}


def _episodes(seed: int) -> list[dict[str, Any]]:
    """Three quiet-separated episodes of a small floor, each ending with every call over
    and every agent logged out, names reused across episodes and invented ones not."""
    out: list[dict[str, Any]] = []
    for k in range(3):
        t = T0 + k * 5 * HOUR
        for i in range(4):
            agent = f"a{i}" if i < 2 else f"temp{k}-{i}"
            site = "sh" if i % 2 else f"site{k}"
            out.append(ev("agent_state", t, agent=agent, state="available", site=site))
        for i in range(6):
            cid = f"c{k}-{i}"
            queue = "q" if i % 2 else f"tmp{k}"
            at = t + 10 + 20 * i
            agent = f"a{i % 2}"
            out.append(ev("call_queued", at, call_id=cid, queue=queue, site="sh"))
            if (i + seed) % 3:
                out.append(ev("call_answered", at + 7, call_id=cid, agent=agent))
                out.append(ev("call_ended", at + 60, call_id=cid, agent=agent))
            else:
                out.append(ev("call_abandoned", at + 9, call_id=cid))
        for i in range(4):
            agent = f"a{i}" if i < 2 else f"temp{k}-{i}"
            site = "sh" if i % 2 else f"site{k}"
            out.append(ev("agent_state", t + 600, agent=agent, state="logged_out", site=site))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_live_arriving_out_of_order_forgets_what_replay_forgets(seed: int) -> None:
    """Episodes hours apart, arriving up to 50 s late live: the live processor (ticking)
    and the replay forget the same names, and their documents are equal."""
    events = _episodes(seed)
    at = events[-1]["ts"] + HOUR  # the last episode's names are still there
    cfg = _cfg()
    live = FloorProcessor(cfg, live=True)
    for event in shuffle_within(events, 50.0, seed):
        live.tick(event["ts"] - 50.0)
        live.apply(decode(event))
    live.tick(at)
    replay = _fed(events, cfg, live=False)
    replay.tick(at)
    # q and tmp0 after the first episode (the second's queues still count today: same
    # UTC day); a0, a1 after each of the first two, and the four temporary agents.
    forgotten = live.view.stats().expired
    assert (forgotten["forgotten_queues"], forgotten["forgotten_agents"]) == (2, 8)
    assert {k: v for k, v in live.expired.items() if k.startswith("forgotten")} == {
        k: v for k, v in replay.expired.items() if k.startswith("forgotten")
    }
    assert comparable(build_document(live)) == comparable(build_document(replay))


def test_a_call_end_dropped_by_forgetting_still_counts_in_handled_today() -> None:
    """Forgetting drops call ends decided before its cut; live retention has moved them
    into the agent's handled times by then, so replay must keep them there too: with a
    short forget_after, a call handled earlier today still counts in handled_today."""
    cfg = _cfg()
    t = T0 - 12 * HOUR if (T0 % 86400.0) >= 12 * HOUR else T0
    events = [
        ev("agent_state", t, agent="a1", state="available"),
        ev("call_queued", t + 10, call_id="c1", queue="q"),
        ev("call_answered", t + 20, call_id="c1", agent="a1"),
        ev("call_ended", t + 80, call_id="c1", agent="a1"),
        ev("agent_state", t + 80, agent="a1", state="wrap_up"),
        ev("agent_state", t + 100, agent="a1", state="available"),
        ev("agent_state", t + 5 * HOUR, agent="a1", state="available"),
    ]
    for live in (False, True):
        proc = _fed(events, cfg, live=live)
        proc.tick(t + 5 * HOUR + 1)
        doc = build_document(proc)
        assert doc["agents"]["a1"]["handled_today"] == 1, live
