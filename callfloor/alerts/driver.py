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

import heapq
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from callfloor.alerts.engine import Alert, AlertEngine, fingerprint
from callfloor.alerts.rules import POLICY_REFS, Condition, Rule, Threshold
from callfloor.config import Config, parse_duration
from callfloor.events import AgentState, Event
from callfloor.processors.derive import agent_violations, next_transition
from callfloor.processors.read import STAFFED_STATES, FloorReader, window_stats
from callfloor.processors.views import AlertView, QueueView, SiteView, WindowStats

if TYPE_CHECKING:
    from callfloor.processors.engine import FloorProcessor

__all__ = ["AlertDriver", "attach_alerts"]

QUEUE: Final = 0
SITE: Final = 1
AGENT: Final = 2
_KIND_NAME: Final = ("queue", "site", "agent")
_INF: Final = math.inf
_BASE_WIDTHS: Final = (900.0, 3600.0)  # live arrival rate and required agents read these


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


class _Values:
    """The values of one scope at the processor's clock, read once per evaluation."""

    __slots__ = ("driver", "kind", "live", "name", "policy", "view", "windows")

    def __init__(self, driver: AlertDriver, kind: int, name: str) -> None:
        self.driver = driver
        self.kind = kind
        self.name = name
        self.windows: dict[str, WindowStats | None] = {}
        reader = driver.reader
        self.view: QueueView | SiteView | None = None
        self.live: dict[str, float | None] = {}
        self.policy = None
        proc = driver.proc
        if kind == QUEUE:
            view = reader.queue(name)
            self.view = view
            self.policy = proc.queues[name].policy
        elif kind == SITE:
            self.view = reader.site(name)
            self.policy = proc.config.channel_defaults.get("voice")
        else:
            agent = reader.agent(name)
            if agent is not None:
                for key in driver.agent_fields:
                    v = getattr(agent, key, None)
                    self.live[key] = None if v is None else float(v)
        view = self.view
        if view is not None:
            live = view.live
            agents = live.agents
            values: dict[str, float | None] = {
                "waiting": float(live.waiting),
                "longest_wait_s": live.longest_wait_s,
                "occupancy": live.occupancy,
                "arrival_rate_per_s": live.arrival_rate_per_s,
                "agents_staffed": float(sum(agents.get(s, 0) for s in STAFFED_STATES)),
            }
            for state, n in agents.items():
                values[f"agents_{state}"] = float(n)
            if isinstance(view, QueueView):
                req = view.live.required_agents
                values["required_agents"] = None if req is None else float(req)
                values["projected_service_level"] = view.live.projected_service_level
            self.live = values

    def window(self, label: str) -> WindowStats | None:
        got = self.windows.get(label, self)
        if got is not self:
            return got  # type: ignore[return-value]
        stats: WindowStats | None = None
        view = self.view
        if view is not None:
            stats = view.windows.get(label)
            if stats is None:
                stats = self.driver.window_at(self.kind, self.name, label)
        self.windows[label] = stats
        return stats

    def metric(self, metric: str, window: str | None) -> float | None:
        if window is None:
            return self.live.get(metric)
        stats = self.window(window)
        if stats is None:
            return None
        if metric == "arrival_rate_per_s":
            width = self.driver.width(window, self.kind, self.name)
            return stats.offered / width if width > 0 else None
        value = getattr(stats, metric)
        return None if value is None else float(value)

    def threshold(self, t: Threshold) -> float | None:
        if t.ref is None:
            return t.constant
        if t.ref in POLICY_REFS and self.kind != AGENT:
            base = getattr(self.policy, t.ref, None) if self.policy is not None else None
        else:
            base = self.metric(t.ref, t.window)
        return None if base is None else t.factor * float(base)


class AlertDriver:
    """Drives an :class:`AlertEngine` from a processor (see the module docstring)."""

    def __init__(self, proc: FloorProcessor, engine: AlertEngine) -> None:
        self.proc = proc
        self.engine = engine
        self.reader = FloorReader(proc)
        self.rules = [r for r in engine.rules if r.violation is None]
        self.violation_rules = {r.violation: r for r in engine.rules if r.violation is not None}
        self.agent_fields = sorted(
            {c.metric for r in self.rules if r.scope_kind == "agent" for c in r.conditions}
            | {
                c.threshold.ref
                for r in self.rules
                if r.scope_kind == "agent"
                for c in r.conditions
                if c.threshold.ref
            }
        )
        self.dirty: tuple[set[str], set[str], set[str]] = (set(), set(), set())
        self.heap: list[tuple[float, int, int, str]] = []
        self.due: dict[tuple[int, str], float] = {}
        self._seq = 0
        self._busy = False
        self._rules_of: dict[tuple[int, str], list[Rule]] = {}
        self._widths_of: dict[tuple[int, str], tuple[float, ...]] = {}
        self._calendar_of: dict[tuple[int, str], tuple[bool, bool]] = {}
        self.late_events = 0
        self.evaluations = 0
        self.agents_watched = bool(self.violation_rules) or any(
            r.scope_kind == "agent" for r in self.rules
        )
        self.sites_watched = any(r.scope_kind == "site" for r in self.rules)
        self.queues_watched = any(r.scope_kind == "queue" for r in self.rules)
        proc.retain_windows(max((self._label_width(w) for r in self.rules for w in r.windows()), default=0.0))
        proc.observer = self

    # ------------------------------------------------------------------ config helpers

    def _label_width(self, label: str) -> float:
        if label in ("interval", "today"):
            return 0.0
        for name, width in self.proc.config.rolling_windows:
            if name == label:
                return width
        return parse_duration(label)

    def width(self, label: str, kind: int, name: str) -> float:
        """The length of window ``label`` (an interval or day: its length so far)."""
        if label == "interval" or label == "today":
            cal = self.proc.calendar(self._site_of(kind, name))
            now = self.proc.clock
            start = cal.interval_start(now) if label == "interval" else cal.day_start(now)
            return now - start
        return self._label_width(label)

    def _site_of(self, kind: int, name: str) -> str:
        proc = self.proc
        if kind == QUEUE:
            return proc.queues[name].site
        if kind == SITE:
            return name
        track = proc.agents.get(name)
        return track.fold.site if track is not None else ""

    def rules_of(self, kind: int, name: str) -> list[Rule]:
        key = (kind, name)
        got = self._rules_of.get(key)
        if got is None:
            word = _KIND_NAME[kind]
            got = [r for r in self.rules if r.scope_kind == word and r.covers(name)]
            self._rules_of[key] = got
            widths: set[float] = set(_BASE_WIDTHS) if kind != AGENT else set()
            interval = day = False
            for r in got:
                for w in r.windows():
                    if w == "interval":
                        interval = True
                    elif w == "today":
                        day = True
                    else:
                        widths.add(self._label_width(w))
                if kind == AGENT:
                    day = True
            self._widths_of[key] = tuple(sorted(widths))
            self._calendar_of[key] = (interval, day)
        return got

    def window_at(self, kind: int, name: str, label: str) -> WindowStats | None:
        """A window that is not one of the configured ones, at the clock."""
        proc = self.proc
        now = proc.clock
        width = self._label_width(label)
        if kind == QUEUE:
            q = proc.queues[name]
            sums, mx = q.windows.window(now, width)
            return window_stats(sums, mx, q.policy.sl_formula)
        total: list[int] | None = None
        top = -1
        for q in proc.queues.values():
            if q.site != name or not q.listed:
                continue
            sums, mx = q.windows.window(now, width)
            total = sums if total is None else [a + b for a, b in zip(total, sums, strict=True)]
            top = max(top, mx)
        if total is None:
            return None
        return window_stats(total, top, proc.site(name).config.sl_formula)

    # ------------------------------------------------------------------ observer hooks

    def touching(self, event: Event) -> None:
        """Before ``event`` is applied: mark what it touches (an agent's old queues)."""
        t: float = event.ts  # type: ignore[assignment]
        if t < self.proc.clock:
            self.late_events += 1
        self._mark(event)

    def touched(self, event: Event) -> None:
        """After ``event`` is applied: mark what it touches now (an agent's new queues)."""
        if isinstance(event, AgentState):
            self._mark(event)

    def _mark(self, event: Event) -> None:
        queues, sites, agents = self.dirty
        proc = self.proc
        if isinstance(event, AgentState):
            agents.add(event.agent)
            sites.add(event.site)
            track = proc.agents.get(event.agent)
            if track is not None:
                queues.update(track.fold.group)
                sites.add(track.fold.site)
            return
        queue = getattr(event, "queue", None)
        if queue is None:
            call = proc.calls.get(event.call_id)  # type: ignore[union-attr]
            if call is not None:
                if call.leg is not None:
                    queue = call.leg.queue
                elif call.convs:
                    queue = call.convs[-1].queue
        if queue is not None:
            queues.add(queue)
            q = proc.queues.get(queue)
            if q is not None:
                sites.add(q.site)
        sites.add(event.site)
        agent = getattr(event, "agent", None)
        if agent is not None:
            agents.add(agent)

    def advance(self, t: float, inclusive: bool) -> None:
        """The processor's clock is about to move to ``t``: evaluate every instant before
        it (and ``t`` itself when ``inclusive``: a tick, not an event)."""
        if self._busy:
            return
        self._busy = True
        try:
            proc = self.proc
            if proc.clock < t:
                self._flush(proc.clock)
            heap = self.heap
            while heap and heap[0][0] < t:
                at, _, kind, name = heapq.heappop(heap)
                if self.due.get((kind, name)) != at:
                    continue
                del self.due[(kind, name)]
                right = _right(at)
                if right > proc.clock:
                    proc.tick(right if right <= t else t)
                self._evaluate(kind, name, at)
                self._flush(at)
            if inclusive:
                if t > proc.clock:
                    proc.tick(t)
                self._flush(t)
                now_due: list[tuple[int, str]] = []
                while heap and heap[0][0] == t:
                    at, _, kind, name = heapq.heappop(heap)
                    if self.due.get((kind, name)) == at:
                        del self.due[(kind, name)]
                        now_due.append((kind, name))
                for kind, name in now_due:
                    self._evaluate(kind, name, t)
        finally:
            self._busy = False

    # ------------------------------------------------------------------ evaluation

    def _flush(self, at: float) -> None:
        queues, sites, agents = self.dirty
        if not (queues or sites or agents):
            return
        self.dirty = (set(), set(), set())
        if self.queues_watched:
            for name in sorted(queues):
                if name in self.proc.queues:
                    self._evaluate(QUEUE, name, at)
        if self.sites_watched:
            for name in sorted(sites):
                self._evaluate(SITE, name, at)
        if self.agents_watched:
            for name in sorted(agents):
                if name in self.proc.agents:
                    self._evaluate(AGENT, name, at)

    def _schedule(self, kind: int, name: str, at: float | None) -> None:
        if at is None or at == _INF:
            return
        key = (kind, name)
        old = self.due.get(key)
        if old is not None and old <= at and old >= self.proc.clock:
            return
        self.due[key] = at
        self._seq += 1
        heapq.heappush(self.heap, (at, self._seq, kind, name))

    def _evaluate(self, kind: int, name: str, at: float) -> None:
        """Step every rule of one scope at instant ``at`` (the processor at or just
        after it) and schedule the scope's next instant."""
        self.evaluations += 1
        rules = self.rules_of(kind, name)
        nxt = _INF
        if kind == AGENT and self.violation_rules:
            nxt = min(nxt, self._violations(name, at))
        if not rules:
            if nxt < _INF:
                self._schedule(kind, name, nxt)
            return
        proc = self.proc
        site = self._site_of(kind, name)
        values = _Values(self, kind, name)
        engine = self.engine
        scope_kind = _KIND_NAME[kind]
        for rule in rules:
            holds, active, value, threshold = self._check(rule, values)
            later = engine.step(rule, scope_kind, name, site, at, holds, active, value, threshold)
            if later is not None and later < nxt:
                nxt = later
            crossing = self._crossing(rule, values, at)
            if crossing < nxt:
                nxt = crossing
        nxt = min(nxt, self._time_changes(kind, name, at))
        if nxt < _INF:
            self._schedule(kind, name, nxt if nxt >= proc.clock else proc.clock)

    def _check(
        self, rule: Rule, values: _Values
    ) -> tuple[bool, bool, float | None, float | None]:
        """(holds, holds against the clear level, first value, first threshold)."""
        holds = True
        others = True
        first_value: float | None = None
        first_threshold: float | None = None
        for i, cond in enumerate(rule.conditions):
            value = values.metric(cond.metric, cond.window)
            threshold = values.threshold(cond.threshold)
            ok = _compare(value, cond.op, threshold)
            if i == 0:
                first_value, first_threshold = value, threshold
            else:
                others = others and ok
            holds = holds and ok
        if rule.min_volume and rule.volume_window is not None:
            stats = values.window(rule.volume_window)
            if stats is None or stats.sl_offered < rule.min_volume:
                return False, False, first_value, first_threshold
        first = rule.conditions[0]
        if rule.clear is not None:
            clear = values.threshold(rule.clear)
            active = others and _cleared_holds(first_value, first.op, clear)
        else:
            active = holds
        return holds, active, first_value, first_threshold

    def _crossing(self, rule: Rule, values: _Values, at: float) -> float:
        """When a growing live value (the longest wait) passes its threshold."""
        out = _INF
        for cond in rule.conditions:
            if cond.metric != "longest_wait_s" or cond.window is not None:
                continue
            value = values.metric("longest_wait_s", None)
            waiting = values.metric("waiting", None)
            levels = [values.threshold(cond.threshold)]
            if rule.clear is not None and cond is rule.conditions[0]:
                levels.append(values.threshold(rule.clear))
            if value is None or not waiting:
                continue
            for level in levels:
                if level is not None and level >= value:
                    out = min(out, at + (level - value))
        if values.kind == AGENT:
            for cond in rule.conditions:
                if cond.metric != "not_ready_today_s":
                    continue
                value = values.metric(cond.metric, None)
                track = self.proc.agents.get(values.name)
                if value is None or track is None or track.fold.state != "not_ready":
                    continue
                for level in (values.threshold(cond.threshold), values.threshold(rule.clear) if rule.clear else None):
                    if level is not None and level >= value:
                        out = min(out, at + (level - value))
        return out

    def _time_changes(self, kind: int, name: str, at: float) -> float:
        """The next instant the scope's windows change by time alone."""
        proc = self.proc
        now = proc.clock
        key = (kind, name)
        widths = self._widths_of.get(key, ())
        interval, day = self._calendar_of.get(key, (False, False))
        out = _INF
        if kind == QUEUE:
            queues = [proc.queues[name]]
        elif kind == SITE:
            queues = [q for q in proc.queues.values() if q.site == name and q.listed]
        else:
            queues = []
        for q in queues:
            log = q.windows.log
            for width in widths:
                x = log.next_after(now - width)
                if x is not None and x + width < out:
                    out = x + width
            for leg in q.open.values():
                if not leg.missed:
                    miss = leg.start + leg.threshold
                    if at <= miss < out:
                        out = miss
        if interval or day:
            cal = proc.calendar(self._site_of(kind, name))
            if day:
                out = min(out, cal.next_day_start(now))
            if interval:
                start = cal.interval_start(now)
                minutes = proc.site(self._site_of(kind, name)).config.interval_minutes
                out = min(out, start + 60.0 * minutes)
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
        for v in agent_violations(proc, track, now):
            rule = self.violation_rules.get(v.kind)
            if rule is None:
                continue
            seen.setdefault(v.kind, []).append(v.started_at)
            ended = v.ended_at if v.ended_at is not None and v.ended_at <= now else None
            engine.violation(rule, agent, site, v.severity, v.started_at, ended, v.value)
        for kind, rule in self.violation_rules.items():
            fp = fingerprint(rule.name, "agent", agent)
            alert = engine.active.get(fp)
            if alert is not None and alert.since not in seen.get(kind, ()):
                engine.violation_gone(rule, agent, alert.since)
        nxt = next_transition(proc, track, now)
        return _INF if nxt is None else nxt

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

    def _value_now(self, rule: Rule, alert: Alert) -> float | None:
        kind = _KIND_NAME.index(alert.scope_kind)
        if kind == QUEUE and alert.scope not in self.proc.queues:
            return alert.value
        values = _Values(self, kind, alert.scope)
        cond: Condition = rule.conditions[0]
        return values.metric(cond.metric, cond.window)

    def _violation_alerts(self, day_start: Callable[[str], float], state_t: type, sev_t: type) -> list[AlertView]:
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
