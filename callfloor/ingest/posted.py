"""A feed whose records are posted over HTTP: ``POST /api/v1/feeds/<source name>``.

``[[sources]] kind = "connect"`` with ``ingest = true`` (instead of ``path``) takes
Amazon Connect records as NDJSON bodies on its own route, for a forwarder (a Lambda on
the Kinesis stream or the EventBridge rule) that posts what AWS delivers. The body is
read like one of ``POST /api/v1/events`` (the same limits, access control and
answer), but mapped by the feed's own mapper; the events go the way of HTTP events
(the HTTP source's acknowledgement: the answer is sent once they are durable).

:class:`PostedFeed` is the source the registry builds for it: it never yields a batch
itself (its records arrive through the route), stays up while the service runs, and
holds the mapper (whose state lives as long as the process: Connect records carry
their own ids, so a body posted again is answered as duplicates) and the counters.
The web application finds the feeds of a service with :func:`feeds_of`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from callfloor.config import SourceConfig
from callfloor.feeds.base import FeedOptions, LineSplitter, map_lines
from callfloor.feeds.connect import ConnectMapper
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.decode import BOM, Decoded
from callfloor.ingest.feedsource import FeedBatcher
from callfloor.ingest.source import Batch

if TYPE_CHECKING:
    from callfloor.ingest.kinds import SourceContext

ROUTE_PREFIX: Final = "/api/v1/feeds/"

_FEEDS: Final[weakref.WeakKeyDictionary[object, list[PostedFeed]]] = weakref.WeakKeyDictionary()


def feeds_of(service: object) -> list[PostedFeed]:
    """The posted feeds built for ``service`` (their routes go into its web application)."""
    return list(_FEEDS.get(service, ()))


def make_posted_source(entry: SourceConfig, ctx: SourceContext) -> PostedFeed:
    """The registry's factory for a feed posted over HTTP; known to the web app from now."""
    service = ctx.service
    feed = PostedFeed(
        entry,
        FeedOptions.from_config(ctx.config, site=entry.site),
        counts=service.stats.source_counts,
    )
    _FEEDS.setdefault(service, []).append(feed)
    return feed


class PostedFeed:
    """A feed source fed by HTTP bodies (see the module docstring)."""

    def __init__(
        self, config: SourceConfig, feed: FeedOptions, *, counts: SourceCounts | None = None
    ) -> None:
        self.config = config
        self.route = ROUTE_PREFIX + config.name
        self.mapper = ConnectMapper(feed)
        self.batcher = FeedBatcher(config.name, config.kind, counts)
        self._stop = asyncio.Event()

    @property
    def name(self) -> str:
        """The source name (metric label, key in ``/readyz``, the route's last part)."""
        return self.config.name

    async def __aenter__(self) -> Self:
        """Nothing to open: the route takes the records."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Nothing to close."""

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._wait()

    async def _wait(self) -> AsyncIterator[Batch]:
        # Up until the service stops: the batches come through the route.
        await self._stop.wait()
        return
        yield  # an async generator that yields nothing

    def decode(self, body: bytes, not_after: float) -> Decoded:
        """A body's records through the mapper, as the ingest route's :class:`Decoded`
        (rejections indexed by the record's line in the body, 0-based)."""
        if body.startswith(BOM):
            body = body[len(BOM) :]
        splitter = LineSplitter()
        lines, offsets, numbers = splitter.push(body)
        long = splitter.take_long(final=True)
        result = map_lines(self.mapper, lines, offsets, numbers, long, splitter.max_line)
        tail = splitter.tail()
        records = len(lines) + len(long)
        if tail is not None:  # the last record without its newline: a whole one is fine
            line, position, number = tail
            at = len(numbers)  # after the lines and the long ones (map_lines numbered them)
            records += 1
            numbers.append(number)
            rejected = self.mapper.truncated(line, position, index=at)
            if rejected is None:
                result.extend(self.mapper.feed([line], [position]), offset=at)
            else:
                result.rejected.append(rejected)
        counts, key = self.batcher.counts, self.batcher.key
        counts.add(counts.received_total, key, records)
        counts.add(counts.events_total, key, len(result.events))
        if result.skipped:
            counts.add(counts.skipped_total, key, sum(result.skipped.values()))
        decoded = Decoded(not_after=not_after)
        for r in result.rejected:
            counts.reject(key, r.reason)
            decoded.reject(numbers[r.index] - 1, r.reason, None, r.message)
        for event, origin in zip(result.events, result.origins, strict=True):
            decoded.add(numbers[origin] - 1, event)
        return decoded
