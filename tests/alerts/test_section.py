"""The alert state is a named section of the checkpoint envelope."""

from __future__ import annotations

import msgspec
from alert_util import drive, floor_config
from helpers import T0, decode, ev

from callfloor.alerts.driver import attach_alerts
from callfloor.alerts.engine import AlertEngine
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.state import decode_checkpoint, encode_checkpoint
from callfloor.service.alerting import ALERTS_SECTION, AlertSection


def test_the_alert_section_round_trips_through_a_checkpoint() -> None:
    """A firing alert, acknowledged, and delivered keys come back as they were."""
    cfg = floor_config([{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}])
    events = [
        ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]),
        ev("call_queued", T0, site="s", call_id="c", queue="q"),
    ]
    proc, driver = drive(events, cfg, T0 + 10)
    [alert] = driver.engine.active.values()
    driver.engine.acknowledge(alert.fingerprint, "ada", "looking", proc.clock)
    section = AlertSection(alerts=driver.save(), delivered={"k:firing:1.0": 5.0})
    blob = encode_checkpoint(proc, sections={ALERTS_SECTION.name: section})
    restored = decode_checkpoint(cfg, blob).section(ALERTS_SECTION)
    assert restored == section
    engine = AlertEngine(cfg.alerts.rules)
    engine.restore(restored.alerts.engine)
    [back] = engine.active.values()
    assert (back.state, back.acknowledged_by, back.since) == ("firing", "ada", T0)


def test_a_checkpoint_without_the_section_reads_as_empty() -> None:
    """A checkpoint written before alerts existed restores no alert."""
    cfg = floor_config([{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}])
    proc, _ = drive([ev("call_queued", T0, site="s", call_id="c", queue="q")], cfg, T0)
    blob = encode_checkpoint(proc)
    assert decode_checkpoint(cfg, blob).section(ALERTS_SECTION) == AlertSection()


def test_the_section_does_not_grow_on_a_quiet_floor() -> None:
    """Hours without events, a snapshot a minute: the checkpoint section keeps the size
    it had after two hours (snapshots must not nest the oldest one's bytes)."""
    cfg = floor_config([{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 5}]}])
    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    driver.keep_events()
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    sizes = []
    for minute in range(1, 5 * 60 + 1):
        proc.tick(T0 + 60.0 * minute)
        driver.snapshot(60.0, 3600.0)
        if minute % 60 == 0:
            sizes.append(len(msgspec.msgpack.encode(driver.save(20_000))))
    assert max(sizes[1:]) <= sizes[1] + 64, sizes
