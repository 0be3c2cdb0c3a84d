"""The live process: one service object owns the processor, its tasks and its HTTP server.

:class:`FloorService` runs named tasks in an :class:`asyncio.TaskGroup`: ``ingest``
(the :class:`~callfloor.service.writer.Writer`, the only task that changes the
processor) and one ``source:<name>`` task per source, each a
:class:`~callfloor.ingest.supervisor.Supervisor` run, next to the aiohttp server.

The processor clock moves once per tick (the writer ticks it to the watermark,
wall clock minus ``watermark_delay_s``), so every reader within a tick shares one
cached document whose ``as_of`` says which instant it describes; one queue or one
agent is rendered on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec
from aiohttp import web

from callfloor.bus import ChangeBus
from callfloor.config import Config
from callfloor.events import Event
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.future import FutureGate
from callfloor.ingest.http import HttpSource
from callfloor.ingest.source import Batch, Source
from callfloor.ingest.supervisor import Supervisor
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.merged import MergedFloor, MergedReader
from callfloor.processors.views import Staleness
from callfloor.service.alerting import AlertService
from callfloor.service.stats import IngestStats
from callfloor.service.writer import Writer
from callfloor.store.base import ALL, PartitionMap, Store, StoreHealth
from callfloor.store.open import open_store
from callfloor.web.server import MALFORMED_PROBLEMS
from callfloor.web.tls import server_context

if TYPE_CHECKING:
    from callfloor.processors.read import FloorReader
    from callfloor.processors.views import Document
    from callfloor.service.ownership import Coordinator, Follower
    from callfloor.sinks.redis_floor import RedisFloor

log = logging.getLogger("callfloor")

_C = TypeVar("_C")

FINAL_CHECKPOINT_S = 5.0
"""How long a stop waits for the round in progress and the last checkpoints, together."""


class ListenError(Exception):
    """The HTTP server could not listen on its address (the port is taken, say)."""

    def __init__(self, host: str, port: int, reason: str, *, port_problem: bool = True) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
        # The port is the problem (taken, or privileged), not the address: what to change.
        self.port_problem = port_problem


@contextlib.contextmanager
def _long_lived_heap() -> Iterator[None]:
    """Full garbage collections off the request path while the service runs.

    A live floor holds millions of objects; a full collection walks them all and
    stalled every request for up to 0.6 s on the bench floor after a 16 MB body.
    The state present at start (a warm-up, a restored checkpoint) is frozen out of
    collection, and collections run less often: the processor frees its objects by
    reference counting, so little is left for the collector (replay does the same).
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _is_memory(store: Store) -> bool:
    from callfloor.store.memory import MemoryStore

    return isinstance(store, MemoryStore)


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
        stream_timeout_s: float = 30.0,
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
        # A change-stream client whose socket takes no data for this long is cut off:
        # a client that stopped reading would otherwise hold its connection forever.
        self.stream_timeout_s = stream_timeout_s
        self.stats = IngestStats()
        self.stats.http_malformed_total = dict.fromkeys(MALFORMED_PROBLEMS, 0)
        # TLS served directly ([http] tls_cert, tls_key): a key that does not load is a
        # ConfigError here, before anything is opened.
        self.ssl_context = server_context(config.http, config.source)
        # The configured sites (the [sites] table, the queues' sites, grouped sites) are
        # known to a shared store from the start: their partitions get owners before any
        # of their events arrive.
        self.store: Store = (
            store
            if store is not None
            else open_store(config.store, sites=config.named_sites(), member=self._member_id())
        )
        # A store shared by processes (Redis): partitions are adopted as their leases
        # are won, and their logs followed; otherwise one partition of every site.
        self.shared = not self.store.applies_locally
        proc = None if self.shared else (processor or FloorProcessor(config, live=True))
        # Checkpoints only where a store keeps them (``[store] checkpoint_every``).
        durable = config.store.kind != "memory" or (store is not None and not _is_memory(store))
        self.backlog = Backlog(config.limits.max_pending_events)
        self.bus = ChangeBus(self.stats.changes_dropped_total)
        # Events ahead of the server clock, bounded per source ([limits] max_future_events).
        self.future = FutureGate(config.limits.max_future_events, clock)
        self.http = HttpSource(self.backlog, on_drop=self._dropped, future=self.future)
        self.supervisor = Supervisor(
            self.submit, up=self.stats.source_up, restarts=self.stats.source_restarts_total
        )
        self.writer = Writer(
            proc,
            stats=self.stats,
            backlog=self.backlog,
            store=self.store,
            bus=self.bus,
            watermark=self.now,
            tick_s=tick_s,
            config=config,
            checkpoint_every_s=config.store.checkpoint_every_s if durable else None,
            partitions=PartitionMap(config.store) if self.shared else None,
            wall_clock=clock,
        )
        self.durable = durable
        # Alert rules on every partition's processor, notifications to the sinks.
        self.alerting = AlertService(config, clock=clock)
        self.writer.on_partition = self.alerting.attach
        self.writer.on_ticked = self.alerting.after_tick
        self.writer.on_round = self.alerting.after_round
        self.writer.on_dropped = self.alerting.dropped
        for part in self.writer.parts.values():
            self.alerting.attach(part.proc)
        self.alerting.hook(self.writer)
        if self.alerting.outbox is not None:
            self.stats.alert_sinks = self.alerting.outbox.stats
        # A shared store: leases decide which partitions are applied here, and their
        # logs are followed. A redis:// store also gets the live floor written to it.
        self.coordinator: Coordinator | None = None
        self.follower: Follower | None = None
        if self.shared:
            from callfloor.service.ownership import Coordinator, Follower

            self.coordinator = Coordinator(self)
            self.follower = Follower(self)
        self.redis_floor: RedisFloor | None = None
        if config.store.kind == "redis":
            from callfloor.sinks.redis_floor import RedisFloor

            self.redis_floor = RedisFloor(self)
        self.started = asyncio.Event()
        self.stopping = False
        self.bound_port: int | None = None
        self._cache_key: tuple[object, ...] | None = None
        self._cache: dict[str, bytes] = {}
        self._document: Document | None = None
        self._merged: tuple[tuple[int, int], MergedFloor] | None = None
        self._shown: tuple[tuple[int, int], MergedReader] | None = None

    # ---------------------------------------------------------------- time

    def now(self) -> float:
        """The watermark: the processor runs up to here (wall clock minus the delay)."""
        return self.clock() - self.watermark_delay_s

    def _member_id(self) -> str | None:
        """This process's member id in a shared store: host and HTTP port.

        The same after a restart, so a process killed and started again finds its own
        leases and takes its partitions back at once instead of waiting for them to
        expire; unique among live processes, as two cannot listen on one port of one
        host. None (a random id per start) when the port is chosen by the system.
        """
        return f"{socket.gethostname()}:{self.port}" if self.port else None

    def store_problem(self) -> str | None:
        """Why the store cannot make events durable now (None: it can).

        Appends failing, or (idle: nothing appended lately) the store's own calls
        failing: a Redis store's heartbeats and followed reads find it gone within a
        fraction of ``lease_ttl``, so a body is refused at once instead of waiting for
        an append that cannot succeed.
        """
        return self._store_problem(self.store.health())

    def _store_problem(self, health: StoreHealth) -> str | None:
        if self.writer.store_failing:
            return self.writer.store_error or "appends to the store fail"
        if not health.up:
            return health.last_error or "the store does not answer"
        return None

    def not_after(self) -> float:
        """The latest ``ts`` ingest admits (wall clock plus the allowed skew)."""
        return self.clock() + self.max_future_skew_s

    async def next_tick(self) -> None:
        """Wait until a tick that started after this call has finished."""
        await self.writer.next_tick()

    @property
    def proc(self) -> FloorProcessor:
        """The live processor when there is one partition (changed only by the writer)."""
        return self.writer.proc

    @proc.setter
    def proc(self, proc: FloorProcessor) -> None:
        self.writer.proc = proc

    @property
    def floor(self) -> FloorProcessor | MergedFloor:
        """What metrics read: the one processor, or the local partitions merged.

        Only the partitions applied here: one served stale (its lease lost) is left
        out, so a process applying it elsewhere is never counted twice in a sum across
        processes (``sum by (site)``).
        """
        procs = self.writer.processors()
        if len(procs) == 1:
            return procs[0]
        key = (self.writer.generation, len(procs))
        # With no partition (standing by) the view reports the watermark: build anew.
        if self._merged is None or self._merged[0] != key or not procs:
            self._merged = (key, MergedFloor(self.config, self._merged_view(procs)))
        return self._merged[1]

    def _merged_view(self, procs: list[FloorProcessor]) -> MergedReader:
        labels = [label for label, _ in self.config.rolling_windows] + ["interval", "today"]
        return MergedReader(
            [p.view for p in procs],
            labels=labels,
            generation=self.writer.generation,
            clock=self.now(),
        )

    # ---------------------------------------------------------------- sources

    def alert_processors(self) -> list[FloorProcessor]:
        """The processors whose alerts this process evaluates (its partitions)."""
        return self.writer.processors()

    async def alert_command(self, command: Callable[[list[FloorProcessor]], _C]) -> _C:
        """Run an operator command on the alert state between two writer rounds, then
        checkpoint (when a store keeps checkpoints) so that it survives a crash."""
        result: list[_C] = []

        async def work() -> None:
            result.append(command(self.writer.processors()))
            if self.durable:
                await self.writer.checkpoint()

        await self.writer._between_rounds(work)
        return result[0]

    async def submit(self, batch: Batch) -> None:
        """Queue a batch for the next round, waiting for room unless it was reserved."""
        await self.writer.submit(batch)

    def _dropped(self, events: int) -> None:
        self.stats.dropped_batches_total += 1
        self.stats.dropped_events_total += events

    def _malformed(self, status: int, problem: str) -> None:
        """Count a request the HTTP server could not parse (answered before any route)."""
        stats = self.stats
        code = str(status)
        stats.http_errors_total[code] = stats.http_errors_total.get(code, 0) + 1
        stats.http_malformed_total[problem] = stats.http_malformed_total.get(problem, 0) + 1

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""
        return self.writer.held_events

    def held(self) -> list[Event]:
        """The held events in the order they will be applied (for a checkpoint)."""
        return self.writer.held()

    # ---------------------------------------------------------------- reads

    @property
    def view(self) -> FloorReader:
        """Typed reads at the processor clock (the last tick; see ``as_of``).

        The partitions applied here and those served stale (their lease lost: as they
        last stood, at their own last ``as_of``), which ``stale()`` names by site.
        """
        writer = self.writer
        if not writer.frozen:
            return self.floor.view
        shown = writer.readable()
        key = (writer.generation, len(shown))
        if self._shown is None or self._shown[0] != key:
            stale: dict[str, Staleness] = {}
            for proc, frozen in shown:
                if frozen is None:
                    continue
                mark = Staleness(partition=frozen.key, since=frozen.since, as_of=proc.clock)
                for site in proc.view.site_names():
                    stale.setdefault(site, mark)
            labels = [label for label, _ in self.config.rolling_windows] + ["interval", "today"]
            reader = MergedReader(
                [proc.view for proc, _ in shown],
                labels=labels,
                generation=writer.generation,
                clock=self.now(),
                stale=stale,
            )
            self._shown = (key, reader)
        return self._shown[1]

    def stale_partitions(self) -> dict[str, dict[str, object]]:
        """The partitions served stale, by key: since when, the ``as_of`` they are
        frozen at, their sites (``/readyz``)."""
        return {
            key: {
                "since": frozen.since,
                "as_of": frozen.proc.clock,
                "sites": frozen.proc.view.site_names(),
            }
            for key, frozen in sorted(self.writer.frozen.items())
        }

    def _fresh(self, view: FloorReader) -> None:
        # Rejections and duplicates do not change the version; the document counts them.
        key = (view.as_of, view.version, msgspec.structs.astuple(view.counters()))
        if key != self._cache_key:
            self._cache_key = key
            self._cache.clear()
            self._document = None

    def document(self) -> Document:
        """The SPEC §7 document at the processor clock, built once per change."""
        view = self.view
        self._fresh(view)
        if self._document is None:
            self._document = view.document()
        return self._document

    def cached(self, name: str, build: Callable[[], bytes]) -> bytes:
        """Encoded bytes of a whole-floor read, rebuilt only when the floor changed."""
        self._fresh(self.view)
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
        store_error = self.store_problem()
        store_failing = store_error is not None
        stale = self.stale_partitions()
        if backlog.saturated or backlog.pending >= backlog.capacity:
            status = "overloaded"
        elif store_failing or stale or not self.supervisor.healthy():
            # Nothing is acknowledged while the store fails: senders wait, then retry.
            # A partition served stale shows values that no longer move.
            status = "degraded"
        elif self.supervisor.first_start():
            # Not subscribed yet: a broker drops what a new session is sent before its
            # first subscription, so a publisher must not be told to go ahead.
            status = "starting"
        else:
            status = "ready"
        return status == "ready", {
            "status": status,
            "pending_events": backlog.pending,
            "max_pending_events": backlog.capacity,
            "held_events": self.writer.held_events,
            "store": "failing" if store_failing else "up",
            "store_error": store_error,
            "partitions": sorted(self.writer.owned),
            "stale": stale,
            "sources": sources,
            **({"ownership": self.coordinator.status()} if self.coordinator else {}),
            **(
                {
                    "redis_floor": {
                        "state": "up" if self.redis_floor.up else "failing",
                        "last_error": self.redis_floor.last_error,
                    }
                }
                if self.redis_floor
                else {}
            ),
        }

    def _sync_gauges(self) -> None:
        stats = self.stats
        writer = self.writer
        stats.held_events = writer.held_events
        stats.pending_events = self.backlog.pending
        health = self.store.health()
        stats.store_up = self._store_problem(health) is None
        stats.store_append_errors_total = writer.store_append_errors_total
        stats.checkpoints_total = writer.checkpoints_total
        stats.checkpoint_errors_total = writer.checkpoint_errors_total
        stats.checkpoint_seconds = writer.checkpoint_seconds_last
        stats.checkpoint_last_success_unix = writer.checkpoint_last_success_unix
        stats.checkpoint_fallbacks_total = writer.checkpoint_fallbacks_total
        stats.recovered_events_total = writer.recovered_events
        stats.partitions_owned = len(writer.parts)
        stats.partition_stale_since = {key: f.since for key, f in writer.frozen.items()}
        stats.partition_adoptions_total = writer.adopted_total
        stats.partition_drops_total = writer.dropped_total
        # The coordinator sees every lease it held go (a renewal refused, or not renewed
        # in time); the writer sees only checkpoints refused, which the next renewal
        # also finds: counted once, by the coordinator when there is one.
        coordinator = self.coordinator
        lost = coordinator.leases_lost if coordinator is not None else writer.leases_lost_total
        stats.leases_lost_total = lost
        stats.store_stale_entries_total = writer.stale_entries_total
        stats.store_errors_total = health.errors_by_op
        stats.store_reconnects_total = health.reconnects
        stats.store_bad_entries_total = health.bad_entries
        stats.store_torn_records_total = health.torn_records
        stats.store_append_retries_found_total = health.append_retries_found
        if coordinator is not None:
            stats.partition_adoption_errors_total = coordinator.adopt_errors
            stats.partition_handovers_total = coordinator.handed_over
        if self.follower is not None:
            stats.follow_rewinds_total = self.follower.rewinds
        self.alerting.sync_stats(stats, writer.processors())
        sink = self.redis_floor
        if sink is not None:
            stats.redis_floor_up = sink.up
            stats.redis_floor_errors_total = sink.errors
            stats.redis_floor_resyncs_total = sink.resyncs

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
        from callfloor.web.server import EdgeRunner

        await self.store.open()
        if self.durable and not self.shared:
            # The state the last run reached: its checkpoint and the log after it. (A
            # shared store's partitions are adopted only once their leases are won.)
            await self.writer.recover((ALL,))
        if self.coordinator is not None:
            # Before anything is taken: the partitions wanted here and free (or still
            # leased to this member id by the run a crash ended) are adopted now, so a
            # client's or a broker's resends after a restart are recognised as such.
            await self.coordinator.join()
        try:
            for proc in self.writer.processors():
                proc.tick(self.now())
        except Exception:
            log.exception("tick_error at start")
        # Malformed requests are answered as JSON, counted and logged (rate-limited) by
        # the edge server instead of aiohttp's text/plain answer and traceback.
        runner = EdgeRunner(
            make_app(self),
            on_malformed=self._malformed,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.idle_timeout_s,
            # Open change streams are ended first; this only bounds slow requests.
            shutdown_timeout=5.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            # A host that does not resolve is a socket.gaierror: its errno is negative,
            # not an OS errno (os.strerror would say "unknown error -2").
            if exc.errno and exc.errno > 0:
                reason = os.strerror(exc.errno)
            else:
                reason = exc.strerror or str(exc)
            port_problem = exc.errno in (errno.EADDRINUSE, errno.EACCES)
            raise ListenError(
                self.host, self.port, reason.lower(), port_problem=port_problem
            ) from exc
        addresses = runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else self.port
        scheme = "https" if self.ssl_context is not None else "http"
        url = f"{scheme}://{self.host}:{self.bound_port}/"
        log.info("listening url=%s", url)
        for source in sources:
            self.supervisor.register(source)  # /readyz says starting until each is up
        self.started.set()
        if on_listening is not None:
            on_listening(url)
        try:
            with _long_lived_heap():
                await self._serve(sources)
        finally:
            await self._shutdown(runner)

    async def _serve(self, sources: Sequence[Source]) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.writer.run(), name="ingest")
            if self.alerting.outbox is not None:
                tg.create_task(self.alerting.outbox.run(), name="alerts")
            tg.create_task(self.alerting.run(), name="alerts-rederive")
            for source in (self.http, *sources):
                tg.create_task(self.supervisor.run(source), name=f"source:{source.name}")
            if self.coordinator is not None and self.follower is not None:
                tg.create_task(self.coordinator.run(), name="ownership")
                tg.create_task(self.follower.run(), name="follow")
            if self.redis_floor is not None:
                tg.create_task(self.redis_floor.run(), name="redis-floor")

    async def _shutdown(self, runner: web.AppRunner) -> None:
        self.stopping = True
        self.http.abort()  # requests waiting for an answer get a 503: nothing more is taken
        self.bus.close()  # open change streams end now, not after the grace period
        await runner.cleanup()
        await self.final_checkpoint()
        if self.coordinator is not None:
            # After the last checkpoint: the others take the partitions over at once.
            await self.coordinator.close()
        await self.store.close()
        log.info("stopped")

    async def final_checkpoint(self) -> None:
        """The last checkpoint before exit (after the server closed), covering whole rounds.

        The round in progress is let finish first; if it does not within
        :data:`FINAL_CHECKPOINT_S` (a store that hangs) there is no final checkpoint, and
        the saves that follow share what is left of that deadline: the last periodic
        checkpoints and the log after them recover everything anyway.
        """
        if not self.durable:
            return
        started = time.monotonic()
        if not await self.writer.settle(FINAL_CHECKPOINT_S):
            log.warning("final_checkpoint_skipped reason='the round in progress did not end'")
            return
        # One deadline for every partition's save: a store that does not answer must not
        # hold the stop for its timeout once per partition.
        left = max(0.5, FINAL_CHECKPOINT_S - (time.monotonic() - started))
        try:
            async with asyncio.timeout(left):
                await self.writer.checkpoint()
        except TimeoutError:
            log.warning(
                "final_checkpoint_incomplete reason='the store did not answer within %.1f s'",
                FINAL_CHECKPOINT_S,
            )
