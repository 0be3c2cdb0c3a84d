"""Per-agent series: off by default; identity labels and per-agent violations when on."""

from __future__ import annotations

from helpers import config, decode, ev, processor
from metrics_util import AT, B, samples, scenario, scenario_proc, scrape, value

from callfloor.metrics import build_registry, render

_ON = {"metrics": {"per_agent_series": True}}


def test_per_agent_series_are_off_by_default() -> None:
    """Without the option no callfloor_agent_* family is exposed."""
    fams = scrape(scenario_proc())
    assert not [name for name in fams if name.startswith("callfloor_agent_")]


def test_per_agent_series_when_enabled() -> None:
    """The current state, spell time and today's counts appear, labelled by agent and team."""
    fams = scrape(scenario_proc(config(_ON)))
    a1 = {"agent": "a1", "team": "blue"}
    a2 = {"agent": "a2", "team": ""}
    assert value(fams, "callfloor_agent_state", **a1, state="available") == 1
    assert value(fams, "callfloor_agent_state", **a1, state="on_call") is None
    assert value(fams, "callfloor_agent_state_seconds", **a1) == AT - (B + 130)
    assert value(fams, "callfloor_agent_answered_today", **a1) == 1
    assert value(fams, "callfloor_agent_missed_today", **a2) == 0
    assert value(fams, "callfloor_agent_not_ready_today_seconds", **a2) == 0


def test_agent_info_carries_name_team_and_site() -> None:
    """callfloor_agent_info is 1 with the display name, team and site of the agent_state."""
    proc = processor(
        [
            ev("agent_state", B, agent="a7", state="available", name="Ann Lee", team="red"),
            ev("agent_state", B, agent="a8", state="available", site="ber"),
        ],
        config(_ON),
    )
    fams = scrape(proc)
    assert samples(fams, "callfloor_agent_info") == [
        {"agent": "a7", "name": "Ann Lee", "team": "red", "site": "default"},
        {"agent": "a8", "name": "", "team": "", "site": "ber"},
    ]
    assert (
        value(fams, "callfloor_agent_info", agent="a7", name="Ann Lee", team="red", site="default")
        == 1
    )


def test_team_change_moves_the_agent_series() -> None:
    """After an agent_state with a new team, the series carry the new team only."""
    proc = processor([ev("agent_state", B, agent="a1", state="available", team="blue")])
    registry = build_registry(proc, per_agent_series=True)
    render(registry)  # label sets cached with team blue
    proc.apply(decode(ev("agent_state", B + 10, agent="a1", state="not_ready", team="green")))
    from metrics_util import parse

    fams = parse(render(registry))
    assert samples(fams, "callfloor_agent_state") == [
        {"agent": "a1", "team": "green", "state": "not_ready"}
    ]
    assert samples(fams, "callfloor_agent_info")[0]["team"] == "green"


def test_per_agent_series_leave_out_agents_without_agent_state() -> None:
    """An agent known only from call events (no valid agent_state) has no series."""
    proc = processor(
        [*scenario(), ev("call_missed", B + 150, call_id="c4", agent="ghost")], config(_ON)
    )
    proc.tick(AT)
    fams = scrape(proc)
    assert not [s for s in samples(fams, "callfloor_agent_missed_today") if s["agent"] == "ghost"]
    assert {s["agent"] for s in samples(fams, "callfloor_agent_info")} == {"a1", "a2"}


def test_per_agent_option_can_be_overridden() -> None:
    """build_registry(per_agent_series=...) wins over the configuration, both ways."""
    assert "callfloor_agent_state" in scrape(scenario_proc(), per_agent_series=True)
    assert "callfloor_agent_state" not in scrape(scenario_proc(config(_ON)), per_agent_series=False)


def _breaks() -> list[dict[str, object]]:
    return [
        ev("agent_state", B, agent="a1", state="not_ready", reason="break"),
        ev("agent_state", B, agent="a2", state="not_ready", reason="break"),
        ev("agent_state", B, agent="a3", state="available"),
    ]


def test_active_violations_carry_the_agent_with_per_agent_series() -> None:
    """Per agent: one series per agent, kind and severity with an active violation, no zeros."""
    proc = processor(_breaks(), config(_ON))
    proc.tick(B + 601)
    fams = scrape(proc)
    assert samples(fams, "callfloor_violations_active") == [
        {"agent": "a1", "kind": "not_ready_exceeded", "severity": "warning"},
        {"agent": "a2", "kind": "not_ready_exceeded", "severity": "warning"},
    ]
    assert (
        value(
            fams,
            "callfloor_violations_active",
            agent="a1",
            kind="not_ready_exceeded",
            severity="warning",
        )
        == 1
    )
    # Lifetime counters stay {kind, severity}.
    started = "callfloor_violations_started_total"
    assert value(fams, started, kind="not_ready_exceeded", severity="warning") == 2


def test_active_violations_aggregate_without_per_agent_series() -> None:
    """Without per-agent series the same floor gives one {kind, severity} series with 2."""
    proc = processor(_breaks())
    proc.tick(B + 601)
    fams = scrape(proc)
    assert (
        value(fams, "callfloor_violations_active", kind="not_ready_exceeded", severity="warning")
        == 2
    )
    assert all("agent" not in s for s in samples(fams, "callfloor_violations_active"))


def test_ended_violations_leave_the_per_agent_series() -> None:
    """When an agent's violation ends, its series is gone from the next scrape."""
    proc = processor(_breaks(), config(_ON))
    proc.tick(B + 601)
    proc.apply(decode(ev("agent_state", B + 700, agent="a1", state="available")))
    fams = scrape(proc)
    assert [s["agent"] for s in samples(fams, "callfloor_violations_active")] == ["a2"]


def test_per_agent_day_figures_when_enabled() -> None:
    """Handled, AHT, offered and answer rate today per agent; null figures are absent."""
    events = [
        ev("agent_state", B, agent="a1", state="available"),
        ev("agent_state", B, agent="a2", state="available"),
        ev("call_queued", B + 1, call_id="c1", queue="q"),
        ev("call_routed", B + 2, call_id="c1", agent="a1"),
        ev("call_missed", B + 12, call_id="c1", agent="a1"),
        ev("call_routed", B + 13, call_id="c1", agent="a1"),
        ev("call_answered", B + 15, call_id="c1", agent="a1"),
        ev("call_ended", B + 75, call_id="c1", agent="a1"),
        ev("agent_state", B + 75, agent="a1", state="available"),
    ]
    proc = processor(events, config(_ON))
    proc.tick(B + 100)
    fams = scrape(proc)
    a1 = {"agent": "a1", "team": ""}
    a2 = {"agent": "a2", "team": ""}
    assert value(fams, "callfloor_agent_offered_today", **a1) == 2
    assert value(fams, "callfloor_agent_answer_today_ratio", **a1) == 0.5
    assert value(fams, "callfloor_agent_handled_today", **a1) == 1
    assert value(fams, "callfloor_agent_aht_today_seconds", **a1) == 60
    assert value(fams, "callfloor_agent_offered_today", **a2) == 0
    assert value(fams, "callfloor_agent_answer_today_ratio", **a2) is None
    assert value(fams, "callfloor_agent_aht_today_seconds", **a2) is None
