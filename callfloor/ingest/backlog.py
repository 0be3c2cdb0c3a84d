"""Back-pressure by events: one count of what was admitted and is not applied yet.

An event is pending from the moment a source is given room for it until the
processor applied (or refused) it: queued for the next ingest round, or held
until the watermark passes its ``ts``. ``[limits] max_pending_events`` caps the
sum, so a flood of future-dated events cannot grow memory any more than a flood
of batches can. Sources that must answer at once (HTTP) ask
:meth:`Backlog.try_reserve` and refuse the request when it says no; in-process
sources wait in :meth:`Backlog.reserve`.
"""

from __future__ import annotations

import asyncio


class Backlog:
    """Pending events against a capacity (single-threaded: the event loop's)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.pending = 0
        # Set when a reservation was refused; cleared once the backlog drained to
        # 90 % of capacity, so readiness does not flap on every applied batch.
        self.saturated = False
        self._drained = asyncio.Event()

    def fits(self, n: int) -> bool:
        """Whether ``n`` more events fit now. A batch larger than the capacity never fits."""
        return self.pending + n <= self.capacity

    def try_reserve(self, n: int) -> bool:
        """Reserve room for ``n`` events; False (and saturated) if they do not fit."""
        if not self.fits(n):
            self.saturated = True
            return False
        self.pending += n
        return True

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` events fit, then reserve them (a larger batch waits for empty)."""
        need = min(n, self.capacity)  # an oversized in-process batch goes alone
        while self.pending + need > self.capacity:
            self._drained.clear()
            await self._drained.wait()
        self.pending += n

    def add(self, n: int) -> None:
        """Count ``n`` events that are already here (held events of a recovered checkpoint)."""
        self.pending += n

    def release(self, n: int) -> None:
        """``n`` pending events were applied, refused or dropped."""
        self.pending = max(0, self.pending - n)
        if self.saturated and self.pending <= 0.9 * self.capacity:
            self.saturated = False
        self._drained.set()  # waiting sources look again
