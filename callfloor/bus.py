"""The change bus: every tick's change set, fanned out to subscribers with bounded queues.

The service publishes ``proc.drain_changes()`` (a
:class:`~callfloor.processors.views.ChangeSet`) once per tick, empty or not: the
empty ones tell a subscriber that time moved (values that move with the clock
alone, like the longest wait, are re-read on every tick). Each subscriber (the SSE
stream, wallboards, Redis publishing, alert sinks) has its own bounded queue.
Publishing never waits: a subscriber whose queue is full is dropped (its
subscription ends with :attr:`Subscription.dropped` set) and counted by kind. A
dropped subscriber has missed a change set, so it must re-read the state before
it subscribes again; dropping it says so, where silently skipping a change set
would leave it wrong without knowing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from callfloor.processors.views import ChangeSet

DEFAULT_QUEUE = 64


class Subscription:
    """One subscriber's queue: iterate it (``async for changes in sub``) until it ends."""

    __slots__ = ("_items", "_ready", "closed", "dropped", "kind", "maxsize")

    def __init__(self, kind: str, maxsize: int) -> None:
        self.kind = kind
        self.maxsize = maxsize
        self.closed = False
        self.dropped = False
        self._items: deque[ChangeSet] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, changes: ChangeSet) -> bool:
        """Queue ``changes``; False if the queue is full (the bus then drops this subscriber)."""
        if self.closed:
            return True
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(changes)
        self._ready.set()
        return True

    def close(self, *, dropped: bool = False) -> None:
        """End the subscription: the iterator stops once what is queued was read.

        A dropped subscription ends at once: what it still holds is incomplete.
        """
        self.closed = True
        if dropped:
            self.dropped = True
            self._items.clear()
        self._ready.set()

    async def get(self) -> ChangeSet | None:
        """The next change set, or None once the subscription ended."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[ChangeSet]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ChangeSet]:
        while (changes := await self.get()) is not None:
            yield changes


class ChangeBus:
    """Fans change sets out to subscriptions (see the module docstring)."""

    def __init__(self, dropped: dict[str, int] | None = None) -> None:
        # Dropped subscribers by kind; the service passes its stats mapping.
        self.dropped = dropped if dropped is not None else {}
        self._subscriptions: set[Subscription] = set()
        self.published = 0

    def __len__(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, kind: str, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        """A new subscription of ``kind`` (a metric label: "sse", "wallboard", ...)."""
        sub = Subscription(kind, maxsize)
        self._subscriptions.add(sub)
        # The kind's counter exists from its first subscriber on, at 0: Prometheus's
        # rate() and increase() miss a series' first increment, and a dashboard
        # shows 0 rather than no data.
        self.dropped.setdefault(kind, 0)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` and end it."""
        self._subscriptions.discard(sub)
        sub.close()

    def publish(self, changes: ChangeSet) -> None:
        """Deliver ``changes`` to every subscriber now; drop (and count) the full ones."""
        self.published += 1
        slow: list[Subscription] = []
        for sub in self._subscriptions:
            if not sub.offer(changes):
                slow.append(sub)
        for sub in slow:
            self.drop(sub)

    def drop(self, sub: Subscription) -> None:
        """End ``sub`` as too slow (counted once by kind), e.g. a client that stopped reading."""
        self._subscriptions.discard(sub)
        if not sub.dropped:
            sub.close(dropped=True)
            self.dropped[sub.kind] = self.dropped.get(sub.kind, 0) + 1

    def close(self) -> None:
        """End every subscription (the service stops)."""
        for sub in self._subscriptions:
            sub.close()
        self._subscriptions.clear()
