"""Feeds: Asterisk queue_log (file and database exports), AMI and Amazon Connect.

Each feed is a pure mapper (:mod:`callfloor.feeds.base`): records in, canonical events
and rejections out, no I/O. Replay (``--format``), ``callfloor convert`` and the live
sources share them. A new feed is a module with a mapper class plus one line in
:data:`MAPPERS`.
"""

from __future__ import annotations

from typing import Final

from callfloor.feeds.ami import AmiMapper
from callfloor.feeds.base import FeedFormatError, FeedOptions, MapResult, Rejected
from callfloor.feeds.connect import ConnectMapper
from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper

MAPPERS: Final[dict[str, type[QueueLogMapper | QueueLogCsvMapper | ConnectMapper | AmiMapper]]] = {
    "queue_log": QueueLogMapper,
    "queue_log_csv": QueueLogCsvMapper,
    "connect": ConnectMapper,
    "ami": AmiMapper,
}
"""Feed formats by name (``--format`` / ``--from``)."""

FEED_FORMATS: Final[tuple[str, ...]] = tuple(MAPPERS)

__all__ = [
    "FEED_FORMATS",
    "MAPPERS",
    "AmiMapper",
    "ConnectMapper",
    "FeedFormatError",
    "FeedOptions",
    "MapResult",
    "QueueLogCsvMapper",
    "QueueLogMapper",
    "Rejected",
]
