"""Late events in live operation: the timeline is derived again from the snapshot
before them, so the instants are where they belong and a wrong notification is
withdrawn."""

from __future__ import annotations

from alert_util import calls, floor_config, listed
from helpers import T0, config, decode, ev

from callfloor.alerts.driver import AlertDriver, attach_alerts
from callfloor.alerts.notification import Transition
from callfloor.alerts.rules import DEFAULT_RULE_NAMES
from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor

RULE = {
    "name": "long_wait",
    "when": [{"metric": "longest_wait_s", "op": ">", "value": 60}],
}


def _live(cfg: Config | None = None) -> tuple[FloorProcessor, AlertDriver]:
    """A live processor with its alert driver keeping events for re-derivation
    (``cfg``: default, the long-wait rule alone)."""
    if cfg is None:
        cfg = floor_config([RULE])
    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
    return proc, driver


def test_a_late_answer_withdraws_a_notified_alert() -> None:
    """Fired at +60 and notified; the answer at +30 arrives late: a withdrawn resolve,
    and the list no longer has it."""
    proc, driver = _live()
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    driver.snapshot(0.0, 3600.0)  # type: ignore[attr-defined]
    proc.tick(T0 + 100)
    assert [n.transition for n in driver.engine.drain()] == [Transition.FIRING]  # type: ignore[attr-defined]
    proc.apply(decode(ev("call_answered", T0 + 30, site="s", call_id="c", agent="a")))
    assert driver.rederive()  # type: ignore[attr-defined]
    assert listed(proc) == []
    [note] = driver.engine.drain()  # type: ignore[attr-defined]
    assert note.transition == Transition.WITHDRAWN and note.state == "resolved"


def test_a_late_event_moves_the_instants_like_replay() -> None:
    """Calls whose answers arrive a minute late give the instants of the same calls in
    time order."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
        "min_volume": 5,
    }
    cfg = floor_config([rule])
    waits = [5.0] * 20 + [40.0] * 20 + [5.0] * 20
    events = calls(waits)
    end = T0 + 30.0 * len(waits)
    ordered = FloorProcessor(cfg)
    attach_alerts(ordered, cfg)
    for e in events:
        ordered.apply(decode(e))
    ordered.tick(end)

    proc, driver = _live(cfg)
    # Answers are held back a minute: each arrives after the events of the next minute.
    late = sorted(
        events, key=lambda e: float(e["ts"]) + (60.0 if e["type"] == "call_answered" else 0.0)
    )  # type: ignore[arg-type]
    for e in late:
        proc.apply(decode(e))
        driver.snapshot(60.0, 3600.0)
        driver.rederive()
    proc.tick(end)
    assert driver.late_events > 0 and driver.rederivations > 0
    assert listed(proc) == listed(ordered)


def _live_violations() -> tuple[FloorProcessor, object]:
    """A live floor with only the not_ready_exceeded rule (limit 10 min), events kept."""
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s"}},
            "alerts": {"disable": [n for n in DEFAULT_RULE_NAMES if n != "not_ready_exceeded"]},
        }
    )
    proc, driver = _live(cfg)
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    return proc, driver


def test_a_violation_a_late_event_reveals_is_notified() -> None:
    """A late not_ready at +30 shows a violation firing since +630: re-derivation
    notifies its firing."""
    proc, driver = _live_violations()
    driver.snapshot(0.0, 3600.0)  # type: ignore[attr-defined]
    proc.tick(T0 + 700)
    proc.apply(decode(ev("agent_state", T0 + 30, site="s", agent="a", state="not_ready")))
    assert driver.rederive()  # type: ignore[attr-defined]
    proc.tick(T0 + 710)
    notes = driver.engine.drain()  # type: ignore[attr-defined]
    assert [(n.transition, n.fired_at) for n in notes] == [(Transition.FIRING, T0 + 630)]


def test_a_notified_violation_a_late_event_disproves_is_withdrawn() -> None:
    """Not ready from +0, notified at +600; a late available at +100 shows it never
    happened: a withdrawn resolve is sent."""
    proc, driver = _live_violations()
    proc.apply(decode(ev("agent_state", T0, site="s", agent="a", state="not_ready")))
    driver.snapshot(0.0, 3600.0)  # type: ignore[attr-defined]
    proc.tick(T0 + 700)
    assert [n.transition for n in driver.engine.drain()] == [Transition.FIRING]  # type: ignore[attr-defined]
    proc.apply(decode(ev("agent_state", T0 + 100, site="s", agent="a", state="available")))
    assert driver.rederive()  # type: ignore[attr-defined]
    proc.tick(T0 + 710)
    notes = driver.engine.drain()  # type: ignore[attr-defined]
    assert [n.transition for n in notes] == [Transition.WITHDRAWN]


def test_a_resolve_a_late_event_disproves_is_followed_by_a_new_firing_key() -> None:
    """Resolved at +101 and both told; a late call waiting since +20 shows the alert
    still firing: its firing is sent again under a key the receiver has not seen."""
    proc, driver = _live()
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    driver.snapshot(0.0, 3600.0)  # type: ignore[attr-defined]
    proc.apply(decode(ev("call_answered", T0 + 101, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 200)
    told = driver.engine.drain()  # type: ignore[attr-defined]
    assert [n.transition for n in told] == [Transition.FIRING, Transition.RESOLVED]
    proc.apply(decode(ev("call_queued", T0 + 20, site="s", call_id="e", queue="q")))
    assert driver.rederive()  # type: ignore[attr-defined]
    [note] = driver.engine.drain()  # type: ignore[attr-defined]
    assert note.transition == Transition.FIRING and note.fired_at == T0 + 60
    assert note.key not in {n.key for n in told}


def test_an_acknowledgement_holds_when_a_late_event_moves_the_firing() -> None:
    """Acknowledged after firing at +90; a late call waiting since +0 moves the firing
    to +60: the alert stays acknowledged and sends no repeat."""
    rule = {**RULE, "repeat": "5m"}
    cfg = floor_config([rule])
    proc, driver = _live(cfg)
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    driver.snapshot(0.0, 3600.0)
    proc.apply(decode(ev("call_queued", T0 + 30, site="s", call_id="c", queue="q")))
    proc.tick(T0 + 100)
    [fired] = driver.engine.drain()
    assert driver.engine.acknowledge(fired.fingerprint, "ops", "on it", proc.clock)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="e", queue="q")))
    assert driver.rederive()
    proc.tick(T0 + 1000)
    [alert] = driver.engine.active.values()
    assert (alert.fired_at, alert.acknowledged_by) == (T0 + 60, "ops")
    assert [n.transition for n in driver.engine.drain()] == []


def test_resolved_alerts_are_forgotten_after_two_days_live() -> None:
    """A live floor keeps a resolved alert for the list, and forgets it 48 h later."""
    proc, driver = _live()
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    proc.apply(decode(ev("call_answered", T0 + 100, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 200)
    driver.snapshot(60.0, 3600.0)  # type: ignore[attr-defined]
    assert len(driver.engine.history) == 1  # type: ignore[attr-defined]
    proc.tick(T0 + 49 * 3600)
    driver.snapshot(60.0, 3600.0)  # type: ignore[attr-defined]
    assert driver.engine.history == []  # type: ignore[attr-defined]


def test_an_event_at_the_snapshot_instant_after_it_is_kept_by_re_derivation() -> None:
    """Call d queued at the snapshot's own instant, after the snapshot was taken, still
    waits when a late answer of call c re-derives: the alert stays, nothing withdrawn."""
    proc, driver = _live()
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    driver.snapshot(0.0, 3600.0)  # type: ignore[attr-defined]
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="d", queue="q")))
    proc.tick(T0 + 200)
    assert [n.transition for n in driver.engine.drain()] == [Transition.FIRING]  # type: ignore[attr-defined]
    proc.apply(decode(ev("call_answered", T0 + 50, site="s", call_id="c", agent="a")))
    assert driver.rederive()  # type: ignore[attr-defined]
    assert driver.engine.drain() == []  # type: ignore[attr-defined]
    [alert] = listed(proc)
    assert (alert["state"], alert["fired_at"]) == ("firing", 60.0)


def test_an_event_at_the_instant_of_a_tick_is_late_for_the_alerts() -> None:
    """The floor was ticked to +0 and evaluated there; the answer at +0 that follows is
    re-derived like a late one, so the list is replay's (nothing), not a fire and resolve
    at the same instant."""
    rule = {"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}
    cfg = floor_config([rule])
    proc, driver = _live(cfg)
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    driver.snapshot(0.0, 3600.0)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    proc.tick(T0)
    proc.apply(decode(ev("call_answered", T0, site="s", call_id="c", agent="a")))
    driver.rederive()
    proc.tick(T0 + 10)
    assert listed(proc) == []


def test_an_event_at_the_instant_a_checkpoint_evaluated_is_late_for_the_alerts() -> None:
    """A checkpoint evaluates the alerts at the clock (+0); the answer at +0 after it is
    re-derived like a late one: nothing listed, as in replay."""
    rule = {"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}
    cfg = floor_config([rule])
    proc, driver = _live(cfg)
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    driver.snapshot(0.0, 3600.0)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    driver.save(20_000)
    proc.apply(decode(ev("call_answered", T0, site="s", call_id="c", agent="a")))
    driver.rederive()
    proc.tick(T0 + 10)
    assert listed(proc) == []


def test_a_rederivation_in_slices_takes_the_events_applied_between_them() -> None:
    """A re-derivation run in slices while the live processor takes more events (some of
    them late again) ends, with the next one, at the instants of the events in time
    order."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
        "min_volume": 5,
    }
    cfg = floor_config([rule])
    waits = [5.0] * 20 + [40.0] * 20 + [5.0] * 20
    events = calls(waits)
    end = T0 + 30.0 * len(waits)
    ordered = FloorProcessor(cfg)
    attach_alerts(ordered, cfg)
    for e in events:
        ordered.apply(decode(e))
    ordered.tick(end)

    proc, driver = _live(cfg)
    late = sorted(
        events, key=lambda e: float(e["ts"]) + (60.0 if e["type"] == "call_answered" else 0.0)
    )  # type: ignore[arg-type]
    for e in late[:60]:
        proc.apply(decode(e))
        driver.snapshot(60.0, 3600.0)
    rest = [decode(e) for e in late[60:]]
    # One more event between every two slices of three (as the writer applies them).
    while driver.late_since is not None or rest:
        steps = driver.rederive_steps(slice_events=3)
        while True:
            try:
                next(steps)
            except StopIteration:
                break
            if rest:
                proc.apply(rest.pop(0))
                assert not driver.snapshot(60.0, 3600.0)  # none while re-deriving
        if rest and driver.late_since is None:
            proc.apply(rest.pop(0))
    proc.tick(end)
    assert driver.rederivations > 1
    assert listed(proc) == listed(ordered)


def test_snapshots_taken_while_late_events_wait_are_no_base() -> None:
    """Snapshots offered after each event while late ones wait for their re-derivation
    (as ticks do while it runs), re-derived every 60 events, end exact."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
        "min_volume": 5,
    }
    cfg = floor_config([rule])
    waits = [5.0] * 20 + [40.0] * 20 + [5.0] * 20
    events = calls(waits)
    end = T0 + 30.0 * len(waits)
    ordered = FloorProcessor(cfg)
    attach_alerts(ordered, cfg)
    for e in events:
        ordered.apply(decode(e))
    ordered.tick(end)
    proc, driver = _live(cfg)
    arrival = sorted(
        events, key=lambda e: float(e["ts"]) + (60.0 if e["type"] == "call_answered" else 0.0)
    )  # type: ignore[arg-type]
    for i, e in enumerate(arrival):
        proc.apply(decode(e))
        driver.snapshot(60.0, 3600.0)
        if i % 60 == 59:
            assert driver.rederive()
    assert driver.rederive()
    proc.tick(end)
    assert listed(proc) == listed(ordered)


def test_an_acknowledgement_holds_when_a_late_event_moves_the_firing_earlier() -> None:
    """An acknowledged alert whose firing a late call moves 30 s earlier stays
    acknowledged, and no repeat is sent (the acknowledgement was lost, repeats paged)."""
    cfg = floor_config([{**RULE, "repeat": "5m"}])
    proc, driver = _live(cfg)
    proc.apply(
        decode(ev("agent_state", T0 - 600, site="s", agent="a", state="available", queues=["q"]))
    )
    driver.snapshot(0.0, 3600.0)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c1", queue="q")))
    proc.tick(T0 + 100)
    [fired] = driver.engine.drain()
    assert driver.engine.acknowledge(fired.fingerprint, "ada", "on it", proc.clock) is not None
    proc.apply(decode(ev("call_queued", T0 - 30, site="s", call_id="c0", queue="q")))
    assert driver.rederive()
    [alert] = driver.engine.active.values()
    assert (alert.fired_at, alert.acknowledged_by) == (T0 + 30, "ada")
    proc.tick(T0 + 1000)
    assert [n.transition for n in driver.engine.drain()] == []
