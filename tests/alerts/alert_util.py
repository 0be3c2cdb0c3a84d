"""Floors for the alert tests: a queue with one agent, calls answered after a wait."""

from __future__ import annotations

from typing import Any

from helpers import T0, config, decode, ev

from callfloor.alerts.driver import AlertDriver, attach_alerts
from callfloor.config import Config
from callfloor.processors.engine import FloorProcessor


def floor_config(rules: list[dict[str, Any]], **alerts: Any) -> Config:
    """Queue ``q`` (T = 20 s, target 0.8) at site ``s``; only ``rules`` (no defaults)."""
    return config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s", "sl_threshold_s": 20, "sl_target": 0.8}},
            "alerts": {"default_rules": False, "rules": rules, **alerts},
        }
    )


def calls(waits: list[float], every: float = 30.0, start: float = T0) -> list[dict[str, Any]]:
    """An agent logged in, then one call per ``every`` seconds answered after each wait."""
    out = [ev("agent_state", start - 60, site="s", agent="a", state="available", queues=["q"])]
    for i, wait in enumerate(waits):
        t = start + every * i
        out.append(ev("call_queued", t, site="s", call_id=f"c{i}", queue="q"))
        out.append(ev("call_answered", t + wait, site="s", call_id=f"c{i}", queue="q", agent="a"))
    out.sort(key=lambda e: e["ts"])
    return out


def drive(
    events: list[dict[str, Any]], cfg: Config, at: float, *, notify: bool = True
) -> tuple[FloorProcessor, AlertDriver]:
    """Apply ``events`` in the given order with an alert driver, tick to ``at``."""
    proc = FloorProcessor(cfg)
    driver = attach_alerts(proc, cfg, notify=notify)
    assert driver is not None
    for e in events:
        proc.apply(decode(e))
    proc.tick(at)
    return proc, driver


def listed(proc: FloorProcessor) -> list[dict[str, Any]]:
    """The document's alert list as dicts, times relative to T0."""
    out = []
    for a in proc.view.alerts():
        out.append(
            {
                "rule": a.rule,
                "scope": a.scope,
                "state": str(a.state),
                "severity": str(a.severity),
                "since": a.since - T0,
                "fired_at": None if a.fired_at is None else a.fired_at - T0,
                "ended_at": None if a.ended_at is None else a.ended_at - T0,
                "value": a.value,
            }
        )
    return out
