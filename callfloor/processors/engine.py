"""The floor processor: canonical events and clock ticks in, state and changes out.

Pure and deterministic: no I/O, no wall clock, no asyncio. Live operation, replay
and tests drive the same object:

- :meth:`FloorProcessor.apply` takes one decoded event. If its ``ts`` is ahead of
  the clock, the clock first advances to it, firing every deadline that falls in
  between at its exact time.
- :meth:`FloorProcessor.tick` advances the clock with no event, so waits grow,
  service-level misses count and violations start while nothing arrives.
- :meth:`FloorProcessor.snapshot` (see :mod:`callfloor.processors.snapshot`) renders
  the SPEC §7 document at the clock; :meth:`drain_changes` says what changed since
  the last call.

Deadlines are timers in a heap, each recorded at its exact moment
(``call_queued.ts + T``, a spell's start + its limit), never at the tick that
noticed it.

Events older than the clock are *late*: they are counted and still applied at their
own time (windows insert them where they belong). A service-level miss or a
violation that a late event proves never happened is retracted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from callfloor.config import DAILY_SEVERITIES, Config, QueuePolicy
from callfloor.events import (
    EVENT_TYPES,
    AgentState,
    CallAbandoned,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    CallRouted,
    Event,
    dedup_key,
)
from callfloor.processors.dedup import Deduplicator
from callfloor.processors.limits import (
    Refusal,
    cardinality_refusal,
    name_refusal,
    too_old_refusal,
)
from callfloor.processors.model import (
    Agent,
    Conversation,
    Leg,
    PendingHandle,
    QueueState,
    SiteState,
    Violation,
)
from callfloor.processors.timers import Timer, TimerHeap
from callfloor.processors.views import ChangeSet
from callfloor.processors.windows import (
    ABANDONED,
    ABANDONED_IN_SL,
    ANSWERED,
    ANSWERED_IN_SL,
    DEQUEUED,
    HANDLE_US,
    HANDLED,
    OFFERED,
    SHORT_ABANDONED,
    SL_OFFERED,
    WAIT_US,
    Deltas,
)

if TYPE_CHECKING:
    from callfloor.processors.read import FloorReader

# Timer kinds.
T_LEG_MISS: Final = 0
T_SPELL_LIMIT: Final = 1
T_DAILY: Final = 2
T_DAY_END: Final = 3
T_MISSED_EXPIRE: Final = 4
T_STALE: Final = 5

# Constant deltas for the common records.
_D_OFFERED: Final[Deltas] = ((OFFERED, 1),)
_D_MISS: Final[Deltas] = ((SL_OFFERED, 1),)
_D_UNMISS: Final[Deltas] = ((SL_OFFERED, -1),)
_D_SHORT: Final[Deltas] = ((SHORT_ABANDONED, 1),)
_D_DEQUEUED: Final[Deltas] = ((DEQUEUED, 1),)
_D_MET: Final[Deltas] = ((SL_OFFERED, 1), (ANSWERED_IN_SL, 1))
_D_ABANDONED_IN_SL: Final[Deltas] = ((SL_OFFERED, 1), (ABANDONED_IN_SL, 1))

# How an open leg ended.
END_ANSWER: Final = 0
END_ABANDON: Final = 1
END_DEQUEUE: Final = 2

STATE_VERSION: Final = 1

COUNTER_NAMES: Final[tuple[str, ...]] = ("events", "rejected", "duplicates", "orphaned", "late")


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _count_in(times: list[float], t: float, window: float) -> int:
    """How many of the sorted ``times`` lie in the rolling window (t - window, t]."""
    return bisect_right(times, t) - bisect_right(times, t - window)


@dataclass
class Changes:
    """What changed since the previous :meth:`FloorProcessor.drain_changes`.

    Names of queues, sites and agents whose discrete state changed, and the
    violations that started or ended. Values that move with the clock alone
    (``longest_wait_s``, rolling-window expiry, the value of an active violation)
    are not listed: readers recompute them on every tick.
    """

    queues: set[str] = field(default_factory=set)
    sites: set[str] = field(default_factory=set)
    # Distinct queue lists whose agent counts changed (expanded into ``queues`` on drain).
    groups: set[tuple[str, ...]] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.queues or self.sites or self.agents or self.violations or self.groups)


class FloorProcessor:
    """Live queue and agent state of a contact centre, driven by events and ticks."""

    def __init__(
        self, config: Config, *, live: bool = False, retention_s: float | None = None
    ) -> None:
        """``live=True`` is live operation: events older than the clock minus
        ``[limits] max_lateness`` are refused (``ts_too_old``) and what never
        finished expires after that long; replay keeps everything."""
        if live and retention_s is None:
            retention_s = config.limits.max_lateness_s
        self.live = live or retention_s is not None
        self.config = config
        self.rules = config.agents
        # Rolling windows: the configured ones plus the 15 and 60 minutes that the
        # arrival rate and the Erlang AHT need, each width once.
        widths: list[float] = []
        self.window_index: dict[str, int] = {}
        for label, seconds in config.rolling_windows:
            if seconds not in widths:
                widths.append(seconds)
            self.window_index[label] = widths.index(seconds)
        for seconds in (900.0, 3600.0):
            if seconds not in widths:
                widths.append(seconds)
        self.widths = tuple(widths)
        self.idx_15m = widths.index(900.0)
        self.idx_60m = widths.index(3600.0)

        self.clock = float("-inf")
        self.sites: dict[str, SiteState] = {}
        self.queues: dict[str, QueueState] = {}
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Leg] = {}  # open legs by call_id
        self.conversations: dict[str, list[Conversation]] = {}
        self.timers = TimerHeap()
        self.violations: list[Violation] = []
        self.violation_by_uid: dict[int, Violation] = {}
        # Lifetime counts by (kind, severity): the retained list is pruned, these never go down.
        self.violations_started: dict[tuple[str, str], int] = {}
        self.violations_retracted: dict[tuple[str, str], int] = {}
        # Live operation forgets old ended violations and never-finished calls after
        # this long (None: keep everything, as replay does).
        self.retention_s = retention_s
        self.expired = {"conversations": 0, "pending_handling": 0}
        self._next_prune = float("-inf")
        self.dedup = Deduplicator(config.ingest.dedup_window_s, config.ingest.dedup_max_entries)
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self.rejected_by_reason: dict[str, int] = {}
        self._events_by_class: dict[type, int] = {}
        # Agent counts by state per distinct queue list: an agent_state costs two
        # dict updates however many queues the agent serves.
        self.groups: dict[tuple[str, ...], dict[str, int]] = {}
        self.groups_by_queue: dict[str, list[tuple[str, ...]]] = {}
        self._leg_seq = 0
        self._uid = 0
        self._changes = Changes()
        self._version = 0
        # Logged-in agents by the time of their last agent_state, oldest first: the
        # front is the next to turn stale, so one timer covers every agent.
        # A plain dict (insertion-ordered, a third of OrderedDict's memory); only the
        # rare timer fire looks at its front.
        self.stale_order: dict[str, float] = {}
        # Shared copies of low-cardinality strings (teams, reasons) kept per agent.
        self._strings: dict[str, str] = {}
        self._stale_sorted = True
        self._stale_tail = float("-inf")
        self._stale_timer_at: float | None = None
        self._handlers: dict[type, Callable[[object, float], bool]] = {
            CallQueued: self._on_call_queued,  # type: ignore[dict-item]
            CallRouted: self._on_call_routed,  # type: ignore[dict-item]
            CallMissed: self._on_call_missed,  # type: ignore[dict-item]
            CallAnswered: self._on_call_answered,  # type: ignore[dict-item]
            CallAbandoned: self._on_call_abandoned,  # type: ignore[dict-item]
            CallDequeued: self._on_call_dequeued,  # type: ignore[dict-item]
            CallEnded: self._on_call_ended,  # type: ignore[dict-item]
            AgentState: self._on_agent_state,  # type: ignore[dict-item]
        }
        self._fire_table: dict[int, Callable[[Timer], None]] = {
            T_LEG_MISS: self._fire_leg_miss,
            T_SPELL_LIMIT: self._fire_spell_limit,
            T_DAILY: self._fire_daily,
            T_DAY_END: self._fire_day_end,
            T_MISSED_EXPIRE: self._fire_missed_expire,
            T_STALE: self._fire_stale,
        }
        for name, qc in config.queues.items():
            site = qc.site if qc.site is not None else "default"
            self._new_queue(
                name, site, qc.channel, qc.policy, configured=True, site_fixed=qc.site is not None
            )

    # ================================================================ inputs

    def is_duplicate(self, event: Event) -> bool:
        """Whether ``event`` would be dropped as a duplicate (a peek: nothing is recorded)."""
        key = event.id
        return self.dedup.known(dedup_key(event) if key is None else key)

    def check(self, event: Event) -> Refusal | None:
        """Why ``event`` would be refused by the SPEC §9 limits, or None if it is admitted."""
        limits = self.config.limits
        refusal = name_refusal(event, limits)
        if refusal is not None:
            return refusal
        agent = getattr(event, "agent", None)
        queue = getattr(event, "queue", None)
        refusal = cardinality_refusal(
            event,
            limits,
            queues=len(self.queues),
            has_queue=queue in self.queues,
            sites=len(self.sites),
            has_site=event.site in self.sites,
            agents=len(self.agents),
            has_agent=agent is None or agent in self.agents,
        )
        if refusal is not None:
            return refusal
        if self.live:
            horizon = self.clock - limits.max_lateness_s
            ts: float = event.ts  # type: ignore[assignment]
            if ts < horizon:
                return too_old_refusal(ts, horizon, limits.max_lateness_s)
        return None

    def apply(self, event: Event) -> Refusal | None:
        """Apply one valid event (the per-event path: no I/O, no await).

        Returns the refusal when the event is beyond a SPEC §9 limit (counted as
        rejected and not applied), else None.
        """
        refusal = self.check(event)
        if refusal is not None:
            self.count_rejected(refusal.reason)
            return refusal
        t: float = event.ts  # type: ignore[assignment]  # a float once decoded
        key = event.id
        clock = self.clock
        if self.dedup.seen(dedup_key(event) if key is None else key, t if t > clock else clock):
            self.counters["duplicates"] += 1
            return None
        late = t < clock
        if t > clock:
            heap = self.timers.heap
            if heap and heap[0][0] <= t:
                self._advance(t)
            else:
                self.clock = t
        kind = type(event)
        self._version += 1
        if self._handlers[kind](event, t):
            self.counters["duplicates"] += 1
            return None
        counters = self.counters
        counters["events"] += 1
        by_class = self._events_by_class
        by_class[kind] = by_class.get(kind, 0) + 1
        if late:
            counters["late"] += 1
            # A late event can place deadlines in the past: honour them now.
            self._advance(self.clock)
        return None

    @property
    def events_by_type(self) -> dict[str, int]:
        """Accepted events by ``type``."""
        return {
            kind.__struct_config__.tag: n  # type: ignore[attr-defined]
            for kind, n in self._events_by_class.items()
        }

    def apply_all(self, events: Iterable[Event]) -> None:
        """Apply events in order."""
        apply = self.apply
        for event in events:
            apply(event)

    def count_rejected(self, reason: str) -> None:
        """Count an invalid event (decoding happens outside; see callfloor.ingest)."""
        self.counters["rejected"] += 1
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1

    def tick(self, now: float) -> None:
        """Advance the clock to ``now`` with no event (no-op if the clock is ahead)."""
        if now > self.clock:
            self._advance(now)

    def drain_changes(self) -> ChangeSet:
        """What changed since the last call (a new change set starts)."""
        from callfloor.processors.snapshot import changes_doc

        changes, self._changes = self._changes, Changes()
        for group in changes.groups:
            changes.queues.update(group)
        changes.groups.clear()
        if not changes:
            return ChangeSet(as_of=self.clock, queues=[], sites=[], agents=[], violations=[])
        return msgspec.convert(changes_doc(self, changes), ChangeSet)

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor's clock (see :mod:`callfloor.processors.read`)."""
        from callfloor.processors.read import FloorReader

        return FloorReader(self)

    @property
    def version(self) -> int:
        """Grows with every applied event and every fired deadline (a cache key part)."""
        return self._version

    # ================================================================ state

    def dump(self) -> dict[str, Any]:
        """The whole state as plain data (msgpack-safe; JSON-safe except -inf sentinels)."""
        return {
            "version": STATE_VERSION,
            "clock": self.clock,
            "sites": {name: s.dump() for name, s in self.sites.items()},
            "queues": {name: q.dump() for name, q in self.queues.items()},
            "agents": {name: a.dump() for name, a in self.agents.items()},
            "conversations": {
                cid: [c.dump() for c in convs] for cid, convs in self.conversations.items()
            },
            "timers": self.timers.dump(),
            "violations": [v.dump() for v in self.violations],
            "dedup": self.dedup.dump(),
            "counters": dict(self.counters),
            "rejected_by_reason": dict(self.rejected_by_reason),
            "events_by_type": self.events_by_type,
            "groups": [[list(g), dict(c)] for g, c in self.groups.items()],
            "stale_order": [[name, last] for name, last in self.stale_order.items()],
            "stale_sorted": self._stale_sorted,
            "stale_tail": self._stale_tail,
            "stale_timer_at": self._stale_timer_at,
            "violations_started": [[k, s, n] for (k, s), n in self.violations_started.items()],
            "violations_retracted": [[k, s, n] for (k, s), n in self.violations_retracted.items()],
            "expired": dict(self.expired),
            "leg_seq": self._leg_seq,
            "uid": self._uid,
        }

    @classmethod
    def load(
        cls, config: Config, data: dict[str, Any], *, retention_s: float | None = None
    ) -> FloorProcessor:
        """A processor restored from :meth:`dump` output, under (possibly new) ``config``."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        proc = cls(config, retention_s=retention_s)
        proc.clock = float(data["clock"])
        for name, sd in data["sites"].items():
            proc.site(str(name)).load(sd)
        for name, qd in data["queues"].items():
            q = proc.queues.get(name)
            if q is None:
                channel = str(qd["channel"])
                q = proc._new_queue(
                    name,
                    str(qd["site"]),
                    channel,
                    config.queue_policy(name, channel),
                    configured=False,
                    site_fixed=bool(qd["site_fixed"]),
                )
            q.load(qd)
            for cid, leg in q.open.items():
                proc.calls[cid] = leg
        violations = [Violation.load(row) for row in data["violations"]]
        proc.violations = violations
        proc.violation_by_uid = {v.uid: v for v in violations}
        for name, ad in data["agents"].items():
            agent = Agent(str(name), str(ad["site"]))
            agent.load(ad, proc.violation_by_uid)
            proc.agents[agent.name] = agent
        proc.conversations = {
            str(cid): [Conversation.load(row) for row in rows]
            for cid, rows in data["conversations"].items()
        }
        proc.timers = TimerHeap.load(data["timers"])
        proc.dedup.load(data["dedup"])
        proc.counters.update({k: int(v) for k, v in data["counters"].items()})
        proc.rejected_by_reason = {str(k): int(v) for k, v in data["rejected_by_reason"].items()}
        classes = {k.__struct_config__.tag: k for k in EVENT_TYPES}
        proc._events_by_class = {
            classes[k]: int(v) for k, v in data["events_by_type"].items() if k in classes
        }
        for group_list, counts in data["groups"]:
            group = proc._intern_group(list(group_list))
            proc.groups[group] = {str(k): int(v) for k, v in counts.items()}
        proc.stale_order = {str(n): float(last) for n, last in data["stale_order"]}
        proc._stale_sorted = bool(data["stale_sorted"])
        proc._stale_tail = float(data["stale_tail"])
        at = data["stale_timer_at"]
        proc._stale_timer_at = None if at is None else float(at)
        proc.violations_started = {
            (str(k), str(s)): int(n) for k, s, n in data["violations_started"]
        }
        proc.violations_retracted = {
            (str(k), str(s)): int(n) for k, s, n in data["violations_retracted"]
        }
        proc.expired.update({str(k): int(v) for k, v in data["expired"].items()})
        proc._leg_seq = int(data["leg_seq"])
        proc._uid = int(data["uid"])
        return proc

    # ================================================================ clock

    def _advance(self, t: float) -> None:
        pop = self.timers.pop_due
        fire = self._fire_table
        while (timer := pop(t)) is not None:
            if timer.at > self.clock:
                self.clock = timer.at
            self._version += 1
            fire[timer.kind](timer)
        if t > self.clock:
            self.clock = t
        if self.retention_s is not None:
            self._housekeeping()

    # ================================================================ sites and queues

    def site(self, name: str) -> SiteState:
        """The site state, created with its configuration (or defaults) on first use."""
        site = self.sites.get(name)
        if site is None:
            site = SiteState(self.config.site(name))
            self.sites[name] = site
        return site

    def _new_queue(
        self,
        name: str,
        site: str,
        channel: str,
        policy: QueuePolicy,
        *,
        configured: bool,
        site_fixed: bool,
    ) -> QueueState:
        q = QueueState(
            name,
            site,
            channel,
            policy,
            self.widths,
            configured=configured,
            site_fixed=site_fixed,
        )
        self.queues[name] = q
        self.site(site)
        return q

    def _record(
        self,
        q: QueueState,
        x: float,
        deltas: Deltas,
        wait_us: int = -1,
        *,
        lifetime: bool = True,
    ) -> None:
        """Count ``deltas`` for queue ``q`` at attribution time ``x``.

        ``lifetime=False`` leaves the lifetime totals alone (a retracted miss's SL
        event moving to its real time is counted once there).
        """
        cal = self.sites[q.site].calendar
        now = self.clock
        q.windows.add(x, deltas, cal.day_start(now), wait_us, now)
        if lifetime:
            totals = q.totals
            for f, v in deltas:
                if v > 0:  # lifetime totals feed Prometheus counters: never decrease
                    totals[f] += v
        changes = self._changes
        changes.queues.add(q.name)
        changes.sites.add(q.site)

    # ================================================================ call events

    def _on_call_queued(self, ev: CallQueued, t: float) -> bool:
        q = self.queues.get(ev.queue)
        if q is None:
            q = self._new_queue(
                ev.queue,
                ev.site,
                ev.channel,
                self.config.queue_policy(ev.queue, ev.channel),
                configured=False,
                site_fixed=True,
            )
        elif not q.site_fixed:
            q.site = ev.site
            q.site_fixed = True
            self.site(ev.site)
        q.listed = True
        cid = ev.call_id
        leg = self.calls.get(cid)
        if leg is not None:
            if leg.queue == q.name:
                return True  # already waiting in this queue: a duplicate
            if t < leg.start:
                # A late call_queued older than the call's current leg: that earlier leg
                # ended as requeued when the current one started.
                threshold = q.policy.sl_threshold_s
                self._record(q, t, _D_OFFERED)
                if leg.start - t > threshold:
                    self._record(q, t + threshold, _D_MISS)
                self._record(q, leg.start, _D_DEQUEUED)
                return False
            self._end_leg(leg, t, END_DEQUEUE)  # requeued into another queue
        self._leg_seq += 1
        leg = Leg(cid, q.name, t, self._leg_seq)
        if t < q.last_start:
            q.ordered = False
        else:
            q.last_start = t
        q.open[cid] = leg
        self.calls[cid] = leg
        self._record(q, t, _D_OFFERED)
        self.timers.schedule(t + q.policy.sl_threshold_s, T_LEG_MISS, cid, leg.seq, strict=True)
        return False

    def _end_leg(self, leg: Leg, t: float, how: int) -> None:
        q = self.queues[leg.queue]
        del q.open[leg.call_id]
        del self.calls[leg.call_id]
        if not q.open:
            q.ordered = True
            q.last_start = float("-inf")
        wait = t - leg.start
        if wait < 0:
            wait = 0.0
        policy = q.policy
        threshold = policy.sl_threshold_s
        within = wait <= threshold
        # A late event can show that a leg already counted as missed ended within T:
        # the miss never happened, so it is taken back at its own time.
        relapse = within and leg.missed
        if relapse:
            self._record(q, leg.start + threshold, _D_UNMISS)
        wait_us = _us(wait)
        has_sl_event = False
        if how == END_ANSWER:
            deltas: Deltas = ((ANSWERED, 1), (WAIT_US, wait_us))
            if within:
                has_sl_event = True
                deltas += ((ANSWERED_IN_SL, 1),) if relapse else _D_MET
            self._record(q, t, deltas, wait_us)
            self._histogram(q.hist_answered, q.bounds, wait)
        elif how == END_ABANDON:
            short = policy.short_abandon_s
            if short > 0 and wait <= short:
                self._record(q, t, _D_SHORT)
            else:
                deltas = ((ABANDONED, 1),)
                if within:
                    has_sl_event = True
                    deltas += ((ABANDONED_IN_SL, 1),) if relapse else _D_ABANDONED_IN_SL
                self._record(q, t, deltas, wait_us)
                self._histogram(q.hist_abandoned, q.bounds, wait)
                q.abandoned_wait_us += wait_us
        else:
            self._record(q, t, _D_DEQUEUED)
        if relapse and has_sl_event:
            # The leg's service-level event moves from the miss to this event; lifetime
            # totals already counted it once, so only the windows see it again.
            self._record(q, t, _D_MISS, lifetime=False)

    @staticmethod
    def _histogram(buckets: list[int], bounds: tuple[float, ...], wait: float) -> None:
        i = 0
        n = len(bounds)
        while i < n and wait > bounds[i]:
            i += 1
        buckets[i] += 1

    def _on_call_routed(self, ev: CallRouted, t: float) -> bool:
        # Offered to an agent: no counted metric depends on it; the agent exists now.
        self._agent(ev.agent)
        return False

    def _on_call_answered(self, ev: CallAnswered, t: float) -> bool:
        leg = self.calls.get(ev.call_id)
        if leg is None:
            self.counters["orphaned"] += 1
            return False
        queue = leg.queue
        self._end_leg(leg, t, END_ANSWER)
        self.conversations.setdefault(ev.call_id, []).append(Conversation(ev.agent, queue, t))
        agent = self._agent(ev.agent)
        if self._today_counters(agent, t):
            agent.answered_today += 1
            self._changes.agents.add(agent.name)
        return False

    def _on_call_abandoned(self, ev: CallAbandoned, t: float) -> bool:
        leg = self.calls.get(ev.call_id)
        if leg is None:
            self.counters["orphaned"] += 1
            return False
        self._end_leg(leg, t, END_ABANDON)
        return False

    def _on_call_dequeued(self, ev: CallDequeued, t: float) -> bool:
        leg = self.calls.get(ev.call_id)
        if leg is None:
            self.counters["orphaned"] += 1
            return False
        self._end_leg(leg, t, END_DEQUEUE)
        return False

    def _on_call_ended(self, ev: CallEnded, t: float) -> bool:
        convs = self.conversations.get(ev.call_id)
        if not convs:
            self.counters["orphaned"] += 1
            return False
        conv = convs[-1]
        if ev.agent is not None:
            for candidate in reversed(convs):
                if candidate.agent == ev.agent:
                    conv = candidate
                    break
        convs.remove(conv)
        if not convs:
            del self.conversations[ev.call_id]
        agent = self._agent(conv.agent)
        talk = t - conv.answered_at
        pending = PendingHandle(conv.queue, talk if talk > 0 else 0.0, t, agent.state == "wrap_up")
        if agent.pending is None:
            agent.pending = [pending]
        else:
            agent.pending.append(pending)
        return False

    def _complete_handling(self, p: PendingHandle, done_at: float) -> None:
        acw = done_at - p.ended_at
        handle = p.talk_s + (acw if acw > 0 else 0.0)
        q = self.queues[p.queue]
        self._record(q, done_at, ((HANDLED, 1), (HANDLE_US, _us(handle))))

    # ================================================================ agents

    def _agent(self, name: str) -> Agent:
        agent = self.agents.get(name)
        if agent is None:
            agent = Agent(name, "default")
            self.agents[name] = agent
        return agent

    def _today_counters(self, agent: Agent, t: float) -> bool:
        """Roll the agent's answered/missed counters to today; False if ``t`` is in an older day."""
        now = t if t > self.clock else self.clock
        if now >= agent.count_until:
            cal = self.site(agent.site).calendar
            agent.count_from = cal.day_start(now)
            agent.count_until = cal.next_day_start(now)
            agent.answered_today = 0
            agent.missed_today = 0
        return t >= agent.count_from

    def _on_call_missed(self, ev: CallMissed, t: float) -> bool:
        agent = self._agent(ev.agent)
        if self._today_counters(agent, t):
            agent.missed_today += 1
        self._changes.agents.add(agent.name)
        limit = self.rules.missed_calls_max
        if limit <= 0:
            return False
        window = self.rules.missed_calls_window_s
        times = agent.missed_at
        if times is None:
            times = agent.missed_at = []
        insort(times, t)  # appends unless the miss is late
        # Keep two windows of history, so a miss up to a window late still finds the
        # misses it was counted with.
        old = bisect_right(times, self.clock - 2 * window)
        if old:
            del times[:old]
        # Misses at or after t now count more; the first whose rolling window reaches
        # the limit is where a violation starts (for an in-order miss: t itself).
        peak = 0
        crossing: float | None = None
        for m in times[bisect_left(times, t) :]:
            count = _count_in(times, m, window)
            peak = max(peak, count)
            if crossing is None and count >= limit:
                crossing = m
        active = agent.active.get("missed_calls_exceeded") if agent.active else None
        if active is not None:
            if crossing is not None and crossing < active.started_at:
                active.started_at = crossing  # a late miss crossed the limit earlier
            if peak > active.value:
                active.value = float(peak)
            self._changes.violations.append(active)
            return False
        if crossing is None:
            return False
        v = self._start_violation("missed_calls_exceeded", agent, "warning", crossing)
        self._slots(agent)["missed_calls_exceeded"] = v
        self._follow_missed(agent, v, crossing)
        return False

    def _follow_missed(self, a: Agent, v: Violation, at: float) -> None:
        """Walk a missed-calls violation forward from ``at``: end it where the count
        drops below the limit (now, if that already happened; else a timer waits for
        the next moment a miss leaves the window), and keep its peak count."""
        times = a.missed_at
        assert times is not None
        window = self.rules.missed_calls_window_s
        limit = self.rules.missed_calls_max
        x = at
        while True:
            d = times[bisect_right(times, x - window)] + window  # oldest counted miss leaves
            if d > self.clock:
                self._raise_peak(v, times, at, self.clock)
                self.timers.schedule(d, T_MISSED_EXPIRE, a.name, v.uid, strict=False)
                return
            if _count_in(times, d, window) < limit:
                self._raise_peak(v, times, at, d)
                del self._slots(a)["missed_calls_exceeded"]
                self._end_violation(v, d, v.value)
                return
            x = d

    def _raise_peak(self, v: Violation, times: list[float], start: float, end: float) -> None:
        """The highest rolling count at any miss in [start, end] into ``v.value``."""
        window = self.rules.missed_calls_window_s
        for m in times[bisect_left(times, start) : bisect_right(times, end)]:
            v.value = max(v.value, float(_count_in(times, m, window)))

    def _on_agent_state(self, ev: AgentState, t: float) -> bool:
        name = ev.agent
        a = self.agents.get(name)
        if a is None:
            a = self.agents[name] = Agent(name, "default")
        known = a.known
        if known and t < a.last_state_at:
            # Older than the agent's last agent_state (a repeat included): superseded by
            # newer information, counted late, changes nothing.
            return False
        changes = self._changes
        changes.agents.add(name)
        state = ev.state
        reason = self._shared(ev.reason) if state == "not_ready" and ev.reason else None

        if a.active:
            stale = a.active.pop("stale_agent", None)
            if stale is not None:
                if t <= stale.started_at:
                    self._retract_violation(stale)  # late: the silence never lasted that long
                else:
                    self._end_violation(stale, t, t - stale.anchor)
        if t > a.last_state_at:
            a.last_state_at = t

        old_group = a.queues
        old_site = a.site
        old_state = a.state
        new_group = old_group if ev.queues is None else self._intern_group(ev.queues)
        new_site = ev.site
        if ev.team is not None:
            a.team = self._shared(ev.team)
        if ev.name is not None:
            a.display_name = ev.name

        if known:
            spell_changes = state != old_state or reason != a.reason
            if spell_changes:
                self._close_spell(a, t)
        else:
            spell_changes = True

        # Calls ended before this event whose after-call work was undecided: this is
        # the agent's next agent_state, so it decides.
        if a.pending:
            keep: list[PendingHandle] = []
            for p in a.pending:
                if p.attached:
                    keep.append(p)
                elif state == "wrap_up":
                    p.attached = True
                    keep.append(p)
                else:
                    self._complete_handling(p, p.ended_at)
            a.pending = keep or None

        # Live agent counts: per distinct queue list and per site.
        if old_state != state or old_group != new_group:
            groups = self.groups
            if old_state is not None and old_group:
                groups[old_group][old_state] -= 1
                changes.groups.add(old_group)
            if new_group:
                counts = groups[new_group]
                counts[state] = counts.get(state, 0) + 1
                changes.groups.add(new_group)
            a.queues = new_group
        if old_state != state or old_site != new_site:
            sites = self.sites
            if old_state is not None:
                sites[old_site].agent_counts[old_state] -= 1
                changes.sites.add(old_site)
            site = sites.get(new_site)
            if site is None:
                site = self.site(new_site)
            counts = site.agent_counts
            counts[state] = counts.get(state, 0) + 1
            changes.sites.add(new_site)
            a.site = site.name

        if spell_changes:
            a.state = state
            a.reason = reason
            a.since = t
            a.spell += 1
            if state == "not_ready" or state == "wrap_up":
                self._open_spell(a, t)
        if state != "logged_out":
            self._stale_touch(a)
        elif self.stale_order:
            self.stale_order.pop(name, None)
        return False

    def _stale_touch(self, a: Agent) -> None:
        """Move a logged-in agent to the back of the silence queue."""
        order = self.stale_order
        last = a.last_state_at
        order.pop(a.name, None)  # re-insert at the back
        order[a.name] = last
        if last < self._stale_tail:
            self._stale_sorted = False  # a late event: re-sort before the next check
        else:
            self._stale_tail = last
        due = last + self.rules.stale_after_s
        if self._stale_timer_at is None or due < self._stale_timer_at:
            # The earlier timer supersedes any later one (whose token no longer matches).
            self._stale_timer_at = due
            self.timers.schedule(due, T_STALE, a.name, due, strict=True)

    def _schedule_stale_check(self) -> None:
        """One timer for the whole floor: when the longest-silent agent turns stale."""
        order = self.stale_order
        if not order:
            self._stale_timer_at = None
            return
        if not self._stale_sorted:
            self.stale_order = order = dict(sorted(order.items(), key=lambda kv: kv[1]))
            self._stale_sorted = True
        name, last = next(iter(order.items()))
        at = last + self.rules.stale_after_s
        self._stale_timer_at = at
        self.timers.schedule(at, T_STALE, name, at, strict=True)

    def _intern_group(self, queues: list[str]) -> tuple[str, ...]:
        group = tuple(sorted(set(queues)))
        if group not in self.groups:
            self.groups[group] = {}
            for name in group:
                self.groups_by_queue.setdefault(name, []).append(group)
        return group

    def _shared(self, text: str) -> str:
        """One shared copy of a string kept by many agents (bounded, unlike sys.intern)."""
        found = self._strings.get(text)
        if found is not None:
            return found
        if len(self._strings) < 10_000:
            self._strings[text] = text
        return text

    @staticmethod
    def _slots(a: Agent) -> dict[str, Violation]:
        """The agent's active violations by slot, allocated on first use."""
        if a.active is None:
            a.active = {}
        return a.active

    def _nr_counts(self, a: Agent) -> bool:
        """Whether the agent's current spell is non-exempt not-ready time."""
        return a.state == "not_ready" and a.reason not in self.rules.exempt_reasons

    def _close_spell(self, a: Agent, t: float) -> None:
        state = a.state
        if state != "wrap_up" and state != "not_ready":
            return  # only these spells carry after-call work, not-ready time or limits
        if state == "wrap_up" and a.pending:
            keep: list[PendingHandle] = []
            for p in a.pending:
                if p.attached:
                    self._complete_handling(p, t)
                else:
                    keep.append(p)
            a.pending = keep or None
        if state == "not_ready" and a.reason not in self.rules.exempt_reasons:
            self._roll_nr_day(a, t)
            if t >= a.nr_from:  # else a late event closed it on an earlier day
                start = a.since if a.since > a.nr_from else a.nr_from
                if t > start:
                    a.nr_closed_s += t - start
        active = a.active
        if not active:
            return
        for slot in ("not_ready_exceeded", "wrap_up_exceeded"):
            v = active.get(slot)
            if v is not None and v.spell == a.spell:
                del active[slot]
                if t <= v.started_at:
                    self._retract_violation(v)
                else:
                    self._end_violation(v, t, t - a.since)
        # Daily crossings a late event shows never happened.
        for slot, v in list(active.items()):
            if v.kind == "not_ready_daily_exceeded" and v.spell == a.spell and t <= v.started_at:
                del active[slot]
                a.daily_crossed -= 1
                self._retract_violation(v)

    def _open_spell(self, a: Agent, t: float) -> None:
        state = a.state
        if state == "not_ready":
            if a.reason in self.rules.exempt_reasons:
                return
            limit = self.rules.not_ready_limit(a.reason)
            self.timers.schedule(t + limit, T_SPELL_LIMIT, a.name, a.spell, strict=True)
            self._schedule_daily(a, t)
        elif state == "wrap_up":
            self.timers.schedule(
                t + self.rules.wrap_up_max_s, T_SPELL_LIMIT, a.name, a.spell, strict=True
            )

    def _roll_nr_day(self, a: Agent, t: float) -> None:
        """Start a new not-ready day for the agent once ``t`` reaches its next midnight."""
        if t >= a.nr_until:
            cal = self.site(a.site).calendar
            a.nr_from = cal.day_start(t)
            a.nr_until = cal.next_day_start(t)
            a.nr_closed_s = 0.0
            a.daily_crossed = 0

    def not_ready_today(self, a: Agent, t: float) -> float:
        """Non-exempt not-ready seconds since the agent's site-local midnight, at ``t``."""
        day = self.site(a.site).calendar.day_start(t)
        total = a.nr_closed_s if a.nr_from <= t < a.nr_until else 0.0
        if self._nr_counts(a):
            start = a.since if a.since > day else day
            if t > start:
                total += t - start
        return total

    def _schedule_daily(self, a: Agent, t: float) -> None:
        """Schedule the next daily-limit crossing of the current not-ready spell from ``t``."""
        limits = self.rules.daily_not_ready_s
        cal = self.site(a.site).calendar
        self._roll_nr_day(a, t)
        if a.daily_crossed >= len(limits):
            return
        total = self.not_ready_today(a, t)
        crossing = t + (limits[a.daily_crossed] - total)
        midnight = cal.next_day_start(t)
        if crossing < midnight:
            self.timers.schedule(crossing, T_DAILY, a.name, a.spell, strict=True)
        else:
            self._schedule_day_end(a, midnight)

    def _schedule_day_end(self, a: Agent, midnight: float) -> None:
        if a.day_timer_at != midnight:
            a.day_timer_at = midnight
            self.timers.schedule(midnight, T_DAY_END, a.name, midnight, strict=False)

    # ================================================================ violations

    def _start_violation(
        self,
        kind: str,
        a: Agent,
        severity: str,
        started_at: float,
        *,
        anchor: float = 0.0,
        value: float = 0.0,
        spell: int = -1,
    ) -> Violation:
        self._uid += 1
        v = Violation(
            self._uid,
            kind,
            a.name,
            severity,
            started_at,
            anchor=anchor,
            value=value,
            spell=spell,
        )
        self.violations.append(v)
        self.violation_by_uid[v.uid] = v
        key = (kind, severity)
        self.violations_started[key] = self.violations_started.get(key, 0) + 1
        self._changes.violations.append(v)
        self._changes.agents.add(a.name)
        return v

    def _end_violation(self, v: Violation, t: float, value: float) -> None:
        v.ended_at = t
        v.value = value
        self._changes.violations.append(v)
        self._changes.agents.add(v.agent)

    def _retract_violation(self, v: Violation) -> None:
        key = (v.kind, v.severity)
        self.violations_retracted[key] = self.violations_retracted.get(key, 0) + 1
        self.violations.remove(v)
        del self.violation_by_uid[v.uid]
        v.ended_at = v.started_at
        self._changes.violations.append(v)

    def violation_value(self, v: Violation, t: float) -> float:
        """The violation's value at ``t``: frozen once ended, growing while active."""
        if v.ended_at is not None or v.kind == "missed_calls_exceeded":
            return v.value
        if v.kind == "not_ready_daily_exceeded":
            return self.not_ready_today(self.agents[v.agent], t)
        return t - v.anchor

    def _housekeeping(self) -> None:
        """Forget what live operation must not keep forever (amortised, live mode only).

        Ended violations older than the retention; conversations that never got a
        ``call_ended`` and handling never decided by a next ``agent_state``, once
        older than the retention (each counted in ``expired``). A full pass runs
        once per tenth of the retention of clock time.
        """
        assert self.retention_s is not None
        if self.clock < self._next_prune:
            return
        self._next_prune = self.clock + max(60.0, self.retention_s / 10)
        horizon = self.clock - self.retention_s
        keep = []
        for v in self.violations:
            if v.ended_at is not None and v.ended_at < horizon:
                del self.violation_by_uid[v.uid]
            else:
                keep.append(v)
        self.violations = keep
        expired = self.expired
        for cid in [
            c for c, convs in self.conversations.items() if convs[-1].answered_at < horizon
        ]:
            expired["conversations"] += len(self.conversations.pop(cid))
        for a in self.agents.values():
            if a.pending:
                fresh = [p for p in a.pending if p.ended_at >= horizon]
                expired["pending_handling"] += len(a.pending) - len(fresh)
                a.pending = fresh or None

    # ================================================================ timers

    def _fire_leg_miss(self, timer: Timer) -> None:
        leg = self.calls.get(timer.key)
        if leg is None or leg.seq != timer.token or leg.missed:
            return
        leg.missed = True
        self._record(self.queues[leg.queue], timer.at, _D_MISS)

    def _fire_spell_limit(self, timer: Timer) -> None:
        a = self.agents.get(timer.key)
        if a is None or a.spell != timer.token:
            return
        kind = "not_ready_exceeded" if a.state == "not_ready" else "wrap_up_exceeded"
        self._slots(a)[kind] = self._start_violation(
            kind, a, "warning", timer.at, anchor=a.since, spell=a.spell
        )

    def _fire_daily(self, timer: Timer) -> None:
        a = self.agents.get(timer.key)
        if a is None or a.spell != timer.token or not self._nr_counts(a):
            return
        limits = self.rules.daily_not_ready_s
        cal = self.site(a.site).calendar
        self._roll_nr_day(a, timer.at)
        level = a.daily_crossed
        if level >= len(limits):
            return
        severity = DAILY_SEVERITIES[min(level, len(DAILY_SEVERITIES) - 1)]
        self._slots(a)[f"daily:{level}"] = self._start_violation(
            "not_ready_daily_exceeded", a, severity, timer.at, spell=a.spell
        )
        a.daily_crossed = level + 1
        self._schedule_day_end(a, cal.next_day_start(timer.at))
        self._schedule_daily(a, timer.at)

    def _fire_day_end(self, timer: Timer) -> None:
        a = self.agents.get(timer.key)
        if a is None or a.day_timer_at != timer.at:
            return
        a.day_timer_at = float("-inf")
        midnight = timer.at
        active = a.active or {}
        ended = [slot for slot, v in active.items() if v.kind == "not_ready_daily_exceeded"]
        if ended:
            # The day's total at its last instant (closed spells plus the open one).
            day = self.site(a.site).calendar.day_start(midnight - 0.001)
            total = a.nr_closed_s if a.nr_until == midnight else 0.0
            if self._nr_counts(a):
                start = a.since if a.since > day else day
                if midnight > start:
                    total += midnight - start
            for slot in ended:
                self._end_violation(active.pop(slot), midnight, total)
        self._roll_nr_day(a, midnight)
        if self._nr_counts(a):
            self._schedule_daily(a, midnight)

    def _fire_missed_expire(self, timer: Timer) -> None:
        a = self.agents.get(timer.key)
        if a is None or a.missed_at is None:
            return
        v = a.active.get("missed_calls_exceeded") if a.active else None
        if v is None or v.uid != timer.token:
            return
        if _count_in(a.missed_at, timer.at, self.rules.missed_calls_window_s) < (
            self.rules.missed_calls_max
        ):
            del self._slots(a)["missed_calls_exceeded"]
            self._end_violation(v, timer.at, v.value)
        else:
            self._follow_missed(a, v, timer.at)

    def _fire_stale(self, timer: Timer) -> None:
        if timer.token != self._stale_timer_at:
            return  # superseded by a later schedule
        self._stale_timer_at = None
        if not self._stale_sorted:
            self._schedule_stale_check()
            return
        order = self.stale_order
        limit = self.rules.stale_after_s
        while order:
            name, last = next(iter(order.items()))
            deadline = last + limit
            if deadline > timer.at:
                break
            del order[name]
            a = self.agents[name]
            if a.state != "logged_out" and not (a.active and "stale_agent" in a.active):
                self._slots(a)["stale_agent"] = self._start_violation(
                    "stale_agent", a, "warning", deadline, anchor=last
                )
        self._schedule_stale_check()
