"""The alert outbox's families: sent, retried, dropped, skipped, queue depth, latency."""

from __future__ import annotations

import asyncio

from metrics_util import FakeStats, scenario_proc, scrape, value
from prometheus_client import generate_latest

from callfloor.alerts.notification import Notification, Transition
from callfloor.metrics.collector import FloorCollector
from callfloor.metrics.registry import build_registry, render
from callfloor.sinks.alerts.base import AlertSink, DeliveryError, SinkConfig
from callfloor.sinks.alerts.outbox import DELIVERY_BUCKETS, DROP_REASONS, Outbox


class _Sink(AlertSink):
    """Fails once (retryable), then delivers; refuses the key "refused" for good."""

    def __init__(self, name: str) -> None:
        super().__init__(SinkConfig(name=name, kind="test", backoff_s=0.001, backoff_max_s=0.001))
        self.failed = False

    async def deliver(self, notification: Notification) -> None:
        if notification.key == "refused":
            raise DeliveryError("no", retryable=False)
        if not self.failed:
            self.failed = True
            raise DeliveryError("busy", retryable=True)


def _n(key: str, **extra: object) -> Notification:
    return Notification(
        key=key,
        fingerprint=key,
        rule="sl_low",
        scope_kind="queue",
        scope="sales",
        site="sh",
        severity="warning",
        transition=Transition.FIRING,
        state="firing",
        since=0.0,
        fired_at=0.0,
        ended_at=None,
        value=None,
        summary="",
        description="",
        labels={},
        emitted_at=4e9,  # far ahead: never past its deadline
        **extra,  # type: ignore[arg-type]
    )


async def _outbox() -> Outbox:
    outbox = Outbox([_Sink("hook"), _Sink("idle")])
    await outbox.start()
    try:
        outbox.submit_all([_n("a", sinks=("hook",)), _n("refused", sinks=("hook",))])
        outbox.submit(_n("quiet", silenced=True))
        while outbox.stats.queue_depth["hook"]:
            await asyncio.sleep(0.01)
    finally:
        await outbox.close()
    return outbox


async def test_outbox_counters_are_exposed_by_sink() -> None:
    """Every counter of the outbox has its sample, labelled by sink (and reason)."""
    outbox = await _outbox()
    fams = scrape(scenario_proc(), stats=lambda: FakeStats(alert_sinks=outbox.stats))
    assert value(fams, "callfloor_alert_notifications_sent_total", sink="hook") == 1
    assert value(fams, "callfloor_alert_notifications_sent_total", sink="idle") == 0
    assert value(fams, "callfloor_alert_notifications_retried_total", sink="hook") == 1
    assert (
        value(fams, "callfloor_alert_notifications_dropped_total", sink="hook", reason="rejected")
        == 1
    )
    for reason in DROP_REASONS:  # every reason has a series from the start
        assert (
            value(fams, "callfloor_alert_notifications_dropped_total", sink="idle", reason=reason)
            == 0
        )
    assert (
        value(fams, "callfloor_alert_notifications_skipped_total", sink="idle", reason="silenced")
        == 1
    )
    assert value(fams, "callfloor_alert_sink_queue_depth", sink="hook") == 0
    assert value(fams, "callfloor_alert_sink_refresh_errors_total", sink="hook") == 0
    assert value(fams, "callfloor_alert_delivery_seconds_count", sink="hook") == 1
    assert value(fams, "callfloor_alert_delivery_seconds_bucket", sink="hook", le="+Inf") == 1
    assert value(fams, "callfloor_alert_delivery_seconds_count", sink="idle") == 0


async def test_the_latency_histogram_is_cumulative() -> None:
    """Bucket counts only grow with le, ending at the count."""
    outbox = await _outbox()
    outbox.stats.delivery_seconds["hook"].observe(0.3)
    outbox.stats.delivery_seconds["hook"].observe(1000.0)
    fams = scrape(scenario_proc(), stats=lambda: FakeStats(alert_sinks=outbox.stats))
    les = [*(str(b) for b in DELIVERY_BUCKETS), "+Inf"]
    counts = [
        value(fams, "callfloor_alert_delivery_seconds_bucket", sink="hook", le=le) for le in les
    ]
    assert counts == sorted(counts)  # type: ignore[type-var]
    assert counts[-1] == 3
    assert value(fams, "callfloor_alert_delivery_seconds_bucket", sink="hook", le="0.25") == 1


async def test_fast_and_library_renderings_agree() -> None:
    """The text fast path writes the same bytes as generate_latest for these families."""
    outbox = await _outbox()
    proc = scenario_proc()
    stats = FakeStats(alert_sinks=outbox.stats)
    fast = render(build_registry(proc, stats=lambda: stats))
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(FloorCollector(proc, stats=lambda: stats))
    assert fast == generate_latest(registry)


def test_no_outbox_no_samples() -> None:
    """Without alert sinks the families have no samples."""
    fams = scrape(scenario_proc(), stats=lambda: FakeStats())
    assert value(fams, "callfloor_alert_notifications_sent_total", sink="hook") is None
