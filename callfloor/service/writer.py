"""The writer: the only task that changes the processor, in rounds and ticks.

A round takes what the sources queued (up to 256 batches or 20,000 events),
appends it to the :class:`~callfloor.ingest.store.Store` in one call (retried,
counted, until it is durable), then admits each event: one behind the processor
clock is applied at once (a late event), one ahead of it is held until the
watermark passes its ``ts``. Only then is each batch acknowledged with its
:class:`~callfloor.ingest.source.Receipt`. Once per ``tick_s`` the writer releases
the held events the watermark passed, in time order, ticks the processor to the
watermark and publishes the change set on the bus.

The processor is synchronous: no ``await`` per event. The writer looks at the
clock every 64 events and gives readers a turn every ``SLICE_S``. An exception
while admitting or releasing an event rejects that event (``internal_error``,
counted, logged once with the event) and the round goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Final

import msgspec

from callfloor.bus import ChangeBus
from callfloor.events import Event, dedup_key
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.source import Batch, Receipt
from callfloor.ingest.store import Store
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.service.stats import IngestStats

log = logging.getLogger("callfloor")

SLICE_S: Final = 0.005  # the longest the writer runs before readers get a turn
ROUND_BATCHES: Final = 256
ROUND_EVENTS: Final = 20_000
_STEP: Final = 64  # events admitted between two looks at the clock (an event may be slow)

INTERNAL_ERROR: Final = Refusal(
    "internal_error",
    "",
    "applying this event failed inside callfloor (a bug, logged): it was not applied",
)


def _show(event: Event) -> str:
    """An event for a log line (bounded: a hostile event may be megabytes)."""
    try:
        text = msgspec.json.encode(event).decode()
    except Exception:  # the event that broke the processor may not encode either
        text = repr(event)
    return text if len(text) <= 2000 else text[:2000] + "…"


class Writer:
    """Rounds and ticks over one processor (see the module docstring)."""

    def __init__(
        self,
        proc: FloorProcessor,
        *,
        stats: IngestStats,
        backlog: Backlog,
        store: Store,
        bus: ChangeBus,
        watermark: Callable[[], float],
        tick_s: float,
    ) -> None:
        self.proc = proc
        self.stats = stats
        self.backlog = backlog
        self.store = store
        self.bus = bus
        self._now = watermark
        self.tick_s = tick_s
        self._queue: asyncio.Queue[Batch] = asyncio.Queue()
        # (ts, seq, event, dedup key) received ahead of the watermark; the keys of the
        # held events are counted so a duplicate of a held event is reported as one.
        self._held: list[tuple[float, int, Event, object]] = []
        self._held_keys: dict[object, int] = {}
        self._seq = 0
        self._slice_started = 0.0
        self._ticks_started = 0
        self._ticks_done = 0
        self._tick_event = asyncio.Event()
        self._next_tick = float("-inf")  # loop time of the next tick
        # Set while an append to the store fails (readiness says degraded).
        self.store_failing = False

    async def submit(self, batch: Batch) -> None:
        """Queue a batch for the next round, waiting for room unless it was reserved."""
        if not batch.reserved:
            await self.backlog.reserve(batch.size)
        self._queue.put_nowait(batch)

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""
        return len(self._held)

    def held(self) -> list[Event]:
        """The held events in the order they will be applied (for a checkpoint)."""
        return [item[2] for item in sorted(self._held)]

    async def next_tick(self) -> None:
        """Wait until a tick that started after this call has finished."""
        target = self._ticks_started + 1
        while self._ticks_done < target:
            await self._tick_event.wait()

    def _sync_gauges(self) -> None:
        self.stats.held_events = len(self._held)
        self.stats.pending_events = self.backlog.pending

    async def _pause_if_due(self) -> None:
        if perf_counter() - self._slice_started >= SLICE_S:
            await asyncio.sleep(0)
            self._slice_started = perf_counter()

    def _failed(self, event: Event, exc: Exception) -> None:
        """An event broke the processor: reject it (counted), log it once, go on."""
        self.stats.ingest_errors_total += 1
        with contextlib.suppress(Exception):  # counting must not take the round down either
            self.proc.count_rejected(INTERNAL_ERROR.reason)
        log.error("ingest_error reason=internal_error event=%s", _show(event), exc_info=exc)

    def _admit(self, events: list[Event], start: int, stop: int, receipt: Receipt | None) -> int:
        """Apply ``events[start:stop]`` behind the clock, hold the others; how many left.

        Every event not held has left the backlog, whatever became of it: applied,
        refused, or failed inside the processor (a failure must not leak its room).
        """
        proc = self.proc
        held = self._held
        keys = self._held_keys
        kept = 0
        for pos in range(start, stop):
            event = events[pos]
            try:
                ts: float = event.ts  # type: ignore[assignment]
                if ts > proc.clock:
                    key = dedup_key(event)
                    if receipt is not None:
                        refusal = proc.check(event)
                        if refusal is not None:
                            proc.count_rejected(refusal.reason)
                            receipt.refused.append((pos, refusal))
                            continue
                        if key in keys or proc.is_duplicate(event):
                            receipt.duplicates.append(pos)
                    self._seq += 1
                    heapq.heappush(held, (ts, self._seq, event, key))
                    keys[key] = keys.get(key, 0) + 1
                    kept += 1
                elif receipt is None:
                    proc.apply(event)
                else:
                    duplicate = proc.is_duplicate(event)
                    refusal = proc.apply(event)
                    if refusal is not None:
                        receipt.refused.append((pos, refusal))
                    elif duplicate:
                        receipt.duplicates.append(pos)
            except Exception as exc:
                self._failed(event, exc)
                if receipt is not None:
                    receipt.refused.append((pos, INTERNAL_ERROR))
        return (stop - start) - kept

    async def _append(self, batches: list[Batch]) -> None:
        """Append the round to the store; retry (counted) until it is durable.

        The clock goes on meanwhile: a slow or failing store delays the round's events
        (they are applied once appended, late if the clock passed them), never the
        ticks, so waits still grow and deadlines still pass (SPEC §6).
        """
        attempt = 0
        while True:
            try:
                await self._ticking(self.store.append(batches))
                self.store_failing = False
                return
            except Exception as exc:
                attempt += 1
                self.store_failing = True
                self.stats.ingest_errors_total += 1
                wait = min(5.0, 0.1 * 2.0**attempt)
                log.error(
                    "store_append_failed attempt=%d retry_in_s=%.1f error=%r", attempt, wait, exc
                )
                await self._ticking(asyncio.sleep(wait))

    async def _ticking(self, work: Awaitable[None]) -> None:
        """Await ``work``, ticking whenever a tick falls due meanwhile."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(work)
        try:
            while True:
                delay = max(0.0, self._next_tick - loop.time())
                done, _ = await asyncio.wait((task,), timeout=delay)
                if done:
                    return task.result()
                await self._tick_if_due()
        finally:
            task.cancel()  # only if this coroutine itself was cancelled (a no-op when done)

    async def _tick_if_due(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_tick:
            await self._tick()
            self._next_tick = loop.time() + self.tick_s

    def _count_rejected(self, rejected: dict[str, int]) -> None:
        count = self.proc.count_rejected
        for reason, n in rejected.items():
            count(reason, n)

    async def _round(self, batches: list[Batch]) -> None:
        """Append, admit and acknowledge the batches of one round."""
        await self._append(batches)
        stats = self.stats
        for batch in batches:
            started = perf_counter()
            receipt = Receipt() if batch.ack is not None else None
            if batch.rejected:
                self._count_rejected(batch.rejected)
            events = batch.events
            for start in range(0, len(events), _STEP):
                self.backlog.release(
                    self._admit(events, start, min(start + _STEP, len(events)), receipt)
                )
                await self._pause_if_due()
            elapsed = perf_counter() - started
            stats.batches_total += 1
            stats.batch_events_total += len(events)
            stats.batch_seconds_sum += elapsed
            stats.batch_seconds_max = max(stats.batch_seconds_max, elapsed)
            stats.by_source[batch.source] = stats.by_source.get(batch.source, 0) + len(events)
            if batch.ack is not None and receipt is not None:
                try:
                    batch.ack(receipt)
                except Exception:
                    stats.ingest_errors_total += 1
                    log.exception("ack_failed source=%s", batch.source)
        self._sync_gauges()

    def _release_some(self, watermark: float, limit: int) -> None:
        held = self._held
        keys = self._held_keys
        apply = self.proc.apply
        n = 0
        while held and held[0][0] <= watermark and n < limit:
            _, _, event, key = heapq.heappop(held)
            left = keys[key] - 1
            if left:
                keys[key] = left
            else:
                del keys[key]
            n += 1
            try:
                apply(event)
            except Exception as exc:
                self._failed(event, exc)
        self.backlog.release(n)

    async def _tick(self) -> None:
        """Release what the watermark passed, tick to it, publish the change set."""
        self._ticks_started += 1
        watermark = self._now()
        held = self._held
        while held and held[0][0] <= watermark:
            self._release_some(watermark, _STEP)
            await self._pause_if_due()
        try:
            self.proc.tick(watermark)
            self.bus.publish(self.proc.drain_changes())
        except Exception:
            self.stats.ingest_errors_total += 1
            log.exception("tick_error watermark=%s", watermark)
        self._sync_gauges()
        self._ticks_done += 1
        done, self._tick_event = self._tick_event, asyncio.Event()
        done.set()

    async def run(self) -> None:
        """The ingest task: rounds as batches arrive, a tick every ``tick_s``."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        self._next_tick = loop.time()
        while True:
            batches: list[Batch] = []
            wait = self._next_tick - loop.time()
            if wait > 0 and queue.empty():
                try:
                    async with asyncio.timeout(wait):
                        batches.append(await queue.get())
                except TimeoutError:
                    pass
            count = sum(batch.size for batch in batches)
            # One round takes what is queued, up to a bound, so readers get a turn.
            while len(batches) < ROUND_BATCHES and count < ROUND_EVENTS and not queue.empty():
                batch = queue.get_nowait()
                batches.append(batch)
                count += batch.size
            self._slice_started = perf_counter()
            try:
                if batches:
                    await self._round(batches)
                await self._tick_if_due()
            except Exception:  # last line of defence: the writer never dies
                self.stats.ingest_errors_total += 1
                log.exception("ingest_round_error batches=%d", len(batches))
            await asyncio.sleep(0)  # queue.get() does not yield while batches are waiting
