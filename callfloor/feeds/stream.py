"""A feed's input as byte chunks, through its mapper, in batches with line numbers.

Pure: the caller reads (a file, stdin, a socket) and passes the chunks; this splits
them into records (lines, or AMI messages), feeds the mapper and says where each record
was. Replay and ``callfloor convert`` use it; a tailing source splits lines the same way
with :class:`~callfloor.feeds.base.LineSplitter`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from callfloor.feeds import MAPPERS
from callfloor.feeds.ami import AmiMapper, AmiParser
from callfloor.feeds.base import (
    MAX_LINE_BYTES,
    FeedOptions,
    LineSplitter,
    MapResult,
    bound_raw,
    map_lines,
)
from callfloor.feeds.connect import ConnectMapper
from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper

BOM: Final = b"\xef\xbb\xbf"

AnyMapper = QueueLogMapper | QueueLogCsvMapper | ConnectMapper | AmiMapper


@dataclass(slots=True)
class Mapped:
    """One batch: the mapper's result and the 1-based line where each record began."""

    result: MapResult
    lines: list[int]

    def line_of(self, index: int) -> int:
        """The line of record ``index`` of the batch."""
        return self.lines[index] if self.lines else 0


def make_mapper(fmt: str, options: FeedOptions) -> AnyMapper:
    """A fresh mapper for a feed format (:data:`~callfloor.feeds.MAPPERS`)."""
    try:
        cls = MAPPERS[fmt]
    except KeyError:
        raise ValueError(f"unknown feed format {fmt!r} (known: {', '.join(MAPPERS)})") from None
    return cls(options)


def map_chunks(
    mapper: AnyMapper,
    chunks: Iterable[bytes],
    *,
    offset: int = 0,
    max_line: int = MAX_LINE_BYTES,
) -> Iterator[Mapped]:
    """Every record of ``chunks`` (one input, read in order) through ``mapper``.

    A leading UTF-8 byte order mark is skipped (positions count from after it unless
    ``offset`` says where the data started). At the end, a last record the input ended
    in (no newline, or for AMI no blank line) is a ``truncated_line`` rejection (for
    Connect only when it is not a whole JSON record), and the mapper settles what waits
    (:meth:`~callfloor.feeds.base.Mapper.finish`). A line over ``max_line`` bytes is a
    ``line_too_long`` rejection, skipped without being held; a rejection keeps at most
    :data:`~callfloor.feeds.base.RAW_KEEP` bytes of its record.
    """
    first = True
    if isinstance(mapper, AmiMapper):
        parser = AmiParser(offset)
        last_line = 0
        for chunk in chunks:
            if first:
                first = False
                if chunk.startswith(BOM):
                    chunk = chunk[len(BOM) :]
                    parser = AmiParser(offset + len(BOM))
            messages = parser.feed(chunk)
            if messages:
                starts = parser.starts
                last_line = starts[-1][1]
                yield Mapped(mapper.feed(messages, [s[0] for s in starts]), [s[1] for s in starts])
        unfinished = parser.tail()
        if unfinished is not None:
            message, where, at_line = unfinished
            last_line = at_line
            yield Mapped(MapResult(rejected=[mapper.truncated(message, where)]), [at_line])
        final = mapper.finish()
        if final.events:
            yield Mapped(final, [last_line])
        return

    splitter = LineSplitter(offset, max_line=max_line)
    for chunk in chunks:
        if first:
            first = False
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
                splitter = LineSplitter(offset + len(BOM), max_line=max_line)
        lines, offsets, numbers = splitter.push(chunk)
        long = splitter.take_long()
        if lines or long:
            yield Mapped(map_lines(mapper, lines, offsets, numbers, long, max_line), numbers)
    tail = splitter.tail()
    if tail is not None:
        line, position, number = tail
        rejected = mapper.truncated(line, position)
        if rejected is None:  # a whole JSON record without its newline
            yield Mapped(map_lines(mapper, [line], [position], [number], [], max_line), [number])
        else:
            yield Mapped(MapResult(rejected=[bound_raw(rejected, line)]), [number])
    long = splitter.take_long(final=True)
    if long:
        numbers = []
        yield Mapped(map_lines(mapper, [], [], numbers, long, max_line), numbers)
    final = mapper.finish()
    if final.events:
        yield Mapped(final, [splitter.line])
