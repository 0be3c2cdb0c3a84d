"""The call-floor simulator: determinism, schema, legal agent flows and a realistic mix."""

from __future__ import annotations

import functools
import tomllib
from collections import Counter, defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from callfloor.config import parse_config
from callfloor.events import Event as CanonicalEvent
from callfloor.simulator import FloorSimulation, SimulationSpec, SiteSpec, build_spec

START = 1795392000.0  # 2026-11-23T00:00:00Z, a Monday
DAY = 86400.0

Ev = dict[str, object]


@functools.cache
def _day(seed: int = 1, agents: int = 40, queues: int = 6) -> tuple[Ev, ...]:
    """One simulated day of a floor built with build_spec (cached: tests only read it)."""
    sim = FloorSimulation(build_spec(agents=agents, queues=queues, sites=2, seed=seed))
    return tuple(sim.events(START, DAY))


def _ndjson(events: object) -> bytes:
    assert isinstance(events, tuple | list)
    return msgspec.json.Encoder().encode_lines(list(events))


# -- SPEC §1 validation, written from the contract rather than from the simulator ----

_REQUIRED: dict[str, tuple[str, ...]] = {
    "call_queued": ("call_id", "queue"),
    "call_routed": ("call_id", "agent"),
    "call_missed": ("call_id", "agent"),
    "call_answered": ("call_id", "agent"),
    "call_abandoned": ("call_id",),
    "call_dequeued": ("call_id",),
    "call_ended": ("call_id",),
    "agent_state": ("agent", "state"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "call_queued": ("channel", "priority"),
    "call_routed": ("queue",),
    "call_missed": ("queue", "reason"),
    "call_answered": ("queue",),
    "call_abandoned": ("queue",),
    "call_dequeued": ("queue", "reason"),
    "call_ended": ("agent",),
    "agent_state": ("reason", "queues", "team", "name"),
}
_STATES = {"logged_out", "available", "ringing", "on_call", "wrap_up", "not_ready"}
_CHANNELS = {"voice", "chat", "email", "callback", "other"}
_MISSED_REASONS = {"no_answer", "rejected"}
_DEQUEUED_REASONS = {"timeout", "overflow", "transfer", "callback", "key", "empty", "other"}


def _schema_problems(ev: Ev) -> list[str]:
    problems: list[str] = []
    kind = ev.get("type")
    if kind not in _REQUIRED:
        return [f"unknown type {kind!r}"]
    assert isinstance(kind, str)
    allowed = {"type", "ts", "id", "site", *_REQUIRED[kind], *_OPTIONAL[kind]}
    problems += [f"{kind}: unexpected field {k}" for k in ev if k not in allowed]
    problems += [
        f"{kind}: missing {k}" for k in ("ts", "id", "site", *_REQUIRED[kind]) if k not in ev
    ]
    ts = ev.get("ts")
    if not isinstance(ts, float | int) or isinstance(ts, bool) or ts < 0:
        problems.append(f"{kind}: ts {ts!r}")
    for k in ("id", "site", "call_id", "agent", "queue", "reason", "team", "name"):
        if k in ev and (not isinstance(ev[k], str) or not ev[k]):
            problems.append(f"{kind}: {k} must be a non-empty string, got {ev[k]!r}")
    if kind == "call_queued" and ev.get("channel", "voice") not in _CHANNELS:
        problems.append(f"channel {ev['channel']!r}")
    if kind == "call_missed" and ev.get("reason", "no_answer") not in _MISSED_REASONS:
        problems.append(f"call_missed reason {ev['reason']!r}")
    if kind == "call_dequeued" and ev.get("reason", "other") not in _DEQUEUED_REASONS:
        problems.append(f"call_dequeued reason {ev['reason']!r}")
    if kind == "agent_state":
        if ev["state"] not in _STATES:
            problems.append(f"state {ev['state']!r}")
        if "reason" in ev and ev["state"] != "not_ready":
            problems.append("reason on a state other than not_ready")
        queues = ev.get("queues", [])
        if not isinstance(queues, list) or not all(isinstance(q, str) and q for q in queues):
            problems.append(f"queues {queues!r}")
    return problems


# -- determinism -------------------------------------------------------------------------


def test_same_seed_gives_identical_ndjson() -> None:
    """Two runs of the same spec, start and duration produce byte-identical NDJSON."""
    spec = build_spec(agents=30, queues=4, sites=2, seed=7)
    a = _ndjson(tuple(FloorSimulation(spec).events(START, 6 * 3600)))
    b = _ndjson(tuple(FloorSimulation(spec).events(START, 6 * 3600)))
    assert a == b
    assert len(a) > 10_000


def test_different_seed_gives_different_output() -> None:
    """Changing only the seed changes the events."""
    a = _ndjson(tuple(FloorSimulation(build_spec(seed=1)).events(START, 3600)))
    b = _ndjson(tuple(FloorSimulation(build_spec(seed=2)).events(START, 3600)))
    assert a != b


def test_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    """Events do not depend on how far ahead the run goes."""
    sim = FloorSimulation(build_spec(seed=3))
    short = tuple(sim.events(START, 4 * 3600))
    long = _ndjson(tuple(sim.events(START, 8 * 3600)))
    assert long.startswith(_ndjson(short))
    assert all(float(str(e["ts"])) < START + 4 * 3600 for e in short)


# -- schema, order, identity -------------------------------------------------------------


def test_every_event_matches_the_canonical_schema() -> None:
    """Each event has exactly the SPEC §1 fields for its type, with valid values."""
    problems = [p for ev in _day() for p in _schema_problems(ev)]
    assert problems == []


def test_every_event_decodes_with_the_event_structs() -> None:
    """Each NDJSON line decodes as a canonical callfloor event."""
    decoder = msgspec.json.Decoder(CanonicalEvent)
    for line in _ndjson(_day()).splitlines():
        decoder.decode(line)


def test_timestamps_are_non_decreasing_milliseconds_within_the_run() -> None:
    """ts never goes back, is rounded to the millisecond and lies in [start, end)."""
    ts = [float(str(e["ts"])) for e in _day()]
    assert ts == sorted(ts)
    assert ts[0] >= START and ts[-1] < START + DAY
    assert all(round(t, 3) == t for t in ts)


def test_ids_are_unique_and_every_event_names_its_site() -> None:
    """Every event carries a unique id and one of the floor's sites."""
    events = _day()
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert {e["site"] for e in events} == {"lon", "sh"}


def test_duplicates_resend_events_with_the_same_id() -> None:
    """With a duplicate rate some events come twice; dropping repeats restores the stream."""
    plain = FloorSimulation(build_spec(seed=4)).events(START, 3 * 3600)
    duped = list(FloorSimulation(build_spec(seed=4, duplicate_rate=0.05)).events(START, 3 * 3600))
    seen: set[object] = set()
    first_copies = []
    for e in duped:
        if e["id"] not in seen:
            seen.add(e["id"])
            first_copies.append(e)
    assert len(duped) - len(first_copies) > 0.03 * len(first_copies)
    assert first_copies == list(plain)


# -- agent state flow and routing ------------------------------------------------------------

_LEGAL_NEXT: dict[str | None, set[str]] = {
    None: {"available"},  # an agent's first event is its login
    "logged_out": {"available"},
    "available": {"ringing", "not_ready", "logged_out"},
    # answered; offer withdrawn (caller hung up) or missed; missed at shift end
    "ringing": {"on_call", "available", "not_ready", "logged_out"},
    "on_call": {"wrap_up"},
    "wrap_up": {"available", "not_ready", "logged_out"},
    "not_ready": {"available", "not_ready", "logged_out"},
}


def test_agent_state_sequences_are_legal() -> None:
    """Agents go login -> available -> ringing -> on_call -> wrap_up -> ... -> logged_out."""
    state: dict[str, str | None] = defaultdict(lambda: None)
    bad = []
    for e in _day():
        if e["type"] != "agent_state":
            continue
        agent, new = str(e["agent"]), str(e["state"])
        if new not in _LEGAL_NEXT[state[agent]]:
            bad.append((e["ts"], agent, state[agent], new))
        login = state[agent] in (None, "logged_out")
        assert login == ("queues" in e), e  # queues, team and name come with the login
        state[agent] = new
    assert bad == []


def test_agents_hold_one_conversation_at_a_time() -> None:
    """Calls are offered only to available agents, answered by the ringing agent and ended by it."""
    state: dict[str, str] = defaultdict(lambda: "logged_out")
    offered: dict[str, str] = {}  # agent -> call ringing there
    talking: dict[str, str] = {}  # agent -> call in conversation
    for e in _day():
        kind = e["type"]
        agent = str(e.get("agent"))
        if kind == "call_routed":
            assert state[agent] == "available" and agent not in talking, e
            offered[agent] = str(e["call_id"])
        elif kind in ("call_answered", "call_missed"):
            assert offered.pop(agent) == e["call_id"], e
            if kind == "call_answered":
                talking[agent] = str(e["call_id"])
        elif kind == "call_ended":
            assert talking.pop(agent) == e["call_id"], e
        elif kind == "call_abandoned":
            # A caller may hang up while the phone rings: the offer is withdrawn.
            for a, c in list(offered.items()):
                if c == e["call_id"]:
                    del offered[a]
        elif kind == "agent_state":
            new = str(e["state"])
            if new == "on_call":
                assert state[agent] == "ringing" and agent in talking, e
            if new in ("available", "not_ready", "logged_out"):
                assert agent not in talking and agent not in offered, e
            state[agent] = new


def test_calls_go_to_skilled_longest_idle_agents() -> None:
    """A routed call goes to an agent serving its queue, the one idle longest among those."""
    skills: dict[str, set[str]] = {}
    idle_since: dict[str, float] = {}
    for e in _day():
        kind = e["type"]
        if kind == "agent_state":
            agent = str(e["agent"])
            if "queues" in e:
                assert isinstance(e["queues"], list)
                skills[agent] = set(e["queues"])
            if e["state"] == "available":
                idle_since[agent] = float(str(e["ts"]))
            else:
                idle_since.pop(agent, None)
        elif kind == "call_routed":
            agent, queue = str(e["agent"]), str(e["queue"])
            assert queue in skills[agent]
            candidates = [idle_since[a] for a in idle_since if queue in skills[a]]
            assert idle_since[agent] == min(candidates)


def test_ring_no_answer_reoffers_the_call_in_the_same_queue() -> None:
    """After call_missed the call is routed again without a new call_queued."""
    events = _day()
    queued_at: dict[object, int] = Counter()
    missed: dict[object, object] = {}
    reoffered = 0
    for e in events:
        call = e.get("call_id")
        if e["type"] == "call_queued":
            queued_at[call] += 1
            missed.pop(call, None)
        elif e["type"] == "call_missed":
            missed[call] = e["queue"]
        elif e["type"] == "call_routed" and call in missed:
            assert e["queue"] == missed.pop(call)
            reoffered += 1
    assert reoffered > 10


def test_wrap_up_is_reported_both_before_and_after_call_ended() -> None:
    """Some wrap_up states precede call_ended (same or earlier ts) and some follow it."""
    before = after = 0
    last_state: dict[object, str] = {}
    for e in _day():
        if e["type"] == "agent_state":
            last_state[e["agent"]] = str(e["state"])
        elif e["type"] == "call_ended":
            if last_state[e["agent"]] == "wrap_up":
                before += 1
            else:
                assert last_state[e["agent"]] == "on_call"
                after += 1
    assert before > 100 and after > 100


# -- the mix ---------------------------------------------------------------------------------


def test_mix_contains_every_event_type_and_state() -> None:
    """A day has every call event, every agent state, not-ready reasons and both dequeue reasons."""
    events = _day()
    kinds = Counter(e["type"] for e in events)
    assert set(kinds) == set(_REQUIRED)
    states = Counter(e["state"] for e in events if e["type"] == "agent_state")
    assert set(states) == _STATES
    reasons = {e["reason"] for e in events if e["type"] == "agent_state" and "reason" in e}
    assert {"break", "lunch", "missed", "personal"} <= reasons
    dequeued = {e["reason"] for e in events if e["type"] == "call_dequeued"}
    assert "callback" in dequeued
    assert {e["channel"] for e in events if e["type"] == "call_queued"} == {
        "voice",
        "chat",
        "email",
    }


def _waits(events: tuple[Ev, ...], end_type: str) -> list[float]:
    queued: dict[object, float] = {}
    waits = []
    for e in events:
        if e["type"] == "call_queued":
            queued[e["call_id"]] = float(str(e["ts"]))
        elif e["type"] == end_type:
            waits.append(float(str(e["ts"])) - queued[e["call_id"]])
    return waits


def test_short_and_long_abandons_both_occur() -> None:
    """Some callers hang up within 5 s, others after waiting longer."""
    waits = _waits(_day(), "call_abandoned")
    assert sum(w <= 5.0 for w in waits) > 20
    assert sum(w > 20.0 for w in waits) > 20


def test_timeouts_happen_after_the_maximum_wait() -> None:
    """call_dequeued with reason timeout comes only after a long wait (a busy floor has some)."""
    sim = FloorSimulation(build_spec(seed=2, load=1.2))
    events = tuple(sim.events(START, DAY))
    timeouts = [e for e in events if e["type"] == "call_dequeued" and e["reason"] == "timeout"]
    assert timeouts
    queued = {e["call_id"]: float(str(e["ts"])) for e in events if e["type"] == "call_queued"}
    # The shortest maximum wait is chat's 5 minutes.
    assert all(float(str(e["ts"])) - queued[e["call_id"]] >= 300.0 for e in timeouts)


def test_requeue_moves_a_waiting_call_to_another_queue_of_its_site() -> None:
    """Over a day some calls get a second call_queued in another queue of the same site."""
    where: dict[object, tuple[object, object]] = {}
    requeues = 0
    for e in _day():
        if e["type"] == "call_queued":
            call = e["call_id"]
            if call in where:
                old_queue, old_site = where[call]
                assert e["queue"] != old_queue and e["site"] == old_site
                requeues += 1
            where[call] = (e["queue"], e["site"])
        elif e["type"] in ("call_answered", "call_abandoned", "call_dequeued"):
            where.pop(e["call_id"], None)  # leg over: a later call_queued is not a requeue
    assert requeues >= 1


def _spells(events: tuple[Ev, ...]) -> list[tuple[str, str | None, float]]:
    """(state, reason, length) of every closed agent spell."""
    current: dict[object, tuple[str, str | None, float]] = {}
    spells = []
    for e in events:
        if e["type"] != "agent_state":
            continue
        ts = float(str(e["ts"]))
        if e["agent"] in current:
            state, reason, since = current[e["agent"]]
            spells.append((state, reason, ts - since))
        reason = e.get("reason")
        current[e["agent"]] = (str(e["state"]), reason if isinstance(reason, str) else None, ts)
    return spells


def test_idle_time_violations_occur() -> None:
    """Some not-ready spells run over 10 minutes and some wrap-ups over 120 s, but few."""
    spells = _spells(_day())
    long_nr = [
        s for s in spells if s[0] == "not_ready" and s[1] in ("break", "personal") and s[2] > 900
    ]
    wraps = [s for s in spells if s[0] == "wrap_up"]
    long_wraps = [s for s in wraps if s[2] > 120]
    assert long_nr
    assert 0 < len(long_wraps) < 0.05 * len(wraps)


def test_logins_follow_local_shifts_and_some_agents_are_late() -> None:
    """Logins happen at the agent's local shift start, a few of them 3-25 minutes late."""
    sim = FloorSimulation(build_spec(agents=120, queues=6, seed=5))
    zones = {s.name: ZoneInfo(s.timezone) for s in sim.spec.sites}
    info = {a.id: a for a in sim.agents}
    lateness = []
    for e in sim.events(START, DAY):
        if e["type"] == "agent_state" and "queues" in e and e["ts"] != START:
            agent = info[str(e["agent"])]
            local = datetime.fromtimestamp(float(str(e["ts"])), zones[str(e["site"])])
            late = (
                local.hour * 3600 + local.minute * 60 + local.second - agent.shift_start_s
            ) % 86400
            lateness.append(late)
    assert len(lateness) > 60
    on_time = sum(late < 1 for late in lateness)
    assert on_time > 0.85 * len(lateness)
    assert any(180 <= late <= 1500 for late in lateness)


def test_arrivals_follow_the_local_daily_profile() -> None:
    """Each site gets many more calls at its local 10-11 am than at its local 3-4 am."""
    sim = FloorSimulation(build_spec(seed=1))
    zones = {s.name: ZoneInfo(s.timezone) for s in sim.spec.sites}
    per_hour: Counter[tuple[str, int]] = Counter()
    for e in _day():
        if e["type"] == "call_queued":
            site = str(e["site"])
            per_hour[site, datetime.fromtimestamp(float(str(e["ts"])), zones[site]).hour] += 1
    for site in zones:
        assert per_hour[site, 10] > 5 * max(1, per_hour[site, 3])


# -- configuration -----------------------------------------------------------------------------


def test_config_names_every_site_and_queue_the_events_use() -> None:
    """config_toml() lists each site with its zone and each queue with its site and channel."""
    sim = FloorSimulation(build_spec(seed=1))
    config = tomllib.loads(sim.config_toml())
    assert config["sites"] == {
        "lon": {"timezone": "Europe/London", "interval_minutes": 15},
        "sh": {"timezone": "Asia/Shanghai", "interval_minutes": 30},
    }
    for e in _day():
        assert e["site"] in config["sites"]
        if e["type"] == "call_queued":
            queue = config["queues"][e["queue"]]
            assert (queue["site"], queue["channel"]) == (e["site"], e["channel"])


def test_config_is_accepted_by_the_config_loader() -> None:
    """The written configuration passes callfloor's own validation."""
    sim = FloorSimulation(build_spec(agents=60, queues=12, sites=3, seed=1))
    config = parse_config(tomllib.loads(sim.config_toml()), "sim.toml")
    assert set(config.queues) == {q.name for q in sim.queues}
    assert set(config.sites) == {"lon", "sh", "nyc"}


# -- spec -------------------------------------------------------------------------------------


def test_spec_rejects_unknown_time_zones() -> None:
    """A site with a time zone that does not exist is refused with the zone named."""
    with pytest.raises(ValueError, match="Mars/Olympus"):
        SiteSpec("mars", "Mars/Olympus")


def test_spec_needs_a_queue_per_site() -> None:
    """Fewer queues than sites is refused."""
    with pytest.raises(ValueError, match="queues"):
        SimulationSpec(queues=1)
