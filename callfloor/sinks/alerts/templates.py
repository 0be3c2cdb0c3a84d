"""Webhook bodies and summary texts: what a chat tool or a receiver gets for a notification.

Pure functions, no I/O. :data:`TEMPLATES` maps a webhook sink's ``template`` to its
body renderer:

- ``json``: the :class:`~callfloor.alerts.notification.Notification` itself as JSON
  (every field, ``summaries`` included), for receivers of callfloor's own;
- ``slack``: ``text`` plus one coloured attachment (Slack incoming webhooks and the
  Slack-compatible ones of Mattermost and Rocket.Chat);
- ``teams``: a Microsoft Teams message with an Adaptive Card (Teams workflows'
  "post to a channel when a webhook request is received", and incoming webhooks);
- ``dingtalk``: a DingTalk group robot ``markdown`` message;
- ``wecom``: a WeCom (WeChat Work) group robot ``markdown`` message.

Text is rendered in the sink's ``language`` (:data:`LANGUAGES`): the engine's summary
in that language when the notification has one (:meth:`Notification.summary_in`),
otherwise the built-in text of :func:`builtin_summary`, made from the rule, scope,
severity, transition and value. Times are written in the sink's time zone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from callfloor.alerts.notification import Notification, Transition

__all__ = [
    "LANGUAGES",
    "TEMPLATES",
    "Rendering",
    "builtin_summary",
    "format_time",
    "format_value",
    "headline",
    "render_body",
    "summary_text",
]


@dataclass(frozen=True, slots=True)
class Rendering:
    """How a sink writes text: its language and time zone."""

    language: str = "en"
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class _Texts:
    """The words of one language."""

    severity: Mapping[str, str]
    transition: Mapping[Transition, str]
    scope_kind: Mapping[str, str]
    rule: Mapping[str, str]  # default rules and violation kinds: what they mean
    field: Mapping[str, str]  # field titles in chat messages
    summary: str  # str.format with transition, severity, where, what
    value: str  # appended to the summary when there is a value
    site_suffix: str  # the site after a queue's or agent's name
    between: str  # between where and what (none after a full-width closing parenthesis)
    between_after_site: str
    headline: str  # str.format with transition, summary (the engine's)


# What each default rule (and each violation kind, SPEC §10) measures: how its value reads.
_PERCENT: Final = "percent"
_SECONDS: Final = "seconds"
_COUNT: Final = "count"
RULE_UNITS: Final[Mapping[str, str]] = {
    "sl_low": _PERCENT,
    "abandon_rate_high": _PERCENT,
    "waiting_high": _COUNT,
    "longest_wait_high": _SECONDS,
    "waiting_no_agents": _COUNT,
    "staffing_short": _COUNT,
    "volume_spike": _COUNT,
    "not_ready_exceeded": _SECONDS,
    "wrap_up_exceeded": _SECONDS,
    "not_ready_daily_exceeded": _SECONDS,
    "missed_calls_exceeded": _COUNT,
    "stale_agent": _SECONDS,
    "late_login": _SECONDS,
    "early_logout": _SECONDS,
}

_EN: Final = _Texts(
    severity={
        "info": "info",
        "warning": "warning",
        "minor": "minor",
        "major": "major",
        "critical": "critical",
    },
    transition={
        Transition.FIRING: "FIRING",
        Transition.RESOLVED: "RESOLVED",
        Transition.REPEAT: "STILL FIRING",
        Transition.ESCALATED: "ESCALATED",
        Transition.WITHDRAWN: "WITHDRAWN",
    },
    scope_kind={"queue": "queue", "site": "site", "agent": "agent"},
    rule={
        "sl_low": "service level low",
        "abandon_rate_high": "abandon rate high",
        "waiting_high": "many calls waiting",
        "longest_wait_high": "longest wait high",
        "waiting_no_agents": "calls waiting, no agent available",
        "staffing_short": "fewer agents than required",
        "volume_spike": "call volume spike",
        "not_ready_exceeded": "not ready too long",
        "wrap_up_exceeded": "wrap-up too long",
        "not_ready_daily_exceeded": "daily not-ready time exceeded",
        "missed_calls_exceeded": "too many missed calls",
        "stale_agent": "no agent state for too long",
        "late_login": "late login",
        "early_logout": "early logout",
    },
    field={
        "severity": "Severity",
        "scope": "Scope",
        "site": "Site",
        "value": "Value",
        "since": "Since",
        "fired_at": "Fired at",
        "ended_at": "Ended at",
        "rule": "Rule",
        "acknowledged_by": "Acknowledged by",
        "key": "Key",
    },
    summary="[{transition}] {severity}: {what} on {where}",
    value=": {value}",
    site_suffix=" (site {site})",
    between="",
    between_after_site="",
    headline="[{transition}] {summary}",
)

_ZH: Final = _Texts(
    severity={
        "info": "提示",
        "warning": "警告",
        "minor": "次要",
        "major": "重要",
        "critical": "严重",
    },
    transition={
        Transition.FIRING: "告警",
        Transition.RESOLVED: "已恢复",
        Transition.REPEAT: "持续告警",
        Transition.ESCALATED: "告警升级",
        Transition.WITHDRAWN: "告警撤回",
    },
    scope_kind={"queue": "队列", "site": "站点", "agent": "坐席"},
    rule={
        "sl_low": "服务水平过低",
        "abandon_rate_high": "放弃率过高",
        "waiting_high": "排队来电过多",
        "longest_wait_high": "最长等待时间过长",
        "waiting_no_agents": "有来电排队但无可用坐席",
        "staffing_short": "在岗坐席少于需求",
        "volume_spike": "来电量激增",
        "not_ready_exceeded": "示忙时间过长",
        "wrap_up_exceeded": "话后处理时间过长",
        "not_ready_daily_exceeded": "当日累计示忙超限",
        "missed_calls_exceeded": "未接来电过多",
        "stale_agent": "坐席状态长时间未更新",
        "late_login": "迟到登录",
        "early_logout": "提前登出",
    },
    field={
        "severity": "级别",
        "scope": "范围",
        "site": "站点",
        "value": "当前值",
        "since": "开始于",
        "fired_at": "告警于",
        "ended_at": "恢复于",
        "rule": "规则",
        "acknowledged_by": "已确认",
        "key": "标识",
    },
    # Chinese typography: full-width colon, comma and parentheses.
    summary="【{transition}】{severity}：{where}{what}",  # noqa: RUF001
    value="，当前值 {value}",  # noqa: RUF001
    site_suffix="（站点 {site}）",  # noqa: RUF001
    between=" ",
    between_after_site="",
    headline="【{transition}】{summary}",
)

_TEXTS: Final[Mapping[str, _Texts]] = {"en": _EN, "zh-CN": _ZH}
LANGUAGES: Final[tuple[str, ...]] = tuple(_TEXTS)
"""Languages with built-in texts (a sink's ``language``)."""


def format_value(rule: str, value: float | None, language: str = "en") -> str:
    """A notification's value as its rule measures it (``72.5%``, ``95 s``, ``12``)."""
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    unit = RULE_UNITS.get(rule)
    if unit == _PERCENT:
        return f"{value * 100:.1f}%"
    if unit == _SECONDS:
        return f"{value:.0f} 秒" if language == "zh-CN" else f"{value:.0f} s"
    if unit == _COUNT and value == int(value):
        return str(int(value))
    return f"{value:g}"


def format_time(ts: float | None, timezone: str = "UTC") -> str:
    """An instant in the sink's time zone, ``2026-11-30 09:15:02 CST`` (empty for None)."""
    if ts is None or not math.isfinite(ts):
        return ""
    when = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(timezone))
    return when.strftime("%Y-%m-%d %H:%M:%S %Z")


def _texts(language: str) -> _Texts:
    return _TEXTS.get(language, _EN)


def builtin_summary(n: Notification, language: str = "en") -> str:
    """The built-in one-line summary of ``n`` in ``language`` (English when unknown)."""
    t = _texts(language)
    where = f"{t.scope_kind.get(n.scope_kind, n.scope_kind)} {n.scope}"
    if n.scope_kind != "site":
        where += t.site_suffix.format(site=n.site) + t.between_after_site
    else:
        where += t.between
    text = t.summary.format(
        transition=t.transition.get(n.transition, str(n.transition)),
        severity=t.severity.get(n.severity, n.severity),
        what=t.rule.get(n.rule, n.rule),
        where=where,
    )
    if n.value is not None:
        text += t.value.format(value=format_value(n.rule, n.value, language))
    return text


def summary_text(n: Notification, language: str = "en") -> str:
    """The summary a sink shows: the engine's in ``language``, else the built-in one."""
    found = n.summary_in(language)
    return found if found else builtin_summary(n, language)


def headline(n: Notification, language: str = "en") -> str:
    """A chat message's title: the summary with the transition in front.

    The engine's summary (in ``language``) describes the condition, the same words for
    every notification of the alert; the title says what happened to it
    (``[RESOLVED] ...``, ``【已恢复】...``). The built-in summary says so already.
    """
    found = n.summary_in(language)
    if not found:
        return builtin_summary(n, language)
    t = _texts(language)
    return t.headline.format(
        transition=t.transition.get(n.transition, str(n.transition)), summary=found
    )


def _facts(n: Notification, r: Rendering) -> list[tuple[str, str]]:
    """(title, text) pairs that chat messages list under the summary."""
    t = _texts(r.language)
    facts = [
        (t.field["severity"], t.severity.get(n.severity, n.severity)),
        (t.field["scope"], f"{t.scope_kind.get(n.scope_kind, n.scope_kind)} {n.scope}"),
        (t.field["site"], n.site),
    ]
    if n.value is not None:
        facts.append((t.field["value"], format_value(n.rule, n.value, r.language)))
    facts.append((t.field["since"], format_time(n.since, r.timezone)))
    facts.append((t.field["fired_at"], format_time(n.fired_at, r.timezone)))
    if n.ended_at is not None:
        facts.append((t.field["ended_at"], format_time(n.ended_at, r.timezone)))
    if n.acknowledged_by:
        facts.append((t.field["acknowledged_by"], n.acknowledged_by))
    facts.append((t.field["rule"], n.rule))
    return facts


def _ok(n: Notification) -> bool:
    """Good news: the alert ended (resolved or withdrawn)."""
    return n.transition in (Transition.RESOLVED, Transition.WITHDRAWN)


# Colours: green once ended, else by severity.
_HEX: Final[Mapping[str, str]] = {
    "info": "#439FE0",
    "warning": "#F2A900",
    "minor": "#F2A900",
    "major": "#E01E5A",
    "critical": "#D00000",
}
_GOOD_HEX: Final = "#2EB886"


def _colour(n: Notification) -> str:
    return _GOOD_HEX if _ok(n) else _HEX.get(n.severity, "#F2A900")


_encode: Final = msgspec.json.Encoder().encode


def _json(n: Notification, r: Rendering) -> bytes:
    return _encode(n)


def _slack(n: Notification, r: Rendering) -> bytes:
    summary = headline(n, r.language)
    fields = [{"title": title, "value": text, "short": True} for title, text in _facts(n, r)]
    attachment: dict[str, Any] = {
        "fallback": summary,
        "color": _colour(n),
        "title": summary,
        "text": n.description,
        "fields": fields,
        "footer": f"callfloor · {n.key}",
        "ts": int(n.ended_at if n.ended_at is not None else n.fired_at),
    }
    return _encode({"text": summary, "attachments": [attachment]})


def _teams(n: Notification, r: Rendering) -> bytes:
    summary = headline(n, r.language)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": summary,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Good" if _ok(n) else "Attention",
        }
    ]
    if n.description:
        body.append({"type": "TextBlock", "text": n.description, "wrap": True})
    body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(n, r)]})
    body.append(
        {"type": "TextBlock", "text": f"callfloor · {n.key}", "isSubtle": True, "size": "Small"}
    )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return _encode({"type": "message", "summary": summary, "attachments": [attachment]})


def _markdown_lines(n: Notification, r: Rendering) -> list[str]:
    """The description as a quote, the facts as a list, and the key (robot markdown)."""
    lines = [f"> {n.description}", ""] if n.description else []
    lines += [f"- **{title}**: {text}" for title, text in _facts(n, r)]
    lines += ["", f"callfloor · {n.key}"]
    return lines


def _dingtalk(n: Notification, r: Rendering) -> bytes:
    summary = headline(n, r.language)
    head = f'#### <font color="{_colour(n)}">{summary}</font>'
    text = "\n".join([head, "", *_markdown_lines(n, r)])
    return _encode({"msgtype": "markdown", "markdown": {"title": summary, "text": text}})


def _wecom(n: Notification, r: Rendering) -> bytes:
    summary = headline(n, r.language)
    # WeCom markdown knows three colours: info (green), comment (grey), warning (orange-red).
    tone = "info" if _ok(n) else "warning"
    head = f'**<font color="{tone}">{summary}</font>**'
    content = "\n".join([head, *_markdown_lines(n, r)])
    return _encode({"msgtype": "markdown", "markdown": {"content": content}})


Template = Callable[[Notification, Rendering], bytes]

TEMPLATES: Final[Mapping[str, Template]] = {
    "json": _json,
    "slack": _slack,
    "teams": _teams,
    "dingtalk": _dingtalk,
    "wecom": _wecom,
}
"""Webhook body templates by name."""


def render_body(template: str, n: Notification, rendering: Rendering = Rendering()) -> bytes:
    """The webhook body of ``n`` with ``template`` (a key of :data:`TEMPLATES`)."""
    return TEMPLATES[template](n, rendering)
