"""Webhook body templates and summary texts (en, zh-CN)."""

# ruff: noqa: RUF001 (Chinese text uses full-width punctuation)

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sink_util import ended, notification

from callfloor.alerts.notification import SEVERITIES, Notification, Transition
from callfloor.sinks.alerts.templates import (
    LANGUAGES,
    TEMPLATES,
    Rendering,
    builtin_summary,
    format_value,
    headline,
    render_body,
    summary_text,
)

_text = st.text(max_size=40)
_name = st.text(min_size=1, max_size=20)
notifications = st.builds(
    notification,
    st.sampled_from(list(Transition)),
    fingerprint=_name,
    rule=st.one_of(st.sampled_from(["sl_low", "longest_wait_high", "waiting_high"]), _name),
    scope_kind=st.sampled_from(["queue", "site", "agent"]),
    scope=_name,
    site=_name,
    severity=st.sampled_from(SEVERITIES),
    fired_at=st.floats(0, 4e9),
    value=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    emitted_at=st.floats(0, 4e9),
    summary=_text,
    description=_text,
    labels=st.dictionaries(_name, _text, max_size=3),
    summaries=st.dictionaries(st.sampled_from(LANGUAGES), _text, max_size=2),
    acknowledged_by=st.one_of(st.none(), _name),
)


@given(
    n=notifications,
    template=st.sampled_from(sorted(TEMPLATES)),
    language=st.sampled_from(LANGUAGES),
    timezone=st.sampled_from(["UTC", "Asia/Shanghai", "America/Mexico_City"]),
)
def test_every_template_renders_json_for_any_notification(
    n: Notification, template: str, language: str, timezone: str
) -> None:
    """Whatever the notification holds, each template gives a JSON object."""
    body = render_body(template, n, Rendering(language, timezone))
    assert isinstance(msgspec.json.decode(body), dict)


def test_the_json_template_is_the_notification() -> None:
    """json decodes back to the very notification."""
    n = notification(summaries={"zh-CN": "服务水平低"})
    assert msgspec.json.decode(render_body("json", n), type=Notification) == n


def test_the_builtin_chinese_summary() -> None:
    """zh-CN without the engine's text: transition, severity, scope, site, meaning, value."""
    n = notification()
    assert (
        builtin_summary(n, "zh-CN")
        == "【告警】警告：队列 sales（站点 sh）服务水平过低，当前值 72.0%"
    )
    assert builtin_summary(ended(n), "zh-CN").startswith("【已恢复】")
    site = notification(scope_kind="site", scope="sh", rule="waiting_high", value=12.0)
    assert builtin_summary(site, "zh-CN") == "【告警】警告：站点 sh 排队来电过多，当前值 12"


def test_the_builtin_english_summary() -> None:
    """en: the same facts in English."""
    n = notification(rule="longest_wait_high", value=95.4, severity="critical")
    assert (
        builtin_summary(n) == "[FIRING] critical: longest wait high on queue sales (site sh): 95 s"
    )


def test_the_engines_summary_wins_in_its_language() -> None:
    """summary for en, summaries[lang] for others; the built-in text only when missing."""
    n = notification(summary="SL 72% on sales", summaries={"zh-CN": "销售队列服务水平 72%"})
    assert summary_text(n, "en") == "SL 72% on sales"
    assert summary_text(n, "zh-CN") == "销售队列服务水平 72%"
    assert headline(ended(n), "zh-CN") == "【已恢复】销售队列服务水平 72%"
    bare = notification(summary="", summaries={})
    assert summary_text(bare, "en") == builtin_summary(bare, "en")
    assert summary_text(bare, "zh-CN") == builtin_summary(bare, "zh-CN")


@pytest.mark.parametrize(
    ("rule", "value", "language", "text"),
    [
        ("sl_low", 0.725, "en", "72.5%"),
        ("abandon_rate_high", 0.1, "zh-CN", "10.0%"),
        ("longest_wait_high", 95.4, "en", "95 s"),
        ("not_ready_exceeded", 700.0, "zh-CN", "700 秒"),
        ("waiting_high", 12.0, "en", "12"),
        ("custom", 1.5, "en", "1.5"),
        ("custom", None, "en", ""),
    ],
)
def test_values_read_as_their_rule_measures(
    rule: str, value: float | None, language: str, text: str
) -> None:
    """Ratios as percentages, durations in seconds, counts as integers."""
    assert format_value(rule, value, language) == text


@pytest.mark.parametrize(
    ("transition", "colour"),
    [(Transition.FIRING, "#F2A900"), (Transition.RESOLVED, "#2EB886")],
)
def test_slack_colour_says_firing_or_ended(transition: Transition, colour: str) -> None:
    """Firing warnings are amber, ended alerts green."""
    n = notification()
    subject = n if transition is Transition.FIRING else ended(n)
    body: dict[str, Any] = msgspec.json.decode(render_body("slack", subject))
    assert body["attachments"][0]["color"] == colour
