"""The live process: one service object owns the processor, its tasks and its HTTP server.

:class:`FloorService` runs named tasks in an :class:`asyncio.TaskGroup`: ``ingest``
(the only writer of the processor) and one ``source:<name>`` task per source, each a
:class:`~callfloor.ingest.supervisor.Supervisor` run, next to the aiohttp server.

The writer works in rounds. A round takes what the sources queued (up to 256
batches or 20,000 events), appends it to the :class:`~callfloor.ingest.store.Store`
in one call, then admits each event: one behind the processor clock is applied at
once (a late event), one ahead of it is held until the watermark (wall clock minus
``watermark_delay_s``) passes its ``ts``. Only then is each batch acknowledged.
Once per ``tick_s`` the writer releases the held events the watermark passed, in
time order, ticks the processor to the watermark and publishes the change set on
the :class:`~callfloor.bus.ChangeBus`. So the processor clock moves once per tick,
and every reader within a tick shares one cached document whose ``as_of`` says
which instant it describes.

The processor is synchronous: no ``await`` per event. Long rounds give readers a
turn every ``SLICE_S``. An exception while admitting an event rejects that event
(``internal_error``, counted, logged once with the event) and the round goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import time
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Final

import msgspec
from aiohttp import web

from callfloor.bus import ChangeBus
from callfloor.config import Config
from callfloor.events import Event, dedup_key
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.http import HttpSource
from callfloor.ingest.source import Batch, Receipt, Source
from callfloor.ingest.store import MemoryStore, Store
from callfloor.ingest.supervisor import Supervisor
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.service.stats import IngestStats

if TYPE_CHECKING:
    from callfloor.processors.read import FloorReader
    from callfloor.processors.views import Document

log = logging.getLogger("callfloor")

SLICE_S: Final = 0.02  # the longest the writer runs before readers get a turn
ROUND_BATCHES: Final = 256
ROUND_EVENTS: Final = 20_000
_STEP: Final = 1000  # events admitted between two looks at the clock

INTERNAL_ERROR: Final = Refusal(
    "internal_error",
    "",
    "applying this event failed inside callfloor (a bug, logged): it was not applied",
)

_Key = tuple[float, int, tuple[object, ...]]


class ListenError(Exception):
    """The HTTP server could not listen on its address (the port is taken, say)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


def _show(event: Event) -> str:
    """An event for a log line (bounded: a hostile event may be megabytes)."""
    try:
        text = msgspec.json.encode(event).decode()
    except Exception:  # the event that broke the processor may not encode either
        text = repr(event)
    return text if len(text) <= 2000 else text[:2000] + "…"


class FloorService:
    """Owns the live processor, its writer task, its sources and its HTTP server."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        port: int | None = None,
        tick_s: float = 1.0,
        watermark_delay_s: float = 1.0,
        max_future_skew_s: float = 300.0,
        processor: FloorProcessor | None = None,
        store: Store | None = None,
        idle_timeout_s: float = 15.0,
        body_timeout_s: float = 60.0,
        ack_timeout_s: float = 60.0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.host = host if host is not None else config.http.host
        self.port = port if port is not None else config.http.port
        self.tick_s = tick_s
        # The processor clock trails the wall clock a little, so events that spent
        # normal transport time on the way are not counted as late.
        self.watermark_delay_s = watermark_delay_s
        self.max_future_skew_s = max_future_skew_s
        # A connection that sends no complete request head for this long is closed
        # (aiohttp's keep-alive timer also runs from the first byte): idle and
        # header timeout in one. A body must arrive within body_timeout_s.
        self.idle_timeout_s = idle_timeout_s
        self.body_timeout_s = body_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.proc = processor or FloorProcessor(config, live=True)
        self.stats = IngestStats()
        self.store: Store = store if store is not None else MemoryStore()
        self.backlog = Backlog(config.limits.max_pending_events)
        self.bus = ChangeBus(self.stats.changes_dropped_total)
        self.http = HttpSource(self.backlog, on_drop=self._dropped)
        self.supervisor = Supervisor(
            self.submit, up=self.stats.source_up, restarts=self.stats.source_restarts_total
        )
        self.started = asyncio.Event()
        self.stopping = False
        self.bound_port: int | None = None
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
        self._cache_key: tuple[object, ...] | None = None
        self._cache: dict[str, bytes] = {}
        self._document: Document | None = None

    # ---------------------------------------------------------------- time

    def now(self) -> float:
        """The watermark: the processor runs up to here (wall clock minus the delay)."""
        return self.clock() - self.watermark_delay_s

    def not_after(self) -> float:
        """The latest ``ts`` ingest admits (wall clock plus the allowed skew)."""
        return self.clock() + self.max_future_skew_s

    async def next_tick(self) -> None:
        """Wait until a tick that started after this call has finished."""
        target = self._ticks_started + 1
        while self._ticks_done < target:
            await self._tick_event.wait()

    # ---------------------------------------------------------------- sources

    async def submit(self, batch: Batch) -> None:
        """Queue a batch for the next round, waiting for room unless it was reserved."""
        if not batch.reserved:
            await self.backlog.reserve(batch.size)
        self._queue.put_nowait(batch)

    def _dropped(self, events: int) -> None:
        self.stats.dropped_batches_total += 1
        self.stats.dropped_events_total += events

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""
        return len(self._held)

    def held(self) -> list[Event]:
        """The held events in the order they will be applied (for a checkpoint)."""
        return [item[2] for item in sorted(self._held)]

    # ---------------------------------------------------------------- reads

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor clock (the last tick; see ``as_of``)."""
        return self.proc.view

    def _fresh(self, view: FloorReader) -> None:
        # Rejections and duplicates do not change the version; the document counts them.
        key = (view.as_of, view.version, msgspec.structs.astuple(view.counters()))
        if key != self._cache_key:
            self._cache_key = key
            self._cache.clear()
            self._document = None

    def document(self) -> Document:
        """The SPEC §7 document at the processor clock, built once per change."""
        view = self.proc.view
        self._fresh(view)
        if self._document is None:
            self._document = view.document()
        return self._document

    def cached(self, name: str, build: Callable[[], bytes]) -> bytes:
        """Encoded bytes of a whole-floor read, rebuilt only when the floor changed."""
        self._fresh(self.proc.view)
        found = self._cache.get(name)
        if found is None:
            found = self._cache[name] = build()
        return found

    def metrics_body(self) -> bytes:
        """The ``/metrics`` exposition at the processor clock."""
        from callfloor.metrics import render_service

        self._sync_gauges()
        return render_service(self)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the service takes events now, and the details ``/readyz`` shows."""
        if self.stopping:
            return False, {"status": "stopping"}
        if not self.started.is_set():
            return False, {"status": "starting"}
        backlog = self.backlog
        sources = {
            name: {
                "state": str(s.state),
                "restarts": s.restarts,
                "last_error": s.last_error,
                "retry_in_s": s.retry_in_s,
            }
            for name, s in sorted(self.supervisor.status().items())
        }
        if backlog.saturated or backlog.pending >= backlog.capacity:
            status = "overloaded"
        elif not self.supervisor.healthy():
            status = "degraded"
        else:
            status = "ready"
        return status == "ready", {
            "status": status,
            "pending_events": backlog.pending,
            "max_pending_events": backlog.capacity,
            "held_events": len(self._held),
            "sources": sources,
        }

    def _sync_gauges(self) -> None:
        stats = self.stats
        stats.held_events = len(self._held)
        stats.pending_events = self.backlog.pending

    # ---------------------------------------------------------------- the writer

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
        """Apply ``events[start:stop]`` behind the clock, hold the others; how many left."""
        proc = self.proc
        held = self._held
        keys = self._held_keys
        done = 0
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
                            done += 1
                            continue
                        if key in keys or proc.is_duplicate(event):
                            receipt.duplicates.append(pos)
                    self._seq += 1
                    heapq.heappush(held, (ts, self._seq, event, key))
                    keys[key] = keys.get(key, 0) + 1
                elif receipt is None:
                    done += 1
                    proc.apply(event)
                else:
                    done += 1
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
        return done

    async def _append(self, batches: list[Batch]) -> None:
        """Append the round to the store; retry (counted) until it is durable."""
        attempt = 0
        while True:
            try:
                await self.store.append(batches)
                return
            except Exception as exc:
                attempt += 1
                self.stats.ingest_errors_total += 1
                wait = min(5.0, 0.1 * 2.0**attempt)
                log.error(
                    "store_append_failed attempt=%d retry_in_s=%.1f error=%r", attempt, wait, exc
                )
                await asyncio.sleep(wait)

    async def _count_rejected(self, rejected: dict[str, int]) -> None:
        count = self.proc.count_rejected
        for reason, n in rejected.items():
            for done in range(n):
                count(reason)
                if done % 50_000 == 49_999:
                    await self._pause_if_due()

    async def _round(self, batches: list[Batch]) -> None:
        """Append, admit and acknowledge the batches of one round."""
        await self._append(batches)
        stats = self.stats
        for batch in batches:
            started = perf_counter()
            receipt = Receipt() if batch.ack is not None else None
            if batch.rejected:
                await self._count_rejected(batch.rejected)
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
        watermark = self.now()
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

    async def _write(self) -> None:
        """The ingest task: rounds as batches arrive, a tick every ``tick_s``."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        next_tick = loop.time()
        while True:
            batches: list[Batch] = []
            wait = next_tick - loop.time()
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
                if loop.time() >= next_tick:
                    await self._tick()
                    next_tick = loop.time() + self.tick_s
            except Exception:  # last line of defence: the writer never dies
                self.stats.ingest_errors_total += 1
                log.exception("ingest_round_error batches=%d", len(batches))
            await asyncio.sleep(0)  # queue.get() does not yield while batches are waiting

    # ---------------------------------------------------------------- lifecycle

    async def run(
        self,
        sources: Sequence[Source] = (),
        *,
        on_listening: Callable[[str], None] | None = None,
    ) -> None:
        """Serve until cancelled. ``on_listening(url)`` runs once the port is bound.

        Raises :class:`ListenError` if the address cannot be bound.
        """
        from callfloor.web import make_app

        try:
            self.proc.tick(self.now())
        except Exception:
            log.exception("tick_error at start")
        runner = web.AppRunner(
            make_app(self),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.idle_timeout_s,
            # Open change streams are ended first; this only bounds slow requests.
            shutdown_timeout=5.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(self.host, self.port, reason.lower()) from exc
        addresses = runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else self.port
        url = f"http://{self.host}:{self.bound_port}/"
        log.info("listening url=%s", url)
        self.started.set()
        if on_listening is not None:
            on_listening(url)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._write(), name="ingest")
                for source in (self.http, *sources):
                    tg.create_task(self.supervisor.run(source), name=f"source:{source.name}")
        finally:
            await self._shutdown(runner)

    async def _shutdown(self, runner: web.AppRunner) -> None:
        self.stopping = True
        self.http.abort()  # requests waiting for an answer get a 503: nothing more is taken
        self.bus.close()  # open change streams end now, not after the grace period
        await runner.cleanup()
        await self.final_checkpoint()
        await self.store.close()
        log.info("stopped")

    async def final_checkpoint(self) -> None:
        """The hook for the last checkpoint before exit (runs after the server closed).

        The store issue writes one here:
        ``encode_checkpoint(self.proc, sources=..., held=self.held())``. With the
        memory store there is nothing to keep.
        """
        return None
