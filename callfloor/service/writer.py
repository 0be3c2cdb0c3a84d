"""The writer: the only task that changes the processors, in rounds and ticks.

A round takes what the sources queued (up to 256 batches or 20,000 events),
appends it to the :class:`~callfloor.store.base.Store` in one call (retried,
counted, until it is durable), then admits each event into its partition's
processor: one behind the processor clock is applied at once (a late event), one
ahead of it is held until the watermark passes its ``ts``. Only then is each batch
acknowledged with its :class:`~callfloor.ingest.source.Receipt`. Once per ``tick_s``
the writer releases the held events the watermark passed, in time order, ticks the
processors to the watermark and publishes the change sets on the bus.

Every ``checkpoint_every`` (between rounds, so a checkpoint covers whole rounds) the
writer checkpoints each partition with the log position it covers, its held events
and the sections features registered (:meth:`Writer.add_section`); the store keeps it
and the one before, with the log back to the older one. At start :meth:`Writer.recover`
loads the newest checkpoint that is intact (a damaged one, found by its checksum, is
counted, logged at ERROR and set aside: the one before it and the longer log are used,
or the whole log) and replays the log after it, each round at the processor clock it
was first admitted at (the store keeps it with the round), so the recovered state is
the one the crash interrupted. A damaged checkpoint is never served.
A store that is followed rather than applied locally (Redis, shared by processes)
hands its log entries to :meth:`Writer.deliver`; they are admitted the same way.

The processor is synchronous: no ``await`` per event. The writer looks at the
clock every 64 events (of a round, of held events released, of a log entry admitted)
and gives readers a turn every ``SLICE_S``. An exception
while admitting or releasing an event rejects that event (``internal_error``,
counted, logged once with the event) and the round goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from time import time as wall_clock
from typing import Any, Final, Generic, TypeVar

import msgspec

from callfloor.bus import ChangeBus
from callfloor.config import Config
from callfloor.events import Event, dedup_key
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.source import Batch, Receipt
from callfloor.processors.engine import FloorProcessor
from callfloor.processors.limits import Refusal
from callfloor.processors.state import (
    CHECKPOINT_PROBLEMS,
    CheckpointError,
    Restored,
    Section,
    decode_checkpoint,
    encode_checkpoint,
)
from callfloor.processors.views import ChangeSet
from callfloor.service.stats import IngestStats
from callfloor.store.base import (
    ALL,
    KEPT_CHECKPOINTS,
    LeaseLost,
    Logged,
    PartitionMap,
    Store,
    StoreError,
)

log = logging.getLogger("callfloor")

_T = TypeVar("_T")

SLICE_S: Final = 0.005  # the longest the writer runs before readers get a turn
ROUND_BATCHES: Final = 256
ROUND_EVENTS: Final = 20_000
# Held events are released as soon as the watermark passes them, at most this often
# (their visibility does not wait for the next tick); ticks publish the change sets.
RELEASE_S: Final = 0.01
_STEP: Final = 64  # events admitted between two looks at the clock (an event may be slow)

# What each kept checkpoint is called in logs and errors, by the store's slot.
_SLOTS: Final = ("newest", "previous")
assert len(_SLOTS) == KEPT_CHECKPOINTS

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


def _translated(
    receipt: Receipt, keep: list[int], resent: list[int], rejected_resent: list[int]
) -> Receipt:
    """A receipt of the kept events, in positions of the batch they were taken from."""
    return Receipt(
        duplicates=sorted([keep[i] for i in receipt.duplicates] + resent),
        refused=[(keep[i], refusal) for i, refusal in receipt.refused],
        resent=len(resent),
        rejected_resent=rejected_resent,
    )


def _remember_rejection(proc: FloorProcessor, key: str) -> None:
    """Remember a rejection's id with the event ids, at the processor's clock (0 before
    its first event: at -inf every remembered id would start a new generation and
    forget the one before)."""
    clock = proc.clock
    proc.ids.seen(key, clock if clock > float("-inf") else 0.0)


def _describe(exc: BaseException) -> str:
    """A store failure for an answer or a log line: its kind and message, bounded."""
    text = str(exc) or type(exc).__name__
    text = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
    return text if len(text) <= 200 else text[:200] + "…"


def _merged_changes(changes: list[ChangeSet], watermark: float) -> ChangeSet:
    """The change sets of several partitions' tick as one."""
    return ChangeSet(
        as_of=max((c.as_of for c in changes), default=watermark),
        queues=sorted({n for c in changes for n in c.queues}),
        sites=sorted({n for c in changes for n in c.sites}),
        agents=sorted({n for c in changes for n in c.agents}),
        violations=[v for c in changes for v in c.violations],
    )


class _Control:
    """Work the writer's task runs between rounds (adopting or dropping a partition)."""

    __slots__ = ("done", "work")

    def __init__(self, work: Callable[[], Awaitable[None]], done: asyncio.Future[None]) -> None:
        self.work = work
        self.done = done


@dataclass(frozen=True, slots=True)
class SectionHook(Generic[_T]):
    """A feature's state in every checkpoint: ``save(partition)`` gives the section's
    value when a partition is checkpointed, ``restore(partition, value)`` takes what
    recovery restored (the section's empty value when there was nothing to restore)."""

    section: Section[_T]
    save: Callable[[str], _T]
    restore: Callable[[str, _T], None]


class Partition:
    """One partition's processor, its held events and the log positions it covers."""

    __slots__ = ("held", "held_keys", "key", "positions", "proc", "saved")

    def __init__(self, key: str, proc: FloorProcessor) -> None:
        self.key = key
        self.proc = proc
        # (ts, seq, event, dedup key) received ahead of the watermark; the keys of the
        # held events are counted so a duplicate of a held event is reported as one.
        self.held: list[tuple[float, int, Event, object]] = []
        self.held_keys: dict[object, int] = {}
        self.positions: dict[str, str] = {}  # store log -> position covered
        # The positions of its newest intact checkpoint in the store ({}: none): the
        # next one keeps it as the previous one, and the log back to here.
        self.saved: dict[str, str] = {}

    def held_events(self) -> list[Event]:
        """The held events in the order they will be applied (for a checkpoint)."""
        return [item[2] for item in sorted(self.held)]


class Frozen:
    """A partition no longer applied here, kept for readers as it last stood.

    Its lease could not be renewed (Redis unreachable): applying it could make two
    processes apply one partition, serving nothing would blank the floor. Its processor
    is never fed or ticked again, so its clock (``as_of``) stays where it was and no
    wait grows on it; ``since`` is when this process stopped applying it (wall clock).
    """

    __slots__ = ("key", "proc", "since")

    def __init__(self, key: str, proc: FloorProcessor, since: float) -> None:
        self.key = key
        self.proc = proc
        self.since = since


class Writer:
    """Rounds and ticks over the local partitions (see the module docstring)."""

    def __init__(
        self,
        proc: FloorProcessor | None,
        *,
        stats: IngestStats,
        backlog: Backlog,
        store: Store,
        bus: ChangeBus,
        watermark: Callable[[], float],
        tick_s: float,
        config: Config | None = None,
        checkpoint_every_s: float | None = None,
        partitions: PartitionMap | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if config is None:
            if proc is None:
                raise ValueError("a writer without a processor needs the configuration")
            config = proc.config
        self.config = config
        # ``proc``: the one partition of every site; None: partitions come and go
        # (adopt/drop), each a set of sites with its own processor (a shared store).
        # Called with each partition's processor when the partition is made (the alert
        # driver attaches itself), and with the processors after each tick.
        self.on_partition: Callable[[FloorProcessor], object] | None = None
        self.on_ticked: Callable[[list[FloorProcessor]], object] | None = None
        self.on_round: Callable[[list[FloorProcessor]], object] | None = None
        # Called with a partition's key and processor when this process stops applying it.
        self.on_dropped: Callable[[str, FloorProcessor], object] | None = None
        self.parts: dict[str, Partition] = {} if proc is None else {ALL: Partition(ALL, proc)}
        self.partitions = partitions
        self._partition_of = None if partitions is None else partitions.of
        self.stats = stats
        self.backlog = backlog
        self.store = store
        self.bus = bus
        self._now = watermark
        self.tick_s = tick_s
        self.checkpoint_every_s = checkpoint_every_s
        self._queue: asyncio.Queue[Batch | Logged | _Control] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self._slice_started = 0.0
        self._ticks_started = 0
        self._ticks_done = 0
        self._tick_event = asyncio.Event()
        self._next_tick = float("-inf")  # loop time of the next tick
        self._next_release = float("inf")  # loop time the earliest held event falls due
        self._last_release = float("-inf")
        self._next_checkpoint = float("inf")
        # The round (and tick) in progress: shutdown lets it finish (see settle()).
        self._work: asyncio.Future[None] | None = None
        # Set while an append to the store fails (readiness says degraded).
        self.store_failing = False
        self.store_error: str | None = None  # the last append's failure, while failing
        self.store_append_errors_total = 0  # failed appends (each is retried)
        self.checkpoints_total = 0
        self.checkpoint_errors_total = 0
        self.checkpoint_seconds_last = 0.0
        self.checkpoint_last_success_unix: float | None = None  # wall clock
        self.recovered_events = 0
        self.stale_entries_total = 0  # followed entries dropped as not contiguous
        self.adopted_total = 0
        self.dropped_total = 0
        self.leases_lost_total = 0  # checkpoints refused: another member owns it now
        # Kept checkpoints recovery could not restore, by CheckpointError.reason.
        self.checkpoint_fallbacks_total: dict[str, int] = dict.fromkeys(CHECKPOINT_PROBLEMS, 0)
        self._sections: list[SectionHook[Any]] = []
        # Bumped whenever the set of partitions changes (merged reads' cache key).
        self.generation = 0
        self._restoring: set[str] = set()  # partitions being adopted (not read yet)
        # Partitions whose lease was lost, as they last stood: served to readers (marked
        # stale), never applied, ticked, published or checkpointed; gone once the
        # partition is adopted again or another process is known to apply it.
        self.frozen: dict[str, Frozen] = {}
        self._wall = wall_clock

    # ---------------------------------------------------------------- partitions

    @property
    def proc(self) -> FloorProcessor:
        """The processor of the one local partition (memory and file stores)."""
        if len(self.parts) != 1:
            raise RuntimeError("several partitions: read each one's processor")
        return next(iter(self.parts.values())).proc

    @proc.setter
    def proc(self, proc: FloorProcessor) -> None:
        self.parts = {ALL: Partition(ALL, proc)}
        self._attach(proc)
        self.generation += 1

    def _attach(self, proc: FloorProcessor) -> None:
        if self.on_partition is not None:
            self.on_partition(proc)

    @property
    def owned(self) -> frozenset[str]:
        """The partitions this process applies (and checkpoints)."""
        return frozenset(self.parts)

    def processors(self) -> list[FloorProcessor]:
        """The local partitions' processors, by partition key (what readers see: not a
        partition being adopted, until it is restored and at the watermark)."""
        restoring = self._restoring
        return [self.parts[key].proc for key in sorted(self.parts) if key not in restoring]

    def readable(self) -> list[tuple[FloorProcessor, Frozen | None]]:
        """What readers of this process see, by partition key: the applied partitions
        (as :meth:`processors`) and the frozen ones, each with its :class:`Frozen` mark
        (a frozen copy stays readable while its partition is being adopted again)."""
        restoring = self._restoring
        shown: dict[str, tuple[FloorProcessor, Frozen | None]] = {
            key: (part.proc, None) for key, part in self.parts.items() if key not in restoring
        }
        for key, frozen in self.frozen.items():
            shown.setdefault(key, (frozen.proc, frozen))
        return [shown[key] for key in sorted(shown)]

    def discard(self, key: str) -> None:
        """Forget the frozen copy of partition ``key`` (another process applies it now).

        Readers are told its names changed: they are no longer here.
        """
        frozen = self.frozen.pop(key, None)
        if frozen is None:
            return
        self.generation += 1
        self._publish_names(frozen.proc)
        log.info("partition_stale_discarded partition=%s", key)

    def cursors(self) -> dict[str, dict[str, str]]:
        """Each local partition's log positions: where following its log goes on."""
        return {key: dict(part.positions) for key, part in self.parts.items()}

    def partition_config(self, key: str) -> Config:
        """The configuration a partition's processor runs with: its sites' part."""
        sites = None if self.partitions is None else self.partitions.sites(key)
        return self.config if sites is None else self.config.for_sites(sites)

    async def adopt(self, key: str) -> None:
        """Take partition ``key`` on: load its checkpoint and replay its log after it.

        Runs inside the writer's task (between rounds) once the writer runs, so a round
        never sees a partition half restored.
        """
        if key in self.parts:
            return

        async def work() -> None:
            # Readers do not see it half restored (a processor with no time yet, or a
            # part of its log applied) while its log is read and replayed.
            self._restoring.add(key)
            try:
                await self.recover((key,))
                part = self.parts.get(key)
                if part is not None:
                    # To the watermark at once, as the partitions recovered at start
                    # are: a processor with no time yet cannot be read, and readers
                    # would otherwise wait for the next tick.
                    await self._advance(part, self._now())
                    if self._here(part) and self.frozen.pop(key, None) is not None:
                        # Live again: readers re-read its names (the frozen copy is gone).
                        self._publish_names(part.proc)
            except BaseException:
                # Half restored (its log could not be read to the end: a hole): never
                # applied, followed or checkpointed. The coordinator releases the lease
                # and tries again later from the store, not from this.
                half = self.parts.pop(key, None)
                if half is not None:
                    self.backlog.release(len(half.held))
                raise
            finally:
                self._restoring.discard(key)
                self.generation += 1

        await self._between_rounds(work)
        self.adopted_total += 1

    async def _advance(self, part: Partition, watermark: float) -> bool:
        """Release ``part``'s held events the watermark passed (in slices), then tick it
        to the watermark; False if it was dropped meanwhile or its tick failed."""
        held = part.held
        while held and held[0][0] <= watermark and self._here(part):
            self._release_some(part, watermark, _STEP)
            await self._pause_if_due()
        if not self._here(part):
            return False
        try:
            part.proc.tick(watermark)
        except Exception:
            self.stats.ingest_errors_total += 1
            log.exception("tick_error partition=%s watermark=%s", part.key, watermark)
            return False
        return True

    async def drop(self, key: str, *, checkpoint: bool) -> None:
        """Stop applying partition ``key`` (after a last checkpoint, if asked).

        A hand-over checkpoints first so the next owner starts where this one ends; a
        lost lease must not (another member may own the partition already). Readers
        are told its names changed. A lost lease leaves the partition *frozen*: readers
        go on seeing it as it last stood, marked stale (see :class:`Frozen`); a hand-over
        does not (the next owner applies it).
        """

        async def work() -> None:
            part = self.parts.get(key)
            if part is None:
                return
            if checkpoint:
                await self._checkpoint_part(part)
            # Not one half restored (its log not replayed to the end): never served.
            self._forget(part, freeze=not checkpoint and key not in self._restoring)
            log.info("partition_dropped partition=%s checkpoint=%s", key, checkpoint)

        if not checkpoint:
            # A lost lease goes at once, not between rounds: the round in progress may
            # be an append retried for as long as Redis is down, and another member may
            # take the partition soon after this one stopped trusting its lease.
            await work()
            return
        await self._between_rounds(work)

    def _here(self, part: Partition) -> bool:
        """Whether ``part`` is still applied here (a lost lease drops it at any await)."""
        return self.parts.get(part.key) is part

    def _forget(self, part: Partition, *, freeze: bool = False) -> None:
        """Remove a partition from this process (its held events leave the backlog);
        ``freeze``: keep it for readers as it stands (see :class:`Frozen`)."""
        if self.parts.get(part.key) is not part:
            return
        del self.parts[part.key]
        self.generation += 1
        self.dropped_total += 1
        if self.on_dropped is not None:
            try:
                self.on_dropped(part.key, part.proc)
            except Exception:
                log.exception("partition_drop_hook_error partition=%s", part.key)
        self.backlog.release(len(part.held))
        if freeze:
            frozen = self.frozen[part.key] = Frozen(part.key, part.proc, self._wall())
            log.warning(
                "partition_stale partition=%s as_of=%.3f since=%.3f",
                part.key,
                part.proc.clock,
                frozen.since,
            )
        self._publish_names(part.proc)
        self._sync_gauges()

    def _publish_names(self, proc: FloorProcessor | None) -> None:
        """Tell readers every name of ``proc`` changed (it left, froze or is live again):
        once, when it happens; nothing of a frozen partition is published after that."""
        if proc is None:
            return
        with contextlib.suppress(Exception):
            view = proc.view
            self.bus.publish(
                ChangeSet(
                    as_of=proc.clock,
                    queues=view.queue_names(),
                    sites=view.site_names(),
                    agents=view.agent_names(),
                    violations=[],
                )
            )

    async def _between_rounds(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in the writer's task between two rounds (now, if it is not running)."""
        current = asyncio.current_task()
        if self._task is None or self._task.done() or current in (self._task, self._work):
            await work()
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Control(work, done))
        await done

    def _part(self, site: str) -> Partition | None:
        key = ALL if self._partition_of is None else self._partition_of(site)
        return self.parts.get(key)

    async def submit(self, batch: Batch) -> None:
        """Queue a batch for the next round, waiting for room unless it was reserved."""
        if not batch.reserved:
            await self.backlog.reserve(batch.size)
        self._queue.put_nowait(batch)

    def deliver(self, logged: Logged) -> None:
        """Queue events read from a followed store log (they were acknowledged already)."""
        self._queue.put_nowait(logged)

    @property
    def held_events(self) -> int:
        """Events received ahead of the watermark, not applied yet."""
        return sum(len(part.held) for part in self.parts.values())

    def held(self) -> list[Event]:
        """The held events in the order they will be applied (for a checkpoint)."""
        return [event for part in self.parts.values() for event in part.held_events()]

    async def next_tick(self) -> None:
        """Wait until a tick that started after this call has finished."""
        target = self._ticks_started + 1
        while self._ticks_done < target:
            await self._tick_event.wait()

    def _sync_gauges(self) -> None:
        self.stats.held_events = self.held_events
        self.stats.pending_events = self.backlog.pending

    async def _pause_if_due(self) -> None:
        if perf_counter() - self._slice_started >= SLICE_S:
            await asyncio.sleep(0)
            self._slice_started = perf_counter()

    def _failed(self, proc: FloorProcessor, event: Event, exc: Exception) -> None:
        """An event broke the processor: reject it (counted), log it once, go on."""
        self.stats.ingest_errors_total += 1
        with contextlib.suppress(Exception):  # counting must not take the round down either
            proc.count_rejected(INTERNAL_ERROR.reason)
        log.error("ingest_error reason=internal_error event=%s", _show(event), exc_info=exc)

    def _admit(self, events: list[Event], start: int, stop: int, receipt: Receipt | None) -> int:
        """Apply ``events[start:stop]`` behind the clock, hold the others; how many left.

        Every event not held has left the backlog, whatever became of it: applied,
        refused, or failed inside the processor (a failure must not leak its room).
        An event of a partition another process owns is left to it (followed stores).
        """
        kept = 0
        for pos in range(start, stop):
            event = events[pos]
            part = self._part(event.site)
            if part is None:
                continue
            proc = part.proc
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
                        if key in part.held_keys or proc.is_duplicate(event):
                            receipt.duplicates.append(pos)
                    self._seq += 1
                    heapq.heappush(part.held, (ts, self._seq, event, key))
                    part.held_keys[key] = part.held_keys.get(key, 0) + 1
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
                self._failed(proc, event, exc)
                if receipt is not None:
                    receipt.refused.append((pos, INTERNAL_ERROR))
        return (stop - start) - kept

    def _clock(self) -> float:
        """The clock every local processor was last ticked to."""
        return max((part.proc.clock for part in self.parts.values()), default=float("-inf"))

    def _site_clock(self, site: str) -> float:
        """The clock of the partition ``site`` belongs to here (-inf: not applied here).

        A round's sites are stamped one by one: a partition restored with a clock ahead
        (the wall clock went back across a restart), or another host's clock, never
        moves a partition this process does not apply.
        """
        part = self._part(site)
        return float("-inf") if part is None else part.proc.clock

    async def _append(self, batches: list[Batch]) -> Mapping[str, str]:
        """Append the round to the store; retry (counted) until it is durable.

        The clock goes on meanwhile: a slow or failing store delays the round's events
        (they are applied once appended, late if the clock passed them), never the
        ticks, so waits still grow and deadlines still pass (SPEC §6). The store keeps
        the processor clock the round is admitted at, for recovery.
        """
        attempt = 0
        while True:
            try:
                positions = await self._ticking(
                    self.store.append(batches, self._clock(), clock_of=self._site_clock)
                )
                self.store_failing = False
                self.store_error = None
                return positions
            except Exception as exc:
                attempt += 1
                self.store_failing = True
                self.store_error = _describe(exc)
                self.store_append_errors_total += 1
                self.stats.ingest_errors_total += 1
                wait = min(5.0, 0.1 * 2.0**attempt)
                log.error(
                    "store_append_failed attempt=%d retry_in_s=%.1f error=%r", attempt, wait, exc
                )
                await self._ticking(asyncio.sleep(wait))

    async def _ticking(self, work: Awaitable[_T]) -> _T:
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

    def _schedule_release(self) -> None:
        """When the earliest held event falls due (at most every RELEASE_S)."""
        earliest = min((part.held[0][0] for part in self.parts.values() if part.held), default=None)
        if earliest is None:
            self._next_release = float("inf")
            return
        loop_now = asyncio.get_running_loop().time()
        due = loop_now + max(0.0, earliest - self._now())
        self._next_release = max(due, self._last_release + RELEASE_S)

    async def _release_if_due(self) -> None:
        """Apply the held events the watermark passed, between ticks.

        The processors advance to the watermark (so ``as_of`` covers what was applied);
        their change sets wait for the next tick, which publishes them.
        """
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_release:
            return
        self._last_release = loop.time()
        watermark = self._now()
        for part in list(self.parts.values()):
            held = part.held
            if held and held[0][0] <= watermark:
                await self._advance(part, watermark)
        self._schedule_release()
        self._sync_gauges()

    async def _tick_if_due(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_tick:
            await self._tick()
            self._next_tick = loop.time() + self.tick_s

    def _count_rejected(self, rejected: dict[str, int], ids: list[tuple[str, str]]) -> None:
        # Rejections of a delivery are counted by the partition of the whole floor
        # (one local partition), or by the first one: they belong to no event's site.
        # Their ids are remembered there, as events' are (a recovery does the same).
        proc = next(iter(self.parts.values())).proc
        for reason, n in rejected.items():
            proc.count_rejected(reason, n)
        for key, _ in ids:
            _remember_rejection(proc, key)

    def _rejections_resent(self, batch: Batch) -> list[int]:
        """Positions in ``batch.rejected_ids`` of rejections counted before (a file's
        line read again after a restart): known to a partition applied here."""
        if not batch.resent or not batch.rejected_ids:
            return []
        procs = [part.proc for part in self.parts.values()]
        return [
            i
            for i, (key, _) in enumerate(batch.rejected_ids)
            if any(proc.ids.known(key) for proc in procs)
        ]

    def _resends(self, batch: Batch) -> list[int]:
        """Positions of the batch's events that are resends of what is known already.

        Only where the service can tell: events of partitions applied here. A batch
        marked as a whole is a resend only if every one of its events is known.
        """
        mark = batch.resent
        if not mark:
            return []
        events = batch.events
        whole = not isinstance(mark, frozenset)
        candidates = sorted(mark) if isinstance(mark, frozenset) else range(len(events))
        found: list[int] = []
        try:
            for pos in candidates:
                if not 0 <= pos < len(events):
                    continue
                event = events[pos]
                part = self._part(event.site)
                known = part is not None and (
                    dedup_key(event) in part.held_keys or part.proc.is_duplicate(event)
                )
                if known:
                    found.append(pos)
                elif whole:
                    return []  # one new event: the batch is no resend
        except Exception as exc:  # deciding must not fail the round: apply as usual
            self.stats.ingest_errors_total += 1
            log.error("resend_check_error source=%s error=%r", batch.source, exc)
            return []
        return found

    async def _round(self, batches: list[Batch]) -> None:
        """Append, admit and acknowledge the batches of one round.

        Resends the service recognises (see :attr:`Batch.resent`) are taken out first:
        acknowledged as duplicates, never logged, applied or counted.
        """
        kept: list[tuple[Batch, Batch, list[int], list[int] | None, list[int]]] = []
        for batch in batches:
            resent = self._resends(batch)
            old = self._rejections_resent(batch)
            if not resent and not old:
                kept.append((batch, batch, [], None, []))
                continue
            dropped = set(resent)
            kept_at = [i for i in range(len(batch.events)) if i not in dropped]
            rejected, rejected_ids = batch.rejected, batch.rejected_ids
            if old:
                rejected = dict(rejected)
                for i in old:
                    reason = rejected_ids[i][1]
                    rejected[reason] -= 1
                    if not rejected[reason]:
                        del rejected[reason]
                known = set(old)
                rejected_ids = [r for i, r in enumerate(rejected_ids) if i not in known]
            inner = Batch(
                [batch.events[i] for i in kept_at],
                batch.source,
                rejected,
                reserved=True,
                rejected_ids=rejected_ids,
            )
            self.backlog.release(len(resent))
            self.stats.resent_events_total[batch.source] = self.stats.resent_events_total.get(
                batch.source, 0
            ) + len(resent)
            kept.append((batch, inner, resent, kept_at, old))
        logged = [inner for _, inner, _, _, _ in kept if inner.events or inner.rejected]
        positions = await self._append(logged) if logged else {}
        local = self.store.applies_locally
        stats = self.stats
        for original, batch, resent, keep, old in kept:
            started = perf_counter()
            receipt = Receipt() if original.ack is not None else None
            if batch.rejected and local:
                self._count_rejected(batch.rejected, batch.rejected_ids)
            events = batch.events
            if local:
                for start in range(0, len(events), _STEP):
                    self.backlog.release(
                        self._admit(events, start, min(start + _STEP, len(events)), receipt)
                    )
                    await self._pause_if_due()
            else:
                # The partition's owner applies them from the store's log; the answer
                # tells what the partitions owned here can already say.
                if receipt is not None:
                    self._peek(events, receipt)
                self.backlog.release(len(events))
            elapsed = perf_counter() - started
            stats.batches_total += 1
            stats.batch_events_total += len(events)
            stats.batch_seconds_sum += elapsed
            stats.batch_seconds_max = max(stats.batch_seconds_max, elapsed)
            stats.by_source[batch.source] = stats.by_source.get(batch.source, 0) + len(events)
            if original.ack is not None and receipt is not None:
                if keep is not None:
                    receipt = _translated(receipt, keep, resent, old)
                try:
                    original.ack(receipt)
                except Exception:
                    stats.ingest_errors_total += 1
                    log.exception("ack_failed source=%s", batch.source)
        if local:
            for part in self.parts.values():
                part.positions.update(positions)
        self._sync_gauges()

    def _peek(self, events: list[Event], receipt: Receipt) -> None:
        """Refusals and duplicates the owned partitions see now (nothing is applied)."""
        for pos, event in enumerate(events):
            part = self._part(event.site)
            if part is None:
                continue
            try:
                refusal = part.proc.check(event)
                if refusal is not None:
                    receipt.refused.append((pos, refusal))
                elif dedup_key(event) in part.held_keys or part.proc.is_duplicate(event):
                    receipt.duplicates.append(pos)
            except Exception as exc:  # a peek must not fail the round
                self.stats.ingest_errors_total += 1
                log.error("peek_error event=%s", _show(event), exc_info=exc)

    def admit_logged(self, logged: Logged) -> None:
        """Admit events read back from the store at the clock they were first admitted at.

        Recovery and followed stores: held events the clock passed are released first,
        as the ticks did then; no receipt (they were acknowledged when appended).
        All at once: the writer's task admits them in slices (:meth:`_admit_logged`).
        """
        for _ in self._logged_slices(logged):
            pass

    async def _admit_logged(self, logged: Logged) -> None:
        """:meth:`admit_logged`, giving readers a turn between slices of ``_STEP``
        events: an entry may hold a whole round (a backfill's), each event late."""
        for _ in self._logged_slices(logged):
            await self._pause_if_due()

    def _logged_slices(self, logged: Logged) -> Iterator[None]:
        """Admit ``logged``, pausing (a ``yield``) after each slice of ``_STEP`` events;
        stops, its room released, if the partition is dropped at a pause."""
        part = self.parts.get(logged.partition)
        if part is None:
            return
        if logged.since is not None and logged.since != part.positions.get(logged.stream, ""):
            # Read before the partition changed hands (or read twice): not contiguous
            # with what the partition has applied, so applying it could count it twice.
            self.stale_entries_total += 1
            return
        for reason, n in logged.rejected.items():
            part.proc.count_rejected(reason, n)
        for key in logged.rejected_ids:
            _remember_rejection(part.proc, key)
        if logged.at > part.proc.clock:
            held = part.held
            while held and held[0][0] <= logged.at:
                self._release_some(part, logged.at, _STEP)
                yield
                if not self._here(part):
                    return
            part.proc.tick(logged.at)
        events = logged.events
        self.backlog.add(len(events))
        for start in range(0, len(events), _STEP):
            if start and not self._here(part):
                self.backlog.release(len(events) - start)
                return
            stop = min(start + _STEP, len(events))
            self.backlog.release(self._admit(events, start, stop, None))
            yield
        part.positions[logged.stream] = logged.position

    # ---------------------------------------------------------------- recovery

    def add_section(
        self,
        section: Section[_T],
        *,
        save: Callable[[str], _T],
        restore: Callable[[str, _T], None],
    ) -> None:
        """Keep a feature's state in every checkpoint, as its registered ``section``
        (see :class:`SectionHook`); add it before :meth:`recover` runs."""
        self._sections.append(SectionHook(section, save, restore))

    async def recover(self, keys: Sequence[str] = (ALL,)) -> None:
        """Load each partition's newest intact checkpoint and replay the log after it.

        A kept checkpoint that cannot be restored (changed bits, an unknown format) is
        counted (:attr:`checkpoint_fallbacks_total`), logged at ERROR, and the one
        before it is tried, then the log from its beginning; once the replay went
        through, the damaged ones are set aside in the store. Raises
        :class:`StoreError`, saying what to do, when the log does not go on from the
        checkpoint used: with every kept checkpoint damaged, when it does not reach back
        to its beginning.
        """
        store = self.store
        for key in keys:
            config = self.partition_config(key)
            restored, used, damaged = await self._restore(key, config)
            if restored is None:
                proc = (
                    self.parts[key].proc if key in self.parts else FloorProcessor(config, live=True)
                )
                part = Partition(key, proc)
                self._attach(proc)
                held: list[Event] = []
            else:
                for note in restored.notes:
                    log.warning("checkpoint_note partition=%s note=%r", key, note)
                part = Partition(key, restored.processor)
                self._attach(restored.processor)
                part.positions = dict(restored.log_positions)
                held = restored.held
            part.saved = dict(part.positions)
            self.parts[key] = part
            self.generation += 1
            for hook in self._sections:
                value = hook.section.empty() if restored is None else restored.section(hook.section)
                hook.restore(key, value)
            for event in held:
                self._seq += 1
                ts: float = event.ts  # type: ignore[assignment]
                dkey = dedup_key(event)
                heapq.heappush(part.held, (ts, self._seq, event, dkey))
                part.held_keys[dkey] = part.held_keys.get(dkey, 0) + 1
            self.backlog.add(len(held))
            replayed = 0
            try:
                async for logged in store.replay(key, dict(part.positions)):
                    await self._admit_logged(logged)
                    replayed += len(logged.events)
                    self._slice_started = perf_counter()
                    await self._pause_if_due()
            except StoreError as exc:
                if restored is None and damaged:
                    raise StoreError(
                        f"every kept checkpoint of partition {key!r} is damaged "
                        f"({'; '.join(damaged.values())}) and the log does not reach back "
                        f"to its beginning, so the floor cannot be restored: {exc}"
                    ) from None
                raise
            for slot in damaged:
                await store.set_aside(key, slot)
            self.recovered_events += replayed
            log.info(
                "recovered partition=%s checkpoint=%s replayed_events=%d held_events=%d",
                key,
                "no" if used is None else _SLOTS[used],
                replayed,
                len(part.held),
            )

    async def _restore(
        self, key: str, config: Config
    ) -> tuple[Restored | None, int | None, dict[int, str]]:
        """The newest kept checkpoint of ``key`` that restores, its slot, and what was
        wrong with each newer one (by slot)."""
        damaged: dict[int, str] = {}
        for slot in range(KEPT_CHECKPOINTS):
            blob = await self.store.load(key, slot)
            if blob is None:
                continue
            try:
                return decode_checkpoint(config, blob, live=True), slot, damaged
            except CheckpointError as exc:
                reason = exc.reason
                self.checkpoint_fallbacks_total[reason] = (
                    self.checkpoint_fallbacks_total.get(reason, 0) + 1
                )
                then = (
                    "the previous checkpoint and the log after it"
                    if slot + 1 < KEPT_CHECKPOINTS
                    else "the log from its beginning"
                )
                log.error(
                    "checkpoint_damaged partition=%s checkpoint=%s reason=%s size=%d "
                    "problem=%r (not restored: trying %s)",
                    key,
                    _SLOTS[slot],
                    reason,
                    len(blob),
                    str(exc),
                    then,
                )
                damaged[slot] = f"{_SLOTS[slot]}: {exc}"
        return None, None, damaged

    # ---------------------------------------------------------------- checkpoints

    async def checkpoint(self) -> None:
        """Checkpoint every local partition now (between rounds), with what it covers."""
        for part in list(self.parts.values()):
            if self._here(part):
                await self._checkpoint_part(part)

    async def _checkpoint_part(self, part: Partition) -> None:
        started = perf_counter()
        positions = dict(part.positions)
        try:
            blob = encode_checkpoint(
                part.proc,
                log_positions=positions,
                held=part.held_events(),
                sections={hook.section.name: hook.save(part.key) for hook in self._sections},
            )
            await self._ticking(
                self.store.save(part.key, blob, positions, previous=dict(part.saved))
            )
        except LeaseLost as exc:
            # Another member owns it now: this one must stop applying it at once.
            self.leases_lost_total += 1
            log.warning("partition_lost partition=%s reason=%r", part.key, str(exc))
            self._forget(part)
            return
        except Exception as exc:
            self.checkpoint_errors_total += 1
            self.stats.ingest_errors_total += 1
            log.error("checkpoint_failed partition=%s error=%r", part.key, exc)
            return
        part.saved = positions
        self.checkpoints_total += 1
        self.checkpoint_seconds_last = perf_counter() - started
        self.checkpoint_last_success_unix = wall_clock()

    async def _checkpoint_if_due(self) -> None:
        if self.checkpoint_every_s is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_checkpoint:
            self._next_checkpoint = loop.time() + self.checkpoint_every_s
            await self.checkpoint()

    # ---------------------------------------------------------------- ticks

    def _release_some(self, part: Partition, watermark: float, limit: int) -> None:
        held = part.held
        keys = part.held_keys
        apply = part.proc.apply
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
                self._failed(part.proc, event, exc)
        self.backlog.release(n)

    async def _tick(self) -> None:
        """Release what the watermark passed, tick to it, publish the change sets."""
        self._ticks_started += 1
        watermark = self._now()
        changes: list[ChangeSet] = []
        for part in list(self.parts.values()):
            if await self._advance(part, watermark):
                changes.append(part.proc.drain_changes())
        # One change set per tick, whatever the number of partitions (subscribers take
        # an empty one as "time moved").
        if len(changes) == 1:
            self.bus.publish(changes[0])
        elif changes or not self.parts:
            self.bus.publish(_merged_changes(changes, watermark))
        if self.on_ticked is not None:
            try:
                self.on_ticked([part.proc for part in self.parts.values()])
            except Exception:
                self.stats.ingest_errors_total += 1
                log.exception("alerts_drain_error")
        self._sync_gauges()
        self._ticks_done += 1
        done, self._tick_event = self._tick_event, asyncio.Event()
        done.set()

    # ---------------------------------------------------------------- the task

    async def _work_on(self, items: list[Batch | Logged | _Control]) -> None:
        """One round (logged entries admitted, batches appended), controls, a due tick."""
        self._slice_started = perf_counter()
        batches = [item for item in items if isinstance(item, Batch)]
        for item in items:
            if isinstance(item, Logged):
                try:
                    await self._admit_logged(item)
                except Exception:
                    self.stats.ingest_errors_total += 1
                    log.exception("logged_admit_error partition=%s", item.partition)
        if batches:
            await self._round(batches)
            if self.on_round is not None:
                try:
                    self.on_round([part.proc for part in self.parts.values()])
                except Exception:
                    self.stats.ingest_errors_total += 1
                    log.exception("alerts_round_error")
        for item in items:
            if isinstance(item, _Control):
                try:
                    await item.work()
                except Exception as exc:
                    if not item.done.done():
                        item.done.set_exception(exc)
                else:
                    if not item.done.done():
                        item.done.set_result(None)
        self._schedule_release()
        await self._release_if_due()
        await self._tick_if_due()
        await self._checkpoint_if_due()

    async def run(self) -> None:
        """The ingest task: rounds as batches arrive, a tick every ``tick_s``.

        Each round runs to its end even if this task is cancelled (shutdown): a
        checkpoint must cover whole rounds (see :meth:`settle`).
        """
        loop = asyncio.get_running_loop()
        queue = self._queue
        self._task = asyncio.current_task()
        self._next_tick = loop.time()
        if self.checkpoint_every_s is not None:
            self._next_checkpoint = loop.time() + self.checkpoint_every_s
        while True:
            items: list[Batch | Logged | _Control] = []
            wait = min(self._next_tick, self._next_release) - loop.time()
            if wait > 0 and queue.empty():
                try:
                    async with asyncio.timeout(wait):
                        items.append(await queue.get())
                except TimeoutError:
                    pass
            count = sum(item.size if isinstance(item, Batch) else 0 for item in items)
            # One round takes what is queued, up to a bound, so readers get a turn.
            while len(items) < ROUND_BATCHES and count < ROUND_EVENTS and not queue.empty():
                item = queue.get_nowait()
                items.append(item)
                if isinstance(item, Batch):
                    count += item.size
                elif isinstance(item, Logged):
                    count += len(item.events)
            self._work = asyncio.ensure_future(self._work_on(items))
            try:
                await asyncio.shield(self._work)
            except asyncio.CancelledError:
                raise
            except Exception:  # last line of defence: the writer never dies
                self.stats.ingest_errors_total += 1
                log.exception("ingest_round_error items=%d", len(items))
            await asyncio.sleep(0)  # queue.get() does not yield while batches are waiting

    async def settle(self, timeout: float) -> bool:
        """Wait for the round in progress to end (shutdown); False if it did not in time."""
        work = self._work
        if work is None or work.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout)
        except TimeoutError:
            return False
        except Exception:
            return True  # it failed, and is over: logged by run()
        return True
