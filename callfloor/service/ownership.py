"""Who applies which partition when several processes share one Redis store.

Every ``callfloor serve`` sharing a ``redis://`` store appends what it receives to the
sites' streams; each partition of the floor (``[store] partitions``) is applied by one
process at a time, the holder of its lease. Two tasks of the service do that:

- :class:`Coordinator`: heartbeats (the live members), renews the leases held, and
  gives every partition a *wanted* owner by rendezvous hashing over the live members.
  A partition wanted here and free is acquired and adopted (its checkpoint loaded, its
  streams replayed after it); one held here but wanted by another live member is handed
  over (a last checkpoint, then the lease released), so processes started one after the
  other end up sharing the floor. A lease that is not ours any more, or that could not
  be renewed for long enough that another member might take it, is dropped at once
  (no checkpoint: it may be another's now), by the heartbeat task itself: the ownership
  step may be waiting for a Redis that does not answer. Such a partition stays readable
  here, frozen as it last stood and marked stale, until it is adopted again or another
  member is seen holding its lease (then the frozen copy is discarded).
- :class:`Follower`: reads the owned partitions' streams after their positions and
  hands the entries to the writer, which applies them in its rounds.

Timing, from ``[store] lease_ttl`` (T): a lease lasts 0.6 T from each renewal and the
heartbeat as long; both run every 0.1 T. A member that has not renewed for 0.4 T
considers its leases lost, 0.2 T before anyone else can take them. An owner killed at
t: its lease and heartbeat end by t + 0.6 T, the next member's heartbeat sees it gone
by t + 0.7 T, acquires, and adopts the partition (load + replay) in the 0.3 T left: a
partition is taken over within ``lease_ttl`` of its owner's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Final, Protocol, cast

from callfloor.config import Config
from callfloor.store.base import Logged, SharedStore, Store, StoreError

log = logging.getLogger("callfloor")

LEASE_SHARE: Final = 0.6  # of lease_ttl: how long a lease and a heartbeat last
PERIOD_SHARE: Final = 0.1  # of lease_ttl: heartbeat, renewal and ownership checks
MARGIN_SHARE: Final = 0.2  # of lease_ttl: a lease is given up this long before it ends
FOLLOW_BLOCK_S: Final = 0.5  # the longest a followed read waits for new entries
MAX_AHEAD_EVENTS: Final = 50_000  # delivered to the writer and not applied yet, at most
STALL_S: Final = 10.0  # delivered entries the writer never took are read again after this
ADOPT_RETRY_PERIODS: Final = 10  # a failed adoption is tried again after this many periods


class Partitions(Protocol):
    """What the coordinator and the follower need of the writer."""

    @property
    def owned(self) -> frozenset[str]:
        """The partitions applied here."""
        ...

    async def adopt(self, key: str) -> None:
        """Load the partition's checkpoint, replay its log, then apply it live."""
        ...

    async def drop(self, key: str, *, checkpoint: bool) -> None:
        """Stop applying the partition (after a last checkpoint if asked; without one it
        is kept frozen for readers)."""
        ...

    @property
    def frozen(self) -> Mapping[str, object]:
        """The partitions no longer applied and still served stale, by key."""
        ...

    def discard(self, key: str) -> None:
        """Forget the frozen copy of a partition (another member applies it now)."""
        ...

    def cursors(self) -> dict[str, dict[str, str]]:
        """Each owned partition's positions by stream."""
        ...

    def deliver(self, logged: Logged) -> None:
        """Queue an entry read from a followed stream."""
        ...


class SharedService(Protocol):
    """What the coordinator and the follower need of the service."""

    @property
    def config(self) -> Config:
        """The configuration (``[store] lease_ttl``)."""
        ...

    @property
    def store(self) -> Store:
        """The store: a shared one (``applies_locally`` False)."""
        ...

    @property
    def writer(self) -> Partitions:
        """The writer that adopts, drops and applies partitions."""
        ...


def _shared(store: Store) -> SharedStore:
    if store.applies_locally:
        raise TypeError("partitions have owners only with a shared store (redis://)")
    return cast(SharedStore, store)


def wanted_owner(partition: str, members: Sequence[str]) -> str | None:
    """The member that should own ``partition`` (rendezvous hashing; None: no member).

    Every member computes the same answer from the same live members, and a member
    joining or leaving moves only the partitions it wins or held.
    """

    def weight(member: str) -> bytes:
        return hashlib.blake2b(f"{member}\0{partition}".encode(), digest_size=8).digest()

    return max(members, key=weight, default=None)


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """The lease, heartbeat and check periods derived from ``[store] lease_ttl``."""

    ttl_s: float

    @property
    def lease_s(self) -> float:
        """How long a lease (and a heartbeat) lasts from its renewal."""
        return LEASE_SHARE * self.ttl_s

    @property
    def period_s(self) -> float:
        """How often members beat, renew and look at the partitions."""
        return PERIOD_SHARE * self.ttl_s

    @property
    def trust_s(self) -> float:
        """How long after a renewal was sent this member still trusts the lease."""
        return (LEASE_SHARE - MARGIN_SHARE) * self.ttl_s


class Coordinator:
    """Leases, membership and hand-overs for one process (see the module docstring).

    Counters (plain ints; proposed metric names in docs/store.md): ``adopted``,
    ``adopt_errors``, ``handed_over``, ``leases_lost`` (taken, or not renewed in time),
    ``errors`` (Redis calls that failed), ``recoveries`` (Redis answered again).
    """

    def __init__(self, service: SharedService, *, ttl_s: float | None = None) -> None:
        self.service = service
        self.store = _shared(service.store)
        self.writer = service.writer
        self.timing = LeaseTiming(ttl_s if ttl_s is not None else service.config.store.lease_ttl_s)
        self.member = self.store.member
        self.members: list[str] = []
        self.redis_ok = False
        self.last_error: str | None = None
        self._leased: set[str] = set()
        self._until: dict[str, float] = {}  # partition -> monotonic time it is trusted to
        self._lost: set[str] = set()  # lost leases whose partitions are still applied
        self._adopting: set[str] = set()  # partitions being adopted (dropped after that)
        self._retry_at: dict[str, float] = {}  # partition -> when to try adopting again
        self._wake = asyncio.Event()
        self._closed = False
        self.adopted = 0
        self.adopt_errors = 0
        self.handed_over = 0
        self.leases_lost = 0
        self.errors = 0
        self.recoveries = 0

    @property
    def leased(self) -> frozenset[str]:
        """The partitions whose lease this process holds (adopted, or being adopted)."""
        return frozenset(self._leased)

    # ---------------------------------------------------------------- the tasks

    async def run(self) -> None:
        """Beat and renew, and adopt or hand over partitions, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._keep_alive(), name="leases")
            tg.create_task(self._balance(), name="ownership")

    async def _keep_alive(self) -> None:
        """Heartbeat and renewals every period, never held up by an adoption."""
        period = self.timing.period_s
        while True:
            started = monotonic()
            await self.beat()
            # Not left to the ownership step: it may be waiting for a Redis that does not
            # answer (a hung server, a lost network), and the partition must stop being
            # applied before another member can take its lease.
            await self._drop_lost()
            self._wake.set()
            await asyncio.sleep(max(0.0, period - (monotonic() - started)))

    async def _balance(self) -> None:
        period = self.timing.period_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._wake.wait()
            self._wake.clear()
            await self.balance()

    # ---------------------------------------------------------------- one step each

    async def join(self) -> None:
        """One heartbeat and one ownership step (at start, before events are taken)."""
        await self.beat()
        await self.balance()

    async def beat(self) -> None:
        """Heartbeat and renew once; note what was lost (taken, or no longer trusted)."""
        timing = self.timing
        started = monotonic()
        keys = sorted(self._leased)
        # A Redis that does not answer (hung, or the network lost) is waited for no
        # longer than the leases are trusted: they are given up on time, not after.
        # (Past that, they are lost whatever the answer: the heartbeat gets its usual wait.)
        wait = timing.period_s * 2
        left = min(self._until.values(), default=wait) - started
        if left > 0:
            wait = min(wait, left)
        try:
            async with asyncio.timeout(wait):
                members = await self.store.heartbeat(timing.lease_s)
                lost = await self.store.renew(keys, timing.lease_s) if keys else set()
        except (StoreError, TimeoutError) as exc:
            self._failed("heartbeat", exc)
        else:
            self._ok()
            self.members = members
            for key in keys:
                if key in lost:
                    self._lose(key, "its lease is held by another member")
                elif key in self._leased:
                    self._until[key] = started + timing.trust_s
        now = monotonic()
        for key, until in list(self._until.items()):
            if now > until:
                self._lose(key, "its lease could not be renewed in time")

    async def balance(self) -> None:
        """Drop what was lost; adopt the partitions wanted here; hand over the others;
        discard frozen copies of partitions another member holds."""
        await self._drop_lost()
        if self._closed or not self.redis_ok or self.member not in self.members:
            return
        try:
            partitions = await self.store.partitions()
        except StoreError as exc:
            self._failed("partitions", exc)
            return
        members = list(self.members)
        for key in sorted(partitions):
            want = wanted_owner(key, members)
            if want == self.member:
                if key not in self._leased and monotonic() >= self._retry_at.get(key, 0.0):
                    await self._take(key)
            elif key in self._leased:
                await self._hand_over(key, want)
        await self._discard_taken(members)

    async def _drop_lost(self) -> None:
        """Stop applying the partitions whose lease was lost (kept frozen for readers)."""
        for key in sorted(self._lost - self._adopting):
            self._lost.discard(key)
            if key in self.writer.owned and key not in self._leased:
                await self.writer.drop(key, checkpoint=False)

    async def _discard_taken(self, members: Sequence[str]) -> None:
        """Discard the frozen copy of each partition another live member holds the lease
        of: it is applied there, and a copy frozen here would only grow older.

        One wanted here is kept until it is adopted again (its holder hands it over):
        the readers of this process then see it stale, never missing, in between.
        """
        for key in sorted(self.writer.frozen):
            if key in self._leased or wanted_owner(key, members) == self.member:
                continue
            try:
                holder = await self.store.holder(key)
            except StoreError as exc:
                self._failed("holder", exc)
                return
            if holder is not None and holder != self.member and holder in members:
                self.writer.discard(key)

    async def _take(self, key: str) -> None:
        timing = self.timing
        sent = monotonic()
        try:
            if not await self.store.acquire(key, timing.lease_s):
                return  # its owner has not let go yet (or is dead and its lease lasts)
        except StoreError as exc:
            self._failed("acquire", exc)
            return
        self._leased.add(key)
        self._until[key] = sent + timing.trust_s
        started = monotonic()
        self._adopting.add(key)
        try:
            await self.writer.adopt(key)
        except Exception as exc:
            self.adopt_errors += 1
            self._retry_at[key] = monotonic() + ADOPT_RETRY_PERIODS * timing.period_s
            log.error("partition_adopt_failed partition=%s error=%s", key, exc)
            self._leased.discard(key)
            self._until.pop(key, None)
            with contextlib.suppress(StoreError):
                await self.store.release(key)
            return
        finally:
            self._adopting.discard(key)
        self._retry_at.pop(key, None)
        if key not in self._leased:
            # Lost while it was being adopted: the next step drops it.
            self._lost.add(key)
            return
        self.adopted += 1
        log.info(
            "partition_adopted partition=%s member=%s seconds=%.3f",
            key,
            self.member,
            monotonic() - started,
        )

    async def _hand_over(self, key: str, to: str | None) -> None:
        """A last checkpoint, then the lease released: the wanted member takes it next."""
        await self.writer.drop(key, checkpoint=True)
        self._leased.discard(key)
        self._until.pop(key, None)
        try:
            await self.store.release(key)
        except StoreError as exc:
            self._failed("release", exc)  # it expires by itself
        self.handed_over += 1
        log.info("partition_handed_over partition=%s to=%s", key, to)

    def _lose(self, key: str, why: str) -> None:
        if key not in self._leased:
            return
        self._leased.discard(key)
        self._until.pop(key, None)
        self._lost.add(key)
        self.leases_lost += 1
        log.warning("partition_lease_lost partition=%s reason=%r", key, why)
        self._wake.set()

    def _failed(self, op: str, exc: BaseException) -> None:
        self.errors += 1
        text = str(exc) or type(exc).__name__
        if self.redis_ok or self.last_error is None:
            log.error("coordinator_store_failed op=%s error=%s", op, text)
        self.redis_ok = False
        self.last_error = f"{op}: {text}"

    def _ok(self) -> None:
        if not self.redis_ok and self.last_error is not None:
            self.recoveries += 1
            log.info("coordinator_store_back member=%s", self.member)
        self.redis_ok = True
        self.last_error = None

    # ---------------------------------------------------------------- shutdown, status

    async def close(self) -> None:
        """Release the leases and leave (after the final checkpoint): the others take the
        partitions over at once instead of after the leases expire."""
        self._closed = True
        # One deadline for it all: a Redis that does not answer must not hold the stop
        # for a wait per partition (the leases expire by themselves anyway).
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(max(1.0, self.timing.period_s * 2)):
                for key in sorted(self._leased):
                    with contextlib.suppress(StoreError):
                        await self.store.release(key)
                await self.store.leave()
        self._leased.clear()
        self._until.clear()

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` shows: this member, the live ones, what it owns, Redis."""
        return {
            "member": self.member,
            "members": len(self.members),
            "partitions": sorted(self.writer.owned),
            "stale": sorted(self.writer.frozen),
            "leases": "up" if self.redis_ok else "failing",
            "error": self.last_error,
        }


class _Ahead:
    """Entries of one stream delivered to the writer and not yet applied by it."""

    __slots__ = ("entries", "moved_at", "seen")

    def __init__(self, seen: str) -> None:
        self.entries: deque[tuple[str, str, int]] = deque()  # (since, position, events)
        self.seen = seen  # the writer's position when last looked at
        self.moved_at = monotonic()


class Follower:
    """Reads the owned partitions' streams and hands their entries to the writer.

    It reads on from what it delivered, not from what the writer has applied, so an
    entry is read once; it goes back to the writer's positions when the writer is not
    where the delivered entries lead (a partition adopted again), and waits while more
    than ``max_ahead`` delivered events are not applied yet. The writer drops an entry
    that does not follow on from its position (``Logged.since``), so reading one twice
    is harmless.

    Counters: ``reads``, ``entries``, ``events``, ``errors`` (failed reads, retried with
    a capped, jittered back-off), ``recoveries`` (a read worked after failures) and
    ``rewinds`` (reads started again from the writer's positions).
    """

    def __init__(
        self,
        service: SharedService,
        *,
        block_s: float = FOLLOW_BLOCK_S,
        max_ahead: int = MAX_AHEAD_EVENTS,
    ) -> None:
        self.store = _shared(service.store)
        self.writer = service.writer
        self.block_s = block_s
        self.max_ahead = max_ahead
        self._ahead: dict[str, dict[str, _Ahead]] = {}
        self.failing = False
        self.last_error: str | None = None
        self.reads = 0
        self.entries = 0
        self.events = 0
        self.errors = 0
        self.recoveries = 0
        self.rewinds = 0

    def cursors(self) -> dict[str, dict[str, str]]:
        """Where the next read starts: after what was delivered, where that still holds."""
        now = monotonic()
        current = self.writer.cursors()
        for partition in list(self._ahead):
            if partition not in current:
                del self._ahead[partition]
        out: dict[str, dict[str, str]] = {}
        for partition, positions in current.items():
            mine = dict(positions)
            streams = self._ahead.get(partition, {})
            for stream, ahead in list(streams.items()):
                at = positions.get(stream, "")
                if at != ahead.seen:
                    ahead.seen = at
                    ahead.moved_at = now
                entries = ahead.entries
                # Where the writer stands in the delivered chain: entries before are
                # applied, the rest are queued (each one's since is its predecessor).
                applied = None
                for i, (since, position, _) in enumerate(entries):
                    if since == at:
                        applied = i
                        break
                    if position == at:
                        applied = i + 1
                        break
                if applied is not None:
                    for _ in range(applied):
                        entries.popleft()
                    if not entries:
                        del streams[stream]
                        continue
                    if now - ahead.moved_at < STALL_S:
                        mine[stream] = entries[-1][1]
                        continue
                # The writer is not where the delivered entries lead (the partition was
                # adopted again), or never took them: read on from where it stands.
                self.rewinds += 1
                del streams[stream]
            out[partition] = mine
        return out

    def ahead_events(self) -> int:
        """Events delivered to the writer and not applied yet."""
        return sum(
            n for streams in self._ahead.values() for a in streams.values() for _, _, n in a.entries
        )

    def _delivered(self, logged: Logged, writer_at: Mapping[str, Mapping[str, str]]) -> None:
        streams = self._ahead.setdefault(logged.partition, {})
        ahead = streams.get(logged.stream)
        if ahead is None:
            ahead = streams[logged.stream] = _Ahead(
                writer_at.get(logged.partition, {}).get(logged.stream, "")
            )
        ahead.entries.append((logged.since or "", logged.position, len(logged.events)))

    async def run(self) -> None:
        """Follow until cancelled; a failing read backs off (capped, jittered) and retries."""
        failures = 0
        while True:
            cursors = self.cursors()
            if not cursors or self.ahead_events() >= self.max_ahead:
                await asyncio.sleep(0.01 if cursors else 0.05)
                continue
            try:
                found = await self.store.read(cursors, self.block_s)
            except StoreError as exc:
                failures += 1
                self.errors += 1
                if not self.failing:
                    log.error("follow_failed error=%s", exc)
                self.failing = True
                self.last_error = str(exc)
                await asyncio.sleep(min(5.0, 0.05 * 2.0**failures) * random.uniform(0.5, 1.0))
                continue
            if failures:
                self.recoveries += 1
                log.info("follow_resumed after_failures=%d", failures)
                failures = 0
            self.failing = False
            self.last_error = None
            self.reads += 1
            writer_at = self.writer.cursors()
            for logged in found:
                self.writer.deliver(logged)
                self._delivered(logged, writer_at)
                self.events += len(logged.events)
            self.entries += len(found)
