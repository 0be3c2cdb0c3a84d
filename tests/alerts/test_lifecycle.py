"""The alert lifecycle in event time: pending, firing after `for`, clear, resolve,
volume, several conditions, escalation, repeats, acknowledgements and silences."""

from __future__ import annotations

from alert_util import calls, drive, floor_config, listed
from helpers import T0, decode, ev

from callfloor.alerts.notification import Transition

LONG_WAIT = {
    "name": "long_wait",
    "scope": "queues:*",
    "when": [{"metric": "longest_wait_s", "op": ">", "value": 60}],
    "for": "30s",
}


def _waiting_call(at: float = T0) -> list[dict[str, object]]:
    return [
        ev("agent_state", at - 60, site="s", agent="a", state="available", queues=["q"]),
        ev("call_queued", at, site="s", call_id="c", queue="q"),
    ]


def test_pending_until_for_has_passed() -> None:
    """The condition holds from the instant the wait passes 60 s: pending, not firing."""
    proc, driver = drive(_waiting_call(), floor_config([LONG_WAIT]), T0 + 75)
    [alert] = listed(proc)
    assert (alert["state"], alert["since"], alert["fired_at"]) == ("pending", 60.0, None)
    assert driver.engine.drain() == []


def test_fires_at_since_plus_for_whatever_the_ticks() -> None:
    """Fired at exactly since + for, read between ticks or after one late tick alike."""
    proc, driver = drive(_waiting_call(), floor_config([LONG_WAIT]), T0 + 500)
    [alert] = listed(proc)
    assert (alert["state"], alert["since"], alert["fired_at"]) == ("firing", 60.0, 90.0)
    assert alert["value"] == 500.0
    [note] = driver.engine.drain()
    assert note.transition == Transition.FIRING and note.fired_at == T0 + 90


def test_resolves_when_the_condition_stops() -> None:
    """The call answered at +200 resolves the alert at +200, with one resolve sent."""
    events = [*_waiting_call(), ev("call_answered", T0 + 200, site="s", call_id="c", agent="a")]
    proc, driver = drive(events, floor_config([LONG_WAIT]), T0 + 300)
    [alert] = listed(proc)
    assert (alert["state"], alert["fired_at"], alert["ended_at"]) == ("resolved", 90.0, 200.0)
    assert [n.transition for n in driver.engine.drain()] == [
        Transition.FIRING,
        Transition.RESOLVED,
    ]


def test_a_condition_that_stops_while_pending_leaves_nothing() -> None:
    """Answered before `for` passed: no alert listed and nobody told."""
    events = [*_waiting_call(), ev("call_answered", T0 + 80, site="s", call_id="c", agent="a")]
    proc, driver = drive(events, floor_config([LONG_WAIT]), T0 + 300)
    assert listed(proc) == []
    assert driver.engine.drain() == []


def test_clear_level_stops_flapping() -> None:
    """A service level swinging around 0.8 fires once and never resolves until it is
    back past the clear level 0.95: one notification, not one per swing."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
        "clear": 0.95,
        "min_volume": 5,
    }
    # 10 calls, then alternately good and bad: the 15-minute level wanders 0.6-0.9.
    waits = [5.0] * 10 + [40.0, 40.0, 40.0, 5.0, 5.0, 5.0] * 10
    _, driver = drive(calls(waits), floor_config([rule]), T0 + 30 * len(waits))
    notes = driver.engine.drain()
    assert [n.transition for n in notes].count(Transition.FIRING) == 1
    assert [n.transition for n in notes].count(Transition.RESOLVED) == 0
    without = {**rule}
    del without["clear"]
    _, flappy = drive(calls(waits), floor_config([without]), T0 + 30 * len(waits))
    assert [n.transition for n in flappy.engine.drain()].count(Transition.FIRING) > 1


def test_min_volume_keeps_a_quiet_queue_quiet() -> None:
    """Three bad calls: service level 0, but below min_volume 10 nothing is raised."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": 0.8}],
        "min_volume": 10,
    }
    proc, _ = drive(calls([40.0, 40.0, 40.0]), floor_config([rule]), T0 + 200)
    assert listed(proc) == []
    rule["min_volume"] = 3
    proc, _ = drive(calls([40.0, 40.0, 40.0]), floor_config([rule]), T0 + 200)
    assert [a["rule"] for a in listed(proc)] == ["sl"]


def test_every_condition_must_hold() -> None:
    """Callers waiting with no agent available: only once the agent goes not ready."""
    rule = {
        "name": "nobody",
        "when": [
            {"metric": "waiting", "op": ">", "value": 0},
            {"metric": "agents_available", "op": "<=", "value": 0},
        ],
    }
    events = [
        *_waiting_call(),
        ev("agent_state", T0 + 40, site="s", agent="a", state="not_ready", reason="lunch"),
    ]
    proc, _ = drive(events, floor_config([rule]), T0 + 100)
    [alert] = listed(proc)
    assert (alert["state"], alert["since"], alert["fired_at"]) == ("firing", 40.0, 40.0)


def test_escalation_raises_severity_once() -> None:
    """Firing at +60, critical 5 minutes later, one escalation notification."""
    rule = {**LONG_WAIT, "for": "0s", "escalate": {"after": "5m", "severity": "critical"}}
    proc, driver = drive(_waiting_call(), floor_config([rule]), T0 + 1000)
    [alert] = listed(proc)
    assert alert["severity"] == "critical"
    notes = driver.engine.drain()
    assert [(n.transition, n.emitted_at - T0) for n in notes] == [
        (Transition.FIRING, 60.0),
        (Transition.ESCALATED, 360.0),
    ]


def test_repeats_until_acknowledged() -> None:
    """Repeat every 2 minutes while firing; an acknowledgement stops the repeats."""
    rule = {**LONG_WAIT, "for": "0s", "repeat": "2m"}
    cfg = floor_config([rule])
    proc, driver = drive(_waiting_call(), cfg, T0 + 60 + 250)
    notes = driver.engine.drain()
    assert [n.transition for n in notes] == [
        Transition.FIRING,
        Transition.REPEAT,
        Transition.REPEAT,
    ]
    assert len({n.key for n in notes}) == 3
    [alert] = driver.engine.active.values()
    assert driver.engine.acknowledge(alert.fingerprint, "ada", "on it", proc.clock) is not None
    proc.tick(T0 + 2000)
    assert driver.engine.drain() == []


def test_a_silence_marks_notifications_silenced() -> None:
    """A silence over the rule marks its notifications; others are not."""
    from callfloor.alerts.engine import Silence

    cfg = floor_config([{**LONG_WAIT, "for": "0s"}])
    proc, driver = drive(_waiting_call()[:1], cfg, T0 - 10)
    driver.engine.add_silence(
        Silence(
            id="s1",
            rule="long_*",
            scope="*",
            starts_at=T0 - 10,
            ends_at=T0 + 3600,
            created_by="ada",
        )
    )
    proc.apply(decode(_waiting_call()[1]))
    proc.tick(T0 + 100)
    [note] = driver.engine.drain()
    assert note.silenced


def test_ack_of_an_alert_that_is_not_firing_is_refused() -> None:
    """Only a firing alert can be acknowledged."""
    proc, driver = drive(_waiting_call(), floor_config([LONG_WAIT]), T0 + 70)
    [alert] = driver.engine.active.values()
    assert driver.engine.acknowledge(alert.fingerprint, "ada", "", proc.clock) is None


def test_the_resolve_of_an_alert_told_before_a_silence_is_not_silenced() -> None:
    """Fired and told at +90, silenced from +100, answered at +200: the resolve still
    reaches the receivers holding the firing (MQTT's retained state, chat threads)."""
    from callfloor.alerts.engine import Silence

    proc, driver = drive(_waiting_call(), floor_config([LONG_WAIT]), T0 + 100)
    [fired] = driver.engine.drain()
    assert not fired.silenced
    driver.engine.add_silence(
        Silence(
            id="s1", rule="*", scope="*", starts_at=T0 + 100, ends_at=T0 + 3600, created_by="ada"
        )
    )
    proc.apply(decode(ev("call_answered", T0 + 200, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 300)
    [resolved] = driver.engine.drain()
    assert resolved.transition == Transition.RESOLVED and not resolved.silenced


def test_the_resolve_of_an_alert_fired_under_a_silence_stays_silenced() -> None:
    """Fired while silenced (nobody told), resolved after the silence ended: the resolve
    is silenced too."""
    from callfloor.alerts.engine import Silence

    cfg = floor_config([LONG_WAIT])
    proc, driver = drive(_waiting_call()[:1], cfg, T0 - 10)
    driver.engine.add_silence(
        Silence(id="s1", rule="*", scope="*", starts_at=T0 - 10, ends_at=T0 + 150, created_by="ada")
    )
    proc.apply(decode(_waiting_call()[1]))
    proc.apply(decode(ev("call_answered", T0 + 200, site="s", call_id="c", agent="a")))
    proc.tick(T0 + 300)
    assert [(n.transition, n.silenced) for n in driver.engine.drain()] == [
        (Transition.FIRING, True),
        (Transition.RESOLVED, True),
    ]


def test_a_clear_level_over_another_window_moves_with_that_window() -> None:
    """No agent available fires at +0; one logs in at +100, short of the clear level
    offered@30m (2 calls); the first call leaves the 30 minutes at +1800 and the level
    drops to 1: the alert resolves then, with no event to notice it."""
    rule = {
        "name": "few",
        "when": [{"metric": "agents_available", "op": "<", "value": 1}],
        "clear": "offered@30m",
    }
    events = [
        ev("call_queued", T0, site="s", call_id="c", queue="q"),
        ev("call_queued", T0 + 10, site="s", call_id="d", queue="q"),
        ev("call_abandoned", T0 + 15, site="s", call_id="c"),
        ev("call_abandoned", T0 + 20, site="s", call_id="d"),
        ev("agent_state", T0 + 100, site="s", agent="a", state="available", queues=["q"]),
    ]
    proc, _ = drive(events, floor_config([rule]), T0 + 1801)
    [alert] = listed(proc)
    assert (alert["state"], alert["fired_at"], alert["ended_at"]) == ("resolved", 0.0, 1800.0)


def test_a_forgotten_queue_with_a_daily_rule_is_left_alone() -> None:
    """A queue created by events and forgotten once quiet (forget_after 2h) had its next
    midnight scheduled by a rule over `today`: the clock passes it without an error."""
    from helpers import config

    from callfloor.alerts.driver import attach_alerts
    from callfloor.processors.engine import FloorProcessor

    rule = {
        "name": "busy",
        "when": [{"metric": "offered", "window": "today", "op": ">", "value": 9}],
    }
    cfg = config(
        {
            "sites": {"s": {"timezone": "UTC"}},
            "limits": {"forget_after": "2h", "max_lateness": "1h"},
            "alerts": {"default_rules": False, "rules": [rule]},
        }
    )
    proc = FloorProcessor(cfg, live=True)
    attach_alerts(proc, cfg, notify=True)
    proc.apply(decode(ev("call_queued", T0, site="s", call_id="c", queue="x")))
    proc.apply(decode(ev("call_abandoned", T0 + 30, site="s", call_id="c")))
    for hour in range(1, 80):
        proc.tick(T0 + 3600.0 * hour)
    assert "x" not in proc.queues
    assert proc.view.alerts() == []


def test_a_clear_level_inside_the_threshold_never_flaps() -> None:
    """Threshold sl_target (0.8) with clear 0.75, accepted as the queue's target is not
    known to the rule: a level sitting between them fires once, not at every call."""
    rule = {
        "name": "sl",
        "when": [{"metric": "service_level", "window": "15m", "op": "<", "value": "sl_target"}],
        "clear": 0.75,
        "min_volume": 5,
    }
    waits = [5.0] * 10 + [5.0, 5.0, 5.0, 50.0] * 20
    _, driver = drive(calls(waits), floor_config([rule]), T0 + 30 * len(waits))
    notes = driver.engine.drain()
    assert [n.transition for n in notes].count(Transition.FIRING) == 1


def test_a_rule_holds_for_a_queue_no_event_names() -> None:
    """A configured queue that never gets a call still has `offered[60m] < 1` fire (its
    alert starts at the first instant the floor has a time)."""
    rule = {
        "name": "quiet",
        "when": [{"metric": "offered", "window": "60m", "op": "<", "value": 1}],
    }
    events = [ev("agent_state", T0, site="s", agent="a", state="available", queues=["q"])]
    proc, _ = drive(events, floor_config([rule]), T0 + 100)
    [alert] = listed(proc)
    assert (alert["rule"], alert["scope"], alert["state"], alert["since"]) == (
        "quiet",
        "q",
        "firing",
        0.0,
    )


def test_timers_of_other_rules_are_dropped_on_restore() -> None:
    """A checkpoint's timers made for other rules are not taken: every scope is looked
    at again, and an alert of a rule no longer configured is gone."""
    from callfloor.alerts.driver import DriverState, attach_alerts
    from callfloor.processors.engine import FloorProcessor

    _, driver = drive(_waiting_call(), floor_config([{**LONG_WAIT, "for": "0s"}]), T0 + 100)
    saved = driver.save()
    other = floor_config([{"name": "w", "when": [{"metric": "waiting", "op": ">", "value": 0}]}])
    fresh = FloorProcessor(other)
    again = attach_alerts(fresh, other)
    assert again is not None
    again.load(DriverState(**{f: getattr(saved, f) for f in saved.__struct_fields__}))
    assert again.heap == [] and not again.engine.active


def test_a_rules_summary_template_is_what_notifications_say() -> None:
    """`summary` and `summaries` are rendered with the alert's fields."""
    rule = {
        **LONG_WAIT,
        "for": "0s",
        "summary": "{scope}: a caller has waited {value:.0f} s (over {threshold:g} s)",
        "summaries": {"zh-CN": "{scope} 等待 {value:.0f} 秒"},
    }
    _, driver = drive(_waiting_call(), floor_config([rule]), T0 + 100)
    [note] = driver.engine.drain()
    assert note.summary == "q: a caller has waited 60 s (over 60 s)"
    assert note.summaries == {"zh-CN": "q 等待 60 秒"}
