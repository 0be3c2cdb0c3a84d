"""The alert service's re-derivation task: a fault in one re-derivation is counted and
logged, and the task (in the service's task group) goes on."""

from __future__ import annotations

import asyncio
import time

from helpers import T0, config, decode, ev

from callfloor.alerts.driver import AlertDriver
from callfloor.processors.engine import FloorProcessor
from callfloor.service.alerting import AlertService


def test_a_failing_rederivation_is_counted_and_the_task_goes_on() -> None:
    """A late event re-derived from a damaged snapshot counts a failure and the task keeps
    running (an exception ended the task group, so the whole service)."""
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s", "sl_threshold_s": 20}},
            "alerts": {
                "default_rules": False,
                "rules": [{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 5}]}],
            },
        }
    )
    service = AlertService(cfg, clock=time.time)
    proc = FloorProcessor(cfg, live=True)
    driver = service.attach(proc)
    assert isinstance(driver, AlertDriver)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c1", queue="q")))
    proc.tick(T0 + 30)
    assert driver.snapshot(0.0, 3600.0)
    driver.snapshots[-1].floor = b"not a checkpoint"  # the damage
    proc.tick(T0 + 120)
    proc.apply(decode(ev("call_queued", T0 + 60, site="s", call_id="c0", queue="q")))

    async def scenario() -> tuple[int, bool]:
        task = asyncio.create_task(service.run())
        await asyncio.sleep(0)
        service.after_tick([proc])
        for _ in range(100):
            if service.rederive_failures:
                break
            await asyncio.sleep(0.01)
        running = not task.done()
        task.cancel()
        return service.rederive_failures, running

    failures, running = asyncio.run(scenario())
    assert (failures, running) == (1, True)
