"""The alert lifecycle (SPEC §5, §10): pure state per rule and scope, notifications out.

:class:`AlertEngine` knows nothing of the processor: it is told, for one rule and one
scope, at an event-time instant, whether the rule's condition holds (with and without
the clear level) and the value. :class:`~callfloor.alerts.driver.AlertDriver` decides
*when* to ask (every instant an input can change) and reads the values.

Lifecycle of one alert (fingerprint = rule + scope)::

    inactive --condition holds--> pending --held for `for`--> firing --cleared--> resolved
                 (since = t)        |         (fired_at = since + for)  (ended_at = t)
                                    +--stops holding--> gone (never notified)

A firing alert resolves when the first condition's value is back past ``clear`` (or,
without ``clear``, when the condition stops holding; also when a volume minimum or a
second condition stops holding). It notifies once on firing and once on resolve;
``repeat`` re-notifies a firing alert (never once acknowledged); ``escalate`` raises
its severity once, notifying once. Instants are event time.

Notifications are appended to :attr:`AlertEngine.outbox` (the service drains it into
the delivery outbox; replay ignores it). Acknowledgements and silences are operator
commands applied here so that replaying the log reproduces them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from callfloor.alerts.notification import SEVERITIES, Notification, Transition, idempotency_key
from callfloor.alerts.rules import Rule

__all__ = [
    "Alert",
    "AlertEngine",
    "EngineState",
    "Silence",
    "fingerprint",
]

HISTORY_S: Final = 48 * 3600.0  # resolved alerts kept this long (a site-local day at least)


def fingerprint(rule: str, scope_kind: str, scope: str) -> str:
    """Stable across runs and processes: a function of rule and scope only."""
    digest = hashlib.sha256(f"{rule}\0{scope_kind}\0{scope}".encode()).hexdigest()
    return digest[:16]


class Alert(msgspec.Struct, kw_only=True):
    """One alert episode (mutable: the engine updates it in place)."""

    fingerprint: str
    rule: str
    scope_kind: str
    scope: str
    site: str
    severity: str
    state: str  # "pending", "firing", "resolved"
    since: float
    fired_at: float | None = None
    ended_at: float | None = None
    value: float | None = None
    threshold: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    ack_comment: str | None = None
    notified: bool = False  # its firing notification was emitted
    repeats: int = 0
    escalated: bool = False
    withdrawn: bool = False
    # How often a resolve people were told was taken back by late events (the alert
    # fires on): its later notifications carry it so their keys are new to receivers.
    reopened: int = 0
    # Every notification of its firing so far went out silenced: nobody heard of it, so
    # its end is silenced too. Otherwise the end follows even under a silence made
    # since (receivers keep a firing state: MQTT retained, chat threads). False by
    # default, so alerts of older checkpoints end audibly.
    muted: bool = False


MAX_SILENCES: Final = 1000
"""Silences in force at once: one more is refused (each is matched against every
notification and written with every command's checkpoint)."""


class Silence(msgspec.Struct, kw_only=True, frozen=True):
    """Notifications of matching alerts are marked silenced until ``ends_at``."""

    id: str
    rule: str  # glob
    scope: str  # glob
    starts_at: float
    ends_at: float
    created_by: str
    comment: str = ""

    def matches(self, alert: Alert, t: float) -> bool:
        return (
            self.starts_at <= t < self.ends_at
            and fnmatch.fnmatchcase(alert.rule, self.rule)
            and fnmatch.fnmatchcase(alert.scope, self.scope)
        )


class EngineState(msgspec.Struct, kw_only=True):
    """What a checkpoint keeps of the engine (its own section of the envelope)."""

    active: list[Alert] = []
    history: list[Alert] = []
    silences: list[Silence] = []


@dataclass
class AlertEngine:
    """Alert state of one processor (see the module docstring)."""

    rules: tuple[Rule, ...]
    active: dict[str, Alert] = field(default_factory=dict)
    history: list[Alert] = field(default_factory=list)
    silences: dict[str, Silence] = field(default_factory=dict)
    outbox: list[Notification] = field(default_factory=list)
    notify: bool = True
    by_name: dict[str, Rule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {r.name: r for r in self.rules}

    # ------------------------------------------------------------------ evaluation

    def step(
        self,
        rule: Rule,
        scope_kind: str,
        scope: str,
        site: str,
        t: float,
        holds: bool,
        holds_active: bool,
        value: float | None,
        threshold: float | None,
    ) -> float | None:
        """Advance one alert to instant ``t``; the next instant it needs looking at by
        time alone (its ``for``, escalation or repeat), or None."""
        fp = fingerprint(rule.name, scope_kind, scope)
        alert = self.active.get(fp)
        if alert is None:
            if not holds:
                return None
            alert = Alert(
                fingerprint=fp,
                rule=rule.name,
                scope_kind=scope_kind,
                scope=scope,
                site=site,
                severity=rule.severity,
                state="pending",
                since=t,
                value=value,
                threshold=threshold,
            )
            self.active[fp] = alert
        alert.value = value
        alert.threshold = threshold
        if alert.state == "pending":
            if not holds:
                del self.active[fp]  # never fired: gone, nobody was told
                return None
            due = alert.since + rule.for_s
            if t < due:
                return due
            self._fire(alert, rule, due)
        # firing
        assert alert.fired_at is not None
        if not holds_active:
            self._resolve(alert, rule, t)
            return None
        return self._later(alert, rule, t)

    def _later(self, alert: Alert, rule: Rule, t: float) -> float | None:
        """Escalation and repeats due by ``t``; the next such instant."""
        assert alert.fired_at is not None
        nxt: float | None = None
        esc = rule.escalate
        if esc is not None and not alert.escalated:
            at = alert.fired_at + esc.after_s
            if t >= at:
                alert.escalated = True
                alert.severity = esc.severity
                self._emit(alert, rule, Transition.ESCALATED, at)
            else:
                nxt = at
        if rule.repeat_s is not None and alert.acknowledged_by is None:
            at = alert.fired_at + rule.repeat_s * (alert.repeats + 1)
            while t >= at:
                alert.repeats += 1
                self._emit(alert, rule, Transition.REPEAT, at)
                at = alert.fired_at + rule.repeat_s * (alert.repeats + 1)
            nxt = at if nxt is None else min(nxt, at)
        return nxt

    def _fire(self, alert: Alert, rule: Rule, at: float) -> None:
        alert.state = "firing"
        alert.fired_at = at
        self._emit(alert, rule, Transition.FIRING, at)
        alert.notified = True

    def _resolve(self, alert: Alert, rule: Rule, at: float) -> None:
        alert.state = "resolved"
        alert.ended_at = at
        del self.active[alert.fingerprint]
        self.history.append(alert)
        self._emit(alert, rule, Transition.RESOLVED, at)

    # ------------------------------------------------------------------ violations

    def violation(
        self,
        rule: Rule,
        agent: str,
        site: str,
        severity: str,
        started_at: float,
        ended_at: float | None,
        value: float,
        raised_at: float | None = None,
    ) -> None:
        """A violation alert seen at its current state (notifies what changed);
        ``raised_at``: when a later, overlapping violation raised ``severity``."""
        fp = fingerprint(rule.name, "agent", agent)
        alert = self.active.get(fp)
        if alert is not None and alert.since != started_at:
            # Another episode: the one we knew ended (or a late event moved it).
            if alert.since < started_at:
                self._resolve(alert, rule, min(started_at, alert.ended_at or started_at))
            else:
                self._withdraw(alert, rule)
            alert = None
        if alert is None:
            for old in reversed(self.history):
                if old.fingerprint == fp and old.since == started_at:
                    return  # known and resolved already
            alert = Alert(
                fingerprint=fp,
                rule=rule.name,
                scope_kind="agent",
                scope=agent,
                site=site,
                severity=severity,
                state="pending",
                since=started_at,
            )
            self.active[fp] = alert
            alert.value = value
            self._fire(alert, rule, started_at)
        elif SEVERITIES.index(severity) > SEVERITIES.index(alert.severity):
            # A later limit crossed while this one lasts: escalated, notified once.
            alert.severity = severity
            alert.escalated = True
            self._emit(alert, rule, Transition.ESCALATED, raised_at or started_at)
        alert.value = value
        if ended_at is not None:
            self._resolve(alert, rule, ended_at)
        else:
            self._later(alert, rule, started_at)

    def violation_gone(self, rule: Rule, agent: str, started_at: float) -> None:
        """A violation a late event showed never happened: its alert is withdrawn."""
        fp = fingerprint(rule.name, "agent", agent)
        alert = self.active.get(fp)
        if alert is not None and alert.since == started_at:
            self._withdraw(alert, rule)

    def _withdraw(self, alert: Alert, rule: Rule) -> None:
        """It never should have fired: a resolve marked withdrawn if people were told."""
        self.active.pop(alert.fingerprint, None)
        alert.withdrawn = True
        alert.state = "resolved"
        alert.ended_at = alert.since
        if alert.notified:
            self._emit(alert, rule, Transition.WITHDRAWN, alert.since)

    # ------------------------------------------------------------------ commands

    def acknowledge(self, fp: str, by: str, comment: str, at: float) -> Alert | None:
        """Acknowledge a firing alert: no more repeats. None if none is firing."""
        alert = self.active.get(fp)
        if alert is None or alert.state != "firing":
            return None
        alert.acknowledged_by = by
        alert.acknowledged_at = at
        alert.ack_comment = comment
        return alert

    def add_silence(self, silence: Silence) -> None:
        """Add ``silence``; those ended by its start go (they silence nothing more, and
        every command's checkpoint and every notification would carry them forever)."""
        at = silence.starts_at
        if any(s.ends_at <= at for s in self.silences.values()):
            self.silences = {k: s for k, s in self.silences.items() if s.ends_at > at}
        self.silences[silence.id] = silence

    def silences_in_force(self, at: float) -> int:
        """How many silences have not ended at ``at``."""
        return sum(1 for s in self.silences.values() if s.ends_at > at)

    def remove_silence(self, silence_id: str) -> bool:
        return self.silences.pop(silence_id, None) is not None

    def silenced(self, alert: Alert, t: float) -> bool:
        return any(s.matches(alert, t) for s in self.silences.values())

    # ------------------------------------------------------------------ output

    def _emit(self, alert: Alert, rule: Rule, transition: Transition, at: float) -> None:
        if not self.notify:
            return
        assert alert.fired_at is not None
        if transition in (Transition.RESOLVED, Transition.WITHDRAWN):
            silenced = alert.muted  # told people hear the end; others nothing
        else:
            silenced = self.silenced(alert, at)
            if transition == Transition.FIRING:
                alert.muted = silenced
            elif not silenced:
                alert.muted = False
        summary, description, extra = _rendered(alert, rule)
        self.outbox.append(
            Notification(
                key=idempotency_key(
                    alert.fingerprint,
                    transition,
                    alert.fired_at,
                    alert.repeats if transition == Transition.REPEAT else alert.reopened,
                ),
                fingerprint=alert.fingerprint,
                rule=alert.rule,
                scope_kind=alert.scope_kind,
                scope=alert.scope,
                site=alert.site,
                severity=alert.severity,
                transition=transition,
                state="resolved" if alert.state == "resolved" else "firing",
                since=alert.since,
                fired_at=alert.fired_at,
                ended_at=alert.ended_at,
                value=_finite(alert.value),
                summary=summary,
                description=description,
                labels=dict(rule.labels),
                sinks=rule.sinks,
                emitted_at=at,
                acknowledged_by=alert.acknowledged_by,
                silenced=silenced,
                summaries=extra,
            )
        )

    def drain(self) -> list[Notification]:
        out, self.outbox = self.outbox, []
        return out

    def listed(self, day_start: Callable[[str], float]) -> list[Alert]:
        """Pending and firing alerts, and those resolved that fired since their site's
        local midnight (``day_start(site)``), in a stable order."""
        out = list(self.active.values())
        out.extend(
            a
            for a in self.history
            if not a.withdrawn and a.fired_at is not None and a.fired_at >= day_start(a.site)
        )
        out.sort(key=lambda a: (a.since, a.rule, a.scope))
        return out

    def prune(self, before: float) -> None:
        """Forget resolved alerts that ended before ``before`` (the history is not in
        ``ended_at`` order: violations end when they end, re-derivation replaces it)."""
        if any((a.ended_at or 0.0) < before for a in self.history):
            self.history = [a for a in self.history if (a.ended_at or 0.0) >= before]

    def state(self) -> EngineState:
        return EngineState(
            active=list(self.active.values()),
            history=list(self.history),
            silences=list(self.silences.values()),
        )

    def restore(self, state: EngineState) -> None:
        self.active = {a.fingerprint: a for a in state.active}
        self.history = list(state.history)
        self.silences = {s.id: s for s in state.silences}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fields(alert: Alert) -> dict[str, object]:
    """What a rule's summary template may name (docs/alerts.md)."""
    return {
        "rule": alert.rule,
        "scope": alert.scope,
        "scope_kind": alert.scope_kind,
        "site": alert.site,
        "severity": alert.severity,
        "value": math.nan if alert.value is None else alert.value,
        "threshold": math.nan if alert.threshold is None else alert.threshold,
        "state": alert.state,
        "since": alert.since,
    }


def _template(text: str, fields: dict[str, object], fallback: str) -> str:
    """``text`` formatted with ``fields``; ``fallback`` if a format spec does not fit the
    value (``{scope:.0%}``): a summary never stops a notification."""
    try:
        return text.format_map(fields)
    except (ValueError, TypeError, KeyError, IndexError):
        return fallback


def _rendered(alert: Alert, rule: Rule) -> tuple[str, str, dict[str, str]]:
    """The summary (the rule's template or the built-in one), no description, and the
    summaries of the rule's other languages."""
    builtin = _summary(alert)
    if rule.summary is None and not rule.summaries:
        return builtin, "", {}
    fields = _fields(alert)
    summary = builtin if rule.summary is None else _template(rule.summary, fields, builtin)
    others = {lang: _template(text, fields, builtin) for lang, text in rule.summaries.items()}
    return summary, "", others


def _summary(alert: Alert) -> str:
    value = "n/a" if alert.value is None else f"{alert.value:.4g}"
    return f"{alert.rule} on {alert.scope_kind} {alert.scope}: {value}"
