"""The store: where accepted events become durable, and checkpoints are kept (SPEC §9).

The guarantee: an event is acknowledged only once it is durable in the store, and after
any crash the state is what it would have been without it. So every ingest round is
*appended* to the store before any of it is acknowledged, the processors' state is
*checkpointed* now and then with the log position it covers, and a start *recovers* by
loading the checkpoint and replaying the log after it. Replaying is exact because the
numbers depend only on the events (an event seen twice is a duplicate by its ``id``, or,
without one, by its call's or agent's history).

The floor is split into *partitions* (:class:`PartitionMap`): sets of sites, each with
its own processor, checkpoint and (with Redis) owner. ``memory:`` and ``file://`` keep
one partition holding every site; a Redis store may split the floor by site so that
several processes share it.

Two ways events reach the processors:

- the writer applies what it appended itself (``applies_locally``: memory, file);
- or the store's log is *followed* (Redis): every process appends what it receives to the
  site's stream, and the owner of the site's partition applies the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from callfloor.config import StoreConfig
from callfloor.events import Event
from callfloor.ingest.source import Batch

ALL: Final = "all"  # the partition of every site (memory, file, and Redis by default)
# Checkpoints a store keeps per partition: the newest and the one before it, with the
# log back to the older one's positions, so a damaged newest one falls back to it.
KEPT_CHECKPOINTS: Final = 2


class PartitionMap:
    """Which partition each site belongs to (``[store] partitions``), and back.

    A partition's key is a site name: a configured group is named after its first site
    (``[["north", "south"]]`` is partition ``north``), and a site in no group (configured
    or first seen at run time, whatever its name: ``x+y`` included) is a partition of its
    own named after itself. Sites are in one group at most, so no two partitions share a
    key. Keys are never parsed: the map keeps each group's sites.
    """

    def __init__(self, config: StoreConfig) -> None:
        self.mode = config.partitions
        self._key_of: dict[str, str] = {}  # a grouped site -> its group's key
        self._groups: dict[str, frozenset[str]] = {}  # a group's key -> its sites
        if isinstance(config.partitions, tuple):
            for group in config.partitions:
                if not group:
                    continue
                key = group[0]
                self._groups[key] = frozenset(group)
                for site in group:
                    self._key_of[site] = key

    def of(self, site: str) -> str:
        """The partition key of ``site``."""
        if self.mode is None:
            return ALL
        return self._key_of.get(site, site)

    def sites(self, partition: str) -> frozenset[str] | None:
        """The sites of a partition (None: every site).

        Raises ValueError for a grouped site that does not name its group (no such
        partition: its sites are under the group's key).
        """
        if self.mode is None:
            return None if partition == ALL else frozenset((partition,))
        group = self._groups.get(partition)
        if group is not None:
            return group
        if partition in self._key_of:
            raise ValueError(
                f"{partition!r} is not a partition: its site is in partition "
                f"{self._key_of[partition]!r}"
            )
        return frozenset((partition,))


class Record(msgspec.Struct, array_like=True):
    """One appended round as a log keeps it (MessagePack; file segments, Redis entries).

    ``at``: the writer's watermark when it was appended; ``events``: the round's valid
    events (of one site's stream, with Redis); ``rejected``: the invalid items the round
    carried, by reason (they are no events, but the document counts them, so the log
    keeps their count: a recovery counts them again); ``rejected_ids``: the identities
    of those that have one (a file's line), remembered again by a recovery so that the
    same line read again is recognised (records written before it existed have none).
    """

    at: float
    events: list[Event]
    rejected: dict[str, int] = {}
    rejected_ids: list[str] = []


RECORD_ENCODER: Final = msgspec.msgpack.Encoder()
RECORD_DECODER: Final = msgspec.msgpack.Decoder(Record)


@dataclass(slots=True)
class Logged:
    """Events read back from the log, and the log position just after them."""

    partition: str
    stream: str  # the log (stream, file) they were read from
    position: str  # opaque: where the next read of ``stream`` starts
    events: list[Event] = field(default_factory=list)
    at: float = float("-inf")  # the writer's watermark when they were appended
    # The position the read started from ("" for the start of the log). The writer
    # admits an entry only if this is where its partition stands in ``stream``, so an
    # entry read before a partition changed hands is never applied twice.
    since: str | None = None
    rejected: dict[str, int] = field(default_factory=dict)  # invalid items, by reason
    rejected_ids: list[str] = field(default_factory=list)  # their identities (file lines)


class StoreError(Exception):
    """The store cannot do what was asked (unreachable, corrupt, not ours)."""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What a store knows of its own health, read by the service for ``/readyz`` and
    ``/metrics``. A local store (memory, file) is always up and counts nothing here:
    its failures surface as exceptions from the call that failed."""

    up: bool = True
    last_error: str | None = None  # why it is down, naming the operation
    errors_by_op: dict[str, int] = field(default_factory=dict)  # a copy, the caller's
    reconnects: int = 0  # it answered again after failing
    bad_entries: int = 0  # undecodable log entries skipped
    append_retries_found: int = 0  # a retried round that had landed after all
    torn_records: int = 0  # a partial last record cut off the log (a crash mid-append)


class Store(Protocol):
    """Durability: append, checkpoints, recovery (see the module docstring)."""

    @property
    def applies_locally(self) -> bool:
        """True: the writer applies what it appended; False: the log is followed."""
        ...

    async def open(self) -> None:
        """Connect or open; raises :class:`StoreError` with what to do."""
        ...

    async def append(
        self,
        batches: Sequence[Batch],
        at: float,
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> Mapping[str, str]:
        """Make the round durable (one call per round); the new end of each log written.

        ``at`` is the processor clock the round is admitted at, kept with it so recovery
        admits it at the same clock. A store logged per site (Redis) keeps
        ``clock_of(site)`` instead where it is given: the clock of the partition the site
        belongs to here (``-inf`` when another process applies it), so a process's clock
        never moves a partition it does not apply. Raises if it could not: nothing of
        the round may be acknowledged then.
        """
        ...

    async def load(self, partition: str, slot: int = 0) -> bytes | None:
        """One of the partition's kept checkpoints: ``slot`` 0 the newest, 1 the one
        before it (None: none kept there). The bytes as saved, not checked: the caller
        verifies them (a damaged newest one falls back to the one before)."""
        ...

    def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """The partition's events logged after ``positions`` (those of its checkpoint).

        Raises :class:`StoreError` before the first event when the log does not go on
        from there without a hole (a missing part, a cut, a position it never reached).
        """
        ...

    async def save(
        self,
        partition: str,
        blob: bytes,
        positions: Mapping[str, str],
        *,
        previous: Mapping[str, str],
    ) -> None:
        """Keep ``blob`` as the newest checkpoint (covering the log up to ``positions``)
        and the newest one so far as the one before it (a slot left empty, by
        :meth:`set_aside`, keeps the one before as it is); drop the log before
        ``previous``, the positions of the checkpoint that is the one before now ({}:
        drop nothing), so that checkpoint and the log after it still restore the floor.
        """
        ...

    async def set_aside(self, partition: str, slot: int) -> None:
        """Move a kept checkpoint that cannot be restored out of the way (kept beside,
        for inspection, never loaded again): ``slot`` as in :meth:`load`."""
        ...

    async def close(self) -> None:
        """Flush and release (the service stops)."""
        ...

    def health(self) -> StoreHealth:
        """Up or down, the last error and the store's own counters (cheap: no I/O)."""
        ...


class SharedStore(Store, Protocol):
    """A store several processes share (Redis): the floor's partitions have owners.

    Every process appends what it receives (``applies_locally`` is False); the owner of
    a partition, holding its lease, applies the partition's log by :meth:`read` and is
    the only one whose :meth:`save` takes effect (a checkpoint from a process that lost
    the lease is refused with :class:`LeaseLost`). The store instance knows its own
    member id.
    """

    @property
    def member(self) -> str:
        """This process's id among the members (unique per process start)."""
        ...

    async def heartbeat(self, ttl_s: float) -> list[str]:
        """Say this member is alive for ``ttl_s``; the live members, sorted."""
        ...

    async def partitions(self) -> set[str]:
        """Every partition with a site known to the store (configured or seen)."""
        ...

    async def acquire(self, partition: str, ttl_s: float) -> bool:
        """Take the partition's lease if nobody holds it (True: ours now, or already)."""
        ...

    async def renew(self, partitions: Sequence[str], ttl_s: float) -> set[str]:
        """Extend our leases; the partitions whose lease is no longer ours."""
        ...

    async def release(self, partition: str) -> None:
        """Give the lease up (after a last checkpoint) so another member takes it now."""
        ...

    async def holder(self, partition: str) -> str | None:
        """The member holding the partition's lease now (None: nobody)."""
        ...

    async def leave(self) -> None:
        """Say this member is gone (at shutdown: the others rebalance at once)."""
        ...

    async def read(self, cursors: Mapping[str, Mapping[str, str]], block_s: float) -> list[Logged]:
        """New entries of the given partitions' logs after their positions.

        ``cursors`` maps each partition to its positions by stream (a stream it does
        not name is read from its start); waits up to ``block_s`` when there is none.
        """
        ...


class LeaseLost(StoreError):
    """A checkpoint (or renewal) of a partition whose lease another member holds now."""
