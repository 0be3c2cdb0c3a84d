"""The outbox: every notification reaches every sink it is for, or is dropped and counted.

One :class:`Outbox` per service. :meth:`Outbox.submit` is synchronous and never waits
(the engine's path has no ``await``): it appends the notification to the bounded
queue of each sink it is for. Each sink has its own worker task, so a slow or dead sink
delays nobody else: not processing, not another sink.

A worker takes its queue's notifications in order, one at a time (a receiver sees an
alert's ``resolved`` after its ``firing``) and tries each under the sink's
``timeout_s``. A failure the sink calls retryable is tried again after a delay drawn
uniformly between 0 and ``min(backoff_max_s, backoff_s * 2^(retry - 1))`` (capped
exponential backoff with full jitter, so senders that failed together do not come back
together), at least the receiver's ``Retry-After``. A notification is dropped, counted
by reason, when:

- ``queue_full``: the sink's queue holds ``max_queue`` notifications and a new one
  arrives (the oldest goes: the newest say most about the floor now);
- ``deadline``: ``emitted_at + deadline_s`` has passed (or would before the next
  attempt): an alert hours old helps nobody;
- ``retries_exhausted``: ``retry_max`` retries failed;
- ``rejected``: the receiver refused it for good (a 4xx other than 408 and 429);
- ``unknown_sink``: the notification names a sink that is not configured.

Silenced notifications go only to sinks with ``deliver_silenced`` (the log); the other
sinks skip them, counted (``silenced``), as they skip a notification whose key is
already waiting in their queue (``duplicate``).

Durability is the service's: :meth:`pending` is a snapshot of what each sink has not
delivered yet (in flight first) for its checkpoints, :meth:`restore` puts such a
snapshot back after a restart, and ``on_delivered(sink, notification)`` is called
after each delivery so the service can log the mark durably; so a restart neither sends
again what was delivered nor forgets what was not. ``on_dropped(sink, notification,
reason)`` likewise (a dropped notification is settled too). With a shared store the
service calls :meth:`forget` for the sites of a partition it gives up (their new owner
restores their pending notifications from the partition's checkpoint).

Run it as a named task of the service's task group (``tg.create_task(outbox.run(),
name="alerts")``), or :meth:`start` and :meth:`close` it around a block.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from callfloor.alerts.notification import Notification
from callfloor.sinks.alerts.base import AlertSink, DeliveryError

if TYPE_CHECKING:
    from callfloor.metrics.stats import AlertSinkStats

__all__ = [
    "DELIVERY_BUCKETS",
    "DROP_REASONS",
    "SKIP_REASONS",
    "LatencyHistogram",
    "Outbox",
    "OutboxStats",
    "backoff_delay",
]

log = logging.getLogger("callfloor.alerts")

DROP_REASONS: Final[tuple[str, ...]] = (
    "queue_full",
    "deadline",
    "retries_exhausted",
    "rejected",
    "unknown_sink",
)
SKIP_REASONS: Final[tuple[str, ...]] = ("silenced", "duplicate")
DELIVERY_BUCKETS: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
"""Upper bounds (seconds) of the delivery latency histogram: queued -> delivered."""

Delivered = Callable[[str, Notification], None]
Dropped = Callable[[str, Notification, str], None]


def backoff_delay(retry: int, base_s: float, cap_s: float, draw: Callable[[], float]) -> float:
    """The wait before retry number ``retry`` (1-based): full jitter over a capped doubling."""
    ceiling = min(cap_s, base_s * 2.0 ** min(retry - 1, 62))
    return ceiling * draw()


@dataclass(slots=True)
class LatencyHistogram:
    """Seconds from queued to delivered: per-bucket counts (the last is +Inf), sum, count."""

    bounds: tuple[float, ...] = DELIVERY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(DELIVERY_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        """Count one delivery that took ``seconds``."""
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1


@dataclass(slots=True)
class _Item:
    notification: Notification
    queued: float  # monotonic, for the latency
    attempts: int = 0


class _Lane:
    """One sink: its queue, the keys in it, the item in flight and its worker."""

    __slots__ = ("current", "keys", "queue", "sink", "wake")

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self.queue: deque[_Item] = deque()
        self.keys: set[str] = set()
        self.current: _Item | None = None
        self.wake = asyncio.Event()

    def depth(self) -> int:
        """Notifications not delivered yet, the one in flight included."""
        return len(self.queue) + (self.current is not None)


class OutboxStats:
    """The outbox's counters by sink (the collector reads them at each scrape).

    Every configured sink has its series from the start (zeros), so alert rules on
    them see 0 rather than nothing.
    """

    def __init__(self, lanes: Mapping[str, _Lane]) -> None:
        self._lanes = lanes
        names = sorted(lanes)
        self.sent_total: dict[str, int] = dict.fromkeys(names, 0)
        self.retries_total: dict[str, int] = dict.fromkeys(names, 0)
        self.dropped_total: dict[tuple[str, str], int] = {
            (name, reason): 0 for name in names for reason in DROP_REASONS
        }
        self.skipped_total: dict[tuple[str, str], int] = {
            (name, reason): 0 for name in names for reason in SKIP_REASONS
        }
        self.delivery_seconds: dict[str, LatencyHistogram] = {
            name: LatencyHistogram() for name in names
        }

    @property
    def queue_depth(self) -> Mapping[str, int]:
        """Notifications waiting or in flight, by sink."""
        return {name: lane.depth() for name, lane in sorted(self._lanes.items())}

    @property
    def refresh_errors_total(self) -> Mapping[str, int]:
        """Failed background refreshes (Alertmanager re-posts), by sink."""
        return {name: lane.sink.refresh_errors for name, lane in sorted(self._lanes.items())}


class Outbox:
    """Bounded queues and a worker per sink (see the module docstring)."""

    def __init__(
        self,
        sinks: Iterable[AlertSink],
        *,
        on_delivered: Delivered | None = None,
        on_dropped: Dropped | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._lanes: dict[str, _Lane] = {}
        for sink in sinks:
            if sink.name in self._lanes:
                raise ValueError(f"two alert sinks are named {sink.name!r}")
            self._lanes[sink.name] = _Lane(sink)
        self.on_delivered = on_delivered
        self.on_dropped = on_dropped
        self._clock = clock
        self._monotonic = monotonic
        self._jitter = jitter
        self.stats = OutboxStats(self._lanes)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # ----------------------------------------------------------------- the engine's side

    @property
    def sinks(self) -> Mapping[str, AlertSink]:
        """The sinks by name."""
        return {name: lane.sink for name, lane in self._lanes.items()}

    def submit(self, notification: Notification) -> None:
        """Queue ``notification`` for each sink it is for; never waits."""
        names = notification.sinks if notification.sinks is not None else tuple(self._lanes)
        for name in names:
            lane = self._lanes.get(name)
            if lane is None:
                self._count_drop(name, notification, "unknown_sink")
                continue
            if notification.silenced and not lane.sink.config.deliver_silenced:
                self._skip(name, "silenced")
                continue
            self._enqueue(lane, _Item(notification, self._monotonic()))

    def submit_all(self, notifications: Iterable[Notification]) -> None:
        """:meth:`submit` each, in order."""
        for notification in notifications:
            self.submit(notification)

    def _enqueue(self, lane: _Lane, item: _Item) -> None:
        name = lane.sink.name
        key = item.notification.key
        in_flight = lane.current is not None and lane.current.notification.key == key
        if key in lane.keys or in_flight:
            self._skip(name, "duplicate")
            return
        while len(lane.queue) >= lane.sink.config.max_queue:
            oldest = lane.queue.popleft()
            lane.keys.discard(oldest.notification.key)
            self._count_drop(name, oldest.notification, "queue_full")
        lane.queue.append(item)
        lane.keys.add(key)
        lane.wake.set()

    # ----------------------------------------------------------------- durability

    def pending(self, sites: Collection[str] | None = None) -> dict[str, list[Notification]]:
        """What each sink has not delivered yet, in flight first (only ``sites``' if given)."""
        out: dict[str, list[Notification]] = {}
        for name, lane in self._lanes.items():
            items = ([lane.current] if lane.current is not None else []) + list(lane.queue)
            out[name] = [
                i.notification for i in items if sites is None or i.notification.site in sites
            ]
        return out

    def restore(self, pending: Mapping[str, Sequence[Notification]]) -> None:
        """Queue again what a :meth:`pending` snapshot held (after a restart, an adoption).

        A sink no longer configured is skipped (counted as ``unknown_sink``); a key already
        queued for a sink is not queued twice.
        """
        for name, notifications in pending.items():
            lane = self._lanes.get(name)
            for notification in notifications:
                if lane is None:
                    self._count_drop(name, notification, "unknown_sink")
                else:
                    self._enqueue(lane, _Item(notification, self._monotonic()))

    def resume(self, firing: Iterable[Notification]) -> None:
        """Tell the sinks which alerts fire now (restored engine state): see
        :meth:`AlertSink.resume` (Alertmanager keeps re-posting them)."""
        alerts = list(firing)
        for lane in self._lanes.values():
            lane.sink.resume([n for n in alerts if n.sinks is None or lane.sink.name in n.sinks])

    def forget(self, sites: Collection[str]) -> int:
        """Withdraw the queued notifications of ``sites`` (a partition given up); how many.

        One in flight is finished. The sinks stop refreshing those sites' alerts.
        """
        removed = 0
        for lane in self._lanes.values():
            kept = deque(i for i in lane.queue if i.notification.site not in sites)
            removed += len(lane.queue) - len(kept)
            lane.queue = kept
            lane.keys = {i.notification.key for i in kept}
            lane.sink.forget(sites)
        return removed

    # ----------------------------------------------------------------- running

    async def start(self) -> None:
        """Start each sink and its worker (and its background loop, if it has one)."""
        if self._started:
            return
        self._started = True
        for lane in self._lanes.values():
            await lane.sink.start()
            self._tasks.append(
                asyncio.create_task(self._work(lane), name=f"alert-sink:{lane.sink.name}")
            )
            loop = lane.sink.background()
            if loop is not None:
                self._tasks.append(
                    asyncio.create_task(loop, name=f"alert-sink-refresh:{lane.sink.name}")
                )

    async def close(self, drain_s: float = 0.0) -> None:
        """Stop the workers (after up to ``drain_s`` for the queues to empty) and the sinks.

        What is not delivered stays in :meth:`pending` (the service's last checkpoint
        keeps it).
        """
        if drain_s > 0:
            deadline = self._monotonic() + drain_s
            while any(lane.depth() for lane in self._lanes.values()):
                if self._monotonic() >= deadline:
                    break
                await asyncio.sleep(0.01)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in self._lanes.values():
            if lane.current is not None:  # cancelled in flight: it is still undelivered
                lane.queue.appendleft(lane.current)
                lane.keys.add(lane.current.notification.key)
                lane.current = None
            try:
                await lane.sink.close()
            except Exception:  # closing one sink never keeps the others open
                log.exception("alert_sink_close_failed sink=%s", lane.sink.name)
        self._started = False

    async def run(self) -> None:
        """The service's task: run until cancelled, then close."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _work(self, lane: _Lane) -> None:
        while True:
            while not lane.queue:
                lane.wake.clear()
                await lane.wake.wait()
            item = lane.queue.popleft()
            lane.keys.discard(item.notification.key)
            lane.current = item
            await self._deliver(lane, item)
            lane.current = None

    async def _deliver(self, lane: _Lane, item: _Item) -> None:
        sink = lane.sink
        cfg = sink.config
        n = item.notification
        deadline = n.emitted_at + cfg.deadline_s
        while True:
            if self._clock() >= deadline:
                self._count_drop(sink.name, n, "deadline")
                return
            item.attempts += 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(cfg.timeout_s):
                    await sink.deliver(n)
            except DeliveryError as exc:
                retryable, retry_after, error = exc.retryable, exc.retry_after_s, str(exc)
            except TimeoutError:
                retryable, error = True, f"no answer within {cfg.timeout_s:g} s"
            except Exception as exc:  # a sink's bug: logged, retried, never the worker's end
                log.exception("alert_sink_error sink=%s key=%s", sink.name, n.key)
                retryable, error = True, f"{type(exc).__name__}: {exc}"
            else:
                self.stats.sent_total[sink.name] = self.stats.sent_total.get(sink.name, 0) + 1
                self.stats.delivery_seconds[sink.name].observe(self._monotonic() - item.queued)
                if self.on_delivered is not None:
                    self._notify(self.on_delivered, sink.name, n)
                return
            if not retryable:
                log.warning("alert_rejected sink=%s key=%s error=%r", sink.name, n.key, error)
                self._count_drop(sink.name, n, "rejected")
                return
            if item.attempts > cfg.retry_max:
                log.warning(
                    "alert_retries_exhausted sink=%s key=%s attempts=%d error=%r",
                    sink.name,
                    n.key,
                    item.attempts,
                    error,
                )
                self._count_drop(sink.name, n, "retries_exhausted")
                return
            wait = backoff_delay(item.attempts, cfg.backoff_s, cfg.backoff_max_s, self._jitter)
            if retry_after is not None:
                wait = max(wait, min(retry_after, cfg.backoff_max_s))
            if self._clock() + wait >= deadline:
                self._count_drop(sink.name, n, "deadline")
                return
            self.stats.retries_total[sink.name] = self.stats.retries_total.get(sink.name, 0) + 1
            log.info(
                "alert_retry sink=%s key=%s attempt=%d error=%r retry_in_s=%.2f",
                sink.name,
                n.key,
                item.attempts,
                error,
                wait,
            )
            await asyncio.sleep(wait)

    # ----------------------------------------------------------------- counting

    def _count_drop(self, sink: str, n: Notification, reason: str) -> None:
        counts = self.stats.dropped_total
        counts[(sink, reason)] = counts.get((sink, reason), 0) + 1
        log.warning("alert_dropped sink=%s key=%s reason=%s", sink, n.key, reason)
        if self.on_dropped is not None:
            self._notify(self.on_dropped, sink, n, reason)

    @staticmethod
    def _notify(callback: Callable[..., None], *args: object) -> None:
        """Call the service back; its failure is logged, never the end of a worker."""
        try:
            callback(*args)
        except Exception:
            log.exception("alert_outbox_callback_failed callback=%r", callback)

    def _skip(self, sink: str, reason: str) -> None:
        counts = self.stats.skipped_total
        counts[(sink, reason)] = counts.get((sink, reason), 0) + 1


if TYPE_CHECKING:  # the collector reads OutboxStats as the metrics' AlertSinkStats
    _STATS_FIT: AlertSinkStats = OutboxStats({})
