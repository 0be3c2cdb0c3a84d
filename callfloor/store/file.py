"""The ``file://`` store: an append-only log and two checkpoint files, on one machine.

Layout under the directory::

    LOCK                 held (flock) by the one process using the directory
    log/00000001.seg     log segments: records appended, fsynced before any ack
    checkpoint           the newest checkpoint, replaced atomically (write, fsync, rename)
    checkpoint.previous  the one before it: the fallback when the newest is damaged
    checkpoint*.damaged  a checkpoint recovery found damaged, set aside (never loaded)

A segment starts with a header: a magic string, its own number, and the size of the
segment before it when it was started (a crc32 over these). A record is one ingest
round: ``length (4 bytes) | crc32 (4 bytes) | payload``, the payload a MessagePack
:class:`Record` (the writer's watermark when it was appended, and the events). A
position is ``"segment:offset"``, just after a record. (Segments written before the
header existed start with their first record; they are read as they are.)

The log is kept back to the *previous* checkpoint's position, so either checkpoint and
the log after it restore the floor. A replay refuses, naming what is wrong and what to
do, a log with a hole: a segment missing between two others, a segment whose size is
not what the next one's header says (cut short, even between two records, or grown), a
log that starts after the checkpoint's segment or ends before its position, a bad
record anywhere but at the very end. A crash can only tear the last record of the last
segment (it was never acknowledged: its fsync did not return), so that one is cut off,
counted (:attr:`FileStore.torn_records`) and logged at ERROR with its size. A cut of the
last segment that removes whole records after the newest checkpoint cannot be told
from a log that ended there: nothing records how long it was after a crash.

An append that fails (a short write on a full disk, a write or fsync error) cuts the
segment back to where the record began before it raises, so a retry follows the good
records; if even that fails, the store refuses every later append (an acknowledged
record must never land after garbage) until a restart cuts the partial record off.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import itertools
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec

from callfloor.ingest.source import Batch
from callfloor.store.base import (
    ALL,
    RECORD_DECODER,
    RECORD_ENCODER,
    Logged,
    Record,
    StoreError,
    StoreHealth,
)

log = logging.getLogger("callfloor")

STREAM: Final = "log"
SEGMENT_BYTES: Final = 64 * 1024 * 1024
_HEADER: Final = struct.Struct(">II")
# A segment's header: magic, its number, the size of the segment before it when it was
# started (0: none), and the crc32 of these. Its magic starts with a byte no record of
# an older segment starts with (a length below 16 MB starts with a zero byte).
_SEGMENT_MAGIC: Final = b"callfloor-log\x00\x00\x01"
_SEGMENT_HEADER: Final = struct.Struct(">16sIQI")
SEGMENT_HEADER_SIZE: Final = _SEGMENT_HEADER.size
CHECKPOINT_FILES: Final = ("checkpoint", "checkpoint.previous")  # by slot: newest first
_ONE_BYTE_LENGTHS: Final = 1 << 24  # lengths below this start with a zero byte
_NONZERO: Final = re.compile(rb"[^\0]")


_ENCODE: Final = RECORD_ENCODER
_DECODE: Final = RECORD_DECODER


def _position(segment: int, offset: int) -> str:
    return f"{segment}:{offset}"


def _segment_header(segment: int, previous_end: int) -> bytes:
    fields = _SEGMENT_MAGIC + struct.pack(">IQ", segment, previous_end)
    return fields + struct.pack(">I", zlib.crc32(fields))


def _parse(position: str) -> tuple[int, int]:
    try:
        segment, offset = position.split(":")
        return int(segment), int(offset)
    except ValueError:
        raise StoreError(f"not a file log position: {position!r}") from None


class FileStore:
    """Durable on one machine (see the module docstring)."""

    applies_locally = True

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        self.logdir = self.root / "log"
        self._lock_fd: int | None = None
        self._fd: int | None = None
        # Held by the threads that write (append, save) and by close: a stop that gave
        # up waiting for an append must not close (and let the OS reuse) the descriptor
        # a thread is still writing to.
        self._io = threading.Lock()
        self._segment = 1
        self._offset = 0
        self._broken: str | None = None  # why appends are refused (a partial record kept)
        self.appended_bytes = 0
        self.fsyncs = 0
        self.torn_records = 0  # partial last records cut off by recovery

    # ------------------------------------------------------------------ open and close

    async def open(self) -> None:
        """Create the directory, take its lock, find the end of the log."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot use {self.root}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"{self.root} is in use by another callfloor process (its LOCK is held): "
                "a file store is for one process; use a redis:// store to share"
            ) from None
        self._lock_fd = fd
        segments = self._segments()
        self._segment = segments[-1] if segments else 1
        self._open_segment()
        self._finish_header()

    def _finish_header(self) -> None:
        """Give the last segment its header if it has none yet: it is new (empty), or a
        crash tore the header while the segment was started (then nothing else is in
        it). Anything else is left for the replay to judge."""
        assert self._fd is not None
        segment = self._segment
        before = self._file(segment - 1)
        previous_end = before.stat().st_size if before.exists() else 0
        header = _segment_header(segment, previous_end)
        if self._offset >= len(header):
            return
        if self._offset:
            found = self._file(segment).read_bytes()
            if not header.startswith(found):
                return  # not a torn header of this segment: the replay refuses it
            log.error(
                "file_store_torn_segment_header path=%s size=%d (written again)",
                self._file(segment),
                self._offset,
            )
            os.ftruncate(self._fd, 0)
        _write_all(self._fd, header)
        os.fsync(self._fd)
        self._offset = len(header)

    def _segments(self) -> list[int]:
        found = []
        for entry in self.logdir.iterdir():
            if entry.suffix == ".seg" and entry.stem.isdigit():
                found.append(int(entry.stem))
        return sorted(found)

    def _file(self, segment: int) -> Path:
        return self.logdir / f"{segment:08d}.seg"

    def _open_segment(self, segment: int | None = None, *, previous_end: int | None = None) -> None:
        """Open ``segment`` (default: the current one) for appending; on failure the
        segment open before stays the current one.

        With ``previous_end`` it is a new segment after one of that size: created (or
        emptied: a failed start may have left part of its header) with its header.
        """
        segment = self._segment if segment is None else segment
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if previous_end is not None:
            flags |= os.O_TRUNC
        fd = os.open(self._file(segment), flags, 0o644)
        try:
            if previous_end is not None:
                _write_all(fd, _segment_header(segment, previous_end))
                os.fsync(fd)
            offset = os.fstat(fd).st_size
            _fsync_dir(self.logdir)
        except OSError:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment, self._offset = fd, segment, offset

    async def close(self) -> None:
        """Close the log and release the lock (once a write in progress has ended)."""
        await asyncio.to_thread(self._close)

    def health(self) -> StoreHealth:
        """Up: a failed write or fsync is raised by the append that made it (the writer
        counts it and refuses new events until an append succeeds). Counts the torn
        records recovery cut off."""
        return StoreHealth(torn_records=self.torn_records)

    def _close(self) -> None:
        with self._io:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # ------------------------------------------------------------------ append

    async def append(
        self,
        batches: Sequence[Batch],
        at: float,
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> Mapping[str, str]:
        """Write the round as one record and fsync it (in a thread: fsync blocks)."""
        events = [event for batch in batches for event in batch.events]
        rejected: dict[str, int] = {}
        rejected_ids: list[str] = []
        for batch in batches:
            for reason, n in batch.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
            rejected_ids += [key for key, _ in batch.rejected_ids]
        payload = _ENCODE.encode(Record(at, events, rejected, rejected_ids))
        return await asyncio.to_thread(self._append, payload)

    def _append(self, payload: bytes) -> Mapping[str, str]:
        with self._io:
            return self._append_locked(payload)

    def _append_locked(self, payload: bytes) -> Mapping[str, str]:
        if self._fd is None:
            raise StoreError("the file store is not open")
        if self._broken is not None:
            raise StoreError(self._broken)
        if self._offset >= SEGMENT_BYTES:
            try:
                self._open_segment(self._segment + 1, previous_end=self._offset)
            except OSError as exc:
                raise StoreError(
                    f"cannot start {self._file(self._segment + 1)}: {exc.strerror}"
                ) from None
        fd, path, before = self._fd, self._file(self._segment), self._offset
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            _write_all(fd, record)
            os.fsync(fd)
        except OSError as exc:
            # Part of the record may be in the segment: cut it off, so that the retry
            # (and every later record) follows the last good one.
            self._cut_back(fd, path, before, exc)
            raise StoreError(
                f"cannot append to {path} at byte {before}: {exc.strerror or exc}"
            ) from None
        self.fsyncs += 1
        self._offset = before + len(record)
        self.appended_bytes += len(record)
        return {STREAM: _position(self._segment, self._offset)}

    def _cut_back(self, fd: int, path: Path, offset: int, cause: OSError) -> None:
        """Truncate a failed append off the segment, or refuse every later append."""
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        except OSError as exc:
            self._broken = (
                f"{path} keeps part of a failed append after byte {offset} "
                f"({cause.strerror or cause}) and could not be cut back ({exc.strerror or exc}): "
                "appends are refused; restart callfloor (recovery cuts the partial record off)"
            )
            log.error("file_store_broken path=%s offset=%d error=%r", path, offset, exc)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, slot: int) -> Path:
        return self.root / CHECKPOINT_FILES[slot]

    async def load(self, partition: str, slot: int = 0) -> bytes | None:
        """The checkpoint file of ``slot`` (0: ``checkpoint``, 1: ``checkpoint.previous``)."""
        try:
            return await asyncio.to_thread(self._checkpoint(slot).read_bytes)
        except FileNotFoundError:
            return None

    async def save(
        self,
        partition: str,
        blob: bytes,
        positions: Mapping[str, str],
        *,
        previous: Mapping[str, str],
    ) -> None:
        """Make ``blob`` the newest checkpoint (the newest so far becomes the previous
        one), then drop the segments before ``previous``'s (see :meth:`Store.save`)."""
        await asyncio.to_thread(self._save, blob, previous.get(STREAM) or None)

    def _save(self, blob: bytes, keep_from: str | None) -> None:
        with self._io:
            self._save_locked(blob, keep_from)

    def _save_locked(self, blob: bytes, keep_from: str | None) -> None:
        if self._lock_fd is None:
            raise StoreError("the file store is not open")
        tmp = self.root / "checkpoint.tmp"
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        newest, before = self._checkpoint(0), self._checkpoint(1)
        # A crash between the two renames leaves no newest: the previous one (the
        # newest until then) and the log after it restore the floor.
        if newest.exists():
            os.replace(newest, before)
        os.replace(tmp, newest)
        _fsync_dir(self.root)
        if keep_from is not None:
            kept, _ = _parse(keep_from)
            for segment in self._segments():
                if segment < kept:
                    self._file(segment).unlink(missing_ok=True)

    async def set_aside(self, partition: str, slot: int) -> None:
        """Rename the checkpoint of ``slot`` to ``<name>.damaged`` (replacing an older one)."""
        await asyncio.to_thread(self._set_aside, slot)

    def _set_aside(self, slot: int) -> None:
        with self._io:
            path = self._checkpoint(slot)
            if path.exists():
                os.replace(path, path.with_name(path.name + ".damaged"))
                _fsync_dir(self.root)

    # ------------------------------------------------------------------ recovery

    async def replay(self, partition: str, positions: Mapping[str, str]) -> AsyncIterator[Logged]:
        """The rounds logged after ``positions`` (a torn last record is cut off).

        Refuses (:class:`StoreError`), before the first round, a log with a hole: a
        missing or cut segment, a position the log does not reach, a log that starts
        after it. Acknowledged rounds would be skipped silently otherwise.
        """
        if partition != ALL:
            raise StoreError(f"a file store has one partition, not {partition!r}")
        start = positions.get(STREAM) or None  # "": the start of the log
        segments = await asyncio.to_thread(self._segments)
        segment, offset = _parse(start) if start else (0, 0)
        await asyncio.to_thread(self._check_log, segments, start, segment, offset)
        for seg in segments:
            if seg < segment:
                continue
            records = await asyncio.to_thread(
                self._read, seg, offset if seg == segment else 0, seg == segments[-1]
            )
            for end, record in records:
                yield Logged(
                    ALL,
                    STREAM,
                    _position(seg, end),
                    list(record.events),
                    record.at,
                    rejected=dict(record.rejected),
                    rejected_ids=list(record.rejected_ids),
                )

    def _check_log(self, segments: list[int], start: str | None, segment: int, offset: int) -> None:
        """Refuse a replay from where the log does not go on without a hole."""
        backup = (
            "restore the store directory (checkpoints and log together) from a backup, or "
            "move it aside to start an empty floor"
        )
        for before, after in itertools.pairwise(segments):
            if after != before + 1:
                missing = ", ".join(self._file(n).name for n in range(before + 1, after)[:3])
                more = "" if after - before <= 4 else f" and {after - before - 4} more"
                raise StoreError(
                    f"{self.logdir} is missing {missing}{more} between "
                    f"{self._file(before).name} and {self._file(after).name}: acknowledged "
                    f"rounds were in it; {backup}"
                )
        sizes = {n: self._file(n).stat().st_size for n in segments}
        for n in segments:
            header = self._segment_header_of(n, last=n == segments[-1])
            if header is None or n - 1 not in sizes:
                continue
            if header != sizes[n - 1]:
                raise StoreError(
                    f"{self._file(n - 1)} holds {sizes[n - 1]} bytes but "
                    f"{self._file(n).name} was started when it ended at byte {header}: it "
                    f"was cut short (or written to since); acknowledged rounds are missing. "
                    f"{backup}"
                )
        if segments:
            last = segments[-1]
            ends = f"{last}:{sizes[last]}"
        else:
            ends = "nothing (no segment)"
        restore = (
            "the log is shorter than its checkpoint (restored from an older backup?): "
            "restore the log and the checkpoint together, or move the store directory aside"
        )
        if start is None:
            if segments and segments[0] != 1:
                raise StoreError(
                    f"{self.logdir} starts at segment {segments[0]} but there is no "
                    "checkpoint covering the segments before it (the checkpoint files were "
                    "deleted, or are damaged): restore them, or move the store directory aside"
                )
            return
        if segment not in segments:
            raise StoreError(
                f"the checkpoint's log position {start} is in segment {segment}, which "
                f"{self.logdir} does not hold (the log ends at {ends}): {restore}"
            )
        size = sizes[segment]
        if offset > size:
            raise StoreError(
                f"the checkpoint's log position {start} is past the end of "
                f"{self._file(segment)} ({size} bytes; the log ends at {ends}): {restore}"
            )
        if self._segment_header_of(segment, last=segment == segments[-1]) is not None and (
            offset < SEGMENT_HEADER_SIZE
        ):
            raise StoreError(
                f"the checkpoint's log position {start} is inside the header of "
                f"{self._file(segment)}: no record ends there; {backup}"
            )

    def _segment_header_of(self, segment: int, *, last: bool) -> int | None:
        """The size the segment before ``segment`` had when it was started (0: none), or
        None for a segment written before headers (or a last one still empty).

        Raises StoreError for a damaged header (a header torn by a crash was written
        again when the store was opened: only the last segment can have one).
        """
        path = self._file(segment)
        with open(path, "rb") as fh:
            found = fh.read(SEGMENT_HEADER_SIZE)
        if not found.startswith(_SEGMENT_MAGIC[:1]) or (last and not found):
            return None  # a record's length starts with a zero byte: no header
        try:
            magic, number, previous_end, crc = _SEGMENT_HEADER.unpack(found)
        except struct.error:
            magic, number, previous_end, crc = b"", 0, 0, 0
        if magic != _SEGMENT_MAGIC or zlib.crc32(found[:-4]) != crc or number != segment:
            raise StoreError(
                f"{path} has a damaged segment header ({len(found)} bytes"
                + (f", naming segment {number}" if magic == _SEGMENT_MAGIC else "")
                + "): move the store directory aside and restore it from a backup"
            )
        end: int = previous_end
        return end

    def _read(self, segment: int, offset: int, last: bool) -> list[tuple[int, Record]]:
        path = self._file(segment)
        data = path.read_bytes()
        out: list[tuple[int, Record]] = []
        if offset == 0 and data.startswith(_SEGMENT_MAGIC):
            offset = SEGMENT_HEADER_SIZE  # checked by _check_log
        pos = offset
        while pos < len(data):
            length, bad = _check_record(data, pos)
            if bad is not None:
                # A crash mid-write leaves the damage at the very end (possibly padded
                # with zeros by the file system): nothing valid after it. Damage with a
                # valid record anywhere after it is not a torn write: those records
                # were acknowledged and must not be cut off.
                after = _next_valid(data, pos + 1)
                if last and after is None:
                    self._cut_torn(path, segment, pos, len(data) - pos, bad)
                    break
                later = "" if after is None else f" (with a valid record at byte {after} after it)"
                raise StoreError(
                    f"{path} has {bad} at byte {pos}{later}: the log is damaged; move the "
                    "store directory aside and restore from a backup"
                )
            body = data[pos + _HEADER.size : pos + _HEADER.size + length]
            pos += _HEADER.size + length
            try:
                out.append((pos, _DECODE.decode(body)))
            except msgspec.DecodeError as exc:
                raise StoreError(f"{path}: undecodable record at byte {pos}: {exc}") from None
        return out

    def _cut_torn(self, path: Path, segment: int, pos: int, size: int, problem: str) -> None:
        """Cut a torn last record off: a crash mid-append (its fsync never returned, so
        it was never acknowledged). Counted and logged at ERROR with its size: a cut that
        is not a crash's (a copy cut short) must not pass unseen."""
        self.torn_records += 1
        log.error(
            "file_store_torn_record path=%s offset=%d size=%d problem=%r (cut off: the "
            "last record of the log, never acknowledged)",
            path,
            pos,
            size,
            problem,
        )
        with open(path, "r+b") as fh:
            fh.truncate(pos)
            os.fsync(fh.fileno())
        if segment == self._segment:
            self._offset = pos
            if pos == 0 and self._fd is not None:
                self._finish_header()  # nothing was left of it: a new segment


def _check_record(data: bytes, pos: int) -> tuple[int, str | None]:
    """The length of the record at ``pos``, and what is wrong with it (None: valid)."""
    if pos + _HEADER.size > len(data):
        return 0, "a record header cut short"
    length, crc = _HEADER.unpack_from(data, pos)
    if length == 0:
        return 0, "a record whose checksum does not match"
    start = pos + _HEADER.size
    if start + length > len(data):
        return length, "a record cut short"
    if zlib.crc32(memoryview(data)[start : start + length]) != crc:
        return length, "a record whose checksum does not match"
    return length, None


def _next_valid(data: bytes, start: int) -> int | None:
    """The offset of the first valid record (header and checksum) at or after ``start``.

    Only offsets whose length field fits in what is left and whose payload starts as a
    :class:`Record` does (a short MessagePack array) are checked: below 16 MB left that
    length starts with a zero byte, and a run of zeros holds no length at all.
    """
    n = len(data)
    limit = n - _HEADER.size  # a record holds at least one byte after its header
    pos = start
    while pos < limit:
        if limit - pos < _ONE_BYTE_LENGTHS:
            pos = data.find(b"\0", pos, limit)
            if pos < 0:
                return None
        length = int.from_bytes(data[pos : pos + 4])
        if length == 0:
            found = _NONZERO.search(data, pos + 4)
            if found is None:
                return None
            pos = max(pos + 1, found.start() - 3)
            continue
        if (
            length <= limit - pos
            and data[pos + _HEADER.size] & 0xF0 == 0x90  # a Record: a short MessagePack array
            and _check_record(data, pos)[1] is None
        ):
            return pos
        pos += 1
    return None


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a short write goes on; OSError if the rest cannot go)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no room for the rest of the record")
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
