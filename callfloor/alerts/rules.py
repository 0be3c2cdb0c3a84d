"""Alert rules: the ``[alerts]`` configuration (SPEC §5, §10) and the default rules.

Pure data and validation, no I/O. A rule watches a scope (``queues:GLOB``,
``sites:GLOB``, ``agents:GLOB``) and conditions that must all hold. A condition reads a
*window metric* (``service_level`` over ``15m``: any window length, not only the
configured ones, plus ``interval`` and ``today``) or a *live value* (``waiting``,
``longest_wait_s``, ``agents_available``, ...), compares it with ``op`` and a
threshold. A threshold is a number or a reference scaled by a factor, resolved per
scope: ``"sl_target"`` (the queue's own target), ``"2 * agents_available"``,
``"2 * sl_threshold_s"``, ``"2 * arrival_rate_per_s@60m"`` (another window). So the
default rules take each queue's own target, as ``callfloor rules check`` prints.

Violation rules (one per violation kind, rule name = the kind) raise an alert per
agent violation of SPEC §4: it fires when the violation starts and resolves when it
ends, with the violation's severity.

Every error names the file, the key (``alerts.rules[2].when[0].op``) and the problem,
as everywhere in the configuration.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from callfloor.alerts.notification import SEVERITIES

if TYPE_CHECKING:
    from callfloor.config import _Ctx as Ctx

__all__ = [
    "AGENT_METRICS",
    "DEFAULT_RULE_NAMES",
    "LIVE_METRICS",
    "OPS",
    "SITE_LIVE_METRICS",
    "VIOLATION_KINDS",
    "WINDOW_METRICS",
    "AlertsConfig",
    "Condition",
    "Escalation",
    "Rule",
    "Threshold",
    "default_rules",
    "parse_alerts",
]

# The counts are those of callfloor.processors.windows.COUNT_NAMES, written out: config
# imports this module before the processors can be imported (test_rules checks them).
WINDOW_METRICS: Final[tuple[str, ...]] = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "dequeued",
    "sl_offered",
    "answered_in_sl",
    "abandoned_in_sl",
    "handled",
    "service_level",
    "abandon_rate",
    "asa_s",
    "max_wait_s",
    "aht_s",
    "arrival_rate_per_s",  # offered / the window's length (rolling windows)
)
"""Metrics read over a window (``window`` required)."""

LIVE_METRICS: Final[tuple[str, ...]] = (
    "waiting",
    "longest_wait_s",
    "agents_available",
    "agents_ringing",
    "agents_on_call",
    "agents_wrap_up",
    "agents_not_ready",
    "agents_staffed",
    "occupancy",
    "arrival_rate_per_s",
    "required_agents",
    "projected_service_level",
)
"""A queue's live values (no ``window``)."""

SITE_LIVE_METRICS: Final[tuple[str, ...]] = tuple(
    m for m in LIVE_METRICS if m not in ("required_agents", "projected_service_level")
)
"""A site's live values (no ``window``): a queue's but the Erlang C ones."""

AGENT_METRICS: Final[tuple[str, ...]] = (
    "not_ready_today_s",
    "answered_today",
    "missed_today",
    "handled_today",
    "aht_today_s",
    "offered_today",
    "answer_rate_today",
)
"""An agent's values since site-local midnight (SPEC §4 and the agent view)."""

POLICY_REFS: Final[tuple[str, ...]] = ("sl_target", "sl_threshold_s", "short_abandon_s")
"""A queue's policy values a threshold may refer to (sites: the default voice policy)."""

VIOLATION_KINDS: Final[tuple[str, ...]] = (
    "not_ready_exceeded",
    "wrap_up_exceeded",
    "not_ready_daily_exceeded",
    "missed_calls_exceeded",
    "stale_agent",
    "late_login",
    "early_logout",
)

OPS: Final[tuple[str, ...]] = ("<", "<=", ">", ">=")

DEFAULT_RULE_NAMES: Final[tuple[str, ...]] = (
    "sl_low",
    "abandon_rate_high",
    "waiting_high",
    "longest_wait_high",
    "waiting_no_agents",
    "staffing_short",
    "volume_spike",
    *VIOLATION_KINDS,
)

_SCOPE_KINDS: Final[dict[str, str]] = {"queues": "queue", "sites": "site", "agents": "agent"}
_DURATION_LABEL = re.compile(r"^\d+(\.\d+)?[smh]$")
_THRESHOLD = re.compile(
    r"^\s*(?:(?P<factor>[0-9]+(?:\.[0-9]+)?)\s*\*\s*)?(?P<ref>[a-z_]+)(?:@(?P<window>[0-9a-z.]+))?\s*$"
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A number, or ``factor * ref`` resolved per scope (``ref`` a metric or a policy
    value, ``window`` the window of a window metric)."""

    constant: float | None = None
    factor: float = 1.0
    ref: str | None = None
    window: str | None = None

    def __str__(self) -> str:
        if self.ref is None:
            return f"{self.constant:g}"
        scaled = self.ref + (f"@{self.window}" if self.window else "")
        return scaled if self.factor == 1.0 else f"{self.factor:g} * {scaled}"


@dataclass(frozen=True, slots=True)
class Condition:
    """``metric`` (over ``window`` when a window metric) ``op`` ``threshold``."""

    metric: str
    window: str | None
    op: str
    threshold: Threshold

    def describe(self) -> str:
        where = f"[{self.window}]" if self.window else ""
        return f"{self.metric}{where} {self.op} {self.threshold}"


@dataclass(frozen=True, slots=True)
class Escalation:
    """After the alert has fired for ``after_s``, its severity becomes ``severity``."""

    after_s: float
    severity: str


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule (see the module docstring)."""

    name: str
    scope_kind: str  # "queue", "site" or "agent"
    glob: str
    conditions: tuple[Condition, ...] = ()
    clear: Threshold | None = None  # for the first condition
    for_s: float = 0.0
    min_volume: int = 0
    volume_window: str | None = None  # the window min_volume reads sl_offered over
    severity: str = "warning"
    escalate: Escalation | None = None
    repeat_s: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    summaries: Mapping[str, str] = field(default_factory=dict)
    sinks: tuple[str, ...] | None = None
    violation: str | None = None  # a violation rule: the kind it raises alerts for
    default: bool = False

    def covers(self, name: str) -> bool:
        """Whether the scope glob matches ``name`` (case-sensitive)."""
        return self.glob == "*" or fnmatch.fnmatchcase(name, self.glob)

    def windows(self) -> set[str]:
        """Every window the rule reads (conditions, thresholds, clear, min_volume)."""
        out = {c.window for c in self.conditions if c.window}
        out |= {c.threshold.window for c in self.conditions if c.threshold.window}
        if self.clear is not None and self.clear.window:
            out.add(self.clear.window)
        if self.volume_window:
            out.add(self.volume_window)
        return out


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """``[alerts]``: the rules in force (defaults first, then the configured ones)."""

    rules: tuple[Rule, ...] = ()
    default_rules: bool = True
    notify_backfill_s: float = 600.0
    sinks: Mapping[str, object] = field(default_factory=dict)  # SinkConfig by name


def _t(
    constant: float | None = None,
    factor: float = 1.0,
    ref: str | None = None,
    window: str | None = None,
) -> Threshold:
    return Threshold(constant=constant, factor=factor, ref=ref, window=window)


def default_rules(window: str) -> tuple[Rule, ...]:
    """The default rules of SPEC §10 over ``window`` (``15m`` when configured).

    Thresholds come from each queue's own policy (``sl_target``, ``sl_threshold_s``);
    the choices the spec leaves open are in docs/alerts.md.
    """
    q = "queue"
    return (
        Rule(
            "sl_low",
            q,
            "*",
            (Condition("service_level", window, "<", _t(ref="sl_target")),),
            clear=_t(ref="sl_target"),
            for_s=120.0,
            min_volume=10,
            volume_window=window,
            severity="warning",
            escalate=Escalation(600.0, "critical"),
            default=True,
        ),
        Rule(
            "abandon_rate_high",
            q,
            "*",
            (Condition("abandon_rate", window, ">", _t(0.05)),),
            clear=_t(0.04),
            for_s=120.0,
            min_volume=10,
            volume_window=window,
            severity="warning",
            default=True,
        ),
        Rule(
            "waiting_high",
            q,
            "*",
            (Condition("waiting", None, ">", _t(factor=2.0, ref="agents_available")),),
            for_s=60.0,
            severity="warning",
            default=True,
        ),
        Rule(
            "longest_wait_high",
            q,
            "*",
            (Condition("longest_wait_s", None, ">", _t(factor=2.0, ref="sl_threshold_s")),),
            severity="warning",
            default=True,
        ),
        Rule(
            "waiting_no_agents",
            q,
            "*",
            (
                Condition("waiting", None, ">", _t(0.0)),
                Condition("agents_available", None, "<=", _t(0.0)),
            ),
            for_s=30.0,
            severity="critical",
            default=True,
        ),
        Rule(
            "staffing_short",
            q,
            "*",
            (Condition("required_agents", None, ">", _t(ref="agents_staffed")),),
            for_s=300.0,
            severity="warning",
            default=True,
        ),
        Rule(
            "volume_spike",
            q,
            "*",
            (
                Condition(
                    "arrival_rate_per_s",
                    "5m",
                    ">",
                    _t(factor=2.0, ref="arrival_rate_per_s", window="60m"),
                ),
                Condition("offered", "5m", ">=", _t(10.0)),
            ),
            severity="info",
            default=True,
        ),
        *(
            Rule(kind, "agent", "*", severity="warning", violation=kind, default=True)
            for kind in VIOLATION_KINDS
        ),
    )


# ----------------------------------------------------------------------------- parsing

_RULE_KEYS: Final[tuple[str, ...]] = (
    "name",
    "scope",
    "when",
    "clear",
    "for",
    "min_volume",
    "volume_window",
    "severity",
    "escalate",
    "repeat",
    "labels",
    "summary",
    "summaries",
    "sinks",
)
_ALERTS_KEYS: Final[tuple[str, ...]] = (
    "alertmanager_url",
    "default_rules",
    "default_window",
    "notify_backfill",
    "rules",
    "sinks",
    "disable",
)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS: Final = frozenset({"alertname", "severity", "site", "queue", "agent"})
_TEMPLATE_FIELDS: Final = frozenset(
    {"rule", "scope", "scope_kind", "site", "severity", "value", "threshold", "state", "since"}
)
_FIELD = re.compile(r"\{([^{}]*)\}")


def _window(ctx: Ctx, value: object, key: str, labels: Sequence[str]) -> str:
    text = ctx.string(value, key)
    if text in ("interval", "today") or text in labels:
        return text
    if not _DURATION_LABEL.match(text):
        raise ctx.error(key, f'expected a window like "15m", "interval" or "today", got {text!r}')
    width = ctx.duration(text, key)
    if width <= 0 or width > 24 * 3600:
        raise ctx.error(key, f"a window must be longer than 0 and at most 24h, got {text!r}")
    return text


def _threshold(
    ctx: Ctx, value: object, key: str, scope_kind: str, labels: Sequence[str]
) -> Threshold:
    if isinstance(value, bool):
        raise ctx.error(key, 'expected a number or a reference like "2 * agents_available"')
    if isinstance(value, int | float):
        if not math.isfinite(value):
            # TOML has nan and inf: a rule comparing with nan never fires, one with an
            # infinity always or never does, and nobody is told.
            raise ctx.error(key, f"expected a finite number, got {value}")
        return Threshold(constant=float(value))
    if not isinstance(value, str):
        raise ctx.error(key, 'expected a number or a reference like "2 * agents_available"')
    m = _THRESHOLD.match(value)
    if m is None:
        raise ctx.error(key, f'expected a number or "[FACTOR *] NAME[@WINDOW]", got {value!r}')
    ref = m.group("ref")
    window = m.group("window")
    factor = float(m.group("factor") or 1.0)
    if not math.isfinite(factor):
        raise ctx.error(key, f"expected a finite factor, got {m.group('factor')}")
    if window is not None:
        if ref not in WINDOW_METRICS or scope_kind == "agent":
            raise ctx.error(key, f"{ref!r} is not a window metric of a {scope_kind}")
        window = _window(ctx, window, key, labels)
    elif not _known_value(ref, scope_kind):
        raise ctx.error(key, f"unknown reference {ref!r} for a {scope_kind} rule")
    return Threshold(factor=factor, ref=ref, window=window)


def _known_value(name: str, scope_kind: str) -> bool:
    if scope_kind == "queue":
        return name in LIVE_METRICS or name in POLICY_REFS
    if scope_kind == "site":
        return name in SITE_LIVE_METRICS or name in POLICY_REFS
    return name in AGENT_METRICS


def _condition(
    ctx: Ctx, raw: object, key: str, scope_kind: str, labels: Sequence[str]
) -> Condition:
    table = ctx.table(raw, key)
    ctx.check_keys(table, ("metric", "window", "op", "value"), key)
    if "metric" not in table:
        raise ctx.error(f"{key}.metric", "missing")
    if "value" not in table:
        raise ctx.error(f"{key}.value", "missing")
    metric = ctx.string(table["metric"], f"{key}.metric")
    window = None
    if "window" in table:
        if scope_kind == "agent" or metric not in WINDOW_METRICS:
            raise ctx.error(f"{key}.window", f"{metric!r} is not read over a window")
        window = _window(ctx, table["window"], f"{key}.window", labels)
    elif scope_kind == "agent":
        if metric not in AGENT_METRICS:
            raise ctx.error(
                f"{key}.metric",
                f"unknown agent metric {metric!r} (known: {', '.join(AGENT_METRICS)})",
            )
    else:
        live = LIVE_METRICS if scope_kind == "queue" else SITE_LIVE_METRICS
        if metric in WINDOW_METRICS and metric not in live:
            raise ctx.error(f"{key}.window", f'{metric!r} needs a window ("15m", "today", ...)')
        if metric not in live:
            known = sorted(set(live) | set(WINDOW_METRICS))
            raise ctx.error(
                f"{key}.metric", f"unknown metric {metric!r} (known: {', '.join(known)})"
            )
    op = ctx.choice(table.get("op", ">"), f"{key}.op", OPS)
    threshold = _threshold(ctx, table["value"], f"{key}.value", scope_kind, labels)
    _not_itself(ctx, f"{key}.value", metric, window, threshold)
    return Condition(metric, window, op, threshold)


def _not_itself(ctx: Ctx, key: str, metric: str, window: str | None, threshold: Threshold) -> None:
    """Refuse a threshold that is the compared value itself (``waiting > 2 * waiting``):
    the comparison then depends on the value's sign only, never what was meant."""
    if threshold.ref == metric and threshold.window == window:
        shown = metric if window is None else f"{metric}@{window}"
        raise ctx.error(
            key,
            f"the threshold refers to the value it is compared with ({shown}); "
            "compare with another metric or another window",
        )


def _check_template(ctx: Ctx, text: str, key: str) -> str:
    for name in _FIELD.findall(text):
        field_name = name.split(":", 1)[0]
        if field_name not in _TEMPLATE_FIELDS:
            raise ctx.error(
                key,
                f"unknown field {{{name}}} (known: {', '.join(sorted(_TEMPLATE_FIELDS))})",
            )
    return text


def _rule(ctx: Ctx, raw: object, key: str, labels: Sequence[str], window: str) -> Rule:
    table = ctx.table(raw, key)
    ctx.check_keys(table, _RULE_KEYS, key)
    if "name" not in table:
        raise ctx.error(f"{key}.name", "missing")
    name = ctx.string(table["name"], f"{key}.name")
    if not _LABEL_NAME.match(name):
        raise ctx.error(f"{key}.name", f"use letters, digits and _ only, got {name!r}")
    scope = ctx.string(table.get("scope", "queues:*"), f"{key}.scope")
    kind_word, _, glob = scope.partition(":")
    if kind_word not in _SCOPE_KINDS or not glob:
        raise ctx.error(
            f"{key}.scope", f"expected queues:GLOB, sites:GLOB or agents:GLOB, got {scope!r}"
        )
    scope_kind = _SCOPE_KINDS[kind_word]
    raw_when = table.get("when")
    if raw_when is None:
        raise ctx.error(f"{key}.when", "missing: a rule needs at least one condition")
    if isinstance(raw_when, dict):
        raw_when = [raw_when]
    if not isinstance(raw_when, list) or not raw_when:
        raise ctx.error(f"{key}.when", "expected an array of conditions")
    conditions = tuple(
        _condition(ctx, c, f"{key}.when[{i}]", scope_kind, labels) for i, c in enumerate(raw_when)
    )
    clear = None
    if "clear" in table:
        clear = _threshold(ctx, table["clear"], f"{key}.clear", scope_kind, labels)
        first = conditions[0]
        _not_itself(ctx, f"{key}.clear", first.metric, first.window, clear)
        if clear.ref is None and first.threshold.ref is None:
            assert clear.constant is not None and first.threshold.constant is not None
            below = first.op in ("<", "<=")
            if below and clear.constant < first.threshold.constant:
                raise ctx.error(
                    f"{key}.clear",
                    f"for {first.op} the clear level must be at or above the threshold "
                    f"({first.threshold.constant:g}), got {clear.constant:g}",
                )
            if not below and clear.constant > first.threshold.constant:
                raise ctx.error(
                    f"{key}.clear",
                    f"for {first.op} the clear level must be at or below the threshold "
                    f"({first.threshold.constant:g}), got {clear.constant:g}",
                )
    for_s = ctx.duration(table.get("for", "0s"), f"{key}.for")
    min_volume = ctx.integer(table.get("min_volume", 0), f"{key}.min_volume", 0)
    volume_window = None
    if min_volume:
        if scope_kind == "agent":
            raise ctx.error(f"{key}.min_volume", "agent rules have no volume")
        default_vw = next((c.window for c in conditions if c.window), window)
        volume_window = _window(
            ctx, table.get("volume_window", default_vw), f"{key}.volume_window", labels
        )
    elif "volume_window" in table:
        raise ctx.error(f"{key}.volume_window", "only with min_volume")
    severity = ctx.choice(table.get("severity", "warning"), f"{key}.severity", SEVERITIES)
    escalate = None
    if "escalate" in table:
        etable = ctx.table(table["escalate"], f"{key}.escalate")
        ctx.check_keys(etable, ("after", "severity"), f"{key}.escalate")
        if "after" not in etable or "severity" not in etable:
            raise ctx.error(f"{key}.escalate", "needs after and severity")
        after = ctx.duration(etable["after"], f"{key}.escalate.after")
        esev = ctx.choice(etable["severity"], f"{key}.escalate.severity", SEVERITIES)
        if SEVERITIES.index(esev) <= SEVERITIES.index(severity):
            raise ctx.error(
                f"{key}.escalate.severity", f"must be above the rule's severity ({severity})"
            )
        escalate = Escalation(after, esev)
    repeat = None
    if "repeat" in table:
        repeat = ctx.duration(table["repeat"], f"{key}.repeat")
        if repeat < 60:
            raise ctx.error(f"{key}.repeat", "at least 1m (repeats are for people)")
    labels_out: dict[str, str] = {}
    for lname, lvalue in ctx.table(table.get("labels", {}), f"{key}.labels").items():
        if not _LABEL_NAME.match(lname) or lname.startswith("__"):
            raise ctx.error(f"{key}.labels.{lname}", "not a valid label name")
        if lname in _RESERVED_LABELS:
            raise ctx.error(f"{key}.labels.{lname}", "callfloor sets this label itself")
        labels_out[lname] = ctx.string(lvalue, f"{key}.labels.{lname}")
    summary = None
    if "summary" in table:
        summary = _check_template(
            ctx, ctx.string(table["summary"], f"{key}.summary"), f"{key}.summary"
        )
    summaries = {
        lang: _check_template(
            ctx, ctx.string(text, f"{key}.summaries.{lang}"), f"{key}.summaries.{lang}"
        )
        for lang, text in ctx.table(table.get("summaries", {}), f"{key}.summaries").items()
    }
    sinks = None
    if "sinks" in table:
        raw_sinks = table["sinks"]
        if not isinstance(raw_sinks, list) or not all(isinstance(s, str) and s for s in raw_sinks):
            raise ctx.error(f"{key}.sinks", "expected an array of sink names")
        sinks = tuple(raw_sinks)
    return Rule(
        name,
        scope_kind,
        glob,
        conditions,
        clear,
        for_s,
        min_volume,
        volume_window,
        severity,
        escalate,
        repeat,
        labels_out,
        summary,
        summaries,
        sinks,
    )


def parse_alerts(
    ctx: Ctx, table: Mapping[str, object], window_labels: Sequence[str]
) -> AlertsConfig:
    """``[alerts]`` validated; ``window_labels``: the configured rolling windows."""
    ctx.check_keys(table, _ALERTS_KEYS, "alerts")
    use_defaults = ctx.boolean(table.get("default_rules", True), "alerts.default_rules")
    window = "15m" if "15m" in window_labels else window_labels[0]
    if "default_window" in table:
        window = _window(ctx, table["default_window"], "alerts.default_window", window_labels)
    backfill = ctx.duration(table.get("notify_backfill", "10m"), "alerts.notify_backfill")
    disabled: set[str] = set()
    raw_disable = table.get("disable", [])
    if not isinstance(raw_disable, list) or not all(isinstance(d, str) for d in raw_disable):
        raise ctx.error("alerts.disable", "expected an array of default rule names")
    for i, name in enumerate(raw_disable):
        if name not in DEFAULT_RULE_NAMES:
            raise ctx.error(
                f"alerts.disable[{i}]",
                f"no default rule {name!r} (defaults: {', '.join(DEFAULT_RULE_NAMES)})",
            )
        disabled.add(name)
    raw_rules = table.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ctx.error("alerts.rules", "expected an array of tables ([[alerts.rules]])")
    configured = [
        _rule(ctx, raw, f"alerts.rules[{i}]", window_labels, window)
        for i, raw in enumerate(raw_rules)
    ]
    seen: set[str] = set()
    for i, rule in enumerate(configured):
        if rule.name in seen:
            raise ctx.error(f"alerts.rules[{i}].name", f"a second rule named {rule.name!r}")
        seen.add(rule.name)
    defaults = [
        r
        for r in (default_rules(window) if use_defaults else ())
        if r.name not in seen and r.name not in disabled
    ]
    sinks: dict[str, object] = {}
    if "sinks" in table or "alertmanager_url" in table:
        from callfloor.sinks.alerts.registry import parse_sinks

        sinks = dict(
            parse_sinks(
                ctx.table(table.get("sinks", {}), "alerts.sinks"),
                ctx.source,
                alertmanager_url=table.get("alertmanager_url"),
            )
        )
    known_sinks = set(sinks)
    for i, rule in enumerate(configured):
        for s in rule.sinks or ():
            if s not in known_sinks:
                raise ctx.error(
                    f"alerts.rules[{i}].sinks",
                    f"no sink named {s!r} (configured: {', '.join(sorted(known_sinks)) or 'none'})",
                )
    return AlertsConfig(
        rules=(*defaults, *configured),
        default_rules=use_defaults,
        notify_backfill_s=backfill,
        sinks=sinks,
    )
