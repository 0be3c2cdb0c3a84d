"""Engine behaviour beyond the plain rules: late events, clock ticks, changes, checkpoints."""

from __future__ import annotations

from helpers import T0, config, decode, ev, processor, run

from callfloor.processors.snapshot import build_document


def _w(doc: dict, queue: str = "q", window: str = "15m") -> dict:
    return doc["queues"][queue]["windows"][window]


def test_miss_is_noticed_by_a_tick_without_events() -> None:
    """A caller waiting past T counts as a miss at queued+T when only the clock moves."""
    proc = processor([ev("call_queued", T0, call_id="c", queue="q")])
    proc.tick(T0 + 20.0)
    assert _w(build_document(proc))["sl_offered"] == 0
    proc.tick(T0 + 20.5)
    doc = build_document(proc)
    assert _w(doc)["sl_offered"] == 1 and _w(doc)["service_level"] == 0.0
    assert doc["queues"]["q"]["live"]["longest_wait_s"] == 20.5


def test_late_event_is_counted_and_applied_at_its_own_time() -> None:
    """An event older than the clock counts as late and is attributed to its own ts."""
    doc = run(
        [
            ev("call_queued", T0, call_id="c", queue="q"),
            ev("agent_state", T0 + 30, agent="a", state="available"),
            ev("call_answered", T0 + 10, call_id="c", agent="a"),
        ],
        at=T0 + 30,
    )
    assert doc["counters"]["late"] == 1
    assert _w(doc)["answered"] == 1 and _w(doc)["asa_s"] == 10.0


def test_late_answer_retracts_a_miss_that_never_happened() -> None:
    """A late answer within T turns the already counted miss into a met SL event."""
    doc = run(
        [
            ev("call_queued", T0, call_id="c", queue="q"),
            ev("agent_state", T0 + 60, agent="a", state="available"),
            ev("call_answered", T0 + 15, call_id="c", agent="a"),
        ],
        at=T0 + 60,
    )
    w = _w(doc)
    assert (w["sl_offered"], w["answered_in_sl"], w["service_level"]) == (1, 1, 1.0)


def test_late_spell_end_retracts_its_violation() -> None:
    """A not-ready spell whose late end shows it stayed under the limit leaves no violation."""
    doc = run(
        [
            ev("agent_state", T0, agent="a", state="not_ready", reason="break"),
            ev("agent_state", T0 + 700, agent="b", state="available"),
            ev("agent_state", T0 + 500, agent="a", state="available"),
        ],
        at=T0 + 700,
    )
    assert doc["violations"] == []


def test_superseded_agent_state_is_ignored() -> None:
    """An agent_state older than the agent's current spell does not change its state."""
    doc = run(
        [
            ev("agent_state", T0 + 100, agent="a", state="available"),
            ev("agent_state", T0 + 50, agent="a", state="not_ready"),
        ],
        at=T0 + 100,
    )
    assert doc["agents"]["a"]["state"] == "available"
    assert doc["counters"]["late"] == 1


def test_deadline_times_are_exact_not_tick_times() -> None:
    """A violation noticed by a coarse tick records the exact crossing time."""
    proc = processor([ev("agent_state", T0, agent="a", state="wrap_up")])
    proc.tick(T0 + 500)
    [v] = build_document(proc)["violations"]
    assert v["started_at"] == T0 + 120 and v["value"] == 500


def test_drain_changes_reports_touched_queues_and_agents() -> None:
    """drain_changes lists what an event changed, then starts empty."""
    proc = processor([])
    proc.apply(decode(ev("agent_state", T0, agent="a", state="available", queues=["q"])))
    proc.apply(decode(ev("call_queued", T0, call_id="c", queue="q", site="s")))
    changes = proc.drain_changes()
    assert "q" in changes.queues and "a" in changes.agents and "s" in changes.sites
    assert not proc.drain_changes()


def test_drain_changes_reports_violations_started_by_the_clock() -> None:
    """A violation started by a tick shows up in the next change set."""
    proc = processor([ev("agent_state", T0, agent="a", state="wrap_up")])
    proc.drain_changes()
    proc.tick(T0 + 121)
    assert [v.kind for v in proc.drain_changes().violations] == ["wrap_up_exceeded"]


def _trace() -> list[dict]:
    events = []
    for i in range(40):
        t = T0 + i * 37.0
        cid = f"c{i}"
        events.append(ev("call_queued", t, call_id=cid, queue=f"q{i % 3}", id=f"q{i}"))
        if i % 5 == 0:
            events.append(ev("call_abandoned", t + 3 + i, call_id=cid))
        elif i % 7 == 0:
            events.append(ev("call_dequeued", t + 25, call_id=cid, reason="timeout"))
        else:
            agent = f"a{i % 4}"
            events.append(
                ev("agent_state", t + 1, agent=agent, state="ringing", queues=["q0", "q1", "q2"])
            )
            events.append(ev("call_answered", t + 5 + (i % 30), call_id=cid, agent=agent))
            events.append(ev("agent_state", t + 5 + (i % 30), agent=agent, state="on_call"))
            events.append(ev("call_ended", t + 100, call_id=cid, agent=agent))
            events.append(ev("agent_state", t + 101, agent=agent, state="wrap_up"))
            events.append(
                ev("agent_state", t + 160 + i, agent=agent, state="not_ready", reason="break")
            )
        events.append(ev("call_missed", t + 2, call_id=cid, agent="a3"))
    events.sort(key=lambda e: e["ts"])
    return events


def test_ring_all_misses_of_one_call_count_for_each_agent() -> None:
    """Two agents missing one call at the same instant (no ids) are two misses, not a duplicate."""
    doc = run(
        [
            ev("agent_state", T0, agent="a1", state="available"),
            ev("agent_state", T0, agent="a2", state="available"),
            ev("call_missed", T0 + 5, call_id="c", agent="a1"),
            ev("call_missed", T0 + 5, call_id="c", agent="a2"),
            ev("call_missed", T0 + 5, call_id="c", agent="a2"),
        ]
    )
    assert [doc["agents"][a]["missed_today"] for a in ("a1", "a2")] == [1, 1]
    assert doc["counters"]["duplicates"] == 1


def test_late_state_between_two_heartbeats_takes_its_place() -> None:
    """An agent_state older than the agent's last one is inserted where its time puts it."""
    doc = run(
        [
            ev("agent_state", T0, agent="a", state="available"),
            ev("agent_state", T0 + 100, agent="a", state="available"),
            ev("agent_state", T0 + 50, agent="a", state="not_ready", reason="break"),
        ],
        at=T0 + 1000,
    )
    agent = doc["agents"]["a"]
    assert (agent["state"], agent["state_since"], agent["not_ready_today_s"]) == (
        "available",
        T0 + 100,
        50.0,
    )
    assert doc["counters"]["late"] == 1


def test_stale_agent_is_noticed_on_time_after_an_out_of_order_login() -> None:
    """A late login older than every other agent's last event still turns stale on time."""
    cfg = config({"agents": {"stale_after": "1h"}})
    proc = processor(
        [
            ev("agent_state", T0 + 1000, agent="a", state="available"),
            ev("agent_state", T0, agent="b", state="available"),
        ],
        cfg,
    )
    proc.tick(T0 + 3601)
    [v] = build_document(proc)["violations"]
    assert (v["agent"], v["kind"], v["started_at"]) == ("b", "stale_agent", T0 + 3600)


def test_zero_handle_times_do_not_break_staffing() -> None:
    """Calls handled in zero time (1 s timestamps) give required_agents 1, not an error."""
    doc = run(
        [
            ev("agent_state", T0, agent="a", state="on_call", queues=["q"]),
            ev("call_queued", T0, call_id="c", queue="q"),
            ev("call_answered", T0 + 3, call_id="c", agent="a"),
            ev("call_ended", T0 + 3, call_id="c", agent="a"),
            ev("agent_state", T0 + 3, agent="a", state="available"),
        ]
    )
    live = doc["queues"]["q"]["live"]
    assert (live["required_agents"], live["projected_service_level"]) == (1, 1.0)


def test_late_miss_starts_the_violation_when_the_count_reached_the_limit() -> None:
    """Misses at 0 and 10, then a late one at 5: three in the hour from the miss at 10."""
    doc = run(
        [
            ev("call_missed", T0, call_id="c1", agent="a"),
            ev("call_missed", T0 + 10, call_id="c2", agent="a"),
            ev("call_missed", T0 + 5, call_id="c3", agent="a"),
        ],
        at=T0 + 20,
    )
    [v] = doc["violations"]
    assert (v["kind"], v["started_at"], v["ended_at"], v["value"]) == (
        "missed_calls_exceeded",
        T0 + 10,
        None,
        3,
    )


def test_very_late_miss_records_a_violation_that_already_ended() -> None:
    """A late miss can reveal a past episode: it starts at the crossing and ends when the
    oldest of the three left the rolling hour."""
    doc = run(
        [
            ev("call_missed", T0, call_id="c1", agent="a"),
            ev("call_missed", T0 + 10, call_id="c2", agent="a"),
            ev("agent_state", T0 + 4000, agent="b", state="available"),
            ev("call_missed", T0 + 5, call_id="c3", agent="a"),
        ],
        at=T0 + 4000,
    )
    [v] = doc["violations"]
    assert (v["started_at"], v["ended_at"], v["value"]) == (T0 + 10, T0 + 3600, 3)


def test_missed_violation_keeps_its_peak_and_ends_when_below_the_limit() -> None:
    """Four misses in the hour give a peak of four; it ends when the count drops to two."""
    doc = run(
        [ev("call_missed", T0 + i * 60, call_id=f"c{i}", agent="a") for i in range(4)],
        at=T0 + 3600 + 200,
    )
    [v] = doc["violations"]
    # Misses at 0, 60, 120, 180: the count is 3 after the first leaves (3600) and 2 after
    # the second leaves (3660).
    assert (v["started_at"], v["ended_at"], v["value"]) == (T0 + 120, T0 + 3660, 4)


def test_late_queued_older_than_the_current_leg_does_not_undo_a_requeue() -> None:
    """queued to B at 100, then a late queued to A at 50: A's leg ended as requeued at 100."""
    doc = run(
        [
            ev("call_queued", T0 + 100, call_id="c", queue="B"),
            ev("call_queued", T0 + 50, call_id="c", queue="A"),
        ],
        at=T0 + 110,
    )
    a, b = doc["queues"]["A"], doc["queues"]["B"]
    assert (a["live"]["waiting"], a["windows"]["15m"]["dequeued"]) == (0, 1)
    assert a["windows"]["15m"]["sl_offered"] == 1  # it waited 50 s > T = 20 s: a miss
    assert (b["live"]["waiting"], b["windows"]["15m"]["offered"]) == (1, 1)


def test_required_agents_beyond_the_search_limit_is_null() -> None:
    """A load no staffing within the search limit can serve shows no required agents."""
    cfg = config({"queues": {"q": {"default_aht_s": 1e9}}})
    doc = run([ev("call_queued", T0, call_id="c", queue="q")], cfg, at=T0 + 1)
    live = doc["queues"]["q"]["live"]
    assert live["arrival_rate_per_s"] > 0
    assert live["required_agents"] is None
    assert live["projected_service_level"] == 0.0


def test_rejections_are_counted_in_bulk_by_reason() -> None:
    """count_rejected adds n rejections under their reason."""
    proc = processor([])
    proc.count_rejected("invalid_json", 3)
    proc.count_rejected("invalid_json")
    assert proc.counters["rejected"] == 4
    assert proc.rejected_by_reason == {"invalid_json": 4}


def test_apply_refuses_every_name_check_refuses() -> None:
    """apply's fast admission refuses what check refuses: an over-long optional queue name
    on an answer, a reason on a dequeue, a team on a known agent."""
    long = "q" * 200
    proc = processor(
        [
            ev("agent_state", T0, agent="a", state="available"),
            ev("call_queued", T0, call_id="c", queue="sales"),
        ]
    )
    for event in (
        ev("call_answered", T0 + 1, call_id="c", agent="a", queue=long),
        ev("call_dequeued", T0 + 1, call_id="c", reason=long),
        ev("agent_state", T0 + 1, agent="a", state="available", team=long),
        ev("call_missed", T0 + 1, call_id="c", agent="a", reason=long),
    ):
        decoded = decode(event)
        assert proc.check(decoded) is not None
        refusal = proc.apply(decoded)
        assert refusal is not None and refusal.reason == "name_too_long"
