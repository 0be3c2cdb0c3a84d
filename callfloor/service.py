"""The live process: one service object owns the processor and its tasks.

:class:`FloorService` runs named tasks in an :class:`asyncio.TaskGroup`: ``ingest``
(drains batches from sources into the processor), ``clock`` (advances time while
nothing arrives) and one task per source, next to the aiohttp ``web`` server. The
processor itself is synchronous: a batch is applied in one go with no ``await`` per
event, and readers render at the processor clock in the same thread, so no locks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from callfloor.config import Config, load_config
from callfloor.events import Event
from callfloor.ingest.decode import Rejection
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.snapshot import Doc, build_document

log = logging.getLogger("callfloor")

Source = Callable[["FloorService"], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class EventBatch:
    """Events (and rejections) that arrived together from one source."""

    events: list[Event]
    rejections: list[Rejection] = field(default_factory=list)
    source: str = "unknown"


@dataclass
class IngestStats:
    """Counters of the live shell (the processor counts events; this counts transport)."""

    batches_total: int = 0
    batch_events_total: int = 0
    batch_seconds_sum: float = 0.0
    batch_seconds_max: float = 0.0
    dropped_batches_total: int = 0
    dropped_events_total: int = 0
    changes_dropped_total: int = 0
    held_events: int = 0
    http_requests_total: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)


class FloorService:
    """Owns the live processor, its ingest queue, its clock and its HTTP server."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        port: int | None = None,
        max_pending_batches: int = 4096,
        tick_s: float = 1.0,
        watermark_delay_s: float = 1.0,
        max_future_skew_s: float = 300.0,
        processor: FloorProcessor | None = None,
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
        self.proc = processor or FloorProcessor(config, live=True)
        self.stats = IngestStats()
        self._queue: asyncio.Queue[EventBatch] = asyncio.Queue(maxsize=max_pending_batches)
        self.started = asyncio.Event()
        self.bound_port: int | None = None
        self._doc_cache: tuple[tuple[float, int, int], Doc] | None = None
        # Change sets drained every tick and pushed to subscribers (wallboards).
        self._subscribers: set[asyncio.Queue[Doc | None]] = set()
        # (ts, seq, event) received ahead of the watermark; bounded by the future skew.
        self._held: list[tuple[float, int, Event]] = []
        self._held_seq = 0

    # ---------------------------------------------------------------- sources

    def submit_nowait(self, batch: EventBatch) -> bool:
        """Queue a batch without waiting; False (and counted as dropped) when full."""
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.stats.dropped_batches_total += 1
            self.stats.dropped_events_total += len(batch.events)
            return False
        return True

    async def submit(self, batch: EventBatch) -> None:
        """Queue a batch, waiting for room (back-pressure for in-process sources)."""
        await self._queue.put(batch)

    def not_after(self) -> float:
        """The latest ``ts`` ingest admits (wall clock plus the allowed skew)."""
        return self.clock() + self.max_future_skew_s

    @property
    def pending_batches(self) -> int:
        """Batches waiting for the ingest task."""
        return self._queue.qsize()

    @property
    def queue_capacity(self) -> int:
        """How many batches the ingest queue holds."""
        return self._queue.maxsize

    # ---------------------------------------------------------------- reads

    def now(self) -> float:
        """The watermark: the processor runs up to here (wall clock minus the delay)."""
        return self.clock() - self.watermark_delay_s

    def read(self) -> FloorProcessor:
        """The processor, advanced to now: every change up to exactly now is in it."""
        self._release(self.now())
        return self.proc

    def document(self) -> Doc:
        """The SPEC §7 document now (cached while neither clock nor events moved)."""
        proc = self.read()
        key = (proc.clock, self.stats.batch_events_total, proc.counters["rejected"])
        if self._doc_cache is not None and self._doc_cache[0] == key:
            return self._doc_cache[1]
        doc = build_document(proc)
        self._doc_cache = (key, doc)
        return doc

    # ---------------------------------------------------------------- changes

    def subscribe(self, maxsize: int = 64) -> asyncio.Queue[Doc | None]:
        """A queue that receives every change set from now on (drop-oldest when full).

        ``None`` means the service is stopping: the subscriber should finish.
        """
        queue: asyncio.Queue[Doc | None] = asyncio.Queue(maxsize=maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Doc | None]) -> None:
        """Stop sending change sets to ``queue``."""
        self._subscribers.discard(queue)

    def close_subscribers(self) -> None:
        """Tell every subscriber the service is stopping (so streams end promptly)."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def publish_changes(self) -> None:
        """Drain the processor's change set and push it to every subscriber."""
        changes = self.proc.drain_changes()
        if not changes or not self._subscribers:
            return
        message = msgspec.to_builtins(changes)
        for queue in self._subscribers:
            if queue.full():
                # A slow reader loses its oldest change set, never stalls processing.
                queue.get_nowait()
                self.stats.changes_dropped_total += 1
            queue.put_nowait(message)

    # ---------------------------------------------------------------- tasks

    def _apply(self, batch: EventBatch) -> None:
        proc = self.proc
        for rejection in batch.rejections:
            proc.count_rejected(rejection.reason)
        clock = proc.clock
        held = self._held
        for event in batch.events:
            ts: float = event.ts  # type: ignore[assignment]
            if ts > clock:
                # Newer than the watermark: held and applied in time order once the
                # watermark passes it, so the processor clock never runs ahead of now.
                self._held_seq += 1
                heapq.heappush(held, (ts, self._held_seq, event))
            else:
                proc.apply(event)  # the watermark already passed it: a late event
        stats = self.stats
        stats.by_source[batch.source] = stats.by_source.get(batch.source, 0) + len(batch.events)

    def _release(self, watermark: float) -> None:
        """Apply held events up to ``watermark`` in time order, then tick to it."""
        held = self._held
        apply = self.proc.apply
        while held and held[0][0] <= watermark:
            apply(heapq.heappop(held)[2])
        self.proc.tick(watermark)
        self.stats.held_events = len(held)

    @property
    def held_events(self) -> int:
        """Events received but newer than the watermark (applied once it passes them)."""
        return len(self._held)

    async def _ingest(self) -> None:
        queue = self._queue
        while True:
            first = await queue.get()
            batches = [first]
            count = len(first.events)
            # One round takes what is queued, up to a bound, so readers get a turn.
            while len(batches) < 256 and count < 20_000:
                try:
                    batch = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                batches.append(batch)
                count += len(batch.events)
            started = time.perf_counter()
            for batch in batches:
                self._apply(batch)
            self._release(self.now())
            elapsed = time.perf_counter() - started
            stats = self.stats
            stats.batches_total += len(batches)
            stats.batch_events_total += count
            stats.batch_seconds_sum += elapsed
            stats.batch_seconds_max = max(stats.batch_seconds_max, elapsed)
            await asyncio.sleep(0)  # queue.get() does not yield while batches are waiting

    async def _clock(self) -> None:
        while True:
            self._release(self.now())
            self.publish_changes()
            await asyncio.sleep(self.tick_s)

    async def run(self, sources: Sequence[tuple[str, Source]] = ()) -> None:
        """Serve until cancelled; sources are ``(name, coroutine function)`` pairs."""
        from callfloor.web import make_app

        # Open streams are ended below; the grace period only bounds slow requests.
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        addresses = runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else self.port
        log.info("listening on http://%s:%s", self.host, self.bound_port)
        self.started.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._ingest(), name="ingest")
                tg.create_task(self._clock(), name="clock")
                for name, source in sources:
                    tg.create_task(source(self), name=f"source:{name}")
        finally:
            self.close_subscribers()
            await runner.cleanup()


# -------------------------------------------------------------------- commands


def _serve_forever(service: FloorService, sources: Sequence[tuple[str, Source]]) -> int:
    async def main() -> None:
        await service.run(sources)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    print("callfloor: stopped", flush=True)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``callfloor serve``: HTTP ingest, API and metrics on the configured address."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_config(args.config)
    service = FloorService(config, host=args.host, port=args.port)
    print(f"callfloor: serving on http://{service.host}:{service.port}/", flush=True)
    return _serve_forever(service, ())


def run_demo(args: argparse.Namespace) -> int:
    """``callfloor demo``: a simulated floor feeding the live service, nothing else needed."""
    from callfloor.ingest.simulated import demo_setup

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    setup = demo_setup(
        seed=args.seed,
        agents=args.agents,
        queues=args.queues,
        speed=args.speed,
        config_path=args.config,
    )
    service = FloorService(setup.config, clock=setup.clock, host=args.host, port=args.port)
    # The simulated minutes before now go in first, so the wallboard has numbers at
    # once and the clock task never runs ahead of them (they would count as late).
    service.proc.apply_all(setup.warmup)
    base = f"http://{service.host}:{service.port}"
    print(
        "callfloor demo: a simulated contact centre "
        f"({args.agents} agents, {args.queues} queues, sites {', '.join(setup.site_names)})\n"
        f"  live metrics     {base}/metrics\n"
        f"  state document   {base}/api/v1/snapshot\n"
        f"  queues / agents  {base}/api/v1/queues  {base}/api/v1/agents\n"
        f"  violations       {base}/api/v1/violations\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    return _serve_forever(service, [("simulator", setup.source)])
