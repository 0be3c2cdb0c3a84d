"""Rules evaluated at every instant their inputs can change, in event time (SPEC §6, §10).

:class:`AlertDriver` observes one :class:`~callfloor.processors.engine.FloorProcessor`
(``proc.observer``): the processor tells it before its clock moves to ``t`` and when an
event touches queues, sites and agents. The driver then

- evaluates the scopes events touched, at the events' instant, once every event of
  that instant is in;
- keeps, per scope, the next instant its values can change *by time alone* and
  evaluates it then, ticking the processor to just after it (the right limit: a leg
  passing T at ``t`` is counted once time is past ``t``) and stamping what it finds
  with the instant itself. Those instants are: a record leaving a rule's rolling
  window (attribution time + width), a waiting leg passing its threshold, the longest
  wait passing a rule's threshold, an interval or a site-local day starting, an agent's
  violation starting or ending (SPEC §4), a not-ready total passing a threshold, and
  the alert's own ``for``, escalation and repeat.

So an alert's ``since``, ``fired_at`` and ``ended_at`` are the exact instants, whatever
the clock ticks were. Events behind the clock (late beyond the live hold) are
evaluated at the clock and counted in :attr:`AlertDriver.late_events`; replay then
derives the timeline again from the events in time order (see :mod:`callfloor.replay`).

Violation alerts (one rule per kind) are read from the processor's violations, which
are exact in any arrival order: the alert list derives them afresh at each read.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Generator
from time import perf_counter
from typing import TYPE_CHECKING, Final

import msgspec

from callfloor.alerts.engine import HISTORY_S, Alert, AlertEngine, EngineState, fingerprint
from callfloor.alerts.notification import SEVERITIES, Transition
from callfloor.alerts.rules import POLICY_REFS, Condition, Rule, Threshold
from callfloor.config import Config, parse_duration
from callfloor.events import AgentState, Event
from callfloor.processors.derive import agent_violations, next_transition
from callfloor.processors.read import (
    STAFFED_STATES,
    FloorReader,
    service_level,
    staffing,
)
from callfloor.processors.views import AlertView
from callfloor.processors.violations import Violation
from callfloor.processors.windows import (
    ABANDONED,
    ANSWERED,
    COUNT_NAMES,
    HANDLE_US,
    HANDLED,
    OFFERED,
    WAIT_US,
)

if TYPE_CHECKING:
    from callfloor.config import QueuePolicy
    from callfloor.processors.engine import FloorProcessor

__all__ = ["AlertDriver", "DriverState", "attach_alerts"]

QUEUE: Final = 0
SITE: Final = 1
AGENT: Final = 2
_KIND_NAME: Final = ("queue", "site", "agent")
_INF: Final = math.inf


def _first2(item: tuple[float, int, Event]) -> tuple[float, int]:
    return (item[0], item[1])


_FIRST2: Final = _first2
_MAX_SEQ: Final = 1 << 62


def _is(state: str) -> Callable[[str | None], bool]:
    """A test: is an agent state ``state``."""

    def test(s: str | None) -> bool:
        return s == state

    return test


def _right(t: float) -> float:
    return math.nextafter(t, _INF)


def _compare(value: float | None, op: str, threshold: float | None) -> bool:
    if value is None or threshold is None:
        return False
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == ">":
        return value > threshold
    return value >= threshold


def _cleared_holds(value: float | None, op: str, clear: float | None) -> bool:
    """Whether a firing alert's first condition still holds against its clear level."""
    if value is None or clear is None:
        return False
    if op in ("<", "<="):
        return value < clear
    return value > clear


_AGENT_INPUTS: Final = frozenset(
    {
        "agents_available",
        "agents_ringing",
        "agents_on_call",
        "agents_wrap_up",
        "agents_not_ready",
        "agents_staffed",
        "occupancy",
        "required_agents",
        "projected_service_level",
    }
)
_COUNTS: Final = frozenset(COUNT_NAMES)
_MISS_INPUTS: Final = frozenset(
    {"sl_offered", "service_level", "answered_in_sl", "abandoned_in_sl", "abandon_rate"}
)


class DriverState(msgspec.Struct, kw_only=True):
    """The driver's alert state: the engine's and the instants it will look again at (a
    snapshot's, and a checkpoint's ``alerts`` section)."""

    engine: EngineState = msgspec.field(default_factory=EngineState)
    heap: list[tuple[float, int, int, str, int]] = []
    due: list[tuple[int, str, int, float]] = []
    restored: bool = False  # False: nothing was saved (look at every scope again)
    # The oldest alert snapshot and the events kept since (live, when few enough), so a
    # restarted or adopting process can still re-derive after late events.
    # The rules the timers' indices refer to: other rules (the configuration changed
    # across a restart) drop the timers and every scope is looked at again.
    rules: list[str] = []
    base_clock: float | None = None
    base_floor: bytes = b""
    base_alerts: bytes = b""
    events: list[Event] = []
    # The earliest late event not re-derived yet (a re-derivation was under way).
    late_since: float | None = None


_DriverState = DriverState


class _Snapshot(msgspec.Struct):
    """The processor (a checkpoint's bytes) and the alert state at ``clock``, after the
    kept events up to ``seq`` (events at ``clock`` itself may come after it)."""

    clock: float
    floor: bytes
    alerts: bytes
    seq: int = 0


_FIELD: Final = {name: i for i, name in enumerate(COUNT_NAMES)}


class _Compiled:
    """What one rule reads, worked out once: which changes concern it."""

    __slots__ = ("day", "index", "interval", "longest", "misses", "reads_agents", "rule", "widths")

    def __init__(self, index: int, rule: Rule, width_of: Callable[[str], float]) -> None:
        self.index = index
        self.rule = rule
        names: set[str] = set()
        windows: set[str] = set(rule.windows())
        window_metrics: set[str] = set()
        for c in rule.conditions:
            if c.window is None:
                names.add(c.metric)
            else:
                window_metrics.add(c.metric)
            if c.threshold.ref is not None:
                if c.threshold.window is None:
                    names.add(c.threshold.ref)
                else:
                    window_metrics.add(c.threshold.ref)
        if rule.clear is not None and rule.clear.ref is not None:
            if rule.clear.window is None:
                names.add(rule.clear.ref)
            else:
                window_metrics.add(rule.clear.ref)
        widths: set[float] = set()
        if names & {"arrival_rate_per_s", "required_agents", "projected_service_level"}:
            widths.add(900.0)
        if names & {"required_agents", "projected_service_level"}:
            widths.add(3600.0)
        self.interval = "interval" in windows
        self.day = "today" in windows or rule.scope_kind == "agent"
        widths |= {width_of(w) for w in windows if w not in ("interval", "today")}
        self.widths = tuple(sorted(widths))
        self.reads_agents = bool(names & _AGENT_INPUTS)
        self.longest = "longest_wait_s" in names
        self.misses = bool(window_metrics & _MISS_INPUTS) or rule.min_volume > 0


class _Values:
    """The values of one scope at the processor's clock, each read once when asked."""

    __slots__ = ("cache", "counts", "driver", "kind", "name", "now", "queues", "sums")

    def __init__(self, driver: AlertDriver, kind: int, name: str) -> None:
        self.driver = driver
        self.kind = kind
        self.name = name
        self.now = driver.proc.clock
        self.cache: dict[tuple[str, str | None], float | None] = {}
        self.sums: dict[str, tuple[list[int], int] | None] = {}
        self.counts: dict[str, int] | None = None
        proc = driver.proc
        if kind == QUEUE:
            self.queues = [proc.queues[name]]
        elif kind == SITE:
            self.queues = [q for q in proc.queues.values() if q.site == name and q.listed]
        else:
            self.queues = []

    # -- reads

    def _sums(self, label: str) -> tuple[list[int], int] | None:
        if label in self.sums:
            return self.sums[label]
        got = self._read_sums(label)
        self.sums[label] = got
        return got

    def _read_sums(self, label: str) -> tuple[list[int], int] | None:
        """Sums over the window; the longest wait in it only when a rule reads it (-2:
        not read)."""
        driver = self.driver
        now = self.now
        total: list[int] | None = None
        top = -1
        need_max = driver.reads_max_wait
        for q in self.queues:
            w = q.windows
            if label == "today":
                sums, mx = w.day(q.calendar.day_start(now))
            elif label == "interval":
                start = q.calendar.interval_start(now)
                if need_max:
                    sums, mx = w.between(start, now, closed=True)
                else:
                    sums, mx = w.log.between(start, now, True), -2
            elif need_max:
                sums, mx = w.window(now, driver.width_of(label))
            else:
                width = driver.width_of(label)
                sums, mx = w.log.between(now - width, now), -2
            total = sums if total is None else [a + b for a, b in zip(total, sums, strict=True)]
            if mx > top:
                top = mx
        return None if total is None else (total, top)

    def _from_sums(self, metric: str, window: str, sums: list[int], max_us: int) -> float | None:
        """One window metric from the window's sums (SPEC §3), without the others."""
        if metric == "service_level":
            if self.kind == QUEUE:
                formula = self.queues[0].policy.sl_formula
            else:
                formula = self.driver.proc.site(self.name).config.sl_formula
            return service_level(formula, sums)
        if metric == "abandon_rate":
            den = sums[ANSWERED] + sums[ABANDONED]
            return sums[ABANDONED] / den if den > 0 else None
        if metric == "asa_s":
            return sums[WAIT_US] / sums[ANSWERED] / 1e6 if sums[ANSWERED] > 0 else None
        if metric == "aht_s":
            return sums[HANDLE_US] / sums[HANDLED] / 1e6 if sums[HANDLED] > 0 else None
        if metric == "max_wait_s":
            return max_us / 1e6 if max_us >= 0 else None
        if metric == "arrival_rate_per_s":
            width = self.driver.width(window, self.kind, self.name)
            return sums[OFFERED] / width if width > 0 else None
        return float(sums[_FIELD[metric]])

    def _counts(self) -> dict[str, int]:
        counts = self.counts
        if counts is None:
            if self.kind == QUEUE:
                counts = self.driver.queue_counts(self.name)
            else:
                counts = dict(self.driver.proc.site_counts.get(self.name, {}))
            self.counts = counts
        return counts

    def _live(self, metric: str) -> float | None:
        kind = self.kind
        if kind == AGENT:
            agent = self.driver.reader.agent(self.name)
            if agent is None:
                return None
            value = getattr(agent, metric, None)
            return None if value is None else float(value)
        if metric == "waiting":
            return float(sum(len(q.open) for q in self.queues))
        if metric == "longest_wait_s":
            longest = 0.0
            for q in self.queues:
                oldest = q.oldest_start()
                if oldest is not None and self.now - oldest > longest:
                    longest = self.now - oldest
            return longest
        counts = self._counts()
        if metric == "agents_staffed":
            return float(sum(counts.get(s, 0) for s in STAFFED_STATES))
        if metric.startswith("agents_"):
            return float(counts.get(metric.removeprefix("agents_"), 0))
        if metric == "occupancy":
            busy = counts.get("ringing", 0) + counts.get("on_call", 0) + counts.get("wrap_up", 0)
            staffed = busy + counts.get("available", 0)
            return busy / staffed if staffed > 0 else None
        s15 = self._sums("15m")
        if metric == "arrival_rate_per_s" or kind == SITE:
            return None if s15 is None else s15[0][OFFERED] / 900.0
        s60 = self._sums("60m")
        assert s15 is not None and s60 is not None
        if metric == "required_agents":
            return self.driver.required(self.name, self.queues[0].policy, s15[0], s60[0])
        _, _, projected = staffing(self.queues[0].policy, s15[0], s60[0], counts)
        return projected

    def metric(self, metric: str, window: str | None) -> float | None:
        key = (metric, window)
        cache = self.cache
        if key in cache:
            return cache[key]
        if window is None:
            value = self._live(metric)
        else:
            got = self._sums(window)
            value = None if got is None else self._from_sums(metric, window, got[0], got[1])
        cache[key] = value
        return value

    def threshold(self, t: Threshold) -> float | None:
        if t.ref is None:
            return t.constant
        if t.ref in POLICY_REFS and self.kind != AGENT:
            proc = self.driver.proc
            policy = (
                self.queues[0].policy
                if self.kind == QUEUE
                else proc.config.channel_defaults.get("voice")
            )
            base = getattr(policy, t.ref, None)
        else:
            base = self.metric(t.ref, t.window)
        return None if base is None else t.factor * float(base)


class AlertDriver:
    """Drives an :class:`AlertEngine` from a processor (see the module docstring)."""

    def __init__(
        self, proc: FloorProcessor, engine: AlertEngine, *, follow_violations: bool | None = None
    ) -> None:
        """``follow_violations``: the engine keeps violation alerts (to notify them);
        default: when the engine notifies."""
        self.proc = proc
        self.engine = engine
        self.reader = FloorReader(proc)
        self.rules = [r for r in engine.rules if r.violation is None]
        self.violation_rules = {r.violation: r for r in engine.rules if r.violation is not None}
        self._widths: dict[str, float] = {}
        self.compiled = [_Compiled(i, r, self.width_of) for i, r in enumerate(self.rules)]
        # Queues touched by call events (every rule), by agent changes only (the rules
        # reading agent counts), sites and agents touched.
        self.dirty_calls: set[str] = set()
        self.dirty_staff: set[str] = set()
        self.dirty_sites: set[str] = set()
        self.dirty_agents: set[str] = set()
        # (at, seq, kind, name, rule index or -1 for the scope's violations)
        self.heap: list[tuple[float, int, int, str, int]] = []
        self.due: dict[tuple[int, str, int], float] = {}
        self._seq = 0
        self._busy = False
        self._rules_of: dict[tuple[int, str], list[_Compiled]] = {}
        self._fingerprints: dict[tuple[int, str], str] = {}
        self.reads_max_wait = any(
            "max_wait_s" in (c.metric, c.threshold.ref) for r in self.rules for c in r.conditions
        )
        self._required: dict[str, tuple[tuple[object, ...], float | None]] = {}
        self._groups_seen = -1
        self._groups_of: dict[str, list[tuple[str, ...]]] = {}
        self._before: tuple[bool, str | None, tuple[str, ...], str] | None = None
        self._state_tests = self._tests_for_counts()
        self.late_events = 0
        self.evaluations = 0
        self.evaluation_seconds = 0.0
        # The instant a tick last evaluated (inclusive): an event there arrives after it.
        self.ticked_at = -_INF
        # Live: the events applied, in time order, so that a late one can re-derive the
        # timeline (None: not kept, as in replay, which re-derives from its input).
        self.events: list[tuple[float, int, Event]] | None = None
        self._event_seq = 0
        self.late_since: float | None = None  # earliest late event not yet re-derived
        self.rederiving: float | None = None  # late_since of the re-derivation under way
        self.snapshots: list[_Snapshot] = []
        self.rederivations = 0
        self.rederivations_skipped = 0
        # Violation alerts are listed from the processor's violations at each read; the
        # engine follows them only to notify (not in replay).
        follow = engine.notify if follow_violations is None else follow_violations
        self.notify_violations = bool(self.violation_rules) and follow
        self.agents_watched = self.notify_violations or any(
            r.scope_kind == "agent" for r in self.rules
        )
        self.sites_watched = any(r.scope_kind == "site" for r in self.rules)
        self.queues_watched = any(r.scope_kind == "queue" for r in self.rules)
        widest = max((w for c in self.compiled for w in c.widths), default=0.0)
        proc.retain_windows(widest)
        proc.observer = self
        # Every configured queue is looked at once the clock has a time: a rule can hold
        # for a queue no event ever names.
        self.dirty_calls.update(proc.queues)

    # ------------------------------------------------------------------ config helpers

    def _tests_for_counts(self) -> list[Callable[[str | None], bool]]:
        """One test per agent count the rules read (a state change matters to them only
        if it changes one of these)."""
        names: set[str] = set()
        for r in self.rules:
            for c in r.conditions:
                names.add(c.metric)
                if c.threshold.ref is not None:
                    names.add(c.threshold.ref)
            if r.clear is not None and r.clear.ref is not None:
                names.add(r.clear.ref)
        tests: list[Callable[[str | None], bool]] = []
        staffed = frozenset(STAFFED_STATES)
        busy = frozenset(("ringing", "on_call", "wrap_up"))
        if names & {"agents_staffed", "projected_service_level"}:
            tests.append(lambda s: s in staffed)
        if "occupancy" in names:
            tests.append(lambda s: s in busy)
            tests.append(lambda s: s == "available")
        for name in sorted(names):
            if name.startswith("agents_") and name != "agents_staffed":
                tests.append(_is(name.removeprefix("agents_")))
        return tests

    def width_of(self, label: str) -> float:
        """The length of rolling window ``label`` (a configured label or a duration)."""
        got = self._widths.get(label)
        if got is None:
            got = dict(self.proc.config.rolling_windows).get(label)
            if got is None:
                got = parse_duration(label)
            self._widths[label] = got
        return got

    def width(self, label: str, kind: int, name: str) -> float:
        """The length of window ``label`` (an interval or day: its length so far)."""
        if label == "interval" or label == "today":
            cal = self.proc.calendar(self._site_of(kind, name))
            now = self.proc.clock
            start = cal.interval_start(now) if label == "interval" else cal.day_start(now)
            return now - start
        return self.width_of(label)

    def _site_of(self, kind: int, name: str) -> str:
        proc = self.proc
        if kind == QUEUE:
            return proc.queues[name].site
        if kind == SITE:
            return name
        track = proc.agents.get(name)
        return track.fold.site if track is not None else ""

    def rules_of(self, kind: int, name: str) -> list[_Compiled]:
        key = (kind, name)
        got = self._rules_of.get(key)
        if got is None:
            word = _KIND_NAME[kind]
            got = [c for c in self.compiled if c.rule.scope_kind == word and c.rule.covers(name)]
            self._rules_of[key] = got
        return got

    def required(
        self, queue: str, policy: QueuePolicy, s15: list[int], s60: list[int]
    ) -> float | None:
        """Erlang C required agents of ``queue`` (no agent count enters it: the same
        sums give the same answer, so it is worked out once per change of them)."""
        key = (s15[OFFERED], s60[HANDLED], s60[HANDLE_US], policy)
        got = self._required.get(queue)
        if got is not None and got[0] == key:
            return got[1]
        _, required, _ = staffing(policy, s15, s60, {})
        value = None if required is None else float(required)
        self._required[queue] = (key, value)
        return value

    def queue_counts(self, queue: str) -> dict[str, int]:
        """Agents serving ``queue`` by state (its skill groups summed)."""
        groups = self.proc.groups
        if len(groups) != self._groups_seen:
            index: dict[str, list[tuple[str, ...]]] = {}
            for group in groups:
                for q in group:
                    index.setdefault(q, []).append(group)
            self._groups_of = index
            self._groups_seen = len(groups)
        counts: dict[str, int] = {}
        for group in self._groups_of.get(queue, ()):
            for state, n in groups[group].items():
                if n:
                    counts[state] = counts.get(state, 0) + n
        return counts

    def save(self, max_events: int = 0) -> DriverState:
        """The alert state to keep with the processor's (a checkpoint section); with
        ``max_events``, the oldest snapshot and the kept events too when there are no
        more than that many."""
        self._flush(self.proc.clock)
        self.ticked_at = self.proc.clock  # evaluated there: a later event there is late
        state = DriverState(
            engine=self.engine.state(),
            heap=list(self.heap),
            due=[(k[0], k[1], k[2], at) for k, at in self.due.items()],
            restored=True,
            rules=[r.name for r in self.rules],
        )
        events = self.events
        if events is not None and self.snapshots and len(events) <= max_events:
            base = self.snapshots[0]
            state.base_clock = base.clock
            state.base_floor = base.floor
            state.base_alerts = base.alerts
            state.events = [e for _, _, e in events]
            pending = [t for t in (self.late_since, self.rederiving) if t is not None]
            state.late_since = min(pending, default=None)
        return state

    def load(self, state: DriverState) -> None:
        """Take back what :meth:`save` gave (the processor restored from the same
        checkpoint); without saved timers every scope is looked at again."""
        self.engine.restore(state.engine)
        # Alerts of rules no longer configured end here (nothing would look at them).
        known = self.engine.by_name
        for fp in [fp for fp, a in self.engine.active.items() if a.rule not in known]:
            del self.engine.active[fp]
        self.ticked_at = self.proc.clock  # saved once evaluated at the clock
        if state.base_clock is not None and self.events is not None:
            self.snapshots = [_Snapshot(state.base_clock, state.base_floor, state.base_alerts)]
            self.events = []
            for event in state.events:
                self._event_seq += 1
                self.events.append((event.ts, self._event_seq, event))  # type: ignore[arg-type]
            self.late_since = state.late_since
        if state.restored and state.rules == [r.name for r in self.rules]:
            self.heap = [tuple(h) for h in state.heap]  # type: ignore[misc]
            heapq.heapify(self.heap)
            self.due = {(k, n, i): at for k, n, i, at in state.due}
            self._seq = max((h[1] for h in self.heap), default=0)
        else:
            self.wake_all()

    def wake_all(self) -> None:
        """Look at every scope at the next instant (after a restore: the timers of the
        restored alerts are not in the checkpoint, they are found again)."""
        proc = self.proc
        self.dirty_calls.update(proc.queues)
        self.dirty_sites.update(proc.sites)
        self.dirty_agents.update(proc.agents)

    # ------------------------------------------------------------------ observer hooks

    def touching(self, event: Event) -> None:
        """Before ``event`` is applied: mark what it touches (an agent's old queues)."""
        t: float = event.ts  # type: ignore[assignment]
        # At the instant a tick already evaluated counts as late too: that evaluation
        # lacked it (replay evaluates an instant once, after all its events).
        late = t < self.proc.clock or t == self.ticked_at
        if late:
            self.late_events += 1
        events = self.events
        if events is not None:
            self._event_seq += 1
            item = (t, self._event_seq, event)
            if events and t < events[-1][0]:
                bisect.insort(events, item, key=_FIRST2)
            else:
                events.append(item)
            if late:
                if self.late_since is None or t < self.late_since:
                    self.late_since = t
                # A snapshot at or after it lacks it: it can no longer be a base.
                snaps = self.snapshots
                while snaps and snaps[-1].clock >= t:
                    snaps.pop()
        self._mark(event)

    def touched(self, event: Event) -> None:
        """After ``event`` is applied: mark what it touches now (an agent's new queues)."""
        if isinstance(event, AgentState):
            self._mark(event, after=True)

    def _placed(self, agent: str) -> tuple[bool, str | None, tuple[str, ...], str] | None:
        track = self.proc.agents.get(agent)
        if track is None:
            return None
        f = track.fold
        return (f.known, f.state, f.group, f.site)

    def _counts_move(self, old: str | None, new: str | None) -> bool:
        """Whether an agent going from state ``old`` to ``new`` changes a count a rule
        reads (on_call -> wrap_up changes neither agents available nor staffed)."""
        return any(test(old) != test(new) for test in self._state_tests)

    def _mark(self, event: Event, after: bool = False) -> None:
        proc = self.proc
        if isinstance(event, AgentState):
            self.dirty_agents.add(event.agent)
            place = self._placed(event.agent)
            if not after:
                self._before = place
                return
            before = self._before
            moved = (
                before is None or place is None or before[0] != place[0] or before[2:] != place[2:]
            )
            if not moved and before is not None and place is not None:
                moved = self._counts_move(before[1], place[1])
            if moved:
                for spot in (before, place):
                    if spot is not None:
                        self.dirty_staff.update(spot[2])
                        self.dirty_sites.add(spot[3])
            return
        # The queue it names and the one its call is in (a call queued again elsewhere
        # leaves its first queue: both change).
        named = getattr(event, "queue", None)
        here: str | None = None
        call = proc.calls.get(event.call_id)
        if call is not None:
            if call.leg is not None:
                here = call.leg.queue
            elif call.convs:
                here = call.convs[-1].queue
        for queue in (named, here):
            if queue is not None:
                self.dirty_calls.add(queue)
                q = proc.queues.get(queue)
                if q is not None:
                    self.dirty_sites.add(q.site)
        self.dirty_sites.add(event.site)
        agent = getattr(event, "agent", None)
        if agent is not None:
            self.dirty_agents.add(agent)

    def advance(self, t: float, inclusive: bool) -> None:
        """The processor's clock is about to move to ``t``: evaluate every instant before
        it (and ``t`` itself when ``inclusive``: a tick, not an event)."""
        if self._busy:
            return
        self._busy = True
        try:
            proc = self.proc
            if -_INF < proc.clock < t:
                self._flush(proc.clock)
            heap = self.heap
            due = self.due
            while heap and heap[0][0] < t:
                at, _, kind, name, index = heapq.heappop(heap)
                key = (kind, name, index)
                if due.get(key) != at:
                    continue
                del due[key]
                right = _right(at)
                if right > proc.clock:
                    proc.tick(right if right <= t else t)
                self._flush(at)
                if index < 0:
                    self._evaluate(kind, name, at, index)
                    continue
                # The scope's other rules due at this same instant (a record leaving a
                # window two rules read): one read of its values for all of them.
                indices = {index}
                while heap and heap[0][0] == at and heap[0][2] == kind and heap[0][3] == name:
                    _, _, _, _, other = heapq.heappop(heap)
                    if other >= 0 and due.get((kind, name, other)) == at:
                        del due[(kind, name, other)]
                        indices.add(other)
                    elif other < 0:
                        heapq.heappush(heap, (at, self._next_seq(), kind, name, other))
                        break
                self._evaluate(kind, name, at, indices)
            if inclusive:
                if t > proc.clock:
                    proc.tick(t)
                self._flush(t)
                now_due: list[tuple[int, str, int]] = []
                while heap and heap[0][0] == t:
                    at, _, kind, name, index = heapq.heappop(heap)
                    if due.get((kind, name, index)) == at:
                        del due[(kind, name, index)]
                        now_due.append((kind, name, index))
                for kind, name, index in now_due:
                    self._evaluate(kind, name, t, index)
                self.ticked_at = t
        finally:
            self._busy = False

    # ------------------------------------------------------------------ evaluation

    def _flush(self, at: float) -> None:
        calls, staff = self.dirty_calls, self.dirty_staff
        sites, agents = self.dirty_sites, self.dirty_agents
        if not (calls or staff or sites or agents):
            return
        self.dirty_calls, self.dirty_staff = set(), set()
        self.dirty_sites, self.dirty_agents = set(), set()
        queues = self.proc.queues
        if self.queues_watched:
            for name in sorted(calls):
                if name in queues:
                    self._evaluate(QUEUE, name, at, None)
            for name in sorted(staff - calls):
                if name in queues:
                    self._evaluate(QUEUE, name, at, None, staff_only=True)
        if self.sites_watched:
            for name in sorted(sites):
                self._evaluate(SITE, name, at, None)
        if self.agents_watched:
            agents_known = self.proc.agents
            for name in sorted(agents):
                if name in agents_known:
                    self._evaluate(AGENT, name, at, None)
                    if self.notify_violations:
                        self._schedule(AGENT, name, -1, self._violations(name, at))

    def _schedule(self, kind: int, name: str, index: int, at: float) -> None:
        if at == _INF:
            return
        clock = self.proc.clock
        if at < clock:
            at = clock
        key = (kind, name, index)
        old = self.due.get(key)
        if old is not None and clock <= old <= at:
            return
        self.due[key] = at
        self._seq += 1
        heapq.heappush(self.heap, (at, self._seq, kind, name, index))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _evaluate(
        self,
        kind: int,
        name: str,
        at: float,
        only: int | set[int] | None,
        staff_only: bool = False,
    ) -> None:
        """Step the scope's rules (rule ``only``, or those reading agent counts when
        ``staff_only``) at instant ``at`` (the processor at or just after it), and
        schedule each one's next instant."""
        started = perf_counter()
        try:
            self._evaluate_now(kind, name, at, only, staff_only)
        finally:
            # Self-metrics only (callfloor_alert_evaluation_seconds_total): never an input.
            self.evaluation_seconds += perf_counter() - started

    def _evaluate_now(
        self, kind: int, name: str, at: float, only: int | set[int] | None, staff_only: bool
    ) -> None:
        if only == -1:
            self._schedule(kind, name, -1, self._violations(name, at))
            return
        compiled = self.rules_of(kind, name)
        if not compiled:
            return
        proc = self.proc
        if (kind == QUEUE and name not in proc.queues) or (kind == SITE and name not in proc.sites):
            return  # forgotten since this instant was scheduled (processors/forgetting.py)
        self.evaluations += 1
        site = self._site_of(kind, name)
        values = _Values(self, kind, name)
        engine = self.engine
        scope_kind = _KIND_NAME[kind]
        for c in compiled:
            if only is not None and (
                c.index not in only if isinstance(only, set) else c.index != only
            ):
                continue
            if staff_only and not c.reads_agents:
                continue
            rule = c.rule
            fps = self._fingerprints
            fp = fps.get((c.index, name))
            if fp is None:
                fp = fps[(c.index, name)] = fingerprint(rule.name, scope_kind, name)
            exits = True
            failing = None if fp in engine.active else self._failing(rule, values)
            if failing is not None:
                nxt = _INF  # inactive and a condition fails: nothing to step
                # A count over a window that is below a constant level only falls as
                # records leave the window: only an event (or a miss) can raise it.
                exits = not failing
            else:
                holds, active, value, threshold = self._check(rule, values)
                step = engine.step(
                    rule, scope_kind, name, site, at, holds, active, value, threshold
                )
                nxt = _INF if step is None else step
            if c.longest or kind == AGENT:
                nxt = min(nxt, self._crossing(rule, values, at))
            nxt = min(nxt, self._time_changes(c, values, at, exits))
            self._schedule(kind, name, c.index, nxt)

    def _failing(self, rule: Rule, values: _Values) -> bool | None:
        """None if every condition holds (and the volume); else whether the one found
        failing is a window count below a constant level (records leaving the window
        cannot make it hold). Stops at the first failing (for an inactive alert that is
        all there is to know)."""
        if rule.min_volume and rule.volume_window is not None:
            offered = values.metric("sl_offered", rule.volume_window)
            if offered is None or offered < rule.min_volume:
                return True
        for cond in rule.conditions:
            value = values.metric(cond.metric, cond.window)
            t = cond.threshold
            if cond.op == ">" and t.ref is not None and t.factor >= 0 and (value or 0.0) <= 0:
                # Every value is at least 0: nothing is above a scaled one (not read).
                return False
            if not _compare(value, cond.op, values.threshold(t)):
                return (
                    cond.window is not None
                    and cond.metric in _COUNTS
                    and cond.op in (">", ">=")
                    and cond.threshold.ref is None
                )
        return None

    def _check(self, rule: Rule, values: _Values) -> tuple[bool, bool, float | None, float | None]:
        """(holds, holds against the clear level, first value, first threshold)."""
        holds = True
        others = True
        first_ok = False
        first_value: float | None = None
        first_threshold: float | None = None
        for i, cond in enumerate(rule.conditions):
            value = values.metric(cond.metric, cond.window)
            threshold = values.threshold(cond.threshold)
            ok = _compare(value, cond.op, threshold)
            if i == 0:
                first_value, first_threshold, first_ok = value, threshold, ok
            else:
                others = others and ok
            holds = holds and ok
        if rule.min_volume and rule.volume_window is not None:
            offered = values.metric("sl_offered", rule.volume_window)
            if offered is None or offered < rule.min_volume:
                return False, False, first_value, first_threshold
        first = rule.conditions[0]
        if rule.clear is not None:
            clear = values.threshold(rule.clear)
            # The clear level only widens the condition: one on the wrong side of the
            # threshold (a reference, unknown until read) must not resolve an alert
            # whose condition still holds, which would fire again at once.
            active = others and (first_ok or _cleared_holds(first_value, first.op, clear))
        else:
            active = holds
        return holds, active, first_value, first_threshold

    def _crossing(self, rule: Rule, values: _Values, at: float) -> float:
        """When a growing value (the longest wait, an agent's not-ready total) passes a
        level the rule compares it with."""
        out = _INF
        for cond in rule.conditions:
            if cond.window is not None or cond.metric not in (
                "longest_wait_s",
                "not_ready_today_s",
            ):
                continue
            value = values.metric(cond.metric, None)
            if value is None:
                continue
            if cond.metric == "longest_wait_s":
                if not values.metric("waiting", None):
                    continue
            else:
                track = self.proc.agents.get(values.name)
                if track is None or track.fold.state != "not_ready":
                    continue
            levels = [values.threshold(cond.threshold)]
            if rule.clear is not None and cond is rule.conditions[0]:
                levels.append(values.threshold(rule.clear))
            for level in levels:
                if level is not None and level >= value:
                    out = min(out, at + (level - value))
        return out

    def _time_changes(self, c: _Compiled, values: _Values, at: float, exits: bool = True) -> float:
        """The next instant the rule's windows change by time alone (``exits``: records
        leaving them count)."""
        now = values.now
        out = _INF
        widths = c.widths if exits else ()
        for q in values.queues:
            if widths:
                log = q.windows.log
                for width in widths:
                    x = log.next_after(now - width)
                    if x is not None and x + width < out:
                        out = x + width
            if c.misses:
                for leg in q.open.values():
                    if not leg.missed:
                        miss = leg.start + leg.threshold
                        if at <= miss < out:
                            out = miss
        if c.interval or c.day:
            site = self._site_of(values.kind, values.name)
            if site:
                cal = self.proc.calendar(site)
                if c.day:
                    out = min(out, cal.next_day_start(now))
                if c.interval:
                    minutes = self.proc.site(site).config.interval_minutes
                    out = min(out, cal.interval_start(now) + 60.0 * minutes)
        return out

    # ------------------------------------------------------------------ violations

    def _violations(self, agent: str, at: float) -> float:
        """Tell the engine the agent's violations; the next instant they can change."""
        proc = self.proc
        track = proc.agents.get(agent)
        if track is None:
            return _INF
        site = track.fold.site
        engine = self.engine
        now = proc.clock
        seen: dict[str, list[float]] = {}
        by_kind: dict[str, list[Violation]] = {}
        for v in agent_violations(proc, track, now):
            if v.kind in self.violation_rules:
                by_kind.setdefault(v.kind, []).append(v)
        for kind, found in by_kind.items():
            rule = self.violation_rules[kind]
            for ep in _episodes(found, now):
                seen.setdefault(kind, []).append(ep.since)
                engine.violation(
                    rule, agent, site, ep.severity, ep.since, ep.ended, ep.value, ep.raised_at
                )
        for kind, rule in self.violation_rules.items():
            fp = fingerprint(rule.name, "agent", agent)
            alert = engine.active.get(fp)
            if alert is not None and alert.since not in seen.get(kind, ()):
                engine.violation_gone(rule, agent, alert.since)
        nxt = next_transition(proc, track, now)
        return _INF if nxt is None else nxt

    # ------------------------------------------------------------------ late events (live)

    def keep_events(self) -> None:
        """Keep the applied events and snapshots so that late ones can re-derive the
        timeline (live; replay re-derives from its input instead)."""
        if self.events is None:
            self.events = []
            if self.proc.clock == -_INF and self.proc.seq == 0:
                # Nothing applied yet: the empty floor is a base for any late event.
                self.snapshots.append(_Snapshot(clock=-_INF, floor=b"", alerts=b""))

    def snapshot(self, every_s: float, keep_s: float) -> bool:
        """Take a snapshot of the processor and the alert state when the clock is
        ``every_s`` past the last one; forget those older than ``keep_s`` and the kept
        events before the oldest. Whether one was taken."""
        if self.events is None or self.proc.clock == -_INF:
            return False
        if self.late_since is not None or self.rederiving is not None:
            # The alert state is not that of the events yet (late ones wait for their
            # re-derivation): no base for the next one.
            return False
        clock = self.proc.clock
        snaps = self.snapshots
        if snaps and clock < snaps[-1].clock + every_s:
            return False
        from callfloor.processors.state import encode_checkpoint

        self._flush(clock)
        # Resolved alerts are listed for their site-local day only: a long-running
        # service must not keep (and checkpoint) every one it ever saw.
        self.engine.prune(clock - HISTORY_S)
        snaps.append(
            _Snapshot(
                clock=clock,
                floor=encode_checkpoint(self.proc),
                # Never with a base: a snapshot holding the oldest one's bytes would
                # nest them, one floor more an hour on a quiet floor.
                alerts=msgspec.msgpack.encode(self.save(max_events=-1)),
                seq=self._event_seq,
            )
        )
        while len(snaps) > 1 and snaps[1].clock <= clock - keep_s:
            del snaps[0]
        self.prune_events(snaps[0].clock, snaps[0].seq)
        return True

    def prune_events(self, before: float, seq: int | None = None) -> None:
        """Forget kept events at or before ``before`` (at ``before`` itself only those
        kept as ``seq`` or earlier, when given: a snapshot at ``before`` lacks the rest)."""
        events = self.events
        if events and events[0][0] <= before:
            last = (before, _MAX_SEQ if seq is None else seq)
            cut = bisect.bisect_right(events, last, key=_FIRST2)
            del events[:cut]

    def rederive(self, max_events: int = 1_000_000) -> bool:
        """Derive the alert timeline again after late events, from the newest snapshot
        before the earliest of them and the kept events after it, in time order (SPEC
        §10: late events move the instants to where they belong); notify the
        differences (a firing found, a resolve, a withdrawal). False if no snapshot is
        that old (counted: those late events were evaluated at the clock)."""
        steps = self.rederive_steps(max_events)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return bool(done.value)

    def rederive_steps(
        self, max_events: int = 1_000_000, slice_events: int = 1_000_000
    ) -> Generator[None, None, bool]:
        """:meth:`rederive` in slices of ``slice_events`` kept events, yielding between
        two; it returns what :meth:`rederive` returns.

        A re-derivation can apply tens of thousands of events (seconds of work): the
        live service runs the slices as a task, so that its writer and its HTTP server
        go on meanwhile. The live processor may take events between two slices: those
        after the last applied are applied in turn (the slices go by the (time, arrival)
        key, not by position); a late one before it marks :attr:`late_since` again, for
        the next re-derivation. The end (catching up to the clock, adopting the result)
        is one step."""
        late = self.late_since
        if late is None or self.events is None:
            return True
        self.late_since = None
        snaps = self.snapshots
        base = None
        for snap in reversed(snaps):
            if snap.clock < late:
                base = snap
                break
        events = self.events
        # After the base: later events, and those at its instant that arrived after it.
        start = bisect.bisect_right(events, (base.clock, base.seq), key=_FIRST2) if base else 0
        if base is None or len(events) - start > max_events:
            self.rederivations_skipped += 1
            return False
        from callfloor.processors.engine import FloorProcessor
        from callfloor.processors.state import decode_checkpoint

        live = self.proc
        engine = AlertEngine(self.engine.rules, notify=False)
        if base.floor:
            fresh = decode_checkpoint(live.config, base.floor, live=live.live).processor
            shadow = AlertDriver(fresh, engine, follow_violations=self.notify_violations)
            shadow.load(msgspec.msgpack.decode(base.alerts, type=DriverState))
        else:
            fresh = FloorProcessor(live.config, live=live.live)
            shadow = AlertDriver(fresh, engine, follow_violations=self.notify_violations)
        # After the base: later events, and those at its instant that arrived after it.
        cursor: tuple[float, float] = (base.clock, base.seq)
        self.rederiving = late
        try:
            while True:
                kept = self.events
                i = bisect.bisect_right(kept, cursor, key=_FIRST2)
                chunk = kept[i : i + max(1, slice_events)]
                if not chunk:
                    break
                for _, _, event in chunk:
                    fresh.apply(event)
                cursor = _first2(chunk[-1])
                if len(chunk) == slice_events:
                    yield
        except GeneratorExit:  # abandoned (the service stops): still to be done
            self.late_since = late if self.late_since is None else min(late, self.late_since)
            raise
        finally:
            self.rederiving = None
        fresh.tick(live.clock)
        self.rederivations += 1
        self._adopt(shadow)
        return True

    def _adopt(self, shadow: AlertDriver) -> None:
        """Take the re-derived state; notify what people were told wrongly or not yet."""
        mine = self.engine
        theirs = shadow.engine
        told = {a.fingerprint: a for a in mine.active.values() if a.notified}
        # An acknowledgement is of what fired at its instant: it goes to the re-derived
        # alert of that fingerprint firing then, though a late event moved its fired_at
        # (matching the instant exactly lost it, and repeats paged again).
        acks: dict[str, list[Alert]] = {}
        for a in (*mine.active.values(), *mine.history):
            if a.acknowledged_by is not None:
                acks.setdefault(a.fingerprint, []).append(a)
        for a in (*theirs.active.values(), *theirs.history):
            for ack in acks.get(a.fingerprint, ()):
                if _acknowledges(ack, a):
                    a.acknowledged_by = ack.acknowledged_by
                    a.acknowledged_at = ack.acknowledged_at
                    a.ack_comment = ack.ack_comment
                    break
        # Resolves people were told; a late event may show the alert firing on.
        resolved_told = {
            (a.fingerprint, a.fired_at): a for a in mine.history if a.notified and not a.withdrawn
        }
        now = self.proc.clock
        by_name = mine.by_name
        # Violation alerts too: the re-derived engine saw their episodes (a late
        # agent_state can reveal or disprove one) and mine is replaced below, so what
        # it was told is settled here or never.
        for fp, old in told.items():
            rule = by_name.get(old.rule)
            if rule is None:
                continue
            new = theirs.active.get(fp)
            if new is not None and new.state == "firing":
                new.notified = True
                new.muted = old.muted
                new.repeats = max(new.repeats, old.repeats)
                continue
            ended = next(
                (
                    h
                    for h in reversed(theirs.history)
                    if h.fingerprint == fp and h.fired_at == old.fired_at
                ),
                None,
            )
            if ended is not None:
                ended.muted = old.muted
                mine._emit(ended, rule, Transition.RESOLVED, ended.ended_at or now)
            else:
                mine._withdraw(old, rule)
        for fp, new in theirs.active.items():
            rule = by_name.get(new.rule)
            if new.state == "firing" and fp not in told and rule is not None:
                assert new.fired_at is not None
                wrong = resolved_told.get((fp, new.fired_at))
                if wrong is not None:
                    # Its firing key was delivered (and deduplicated by receivers):
                    # a new one, so the resolve they hold is replaced.
                    new.reopened = wrong.reopened + 1
                    new.muted = wrong.muted
                    new.repeats = max(new.repeats, wrong.repeats)
                mine._emit(new, rule, Transition.FIRING, new.fired_at)
                new.notified = True
        mine.active = theirs.active
        mine.history = theirs.history
        self.heap = shadow.heap
        self.due = shadow.due
        self._seq = shadow._seq

    # ------------------------------------------------------------------ reads

    def alerts(self) -> list[AlertView]:
        """The document's alert list at the processor's clock (SPEC §10)."""
        from callfloor.processors.views import AlertState, Severity

        proc = self.proc
        now = proc.clock
        day_start: Callable[[str], float] = lambda site: proc.calendar(site).day_start(now)  # noqa: E731
        out: list[AlertView] = []
        for a in self.engine.listed(day_start):
            rule = self.engine.by_name.get(a.rule)
            if rule is None or rule.violation is not None:
                continue
            value = a.value
            if a.state != "resolved":
                value = self._value_now(rule, a)
            out.append(_view(a, value, AlertState, Severity))
        out.extend(self._violation_alerts(day_start, AlertState, Severity))
        out.sort(key=lambda v: (v.since, v.rule, v.scope))
        return out

    def current(self, alert: Alert) -> Alert:
        """``alert`` as the document lists it: a pending or firing one with its value at
        the processor's clock (a copy), a resolved one as it ended."""
        rule = self.engine.by_name.get(alert.rule)
        if alert.state == "resolved" or rule is None or rule.violation is not None:
            return alert
        return msgspec.structs.replace(alert, value=self._value_now(rule, alert))

    def _value_now(self, rule: Rule, alert: Alert) -> float | None:
        kind = _KIND_NAME.index(alert.scope_kind)
        if (kind == QUEUE and alert.scope not in self.proc.queues) or (
            kind == SITE and alert.scope not in self.proc.sites
        ):
            return alert.value  # forgotten: a read must not create it again
        values = _Values(self, kind, alert.scope)
        cond: Condition = rule.conditions[0]
        return values.metric(cond.metric, cond.window)

    def _violation_alerts(
        self, day_start: Callable[[str], float], state_t: type, sev_t: type
    ) -> list[AlertView]:
        proc = self.proc
        now = proc.clock
        out: list[AlertView] = []
        if not self.violation_rules:
            return out
        for name, track in proc.agents.items():
            if not track.fold.known:
                continue
            start = day_start(track.fold.site)
            for v in agent_violations(proc, track, now):
                rule = self.violation_rules.get(v.kind)
                if rule is None:
                    continue
                ended = v.ended_at if v.ended_at is not None and v.ended_at <= now else None
                if ended is not None and v.started_at < start:
                    continue
                out.append(
                    AlertView(
                        rule=rule.name,
                        scope=name,
                        severity=sev_t(v.severity),
                        state=state_t("resolved" if ended is not None else "firing"),
                        since=v.started_at,
                        fired_at=v.started_at,
                        ended_at=ended,
                        value=v.value,
                        fingerprint=fingerprint(rule.name, "agent", name),
                    )
                )
        return out


class _Episode:
    """Overlapping violations of one kind and agent: one alert (its fingerprint is the
    rule and the agent), at the highest severity reached (``raised_at``: when)."""

    __slots__ = ("ended", "raised_at", "severity", "since", "value")

    def __init__(self, v: Violation, ended: float | None) -> None:
        self.since = v.started_at
        self.ended = ended
        self.severity = str(v.severity)
        self.value = v.value
        self.raised_at: float | None = None


def _episodes(found: list[Violation], now: float) -> list[_Episode]:
    """``found`` (one kind, one agent) as alert episodes: violations that overlap (the
    daily not-ready limits, both running until midnight) are one episode, escalated by
    the later ones, instead of one alert ending the other at every evaluation."""
    out: list[_Episode] = []
    for v in sorted(found, key=lambda v: v.started_at):
        ended = v.ended_at if v.ended_at is not None and v.ended_at <= now else None
        last = out[-1] if out else None
        if last is not None and (last.ended is None or v.started_at < last.ended):
            last.ended = None if ended is None or last.ended is None else max(ended, last.ended)
            if SEVERITIES.index(str(v.severity)) > SEVERITIES.index(last.severity):
                last.severity = str(v.severity)
                last.raised_at = v.started_at
            last.value = v.value
        else:
            out.append(_Episode(v, ended))
    return out


def _acknowledges(ack: Alert, alert: Alert) -> bool:
    """Whether the acknowledgement of ``ack`` is one of ``alert`` (same fingerprint): the
    same firing, or ``alert`` was firing at the acknowledgement's instant."""
    if alert.fired_at is None:
        return False
    if alert.fired_at == ack.fired_at:
        return True
    at = ack.acknowledged_at
    return (
        at is not None and alert.fired_at <= at and (alert.ended_at is None or alert.ended_at > at)
    )


def _view(a: Alert, value: float | None, state_t: type, sev_t: type) -> AlertView:
    return AlertView(
        rule=a.rule,
        scope=a.scope,
        severity=sev_t(a.severity),
        state=state_t(a.state),
        since=a.since,
        fired_at=a.fired_at,
        ended_at=a.ended_at,
        value=value if value is None or math.isfinite(value) else None,
        fingerprint=a.fingerprint,
    )


def attach_alerts(
    proc: FloorProcessor, config: Config, *, notify: bool = False
) -> AlertDriver | None:
    """An alert driver observing ``proc`` with ``config``'s rules (None without rules);
    ``notify``: the engine emits notifications (the live service; replay tells nobody)."""
    if not config.alerts.rules:
        return None
    driver = AlertDriver(proc, AlertEngine(config.alerts.rules, notify=notify))
    proc.alert_source = driver.alerts
    return driver
