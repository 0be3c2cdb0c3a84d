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

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from callfloor.config import StoreConfig
from callfloor.events import Event
from callfloor.ingest.source import Batch

ALL: Final = "all"  # the partition of every site (memory, file, and Redis by default)


class PartitionMap:
    """Which partition each site belongs to (``[store] partitions``)."""

    def __init__(self, config: StoreConfig) -> None:
        self.mode = config.partitions
        self._groups: dict[str, str] = {}
        if isinstance(config.partitions, tuple):
            for group in config.partitions:
                key = "+".join(group)
                for site in group:
                    self._groups[site] = key

    def of(self, site: str) -> str:
        """The partition key of ``site``."""
        if self.mode is None:
            return ALL
        found = self._groups.get(site)
        return found if found is not None else site

    def sites(self, partition: str) -> frozenset[str] | None:
        """The sites of a partition (None: every site)."""
        if partition == ALL and self.mode is None:
            return None
        if "+" in partition and isinstance(self.mode, tuple):
            return frozenset(partition.split("+"))
        return frozenset((partition,))


@dataclass(slots=True)
class Logged:
    """Events read back from the log, and the log position just after them."""

    partition: str
    stream: str  # the log (stream, file) they were read from
    position: str  # opaque: where the next read of ``stream`` starts
    events: list[Event] = field(default_factory=list)
    at: float = float("-inf")  # the writer's watermark when they were appended


class StoreError(Exception):
    """The store cannot do what was asked (unreachable, corrupt, not ours)."""


class Store(Protocol):
    """Durability: append, checkpoints, recovery (see the module docstring)."""

    @property
    def applies_locally(self) -> bool:
        """True: the writer applies what it appended; False: the log is followed."""
        ...

    async def open(self) -> None:
        """Connect or open; raises :class:`StoreError` with what to do."""
        ...

    async def append(self, batches: Sequence[Batch], at: float) -> Mapping[str, str]:
        """Make the round durable (one call per round); the new end of each log written.

        ``at`` is the processor clock the round is admitted at, kept with it so recovery
        admits it at the same clock. Raises if it could not: nothing of the round may be
        acknowledged then.
        """
        ...

    async def load(self, partition: str) -> bytes | None:
        """The partition's last checkpoint (None: start from nothing)."""
        ...

    def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """The partition's events logged after ``positions`` (those of its checkpoint)."""
        ...

    async def save(self, partition: str, blob: bytes, positions: Mapping[str, str]) -> None:
        """Keep a checkpoint covering the log up to ``positions``; drop the log before it."""
        ...

    async def close(self) -> None:
        """Flush and release (the service stops)."""
        ...
