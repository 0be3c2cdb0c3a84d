"""The source protocol: where events come from and how their arrival is acknowledged.

A source follows aiomqtt's shape: setup and teardown are an async context manager,
the stream is an async iterator of :class:`Batch` objects::

    async with source:
        async for batch in source:
            ...

The service never calls a source's iterator itself: a
:class:`~callfloor.ingest.supervisor.Supervisor` does, restarts it when it fails
(so a source must be re-enterable: ``async with`` again after an error reconnects)
and hands each batch to the service. The service appends the batch to its
:class:`~callfloor.store.base.Store` and only then calls ``batch.ack`` with a
:class:`Receipt` saying what became of each event. An HTTP source answers the
request from the receipt; an MQTT source sends its PUBACK; a tailed file saves
its offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from callfloor.events import Event
from callfloor.processors.limits import Refusal


@dataclass(slots=True)
class Receipt:
    """What became of a batch's events; positions index ``Batch.events``.

    Every event not listed here was accepted: applied, or held until the watermark
    passes its ``ts``.
    """

    duplicates: list[int] = field(default_factory=list)
    refused: list[tuple[int, Refusal]] = field(default_factory=list)
    # How many of ``duplicates`` were resends of what the service already had (a
    # client's retry, a broker's redelivery): not applied, not counted as duplicates.
    resent: int = 0
    # Positions in ``Batch.rejected_ids`` of rejections the service had counted already
    # (a file's line read again after a restart): not counted again.
    rejected_resent: list[int] = field(default_factory=list)


Ack = Callable[[Receipt], None]
"""Called once, after the batch is durable in the store and its events were admitted."""


@dataclass(slots=True)
class Batch:
    """Events that arrived together from one source.

    ``rejected`` counts the items of the same delivery that did not decode, by
    reason: they are not events, but they are counted (SPEC §1) in the same round.
    ``reserved`` says the events were already admitted by the back-pressure gate
    (a source that must answer at once, like HTTP, reserves room before queueing).

    ``resent`` says which events may be a resend of what was received before:
    ``True``, the batch as a whole (one request a client may send
    again until it is answered); or the positions of such events (those of a message
    a broker delivered again). A resend is recognised when *every* event of the batch
    (``True``), or that event (positions), is already known to the service: it is
    acknowledged as a duplicate but neither applied nor counted in the document, so a
    crash and the retries it causes leave the state as it would have been without it.

    ``rejected_ids`` gives rejections an identity, as ids do events: ``(id, reason)``
    of items counted in ``rejected`` (a file's unmappable line: its position and
    content). With ``resent``, one the service has counted before is taken out of
    ``rejected`` and listed in the receipt's ``rejected_resent``; the others are counted
    and their ids remembered (and logged, so a recovery remembers them too).
    """

    events: list[Event]
    source: str = "unknown"
    rejected: dict[str, int] = field(default_factory=dict)
    ack: Ack | None = None
    reserved: bool = False
    resent: bool | frozenset[int] = False
    rejected_ids: list[tuple[str, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Events in the batch (what back-pressure counts)."""
        return len(self.events)


class Source(Protocol):
    """An async iterator of batches inside an async context manager (see the module)."""

    @property
    def name(self) -> str:
        """A short, stable name: a metric label and the key in ``/readyz``."""
        ...

    async def __aenter__(self) -> Self:
        """Connect (or open); raising here counts as a failure and is retried."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Disconnect (or close); called after every run, failed or not."""
        ...

    def __aiter__(self) -> AsyncIterator[Batch]:
        """The batches; the iterator ending means the source is finished for good."""
        ...
