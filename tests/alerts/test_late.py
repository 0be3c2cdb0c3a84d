"""Late events in live operation: the timeline is derived again from the snapshot
before them, so the instants are where they belong and a wrong notification is
withdrawn."""

from __future__ import annotations

from alert_util import calls, floor_config, listed
from helpers import T0, decode, ev

from callfloor.alerts.driver import attach_alerts
from callfloor.alerts.notification import Transition
from callfloor.processors.engine import FloorProcessor

RULE = {
    "name": "long_wait",
    "when": [{"metric": "longest_wait_s", "op": ">", "value": 60}],
}


def _live() -> tuple[FloorProcessor, object]:
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

    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
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

    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
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
    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
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
    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
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
