"""A partition given up withdraws its sites' notifications from the outbox."""

from __future__ import annotations

import time

from alert_util import drive
from helpers import T0, config, ev

from callfloor.service.alerting import AlertService


def test_a_dropped_partition_takes_its_queued_notifications_away() -> None:
    """Its new owner notifies for it: nothing of its sites stays queued here."""
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s"}},
            "alerts": {
                "default_rules": False,
                "rules": [{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}],
                "sinks": {"hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}},
            },
        }
    )
    service = AlertService(cfg, clock=time.time)
    assert service.outbox is not None
    proc, driver = drive(
        [
            ev("agent_state", T0 - 60, site="s", agent="a", state="available", queues=["q"]),
            ev("call_queued", T0, site="s", call_id="c", queue="q"),
        ],
        cfg,
        T0 + 10,
    )
    service.outbox.submit_all(driver.engine.drain())
    assert [n.rule for n in service.outbox.pending()["hook"]] == ["w"]
    service.dropped("s", proc)
    assert service.outbox.pending()["hook"] == []
