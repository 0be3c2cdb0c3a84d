"""The floor processor: canonical events and clock ticks in, state and changes out.

Pure and deterministic: no I/O, no wall clock, no asyncio. Live operation, replay and
tests drive the same object:

- :meth:`FloorProcessor.apply` takes one decoded event. If its ``ts`` is ahead of the
  clock, the clock first advances to it, firing every deadline in between at its
  exact time.
- :meth:`FloorProcessor.tick` advances the clock with no event, so waits grow and
  service-level misses count while nothing arrives.
- :attr:`FloorProcessor.view` reads typed views at the clock;
  :meth:`FloorProcessor.drain_changes` says what changed since the last call.

The numbers depend on the events, never on the order they arrive in (SPEC §9): each
call and each agent keeps its history, sorted by time with arrival order breaking
ties. An event no earlier than its call's or agent's last is folded in one step; an
earlier one (a late event) makes that one call or agent fold its history again, and
only the difference is applied to the floor (see :mod:`~callfloor.processors.calls`
and :mod:`~callfloor.processors.agents`). Across calls and agents, times decide: at
equal times a call event comes before an ``agent_state``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

from callfloor.config import Config, QueuePolicy
from callfloor.events import (
    AgentState,
    CallAnswered,
    CallDequeued,
    CallEnded,
    CallMissed,
    CallQueued,
    CallRouted,
    Event,
)
from callfloor.processors.admission import check, is_duplicate
from callfloor.processors.agents import (
    AgentFold,
    AgentTrack,
    Payload,
    advance_pending,
    ends_near,
    refold_late,
    step,
)
from callfloor.processors.calendar import SiteCalendar
from callfloor.processors.calls import (
    D_MISS,
    HIST_NONE,
    KIND_OF,
    QUEUED,
    CallEvent,
    CallFold,
    CallTrack,
)
from callfloor.processors.changes import ChangeTracker
from callfloor.processors.dedup import Deduplicator
from callfloor.processors.effects import T_LEG_MISS, FloorEffects
from callfloor.processors.late import refold_call
from callfloor.processors.limits import (
    Refusal,
)
from callfloor.processors.queues import QueueState, SiteState, wait_bounds
from callfloor.processors.roster import Roster
from callfloor.processors.timers import AT, KEY, KIND, T_SHIFT, TOKEN, Timer, TimerHeap
from callfloor.processors.views import AlertView, ChangeSet
from callfloor.processors.windows import Deltas

if TYPE_CHECKING:
    from callfloor.processors.read import FloorReader


class Observer(Protocol):
    """What the processor tells an observer (the alert driver) on its per-event path."""

    def advance(self, t: float, inclusive: bool) -> None:
        """The clock is about to move to ``t`` (a tick: ``inclusive``)."""

    def touching(self, event: Event) -> None:
        """``event`` is about to be applied."""

    def touched(self, event: Event) -> None:
        """``event`` was applied."""


AGENT: Final = -1  # the kind of an agent_state (call event kinds are in calls.py)

COUNTER_NAMES: Final[tuple[str, ...]] = ("events", "rejected", "duplicates", "orphaned", "late")

_TAG: Final[dict[type, str]] = {
    cls: str(cls.__struct_config__.tag)  # type: ignore[attr-defined]
    for cls in (*KIND_OF, AgentState)
}

Record = tuple[str, float, Deltas, int, int]  # queue, x, deltas, wait µs, histogram


class FloorProcessor(FloorEffects):
    """Live queue and agent state of a contact centre, driven by events and ticks."""

    def __init__(self, config: Config, *, live: bool = False, changes: bool = True) -> None:
        """``live=True`` is live operation: events older than the clock minus
        ``[limits] max_lateness`` are refused (``ts_too_old``), and what never finished
        expires after that long; replay expires nothing (it may fold history, see
        :meth:`fold_history`).

        ``changes=False`` keeps no change marks per event (replay drains no change sets;
        :meth:`drain_changes` then lists every agent, and :attr:`view` stats look at
        every agent when asked)."""
        self.config = config
        self.rules = config.agents
        self.limits = config.limits
        self.live = live
        self.changes = changes
        # Limits as plain attributes: read on every event.
        self._name_limit = config.limits.max_name_length
        self._lateness = config.limits.max_lateness_s
        self._max_open = config.limits.max_open_calls
        # Names created by events are forgotten on event time (see forgetting.py), at
        # fixed boundaries every seventh of forget_after, the same in live and replay.
        self._forget_after = config.limits.forget_after_s
        self._forget_every = max(60.0, self._forget_after / 7)
        self._next_forget = float("-inf")
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
        # How far back each queue's windows keep records (see retain_windows).
        self.window_span = max(widths)

        # An alert driver (callfloor.alerts.driver), told before the clock moves and
        # when an event touches names; None: nothing observes (replay of numbers only).
        self.observer: Observer | None = None
        # The document's alert list (the driver's reads); None: no alerts.
        self.alert_source: Callable[[], list[AlertView]] | None = None
        self.clock = float("-inf")
        self.seq = 0  # arrival order of accepted events: breaks ties between equal times
        self.sites: dict[str, SiteState] = {}
        self.queues: dict[str, QueueState] = {}
        self.calls: dict[str, CallTrack] = {}
        self.agents: dict[str, AgentTrack] = {}
        self.timers = TimerHeap()
        # Roster shifts (SPEC §4): their violations are derived at read time; a timer
        # per rostered agent at its next shift boundary makes the clock notice them at
        # the exact instant (the deadline of each agent's pending timer, by name).
        self.roster = Roster(config.roster)
        self.shift_timers: dict[str, float] = {}
        self._rostered = bool(self.roster)  # read per agent_state
        # What a due timer does, by its kind.
        self._on_timer: dict[int, Callable[[Timer], None]] = {
            T_LEG_MISS: self._fire_leg_miss,
            T_SHIFT: self._fire_shift,
        }
        self.n_waiting = 0  # open legs in all queues ([limits] max_open_calls)
        self.queue_seen: dict[str, float] = {}  # last activity of each queue (event time)
        self.agent_seen: dict[str, float] = {}  # last activity of each agent (event time)
        # Queues whose policy changed when a checkpoint was restored under a new
        # configuration: (first arrival seq, policy) in seq order (see policy_at).
        self.policy_changes: dict[str, list[tuple[int, QueuePolicy]]] = {}
        self.ids = Deduplicator(
            max(config.ingest.dedup_window_s, config.limits.max_lateness_s),
            config.ingest.dedup_max_entries,
        )
        # The document's counters (see the ``counters`` property).
        self.n_events = 0
        self.n_rejected = 0
        self.n_duplicates = 0
        self.n_orphaned = 0
        self.n_late = 0
        self.rejected_by_reason: dict[str, int] = {}
        self._by_class: dict[type, int] = {}  # applied events by class (see events_by_type)
        self.expired: dict[str, int] = {
            "open_legs": 0,
            "conversations": 0,
            "pending_handling": 0,
            "agents": 0,
            # Names events created, forgotten once quiet (see forgetting.py).
            "forgotten_queues": 0,
            "forgotten_sites": 0,
            "forgotten_agents": 0,
        }
        # Agent counts by state per distinct queue list (interned) and per site: an
        # agent_state costs two updates however many queues the agent serves.
        self.groups: dict[tuple[str, ...], dict[str, int]] = {}
        self.groups_by_queue: dict[str, list[tuple[str, ...]]] = {}
        self.site_counts: dict[str, dict[str, int]] = {}
        self._strings: dict[str, str] = {}
        self._fold = CallFold(self, self.policy_at)
        self.tracker = ChangeTracker(self)
        # What readers computed for the current version (see read.py); plain data.
        self.read_cache: dict[str, tuple[int, Any]] = {}
        self._version = 0
        self._next_prune = float("-inf")
        for name, qc in config.queues.items():
            site = qc.site if qc.site is not None else "default"
            self._new_queue(
                name, site, qc.channel, qc.policy, configured=True, site_fixed=qc.site is not None
            )

    # ================================================================ inputs

    def is_duplicate(self, event: Event) -> bool:
        """Whether ``event`` would be dropped as a duplicate (a peek: nothing is recorded)."""
        return is_duplicate(self, event)

    def check(self, event: Event) -> Refusal | None:
        """Why ``event`` would be refused by the SPEC §9 limits, or None if it is admitted."""
        return check(self, event)

    def apply(self, event: Event) -> Refusal | None:
        """Apply one valid event (the per-event path: no I/O, no await).

        Returns the refusal when the event is beyond a SPEC §9 limit (counted as
        rejected and not applied), else None. The limits are checked cheaply first:
        the names of known agents, calls, queues and sites passed :meth:`check` when
        they were first seen, so only new names and free text are measured again.
        """
        t: float = event.ts  # type: ignore[assignment]  # a float once decoded
        key = event.id
        limit = self._name_limit
        suspect = (key is not None and len(key) > limit) or (
            self.live and t < self.clock - self._lateness
        )
        track: AgentTrack | None = None
        call: CallTrack | None = None
        kind = AGENT
        if isinstance(event, AgentState):
            track = self.agents.get(event.agent)
            reason = event.reason
            team = event.team
            name = event.name
            suspect = (
                suspect
                or track is None
                or event.site not in self.sites
                or event.queues is not None
                or (reason is not None and len(reason) > limit)
                or (team is not None and len(team) > limit)
                or (name is not None and len(name) > limit)
            )
        else:
            call = self.calls.get(event.call_id)
            kind = KIND_OF[type(event)]
            if not suspect:
                suspect = (call is None and len(event.call_id) > limit) or len(event.site) > limit
            if not suspect:
                suspect = self._call_names_suspect(event, kind, limit)
        if suspect:
            refusal = check(self, event)
            if refusal is not None:
                self.count_rejected(refusal.reason)
                return refusal
        clock = self.clock
        if key is not None:
            ids = self.ids
            if key in ids.current or key in ids.previous:
                self.n_duplicates += 1
                return None
            ids.remember(key, t if t > clock else clock)
        observer = self.observer
        if t > clock and observer is not None:
            observer.advance(t, False)  # the alert driver evaluates the instants before t
            clock = self.clock
        if t > clock:
            heap = self.timers.heap
            swept = True
            if heap and heap[0][0] <= t:
                self._advance(t)
            else:
                self.clock = t
                swept = t >= self._next_forget
                if swept:
                    self._forget_due()
            if swept:
                # Retention or forgetting may have dropped the call or the agent.
                if call is not None and self.calls.get(call.call_id) is not call:
                    call = None
                if track is not None and self.agents.get(track.name) is not track:
                    track = None
        self.seq += 1
        if observer is not None:
            observer.touching(event)
        if kind == AGENT:
            applied = self._on_agent_state(event, t, track)  # type: ignore[arg-type]
        else:
            applied = self._on_call_event(event, t, kind, call)
        if not applied:
            self.n_duplicates += 1
            return None
        if observer is not None:
            observer.touched(event)
        self.n_events += 1
        by_class = self._by_class
        cls = type(event)
        by_class[cls] = by_class.get(cls, 0) + 1
        if t < clock:
            self.n_late += 1
            # A late event can place deadlines in the past: honour them now.
            self._advance(self.clock)
        return None

    def _call_names_suspect(self, event: Event, kind: int, limit: int) -> bool:
        """Whether a call event names an unknown queue or agent, or over-long free text."""
        if isinstance(event, CallQueued):
            return event.queue not in self.queues or self.n_waiting >= self._max_open
        if isinstance(event, CallEnded):
            return event.agent is not None and event.agent not in self.agents
        queue = event.queue  # type: ignore[union-attr]
        if queue is not None and len(queue) > limit:
            return True
        if isinstance(event, CallAnswered | CallRouted | CallMissed):
            if event.agent not in self.agents:
                return True
            if isinstance(event, CallMissed):
                return event.reason is not None and len(event.reason) > limit
            return False
        if isinstance(event, CallDequeued):
            return event.reason is not None and len(event.reason) > limit
        return False

    def apply_all(self, events: Iterable[Event]) -> None:
        """Apply events in order."""
        apply = self.apply
        for event in events:
            apply(event)

    def count_rejected(self, reason: str, n: int = 1) -> None:
        """Count ``n`` invalid events (decoding happens outside; see callfloor.ingest)."""
        self.n_rejected += n
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + n

    def tick(self, now: float) -> None:
        """Advance the clock to ``now`` with no event (no-op if the clock is ahead)."""
        if self.observer is not None and now >= self.clock:
            self.observer.advance(now, True)
        if now > self.clock:
            self._advance(now)

    def drain_changes(self) -> ChangeSet:
        """What changed since the last call (a new change set starts)."""
        return self.tracker.drain()

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor's clock (see :mod:`callfloor.processors.read`)."""
        from callfloor.processors.read import FloorReader

        return FloorReader(self)

    @property
    def version(self) -> int:
        """Grows with every applied event and every fired deadline (a cache key part)."""
        return self.seq + self._version

    @property
    def counters(self) -> dict[str, int]:
        """The document's counters by name (SPEC §7)."""
        return {
            "events": self.n_events,
            "rejected": self.n_rejected,
            "duplicates": self.n_duplicates,
            "orphaned": self.n_orphaned,
            "late": self.n_late,
        }

    @property
    def events_by_type(self) -> dict[str, int]:
        """Applied events by ``type`` (duplicates excluded)."""
        return {_TAG[cls]: n for cls, n in self._by_class.items() if n}

    # ================================================================ clock

    def _advance(self, t: float) -> None:
        pop = self.timers.pop_due
        while (timer := pop(t)) is not None:
            at = timer[AT]
            if at > self.clock:
                self.clock = at
            self._version += 1
            fire = self._on_timer.get(timer[KIND])
            if fire is not None:
                fire(timer)
        if t > self.clock:
            self.clock = t
        if self.live:
            self._housekeeping()
        if self.clock >= self._next_forget:
            self._forget_due()

    def _forget_due(self) -> None:
        """Forget quiet names at the last boundary the clock passed (see forgetting.py)."""
        every = self._forget_every
        boundary = (self.clock // every) * every
        self._next_forget = boundary + every
        from callfloor.processors.forgetting import forget

        forget(self, boundary)

    def _fire_leg_miss(self, timer: Timer) -> None:
        call = self.calls.get(timer[KEY])
        leg = call.leg if call is not None else None
        if leg is None or leg.seq != timer[TOKEN] or leg.missed:
            return
        leg.missed = True
        self.record(leg.queue, timer[AT], D_MISS, -1, HIST_NONE, True)

    def _fire_shift(self, timer: Timer) -> None:
        """A rostered agent's shift boundary: its violations change now."""
        name = timer[KEY]
        at = timer[AT]
        if self.shift_timers.get(name) != at:
            return  # superseded
        del self.shift_timers[name]
        if self.changes:
            self.tracker.dirty.add(name)
        self._schedule_shift(name, at)

    def _schedule_shift(self, name: str, after: float) -> None:
        """Set the agent's timer at its next shift boundary after ``after``."""
        track = self.agents.get(name)
        if track is None or not track.fold.known:
            return
        at = self.roster.next_boundary(name, self.calendar(track.fold.site).tz, after, strict=True)
        if at is not None:
            self.shift_timers[name] = at
            self.timers.schedule(at, T_SHIFT, name, at, strict=False)

    # ================================================================ sites and queues

    def site(self, name: str) -> SiteState:
        """The site state, created with its configuration (or defaults) on first use."""
        site = self.sites.get(name)
        if site is None:
            site = SiteState(self.config.site(name))
            self.sites[name] = site
            self.site_counts[name] = {}
        return site

    def calendar(self, name: str) -> SiteCalendar:
        """The calendar of a site."""
        return self.site(name).calendar

    def policy_at(self, queue: str, seq: int) -> QueuePolicy:
        """The policy of a leg of ``queue`` whose ``call_queued`` arrived as ``seq``.

        A configuration changed across a restart applies to events that arrive after
        it; a late event regenerates earlier legs with the policy they were counted with.
        """
        changes = self.policy_changes.get(queue)
        if changes is not None:
            i = bisect_right(changes, seq, key=lambda c: c[0]) - 1
            if i >= 0:
                return changes[i][1]
        return self.queues[queue].policy

    def retain_windows(self, span_s: float) -> None:
        """Keep each queue's window records for ``span_s`` seconds back from the clock
        (never less than the widest rolling window), so windows of any width up to it
        can be read at any instant within it (``QueueWindows.window``).

        What the alerts ask for: the widest window any rule reads, back to the lateness
        horizon. Each record kept costs about 120 bytes; a longer span applies to the
        records counted from now on (nothing dropped comes back).
        """
        span = max(span_s, max(self.widths))
        self.window_span = span
        for q in self.queues.values():
            q.windows.span = span

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
            span=self.window_span,
        )
        self.queues[name] = q
        q.calendar = self.site(site).calendar
        return q

    def _ensure_queue(self, ev: CallQueued) -> None:
        q = self.queues.get(ev.queue)
        if q is None:
            # An unconfigured queue takes the site and channel of the first call_queued
            # that arrives naming it.
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
            q.calendar = self.site(ev.site).calendar
        if not q.listed:
            q.listed = True
            self.tracker.queues.add(q.name)

    # ================================================================ calls

    def _on_call_event(self, ev: Event, t: float, kind: int, call: CallTrack | None) -> bool:
        cid: str = ev.call_id  # type: ignore[union-attr]
        name: str | None
        if isinstance(ev, CallQueued):
            self._ensure_queue(ev)
            name = ev.queue
        elif isinstance(ev, CallAnswered | CallRouted | CallMissed | CallEnded):
            name = ev.agent
        else:
            name = None
        has_id = ev.id is not None
        if call is None:
            call = self.calls[cid] = CallTrack(cid)
        elif not has_id and call.has_duplicate(t, kind, name):
            return False
        if name is not None:
            seen = self.queue_seen if kind == QUEUED else self.agent_seen
            if t > seen.get(name, t - 1.0):
                seen[name] = t
        entry: CallEvent = (t, self.seq, kind, name, has_id)
        events = call.events
        if not events or t >= events[-1][0]:
            events.append(entry)
            self._fold.step(call, entry)
        else:
            old = list(events)
            call.insert(entry)
            self._refold_call(call, old)
        return True

    def _refold_call(self, call: CallTrack, old_events: list[CallEvent]) -> None:
        refold_call(self, call, old_events)

    # ================================================================ agents

    def _shared(self, text: str) -> str:
        """One shared copy of a string kept by many agents (bounded, unlike sys.intern)."""
        found = self._strings.get(text)
        if found is not None:
            return found
        if len(self._strings) < 10_000:
            self._strings[text] = text
        return text

    def _intern_group(self, queues: list[str]) -> tuple[str, ...]:
        group = tuple(sorted(set(queues)))
        if group not in self.groups:
            self.groups[group] = {}
            for name in group:
                self.groups_by_queue.setdefault(name, []).append(group)
        return group

    def _on_agent_state(self, ev: AgentState, t: float, track: AgentTrack | None) -> bool:
        name = ev.agent
        if track is None:
            track = self.agents[name] = AgentTrack(name, ev.site)
        state = ev.state
        has_id = ev.id is not None
        ts = track.ts
        if not has_id and ts and t <= ts[-1] and track.has_duplicate(t, state):
            return False
        seen = self.agent_seen
        if t > seen.get(name, t - 1.0):
            seen[name] = t
        reason = self._shared(ev.reason) if state == "not_ready" and ev.reason else None
        queues = ev.queues
        group = None if queues is None else self._intern_group(queues)
        team = ev.team
        if team is not None:
            team = self._shared(team)
        site = ev.site
        if site not in self.sites:
            self.site(site)
        payload: Payload = (state, reason, site, group, team, ev.name)
        code = track.index_of(payload) * 2 + (1 if has_id else 0)
        f = track.fold
        known, old_state, old_group, old_site = f.known, f.state, f.group, f.site
        if not ts or t >= ts[-1]:
            ts.append(t)
            track.codes.append(code)
            step(f, t, payload, self.rules, self.calendar)
            if track.pending:
                for end in advance_pending(track, t, state):
                    self._handled(end, True)
        else:
            # A late agent_state: only its surroundings fold again (see refold_late), and
            # only the call ends whose after-call work it can move are decided again.
            p = bisect_right(ts, t)
            track.insert(t, code)
            f = track.fold = refold_late(track, p, self.rules, self.calendar)
            self._redecide(track, ends_near(track, p))
        if t < track.roster_changed:
            track.roster_changed = t  # roster episodes from here on are worked out again
        new_state = f.state
        if not known or old_state != new_state or old_group is not f.group or old_site != f.site:
            # Agent counts per queue list and per site follow the agent's state (the
            # change tracker works out which queues and sites that touched when drained).
            assert new_state is not None
            groups = self.groups
            site_counts = self.site_counts
            if known:
                assert old_state is not None
                if old_group:
                    groups[old_group][old_state] -= 1
                site_counts[old_site][old_state] -= 1
            new_group = f.group
            if new_group:
                counts = groups[new_group]
                counts[new_state] = counts.get(new_state, 0) + 1
            counts = site_counts[f.site]
            counts[new_state] = counts.get(new_state, 0) + 1
        if self.changes:
            self.tracker.dirty.add(name)
        if self._rostered and name not in self.shift_timers and self.roster.has(name):
            self._schedule_shift(name, self.clock if self.clock > t else t)
        return True

    def _agent_moved(
        self, track: AgentTrack, before: tuple[bool, str | None, tuple[str, ...], str]
    ) -> None:
        """Keep the per-group and per-site agent counts in step with the agent's state."""
        f: AgentFold = track.fold
        known, state, group, site = before
        if known == f.known and state == f.state and group == f.group and site == f.site:
            return
        tracker = self.tracker
        if known:
            assert state is not None
            if group:
                self.groups[group][state] -= 1
                tracker.groups.add(group)
            self.site_counts[site][state] -= 1
            tracker.sites.add(site)
        if f.known:
            assert f.state is not None
            if f.group:
                counts = self.groups[f.group]
                counts[f.state] = counts.get(f.state, 0) + 1
                tracker.groups.add(f.group)
            counts = self.site_counts[f.site]
            counts[f.state] = counts.get(f.state, 0) + 1
            tracker.sites.add(f.site)

    # ================================================================ live retention

    def fold_history(self) -> float | None:
        """Replay's bounded memory: fold what lies before the lateness horizon (the
        clock minus ``[limits] max_lateness``) as live operation does, without expiring
        anything (see :func:`callfloor.processors.retention.prune`), when due.

        Returns the horizon folded at, or None when not due. Exact as long as no event
        older than the latest horizon returned is applied afterwards: the caller
        checks that (replay falls back to keeping everything).
        """
        if self.live or self.clock < self._next_prune or self.clock == float("-inf"):
            return None
        lateness = self.limits.max_lateness_s
        # Each fold looks at every call and agent: a quarter of max_lateness at a time
        # (live: a twentieth) makes folding a small part of a replay, for up to 1.25
        # times max_lateness of history held.
        self._next_prune = self.clock + max(60.0, lateness / 4)
        horizon = self.clock - lateness
        from callfloor.processors.retention import prune

        prune(self, horizon, expire=False)
        self._version += 1  # readers' caches: the floor's memory changed
        return horizon

    def _housekeeping(self) -> None:
        """Forget what live operation must not keep forever (amortised).

        Events older than the horizon (clock minus max lateness) are refused, so
        history before it can never be re-folded: it is dropped. What never finished
        expires once older than the horizon, each counted: waiting legs,
        conversations with no ``call_ended``, handling no ``agent_state`` decided,
        and agents silent that long (shown logged out from then on).
        """
        if self.clock < self._next_prune:
            return
        lateness = self.limits.max_lateness_s
        self._next_prune = self.clock + max(60.0, lateness / 20)
        horizon = self.clock - lateness
        from callfloor.processors.retention import prune

        prune(self, horizon)


__all__ = ["COUNTER_NAMES", "FloorProcessor", "wait_bounds"]
