"""The outbox: per-sink queues and workers, retries, drops and their counters, durability."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sink_util import RecordingSink, config, ended, notification, retryable
from waiting import until

from callfloor.alerts.notification import Notification, Transition
from callfloor.sinks.alerts.base import DeliveryError
from callfloor.sinks.alerts.outbox import Outbox, backoff_delay


@asynccontextmanager
async def running(outbox: Outbox) -> AsyncIterator[Outbox]:
    """The outbox started for the block, closed after it."""
    await outbox.start()
    try:
        yield outbox
    finally:
        await outbox.close()


def keys(sink: RecordingSink) -> list[str]:
    return [n.key for n in sink.delivered]


async def test_every_sink_gets_a_notification_without_a_sink_list() -> None:
    """A notification with sinks=None goes to every configured sink."""
    a, b = RecordingSink(config("a")), RecordingSink(config("b"))
    async with running(Outbox([a, b])) as outbox:
        n = notification()
        outbox.submit(n)
        await until(lambda: a.delivered and b.delivered, what="both sinks delivered")
    assert a.delivered == b.delivered == [n]
    assert a.started and a.closed
    assert outbox.stats.sent_total == {"a": 1, "b": 1}


async def test_a_sink_list_limits_the_sinks() -> None:
    """A notification naming sinks goes to those only."""
    a, b = RecordingSink(config("a")), RecordingSink(config("b"))
    async with running(Outbox([a, b])) as outbox:
        outbox.submit(notification(sinks=("b",)))
        await until(lambda: b.delivered, what="b delivered")
        await asyncio.sleep(0.05)
    assert not a.delivered


async def test_each_sink_delivers_in_submission_order() -> None:
    """An alert's resolve never overtakes its firing at a sink, even through retries."""
    sink = RecordingSink(config(), failures=[retryable(), retryable()])
    firing = notification()
    resolved = ended(firing)
    async with running(Outbox([sink])) as outbox:
        outbox.submit_all([firing, resolved])
        await until(lambda: len(sink.delivered) == 2, what="two delivered")
    assert keys(sink) == [firing.key, resolved.key]


async def test_retryable_failures_are_retried_and_counted() -> None:
    """Two retryable failures, then a delivery: two retries, one sent, one delivered mark."""
    sink = RecordingSink(config(), failures=[retryable(), TimeoutError()])
    marks: list[tuple[str, str]] = []
    outbox = Outbox([sink], on_delivered=lambda name, n: marks.append((name, n.key)))
    n = notification()
    async with running(outbox):
        outbox.submit(n)
        await until(lambda: sink.delivered, what="delivered after retries")
    assert len(sink.attempts) == 3
    assert outbox.stats.retries_total["test"] == 2
    assert outbox.stats.sent_total["test"] == 1
    assert marks == [("test", n.key)]
    assert outbox.stats.delivery_seconds["test"].count == 1


async def test_a_refusal_is_dropped_at_once() -> None:
    """A non-retryable failure drops the notification (rejected) after one attempt."""
    sink = RecordingSink(config(), failures=[DeliveryError("400", retryable=False)])
    drops: list[tuple[str, str, str]] = []
    outbox = Outbox([sink], on_dropped=lambda name, n, why: drops.append((name, n.key, why)))
    n = notification()
    async with running(outbox):
        outbox.submit(n)
        await until(lambda: drops, what="dropped")
    assert len(sink.attempts) == 1
    assert drops == [("test", n.key, "rejected")]
    assert outbox.stats.dropped_total[("test", "rejected")] == 1
    assert outbox.stats.retries_total["test"] == 0


async def test_retries_end_at_retry_max() -> None:
    """retry_max retries after the first attempt, then the notification is dropped."""
    sink = RecordingSink(config(retry_max=3), failures=[retryable() for _ in range(10)])
    outbox = Outbox([sink])
    async with running(outbox):
        outbox.submit(notification())
        await until(
            lambda: outbox.stats.dropped_total[("test", "retries_exhausted")] == 1,
            what="retries exhausted",
        )
    assert len(sink.attempts) == 4
    assert outbox.stats.retries_total["test"] == 3


async def test_a_notification_past_its_deadline_is_dropped() -> None:
    """One emitted longer ago than the sink's deadline is dropped, never delivered."""
    sink = RecordingSink(config(deadline_s=60.0))
    outbox = Outbox([sink])
    async with running(outbox):
        outbox.submit(notification(emitted_at=time.time() - 61.0))
        await until(lambda: outbox.stats.dropped_total[("test", "deadline")] == 1)
    assert not sink.attempts


async def test_the_deadline_ends_retries_before_the_wait() -> None:
    """A retry whose wait would pass the deadline is not waited for: dropped at once."""
    sink = RecordingSink(
        config(deadline_s=5.0, backoff_s=30.0, backoff_max_s=30.0), failures=[retryable()]
    )
    outbox = Outbox([sink], jitter=lambda: 1.0)
    began = time.monotonic()
    async with running(outbox):
        outbox.submit(notification())
        await until(lambda: outbox.stats.dropped_total[("test", "deadline")] == 1)
    assert time.monotonic() - began < 5.0
    assert outbox.stats.retries_total["test"] == 0


async def test_a_hanging_delivery_times_out_and_is_retried() -> None:
    """An attempt longer than timeout_s is abandoned and retried."""
    sink = RecordingSink(config(timeout_s=0.1))
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    async with running(outbox):
        outbox.submit(notification())
        await until(lambda: len(sink.attempts) >= 2, what="a second attempt")
        sink.gate.set()
        await until(lambda: sink.delivered, what="delivered once the sink answers")
    assert outbox.stats.retries_total["test"] >= 1


async def test_retry_after_is_waited_for() -> None:
    """A receiver's Retry-After is honoured (within backoff_max)."""
    sink = RecordingSink(config(backoff_max_s=10.0), failures=[retryable(retry_after_s=0.4)])
    async with running(Outbox([sink])) as outbox:
        outbox.submit(notification())
        await until(lambda: sink.delivered, what="delivered after Retry-After")
    (first, _), (second, _) = sink.attempts
    assert second - first >= 0.4


async def test_a_full_queue_drops_the_oldest() -> None:
    """Beyond max_queue waiting, the oldest waiting notification is dropped and counted."""
    sink = RecordingSink(config(max_queue=2))
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    ns = [notification(fingerprint=f"fp{i}") for i in range(5)]
    async with running(outbox):
        outbox.submit(ns[0])
        await until(lambda: sink.attempts, what="the first in flight")
        outbox.submit_all(ns[1:])
        assert outbox.stats.queue_depth == {"test": 3}  # in flight + max_queue
        sink.gate.set()
        await until(lambda: len(sink.delivered) == 3, what="the rest delivered")
    assert keys(sink) == [ns[0].key, ns[3].key, ns[4].key]
    assert outbox.stats.dropped_total[("test", "queue_full")] == 2


async def test_a_hanging_sink_delays_no_other_sink() -> None:
    """While one sink hangs on every delivery, the other delivers each notification at once."""
    stuck = RecordingSink(config("stuck", timeout_s=30.0))
    stuck.gate = asyncio.Event()
    quick = RecordingSink(config("quick"))
    async with running(Outbox([stuck, quick])) as outbox:
        for i in range(20):
            outbox.submit(notification(fingerprint=f"fp{i}"))
        took = await until(lambda: len(quick.delivered) == 20, timeout=5.0)
        assert not stuck.delivered
    assert took < 5.0


async def test_silenced_notifications_go_to_the_log_only() -> None:
    """A silenced notification is skipped (counted) by sinks without deliver_silenced."""
    paging = RecordingSink(config("pager"))
    log = RecordingSink(config("log", deliver_silenced=True))
    async with running(Outbox([paging, log])) as outbox:
        outbox.submit(notification(silenced=True))
        await until(lambda: log.delivered, what="logged")
    assert not paging.attempts
    assert outbox.stats.skipped_total[("pager", "silenced")] == 1


async def test_a_key_already_waiting_is_not_queued_twice() -> None:
    """Submitting a notification whose key a sink holds already is skipped, counted."""
    sink = RecordingSink(config())
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    n = notification()
    async with running(outbox):
        outbox.submit(n)
        await until(lambda: sink.attempts)
        outbox.submit(n)  # in flight
        other = notification(fingerprint="other")
        outbox.submit(other)
        outbox.submit(other)  # waiting
        sink.gate.set()
        await until(lambda: len(sink.delivered) == 2)
    assert outbox.stats.skipped_total[("test", "duplicate")] == 2


async def test_an_unknown_sink_name_is_counted() -> None:
    """A notification naming a sink that is not configured counts as dropped for that name."""
    async with running(Outbox([RecordingSink(config())])) as outbox:
        outbox.submit(notification(sinks=("nowhere",)))
    assert outbox.stats.dropped_total[("nowhere", "unknown_sink")] == 1


async def test_pending_lists_the_undelivered_in_flight_first() -> None:
    """pending() holds what is in flight, then what waits, per sink and per site."""
    sink = RecordingSink(config())
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    first = notification(site="sh")
    second = notification(fingerprint="fp2", site="bj")
    async with running(outbox):
        outbox.submit_all([first, second])
        await until(lambda: sink.attempts)
        assert outbox.pending() == {"test": [first, second]}
        assert outbox.pending(sites={"bj"}) == {"test": [second]}
    # Closed with the delivery in flight: both are still pending.
    assert outbox.pending() == {"test": [first, second]}


async def test_restore_delivers_a_checkpointed_snapshot() -> None:
    """A pending() snapshot restored into a new outbox (a restart) is delivered."""
    sink = RecordingSink(config())
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    ns = [notification(fingerprint=f"fp{i}") for i in range(3)]
    async with running(outbox):
        outbox.submit_all(ns)
        await until(lambda: sink.attempts)
    blob = msgspec.msgpack.encode(outbox.pending())
    snapshot = msgspec.msgpack.decode(blob, type=dict[str, list[Notification]])
    after = RecordingSink(config())
    restarted = Outbox([after])
    restarted.restore(snapshot)
    async with running(restarted):
        await until(lambda: len(after.delivered) == 3)
    assert after.delivered == ns


async def test_forget_withdraws_a_partitions_notifications() -> None:
    """forget(sites) removes what waits for those sites and says how many."""
    sink = RecordingSink(config())
    sink.gate = asyncio.Event()
    outbox = Outbox([sink])
    async with running(outbox):
        outbox.submit(notification(fingerprint="f0", site="sh"))
        await until(lambda: sink.attempts)
        outbox.submit_all(
            [notification(fingerprint="f1", site="sh"), notification(fingerprint="f2", site="bj")]
        )
        assert outbox.forget({"sh"}) == 1
        sink.gate.set()
        await until(lambda: len(sink.delivered) == 2)
    assert [n.fingerprint for n in sink.delivered] == ["f0", "f2"]


async def test_run_is_a_task_of_a_task_group() -> None:
    """run() delivers until its task is cancelled, then closes its sinks."""
    sink = RecordingSink(config())
    outbox = Outbox([sink])
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(outbox.run(), name="alerts")
        await until(lambda: sink.started)
        outbox.submit(notification())
        await until(lambda: sink.delivered)
        assert not sink.closed
        task.cancel()
    assert sink.closed


async def test_a_sink_bug_is_retried_not_fatal() -> None:
    """An unexpected exception in a sink is logged and retried; the worker goes on."""
    sink = RecordingSink(config(), failures=[ValueError("bug")])
    async with running(Outbox([sink])) as outbox:
        outbox.submit(notification())
        await until(lambda: sink.delivered)
    assert outbox.stats.retries_total["test"] == 1


def test_two_sinks_may_not_share_a_name() -> None:
    """Sink names are unique."""
    with pytest.raises(ValueError, match="two alert sinks"):
        Outbox([RecordingSink(config("x")), RecordingSink(config("x"))])


@given(
    retry=st.integers(1, 200),
    base=st.floats(0.001, 100),
    cap=st.floats(0.001, 1000),
    draw=st.floats(0, 1),
)
def test_backoff_is_full_jitter_under_a_capped_doubling(
    retry: int, base: float, cap: float, draw: float
) -> None:
    """The delay is draw x min(cap, base x 2^(retry-1)): within [0, cap], doubling until it."""
    delay = backoff_delay(retry, base, cap, lambda: draw)
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    assert 0 <= delay <= cap
    assert delay == pytest.approx(draw * ceiling)


def test_transitions_are_strings() -> None:
    """Transition values are the lower-case words receivers see."""
    assert [str(t) for t in Transition] == [
        "firing",
        "resolved",
        "repeat",
        "escalated",
        "withdrawn",
    ]


async def test_a_failing_callback_stops_no_worker() -> None:
    """An on_delivered that raises is logged; the sink goes on delivering."""

    def broken(name: str, n: Notification) -> None:
        raise RuntimeError("the service's log is full")

    sink = RecordingSink(config())
    async with running(Outbox([sink], on_delivered=broken)) as outbox:
        outbox.submit_all([notification(fingerprint="a"), notification(fingerprint="b")])
        await until(lambda: len(sink.delivered) == 2, what="both delivered")
