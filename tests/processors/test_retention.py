"""Live retention: a live processor forgets what can no longer change, and expires what
never finished, without changing any number an admissible event could still change."""

from __future__ import annotations

import random
import tomllib
from typing import Any

import pytest
from floorgen import EventDict, comparable, floor_config, last_ts, traces
from helpers import T0, config, decode, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from traces import shuffle_within, simulate

from callfloor.config import Config, parse_config
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import build_document
from callfloor.processors.state import encode_checkpoint

Doc = dict[str, Any]

# Every kind of ``expired``: what expired, and names forgotten (processors/forgetting.py).
_EXPIRED_KINDS = (
    "open_legs",
    "conversations",
    "pending_handling",
    "agents",
    "forgotten_queues",
    "forgotten_sites",
    "forgotten_agents",
)


def live_run(
    arrival: list[EventDict], cfg: Config, at: float, *, tick_every: float = 0.0
) -> FloorProcessor:
    """A live processor fed ``arrival``; the service clock follows the newest event (and
    ticks every ``tick_every`` seconds of event time in between when > 0)."""
    proc = FloorProcessor(cfg, live=True)
    for e in arrival:
        if tick_every > 0 and proc.clock > float("-inf"):
            while proc.clock + tick_every < e["ts"]:
                proc.tick(proc.clock + tick_every)
        refusal = proc.apply(decode(e))
        assert refusal is None, refusal
        proc.tick(proc.clock)
    proc.tick(at)
    return proc


def fed(cfg: Config, steps: list[EventDict | float]) -> FloorProcessor:
    """A live processor given events (dicts) and clock ticks (numbers) in this order."""
    proc = FloorProcessor(cfg, live=True)
    for item in steps:
        if isinstance(item, dict):
            assert proc.apply(decode(item)) is None
        else:
            proc.tick(item)
    return proc


def replay_doc(events: list[EventDict], cfg: Config, at: float) -> Doc:
    """The replay (live=False) document of the events in ts order at ``at``."""
    proc = FloorProcessor(cfg)
    for e in sorted(events, key=lambda e: e["ts"]):
        proc.apply(decode(e))
    proc.tick(at)
    return build_document(proc)


def window(doc: Doc, queue: str = "q", name: str = "today") -> dict[str, Any]:
    """One queue window of a document."""
    result: dict[str, Any] = doc["queues"][queue]["windows"][name]
    return result


# ----------------------------------------------------------------------------- admission


def test_live_processor_refuses_events_older_than_max_lateness() -> None:
    """An event older than clock - max_lateness is refused as ts_too_old and counted."""
    proc = FloorProcessor(floor_config(max_lateness="2m"), live=True)
    proc.apply(decode(ev("call_queued", T0, call_id="c", queue="q")))
    refusal = proc.apply(decode(ev("call_abandoned", T0 - 120.5, call_id="c")))
    assert refusal is not None and (refusal.reason, refusal.field) == ("ts_too_old", "ts")
    assert proc.view.counters().rejected == 1
    assert proc.view.stats().rejected_by_reason == {"ts_too_old": 1}
    assert proc.view.queue("q").live.waiting == 1  # type: ignore[union-attr]


def test_event_exactly_max_lateness_old_is_applied() -> None:
    """An event exactly max_lateness behind the clock is still admitted and applied."""
    proc = FloorProcessor(floor_config(max_lateness="2m"), live=True)
    proc.apply(decode(ev("call_queued", T0 - 120, call_id="c", queue="q")))
    proc.apply(decode(ev("agent_state", T0, agent="a", state="available")))
    assert proc.check(decode(ev("call_abandoned", T0 - 120, call_id="c"))) is None
    assert proc.apply(decode(ev("call_abandoned", T0 - 120, call_id="c"))) is None


def test_replay_keeps_everything() -> None:
    """Without live=True nothing is refused for its age and nothing expires."""
    proc = FloorProcessor(floor_config(max_lateness="1m"))
    proc.apply(decode(ev("call_queued", T0, call_id="c", queue="q")))
    proc.apply(decode(ev("agent_state", T0 + 86_400, agent="a", state="available")))
    assert proc.apply(decode(ev("call_abandoned", T0 + 10, call_id="c"))) is None
    proc.tick(T0 + 3 * 86_400)
    assert proc.view.stats().expired == dict.fromkeys(_EXPIRED_KINDS, 0)


# ----------------------------------------------------------------------------- live == replay


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(traces(), st.integers(0, 10_000), st.sampled_from([0.0, 7.0, 30.0]))
def test_live_with_ticks_equals_replay_within_max_lateness(
    events: list[EventDict], seed: int, tick_every: float
) -> None:
    """A random trace arriving up to 50 s late to a live processor that ticks equals the
    replay, when nothing is older than max_lateness (so nothing may expire)."""
    arrival = shuffle_within(events, 50.0, seed)
    at = last_ts(events)
    live = live_run(arrival, floor_config(max_lateness="15m"), at, tick_every=tick_every)
    expected = comparable(replay_doc(events, floor_config(), at))
    assert comparable(build_document(live)) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_retention_on_a_simulated_floor_equals_replay(seed: int) -> None:
    """Three simulated hours arriving up to a minute late, with one hour of max_lateness:
    history is pruned as the clock moves, nothing expires, and the document equals the
    replay's."""
    trace = simulate(seed=seed, agents=8, queues=3, sites=2, hours=3.0)
    data = tomllib.loads(trace.toml)
    replay_cfg = parse_config(data, "<sim>")
    live_cfg = parse_config({**data, "limits": {"max_lateness": "1h"}}, "<sim>")
    arrival = shuffle_within(trace.events, 60.0, seed)
    live = live_run(arrival, live_cfg, trace.last_ts)
    stats = live.view.stats()
    assert sum(stats.expired.values()) == 0
    assert stats.history_events < len(trace.events) // 2  # pruned
    assert comparable(build_document(live)) == comparable(
        replay_doc(trace.events, replay_cfg, trace.last_ts)
    )


# ----------------------------------------------------------------------------- expiry


def test_leg_waiting_longer_than_max_lateness_expires_counted() -> None:
    """A leg still waiting at the horizon is dropped from waiting and counted as expired."""
    proc = live_run([ev("call_queued", T0, call_id="c", queue="q")], config(), T0)
    cfg = floor_config(max_lateness="2m")
    proc = live_run([ev("call_queued", T0, call_id="c", queue="q")], cfg, T0 + 200)
    assert proc.view.queue("q").live.waiting == 0  # type: ignore[union-attr]
    assert proc.view.stats().expired["open_legs"] == 1


def test_agent_silent_longer_than_max_lateness_is_shown_logged_out() -> None:
    """An agent with no agent_state for max_lateness is logged out, counted as expired."""
    cfg = floor_config(max_lateness="2m")
    proc = live_run([ev("agent_state", T0, agent="a", state="available")], cfg, T0 + 200)
    agent = proc.view.agent("a")
    assert agent is not None and agent.state == "logged_out"
    assert proc.view.stats().expired["agents"] == 1


def test_conversation_and_handling_never_finished_expire_counted() -> None:
    """A conversation with no call_ended, and handling no agent_state decided, expire."""
    cfg = floor_config(max_lateness="2m")
    events = [
        ev("call_queued", T0, call_id="c1", queue="q"),
        ev("call_answered", T0 + 5, call_id="c1", agent="a"),
        ev("call_queued", T0 + 6, call_id="c2", queue="q"),
        ev("call_answered", T0 + 7, call_id="c2", agent="b"),
        ev("call_ended", T0 + 20, call_id="c2", agent="b"),
    ]
    expired = live_run(events, cfg, T0 + 400).view.stats().expired
    assert (expired["conversations"], expired["pending_handling"]) == (1, 1)


def test_history_before_the_horizon_is_dropped() -> None:
    """The retained history shrinks as the clock moves past max_lateness."""
    cfg = floor_config(max_lateness="2m")
    events = [
        ev("agent_state", T0 + 10 * k, agent="a", state="available" if k % 2 else "on_call")
        for k in range(60)
    ]
    proc = live_run(events, cfg, T0 + 600)
    assert proc.view.stats().history_events <= 20


# ----------------------------------------------------------------------------- known bugs


def test_late_state_within_max_lateness_still_moves_the_end_of_after_call_work() -> None:
    """A wrap-up spell ended after the horizon can still be shortened by an admissible
    late agent_state, and the call's handle time follows."""
    events = [
        ev("agent_state", T0, agent="a", state="on_call"),
        ev("call_queued", T0, call_id="c", queue="q"),
        ev("call_answered", T0 + 5, call_id="c", agent="a"),
        ev("call_ended", T0 + 30, call_id="c", agent="a"),
        ev("agent_state", T0 + 30, agent="a", state="wrap_up"),
        ev("agent_state", T0 + 300, agent="a", state="available"),
    ]
    late = ev("agent_state", T0 + 250, agent="a", state="not_ready")
    proc = fed(floor_config(max_lateness="5m"), [*events, T0 + 400, late, T0 + 405])
    assert proc.view.stats().expired == dict.fromkeys(_EXPIRED_KINDS, 0)
    expected = replay_doc([*events, late], floor_config(), T0 + 405)
    assert window(build_document(proc))["aht_s"] == window(expected)["aht_s"] == 245.0


def test_leg_ended_by_a_late_event_after_expiry_counts_one_miss() -> None:
    """A leg counted missed and then expired, ended by a late (admissible) abandon, has one
    service-level event, never two."""
    cfg = floor_config(max_lateness="1m")
    proc = FloorProcessor(cfg, live=True)
    for e in [
        ev("call_queued", T0, call_id="c", queue="q"),
        ev("call_routed", T0 + 50, call_id="c", agent="a"),
        ev("call_routed", T0 + 60, call_id="c", agent="a"),
    ]:
        proc.apply(decode(e))
    proc.tick(T0 + 115)  # the leg is older than the horizon: it expires
    proc.apply(decode(ev("call_abandoned", T0 + 58, call_id="c")))
    today = window(build_document(proc))
    assert today["sl_offered"] <= today["offered"] == 1


def test_forgotten_call_still_claims_its_end_within_the_skew() -> None:
    """An abandon held as orphaned is claimed by a call_queued up to 60 s later, even when
    the call_queued arrives late after the abandon passed the horizon."""
    events = [
        ev("call_abandoned", T0 + 100, call_id="c"),
        ev("agent_state", T0 + 160, agent="x", state="available"),
    ]
    late = ev("call_queued", T0 + 150, call_id="c", queue="q")
    proc = fed(floor_config(max_lateness="1m"), [*events, T0 + 170, late, T0 + 175])
    expected = replay_doc([*events, late], floor_config(), T0 + 175)
    assert window(expected)["short_abandoned"] == 1
    assert comparable(build_document(proc)) == comparable(expected)


def test_forgetting_an_old_violation_is_not_a_retraction() -> None:
    """Retention forgetting an ended violation never reports it as retracted."""
    proc = FloorProcessor(config({"limits": {"max_lateness": "48h"}}), live=True)
    proc.apply(decode(ev("agent_state", T0, agent="a", state="not_ready")))
    proc.apply(decode(ev("agent_state", T0 + 700, agent="a", state="available")))
    proc.drain_changes()
    for hour in range(1, 31):
        proc.apply(decode(ev("agent_state", T0 + hour * 3600, agent="a", state="available")))
        proc.tick(T0 + hour * 3600 + 1)
        assert [c for c in proc.drain_changes().violations if c.retracted] == []
    assert proc.view.stats().violations_retracted == []


def test_live_state_stays_bounded_when_payloads_keep_changing() -> None:
    """Checkpoint size does not grow with the number of distinct not-ready reasons (or
    queue lists) an agent ever sent, once retention has dropped their history."""
    cfg = floor_config(max_lateness="1m")
    proc = FloorProcessor(cfg, live=True)
    rnd = random.Random(7)
    sizes = []
    for k in range(1, 1201):
        reason = f"r{rnd.randrange(10**9)}"
        proc.apply(
            decode(
                ev("agent_state", T0 + 10 * k, agent="a", state="not_ready", reason=reason,
                   queues=[reason])
            )
        )  # fmt: skip
        proc.tick(T0 + 10 * k + 1)
        if k % 400 == 0:
            sizes.append(len(encode_checkpoint(proc)))
    assert proc.view.stats().history_events < 20
    assert sizes[-1] < 1.5 * sizes[0]
