"""The live service's alert side: the backfill filter (old history of a backfill tells
nobody, the end of a told alert always goes out) and the alert API's values."""

from __future__ import annotations

from alert_util import floor_config
from helpers import T0, decode, ev

from callfloor.processors.engine import FloorProcessor
from callfloor.service.alerting import AlertService

RULE = {
    "name": "long_wait",
    "when": [{"metric": "longest_wait_s", "op": ">", "value": 60}],
}


def test_the_resolve_of_a_told_alert_is_sent_however_old() -> None:
    """Fired and told at +60; the answer at +200 is processed 15 minutes behind the wall
    clock: its resolve still goes out (it is not a backfill's old history)."""
    cfg = floor_config([RULE])
    wall = [T0 + 100]
    service = AlertService(cfg, clock=lambda: wall[0])
    proc = FloorProcessor(cfg, live=True)
    assert service.attach(proc) is not None
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    proc.tick(T0 + 100)
    assert service.drain([proc]) == 1
    proc.apply(decode(ev("call_answered", T0 + 200, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 201)
    wall[0] = T0 + 200 + 900
    assert service.drain([proc]) == 1
    assert service.suppressed_backfill == 0


def test_a_backfilled_alert_that_fired_and_resolved_long_ago_tells_nobody() -> None:
    """Firing and resolve of the same old episode in one drain: both withheld."""
    cfg = floor_config([RULE])
    service = AlertService(cfg, clock=lambda: T0 + 3600)
    proc = FloorProcessor(cfg, live=True)
    assert service.attach(proc) is not None
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    proc.apply(decode(ev("call_answered", T0 + 200, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 201)
    assert service.drain([proc]) == 0
    assert service.suppressed_backfill == 2


def test_the_alert_api_gives_the_value_now_like_the_snapshot() -> None:
    """A longest-wait alert fired at +60 read at +500: the API's value is 500, as in the
    document, not the 60 it had when it fired."""
    cfg = floor_config([RULE])
    service = AlertService(cfg, clock=lambda: T0 + 500)
    proc = FloorProcessor(cfg, live=True)
    assert service.attach(proc) is not None
    proc.apply(
        decode(ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="q")))
    proc.tick(T0 + 500)
    [alert] = service.alerts([proc])
    [listed] = proc.view.alerts()
    assert alert.value == listed.value == 500.0
