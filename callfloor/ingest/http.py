"""HTTP ingest as a source: request handlers offer decoded bodies, the service acknowledges.

The web route decodes a body (off the event loop when it is large), then calls
:meth:`HttpSource.offer`. The offer reserves room for the events in the
:class:`~callfloor.ingest.backlog.Backlog` (no room: the route answers 503) and
returns a future that the batch's ``ack`` completes with the
:class:`~callfloor.ingest.source.Receipt` once the batch is durable and admitted;
the route answers 202 from it. Items that did not decode travel in the same batch
as counts, so they are counted in the same round as the events beside them. Events
beyond the source's allowance of events ahead of the clock (a
:class:`~callfloor.ingest.future.FutureGate`) are refused there, before the backlog:
they are counted with the invalid items and listed in the receipt as refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Self

from callfloor.config import HTTP_SOURCE
from callfloor.events import Event
from callfloor.ingest.backlog import Backlog
from callfloor.ingest.future import FutureGate
from callfloor.ingest.source import Batch, Receipt


class ServiceStopping(Exception):
    """The service is stopping: the body was not taken (or not acknowledged)."""


class HttpSource:
    """Batches offered by HTTP request handlers (see the module docstring)."""

    def __init__(
        self,
        backlog: Backlog,
        name: str = HTTP_SOURCE,
        on_drop: Callable[[int], None] | None = None,
        future: FutureGate | None = None,
    ) -> None:
        self._name = name
        self.backlog = backlog
        self.future = future
        self._on_drop = on_drop  # told the size of every body refused for back-pressure
        self._queue: asyncio.Queue[Batch] = asyncio.Queue()
        self._waiting: set[asyncio.Future[Receipt]] = set()
        self._stopped: asyncio.Future[None] | None = None
        self.closed = False

    @property
    def name(self) -> str:
        """The source name (metric label)."""
        return self._name

    @property
    def buffered(self) -> int:
        """Batches offered and not yet taken by the supervisor."""
        return self._queue.qsize()

    def offer(
        self, events: list[Event], rejected: dict[str, int]
    ) -> asyncio.Future[Receipt] | None:
        """Queue one body's events; None when the backlog has no room for them.

        Raises :class:`ServiceStopping` once the service is stopping.
        """
        if self.closed:
            raise ServiceStopping
        refused: list[int] = []
        ahead: list[float] = []
        kept_at: list[int] | None = None
        if self.future is not None and events:
            refused, ahead = self.future.split(self._name, events)
            if refused:
                skip = set(refused)
                kept_at = [i for i in range(len(events)) if i not in skip]
                events = [events[i] for i in kept_at]
                reason = self.future.refusal.reason
                rejected = {**rejected, reason: rejected.get(reason, 0) + len(refused)}
        if events and not self.backlog.try_reserve(len(events)):
            if self._on_drop is not None:
                self._on_drop(len(events))
            return None
        if self.future is not None:
            self.future.commit(self._name, ahead)
        done: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        waiting = self._waiting
        waiting.add(done)
        gate = self.future

        def ack(receipt: Receipt) -> None:
            waiting.discard(done)
            if kept_at is not None and gate is not None:
                receipt = _with_refused(receipt, kept_at, refused, gate)
            if not done.done():  # the request may have timed out: nobody waits any more
                done.set_result(receipt)

        # A body is one request: a client that got no answer sends it again as a whole.
        self._queue.put_nowait(Batch(events, self._name, rejected, ack, reserved=True, resent=True))
        return done

    def stopped(self) -> asyncio.Future[None]:
        """A future that is done once the service stops (for requests still reading a body:
        the server reads nothing more once it stops, so they would wait in vain)."""
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
            if self.closed:
                self._stopped.set_result(None)
        return self._stopped

    def abort(self) -> None:
        """Take nothing more; requests still waiting for their batch fail with ServiceStopping."""
        self.closed = True
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        for done in self._waiting:
            if not done.done():
                done.set_exception(ServiceStopping())
        self._waiting.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        while True:
            yield await self._queue.get()


def _with_refused(
    receipt: Receipt, kept_at: list[int], refused: list[int], gate: FutureGate
) -> Receipt:
    """The receipt of the events offered, in their positions: what the writer said of
    those kept, and the refusals of those ahead of the clock beyond the allowance."""
    refusal = gate.refusal
    return Receipt(
        duplicates=[kept_at[i] for i in receipt.duplicates],
        refused=sorted(
            [(kept_at[i], r) for i, r in receipt.refused] + [(i, refusal) for i in refused],
            key=lambda item: item[0],
        ),
        resent=receipt.resent,
    )
