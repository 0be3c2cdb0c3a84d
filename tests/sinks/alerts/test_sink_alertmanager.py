"""The Alertmanager sink against a real prometheus-alertmanager process."""

# ruff: noqa: RUF001 (Chinese text uses full-width punctuation)

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fixtures.alertmanager import Alertmanager
from sink_util import ended, hang, notification, receiver, status
from waiting import until

from callfloor.alerts.notification import Notification, Transition
from callfloor.sinks.alerts.alertmanager import AlertmanagerSink, alert_labels
from callfloor.sinks.alerts.outbox import Outbox
from callfloor.sinks.alerts.registry import create_sinks, parse_sinks


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Alertmanager]:
    with Alertmanager(tmp_path) as running:
        yield running


def sink_for(am: Alertmanager, **table: Any) -> AlertmanagerSink:
    """The sink [alerts] alertmanager_url builds, or a [alerts.sinks.am] table's."""
    if table:
        tables = {"am": {"kind": "alertmanager", "url": am.url, **table}}
        [sink] = create_sinks(parse_sinks(tables))
    else:
        [sink] = create_sinks(parse_sinks({}, alertmanager_url=am.url))
    assert isinstance(sink, AlertmanagerSink)
    return sink


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def now_firing(am: Alertmanager, **filters: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts(**filters) if a["status"]["state"] == "active"]


async def test_a_firing_alert_appears_with_its_labels_then_resolves(am: Alertmanager) -> None:
    """Firing: listed with alertname, severity, site, queue and the annotations; resolved:
    gone at once (its endsAt is the resolve time, not the lease minutes ahead)."""
    sink = sink_for(am)
    n = notification(fired_at=time.time() - 30)
    try:
        await sink.deliver(n)
        await until(lambda: now_firing(am), what="the alert listed")
        [alert] = now_firing(am)
        assert alert["labels"] == {
            "alertname": "sl_low",
            "severity": "warning",
            "site": "sh",
            "queue": "sales",
            "team": "blue",
        }
        assert alert["annotations"]["summary"] == n.summary
        assert alert["annotations"]["description"] == n.description
        assert alert["annotations"]["value"] == "72.0%"
        assert when(alert["startsAt"]) == pytest.approx(n.fired_at, abs=0.001)
        assert when(alert["endsAt"]) > time.time() + 60  # the lease: 3 x refresh (60 s)
        await sink.deliver(ended(n, ended_at=time.time()))
        # Gone long before the lease (over 60 s ahead) could have lapsed.
        await until(lambda: not am.alerts(), timeout=10, what="the alert resolved")
    finally:
        await sink.close()


async def test_agent_and_site_alerts_are_labelled_by_their_scope(am: Alertmanager) -> None:
    """An agent alert has an agent label; a site alert only its site."""
    sink = sink_for(am)
    try:
        await sink.deliver(
            notification(
                fingerprint="a", rule="not_ready_exceeded", scope_kind="agent", scope="a17"
            )
        )
        await sink.deliver(notification(fingerprint="s", scope_kind="site", scope="sh"))
        await until(lambda: len(am.alerts()) == 2)
    finally:
        await sink.close()
    labels = {a["labels"]["alertname"]: a["labels"] for a in am.alerts()}
    assert labels["not_ready_exceeded"]["agent"] == "a17"
    assert "queue" not in labels["sl_low"] and "agent" not in labels["sl_low"]
    assert labels["sl_low"]["site"] == "sh"


async def test_firing_alerts_are_reposted_before_their_lease_lapses(am: Alertmanager) -> None:
    """With refresh = 1 s (a 3 s lease) the alert is still firing after 5 s, its endsAt moved."""
    sink = sink_for(am, refresh="1s")
    outbox = Outbox([sink])
    await outbox.start()
    try:
        outbox.submit(notification())
        await until(lambda: now_firing(am), what="the alert listed")
        first_end = when(now_firing(am)[0]["endsAt"])
        assert first_end < time.time() + 4
        began = time.monotonic()
        while time.monotonic() - began < 5:
            assert now_firing(am), "the alert lapsed while firing"
            await asyncio.sleep(0.1)
        assert when(now_firing(am)[0]["endsAt"]) > first_end + 2
    finally:
        await outbox.close()
    assert outbox.stats.refresh_errors_total == {"am": 0}


async def test_a_stopped_callfloor_lets_its_alerts_lapse(am: Alertmanager) -> None:
    """Without the refresh (the process died) the alert ends at its endsAt by itself."""
    sink = sink_for(am, refresh="1s")
    try:
        await sink.deliver(notification())
    finally:
        await sink.close()
    await until(lambda: now_firing(am), what="listed")
    await until(lambda: not am.alerts(), timeout=10, what="lapsed after 3 s")


async def test_an_escalation_replaces_the_alert(am: Alertmanager) -> None:
    """A new severity is a new label set: the old one is ended in the same request."""
    sink = sink_for(am)
    n = notification()
    try:
        await sink.deliver(n)
        await until(lambda: now_firing(am))
        await sink.deliver(
            notification(Transition.ESCALATED, severity="critical", fired_at=n.fired_at)
        )
        await until(
            lambda: [a["labels"]["severity"] for a in am.alerts()] == ["critical"],
            what="only the critical alert",
        )
        await sink.deliver(
            ended(notification(Transition.ESCALATED, severity="critical", fired_at=n.fired_at))
        )
        await until(lambda: not am.alerts(), what="resolved")
    finally:
        await sink.close()


async def test_resumed_alerts_come_back_after_alertmanager_restarts(am: Alertmanager) -> None:
    """Alerts handed to resume() (restored state) are posted at the next refresh: an
    Alertmanager restarted without storage of them gets them back."""
    n = notification()
    sink = sink_for(am, refresh="1s")
    sink.resume([n, ended(notification(fingerprint="gone"))])
    outbox = Outbox([sink])
    await outbox.start()
    try:
        await until(lambda: now_firing(am), what="posted by the refresh")
        assert [a["labels"]["alertname"] for a in am.alerts()] == ["sl_low"]
        am.kill()
        for data in (am.directory / "data").iterdir():
            data.unlink()
        am.start()
        await until(lambda: now_firing(am), timeout=10, what="posted again after the restart")
    finally:
        await outbox.close()


async def test_forget_stops_the_refresh_of_a_sites_alerts(am: Alertmanager) -> None:
    """A site given up is no longer kept alive here."""
    sink = sink_for(am)
    sink.resume([notification(site="sh"), notification(fingerprint="bj", site="bj")])
    sink.forget({"sh"})
    try:
        await sink.refresh()
    finally:
        await sink.close()
    assert [a["labels"]["site"] for a in am.alerts()] == ["bj"]


async def test_the_summary_is_in_the_sinks_language(am: Alertmanager) -> None:
    """language = "zh-CN": the built-in Chinese summary (the engine gave none)."""
    sink = sink_for(am, language="zh-CN")
    try:
        await sink.deliver(notification())
    finally:
        await sink.close()
    [alert] = am.alerts()
    assert alert["annotations"]["summary"].startswith("【告警】警告：队列 sales")


async def test_alertmanager_is_not_delayed_by_a_hanging_or_failing_webhook(
    am: Alertmanager,
) -> None:
    """Beside a webhook that hangs and one that answers 500, each alert reaches
    Alertmanager as fast as without them."""
    async with receiver(answer=hang) as stuck, receiver(answer=status(500)) as broken:
        tables = {
            "am": {"kind": "alertmanager", "url": am.url},
            "stuck": {"kind": "webhook", "url": stuck.url, "timeout": "30s"},
            "broken": {"kind": "webhook", "url": broken.url, "backoff": "10ms"},
        }
        outbox = Outbox(create_sinks(parse_sinks(tables)))
        await outbox.start()
        try:
            times = []
            for i in range(5):
                n: Notification = notification(fingerprint=f"fp{i}", scope=f"q{i}")
                outbox.submit(n)
                times.append(await until(lambda i=i: len(am.alerts()) == i + 1, timeout=10))
            assert stuck.requests and len(broken.requests) > 1  # both were being tried
            assert outbox.stats.sent_total == {"am": 5, "broken": 0, "stuck": 0}
        finally:
            await outbox.close()
    # Each within seconds, while the hanging webhook holds its worker for 30 s an attempt.
    assert max(times) < 5.0, times


def test_rule_labels_never_override_the_identity() -> None:
    """Extra labels may not replace alertname, severity, site or the scope; bad names are fixed."""
    n = notification(
        labels={"alertname": "x", "site": "y", "queue": "z", "bad-name": "v", "1st": "w"}
    )
    labels = alert_labels(n)
    assert labels["alertname"] == "sl_low" and labels["site"] == "sh" and labels["queue"] == "sales"
    assert labels["bad_name"] == "v" and labels["_1st"] == "w"
