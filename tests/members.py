"""In-process members of a shared floor: a service with its coordinator and follower on a
real Redis store (a `serve` without HTTP), as the ownership and lifecycle tests use them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from waiting import until as until  # re-exported for the tests

from callfloor.config import Config
from callfloor.events import Event
from callfloor.ingest.source import Batch, Receipt
from callfloor.service import FloorService
from callfloor.service.ownership import Coordinator, Follower
from callfloor.store.redis import RedisStore


class Member:
    """One in-process service with its coordinator and follower (a `serve` without HTTP)."""

    def __init__(self, config: Config, name: str, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.store = RedisStore(config.store, sites=config.named_sites(), member=name)
        self.service = FloorService(
            config, store=self.store, clock=clock, tick_s=0.05, watermark_delay_s=0.0
        )
        self.coordinator = Coordinator(self.service)
        self.follower = Follower(self.service, block_s=0.1)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the store and run the writer, the coordinator and the follower."""
        await self.store.open()
        self.tasks = [
            asyncio.create_task(self.service.writer.run(), name=f"{self.name}:ingest"),
            asyncio.create_task(self.coordinator.run(), name=f"{self.name}:ownership"),
            asyncio.create_task(self.follower.run(), name=f"{self.name}:follow"),
        ]

    @property
    def owned(self) -> frozenset[str]:
        """The partitions this member applies."""
        return self.service.writer.owned

    def events(self) -> int:
        """Events applied by this member's partitions."""
        return sum(p.view.counters().events for p in self.service.writer.processors())

    def queues(self) -> set[str]:
        """The queues this member's partitions show."""
        return {q for p in self.service.writer.processors() for q in p.view.queue_names()}

    async def submit(self, events: list[Event]) -> Receipt:
        """Hand events to this process; returns once they are acknowledged (durable)."""
        acked: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        await self.service.submit(Batch(events, source="test", ack=acked.set_result))
        return await asyncio.wait_for(acked, 10.0)

    async def _cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []

    async def crash(self) -> None:
        """Stop at once: no checkpoint, no release, no goodbye (a SIGKILL)."""
        await self._cancel()
        await self.store.close()

    async def stop(self) -> None:
        """The shutdown order: the round ends, a final checkpoint, the leases released."""
        await self.service.writer.settle(5.0)
        await self._cancel()
        await self.service.writer.checkpoint()
        await self.coordinator.close()
        await self.store.close()


@contextlib.asynccontextmanager
async def running(*started: Member) -> AsyncIterator[None]:
    """Start the members; crash those still running on exit."""
    try:
        for member in started:
            await member.start()
        yield
    finally:
        for member in started:
            if member.tasks:
                await member.crash()


class Stalls:
    """How long this process was held up while a test timed something: a stalled or
    overloaded machine, not the code under test. A thread sleeps 5 ms at a time and adds
    up every wake-up that came more than 20 ms late. The event loop's own work is not
    counted (the thread gets the GIL back within the 5 ms switch interval, unless one C
    call keeps it longer), so a duration less ``seconds`` is what the code under test
    took while it could run."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            before = time.monotonic()
            time.sleep(0.005)
            late = time.monotonic() - before - 0.005
            if late > 0.02:
                self.seconds += late

    def __enter__(self) -> Stalls:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
