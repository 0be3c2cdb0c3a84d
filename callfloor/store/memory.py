"""The ``memory:`` store: keeps nothing (the demo; state lives in the processor only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from callfloor.ingest.source import Batch
from callfloor.store.base import Logged, StoreHealth


class MemoryStore:
    """Appends nothing and counts what it was given; a restart starts from nothing."""

    applies_locally = True

    def __init__(self) -> None:
        self.appends = 0
        self.batches = 0
        self.events = 0
        self.closed = False

    async def open(self) -> None:
        """Nothing to open."""

    async def append(
        self,
        batches: Sequence[Batch],
        at: float,
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> Mapping[str, str]:
        """Count the round (nothing is kept)."""
        self.appends += 1
        self.batches += len(batches)
        self.events += sum(batch.size for batch in batches)
        return {}

    async def load(self, partition: str, slot: int = 0) -> bytes | None:
        """No checkpoint: start from nothing."""
        return None

    async def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """Nothing was logged."""
        for _ in ():
            yield _

    async def save(
        self,
        partition: str,
        blob: bytes,
        positions: Mapping[str, str],
        *,
        previous: Mapping[str, str],
    ) -> None:
        """Nothing is kept."""

    async def set_aside(self, partition: str, slot: int) -> None:
        """Nothing is kept."""

    async def close(self) -> None:
        """Nothing to flush."""
        self.closed = True

    def health(self) -> StoreHealth:
        """Always up: nothing here can fail."""
        return StoreHealth()
