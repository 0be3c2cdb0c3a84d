"""Agent-scoped alerts: a band over the agent's day figures, and roster violations
raised through the default violation rules."""

from __future__ import annotations

from alert_util import drive, listed
from helpers import T0, config, ev

from callfloor.alerts.notification import Transition


def test_an_agent_leaving_its_not_ready_band_is_told_at_the_instant() -> None:
    """not_ready_today_s > 1800: firing exactly 30 minutes into the not-ready spell."""
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s"}},
            "alerts": {
                "default_rules": False,
                "rules": [
                    {
                        "name": "nr_band",
                        "scope": "agents:*",
                        "when": [{"metric": "not_ready_today_s", "op": ">", "value": 1800}],
                    }
                ],
            },
        }
    )
    start = T0 + 7200  # well inside one UTC day
    events = [
        ev("agent_state", start, site="s", agent="a", state="available", queues=["q"]),
        ev("agent_state", start + 60, site="s", agent="a", state="not_ready", reason="break"),
    ]
    proc, driver = drive(events, cfg, start + 60 + 3600)
    [alert] = listed(proc)
    assert (alert["rule"], alert["scope"], alert["state"]) == ("nr_band", "a", "firing")
    assert alert["since"] == start + 60 + 1800 - T0
    assert [n.transition for n in driver.engine.drain()] == [Transition.FIRING]


def test_a_late_login_is_an_alert_of_the_default_rules() -> None:
    """A rostered agent not logged in by 08:05 (grace 5 min) has a late_login alert from
    08:05 exactly, resolved when it logs in."""
    day = 1_795_392_000.0  # 2026-11-23 00:00 UTC, a Monday
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "queues": {"q": {"site": "s"}},
            "roster": {
                "shifts": [{"agent": "a", "weekday": "mon", "start": "08:00", "end": "17:00"}]
            },
        }
    )
    events = [
        ev("agent_state", day + 7 * 3600, site="s", agent="a", state="logged_out", queues=["q"]),
        ev("agent_state", day + 8 * 3600 + 600, site="s", agent="a", state="available"),
    ]
    proc, _ = drive(events, cfg, day + 9 * 3600)
    late = [a for a in listed(proc) if a["rule"] == "late_login"]
    assert len(late) == 1
    [alert] = late
    assert alert["state"] == "resolved"
    assert alert["since"] + T0 == day + 8 * 3600 + 300
    assert alert["ended_at"] + T0 == day + 8 * 3600 + 600
