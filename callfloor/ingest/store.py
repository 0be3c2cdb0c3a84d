"""The durability seam: batches are appended to a store before they are acknowledged.

The service calls :meth:`Store.append` once per ingest round with every batch of
the round, and calls each batch's ``ack`` only after it returned. A store that
cannot append raises; the service retries the same round (with backoff) and never
acknowledges what was not appended. :class:`MemoryStore` keeps nothing (the state
lives in the processor only, SPEC §9 ``memory:``); Redis Streams and a file log
come next behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from callfloor.ingest.source import Batch


class Store(Protocol):
    """Where received batches become durable."""

    async def append(self, batches: Sequence[Batch]) -> None:
        """Make ``batches`` durable (one call per ingest round); raise if that failed."""
        ...

    async def close(self) -> None:
        """Flush and release resources (the service stops)."""
        ...


class MemoryStore:
    """The ``memory:`` store: appends nothing, counts what it was given."""

    def __init__(self) -> None:
        self.appends = 0
        self.batches = 0
        self.events = 0
        self.closed = False

    async def append(self, batches: Sequence[Batch]) -> None:
        """Count the round (nothing is kept: state lives in the processor only)."""
        self.appends += 1
        self.batches += len(batches)
        self.events += sum(batch.size for batch in batches)

    async def close(self) -> None:
        """Nothing to flush."""
        self.closed = True
