"""Violation alerts (one rule per kind, SPEC §4): one alert per agent and kind, whose
concurrent violations (the daily not-ready limits) escalate it rather than flap."""

from __future__ import annotations

from helpers import T0, config, decode, ev

from callfloor.alerts.driver import attach_alerts
from callfloor.alerts.notification import Transition
from callfloor.alerts.rules import DEFAULT_RULE_NAMES
from callfloor.processors.engine import FloorProcessor

START = T0 - 20_000.0  # 16:53 UTC: the whole test is one site-local day


def _floor() -> tuple[FloorProcessor, object]:
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s"}},
            "alerts": {
                "disable": [n for n in DEFAULT_RULE_NAMES if n != "not_ready_daily_exceeded"]
            },
        }
    )
    proc = FloorProcessor(cfg, live=True)
    driver = attach_alerts(proc, cfg, notify=True)
    assert driver is not None
    proc.apply(
        decode(ev("agent_state", START - 60, site="s", agent="a", state="available", queues=["q"]))
    )
    return proc, driver


def test_both_daily_limits_fire_once_then_escalate_without_flapping() -> None:
    """Not ready from the start, the reason changing every 10 minutes: the 30-minute
    limit fires (minor), the 45-minute one escalates it (major), and later events
    send nothing more."""
    proc, driver = _floor()
    proc.apply(
        decode(ev("agent_state", START, site="s", agent="a", state="not_ready", reason="r0"))
    )
    for i in range(1, 8):
        proc.apply(
            decode(
                ev(
                    "agent_state",
                    START + 600 * i,
                    site="s",
                    agent="a",
                    state="not_ready",
                    reason=f"r{i}",
                )
            )
        )
    proc.tick(START + 5000)
    notes = driver.engine.drain()  # type: ignore[attr-defined]
    assert [(n.transition, n.severity, n.emitted_at - START) for n in notes] == [
        (Transition.FIRING, "minor", 1800.0),
        (Transition.ESCALATED, "major", 2700.0),
    ]
    [alert] = driver.engine.active.values()  # type: ignore[attr-defined]
    assert (alert.since - START, alert.severity) == (1800.0, "major")
