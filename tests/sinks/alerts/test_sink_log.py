"""The log sink: one structured line per notification."""

# ruff: noqa: RUF001 (Chinese text uses full-width punctuation)

from __future__ import annotations

import logging

import pytest
from sink_util import ended, notification

from callfloor.sinks.alerts.registry import create_sinks, parse_sinks


async def test_a_firing_warning_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """key=value fields on the callfloor.alerts logger, at WARNING while firing."""
    [sink] = create_sinks(parse_sinks({"log": {"kind": "log"}}))
    n = notification()
    with caplog.at_level(logging.INFO, logger="callfloor.alerts"):
        await sink.deliver(n)
        await sink.deliver(ended(n))
    firing, resolved = caplog.records
    assert firing.levelno == logging.WARNING and firing.name == "callfloor.alerts"
    text = firing.getMessage()
    assert text.startswith(f"alert_notification key={n.key} transition=firing rule=sl_low ")
    assert "scope='sales' site='sh' severity=warning state=firing value=0.72" in text
    assert f"summary={n.summary!r}" in text
    assert resolved.levelno == logging.INFO
    assert "transition=resolved" in resolved.getMessage()


async def test_the_summary_is_in_the_sinks_language(caplog: pytest.LogCaptureFixture) -> None:
    """language = "zh-CN" logs the Chinese summary."""
    [sink] = create_sinks(parse_sinks({"log": {"kind": "log", "language": "zh-CN"}}))
    with caplog.at_level(logging.INFO, logger="callfloor.alerts"):
        await sink.deliver(notification(severity="info"))
    [record] = caplog.records
    assert record.levelno == logging.INFO  # info alerts are not warnings
    assert "summary='【告警】提示：队列 sales" in record.getMessage()
