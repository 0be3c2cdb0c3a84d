"""Live file feeds: a queue_log (or its CSV export, or Connect NDJSON) tailed as it grows.

:class:`TailSource` reads the file from its saved position (inode and byte offset, see
:mod:`callfloor.ingest.positions`), splits complete lines (a partly written last line
waits until its newline arrives), maps them with the feed's pure mapper and yields one
:class:`~callfloor.ingest.source.Batch` per read. Every batch is marked as a possible
resend: after a crash the lines after the checkpointed position are read again, carry
the same deterministic ids (position and content), and the service drops those it has;
a rejected line's rejection has such an id too, so it is counted and dead-lettered once.

Rotation, looked at whenever the reader is at the end of the file:

- *rename* (logrotate's default, Asterisk's ``logger rotate``): the path names another
  inode. The old file is read to its end first (Asterisk may still write to it until it
  reopens its logs), then the new one from its start.
- *copy-truncate*: the same inode is shorter than what was read. The new content is
  read from offset 0 (a partial last line of before is dropped and dead-lettered).
- *missing*: the path is gone (between a rename and the new file's creation, or an
  operator's move): the source waits, polling, and is up all the while.

- *rewritten*: the file's first bytes are no longer those read (a copy-truncate after
  which the file grew back past the read position between two polls): the new
  content is read from offset 0. Checked after every read that returned data, by
  comparing the first ``HEAD_BYTES`` (or fewer, as many as were read) with a copy kept
  from reading them: one ``pread`` of at most 4 KB.

After a restart whose saved inode no longer is at the path, the old file is looked for
in the same directory (``queue_log.1``, ``queue_log-20261207``: any name with that
inode) and read to its end before the new file. The position carries a fingerprint
(a digest of the file's first ``min(offset, HEAD_BYTES)`` bytes): an appended file
keeps it, so a file whose first bytes differ at restart (copy-truncated while
callfloor was down, even if it then grew back past the saved offset; another file
that reused the inode) is read from its start instead of from the saved offset.
Each rotation counts in ``callfloor_source_rotations_total{reason}`` (renamed,
truncated, rewritten).

Reading uses plain ``os.read`` on the event loop: reads of a local file return at once
and are bounded (``chunk_bytes``), and polling ``os.stat`` every ``poll_interval`` keeps
the latency from write to apply within tens of milliseconds (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import msgspec

from callfloor.config import SourceConfig
from callfloor.feeds.base import (
    MAX_LINE_BYTES,
    MAX_LINE_LIMIT,
    FeedOptions,
    LineSplitter,
    MapResult,
    Rejected,
    bound_raw,
    event_id,
    map_lines,
)
from callfloor.feeds.connect import ConnectMapper
from callfloor.feeds.queue_log import QueueLogMapper
from callfloor.feeds.queue_log_csv import QueueLogCsvMapper
from callfloor.ingest.counts import SourceCounts
from callfloor.ingest.feedsource import FeedBatcher
from callfloor.ingest.positions import PositionBook, SourcePosition
from callfloor.ingest.source import Batch, Receipt

if TYPE_CHECKING:
    from callfloor.ingest.kinds import KeyReader, SourceContext

log = logging.getLogger("callfloor.ingest")

LineMapper = QueueLogMapper | QueueLogCsvMapper | ConnectMapper
MAPPER_OF: Final[dict[str, type[LineMapper]]] = {
    "queue_log": QueueLogMapper,
    "queue_log_csv": QueueLogCsvMapper,
    "connect": ConnectMapper,
}
POLL_S: Final = 0.02
# How often a batch carries a position to save (with the mapper's state, whose encoding
# grows with the calls it remembers): the lines of at most this long are read again
# (and dropped as resends) after a crash.
POSITION_EVERY_S: Final = 1.0
CHUNK_BYTES: Final = 1 << 18  # ~3,500 lines: a read and its mapping keep the loop ~25 ms
STARTS: Final = ("beginning", "end")
# The fingerprint of a file: its first bytes (a queue_log's first ~50 lines). An
# appended file keeps them; a copy-truncated one starts with other lines.
HEAD_BYTES: Final = 4096


def head_digest(head: bytes) -> bytes:
    """The fingerprint saved with a position: a 64-bit BLAKE2b digest of ``head``."""
    return hashlib.blake2b(head, digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class TailOptions:
    """A file source's own settings (``[[sources]]`` keys besides kind, name, path, site)."""

    poll_s: float = POLL_S
    start: str = "beginning"  # with no saved position: read the file whole, or from its end
    timezone: str | None = None  # queue_log_csv: the zone of its local-text times
    dead_letters: str | None = None  # an NDJSON file for unmappable lines (None: the log)
    max_line_bytes: int = MAX_LINE_BYTES  # a longer line is skipped (line_too_long)


def parse_options(r: KeyReader, table: Mapping[str, object], key: str) -> dict[str, Any]:
    """The keys of a file source (the registry's parser for its kinds)."""
    if "path" not in table:
        kind = table.get("kind")
        raise r.error(f"{key}.path", f"a {kind} source needs the file's path")
    poll = r.duration(table.get("poll_interval", POLL_S), f"{key}.poll_interval")
    if not 0.001 <= poll <= 60.0:
        raise r.error(f"{key}.poll_interval", f"must be between 1ms and 60s, got {poll:g} s")
    timezone = None
    if "timezone" in table:
        timezone = r.string(table["timezone"], f"{key}.timezone")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(timezone)
        except (ValueError, KeyError, OSError):
            raise r.error(f"{key}.timezone", f"unknown time zone {timezone!r}") from None
    letters = table.get("dead_letters")
    max_line = MAX_LINE_BYTES
    if "max_line_bytes" in table:
        max_line = r.size(table["max_line_bytes"], f"{key}.max_line_bytes")
        if not 256 <= max_line <= MAX_LINE_LIMIT:
            raise r.error(
                f"{key}.max_line_bytes",
                f"must be between 256 bytes and {MAX_LINE_LIMIT >> 20} MiB, got {max_line}",
            )
    return {
        "options": TailOptions(
            poll_s=poll,
            start=r.choice(table.get("start", "beginning"), f"{key}.start", STARTS),
            timezone=timezone,
            dead_letters=r.string(letters, f"{key}.dead_letters") if letters is not None else None,
            max_line_bytes=max_line,
        )
    }


def make_tail_source(entry: SourceConfig, ctx: SourceContext) -> TailSource:
    """The registry's factory for file sources: counting into the service, positions in
    its checkpoints."""
    from callfloor.ingest.positions import book_of

    service = ctx.service
    options = entry.options if isinstance(entry.options, TailOptions) else TailOptions()
    feed = FeedOptions.from_config(ctx.config, site=entry.site, timezone=options.timezone)
    return TailSource(
        entry,
        feed,
        options,
        counts=service.stats.source_counts,
        book=book_of(service.writer),
        clock=service.clock,
        not_after=service.not_after,
    )


class TailSource:
    """A line-based feed file, tailed (see the module docstring)."""

    def __init__(
        self,
        config: SourceConfig,
        feed: FeedOptions,
        options: TailOptions | None = None,
        *,
        counts: SourceCounts | None = None,
        book: PositionBook | None = None,
        clock: Callable[[], float] = time.time,
        not_after: Callable[[], float] | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        position_every_s: float = POSITION_EVERY_S,
    ) -> None:
        if config.path is None:
            raise ValueError(f"source {config.name!r} has no path")
        self.config = config
        self.kind = config.kind
        self.path = config.path
        self.feed_options = feed
        self.options = options or TailOptions()
        self.batcher = FeedBatcher(
            config.name,
            config.kind,
            counts,
            clock=clock,
            not_after=not_after,
            dead_letters=self.options.dead_letters,
            where=config.path,
        )
        self.counts = self.batcher.counts
        self.book = book if book is not None else PositionBook()
        self.clock = clock
        self.chunk_bytes = chunk_bytes
        self.position_every_s = position_every_s
        self._positioned_at: float | None = None  # monotonic time of the last position
        self.key = (config.name, config.kind)
        self.mapper: LineMapper = MAPPER_OF[config.kind](feed)
        self._fd: int | None = None
        self._ident: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the file read
        self.max_line = self.options.max_line_bytes
        self._splitter = LineSplitter(max_line=self.max_line)
        self._head = b""  # the file's first bytes as read (at most HEAD_BYTES)
        self._loaded = False  # the saved position was taken (once per process)
        self._drain_first: str | None = None  # a rotated file to finish before the path
        self._seq = 0
        self._opened = 0
        self._missing_since: float | None = None
        self._refused: tuple[int, int] | None = None  # a path that is no regular file

    @property
    def name(self) -> str:
        """The source name (metric label, key in ``/readyz``)."""
        return self.config.name

    # ------------------------------------------------------------------ opening

    async def __aenter__(self) -> Self:
        """Take the saved position (first time), open the file if it is there."""
        if not self._loaded:
            self._loaded = True
            self._load(self.book.start(self.name))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Keep the reading state (a restart goes on where this run stopped)."""
        self.batcher.close()

    def _load(self, saved: SourcePosition | None) -> None:
        """Where to begin: the saved position, else the beginning (or the end) of the file."""
        if saved is None:
            if self.options.start == "end":
                with contextlib.suppress(OSError):
                    size = os.stat(self.path).st_size
                    self._open(self.path, size, 1)
            return
        self._seq = saved.seq
        if saved.mapper:
            try:
                state = msgspec.msgpack.decode(saved.mapper, type=type(self.mapper.snapshot()))
                self.mapper.restore(state)
            except (msgspec.DecodeError, ValueError) as exc:
                # Another callfloor's mapper state: the position still holds; what waits
                # (calls in queue, memberships) is learnt again from the lines to come.
                log.warning(
                    "tail_mapper_state_dropped source=%s error=%r (going on from the "
                    "position with a fresh mapper)",
                    self.name,
                    str(exc),
                )
        ident = (saved.device, saved.inode)
        st: os.stat_result | None
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == ident:
            if st.st_size < saved.offset:  # copy-truncated while callfloor was down
                self._rotated("truncated", self.path, saved, "shorter than the saved offset")
                self._new_file()
            elif not self._open_at(self.path, saved):
                self._rotated(
                    "rewritten", self.path, saved, "its first bytes are not those read before"
                )
                self._new_file()
            return
        rotated = self._find_inode(ident)
        if rotated is not None and self._open_at(rotated, saved):
            log.info(
                "tail_rotated_while_down source=%s reading=%s from=%d then=%s",
                self.name,
                rotated,
                saved.offset,
                self.path,
            )
            self.counts.rotation(self.key, "renamed")
            self._drain_first = rotated
            return
        if saved.inode:
            log.warning(
                "tail_lost_file source=%s path=%s: the file read before (inode %d) is gone; "
                "lines after its offset %d were not read",
                self.name,
                self.path,
                saved.inode,
                saved.offset,
            )
        self._new_file()

    def _open_at(self, path: str, saved: SourcePosition) -> bool:
        """Open ``path`` at the saved position if its first bytes are those the position
        was saved with (or the position has no fingerprint: an older checkpoint)."""
        fd = self._open_regular(path)
        if fd is None:
            return False
        try:
            head = os.pread(fd, min(saved.offset, HEAD_BYTES), 0)
        except OSError:
            head = b""
        finally:
            os.close(fd)
        if saved.head_digest and (
            len(head) != saved.head_size or head_digest(head) != saved.head_digest
        ):
            return False
        if not self._open(path, saved.offset, saved.line):
            return False
        self._head = head
        return True

    def _rotated(self, reason: str, path: str, saved: SourcePosition, why: str) -> None:
        """Count and log a file found rotated at a restart (read from 0 next)."""
        self.counts.rotation(self.key, reason)
        log.warning(
            "tail_%s_while_down source=%s path=%s: %s (inode %d, offset %d); reading it "
            "from its start",
            reason,
            self.name,
            path,
            why,
            saved.inode,
            saved.offset,
        )

    def _find_inode(self, ident: tuple[int, int]) -> str | None:
        folder = Path(self.path).parent
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) == ident and entry.is_file():
                        return entry.path
        return None

    def _mark_start(self, offset: int) -> None:
        self.counts.position[self.key] = float(offset)

    def _open(self, path: str, offset: int, line: int) -> bool:
        fd = self._open_regular(path)
        if fd is None:
            return False
        self._close()
        st = os.fstat(fd)
        os.lseek(fd, offset, os.SEEK_SET)
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._splitter = LineSplitter(offset, line, max_line=self.max_line)
        self._head = b""
        if offset:
            with contextlib.suppress(OSError):
                self._head = os.pread(fd, min(offset, HEAD_BYTES), 0)
        if self._opened:
            self.counts.add(self.counts.reconnects_total, self.key, 1)
        self._opened += 1
        self._mark_start(offset)
        return True

    def _open_regular(self, path: str) -> int | None:
        """A descriptor of ``path`` if it is a regular file, else None (logged once per
        file). Opened without blocking: a FIFO's open would wait for a writer with the
        whole event loop, and a device (``/dev/zero``) never ends and has no lines."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if stat.S_ISREG(st.st_mode):
            self._refused = None
            return fd
        os.close(fd)
        if self._refused != (st.st_dev, st.st_ino):
            self._refused = (st.st_dev, st.st_ino)
            log.warning(
                "tail_not_a_file source=%s path=%s: not a regular file (a FIFO, a device "
                "or a directory); waiting for a file there",
                self.name,
                path,
            )
        return None

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _new_file(self) -> None:
        """Read the path from its beginning (a new file: a CSV export's header again)."""
        if isinstance(self.mapper, QueueLogCsvMapper):
            state = self.mapper.snapshot()
            state.header = None
            self.mapper.restore(state)
        if not self._open(self.path, 0, 1):
            self._close()
            self._splitter = LineSplitter(max_line=self.max_line)
            self._ident = (0, 0)

    # ------------------------------------------------------------------ reading

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[Batch]:
        poll = self.options.poll_s
        while True:
            data = self._read()
            if data:
                if not self._same_head(data):
                    batch = self._rewritten()
                    if batch is not None:
                        yield batch
                    continue
                batch = self._batch(data)
                if batch is not None:
                    yield batch
                else:
                    # A line longer than a read (no newline yet): the loop's turn
                    # between reads, or a huge one is read whole with the service deaf.
                    await asyncio.sleep(0)
                continue
            batch = self._at_end()
            if batch is not None:
                yield batch
                continue
            await asyncio.sleep(poll)

    def _read(self) -> bytes:
        if self._fd is None:
            return b""
        return os.read(self._fd, self.chunk_bytes)

    def _same_head(self, data: bytes) -> bool:
        """Whether the file still begins with the bytes read from it (else it was
        rewritten from its start, and ``data`` is of the new content); ``data``, read
        just now, joins the kept head if the head is not whole yet."""
        head = self._head
        if head and self._fd is not None:
            try:
                now = os.pread(self._fd, len(head), 0)
            except OSError:
                now = head
            if now != head:
                return False
        if len(head) < HEAD_BYTES and len(head) == self._splitter.read_to:
            self._head = head + data[: HEAD_BYTES - len(head)]
        return True

    def _rewritten(self) -> Batch | None:
        """The file was copy-truncated and grew back past the read position between two
        reads: its new content from 0 (the data read at the old offset is dropped)."""
        left = self._leftover()
        self.counts.rotation(self.key, "rewritten")
        log.warning(
            "tail_rewritten source=%s path=%s: its first bytes changed (copy-truncated and "
            "grown back past offset %d); reading it from its start",
            self.name,
            self.path,
            self._splitter.read_to,
        )
        self._new_file()
        return left

    def _at_end(self) -> Batch | None:
        """At the end of what is readable: look for rotation, truncation, a missing file.

        Returns a batch when switching files left something to say (a partial last line
        of the old file, dead-lettered), else None (wait and poll).
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._missing_since is None:
                self._missing_since = self.clock()
                log.warning("tail_missing source=%s path=%s (waiting for it)", self.name, self.path)
            return None
        except OSError as exc:
            raise OSError(f"{self.path}: {exc}") from None
        if self._missing_since is not None:
            log.info(
                "tail_found source=%s path=%s after_s=%.1f",
                self.name,
                self.path,
                self.clock() - self._missing_since,
            )
            self._missing_since = None
        if self._fd is None:
            self._new_file()
            return None
        if (st.st_dev, st.st_ino) != self._ident:
            # Renamed away: finish the old file (one more read: the logger may have
            # written to it after our last read), then the new one from its start.
            data = self._read()
            if data:
                return self._batch(data)
            left = self._leftover()
            log.info("tail_rotated source=%s path=%s", self.name, self.path)
            self.counts.rotation(self.key, "renamed")
            self._drain_first = None
            self._new_file()
            return left
        read_to = self._splitter.read_to
        if st.st_size < read_to:
            left = self._leftover()
            log.info("tail_truncated source=%s path=%s size=%d", self.name, self.path, st.st_size)
            self.counts.rotation(self.key, "truncated")
            self._new_file()
            return left
        return None

    def _leftover(self) -> Batch | None:
        """The unfinished last line of a file being left: a truncated_line rejection (a
        line_too_long one if it was over max_line_bytes)."""
        long = self._splitter.take_long(final=True)
        if long:
            numbers: list[int] = []
            result = map_lines(self.mapper, [], [], numbers, long, self.max_line)
            return self._mapped(result, [], numbers, len(long))
        tail = self._splitter.tail()
        if tail is None:
            return None
        line, position, number = tail
        rejected = self.mapper.truncated(line, position)
        if rejected is None:  # a whole JSON record without its newline (Connect)
            result = map_lines(self.mapper, [line], [position], [number], [], self.max_line)
            return self._mapped(result, [line], [number], 1)
        return self._mapped(MapResult(rejected=[bound_raw(rejected, line)]), [line], [number], 1)

    def _batch(self, data: bytes) -> Batch | None:
        splitter = self._splitter
        lines, offsets, numbers = splitter.push(data)
        long = splitter.take_long()
        self.counts.position[self.key] = float(splitter.offset)
        if not lines and not long:
            return None
        result = map_lines(self.mapper, lines, offsets, numbers, long, self.max_line)
        return self._mapped(result, lines, numbers, len(lines) + len(long))

    def _mapped(
        self, result: MapResult, lines: list[bytes], numbers: list[int], records: int
    ) -> Batch:
        # Every event may be a resend of a line read before a crash: the service drops
        # those it has (same ids), and applies the others. A rejected line has an id of
        # the same making (its offset and content), so one the service counted before
        # the crash is neither counted nor dead-lettered again.
        keys = [self._rejection_id(r, lines) for r in result.rejected]
        return self.batcher.batch(
            result, records, lines=numbers, then=self._acker(), resent=True, keys=keys
        )

    def _rejection_id(self, r: Rejected, lines: list[bytes]) -> str:
        """The identity of a rejected line: the source, the line's offset and content (for
        a line over max_line_bytes, not held, its SHA-256)."""
        held = 0 <= r.index < len(lines)
        # A long line (not held): its SHA-256, or its text when it was kept whole.
        content = lines[r.index] if held else (r.sha256 or r.raw).encode("utf-8", "surrogatepass")
        return f"{self.name}:" + event_id("rejected", r.position, content)

    def _acker(self) -> Callable[[Receipt], None] | None:
        """What saves the position after this batch once it is acknowledged, if this
        batch carries one (at most every ``position_every_s``)."""
        now = time.monotonic()
        last = self._positioned_at
        if last is not None and now - last < self.position_every_s:
            return None
        self._positioned_at = now
        self._seq += 1
        head = self._head[: self._splitter.offset]  # the head read holds the offset's
        position = SourcePosition(
            kind=self.kind,
            seq=self._seq,
            device=self._ident[0],
            inode=self._ident[1],
            offset=self._splitter.offset,
            line=self._splitter.line,
            mapper=msgspec.msgpack.encode(self.mapper.snapshot()),
            head_size=len(head),
            head_digest=head_digest(head),
        )
        name = self.name
        book = self.book

        def ack(_receipt: Receipt) -> None:
            book.ack(name, position)

        return ack
