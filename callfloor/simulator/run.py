"""The run loop: a deterministic discrete-event simulation of an ACD over a built floor.

Contacts arrive per queue as a Poisson process whose rate follows a daily profile in
the site's local time; the ACD offers a waiting contact to the longest-idle available
agent with the skill, and the agent may not answer (ring-no-answer), answers, talks,
wraps up and goes back to available or takes a not-ready break. Callers run out of
patience and abandon (a few almost at once), time out, accept a callback or are
requeued to another queue. Agents log in and out on their shifts and take breaks.

Everything is driven by one ``heapq`` of timers. Timers are plain int tuples
``(time, seq, kind, a, b)``; instead of deleting a timer that no longer applies, the
handler checks a token (the agent's state-change counter, the call's leg number)
and ignores stale timers. ``seq`` makes the order of simultaneous timers the order
they were scheduled in, which keeps the output byte-for-byte deterministic.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

from callfloor.simulator.profile import SLOT_S, SiteClock
from callfloor.simulator.roster import AgentInfo, QueueInfo, build_roster, config_toml
from callfloor.simulator.specs import SimulationSpec

Event = dict[str, object]

# Agent states, as ints for speed.
_LOGGED_OUT, _AVAILABLE, _RINGING, _ON_CALL, _WRAP_UP, _NOT_READY = range(6)

# Call states.
_WAITING, _OFFERED, _TALKING = range(3)

# How a waiting contact leaves its queue if no agent answers it first.
_EXIT_ABANDON, _EXIT_TIMEOUT, _EXIT_CALLBACK, _EXIT_REQUEUE = range(4)

# Timer kinds (index into the handler table in _Run.run).
(
    _K_ARRIVAL,
    _K_EXIT,
    _K_ANSWER,
    _K_MISS,
    _K_WRAP_EARLY,
    _K_TALK_END,
    _K_WRAP_END,
    _K_NR_END,
    _K_BREAK,
    _K_LOGIN,
    _K_LOGOUT,
) = range(11)

# An agent serving several channels takes voice before chat before email: email is
# deferrable, and serving strictly oldest-first would starve voice behind a night's
# worth of email.
_CHANNEL_RANK: Final = {"voice": 0, "chat": 1, "email": 2}


class FloorSimulation:
    """A simulated call floor built from a :class:`SimulationSpec`.

    Building the floor (queues, skills, shifts, arrival rates: see
    :func:`~callfloor.simulator.roster.build_roster`) uses its own ``random.Random`` so
    that it depends on the spec only; each :meth:`events` call replays the day with a
    fresh generator, so the same spec, start and duration give the same events every
    time.
    """

    def __init__(self, spec: SimulationSpec) -> None:
        self.spec = spec
        roster = build_roster(spec)
        self.queues: tuple[QueueInfo, ...] = roster.queues
        self.agents: tuple[AgentInfo, ...] = roster.agents

    def events(self, start_ts: float, duration_s: float) -> Iterator[Event]:
        """Canonical SPEC §1 events (plain dicts ready for JSON), ts non-decreasing,
        deterministic for a seed.

        Agents on shift at ``start_ts`` log in at ``start_ts``; events are produced
        for ``start_ts <= ts < start_ts + duration_s``. A shorter run is a prefix of a
        longer one with the same start.
        """
        if duration_s < 0 or not math.isfinite(duration_s):
            raise ValueError("duration_s must be a finite, non-negative number of seconds")
        if start_ts < 0 or not math.isfinite(start_ts):
            raise ValueError("start_ts must be a finite, non-negative epoch time")
        return _Run(self, float(start_ts), float(start_ts) + float(duration_s)).run()

    def config_toml(self) -> str:
        """A callfloor configuration (SPEC §8 TOML) describing this floor's sites and queues."""
        return config_toml(self.spec, self.queues)


class _Call:
    """A contact from arrival until its leg ends or its conversation ends."""

    __slots__ = (
        "agent",
        "cid",
        "enq",
        "exit_due",
        "exit_kind",
        "leg",
        "num",
        "patience_end",
        "queue",
        "state",
        "wrap_mode",
    )

    def __init__(self, num: int, cid: str, queue: int, enq: float) -> None:
        self.num = num
        self.cid = cid
        self.queue = queue
        self.enq = enq  # call_queued time of the current leg
        self.state = _WAITING
        self.leg = 0  # bumped by a requeue: invalidates the old leg's timers
        self.patience_end = math.inf
        self.exit_kind = _EXIT_ABANDON
        self.exit_due = False  # the exit timer fired while the call was ringing
        self.wrap_mode = 0
        self.agent = -1  # the agent it is offered to while ringing


class _Agent:
    """Mutable per-run state of one agent."""

    __slots__ = (
        "call",
        "day",
        "idx",
        "pending_break",
        "pending_logout",
        "reason",
        "shift_id",
        "state",
        "token",
    )

    def __init__(self, idx: int) -> None:
        self.idx = idx
        self.state = _LOGGED_OUT
        self.reason: str | None = None
        # Bumped on every state change; timers and idle-list entries carry the
        # token they were made with and are ignored once it no longer matches.
        self.token = 0
        self.call = -1  # number of the call offered to / talking with this agent
        self.pending_break: tuple[str, float] | None = None
        self.pending_logout = False
        self.shift_id = 0
        self.day = 0  # local date ordinal of the current / next shift


class _Run:
    """One pass of the simulation over [start, end)."""

    def __init__(self, sim: FloorSimulation, start: float, end: float) -> None:
        spec = sim.spec
        self.spec = spec
        self.sim = sim
        self.start = start
        self.end = end
        # Separate from the floor-building generator: the run's draws depend only
        # on the seed and the order of simulated events.
        self.rng = random.Random(f"callfloor-run-{spec.seed}")
        # Duplicates have their own stream so that turning them on changes nothing else.
        self.dup_rng = random.Random(f"callfloor-dup-{spec.seed}")
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.out: list[Event] = []
        self.n_events = 0
        # Ids (and call ids) name the run's start as well as its seed: the same arguments
        # give the same events, and a second simulated day replayed after the first is
        # new events, not a day of duplicates.
        run = f"{spec.seed}-{_run_tag(start)}"
        self.id_prefix = f"{run}-"
        self.call_prefix = f"c{run}-"
        self.n_calls = 0
        self.calls: dict[int, _Call] = {}
        self.plans: dict[int, tuple[str, float, int]] = {}
        self.n_plans = 0

        self.site_names = [s.name for s in spec.sites]
        self.zones = [ZoneInfo(s.timezone) for s in spec.sites]
        self.clocks = [SiteClock(s.timezone) for s in spec.sites]
        self.queues = sim.queues
        self.q_names = [q.name for q in sim.queues]
        self.q_site_names = [self.site_names[q.site] for q in sim.queues]
        self.q_channels = [spec.channel(q.channel) for q in sim.queues]
        self.q_rank = [_CHANNEL_RANK[q.channel] for q in sim.queues]
        # Other queues of the same site a contact can be requeued to, same channel first.
        self.requeue_targets: list[list[int]] = []
        for i, q in enumerate(sim.queues):
            same_site = [j for j, o in enumerate(sim.queues) if o.site == q.site and j != i]
            same_channel = [j for j in same_site if sim.queues[j].channel == q.channel]
            self.requeue_targets.append(same_channel or same_site)
        # Per queue: waiting contacts (rank is per queue, so entries sort by call_queued
        # time then call number) and idle agents (longest idle first).
        self.waiting: list[list[tuple[float, int, int]]] = [[] for _ in sim.queues]
        self.idle: list[list[tuple[float, int, int]]] = [[] for _ in sim.queues]

        self.infos = sim.agents
        self.agents = [_Agent(i) for i in range(len(sim.agents))]
        self.a_ids = [a.id for a in sim.agents]
        self.a_sites = [self.site_names[a.site] for a in sim.agents]

        self.mu_missed = math.log(spec.missed_not_ready_median_s)

    # -- scheduling helpers ------------------------------------------------------------

    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _nid(self) -> str:
        self.n_events += 1
        return f"{self.id_prefix}{self.n_events}"

    def _shift_start(self, agent: int, day: int) -> float:
        """Epoch time of the agent's shift start on local date ordinal ``day``.

        Wall-clock arithmetic in the site's zone, so shifts keep their local start
        across daylight-saving changes.
        """
        info = self.infos[agent]
        h, rem = divmod(info.shift_start_s, 3600)
        local = time(h, rem // 60)
        return datetime.combine(
            date.fromordinal(day), local, tzinfo=self.zones[info.site]
        ).timestamp()

    def _schedule_login(self, agent: int, day: int, earliest: float) -> None:
        """Schedule the login for the shift of local day ``day`` (maybe late)."""
        t = self._shift_start(agent, day)
        if self.rng.random() < self.spec.late_login_prob:
            t += self.rng.uniform(180.0, self.spec.late_login_max_s)
        t = max(t, earliest)
        ag = self.agents[agent]
        ag.day = day
        if t < self.end:
            self._push(t, _K_LOGIN, agent, day)

    def _schedule_arrival(self, q: int, t: float) -> None:
        """Schedule queue ``q``'s next arrival after ``t`` (rate constant within a slot).

        Inter-arrival times are memoryless, so a gap that overshoots the slot end is
        discarded and a wake-up at the slot end (``b`` = 0) draws again with the next
        slot's rate. Drawing only when the clock reaches the slot keeps the random
        stream in time order, so a shorter run is an exact prefix of a longer one.
        """
        rate = self.queues[q].rate_per_s
        if rate <= 0.0:
            return
        slot = int(t // SLOT_S)
        slot_end = (slot + 1) * float(SLOT_S)
        t2 = t + self.rng.expovariate(rate * self.clocks[self.queues[q].site].factor(slot))
        if t2 < slot_end:
            self._push(t2, _K_ARRIVAL, q, 1)
        else:
            self._push(slot_end, _K_ARRIVAL, q, 0)

    # -- the event loop -------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        """Yield the events of the run in time order."""
        for q in range(len(self.queues)):
            self._schedule_arrival(q, self.start)
        for a in range(len(self.agents)):
            self._schedule_first_shift(a)

        handlers = (
            self._on_arrival,
            self._on_exit,
            self._on_answer,
            self._on_miss,
            self._on_wrap_early,
            self._on_talk_end,
            self._on_wrap_end,
            self._on_nr_end,
            self._on_break,
            self._on_login,
            self._on_logout,
        )
        heap = self.heap
        out = self.out
        end = self.end
        pop = heapq.heappop
        dup = self.spec.duplicate_rate
        dup_draw = self.dup_rng.random
        while heap and heap[0][0] < end:
            t, _, kind, a, b = pop(heap)
            handlers[kind](t, a, b)
            if out:
                if dup:
                    for ev in out:
                        yield ev
                        if dup_draw() < dup:
                            yield dict(ev)
                else:
                    yield from out
                out.clear()

    def _schedule_first_shift(self, agent: int) -> None:
        info = self.infos[agent]
        zone = self.zones[info.site]
        day = datetime.fromtimestamp(self.start, zone).date().toordinal() - 1
        # The first shift that has not ended by the start of the run.
        while self._shift_start(agent, day) + info.shift_s <= self.start:
            day += 1
        if self._shift_start(agent, day) <= self.start:
            # On shift already: the stream opens with the agent's current login.
            self.agents[agent].day = day
            self._push(self.start, _K_LOGIN, agent, day)
        else:
            self._schedule_login(agent, day, self.start)

    # -- contacts -------------------------------------------------------------------------

    def _on_arrival(self, t: float, q: int, arrives: int) -> None:
        if not arrives:  # a slot boundary: draw again with the new slot's rate
            self._schedule_arrival(q, t)
            return
        self.n_calls += 1
        num = self.n_calls
        call = _Call(num, f"{self.call_prefix}{num}", q, t)
        self.calls[num] = call
        self.out.append(
            {
                "type": "call_queued",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "queue": self.q_names[q],
                "channel": self.queues[q].channel,
            }
        )
        self._plan_exit(call, t, first=True)
        self._offer(call, t)
        self._schedule_arrival(q, t)

    def _plan_exit(self, call: _Call, t: float, *, first: bool) -> None:
        """Draw how the contact leaves the queue unless an agent answers it first."""
        ch = self.q_channels[call.queue]
        rng = self.rng
        if first:
            if ch.short_abandon_prob and rng.random() < ch.short_abandon_prob:
                # Misdials and "I'll call back later" callers: gone within seconds.
                call.patience_end = t + rng.uniform(0.5, ch.short_abandon_max_s)
            elif ch.patience_median_s is not None:
                call.patience_end = t + rng.lognormvariate(
                    math.log(ch.patience_median_s), ch.patience_sigma
                )
        # After a requeue the caller's patience keeps running from the first arrival.
        at = call.patience_end
        kind = _EXIT_ABANDON
        if ch.max_wait_s is not None and t + ch.max_wait_s < at:
            at, kind = t + ch.max_wait_s, _EXIT_TIMEOUT
        if first:
            if ch.callback_after_s is not None and rng.random() < ch.callback_accept_prob:
                # The offer is repeated every 30 s or so after the first announcement.
                cb = t + ch.callback_after_s + rng.uniform(0.0, 30.0)
                if cb < at:
                    at, kind = cb, _EXIT_CALLBACK
            if self.requeue_targets[call.queue] and rng.random() < ch.requeue_prob:
                rq = t + rng.uniform(*ch.requeue_after_s)
                if rq < at:
                    at, kind = rq, _EXIT_REQUEUE
        call.exit_kind = kind
        # A requeue carried out late (the call was ringing when it was due) may find
        # the caller's patience already spent: then the caller leaves at once.
        at = max(at, t)
        if at < self.end:
            self._push(at, _K_EXIT, call.num, call.leg)

    def _offer(self, call: _Call, t: float) -> None:
        """Offer a waiting contact to the longest-idle skilled agent, or let it wait."""
        idle = self.idle[call.queue]
        agents = self.agents
        while idle:
            _, a, token = heapq.heappop(idle)
            ag = agents[a]
            if ag.state == _AVAILABLE and ag.token == token:
                self._route(call, ag, t)
                return
        call.state = _WAITING
        heapq.heappush(self.waiting[call.queue], (call.enq, call.num, call.leg))

    def _route(self, call: _Call, ag: _Agent, t: float) -> None:
        call.state = _OFFERED
        call.agent = ag.idx
        ag.state = _RINGING
        ag.token += 1
        ag.call = call.num
        ts = round(t, 3)
        q = call.queue
        agent_id = self.a_ids[ag.idx]
        self.out.append(
            {
                "type": "call_routed",
                "ts": ts,
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": agent_id,
                "queue": self.q_names[q],
            }
        )
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[ag.idx],
                "agent": agent_id,
                "state": "ringing",
            }
        )
        ch = self.q_channels[q]
        rng = self.rng
        if rng.random() < ch.no_answer_prob:
            self._push(t + ch.ring_timeout_s, _K_MISS, ag.idx, ag.token)
        else:
            delay = rng.lognormvariate(math.log(ch.answer_median_s), 0.5)
            delay = max(0.0, min(delay, ch.ring_timeout_s - 0.5))
            self._push(t + delay, _K_ANSWER, ag.idx, ag.token)

    def _on_exit(self, t: float, num: int, leg: int) -> None:
        call = self.calls.get(num)
        if call is None or call.leg != leg or call.state == _TALKING:
            return
        if call.state == _WAITING:
            self._exit(call, t)
        elif call.exit_kind == _EXIT_ABANDON:
            # The caller hangs up while the agent's phone rings: the offer is withdrawn.
            ag = self.agents[call.agent]
            self._abandon(call, t)
            ag.call = -1
            self._free(ag, t, missed=False)
        else:
            # The ACD does not time out or move a contact that is being offered; it
            # acts if the offer fails.
            call.exit_due = True

    def _abandon(self, call: _Call, t: float) -> None:
        q = call.queue
        self.out.append(
            {
                "type": "call_abandoned",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "queue": self.q_names[q],
            }
        )
        del self.calls[call.num]

    def _exit(self, call: _Call, t: float) -> None:
        """The waiting contact leaves its queue by its planned exit."""
        kind = call.exit_kind
        q = call.queue
        if kind == _EXIT_ABANDON:
            self._abandon(call, t)
        elif kind == _EXIT_REQUEUE:
            targets = self.requeue_targets[q]
            new_q = targets[self.rng.randrange(len(targets))]
            call.queue = new_q
            call.leg += 1
            call.enq = t
            call.exit_due = False
            self.out.append(
                {
                    "type": "call_queued",
                    "ts": round(t, 3),
                    "id": self._nid(),
                    "site": self.q_site_names[new_q],
                    "call_id": call.cid,
                    "queue": self.q_names[new_q],
                    "channel": self.queues[new_q].channel,
                }
            )
            self._plan_exit(call, t, first=False)
            self._offer(call, t)
        else:
            self.out.append(
                {
                    "type": "call_dequeued",
                    "ts": round(t, 3),
                    "id": self._nid(),
                    "site": self.q_site_names[q],
                    "call_id": call.cid,
                    "queue": self.q_names[q],
                    "reason": "timeout" if kind == _EXIT_TIMEOUT else "callback",
                }
            )
            del self.calls[call.num]

    def _on_answer(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls[ag.call]
        call.state = _TALKING
        ag.state = _ON_CALL
        ag.token += 1
        ts = round(t, 3)
        q = call.queue
        agent_id = self.a_ids[a]
        self.out.append(
            {
                "type": "call_answered",
                "ts": ts,
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": agent_id,
                "queue": self.q_names[q],
            }
        )
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": agent_id,
                "state": "on_call",
            }
        )
        ch = self.q_channels[q]
        rng = self.rng
        end = t + rng.lognormvariate(math.log(ch.talk_median_s), ch.talk_sigma)
        x = rng.random()
        before = self.spec.wrap_before_end_prob
        if x < before * 0.5:
            # Some ACDs report after-call work a moment before the call-end record.
            call.wrap_mode = 2
            self._push(max(t, end - rng.uniform(0.05, 1.0)), _K_WRAP_EARLY, a, ag.token)
        elif x < before:
            call.wrap_mode = 1  # wrap_up first, same ts
        else:
            call.wrap_mode = 0  # call_ended first
        self._push(end, _K_TALK_END, a, ag.token)

    def _on_miss(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls[ag.call]
        q = call.queue
        self.out.append(
            {
                "type": "call_missed",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.q_site_names[q],
                "call_id": call.cid,
                "agent": self.a_ids[a],
                "queue": self.q_names[q],
                "reason": "no_answer",
            }
        )
        ag.call = -1
        self._free(ag, t, missed=True)
        # Ring-no-answer keeps the contact in its queue (no new call_queued) with its
        # original place in line; it is offered again at once if someone is idle.
        call.state = _WAITING
        if call.exit_due:
            call.exit_due = False
            self._exit(call, t)
        else:
            self._offer(call, t)

    def _emit_state(self, a: int, ts: float, state: str) -> None:
        self.out.append(
            {
                "type": "agent_state",
                "ts": ts,
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": self.a_ids[a],
                "state": state,
            }
        )

    def _on_wrap_early(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        # The token is left alone so the pending call-end timer still applies.
        ag.state = _WRAP_UP
        self._emit_state(a, round(t, 3), "wrap_up")

    def _on_talk_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token != token:
            return
        call = self.calls.pop(ag.call)
        ts = round(t, 3)
        ended: Event = {
            "type": "call_ended",
            "ts": ts,
            "id": "",
            "site": self.q_site_names[call.queue],
            "call_id": call.cid,
            "agent": self.a_ids[a],
        }
        if call.wrap_mode == 1:
            self._emit_state(a, ts, "wrap_up")
            ended["id"] = self._nid()
            self.out.append(ended)
        elif call.wrap_mode == 2:
            ended["id"] = self._nid()
            self.out.append(ended)
        else:
            ended["id"] = self._nid()
            self.out.append(ended)
            self._emit_state(a, ts, "wrap_up")
        ag.call = -1
        ag.state = _WRAP_UP
        ag.token += 1
        ch = self.q_channels[call.queue]
        wrap = self.rng.lognormvariate(math.log(ch.wrap_median_s), ch.wrap_sigma)
        self._push(t + wrap, _K_WRAP_END, a, ag.token)

    # -- agents ---------------------------------------------------------------------------

    def _on_wrap_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token == token:
            self._free(ag, t, missed=False)

    def _on_nr_end(self, t: float, a: int, token: int) -> None:
        ag = self.agents[a]
        if ag.token == token:
            self._free(ag, t, missed=False)

    def _free(self, ag: _Agent, t: float, *, missed: bool) -> None:
        """The agent has no contact any more: log out, take a break or become available."""
        if ag.pending_logout:
            self._logout(ag, t)
        elif missed and self.rng.random() < self.spec.missed_not_ready_prob:
            dur = self.rng.lognormvariate(self.mu_missed, 0.6)
            self._not_ready(ag, t, "missed", dur)
        elif ag.pending_break is not None:
            reason, dur = ag.pending_break
            ag.pending_break = None
            self._not_ready(ag, t, reason, dur)
        else:
            self._available(ag, t, login=False)

    def _not_ready(self, ag: _Agent, t: float, reason: str, dur: float) -> None:
        ag.state = _NOT_READY
        ag.reason = reason
        ag.token += 1
        a = ag.idx
        self.out.append(
            {
                "type": "agent_state",
                "ts": round(t, 3),
                "id": self._nid(),
                "site": self.a_sites[a],
                "agent": self.a_ids[a],
                "state": "not_ready",
                "reason": reason,
            }
        )
        self._push(t + dur, _K_NR_END, a, ag.token)

    def _available(self, ag: _Agent, t: float, *, login: bool) -> None:
        ag.state = _AVAILABLE
        ag.reason = None
        ag.token += 1
        a = ag.idx
        ev: Event = {
            "type": "agent_state",
            "ts": round(t, 3),
            "id": self._nid(),
            "site": self.a_sites[a],
            "agent": self.a_ids[a],
            "state": "available",
        }
        info = self.infos[a]
        if login:
            ev["queues"] = [self.q_names[q] for q in info.skills]
            ev["team"] = info.team
            ev["name"] = info.name
        self.out.append(ev)

        # Take the best waiting contact over all skills: voice before chat before
        # email, then the one that has waited longest.
        best_q = -1
        best_key: tuple[int, float, int] | None = None
        calls = self.calls
        for q in info.skills:
            wq = self.waiting[q]
            while wq:
                _, num, leg = wq[0]
                c = calls.get(num)
                if c is not None and c.state == _WAITING and c.leg == leg and c.queue == q:
                    break
                heapq.heappop(wq)  # stale: answered elsewhere, abandoned or requeued
            if wq:
                key = (self.q_rank[q], wq[0][0], wq[0][1])
                if best_key is None or key < best_key:
                    best_key = key
                    best_q = q
        if best_q >= 0:
            _, num, _ = heapq.heappop(self.waiting[best_q])
            self._route(calls[num], ag, t)
            return
        entry = (t, a, ag.token)
        for q in info.skills:
            heapq.heappush(self.idle[q], entry)

    def _on_break(self, t: float, a: int, plan: int) -> None:
        reason, dur, shift_id = self.plans.pop(plan)
        ag = self.agents[a]
        if ag.shift_id != shift_id or ag.pending_logout:
            return
        state = ag.state
        if state == _AVAILABLE or (state == _NOT_READY and ag.reason == "missed"):
            self._not_ready(ag, t, reason, dur)
        elif state in (_RINGING, _ON_CALL, _WRAP_UP) and ag.pending_break is None:
            # Real agents finish the contact first; the break starts after wrap-up.
            ag.pending_break = (reason, dur)
        # Already on another break (or logged out): this one is skipped.

    def _on_login(self, t: float, a: int, day: int) -> None:
        ag = self.agents[a]
        if ag.state != _LOGGED_OUT:
            return
        spec = self.spec
        rng = self.rng
        shift_start = self._shift_start(a, day)
        shift_s = self.infos[a].shift_s
        ag.shift_id += 1
        ag.day = day
        ag.pending_break = None
        ag.pending_logout = False
        logout_at = shift_start + shift_s
        if rng.random() < spec.early_logout_prob:
            logout_at -= rng.uniform(300.0, 1200.0)
        logout_at = max(logout_at, t + 60.0)
        self._push(logout_at, _K_LOGOUT, a, ag.shift_id)

        overrun = spec.not_ready_overrun_prob
        for nr in spec.not_ready:
            if not nr.applies(shift_s):
                continue  # e.g. no lunch break in a short part-time shift
            if nr.at_fraction is not None:
                times = (
                    [shift_start + nr.at_fraction * shift_s + rng.uniform(-900.0, 900.0)]
                    if rng.random() < nr.per_shift
                    else []
                )
            else:
                times = [
                    shift_start + rng.uniform(0.05, 0.95) * shift_s
                    for _ in range(_poisson(rng, nr.per_shift))
                ]
            for at in times:
                dur = rng.lognormvariate(math.log(nr.median_s), nr.sigma)
                if rng.random() < overrun:
                    dur *= rng.uniform(1.5, 3.0)
                # Skip breaks already past at login and ones that would start in the
                # last minutes of the shift.
                if t < at < min(logout_at - 600.0, self.end):
                    self.n_plans += 1
                    self.plans[self.n_plans] = (nr.reason, dur, ag.shift_id)
                    self._push(at, _K_BREAK, a, self.n_plans)
        self._available(ag, t, login=True)

    def _on_logout(self, t: float, a: int, shift_id: int) -> None:
        ag = self.agents[a]
        if ag.shift_id != shift_id or ag.state == _LOGGED_OUT:
            return
        if ag.state in (_AVAILABLE, _NOT_READY):
            self._logout(ag, t)
        else:
            # Agents finish the contact in hand (and its wrap-up) before leaving.
            ag.pending_logout = True

    def _logout(self, ag: _Agent, t: float) -> None:
        ag.state = _LOGGED_OUT
        ag.reason = None
        ag.token += 1
        ag.pending_logout = False
        ag.pending_break = None
        self._emit_state(ag.idx, round(t, 3), "logged_out")
        self._schedule_login(ag.idx, ag.day + 1, t + 60.0)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by Knuth's method (fine for the small means used here)."""
    if mean <= 0.0:
        return 0
    limit = math.exp(-mean)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _run_tag(start: float) -> str:
    """The start of a run, short: base-36 whole seconds (``sxf1g0`` for 2026-12-07)."""
    n = int(start)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, d = divmod(n, 36)
        out = digits[d] + out
        if n == 0:
            return out
